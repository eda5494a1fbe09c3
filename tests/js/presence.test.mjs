// Presence subscriptions (static/js/presence.js, API.md "Presence"), with a fake socket that
// records what the page sends and lets the test deliver server frames.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MAX_SUBSCRIBED, PresenceWatch, sameUsers, subscriptionFor } from "../../static/js/presence.js";

class FakeSocket {
  constructor() {
    this.ready = false;
    this.sent = [];
    this.listeners = new Map();
  }
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }
  deliver(msg) {
    if (msg.type === "session.ready") this.ready = true;
    for (const fn of this.listeners.get(msg.type) || []) fn(msg);
  }
  close() {
    this.ready = false;
  }
  send(msg) {
    this.sent.push(msg);
  }
  subscriptions() {
    return this.sent.filter((m) => m.type === "presence.subscribe").map((m) => m.users);
  }
}

function watching(me = "me") {
  const socket = new FakeSocket();
  const seen = [];
  const watch = new PresenceWatch(socket, { me, onChange: (user, online) => seen.push([user, online]) });
  return { socket, seen, watch };
}

describe("the subscription set", () => {
  test("each user once, in order, without me or blanks", () => {
    assert.deepEqual(subscriptionFor(["bob", "me", "", "carol", "bob", null], "me"), ["bob", "carol"]);
  });

  test("is capped at the server's limit of 500", () => {
    const many = Array.from({ length: 700 }, (_, i) => `u${i}`);
    assert.equal(MAX_SUBSCRIBED, 500);
    const chosen = subscriptionFor(["u0", ...many], "me");
    assert.equal(chosen.length, 500);
    assert.equal(chosen[0], "u0");
    assert.equal(chosen[499], "u499");
    assert.deepEqual(subscriptionFor(many, "u1", 3), ["u0", "u2", "u3"]);
  });

  test("sets compare without order", () => {
    assert.ok(sameUsers(["a", "b"], ["b", "a"]));
    assert.ok(!sameUsers(["a", "b"], ["a"]));
    assert.ok(!sameUsers(["a", "b"], ["a", "c"]));
    assert.ok(sameUsers([], []));
  });
});

describe("PresenceWatch", () => {
  test("subscribes once the session is ready, and again after every reconnect", () => {
    const { socket, watch } = watching();
    watch.watch(["bob", "carol"]);
    assert.deepEqual(socket.subscriptions(), [], "nothing is sent (or queued) before session.ready");
    socket.deliver({ type: "session.ready" });
    assert.deepEqual(socket.subscriptions(), [["bob", "carol"]]);
    socket.close();
    socket.deliver({ type: "session.ready" });
    assert.deepEqual(socket.subscriptions(), [["bob", "carol"], ["bob", "carol"]]);
  });

  test("a changed list replaces the subscription; the same list sends nothing", () => {
    const { socket, watch } = watching();
    socket.deliver({ type: "session.ready" });
    watch.watch(["bob", "carol"]);
    watch.watch(["carol", "bob", "carol"]);
    watch.watch(["bob"]);
    watch.watch([]);
    assert.deepEqual(socket.subscriptions(), [["bob", "carol"], ["bob"], []]);
  });

  test("a fresh socket with nobody to watch sends nothing", () => {
    const { socket, watch } = watching();
    watch.watch(["me"]);
    socket.deliver({ type: "session.ready" });
    assert.deepEqual(socket.subscriptions(), []);
  });

  test("the snapshot, then changes, reach the page for watched users only", () => {
    const { socket, seen, watch } = watching();
    socket.deliver({ type: "session.ready" });
    watch.watch(["bob", "carol"]);
    socket.deliver({
      type: "presence.snapshot",
      users: [
        { user: "bob", online: true },
        { user: "carol", online: false },
      ],
    });
    socket.deliver({ type: "presence.changed", user: "carol", online: true });
    socket.deliver({ type: "presence.changed", user: "dave", online: true });
    assert.deepEqual(seen, [
      ["bob", true],
      ["carol", false],
      ["carol", true],
    ]);
  });

  test("a late snapshot of an older subscription only touches users still watched", () => {
    const { socket, seen, watch } = watching();
    socket.deliver({ type: "session.ready" });
    watch.watch(["bob", "carol"]);
    watch.watch(["carol"]);
    socket.deliver({ type: "presence.snapshot", users: [{ user: "bob", online: true }, { user: "carol", online: true }] });
    assert.deepEqual(seen, [["carol", true]]);
  });
});
