// The participant-state sets every page shares (static/js/states.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ACTIVE, RINGING, State, isActive, isRinging, participantOf, rejectedAsBusy } from "../../static/js/states.js";

describe("states", () => {
  test("ringing is inviting and received; active adds accepted", () => {
    assert.deepEqual([...RINGING], ["inviting", "received"]);
    assert.deepEqual([...ACTIVE], ["inviting", "received", "accepted"]);
    assert.ok(isRinging(State.RECEIVED));
    assert.ok(!isRinging(State.ACCEPTED));
    assert.ok(isActive(State.ACCEPTED));
    for (const s of [State.REJECTED, State.CANCELLED, State.TIMEOUT, State.QUIT, null, undefined]) {
      assert.ok(!isActive(s), s);
    }
  });

  test("rejected as busy needs both the state and the reason", () => {
    assert.equal(rejectedAsBusy({ state: "rejected", reason: "busy" }), true);
    assert.equal(rejectedAsBusy({ state: "rejected", reason: null }), false);
    assert.equal(rejectedAsBusy({ state: "rejected" }), false);
    assert.equal(rejectedAsBusy({ state: "timeout", reason: "busy" }), false);
    assert.equal(rejectedAsBusy(null), false);
  });

  test("participantOf finds a user's participation, or null", () => {
    const call = { participants: [{ user: "alice", state: "accepted" }, { user: "bob", state: "received" }] };
    assert.equal(participantOf(call, "bob").state, "received");
    assert.equal(participantOf(call, "carol"), null);
    assert.equal(participantOf({}, "bob"), null);
  });
});
