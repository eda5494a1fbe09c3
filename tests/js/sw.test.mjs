// The service worker's logic (static/js/sw.js), run against a fake worker scope:
// a registration that keeps notifications, window clients, and a fetch that records requests.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

const SOURCE = readFileSync(new URL("../../static/js/sw.js", import.meta.url), "utf8");
const CALL = "6f1c1f0e-3b7a-4c55-9a43-2f7d2b8a9c01";
const NOW = Date.parse("2026-11-30T12:00:00Z");

class FakeNotification {
  constructor(registration, title, options) {
    this.registration = registration;
    this.title = title;
    Object.assign(this, options);
  }
  close() {
    this.registration.shown = this.registration.shown.filter((n) => n !== this);
  }
}

function fakeScope({ fetchAnswers = [] } = {}) {
  const listeners = new Map();
  const registration = {
    shown: [],
    async showNotification(title, options) {
      // Like a browser: a notification with the same tag replaces the old one.
      this.shown = this.shown.filter((n) => !options.tag || n.tag !== options.tag);
      this.shown.push(new FakeNotification(this, title, options));
    },
    async getNotifications(filter = {}) {
      return this.shown.filter((n) => !filter.tag || n.tag === filter.tag);
    },
  };
  const windows = [];
  const clients = {
    opened: [],
    async matchAll() {
      return windows;
    },
    async openWindow(url) {
      this.opened.push(url);
      const client = fakeClient(url);
      windows.push(client);
      return client;
    },
  };
  const requests = [];
  const self = {
    registration,
    clients,
    windows,
    requests,
    addEventListener(type, fn) {
      listeners.set(type, fn);
    },
    listeners,
    async fetch(url, init = {}) {
      requests.push({ url, ...init });
      const next = fetchAnswers.shift();
      if (next instanceof Error) throw next;
      const { status = 200, body = {} } = next || {};
      return { ok: status >= 200 && status < 300, status, json: async () => body };
    },
  };
  // The worker's script, run as a function of its global scope (same realm: plain objects compare).
  new Function("self", SOURCE)(self);
  return self;
}

function fakeClient(url) {
  return {
    url: "https://callsite.test" + url,
    focused: false,
    messages: [],
    async focus() {
      this.focused = true;
      return this;
    },
    postMessage(msg) {
      this.messages.push(msg);
    },
  };
}

function ring(overrides = {}) {
  return JSON.stringify({
    v: 1,
    type: "call.ring",
    call_id: CALL,
    inviter: { username: "alice", display_name: "Alice Liddell" },
    call_type: "video",
    deadline: "2026-11-30T12:01:00Z",
    ...overrides,
  });
}

function stop(reason = "cancelled") {
  return JSON.stringify({
    v: 1,
    type: "call.ring_stopped",
    call_id: CALL,
    inviter: { username: "alice", display_name: "Alice Liddell" },
    call_type: "video",
    deadline: "2026-11-30T12:01:00Z",
    reason,
  });
}

describe("service worker: payloads", () => {
  test("only version-1 call.ring and call.ring_stopped payloads with a call id are read", () => {
    const { parsePayload } = fakeScope().callsitePush;
    assert.equal(parsePayload(ring()).call_id, CALL);
    assert.equal(parsePayload(stop()).reason, "cancelled");
    for (const bad of [
      "",
      "not json",
      "[]",
      "null",
      ring({ v: 2 }),
      ring({ type: "call.something" }),
      ring({ call_id: "" }),
      ring({ call_id: 42 }),
    ]) {
      assert.equal(parsePayload(bad), null, bad);
    }
  });

  test("a ring becomes a notification tagged with the call id, named after the inviter", () => {
    const { ringNotification, parsePayload } = fakeScope().callsitePush;
    const { title, options } = ringNotification(parsePayload(ring()));
    assert.equal(title, "Alice Liddell");
    assert.equal(options.body, "Incoming video call");
    assert.equal(options.tag, CALL);
    assert.equal(options.requireInteraction, true);
    assert.deepEqual(
      options.actions.map((a) => [a.action, a.title]),
      [
        ["answer", "Answer"],
        ["decline", "Decline"],
      ],
    );
    assert.equal(options.data.url, `/calls/${CALL}/`);
    const voice = ringNotification(parsePayload(ring({ call_type: "audio", inviter: { username: "bob" } })));
    assert.equal(voice.title, "bob");
    assert.equal(voice.options.body, "Incoming voice call");
  });
});

