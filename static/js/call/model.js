// The call page's model: its one state object, the labels it shows, and the rules that decide
// what to show and whom to connect to. Pure: no DOM, no socket, no timers, so Node's test runner
// imports it (tests/js/model.test.mjs). The other call/ modules act on what it decides.

import { ACTIVE, RINGING, State, participantOf, rejectedAsBusy } from "../states.js";

// The one mutable state of the call page. Every call/ module reads and writes this object (the
// entry module makes it); nothing else in call/ keeps state of its own.
export function createCallState({ me, callId, call }) {
  return {
    me,
    // Empty on /calls/new/: the page starts the call itself once its socket is up.
    callId: callId || "",
    creating: false,
    beforeCreated: [], // [msg, handler] that arrive while we wait for POST /api/calls/
    call,
    peers: new Map(), // username -> Peer
    tiles: new Map(), // username -> {figure, video, state, conn, name}
    localStream: null,
    iceServers: [],
    mediaReady: false,
    sessionReady: false,
    earlySignals: [], // rtc.signal messages that arrive before media and session are ready
    mode: null, // "waiting" | "calling" | "ended" | "absent"
    finished: false,
    leaving: false,
    durationTimer: null,
    sessions: 0, // session.ready messages seen: more than one means we reconnected
    // Users who became accepted while we watched: they are the newcomers and offer to us.
    expectOfferFrom: new Set(),
    addSearchSeq: 0, // the latest search of the add-people dialog; older answers are dropped
    presence: null, // the PresenceWatch (presence.js) of the call's participants
    online: new Map(), // username -> online, as the presence snapshot and changes say
  };
}

// --- participants -------------------------------------------------------------------------------

export const participant = participantOf;

export function invitees(call) {
  return call.participants.filter((p) => p.role === "invitee");
}

export function acceptedOthers(call, me) {
  return call.participants.filter((p) => p.user !== me && p.state === State.ACCEPTED).map((p) => p.user);
}

// The participants (other than me) whose state differs between two snapshots of the call.
// Someone new in `after` is not a change: they show up through the tiles, with no notice.
export function changedParticipants(before, after, me) {
  return after.participants.filter((p) => {
    const old = participant(before, p.user);
    return p.user !== me && old !== null && old.state !== p.state;
  });
}

// --- labels -------------------------------------------------------------------------------------

const LABELS = {
  [State.INVITING]: "calling",
  [State.RECEIVED]: "ringing",
  [State.ACCEPTED]: "joined",
  [State.TIMEOUT]: "no answer",
  [State.CANCELLED]: "cancelled",
  [State.QUIT]: "left",
};

export function stateLabel(p) {
  if (p.state === State.REJECTED) return rejectedAsBusy(p) ? "busy" : "declined";
  return Object.hasOwn(LABELS, p.state) ? LABELS[p.state] : p.state;
}

// The notice the calling screen shows when someone's state changes, or null.
export function changeNotice(p, name) {
  if (p.state === State.QUIT) return `${name} left the call.`;
  if (p.state === State.ACCEPTED) return `${name} joined.`;
  if (p.state === State.REJECTED) return rejectedAsBusy(p) ? `${name} is busy.` : `${name} declined.`;
  if (p.state === State.TIMEOUT) return `${name} did not answer.`;
  return null;
}

