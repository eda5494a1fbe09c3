// The call page's DOM: the screens (waiting, calling, ended), one tile per remote participant,
// the duration and the notices. It shows what the state says and decides nothing itself.

import { displayName, knownName } from "../api.js";
import { ACTIVE } from "../states.js";
import { h, initial } from "../ui.js";
import { durationText, invitees, stateLabel } from "./model.js";

const $ = (id) => document.getElementById(id);

// --- media elements -----------------------------------------------------------------------------

export function play(video) {
  const p = video.play();
  if (!p) return;
  p.catch((err) => {
    if (err.name !== "NotAllowedError" || video.muted) return;
    // Autoplay with sound was refused: play muted and offer a button to unmute.
    video.muted = true;
    video.play().catch(() => {});
    const fig = video.closest("figure");
    if (!fig || fig.querySelector(".unmute")) return;
    const btn = h("button", { type: "button", class: "btn unmute", text: "Tap to hear" });
    btn.addEventListener("click", () => {
      for (const v of document.querySelectorAll("video.remote")) {
        v.muted = false;
        v.play().catch(() => {});
      }
      for (const b of document.querySelectorAll(".unmute")) b.remove();
    });
    fig.append(btn);
  });
}

export function showLocalMedia(state, stream) {
  const local = $("video-local");
  if (stream) {
    local.srcObject = stream;
    play(local);
    if (!stream.getVideoTracks().length) $("tile-local").classList.add("camera-off");
  } else {
    $("tile-local").classList.add("camera-off");
  }
  if (state.call.type !== "video") $("tile-local").classList.add("audio-only");
}

// --- tiles --------------------------------------------------------------------------------------

export function ensureTile(state, user) {
  if (state.tiles.has(user)) return state.tiles.get(user);
  const video = h("video", {
    class: "remote",
    "data-testid": `video-${user}`,
    autoplay: true,
    playsinline: true,
    "aria-label": `${knownName(user)}'s video`,
  });
  const avatar = h("div", { class: "avatar avatar-big", "aria-hidden": "true", text: initial(knownName(user)) });
  const name = h("span", { class: "tile-name", text: knownName(user) });
  const stateEl = h("span", { class: "tile-state", "data-testid": `state-${user}` });
  const conn = h("span", { class: "tile-conn muted", "data-testid": `conn-${user}` });
  const figure = h(
    "figure",
    { class: `tile ${state.call.type === "audio" ? "audio-only" : ""}`, id: `tile-${user}` },
    video,
    avatar,
    h("figcaption", {}, presenceDot(), name, " ", stateEl, " ", conn),
  );
  markPresence(figure, state.online.get(user));
  $("video-grid").append(figure);
  const tile = { figure, video, state: stateEl, conn, name };
  state.tiles.set(user, tile);
  displayName(user).then((n) => {
    name.textContent = n;
    avatar.textContent = initial(n);
    video.setAttribute("aria-label", `${n}'s video`);
  });
  return tile;
}

export function showRemoteStream(state, user, stream) {
  const tile = ensureTile(state, user);
  if (tile.video.srcObject !== stream) tile.video.srcObject = stream;
  play(tile.video);
}

export function clearRemoteStream(state, user) {
  const tile = state.tiles.get(user);
  if (tile) tile.video.srcObject = null;
}

// The peer connection's state under a tile: nothing while connected.
export function showConnection(state, user, connectionState) {
  const tile = state.tiles.get(user);
  if (!tile) return;
  tile.conn.textContent = connectionState === "connected" ? "" : connectionState;
  tile.figure.dataset.conn = connectionState;
}

// --- presence -----------------------------------------------------------------------------------

// A dot beside each participant's name; CSS shows it once their presence is known.
function presenceDot() {
  return h("span", { class: "dot", "aria-hidden": "true" });
}

function markPresence(el, online) {
  if (!el || online === undefined) return;
  el.dataset.online = online ? "true" : "false";
  el.querySelector(".dot").title = online ? "online" : "offline";
}

export function showPresence(state, user, online) {
  state.online.set(user, online);
  markPresence(state.tiles.get(user)?.figure, online);
  markPresence($("callees").querySelector(`[data-user="${CSS.escape(user)}"]`), online);
}

