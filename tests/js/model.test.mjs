// The call page's pure model (static/js/call/model.js): labels, screens, versions, the mesh plan.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  acceptedOthers,
  addCandidate,
  changeNotice,
  changedParticipants,
  createCallState,
  createErrorText,
  durationText,
  endedText,
  endsOnWaitingScreen,
  failureText,
  inviteErrorText,
  isStale,
  meshPlan,
  micros,
  opensConnection,
  readyForPeers,
  screenFor,
  stateLabel,
  version,
} from "../../static/js/call/model.js";

const name = (user) => user[0].toUpperCase() + user.slice(1);

function p(user, state, extra = {}) {
  return { user, state, role: "invitee", reason: null, updated_at: null, ...extra };
}

function call(participants, extra = {}) {
  return { id: "c1", type: "video", state: "active", inviter: "alice", end_reason: null, ended_at: null, participants, ...extra };
}

describe("labels", () => {
  test("each participant state has the label the pages show", () => {
    const cases = [
      ["inviting", null, "calling"],
      ["received", null, "ringing"],
      ["accepted", null, "joined"],
      ["rejected", null, "declined"],
      ["rejected", "busy", "busy"],
      ["timeout", null, "no answer"],
      ["cancelled", null, "cancelled"],
      ["quit", null, "left"],
      ["something-new", null, "something-new"],
    ];
    for (const [state, reason, label] of cases) assert.equal(stateLabel({ state, reason }), label, state);
  });

  test("notices name who changed, and say nothing for ringing", () => {
    assert.equal(changeNotice(p("bob", "quit"), "Bob"), "Bob left the call.");
    assert.equal(changeNotice(p("bob", "accepted"), "Bob"), "Bob joined.");
    assert.equal(changeNotice(p("bob", "rejected", { reason: "busy" }), "Bob"), "Bob is busy.");
    assert.equal(changeNotice(p("bob", "rejected"), "Bob"), "Bob declined.");
    assert.equal(changeNotice(p("bob", "timeout"), "Bob"), "Bob did not answer.");
    assert.equal(changeNotice(p("bob", "received"), "Bob"), null);
  });

  test("an unanswered call says why for each invitee", () => {
    const c = call(
      [
        p("alice", "accepted", { role: "inviter" }),
        p("bob", "rejected", { reason: "busy" }),
        p("carol", "rejected"),
        p("dave", "timeout"),
        p("erin", "cancelled"),
      ],
      { state: "ended", end_reason: "unanswered" },
    );
    assert.equal(failureText(c, name), "Bob is busy in another call. Carol declined. Dave did not answer.");
    assert.equal(failureText({ ...c, participants: [p("bob", "cancelled")] }, name), "Nobody answered.");
    assert.equal(failureText({ ...c, end_reason: "cancelled" }, name), "The call was cancelled.");
    assert.match(failureText({ ...c, end_reason: "caller_offline" }, name), /offline for too long/);
    assert.equal(failureText({ ...c, end_reason: "whatever" }, name), "The call ended.");
  });

  test("an ended call names who ended it, unless it was me", () => {
    const c = call([], { state: "ended", end_reason: "ended" });
    assert.equal(endedText(c, "bob", "alice", name), "Bob ended the call for everyone.");
    assert.equal(endedText(c, "alice", "alice", name), "The call was ended for everyone.");
    assert.equal(endedText(c, null, "alice", name), "The call was ended for everyone.");
    assert.equal(endedText({ ...c, end_reason: "all_left" }, null, "alice", name), "Everyone else left the call.");
    assert.equal(endedText({ ...c, end_reason: "cancelled" }, null, "alice", name), "The call was cancelled.");
  });

  test("errors of starting a call and of adding people", () => {
    assert.equal(createErrorText({ code: "busy", message: "x" }), "You are already in a call.");
    assert.equal(createErrorText({ code: "validation_error", message: "x" }), "Could not start the call: nobody to call.");
    assert.equal(createErrorText({ code: "network_error", message: "No server." }), "Could not start the call: No server.");
    assert.equal(inviteErrorText({ reason: "call_full" }, "Bob"), "Bob cannot join: the call is full.");
    assert.equal(inviteErrorText({ reason: "already_in_call" }, "Bob"), "Bob is already in the call.");
    assert.equal(inviteErrorText({ reason: "not_found" }, "zed"), "zed does not exist.");
    assert.equal(inviteErrorText({ reason: "odd" }, "Bob"), "Bob odd.");
  });

  test("the add-people list disables people who are still in the call", () => {
    const c = call([p("alice", "accepted"), p("bob", "received"), p("carol", "quit")]);
    assert.deepEqual(addCandidate(c, "bob", true), { inCall: true, note: "(in the call)" });
    assert.deepEqual(addCandidate(c, "carol", true), { inCall: false, note: "(online)" });
    assert.deepEqual(addCandidate(c, "dave", false), { inCall: false, note: "" });
  });

  test("the duration reads m:ss, then h:mm:ss", () => {
    assert.equal(durationText(-3), "0:00");
    assert.equal(durationText(59.9), "0:59");
    assert.equal(durationText(61), "1:01");
    assert.equal(durationText(3600 + 5 * 60 + 7), "1:05:07");
  });
});

