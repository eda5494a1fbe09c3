// Web Push for this browser (API.md "Push", docs/push.md): the service worker (/sw.js), the
// browser's push subscription, and its PushDevice on the server. Touches no DOM: the page passes
// in the REST client, its device id and the browser objects, so Node tests run it with fakes
// (tests/js/push.test.mjs).

export const SW_URL = "/sw.js";
const STORAGE_KEY = "callsite.push";
// Headless or offline browsers may never answer a subscribe: give up and say so.
export const SUBSCRIBE_TIMEOUT_MS = 20000;

export const MESSAGES = {
  unsupported: "This browser cannot ring for calls while callsite is closed (no Web Push).",
  denied: "Notifications are blocked for this site. Allow them in the browser's site settings, then try again.",
  dismissed: "Notifications were not allowed, so this browser rings only while callsite is open.",
  not_configured: "This server does not send push notifications (Web Push is not configured).",
  failed: "This browser could not subscribe to its push service",
  error: "The server did not accept this browser's push subscription",
  on: "On: this browser rings for calls even when callsite is closed.",
  off: "Off: calls ring only while a callsite tab is open.",
};

export function result(status, detail) {
  const base = MESSAGES[status] || status;
  return { status, message: detail ? `${base}: ${detail}.` : base };
}

export function pushSupported(nav, win) {
  return Boolean(
    nav && "serviceWorker" in nav && win && "PushManager" in win && "Notification" in win,
  );
}

