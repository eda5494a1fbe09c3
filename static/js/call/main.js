// The call page (templates/calls/call.html): the waiting screen while an outgoing call rings,
// then the calling screen with a mesh of peer connections. This entry makes the page's one state
// object and wires the modules to it:
//   model.js  state, labels, versions (pure)    view.js      tiles and screens
//   mesh.js   media, peers and signals          lifecycle.js start, follow and finish the call
//   controls.js  the call's buttons             add-people.js  the add-people dialog

import { rememberName } from "../api.js";
import { socket } from "../app.js";
import { me } from "../config.js";
import { PresenceWatch } from "../presence.js";
import { wireAddPeople } from "./add-people.js";
import { wireControls } from "./controls.js";
import { onEnded, onSessionReady, onUserStateChanged, ours, refresh, stopMedia } from "./lifecycle.js";
import { getMedia, loadIceServers, onSignal, syncPeers } from "./mesh.js";
import { createCallState } from "./model.js";
import { showLocalMedia, showPresence } from "./view.js";

const state = createCallState({
  me,
  callId: document.getElementById("call-root").dataset.callId,
  call: JSON.parse(document.getElementById("call-data").textContent),
});
for (const [user, name] of Object.entries(JSON.parse(document.getElementById("call-names").textContent))) {
  rememberName(user, name);
}

// For tests and debugging in the console (docs/browser-app.md).
window.callsite = Object.assign(window.callsite || {}, {
  peers: state.peers,
  get call() {
    return state.call;
  },
});

// Registered before app.js's socket delivers its first message (module evaluation is synchronous).
socket.on("session.ready", (msg) => onSessionReady(state, msg));
socket.on("call.user_state_changed", ours(state, (msg) => onUserStateChanged(state, msg)));
socket.on("call.ended", ours(state, (msg) => onEnded(state, msg)));
socket.on("rtc.signal", ours(state, (msg) => onSignal(state, msg)));

state.presence = new PresenceWatch(socket, { me, onChange: (user, online) => showPresence(state, user, online) });

wireControls(state);
wireAddPeople(state);

refresh(state);
Promise.all([getMedia(state.call.type), loadIceServers(state.callId)]).then(([stream, servers]) => {
  state.localStream = stream;
  state.iceServers = servers;
  showLocalMedia(state, stream);
  state.mediaReady = true;
  if (state.finished) return stopMedia(state);
  syncPeers(state);
});
