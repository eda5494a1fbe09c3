// callsite's service worker: rings this browser through Web Push when no tab of the app is open
// (API.md "Push", docs/push.md). Served at /sw.js (calls/views.py service_worker), so its scope is
// the whole site.
//
// A classic script, not a module, so every browser with Web Push can run it. The logic is in
// small functions that take the worker's global scope as an argument; Node runs this file against
// a fake scope (tests/js/sw.test.mjs), and Chromium runs it for real
// (tests/browser/test_push_sw.py).

/* eslint-env serviceworker */
"use strict";

(function (scope) {
  const PAYLOAD_VERSION = 1;
  const RING = "call.ring";
  const STOP = "call.ring_stopped";
  // Declining from a notification: the worker cannot read the page's CSRF cookie, so it asks the
  // server for a token first (calls/views.py csrf_token_view), then rejects like the page does.
  const CSRF_URL = "/csrf-token/";

  function callUrl(callId) {
    return `/calls/${encodeURIComponent(callId)}/`;
  }

  // The payload of API.md "Push": {"v": 1, "type", "call_id", "inviter", "call_type",
  // "deadline", "reason"?, "extended_data"?}. Anything else is null (and ignored).
  function parsePayload(text) {
    if (typeof text !== "string" || !text) return null;
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return null;
    }
    if (!data || typeof data !== "object" || Array.isArray(data)) return null;
    if (data.v !== PAYLOAD_VERSION) return null;
    if (data.type !== RING && data.type !== STOP) return null;
    if (typeof data.call_id !== "string" || !data.call_id) return null;
    return data;
  }

  // Milliseconds since the epoch of the payload's deadline, or null when it has none.
  function deadlineOf(payload) {
    if (!payload || typeof payload.deadline !== "string") return null;
    const t = Date.parse(payload.deadline);
    return Number.isNaN(t) ? null : t;
  }

  // A ring whose deadline has passed never shows: the invitation no longer rings (the server
  // should not have delivered it; this guards against a late push service).
  function isExpired(payload, now) {
    const deadline = deadlineOf(payload);
    return deadline !== null && deadline <= now;
  }

  // A notification about a call from the person in the payload: "<verb> video call" or
  // "<verb> voice call", as the call type says, with its own tag and options.
  function callNotification(payload, verb, options) {
    const inviter = payload.inviter || {};
    const kind = payload.call_type !== "audio" ? "video" : "voice";
    return {
      title: inviter.display_name || inviter.username || "Someone",
      options: { body: `${verb} ${kind} call`, ...options },
    };
  }

  // The notification of a ring: tagged with the call id, so the stop (and a second ring of the
  // same call) finds it, and so the page's own notification of the same call replaces it.
  function ringNotification(payload) {
    return callNotification(payload, "Incoming", {
      tag: payload.call_id,
      requireInteraction: true,
      actions: [
        { action: "answer", title: "Answer" },
        { action: "decline", title: "Decline" },
      ],
      data: {
        call_id: payload.call_id,
        deadline: payload.deadline || null,
        url: callUrl(payload.call_id),
      },
    });
  }

  // A stop that means the person missed the call leaves a quiet "Missed call" in place of the
  // ring, as phones do. It also keeps Chrome from showing its own "updated in the background"
  // notice for a push that showed nothing (userVisibleOnly).
  const MISSED_REASONS = new Set(["cancelled", "timeout", "ended"]);

  function missedNotification(payload) {
    return callNotification(payload, "Missed", {
      tag: `missed-${payload.call_id}`,
      data: { call_id: payload.call_id, missed: true, url: "/" },
    });
  }

  async function closeTagged(registration, tag) {
    const shown = await registration.getNotifications({ tag });
    for (const n of shown) n.close();
    return shown.length;
  }

  // Rings that outlived their deadline (a lost stop push) go away at the next push.
  async function closeExpired(registration, now) {
    for (const n of await registration.getNotifications()) {
      const data = n.data || {};
      if (data.call_id && isExpired(data, now)) n.close();
    }
  }

  // What a push does. Returns what it did ("ring", "expired", "stopped", "missed", "ignored"),
  // for tests.
  async function handlePush(sw, text, now) {
    const registration = sw.registration;
    const payload = parsePayload(text);
    if (!payload) return "ignored";
    await closeExpired(registration, now);
    if (payload.type === STOP) {
      await closeTagged(registration, payload.call_id);
      if (!MISSED_REASONS.has(payload.reason)) return "stopped";
      const { title, options } = missedNotification(payload);
      await registration.showNotification(title, options);
      return "missed";
    }
    if (isExpired(payload, now)) return "expired";
    const { title, options } = ringNotification(payload);
    await registration.showNotification(title, options);
    return "ring";
  }

  // "Answer" (accept = true) and a click on the notification itself: focus a tab already on the
  // call page, else any tab of the app (its incoming dialog rings for the call too), else open
  // the call page. For "Answer", the worker's message asks that tab to accept as soon as the
  // call rings there (a new tab learns of it from session.ready); a plain click leaves the
  // choice to the dialog.
  async function answer(sw, callId, accept = true) {
    const url = callUrl(callId);
    const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
    let client = windows.find((c) => new URL(c.url).pathname === url) || windows[0];
    if (client) {
      client = await client.focus();
    } else {
      client = await sw.clients.openWindow(url);
    }
    if (!client) return "no-window";
    if (!accept) return "shown";
    client.postMessage({ type: "callsite.answer", call_id: callId });
    return "answered";
  }

  // "Decline": reject over REST with the session, as the page would. A call that stopped ringing
  // meanwhile (404, 409) needs nothing more. Otherwise (signed out, offline) the call page opens,
  // where the person can decline by hand.
  async function decline(sw, callId) {
    try {
      const tokenResponse = await sw.fetch(CSRF_URL, { credentials: "same-origin", cache: "no-store" });
      if (!tokenResponse.ok) throw new Error(`csrf token: ${tokenResponse.status}`);
      const { csrf_token: token } = await tokenResponse.json();
      const response = await sw.fetch(`/api/calls/${encodeURIComponent(callId)}/reject/`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
        body: "{}",
      });
      if (response.ok) return "declined";
      if (response.status === 404 || response.status === 409) return "not-ringing";
      throw new Error(`reject: ${response.status}`);
    } catch (err) {
      console.warn("callsite: declining from the notification failed", err);
      await sw.clients.openWindow(callUrl(callId));
      return "opened";
    }
  }

  // A missed call: the home page lists it among the recent calls.
  async function home(sw) {
    const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
    if (windows.length) await windows[0].focus();
    else await sw.clients.openWindow("/");
    return "home";
  }

  async function handleClick(sw, notification, action, now) {
    const data = (notification && notification.data) || {};
    notification.close();
    if (!data.call_id) return "ignored";
    if (data.missed) return home(sw);
    if (action === "decline") {
      return isExpired(data, now) ? "expired" : decline(sw, data.call_id);
    }
    // The call page also tells what became of a call that stopped ringing.
    return answer(sw, data.call_id, action === "answer");
  }

  const api = {
    PAYLOAD_VERSION,
    callUrl,
    parsePayload,
    isExpired,
    ringNotification,
    missedNotification,
    handlePush,
    handleClick,
    answer,
    decline,
  };
  scope.callsitePush = api;

  if (typeof scope.addEventListener !== "function") return;

  scope.addEventListener("install", (event) => {
    event.waitUntil(scope.skipWaiting());
  });
  scope.addEventListener("activate", (event) => {
    event.waitUntil(scope.clients.claim());
  });
  scope.addEventListener("push", (event) => {
    const text = event.data ? event.data.text() : "";
    event.waitUntil(handlePush(scope, text, Date.now()));
  });
  scope.addEventListener("notificationclick", (event) => {
    event.waitUntil(handleClick(scope, event.notification, event.action, Date.now()));
  });
})(self);
