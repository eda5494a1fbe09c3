// The call's mesh: this page's camera and microphone, and one Peer (rtc.js) per other accepted
// participant (see docs/browser-app.md for the mesh's limit). Signals travel as rtc.signal over
// this tab's socket; model.meshPlan decides whom to connect to.

import { api } from "../api.js";
import { socket } from "../app.js";
import { Peer } from "../rtc.js";
import { toast } from "../ui.js";
import { meshPlan, opensConnection, readyForPeers } from "./model.js";
import { clearRemoteStream, ensureTile, showConnection, showRemoteStream } from "./view.js";

export async function getMedia(type) {
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

// TURN credentials come only to participants of a call that has not ended: name the call.
export async function loadIceServers(callId) {
  const query = callId ? "?call_id=" + encodeURIComponent(callId) : "";
  try {
    return (await api("GET", "rtc/ice-servers/" + query)).ice_servers || [];
  } catch {
    return [];
  }
}

function createPeer(state, user) {
  const peer = new Peer({
    me: state.me,
    remote: user,
    iceServers: state.iceServers,
    localStream: state.localStream,
    callType: state.call.type,
    send: (data) => socket.send({ type: "rtc.signal", call_id: state.callId, to: user, data }),
    onStream: (stream) => showRemoteStream(state, user, stream),
    onState: (connectionState) => showConnection(state, user, connectionState),
    // TURN credentials expire: each ICE restart fetches them again.
    refreshIceServers: async () => {
      state.iceServers = await loadIceServers(state.callId);
      return state.iceServers;
    },
  });
  state.peers.set(user, peer);
  ensureTile(state, user);
  return peer;
}

function closePeer(state, user) {
  const peer = state.peers.get(user);
  if (!peer) return;
  peer.close();
  state.peers.delete(user);
  clearRemoteStream(state, user);
}

// Bring the peer connections in line with the call, then handle the signals that waited.
export function syncPeers(state) {
  if (!readyForPeers(state)) return;
  const plan = meshPlan(state.call, state.me, state.peers.keys(), state.expectOfferFrom);
  for (const user of plan.close) closePeer(state, user);
  for (const user of plan.create) createPeer(state, user);
  for (const user of plan.keep) {
    const peer = state.peers.get(user);
    if (["failed", "disconnected"].includes(peer.pc.iceConnectionState)) peer.restartIce();
  }
  for (const msg of state.earlySignals.splice(0)) onSignal(state, msg);
}

export function onSignal(state, msg) {
  if (!state.mediaReady || !state.sessionReady) {
    state.earlySignals.push(msg);
    return;
  }
  if (state.finished) return;
  const data = msg.data || {};
  let peer = state.peers.get(msg.from);
  if (peer && peer.isFromNewSession(data)) {
    // They reloaded their page: start over with a fresh connection.
    closePeer(state, msg.from);
    peer = null;
  }
  if (!peer) {
    if (!opensConnection(data)) return;
    peer = createPeer(state, msg.from);
  }
  peer.handle(data);
}

// Hang up every connection and release the camera and microphone.
export function closeMesh(state) {
  for (const peer of state.peers.values()) peer.close();
  state.peers.clear();
  if (state.localStream) for (const t of state.localStream.getTracks()) t.stop();
}