describe("service worker: push", () => {
  test("a ring before its deadline shows; its stop closes it", async () => {
    const sw = fakeScope();
    assert.equal(await sw.callsitePush.handlePush(sw, ring(), NOW), "ring");
    assert.deepEqual(
      sw.registration.shown.map((n) => [n.tag, n.title]),
      [[CALL, "Alice Liddell"]],
    );
    assert.equal(await sw.callsitePush.handlePush(sw, stop("answered_elsewhere"), NOW), "stopped");
    assert.equal(sw.registration.shown.length, 0);
  });

  test("a stop for a missed call (cancelled, timeout, ended) leaves a quiet missed-call notification", async () => {
    for (const reason of ["cancelled", "timeout", "ended"]) {
      const sw = fakeScope();
      await sw.callsitePush.handlePush(sw, ring(), NOW);
      assert.equal(await sw.callsitePush.handlePush(sw, stop(reason), NOW), "missed");
      assert.deepEqual(
        sw.registration.shown.map((n) => [n.tag, n.title, n.body, Boolean(n.requireInteraction)]),
        [[`missed-${CALL}`, "Alice Liddell", "Missed video call", false]],
        reason,
      );
      // Clicking it shows the app (home lists the call), without touching the call.
      assert.equal(await sw.callsitePush.handleClick(sw, sw.registration.shown[0], "", NOW), "home");
      assert.deepEqual(sw.clients.opened, ["/"]);
      assert.equal(sw.requests.length, 0);
    }
    for (const reason of ["answered_elsewhere", "rejected"]) {
      const sw = fakeScope();
      await sw.callsitePush.handlePush(sw, ring(), NOW);
      assert.equal(await sw.callsitePush.handlePush(sw, stop(reason), NOW), "stopped");
      assert.equal(sw.registration.shown.length, 0, reason);
    }
  });

  test("a ring whose deadline has passed never shows", async () => {
    const sw = fakeScope();
    assert.equal(await sw.callsitePush.handlePush(sw, ring({ deadline: "2026-11-30T11:59:59Z" }), NOW), "expired");
    assert.equal(await sw.callsitePush.handlePush(sw, ring({ deadline: "2026-11-30T12:00:00Z" }), NOW), "expired");
    assert.equal(sw.registration.shown.length, 0);
  });

  test("the same ring twice (the fallback push after the page rang) shows once", async () => {
    const sw = fakeScope();
    await sw.callsitePush.handlePush(sw, ring(), NOW);
    await sw.callsitePush.handlePush(sw, ring(), NOW + 3000);
    assert.equal(sw.registration.shown.length, 1);
  });

  test("a stop closes only its own call's ring, and rings past their deadline go at the next push", async () => {
    const sw = fakeScope();
    const other = "0b5c6d7e-0000-4000-8000-000000000002";
    await sw.callsitePush.handlePush(sw, ring(), NOW);
    await sw.callsitePush.handlePush(sw, ring({ call_id: other, deadline: "2026-11-30T12:00:30Z" }), NOW);
    await sw.callsitePush.handlePush(sw, stop("answered_elsewhere"), NOW);
    assert.deepEqual(sw.registration.shown.map((n) => n.tag), [other]);
    // The other call's stop was lost; 31 s later any push clears its ring.
    await sw.callsitePush.handlePush(sw, "garbage", NOW + 31000);
    assert.deepEqual(sw.registration.shown.map((n) => n.tag), [other]);
    await sw.callsitePush.handlePush(sw, stop("answered_elsewhere"), NOW + 31000);
    assert.equal(sw.registration.shown.length, 0);
  });

  test("the worker listens for push and notificationclick", () => {
    const sw = fakeScope();
    for (const type of ["install", "activate", "push", "notificationclick"]) assert.ok(sw.listeners.has(type), type);
  });
});

