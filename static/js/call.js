// The call page: the waiting screen while an outgoing call rings, then the calling screen with a
// mesh of peer connections (one per remote participant; see docs/browser-app.md for its limit).

import { api, displayName, knownName, rememberName } from "./api.js";
import { socket } from "./app.js";
import { deviceId, me } from "./config.js";
import { Peer } from "./rtc.js";
import { h, initial, toast } from "./ui.js";

const ACTIVE = new Set(["inviting", "received", "accepted"]);
const RINGING = new Set(["inviting", "received"]);
const RETURN_HOME_MS = 2500;
// When someone joins, they offer to us (API.md). If no offer arrives, we offer instead;
// perfect negotiation makes a late crossing of offers harmless.
const OFFER_FALLBACK_MS = 6000;

const root = document.getElementById("call-root");
// Empty on /calls/new/: the page starts the call itself once its socket is up.
let callId = root.dataset.callId;
let creating = false;
const beforeCreated = []; // events that arrive while we wait for POST /api/calls/
let call = JSON.parse(document.getElementById("call-data").textContent);
for (const [user, name] of Object.entries(JSON.parse(document.getElementById("call-names").textContent))) {
  rememberName(user, name);
}

const $ = (id) => document.getElementById(id);
const peers = new Map(); // username -> Peer
const tiles = new Map(); // username -> {figure, video, state, conn}
let localStream = null;
let iceServers = [];
let mediaReady = false;
let sessionReady = false;
const earlySignals = [];
let mode = null; // "waiting" | "calling" | "ended" | "absent"
let finished = false;
let leaving = false;
let durationTimer = null;
let sessions = 0; // session.ready messages seen: more than one means we reconnected
// Users who became accepted while we watched: they are the newcomers and offer to us.
const expectOfferFrom = new Set();

window.callsite = Object.assign(window.callsite || {}, {
  peers,
  get call() {
    return call;
  },
});

// --- labels -------------------------------------------------------------------------------------

function stateLabel(p) {
  switch (p.state) {
    case "inviting":
      return "calling";
    case "received":
      return "ringing";
    case "accepted":
      return "joined";
    case "rejected":
      return p.reason === "busy" ? "busy" : "declined";
    case "timeout":
      return "no answer";
    case "cancelled":
      return "cancelled";
    case "quit":
      return "left";
    default:
      return p.state;
  }
}

function participant(user, c = call) {
  return (c.participants || []).find((p) => p.user === user) || null;
}

function failureText(c) {
  const invitees = c.participants.filter((p) => p.role === "invitee");
  const why = invitees.map((p) => {
    const name = knownName(p.user);
    if (p.state === "rejected" && p.reason === "busy") return `${name} is busy in another call.`;
    if (p.state === "rejected") return `${name} declined.`;
    if (p.state === "timeout") return `${name} did not answer.`;
    return null;
  });
  const lines = why.filter(Boolean);
  switch (c.end_reason) {
    case "unanswered":
      return lines.length ? lines.join(" ") : "Nobody answered.";
    case "caller_offline":
      return "The call was stopped because this browser was offline for too long.";
    case "cancelled":
      return "The call was cancelled.";
    default:
      return "The call ended.";
  }
}

function endedText(c, operator) {
  if (c.end_reason === "ended") {
    return operator && operator !== me ? `${knownName(operator)} ended the call for everyone.` : "The call was ended for everyone.";
  }
  if (c.end_reason === "all_left") return "Everyone else left the call.";
  return failureText(c);
}

// --- media --------------------------------------------------------------------------------------

async function getMedia(type) {
  const video = type === "video" ? { width: { ideal: 640 }, height: { ideal: 480 } } : false;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (err) {
    if (video) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        toast("Your camera is not available: the others will only hear you.", "error");
        return stream;
      } catch {
        /* no microphone either */
      }
    }
    toast("No microphone or camera available: you can see and hear the others only.", "error", 8000);
    return null;
  }
}

async function loadIceServers() {
  try {
    return (await api("GET", "rtc/ice-servers/")).ice_servers || [];
  } catch {
    return [];
  }
}

