// Home: people with live presence (subscribed through presence.js), search, 1:1 and group calls.

import { rememberName } from "./api.js";
import { push, pushRefreshed, socket } from "./app.js";
import { me } from "./config.js";
import { PresenceWatch } from "./presence.js";
import { debounce } from "./ui.js";

const list = document.getElementById("people-list");
const search = document.getElementById("people-search");
const groupBtn = document.getElementById("group-call-start");
const groupCount = document.getElementById("group-count");
const groupType = document.getElementById("group-type");
const errorBox = document.getElementById("home-error");
// Waits for typing to pause before the list it shows is subscribed to.
const RESUBSCRIBE_AFTER_MS = 300;

for (const li of list.querySelectorAll("[data-username]")) {
  rememberName(li.dataset.username, li.querySelector(".display-name").textContent);
}

function setPresence(username, online) {
  const li = list.querySelector(`[data-username="${CSS.escape(username)}"]`);
  if (!li) return;
  li.dataset.online = online ? "true" : "false";
  li.querySelector(".presence-text").textContent = online ? "online" : "offline";
}

// Live presence of the people the list shows; the subscription is sent again after every
// reconnect, and its snapshot brings back what the socket missed while it was down.
const presence = new PresenceWatch(socket, { me, onChange: setPresence });
function watchShownPeople() {
  presence.watch([...list.querySelectorAll("[data-username]:not([hidden])")].map((li) => li.dataset.username));
}
watchShownPeople();
const rewatch = debounce(watchShownPeople, RESUBSCRIBE_AFTER_MS);

// Instant filtering as you type; the form's submit searches on the server for long lists.
search.addEventListener("input", () => {
  const term = search.value.trim().toLowerCase();
  for (const li of list.querySelectorAll("[data-username]")) {
    li.hidden = term !== "" && !li.dataset.name.includes(term);
  }
  rewatch();
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

// "Ring this browser when callsite is closed": Web Push (static/js/push.js). The permission
// prompt comes only from this click, never on its own.
const pushToggle = document.getElementById("push-toggle");
const pushStatus = document.getElementById("push-status");
function showPush({ status, message }) {
  pushStatus.textContent = message;
  pushStatus.dataset.status = status;
  pushToggle.setAttribute("aria-checked", status === "on" ? "true" : "false");
  pushToggle.disabled = status === "unsupported";
}
pushRefreshed
  .then(() => push.state())
  .then(showPush, (err) => showPush({ status: "error", message: String(err) }));
pushToggle.addEventListener("click", async () => {
  const on = pushToggle.getAttribute("aria-checked") === "true";
  pushToggle.disabled = true;
  pushStatus.dataset.status = "working";
  pushStatus.textContent = on ? "Turning off…" : "Turning on…";
  let answer;
  try {
    answer = on ? await push.disable() : await push.enable();
  } catch (err) {
    answer = { status: "error", message: `Something went wrong: ${err.message || err}` };
  }
  showPush(answer);
});