describe("service worker: notification actions", () => {
  async function shownRing(sw) {
    await sw.callsitePush.handlePush(sw, ring(), NOW);
    return sw.registration.shown[0];
  }

  test("Answer opens the call page and asks it to accept", async () => {
    const sw = fakeScope();
    const n = await shownRing(sw);
    assert.equal(await sw.callsitePush.handleClick(sw, n, "answer", NOW), "answered");
    assert.deepEqual(sw.clients.opened, [`/calls/${CALL}/`]);
    assert.deepEqual(sw.windows[0].messages, [{ type: "callsite.answer", call_id: CALL }]);
    assert.equal(sw.registration.shown.length, 0);
  });

  test("Answer focuses a tab already on the call page instead of opening another", async () => {
    const sw = fakeScope();
    sw.windows.push(fakeClient("/"), fakeClient(`/calls/${CALL}/`));
    const n = await shownRing(sw);
    await sw.callsitePush.handleClick(sw, n, "answer", NOW);
    assert.deepEqual(sw.clients.opened, []);
    assert.equal(sw.windows[1].focused, true);
    assert.equal(sw.windows[0].focused, false);
    assert.deepEqual(sw.windows[1].messages, [{ type: "callsite.answer", call_id: CALL }]);
  });

  test("a click on the notification itself shows the call without accepting it", async () => {
    const sw = fakeScope();
    assert.equal(await sw.callsitePush.handleClick(sw, await shownRing(sw), "", NOW), "shown");
    assert.deepEqual(sw.clients.opened, [`/calls/${CALL}/`]);
    assert.deepEqual(sw.windows[0].messages, []);
  });

  test("Answer with the app open elsewhere focuses that tab, whose dialog rings for the call", async () => {
    const sw = fakeScope();
    sw.windows.push(fakeClient("/profile/"));
    await sw.callsitePush.handleClick(sw, await shownRing(sw), "answer", NOW);
    assert.deepEqual(sw.clients.opened, []);
    assert.equal(sw.windows[0].focused, true);
    assert.deepEqual(sw.windows[0].messages, [{ type: "callsite.answer", call_id: CALL }]);
  });

  test("Decline fetches a CSRF token, then rejects over REST with the session", async () => {
    const sw = fakeScope({ fetchAnswers: [{ body: { csrf_token: "tok" } }, { body: { call: {} } }] });
    const n = await shownRing(sw);
    assert.equal(await sw.callsitePush.handleClick(sw, n, "decline", NOW), "declined");
    assert.equal(sw.requests[0].url, "/csrf-token/");
    const reject = sw.requests[1];
    assert.equal(reject.url, `/api/calls/${CALL}/reject/`);
    assert.equal(reject.method, "POST");
    assert.equal(reject.credentials, "same-origin");
    assert.equal(reject.headers["X-CSRFToken"], "tok");
    assert.deepEqual(sw.clients.opened, []);
    assert.equal(sw.registration.shown.length, 0);
  });

  test("Decline of a call that stopped ringing meanwhile needs nothing more", async () => {
    const sw = fakeScope({ fetchAnswers: [{ body: { csrf_token: "tok" } }, { status: 409 }] });
    assert.equal(await sw.callsitePush.handleClick(sw, await shownRing(sw), "decline", NOW), "not-ringing");
    assert.deepEqual(sw.clients.opened, []);
  });

  test("Decline that cannot reach the server (or is signed out) opens the call page", async () => {
    for (const answers of [[new Error("offline")], [{ status: 403 }], [{ body: { csrf_token: "t" } }, { status: 401 }]]) {
      const sw = fakeScope({ fetchAnswers: answers });
      assert.equal(await sw.callsitePush.handleClick(sw, await shownRing(sw), "decline", NOW), "opened");
      assert.deepEqual(sw.clients.opened, [`/calls/${CALL}/`]);
    }
  });

  test("Decline after the deadline sends nothing", async () => {
    const sw = fakeScope();
    const n = await shownRing(sw);
    assert.equal(await sw.callsitePush.handleClick(sw, n, "decline", NOW + 61000), "expired");
    assert.equal(sw.requests.length, 0);
  });
});
