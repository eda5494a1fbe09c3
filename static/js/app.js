// Loaded on every signed-in page: this tab's socket, the incoming-call dialog, the header.
// Page modules import { socket } from here, so a page holds exactly one WebSocket.

import { me, deviceId } from "./config.js";
import { IncomingCalls } from "./incoming.js";
import { CallSocket } from "./socket.js";

export const socket = new CallSocket(deviceId);
export const incoming = new IncomingCalls(socket);

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
window.callsite = Object.assign(window.callsite || {}, { socket, incoming, me, deviceId });

if (me) socket.connect();