function play(video) {
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

// --- tiles --------------------------------------------------------------------------------------

function ensureTile(user) {
  if (tiles.has(user)) return tiles.get(user);
  const video = h("video", {
    class: "remote",
    "data-testid": `video-${user}`,
    autoplay: true,
    playsinline: true,
    "aria-label": `${knownName(user)}'s video`,
  });
  const avatar = h("div", { class: "avatar avatar-big", "aria-hidden": "true", text: initial(knownName(user)) });
  const name = h("span", { class: "tile-name", text: knownName(user) });
  const state = h("span", { class: "tile-state", "data-testid": `state-${user}` });
  const conn = h("span", { class: "tile-conn muted", "data-testid": `conn-${user}` });
  const figure = h(
    "figure",
    { class: `tile ${call.type === "audio" ? "audio-only" : ""}`, id: `tile-${user}` },
    video,
    avatar,
    h("figcaption", {}, name, " ", state, " ", conn),
  );
  $("video-grid").append(figure);
  const tile = { figure, video, state, conn, name };
  tiles.set(user, tile);
  displayName(user).then((n) => {
    name.textContent = n;
    avatar.textContent = initial(n);
    video.setAttribute("aria-label", `${n}'s video`);
  });
  return tile;
}

function updateTiles() {
  for (const p of call.participants) {
    if (p.user === me) continue;
    if (!tiles.has(p.user) && !ACTIVE.has(p.state)) continue;
    const tile = ensureTile(p.user);
    tile.state.textContent = stateLabel(p);
    tile.state.dataset.state = p.state;
    tile.figure.dataset.state = p.state;
  }
  const n = [...tiles.values()].filter((t) => t.figure.dataset.state !== "quit").length + 1;
  $("video-grid").dataset.count = String(Math.min(n, 9));
}

// --- screens ------------------------------------------------------------------------------------

function renderWaiting() {
  const invitees = call.participants.filter((p) => p.role === "invitee");
  $("waiting-title").textContent = `Calling ${invitees.map((p) => knownName(p.user)).join(", ")}…`;
  const list = $("callees");
  for (const p of invitees) {
    let li = list.querySelector(`[data-user="${CSS.escape(p.user)}"]`);
    if (!li) {
      li = h(
        "li",
        { "data-user": p.user },
        h("span", { class: "avatar", "aria-hidden": "true", text: initial(knownName(p.user)) }),
        h("span", { class: "callee-name", text: knownName(p.user) }),
        h("span", { class: "callee-state", "data-testid": `callee-state-${p.user}` }),
      );
      list.append(li);
      displayName(p.user).then((n) => (li.querySelector(".callee-name").textContent = n));
    }
    const s = li.querySelector(".callee-state");
    s.textContent = stateLabel(p);
    s.dataset.state = p.state;
    li.dataset.state = p.state;
  }
}

function show(which) {
  $("call-loading").hidden = true;
  $("waiting-page").hidden = which !== "waiting";
  $("calling-page").hidden = which !== "calling";
  $("call-ended").hidden = which !== "ended";
}

function render() {
  const mine = participant(me);
  if (call.state === "ended") return finish(null);
  if (!mine || mine.state !== "accepted") {
    mode = "absent";
    show("ended");
    $("call-ended").querySelector("h1").textContent = RINGING.has(mine && mine.state) ? "Incoming call" : "Not in this call";
    $("call-ended-reason").textContent = RINGING.has(mine && mine.state)
      ? "This call is ringing for you: answer it in the dialog."
      : "You are no longer in this call.";
    return;
  }
  if (call.state === "ringing" && call.inviter === me) {
    mode = "waiting";
    renderWaiting();
    show("waiting");
    return;
  }
  if (mode !== "calling") {
    mode = "calling";
    show("calling");
    startDuration();
  }
  updateTiles();
}

function startDuration() {
  const key = `callsite.started.${callId}`;
  let started = Number(sessionStorage.getItem(key));
  if (!started) {
    started = Date.now();
    sessionStorage.setItem(key, String(started));
  }
  const el = $("call-duration");
  const tick = () => {
    const s = Math.max(0, Math.floor((Date.now() - started) / 1000));
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    el.textContent = hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  };
  tick();
  clearInterval(durationTimer);
  durationTimer = setInterval(tick, 1000);
}

function notice(text) {
  const box = $("call-notices");
  const item = h("p", { class: "notice", text });
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

function stopMedia() {
  for (const peer of peers.values()) peer.close();
  peers.clear();
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  clearInterval(durationTimer);
}

// The call is over for me: tell why, and go home (a failed outgoing call stays to be read).
function finish(operator) {
  if (finished) return;
  finished = true;
  const wasWaiting = mode === "waiting" || (mode === null && call.inviter === me && !call.participants.some((p) => p.role === "invitee" && p.state === "accepted"));
  stopMedia();
  sessionStorage.removeItem(`callsite.started.${callId}`);
  if (wasWaiting) {
    mode = "ended";
    renderWaiting();
    $("waiting-title").textContent = "Call not connected";
    show("waiting");
    const failure = $("waiting-failure");
    failure.textContent = failureText(call);
    failure.hidden = false;
    $("waiting-cancel").hidden = true;
    $("waiting-home").hidden = false;
    $("waiting-home").focus();
    return;
  }
  mode = "ended";
  $("call-ended-reason").textContent = endedText(call, operator);
  show("ended");
  if (!leaving) setTimeout(() => location.assign("/"), RETURN_HOME_MS);
}

// --- peers --------------------------------------------------------------------------------------

function createPeer(user) {
  const peer = new Peer({
    me,
    remote: user,
    iceServers,
    localStream,
    callType: call.type,
    send: (data) => socket.send({ type: "rtc.signal", call_id: callId, to: user, data }),
    onStream: (stream) => {
      const tile = ensureTile(user);
      if (tile.video.srcObject !== stream) tile.video.srcObject = stream;
      play(tile.video);
    },
    onState: (state) => {
      const tile = tiles.get(user);
      if (tile) {
        tile.conn.textContent = state === "connected" ? "" : state;
        tile.figure.dataset.conn = state;
      }
    },
    refreshIceServers: async () => {
      iceServers = await loadIceServers();
      return iceServers;
    },
  });
  peers.set(user, peer);
  ensureTile(user);
  return peer;
}

function closePeer(user) {
  const peer = peers.get(user);
  if (!peer) return;
  peer.close();
  peers.delete(user);
  const tile = tiles.get(user);
  if (tile) tile.video.srcObject = null;
}

function acceptedOthers() {
  return call.participants.filter((p) => p.user !== me && p.state === "accepted").map((p) => p.user);
}

// Bring peer connections in line with the call: a connection to every other accepted
// participant. We offer to those who were accepted before we (re)joined (API.md's offer rule:
// the newcomer offers); those who joined after us offer to us, so we wait for them.
function syncPeers() {
  if (!mediaReady || !sessionReady || finished) return;
  const mine = participant(me);
  if (!mine || mine.state !== "accepted" || call.state === "ended") return;
  const accepted = new Set(acceptedOthers());
  for (const user of [...peers.keys()]) if (!accepted.has(user)) closePeer(user);
  for (const user of accepted) {
    const peer = peers.get(user);
    if (!peer) {
      if (!expectOfferFrom.has(user)) createPeer(user);
    } else if (["failed", "disconnected"].includes(peer.pc.iceConnectionState)) {
      peer.restartIce();
    }
  }
  for (const msg of earlySignals.splice(0)) onSignal(msg);
}

function onSignal(msg) {
  if (!mediaReady || !sessionReady) {
    earlySignals.push(msg);
    return;
  }
  if (finished) return;
  const data = msg.data || {};
  let peer = peers.get(msg.from);
  if (peer && peer.isFromNewSession(data)) {
    // They reloaded their page: start over with a fresh connection.
    closePeer(msg.from);
    peer = null;
  }
  if (!peer) {
    // Only an offer opens a connection; a stray answer or candidate of a closed one is dropped.
    if (!data.description || data.description.type !== "offer") return;
    peer = createPeer(msg.from);
  }
  peer.handle(data);
}

// --- events -------------------------------------------------------------------------------------

// Microsecond timestamps: a REST response can be older than an event that overtook it.
function micros(iso) {
  if (!iso) return 0;
  const frac = /\.(\d+)/.exec(iso);
  return Date.parse(iso) * 1000 + (frac ? Number((frac[1] + "000000").slice(3, 6)) : 0);
}

function version(c) {
  let v = micros(c.ended_at);
  for (const p of c.participants || []) v = Math.max(v, micros(p.updated_at));
  return v;
}

function applyCall(next) {
  if (call.state === "ended" || version(next) < version(call)) return;
  const before = call;
  call = next;
  for (const p of call.participants) {
    const old = participant(p.user, before);
    if (p.user === me || !old || old.state === p.state) continue;
    if (mode === "calling") {
      const name = knownName(p.user);
      if (p.state === "quit") notice(`${name} left the call.`);
      else if (p.state === "accepted") notice(`${name} joined.`);
      else if (p.state === "rejected") notice(p.reason === "busy" ? `${name} is busy.` : `${name} declined.`);
      else if (p.state === "timeout") notice(`${name} did not answer.`);
    }
    if (p.state === "accepted") {
      expectOfferFrom.add(p.user);
      setTimeout(() => {
        expectOfferFrom.delete(p.user);
        const now = participant(p.user);
        if (now && now.state === "accepted" && !peers.has(p.user)) syncPeers();
      }, OFFER_FALLBACK_MS);
    } else {
      expectOfferFrom.delete(p.user);
    }
  }
  if (call.state === "ended") return;
  render();
  syncPeers();
}

// Events of other calls are not ours; while our call is being created we cannot tell yet.
function ours(handler) {
  return (msg) => {
    if (!callId) {
      if (creating) beforeCreated.push([msg, handler]);
      return;
    }
    if (msg.call_id === callId) handler(msg);
  };
}

function showFailure(text) {
  mode = "ended";
  finished = true;
  stopMedia();
  show("waiting");
  $("waiting-title").textContent = "Call not connected";
  const failure = $("waiting-failure");
  failure.textContent = text;
  failure.hidden = false;
  $("waiting-cancel").hidden = true;
  $("waiting-home").hidden = false;
}

async function createCall() {
  creating = true;
  const invitees = call.participants.filter((p) => p.role === "invitee").map((p) => p.user);
  let res;
  try {
    res = await api("POST", "calls/", { invitees, type: call.type, device_id: deviceId });
  } catch (err) {
    creating = false;
    beforeCreated.length = 0;
    const text = {
      busy: "You are already in a call.",
      validation_error: "Could not start the call: nobody to call.",
    }[err.code];
    return showFailure(text || `Could not start the call: ${err.message}`);
  }
  callId = res.call.id;
  root.dataset.callId = callId;
  history.replaceState(null, "", `/calls/${callId}/`);
  creating = false;
  for (const e of res.errors || []) toast(`${e.user}: no such user.`, "error");
  call = res.call;
  if (call.state === "ended") return finish(null);
  render();
  for (const [msg, handler] of beforeCreated.splice(0)) if (msg.call_id === callId) handler(msg);
}

socket.on("session.ready", async (msg) => {
  if (!callId) {
    sessionReady = true;
    sessions += 1;
    if (!creating && !finished) createCall();
    return;
  }
  let fresh = msg.current && msg.current.id === callId ? msg.current : null;
  if (!fresh) {
    try {
      fresh = await api("GET", `calls/${callId}/`);
    } catch {
      fresh = call;
    }
  }
  sessionReady = true;
  sessions += 1;
  // After a reconnect, offers sent to us while we were away are lost: we offer ourselves.
  if (sessions > 1) expectOfferFrom.clear();
  if (fresh.state === "ended") {
    call = fresh;
    finish(null);
    return;
  }
  applyCall(fresh);
});

socket.on(
  "call.user_state_changed",
  ours((msg) => {
    if (finished) return;
    if (msg.user === me && msg.state !== "accepted" && participant(me)?.state === "accepted") {
      call = msg.call;
      toast("You left this call on another device.");
      finish(null);
      return;
    }
    applyCall(msg.call);
  }),
);

socket.on(
  "call.ended",
  ours((msg) => {
    call = msg.call;
    finish(msg.operator);
  }),
);

socket.on("rtc.signal", ours(onSignal));

// --- controls -----------------------------------------------------------------------------------

function setPressed(btn, pressed, onLabel, offLabel) {
  btn.setAttribute("aria-pressed", pressed ? "true" : "false");
  btn.textContent = pressed ? onLabel : offLabel;
}

$("toggle-mic").addEventListener("click", (ev) => {
  const tracks = localStream ? localStream.getAudioTracks() : [];
  if (!tracks.length) return toast("No microphone.", "error");
  const muted = tracks[0].enabled;
  for (const t of tracks) t.enabled = !muted;
  setPressed(ev.currentTarget, muted, "Unmute", "Mute");
  $("local-flags").textContent = muted ? "(muted)" : "";
});

$("toggle-camera").addEventListener("click", (ev) => {
  const tracks = localStream ? localStream.getVideoTracks() : [];
  if (!tracks.length) return toast("No camera.", "error");
  const off = tracks[0].enabled;
  for (const t of tracks) t.enabled = !off;
  setPressed(ev.currentTarget, off, "Camera on", "Camera off");
  $("tile-local").classList.toggle("camera-off", off);
});

$("hangup").addEventListener("click", async () => {
  leaving = true;
  try {
    await api("POST", `calls/${callId}/quit/`, {});
  } catch (err) {
    if (err.code !== "invalid_state" && err.code !== "not_found") {
      leaving = false;
      return toast(`Could not hang up: ${err.message}`, "error");
    }
  }
  stopMedia();
  location.assign("/");
});

$("end-for-all").addEventListener("click", async () => {
  leaving = true;
  try {
    await api("POST", `calls/${callId}/end/`, {});
  } catch (err) {
    if (err.code !== "invalid_state") {
      leaving = false;
      return toast(`Could not end the call: ${err.message}`, "error");
    }
  }
  stopMedia();
  location.assign("/");
});

$("waiting-cancel").addEventListener("click", async () => {
  leaving = true;
  if (!callId) return location.assign("/");
  try {
    await api("POST", `calls/${callId}/cancel/`, {});
  } catch (err) {
    if (err.code !== "invalid_state") {
      leaving = false;
      return toast(`Could not cancel: ${err.message}`, "error");
    }
  }
  stopMedia();
  location.assign("/");
});

// Add people mid-call.
const addDialog = $("add-dialog");
const addList = $("add-list");
const addSearch = $("add-search");

let addSeq = 0;
async function fillAddList() {
  const term = addSearch.value.trim();
  const seq = ++addSeq;
  let page;
  try {
    page = await api("GET", "users/?search=" + encodeURIComponent(term));
    if (seq !== addSeq) return; // a newer search is on its way
  } catch (err) {
    $("add-error").textContent = err.message;
    $("add-error").hidden = false;
    return;
  }
  const checked = new Set([...addList.querySelectorAll("input:checked")].map((i) => i.value));
  addList.replaceChildren();
  for (const u of page.results) {
    rememberName(u.username, u.display_name);
    const p = participant(u.username);
    const inCall = p && ACTIVE.has(p.state);
    const id = `add-${u.username}`;
    addList.append(
      h(
        "li",
        {},
        h("input", {
          type: "checkbox",
          id,
          value: u.username,
          "data-testid": `add-select-${u.username}`,
          disabled: inCall,
          checked: checked.has(u.username),
        }),
        h("label", { for: id }, `${u.display_name} `, h("span", { class: "muted", text: inCall ? "(in the call)" : u.online ? "(online)" : "" })),
      ),
    );
  }
}

$("add-people").addEventListener("click", async () => {
  $("add-error").hidden = true;
  addDialog.showModal();
  await fillAddList();
});
addSearch.addEventListener("input", () => fillAddList());

$("add-form").addEventListener("submit", async (ev) => {
  if (ev.submitter && ev.submitter.value !== "invite") return;
  ev.preventDefault();
  const invitees = [...addList.querySelectorAll("input:checked")].map((i) => i.value);
  if (!invitees.length) {
    $("add-error").textContent = "Choose someone to add.";
    $("add-error").hidden = false;
    return;
  }
  try {
    const res = await api("POST", `calls/${callId}/invite/`, { invitees });
    for (const e of res.errors || []) {
      const why = { already_in_call: "is already in the call", call_full: "cannot join: the call is full", not_found: "does not exist" }[e.reason] || e.reason;
      toast(`${knownName(e.user)} ${why}.`, "error");
    }
    addDialog.close();
    applyCall(res.call);
  } catch (err) {
    $("add-error").textContent = err.message;
    $("add-error").hidden = false;
  }
});

// --- start --------------------------------------------------------------------------------------

render();
Promise.all([getMedia(call.type), loadIceServers()]).then(([stream, servers]) => {
  localStream = stream;
  iceServers = servers;
  const local = $("video-local");
  if (stream) {
    local.srcObject = stream;
    play(local);
    if (!stream.getVideoTracks().length) $("tile-local").classList.add("camera-off");
  } else {
    $("tile-local").classList.add("camera-off");
  }
  if (call.type !== "video") $("tile-local").classList.add("audio-only");
  mediaReady = true;
  if (finished) return stopMedia();
  syncPeers();
});
