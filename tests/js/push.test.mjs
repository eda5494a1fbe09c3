// Web Push registration (static/js/push.js) against fake browser objects and a fake REST client:
// what the app asks the browser, what it sends the server, and what it tells the person.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { BrowserPush, deviceRequest, urlBase64ToUint8Array } from "../../static/js/push.js";

// A real VAPID-sized public key: 65 bytes, uncompressed P-256 point, base64url without padding.
const KEY_BYTES = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : (i * 37) % 256));
const KEY = Buffer.from(KEY_BYTES).toString("base64url");

class ApiError extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

function fakeSubscription(endpoint, key) {
  return {
    endpoint,
    options: { applicationServerKey: key ? key.buffer : null },
    unsubscribed: false,
    async unsubscribe() {
      this.unsubscribed = true;
      browser.registration.subscription = null;
      return true;
    },
    toJSON() {
      return { endpoint, expirationTime: null, keys: { p256dh: "BPub", auth: "auth16" } };
    },
  };
}

let browser;
function fakeBrowser({ permission = "default", answer = "granted", subscribe = "ok", api = {} } = {}) {
  const calls = [];
  const registration = {
    subscription: null,
    subscribeOptions: null,
    pushManager: {
      async getSubscription() {
        return registration.subscription;
      },
      subscribe(options) {
        registration.subscribeOptions = options;
        if (subscribe === "hang") return new Promise(() => {});
        if (subscribe === "fail") return Promise.reject(new DOMException("Registration failed - push service error", "AbortError"));
        registration.subscription = fakeSubscription("https://push.example/sub/1", new Uint8Array(options.applicationServerKey));
        return Promise.resolve(registration.subscription);
      },
    },
  };
  const Notification = {
    permission,
    async requestPermission() {
      calls.push(["requestPermission"]);
      Notification.permission = answer;
      return answer;
    },
  };
  const nav = {
    serviceWorker: {
      registered: null,
      async register(url, options) {
        this.registered = [url, options];
        return registration;
      },
      get ready() {
        return Promise.resolve(registration);
      },
      async getRegistration() {
        return this.registered ? registration : undefined;
      },
    },
  };
  const win = { Notification, PushManager: function PushManager() {} };
  const store = new Map();
  const storage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => store.set(k, v),
    removeItem: (k) => store.delete(k),
  };
  const answers = {
    "GET push/config/": { providers: ["webpush"], webpush: { vapid_public_key: KEY } },
    "POST push/devices/": { device: { id: 7, device_id: "web-1", provider: "webpush" } },
    "DELETE push/devices/7/": null,
    ...api,
  };
  async function fakeApi(method, path, body) {
    calls.push([method, path, body]);
    const a = answers[`${method} ${path}`];
    if (a instanceof Error) throw a;
    return a;
  }
  browser = { calls, registration, nav, win, storage, Notification };
  const push = new BrowserPush({ api: fakeApi, deviceId: "web-1", nav, win, storage, subscribeTimeoutMs: 50 });
  return { push, ...browser };
}