describe("screens", () => {
  test("which screen the call shows me", () => {
    const ringing = call([p("alice", "accepted", { role: "inviter" }), p("bob", "received")], { state: "ringing" });
    assert.equal(screenFor(ringing, "alice"), "waiting");
    assert.equal(screenFor(ringing, "bob"), "incoming");
    assert.equal(screenFor(ringing, "carol"), "absent");
    const active = call([p("alice", "accepted", { role: "inviter" }), p("bob", "accepted"), p("carol", "quit")]);
    assert.equal(screenFor(active, "alice"), "calling");
    assert.equal(screenFor(active, "bob"), "calling");
    assert.equal(screenFor(active, "carol"), "absent");
    assert.equal(screenFor({ ...active, state: "ended" }, "alice"), "ended");
  });

  test("a call that never connected ends on the waiting screen", () => {
    const c = call([p("alice", "accepted", { role: "inviter" }), p("bob", "timeout")], { state: "ended" });
    assert.equal(endsOnWaitingScreen("waiting", c, "bob"), true);
    assert.equal(endsOnWaitingScreen(null, c, "alice"), true);
    assert.equal(endsOnWaitingScreen(null, c, "bob"), false);
    assert.equal(endsOnWaitingScreen("calling", c, "alice"), false);
    const connected = { ...c, participants: [p("alice", "accepted", { role: "inviter" }), p("bob", "quit"), p("carol", "accepted")] };
    assert.equal(endsOnWaitingScreen(null, connected, "alice"), false);
  });
});

describe("versions", () => {
  test("micros keeps the microseconds Date.parse drops", () => {
    assert.equal(micros(null), 0);
    const base = Date.parse("2026-01-01T10:00:00Z") * 1000;
    assert.equal(micros("2026-01-01T10:00:00.123456Z"), base + 123456);
    assert.equal(micros("2026-01-01T10:00:00.5Z"), base + 500000);
    assert.ok(micros("2026-01-01T10:00:00.000002Z") > micros("2026-01-01T10:00:00.000001Z"));
  });

  test("a snapshot's version is its latest change", () => {
    const c = call([p("a", "accepted", { updated_at: "2026-01-01T10:00:01Z" }), p("b", "accepted", { updated_at: "2026-01-01T10:00:03Z" })]);
    assert.equal(version(c), micros("2026-01-01T10:00:03Z"));
    assert.equal(version({ ...c, ended_at: "2026-01-01T10:00:09Z" }), micros("2026-01-01T10:00:09Z"));
  });

  test("an older snapshot, or anything after the end, is stale", () => {
    const older = call([p("bob", "received", { updated_at: "2026-01-01T10:00:00.000001Z" })]);
    const newer = call([p("bob", "accepted", { updated_at: "2026-01-01T10:00:00.000002Z" })]);
    assert.equal(isStale(newer, older), true);
    assert.equal(isStale(older, newer), false);
    assert.equal(isStale(newer, newer), false);
    assert.equal(isStale({ ...older, state: "ended" }, newer), true);
  });

  test("changes are state changes of others who were already there", () => {
    const before = call([p("alice", "accepted"), p("bob", "received"), p("carol", "received")]);
    const after = call([p("alice", "quit"), p("bob", "accepted"), p("carol", "received"), p("dave", "inviting")]);
    assert.deepEqual(
      changedParticipants(before, after, "alice").map((x) => x.user),
      ["bob"],
    );
  });
});

describe("mesh", () => {
  test("peers follow the call only with media, a session and me accepted", () => {
    const state = createCallState({ me: "alice", callId: "c1", call: call([p("alice", "accepted"), p("bob", "accepted")]) });
    assert.equal(readyForPeers(state), false);
    state.mediaReady = true;
    assert.equal(readyForPeers(state), false);
    state.sessionReady = true;
    assert.equal(readyForPeers(state), true);
    state.finished = true;
    assert.equal(readyForPeers(state), false);
    state.finished = false;
    state.call = call([p("alice", "quit"), p("bob", "accepted")]);
    assert.equal(readyForPeers(state), false);
  });

  test("the newcomer offers: connect to those already in, wait for the others", () => {
    const c = call([p("alice", "accepted"), p("bob", "accepted"), p("carol", "accepted"), p("dave", "quit"), p("erin", "received")]);
    assert.deepEqual(acceptedOthers(c, "alice"), ["bob", "carol"]);
    const plan = meshPlan(c, "alice", ["dave", "bob"], new Set(["carol"]));
    assert.deepEqual(plan, { close: ["dave"], create: [], keep: ["bob"] });
    assert.deepEqual(meshPlan(c, "alice", [], new Set()), { close: [], create: ["bob", "carol"], keep: [] });
  });

  test("only an offer opens a connection", () => {
    assert.equal(opensConnection({ description: { type: "offer", sdp: "" } }), true);
    assert.equal(opensConnection({ description: { type: "answer", sdp: "" } }), false);
    assert.equal(opensConnection({ candidate: null }), false);
    assert.equal(opensConnection(undefined), false);
  });

  test("each page gets a state object of its own", () => {
    const a = createCallState({ me: "alice", callId: "", call: call([]) });
    const b = createCallState({ me: "alice", callId: "", call: call([]) });
    a.peers.set("bob", {});
    a.expectOfferFrom.add("bob");
    assert.equal(b.peers.size, 0);
    assert.equal(b.expectOfferFrom.size, 0);
    assert.equal(a.mode, null);
  });
});