function updateTiles(state) {
  for (const p of state.call.participants) {
    if (p.user === state.me) continue;
    if (!state.tiles.has(p.user) && !ACTIVE.has(p.state)) continue;
    const tile = ensureTile(state, p.user);
    tile.state.textContent = stateLabel(p);
    tile.state.dataset.state = p.state;
    tile.figure.dataset.state = p.state;
  }
  const n = [...state.tiles.values()].filter((t) => t.figure.dataset.state !== "quit").length + 1;
  $("video-grid").dataset.count = String(Math.min(n, 9));
}

// --- screens ------------------------------------------------------------------------------------

export function renderWaiting(state) {
  const people = invitees(state.call);
  $("waiting-title").textContent = `Calling ${people.map((p) => knownName(p.user)).join(", ")}…`;
  const list = $("callees");
  for (const p of people) {
    let li = list.querySelector(`[data-user="${CSS.escape(p.user)}"]`);
    if (!li) {
      li = h(
        "li",
        { "data-user": p.user },
        h("span", { class: "avatar", "aria-hidden": "true", text: initial(knownName(p.user)) }),
        presenceDot(),
        h("span", { class: "callee-name", text: knownName(p.user) }),
        h("span", { class: "callee-state", "data-testid": `callee-state-${p.user}` }),
      );
      markPresence(li, state.online.get(p.user));
      list.append(li);
      displayName(p.user).then((n) => (li.querySelector(".callee-name").textContent = n));
    }
    const s = li.querySelector(".callee-state");
    s.textContent = stateLabel(p);
    s.dataset.state = p.state;
    li.dataset.state = p.state;
  }
}

export function show(which) {
  $("call-loading").hidden = true;
  $("waiting-page").hidden = which !== "waiting";
  $("calling-page").hidden = which !== "calling";
  $("call-ended").hidden = which !== "ended";
}

// Show the screen of a call that has not ended (screenFor says which).
export function render(state, screen) {
  if (screen === "incoming" || screen === "absent") {
    state.mode = "absent";
    show("ended");
    const ringing = screen === "incoming";
    $("call-ended").querySelector("h1").textContent = ringing ? "Incoming call" : "Not in this call";
    $("call-ended-reason").textContent = ringing
      ? "This call is ringing for you: answer it in the dialog."
      : "You are no longer in this call.";
    return;
  }
  if (screen === "waiting") {
    state.mode = "waiting";
    renderWaiting(state);
    show("waiting");
    return;
  }
  if (state.mode !== "calling") {
    state.mode = "calling";
    show("calling");
    startDuration(state);
  }
  updateTiles(state);
}

// A call that never connected: the waiting screen, with why and a way home.
export function showNotConnected(text) {
  show("waiting");
  $("waiting-title").textContent = "Call not connected";
  const failure = $("waiting-failure");
  failure.textContent = text;
  failure.hidden = false;
  $("waiting-cancel").hidden = true;
  $("waiting-home").hidden = false;
}

export function focusHome() {
  $("waiting-home").focus();
}

export function showEnded(text) {
  $("call-ended-reason").textContent = text;
  show("ended");
}

// --- duration and notices -----------------------------------------------------------------------

function startDuration(state) {
  // Kept per tab, so a reload during the call goes on counting from when it started.
  const key = `callsite.started.${state.callId}`;
  let started = Number(sessionStorage.getItem(key));
  if (!started) {
    started = Date.now();
    sessionStorage.setItem(key, String(started));
  }
  const el = $("call-duration");
  const tick = () => {
    el.textContent = durationText((Date.now() - started) / 1000);
  };
  tick();
  clearInterval(state.durationTimer);
  state.durationTimer = setInterval(tick, 1000);
}

export function stopDuration(state) {
  clearInterval(state.durationTimer);
}

// The call is over for this tab: a later call starts counting from zero.
export function forgetDuration(state) {
  sessionStorage.removeItem(`callsite.started.${state.callId}`);
}

export function notice(text) {
  const box = $("call-notices");
  const item = h("p", { class: "notice", text });
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}
