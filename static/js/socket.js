// The one WebSocket of this device (API.md "WebSocket /ws/"), reconnecting on its own.
//
// Listeners subscribe by event type ("session.ready", "call.ended", "rtc.signal", ...; "*" gets
// everything, "status" gets "connecting" | "open" | "closed"). After every (re)connect the server
// sends session.ready first, which is how pages resync whatever they missed while offline.

const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 10000;
const MAX_QUEUE = 500;

export class CallSocket {
  constructor(deviceId) {
    this.deviceId = deviceId;
    this.listeners = new Map();
    this.queue = [];
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.stopped = false;
    this.pingTimer = null;
    this.pongTimer = null;
    this.status = "connecting";
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, payload) {
    for (const key of [type, "*"]) {
      for (const fn of this.listeners.get(key) || []) {
        try {
          fn(payload);
        } catch (err) {
          console.error("callsite: listener for", type, "failed", err);
        }
      }
    }
  }

  setStatus(status) {
    this.status = status;
    for (const fn of this.listeners.get("status") || []) fn(status);
  }

  connect() {
    this.stopped = false;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws/?device_id=${encodeURIComponent(this.deviceId)}`;
    this.setStatus("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "pong") {
        clearTimeout(this.pongTimer);
        return;
      }
      if (msg.type === "session.ready") {
        this.ready = true;
        this.attempt = 0;
        this.setStatus("open");
        this.emit(msg.type, msg);
        this.flush();
        return;
      }
      this.emit(msg.type, msg);
    };
    ws.onopen = () => this.startPing();
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ready = false;
      this.stopPing();
      this.ws = null;
      if (this.stopped) return;
      this.setStatus("closed");
      if (ev.code === 4401) {
        // Signed out (or the session expired): reconnecting would not help.
        this.emit("unauthenticated", ev);
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {
      /* onclose follows and reconnects */
    };
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.ws.send(JSON.stringify({ type: "ping" }));
      clearTimeout(this.pongTimer);
      // A socket that silently died (laptop sleep, Wi-Fi switch) never fires onclose by itself.
      this.pongTimer = setTimeout(() => this.drop(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  // Close the current socket as if the network dropped it; it reconnects by itself.
  drop() {
    if (this.ws) this.ws.close(4000, "reconnect");
  }

  close() {
    this.stopped = true;
    this.stopPing();
    if (this.ws) this.ws.close(1000);
  }

  // Messages wait in a queue while the socket is down and go out after the next session.ready.
  send(msg) {
    if (this.ready && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
    } else if (this.queue.length < MAX_QUEUE) {
      this.queue.push(msg);
    }
  }

  flush() {
    const pending = this.queue;
    this.queue = [];
    for (const msg of pending) this.send(msg);
  }
}