// The VAPID public key of GET /api/push/config/ (base64url, unpadded) as the bytes
// pushManager.subscribe wants.
export function urlBase64ToUint8Array(text) {
  const base64 = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function sameKey(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

// The body of POST /api/push/devices/ for a PushSubscription's toJSON().
export function deviceRequest(subscription, deviceId) {
  const keys = (subscription && subscription.keys) || {};
  return {
    device_id: deviceId,
    provider: "webpush",
    subscription: { endpoint: subscription.endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } },
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function reason(err) {
  return (err && (err.message || err.name)) || String(err);
}

export class BrowserPush {
  constructor({ api, deviceId, nav, win, storage, subscribeTimeoutMs = SUBSCRIBE_TIMEOUT_MS }) {
    this.api = api;
    this.deviceId = deviceId;
    this.nav = nav;
    this.win = win;
    this.storage = storage;
    this.subscribeTimeoutMs = subscribeTimeoutMs;
  }

  get supported() {
    return pushSupported(this.nav, this.win);
  }

  get permission() {
    return this.win.Notification.permission;
  }

  // The PushDevice this browser registered: {id, device_id, endpoint}, or null.
  get record() {
    try {
      const raw = this.storage.getItem(STORAGE_KEY);
      return raw ? JSON.parse(raw) : null;
    } catch {
      return null;
    }
  }

  set record(value) {
    try {
      if (value) this.storage.setItem(STORAGE_KEY, JSON.stringify(value));
      else this.storage.removeItem(STORAGE_KEY);
    } catch {
      /* private mode: the toggle then shows off after a reload */
    }
  }

  async subscription() {
    const registration = await this.nav.serviceWorker.getRegistration("/");
    return registration ? registration.pushManager.getSubscription() : null;
  }

  // Where this browser stands, without prompting: {status, message}.
  async state() {
    if (!this.supported) return result("unsupported");
    if (this.permission === "denied") return result("denied");
    const record = this.record;
    const sub = this.permission === "granted" ? await this.subscription() : null;
    return sub && record && record.endpoint === sub.endpoint ? result("on") : result("off");
  }

  // Turn push on. Call it from a click: the permission prompt needs a user gesture.
  async enable() {
    if (!this.supported) return result("unsupported");
    const permission = await this.win.Notification.requestPermission();
    if (permission === "denied") return result("denied");
    if (permission !== "granted") return result("dismissed");
    // The worker first: it also shows the page's own ring notifications, pushed or not.
    let registration;
    try {
      await this.nav.serviceWorker.register(SW_URL, { scope: "/" });
      registration = await withTimeout(this.nav.serviceWorker.ready, this.subscribeTimeoutMs, "The service worker");
    } catch (err) {
      return result("failed", reason(err));
    }
    let config;
    try {
      config = await this.api("GET", "push/config/");
    } catch (err) {
      if (err && err.status === 404) return result("not_configured");
      return result("error", reason(err));
    }
    const key = config && config.webpush && config.webpush.vapid_public_key;
    if (!key) return result("not_configured");
    let sub;
    try {
      const applicationServerKey = urlBase64ToUint8Array(key);
      sub = await registration.pushManager.getSubscription();
      if (sub && !sameKey(sub.options && sub.options.applicationServerKey, applicationServerKey)) {
        // The server's VAPID key changed: a subscription for the old key can no longer be used.
        await sub.unsubscribe();
        sub = null;
      }
      if (!sub) {
        sub = await withTimeout(
          registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey }),
          this.subscribeTimeoutMs,
          "The push service",
        );
      }
    } catch (err) {
      return result("failed", reason(err));
    }
    return this.register(sub);
  }

  async register(sub) {
    try {
      const answer = await this.api("POST", "push/devices/", deviceRequest(sub.toJSON(), this.deviceId));
      const device = (answer && answer.device) || {};
      this.record = { id: device.id, device_id: this.deviceId, endpoint: sub.endpoint };
      return result("on");
    } catch (err) {
      return result("error", reason(err));
    }
  }

  // The server rings a push device only while its device_id holds no socket, so the browser's
  // subscription follows the tab that last opened the app: a tab that is open rings in the page.
  // With `verify`, it also asks the server whether it still has the device (it removes dead
  // ones, and a new browser subscription replaces the old) and registers it again if not.
  async refresh({ verify = false } = {}) {
    if (!this.supported || this.permission !== "granted") return null;
    const record = this.record;
    if (!record) return null;
    const sub = await this.subscription();
    if (!sub) {
      this.record = null;
      return result("off");
    }
    if (verify) {
      const renewed = await this.renewForNewKey(sub);
      if (renewed) return renewed;
    }
    if (record.device_id === this.deviceId && record.endpoint === sub.endpoint) {
      if (!verify || (await this.serverHas(record.id))) return result("on");
    }
    return this.register(sub);
  }

  // The operator replaced the VAPID key pair: a subscription made with the old public key can no
  // longer be pushed to. Subscribe again with the new one (permission is already granted).
  async renewForNewKey(sub) {
    let config;
    try {
      config = await this.api("GET", "push/config/");
    } catch {
      return null;
    }
    const key = config && config.webpush && config.webpush.vapid_public_key;
    if (!key) return null;
    const applicationServerKey = urlBase64ToUint8Array(key);
    if (sameKey(sub.options && sub.options.applicationServerKey, applicationServerKey)) return null;
    try {
      const registration = await this.nav.serviceWorker.getRegistration("/");
      await sub.unsubscribe();
      const fresh = await withTimeout(
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey }),
        this.subscribeTimeoutMs,
        "The push service",
      );
      return this.register(fresh);
    } catch (err) {
      this.record = null;
      return result("failed", reason(err));
    }
  }

  async serverHas(id) {
    try {
      const answer = await this.api("GET", "push/devices/");
      const devices = Array.isArray(answer) ? answer : (answer && answer.results) || [];
      return devices.some((d) => d.id === id);
    } catch {
      return true; // cannot tell: leave it as it is
    }
  }

  // Turn push off: the server forgets the device, the browser its subscription.
  async disable() {
    const record = this.record;
    this.record = null;
    if (record && record.id !== undefined && record.id !== null) {
      try {
        await this.api("DELETE", `push/devices/${encodeURIComponent(record.id)}/`);
      } catch (err) {
        if (!err || err.status !== 404) console.warn("callsite: removing the push device failed", err);
      }
    }
    try {
      const sub = this.supported ? await this.subscription() : null;
      if (sub) await sub.unsubscribe();
    } catch (err) {
      console.warn("callsite: unsubscribing failed", err);
    }
    return result("off");
  }
}
