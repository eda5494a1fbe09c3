// Home: people with live presence, search, 1:1 and group calls.

import { api, rememberName } from "./api.js";
import { socket } from "./app.js";

const list = document.getElementById("people-list");
const search = document.getElementById("people-search");
const groupBtn = document.getElementById("group-call-start");
const groupCount = document.getElementById("group-count");
const groupType = document.getElementById("group-type");
const errorBox = document.getElementById("home-error");

for (const li of list.querySelectorAll("[data-username]")) {
  rememberName(li.dataset.username, li.querySelector(".display-name").textContent);
}

function setPresence(username, online) {
  const li = list.querySelector(`[data-username="${CSS.escape(username)}"]`);
  if (!li) return;
  li.dataset.online = online ? "true" : "false";
  li.querySelector(".presence-text").textContent = online ? "online" : "offline";
}

socket.on("presence.changed", (msg) => setPresence(msg.user, !!msg.online));
// After a reconnect we may have missed presence changes: re-read the list we show.
let firstReady = true;
socket.on("session.ready", async () => {
  if (firstReady) {
    firstReady = false;
    return;
  }
  try {
    const q = new URLSearchParams(location.search).get("q") || "";
    let url = "users/?search=" + encodeURIComponent(q);
    while (url) {
      const page = await api("GET", url);
      for (const u of page.results) setPresence(u.username, u.online);
      url = page.next ? page.next.replace(/^.*\/api\//, "") : null;
    }
  } catch {
    /* presence is best effort */
  }
});

// Instant filtering as you type; the form's submit searches on the server for long lists.
search.addEventListener("input", () => {
  const term = search.value.trim().toLowerCase();
  for (const li of list.querySelectorAll("[data-username]")) {
    li.hidden = term !== "" && !li.dataset.name.includes(term);
  }
});

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function startCall(invitees, type) {
  showError("");
  if ("Notification" in window && Notification.permission === "default") {
    // A click is a user gesture: a good moment to ask, so later calls can notify in background.
    Notification.requestPermission().catch(() => {});
  }
  // The call page starts the call once its socket is up (see calls/views.py new_call).
  const query = new URLSearchParams({ to: invitees.join(","), type });
  location.assign(`/calls/new/?${query}`);
}

list.addEventListener("click", (ev) => {
  const btn = ev.target.closest("button[data-call]");
  if (!btn) return;
  const li = btn.closest("[data-username]");
  startCall([li.dataset.username], btn.dataset.call);
});

function selected() {
  return [...list.querySelectorAll(".select-person:checked")].map((cb) => cb.value);
}

list.addEventListener("change", (ev) => {
  if (!ev.target.classList.contains("select-person")) return;
  const n = selected().length;
  groupBtn.disabled = n === 0;
  groupCount.textContent = n ? `${n} selected` : "Select people for a group call.";
});

groupBtn.addEventListener("click", () => {
  const people = selected();
  if (people.length) startCall(people, groupType.value);
});