// Why a call that never connected failed; nameOf maps a username to a display name.
export function failureText(call, nameOf) {
  const lines = invitees(call)
    .map((p) => {
      const name = nameOf(p.user);
      if (rejectedAsBusy(p)) return `${name} is busy in another call.`;
      if (p.state === State.REJECTED) return `${name} declined.`;
      if (p.state === State.TIMEOUT) return `${name} did not answer.`;
      return null;
    })
    .filter(Boolean);
  switch (call.end_reason) {
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

export function endedText(call, operator, me, nameOf) {
  if (call.end_reason === "ended") {
    return operator && operator !== me ? `${nameOf(operator)} ended the call for everyone.` : "The call was ended for everyone.";
  }
  if (call.end_reason === "all_left") return "Everyone else left the call.";
  return failureText(call, nameOf);
}

export function createErrorText(err) {
  const text = {
    busy: "You are already in a call.",
    validation_error: "Could not start the call: nobody to call.",
  }[err.code];
  return text || `Could not start the call: ${err.message}`;
}

// One line per invitee the server did not add (the `errors` of POST /calls/{id}/invite/).
export function inviteErrorText(error, name) {
  const why =
    { already_in_call: "is already in the call", call_full: "cannot join: the call is full", not_found: "does not exist" }[
      error.reason
    ] || error.reason;
  return `${name} ${why}.`;
}

// How the add-people dialog lists a user: people already in the call cannot be picked again.
export function addCandidate(call, user, online) {
  const p = participant(call, user);
  const inCall = Boolean(p) && ACTIVE.has(p.state);
  return { inCall, note: inCall ? "(in the call)" : online ? "(online)" : "" };
}

export function durationText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

// --- screens ------------------------------------------------------------------------------------

// Which screen the call shows me: "ended", "incoming" (it rings for me: answer in the dialog),
// "absent" (I am not in it), "waiting" (my outgoing call rings) or "calling".
export function screenFor(call, me) {
  if (call.state === "ended") return "ended";
  const mine = participant(call, me);
  if (!mine || mine.state !== State.ACCEPTED) return mine && RINGING.has(mine.state) ? "incoming" : "absent";
  if (call.state === "ringing" && call.inviter === me) return "waiting";
  return "calling";
}

// At the end, a call that never connected stays on the waiting screen to tell why.
export function endsOnWaitingScreen(mode, call, me) {
  if (mode === "waiting") return true;
  return (
    mode === null &&
    call.inviter === me &&
    !call.participants.some((p) => p.role === "invitee" && p.state === State.ACCEPTED)
  );
}

// --- versions -----------------------------------------------------------------------------------

// Microsecond timestamps: a REST response can be older than an event that overtook it, and
// Date.parse alone keeps only milliseconds.
export function micros(iso) {
  if (!iso) return 0;
  const frac = /\.(\d+)/.exec(iso);
  return Date.parse(iso) * 1000 + (frac ? Number((frac[1] + "000000").slice(3, 6)) : 0);
}

export function version(call) {
  let v = micros(call.ended_at);
  for (const p of call.participants || []) v = Math.max(v, micros(p.updated_at));
  return v;
}

// An ended call never comes back, and an older snapshot never replaces a newer one.
export function isStale(current, next) {
  return current.state === "ended" || version(next) < version(current);
}

// --- mesh ---------------------------------------------------------------------------------------

// Peer connections follow the call only once we have media and a session, and only while we
// are in it.
export function readyForPeers(state) {
  if (!state.mediaReady || !state.sessionReady || state.finished) return false;
  const mine = participant(state.call, state.me);
  return Boolean(mine) && mine.state === State.ACCEPTED && state.call.state !== "ended";
}

// A connection to every other accepted participant (API.md's offer rule: the newcomer offers).
// We offer to those who were accepted before we (re)joined; those who joined after us offer to
// us (expectOfferFrom), so we wait for them. `keep` are the connections to check for health.
export function meshPlan(call, me, connected, expectOfferFrom) {
  const accepted = acceptedOthers(call, me);
  const wanted = new Set(accepted);
  const have = new Set(connected);
  return {
    close: [...have].filter((user) => !wanted.has(user)),
    create: accepted.filter((user) => !have.has(user) && !expectOfferFrom.has(user)),
    keep: accepted.filter((user) => have.has(user)),
  };
}

// Only an offer opens a connection; a stray answer or candidate of a closed one is dropped.
export function opensConnection(data) {
  return Boolean(data && data.description && data.description.type === "offer");
}