describe("push registration", () => {
  test("the VAPID key decodes to its 65 bytes", () => {
    assert.deepEqual([...urlBase64ToUint8Array(KEY)], [...KEY_BYTES]);
  });

  test("the device request carries provider webpush, the subscription and the tab's device id", () => {
    const body = deviceRequest(fakeSubscription("https://push.example/s").toJSON(), "web-abc");
    assert.deepEqual(body, {
      device_id: "web-abc",
      provider: "webpush",
      subscription: { endpoint: "https://push.example/s", keys: { p256dh: "BPub", auth: "auth16" } },
    });
  });

  test("turning on: permission, the worker at /sw.js, the config's key, subscribe, then POST", async () => {
    const b = fakeBrowser();
    const r = await b.push.enable();
    assert.equal(r.status, "on", r.message);
    assert.deepEqual(b.nav.serviceWorker.registered, ["/sw.js", { scope: "/" }]);
    assert.equal(b.registration.subscribeOptions.userVisibleOnly, true);
    assert.deepEqual([...new Uint8Array(b.registration.subscribeOptions.applicationServerKey)], [...KEY_BYTES]);
    const post = b.calls.find((c) => c[0] === "POST");
    assert.deepEqual(post, ["POST", "push/devices/", deviceRequest(b.registration.subscription.toJSON(), "web-1")]);
    assert.equal(b.calls[0][0], "requestPermission");
    assert.equal((await b.push.state()).status, "on");
  });

  test("push not configured on the server (webpush null, or no push API yet): a message", async () => {
    for (const config of [{ providers: ["fcm"], webpush: null }, new ApiError(404, "not_found")]) {
      const b = fakeBrowser({ api: { "GET push/config/": config } });
      const r = await b.push.enable();
      assert.equal(r.status, "not_configured");
      assert.match(r.message, /not configured/);
      assert.equal(b.registration.subscribeOptions, null);
      assert.equal((await b.push.state()).status, "off");
    }
  });

  test("a subscribe that fails or never answers (headless Chromium) is a message, not an exception", async () => {
    for (const subscribe of ["fail", "hang"]) {
      const b = fakeBrowser({ subscribe });
      const r = await b.push.enable();
      assert.equal(r.status, "failed");
      assert.match(r.message, /could not subscribe to its push service: .+\.$/);
      assert.equal(b.calls.filter((c) => c[0] === "POST").length, 0);
    }
  });

  test("permission refused or dismissed: nothing is registered", async () => {
    for (const [answer, status] of [
      ["denied", "denied"],
      ["default", "dismissed"],
    ]) {
      const b = fakeBrowser({ answer });
      assert.equal((await b.push.enable()).status, status);
      assert.equal(b.nav.serviceWorker.registered, null);
    }
    assert.equal((await fakeBrowser({ permission: "denied" }).push.state()).status, "denied");
  });

  test("a browser without Web Push says so", async () => {
    const b = fakeBrowser();
    const push = new BrowserPush({ api: async () => null, deviceId: "w", nav: {}, win: {}, storage: b.storage });
    assert.equal((await push.state()).status, "unsupported");
    assert.equal((await push.enable()).status, "unsupported");
  });

  test("the server refusing the device is a message", async () => {
    const b = fakeBrowser({ api: { "POST push/devices/": new ApiError(400, "validation_error") } });
    const r = await b.push.enable();
    assert.equal(r.status, "error");
    assert.match(r.message, /validation_error/);
  });

  test("turning off deletes the server's device and unsubscribes", async () => {
    const b = fakeBrowser();
    await b.push.enable();
    const sub = b.registration.subscription;
    assert.equal((await b.push.disable()).status, "off");
    assert.ok(b.calls.some((c) => c[0] === "DELETE" && c[1] === "push/devices/7/"));
    assert.equal(sub.unsubscribed, true);
    assert.equal(b.push.record, null);
  });

  test("a new tab re-registers the subscription under its own device id; the same tab does not", async () => {
    const b = fakeBrowser();
    await b.push.enable();
    assert.equal((await b.push.refresh()).status, "on");
    assert.equal(b.calls.filter((c) => c[0] === "POST").length, 1);
    const tab2 = new BrowserPush({ api: b.push.api, deviceId: "web-2", nav: b.nav, win: b.win, storage: b.storage });
    assert.equal((await tab2.refresh()).status, "on");
    const posts = b.calls.filter((c) => c[0] === "POST");
    assert.equal(posts.length, 2);
    assert.equal(posts[1][2].device_id, "web-2");
    assert.equal(tab2.record.device_id, "web-2");
  });

  test("home asks the server, and registers again when it no longer has the device", async () => {
    const b = fakeBrowser({ api: { "GET push/devices/": [{ id: 7, device_id: "web-1" }] } });
    await b.push.enable();
    assert.equal((await b.push.refresh({ verify: true })).status, "on");
    assert.equal(b.calls.filter((c) => c[0] === "POST").length, 1);
    // A 410 from the push service removed it on the server.
    const again = new BrowserPush({
      api: async (method, path, body) => {
        b.calls.push([method, path, body]);
        if (method === "GET") return [];
        return { device: { id: 8 } };
      },
      deviceId: "web-1",
      nav: b.nav,
      win: b.win,
      storage: b.storage,
    });
    assert.equal((await again.refresh({ verify: true })).status, "on");
    assert.equal(b.calls.filter((c) => c[0] === "POST").length, 2);
    assert.equal(again.record.id, 8);
  });

  test("home subscribes again when the server's VAPID key changed", async () => {
    const b = fakeBrowser({ api: { "GET push/devices/": [{ id: 7 }] } });
    await b.push.enable();
    const old = b.registration.subscription;
    const newKey = Buffer.from(Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : i))).toString("base64url");
    const rotated = new BrowserPush({
      api: async (method, path, body) => {
        b.calls.push([method, path, body]);
        if (path === "push/config/") return { providers: ["webpush"], webpush: { vapid_public_key: newKey } };
        if (method === "GET") return [{ id: 7 }];
        return { device: { id: 9 } };
      },
      deviceId: "web-1",
      nav: b.nav,
      win: b.win,
      storage: b.storage,
    });
    assert.equal((await rotated.refresh({ verify: true })).status, "on");
    assert.equal(old.unsubscribed, true);
    assert.deepEqual([...new Uint8Array(b.registration.subscribeOptions.applicationServerKey)], [...urlBase64ToUint8Array(newKey)]);
    assert.equal(rotated.record.id, 9);
  });

  test("a changed VAPID key replaces the old subscription", async () => {
    const b = fakeBrowser();
    b.nav.serviceWorker.registered = ["/sw.js", {}];
    const old = fakeSubscription("https://push.example/old", new Uint8Array(65));
    b.registration.subscription = old;
    assert.equal((await b.push.enable()).status, "on");
    assert.equal(old.unsubscribed, true);
    assert.equal(b.registration.subscription.endpoint, "https://push.example/sub/1");
  });
});
