// Participant states (API.md "Participant"), defined once for every page. They mirror the
// server's ParticipantState and its RINGING_STATES / ACTIVE_STATES (invitations/models.py).
// Pure: no DOM, so Node's test runner imports it (tests/js/). Treat the sets as read-only.

export const State = Object.freeze({
  INVITING: "inviting",
  RECEIVED: "received",
  ACCEPTED: "accepted",
  REJECTED: "rejected",
  CANCELLED: "cancelled",
  TIMEOUT: "timeout",
  QUIT: "quit",
});

// Still ringing: invited, and shown (or not yet) on one of the invitee's devices.
export const RINGING = new Set([State.INVITING, State.RECEIVED]);
// Ringing or talking: the participant takes part in the call.
export const ACTIVE = new Set([State.INVITING, State.RECEIVED, State.ACCEPTED]);

export function isRinging(state) {
  return RINGING.has(state);
}

export function isActive(state) {
  return ACTIVE.has(state);
}

// The server rejects an invitee who is in another call with reason "busy": they never rang.
export function rejectedAsBusy(p) {
  return Boolean(p) && p.state === State.REJECTED && p.reason === "busy";
}

// A user's participation in a call snapshot, or null when they are not in it.
export function participantOf(call, user) {
  return (call.participants || []).find((p) => p.user === user) || null;
}
