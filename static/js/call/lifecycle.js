// The call's course on this page: start it (on /calls/new/), follow its snapshots from events and
// resyncs, and finish it. Each function takes the page's one state object (model.createCallState).

import { api, knownName } from "../api.js";
import { deviceId } from "../config.js";
import { State } from "../states.js";
import { toast } from "../ui.js";
import { closeMesh, syncPeers } from "./mesh.js";
import {
  changeNotice,
  changedParticipants,
  createErrorText,
  endedText,
  endsOnWaitingScreen,
  failureText,
  isStale,
  participant,
  screenFor,
} from "./model.js";
import * as view from "./view.js";

const RETURN_HOME_MS = 2500;
// When someone joins, they offer to us (API.md). If no offer arrives, we offer instead;
// perfect negotiation makes a late crossing of offers harmless.
const OFFER_FALLBACK_MS = 6000;

export function stopMedia(state) {
  closeMesh(state);
  view.stopDuration(state);
}

// Show the call as it is now, and watch its participants' presence; a call that has ended
// finishes.
export function refresh(state) {
  const screen = screenFor(state.call, state.me);
  if (screen === "ended") return finish(state, null);
  if (state.presence) state.presence.watch(state.call.participants.map((p) => p.user));
  view.render(state, screen);
}

// The call is over for me: tell why, and go home (a failed outgoing call stays to be read).
export function finish(state, operator) {
  if (state.finished) return;
  state.finished = true;
  const onWaitingScreen = endsOnWaitingScreen(state.mode, state.call, state.me);
  stopMedia(state);
  view.forgetDuration(state);
  state.mode = "ended";
  if (onWaitingScreen) {
    view.renderWaiting(state);
    view.showNotConnected(failureText(state.call, knownName));
    view.focusHome();
    return;
  }
  view.showEnded(endedText(state.call, operator, state.me, knownName));
  if (!state.leaving) setTimeout(() => location.assign("/"), RETURN_HOME_MS);
}

function showFailure(state, text) {
  state.mode = "ended";
  state.finished = true;
  stopMedia(state);
  view.showNotConnected(text);
}

// Take a newer snapshot of the call: notices, who offers to whom, the screen and the mesh.
export function applyCall(state, next) {
  if (isStale(state.call, next)) return;
  const before = state.call;
  state.call = next;
  for (const p of changedParticipants(before, next, state.me)) {
    if (state.mode === "calling") {
      const text = changeNotice(p, knownName(p.user));
      if (text) view.notice(text);
    }
    if (p.state === State.ACCEPTED) {
      state.expectOfferFrom.add(p.user);
      setTimeout(() => {
        state.expectOfferFrom.delete(p.user);
        const now = participant(state.call, p.user);
        if (now && now.state === State.ACCEPTED && !state.peers.has(p.user)) syncPeers(state);
      }, OFFER_FALLBACK_MS);
    } else {
      state.expectOfferFrom.delete(p.user);
    }
  }
  if (state.call.state === "ended") return;
  refresh(state);
  syncPeers(state);
}

// Events of other calls are not ours; while our call is being created we cannot tell yet.
export function ours(state, handler) {
  return (msg) => {
    if (!state.callId) {
      if (state.creating) state.beforeCreated.push([msg, handler]);
      return;
    }
    if (msg.call_id === state.callId) handler(msg);
  };
}

async function createCall(state) {
  state.creating = true;
  const people = state.call.participants.filter((p) => p.role === "invitee").map((p) => p.user);
  let res;
  try {
    res = await api("POST", "calls/", { invitees: people, type: state.call.type, device_id: deviceId });
  } catch (err) {
    state.creating = false;
    state.beforeCreated.length = 0;
    return showFailure(state, createErrorText(err));
  }
  state.callId = res.call.id;
  document.getElementById("call-root").dataset.callId = state.callId;
  history.replaceState(null, "", `/calls/${state.callId}/`);
  state.creating = false;
  for (const e of res.errors || []) toast(`${e.user}: no such user.`, "error");
  state.call = res.call;
  if (state.call.state === "ended") return finish(state, null);
  refresh(state);
  for (const [msg, handler] of state.beforeCreated.splice(0)) if (msg.call_id === state.callId) handler(msg);
}

// session.ready, first and after every reconnect: start the call, or re-read it.
export async function onSessionReady(state, msg) {
  if (!state.callId) {
    state.sessionReady = true;
    state.sessions += 1;
    if (!state.creating && !state.finished) createCall(state);
    return;
  }
  let fresh = msg.current && msg.current.id === state.callId ? msg.current : null;
  if (!fresh) {
    try {
      fresh = await api("GET", `calls/${state.callId}/`);
    } catch {
      fresh = state.call;
    }
  }
  state.sessionReady = true;
  state.sessions += 1;
  // After a reconnect, offers sent to us while we were away are lost: we offer ourselves.
  if (state.sessions > 1) state.expectOfferFrom.clear();
  if (fresh.state === "ended") {
    state.call = fresh;
    finish(state, null);
    return;
  }
  applyCall(state, fresh);
}

export function onUserStateChanged(state, msg) {
  if (state.finished) return;
  const mine = participant(state.call, state.me);
  if (msg.user === state.me && msg.state !== State.ACCEPTED && mine?.state === State.ACCEPTED) {
    state.call = msg.call;
    toast("You left this call on another device.");
    finish(state, null);
    return;
  }
  applyCall(state, msg.call);
}

export function onEnded(state, msg) {
  state.call = msg.call;
  finish(state, msg.operator);
}
