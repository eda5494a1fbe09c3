// Loaded on every signed-in page: this tab's socket, the incoming-call dialog, the header.
// Page modules import { socket } from here, so a page holds exactly one WebSocket.

import { api } from "./api.js";
import { me, deviceId } from "./config.js";
import { IncomingCalls } from "./incoming.js";
import { BrowserPush } from "./push.js";
import { CallSocket } from "./socket.js";

export const socket = new CallSocket(deviceId);
export const incoming = new IncomingCalls(socket);

function localStore() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
// Web Push for this browser; home.js holds its switch (docs/browser-app.md, docs/push.md).
export const push = new BrowserPush({ api, deviceId, nav: navigator, win: window, storage: localStore() });
// Home (where the switch is) also checks that the server still has this browser's device.
export const pushRefreshed = me
  ? push.refresh({ verify: location.pathname === "/" }).catch((err) => console.warn("callsite: push refresh failed", err))
  : Promise.resolve(null);

if (navigator.serviceWorker) {
  // Only this origin's service worker can post here: "Answer" on its notification.
  navigator.serviceWorker.addEventListener("message", (ev) => {
    const msg = ev.data || {};
    if (msg.type === "callsite.answer" && msg.call_id) incoming.answerFromNotification(msg.call_id);
  });
}

// Signing out stops this browser's push first: it must not ring for the next person at it.
const signOut = document.querySelector("form[action='/accounts/logout/']");
if (signOut) {
  signOut.addEventListener("submit", (ev) => {
    if (!push.record) return;
    ev.preventDefault();
    const done = () => signOut.submit();
    Promise.race([push.disable(), new Promise((resolve) => setTimeout(resolve, 3000))]).then(done, done);
  });
}

const status = document.getElementById("connection-status");
socket.on("status", (s) => {
  if (!status) return;
  status.dataset.state = s;
  status.textContent = { connecting: "Connecting…", open: "Online", closed: "Reconnecting…" }[s] || s;
});
socket.on("unauthenticated", () => location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname)}`));
socket.on("error", (msg) => console.warn("callsite: server error", msg.error));

const notifyBtn = document.getElementById("enable-notifications");
if (notifyBtn && "Notification" in window && Notification.permission === "default") {
  notifyBtn.hidden = false;
  notifyBtn.addEventListener("click", async () => {
    await Notification.requestPermission();
    notifyBtn.hidden = Notification.permission === "default";
  });
}

// For tests and debugging in the console.
window.callsite = Object.assign(window.callsite || {}, { socket, incoming, push, me, deviceId });

if (me) socket.connect();
