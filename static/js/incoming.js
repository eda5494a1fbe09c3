// The incoming-call dialog, on every page: shows ringing invitations, rings, acknowledges them
// (call.ack), and dismisses itself when the call is cancelled, times out, ends, or is answered
// on another device of the same user.

import { api, displayName, knownName } from "./api.js";
import { me, deviceId } from "./config.js";
import { Ringtone } from "./ringtone.js";
import { ACTIVE, RINGING, participantOf } from "./states.js";
import { toast } from "./ui.js";

function myState(call) {
  const p = participantOf(call, me);
  return p ? p.state : null;
}

// How long after "Answer" on a notification this page still accepts the call when it shows.
const ANSWER_FROM_NOTIFICATION_MS = 15000;

export class IncomingCalls {
  constructor(socket) {
    this.socket = socket;
    this.calls = new Map(); // call id -> Call, every invitation ringing for me
    this.shown = null; // the call id in the dialog
    this.busy = false; // an accept/decline request is in flight
    this.ringtone = new Ringtone();
    this.notification = null;
    this.notifiedTag = null; // the call id of a notification shown through the service worker
    this.answerOnShow = null; // {callId, until}: "Answer" was pressed on that call's notification
    this.dialog = document.getElementById("incoming-dialog");
    this.acceptBtn = document.getElementById("incoming-accept");
    this.declineBtn = document.getElementById("incoming-decline");
    this.acceptBtn.addEventListener("click", () => this.answer("accept"));
    this.declineBtn.addEventListener("click", () => this.answer("reject"));
    // Escape must not silently hide a ringing call: it declines nothing and stays open.
    this.dialog.addEventListener("cancel", (ev) => ev.preventDefault());

    socket.on("session.ready", (msg) => this.resync(msg.incoming || []));
    socket.on("call.invitation_received", (msg) => this.add(msg.call));
    socket.on("call.invitation_cancelled", (msg) => this.remove(msg.call_id, "cancelled"));
    socket.on("call.invitation_timeout", (msg) => this.remove(msg.call_id, "timeout"));
    socket.on("call.ended", (msg) => this.remove(msg.call_id, "ended"));
    socket.on("call.user_state_changed", (msg) => {
      if (msg.user !== me || !this.calls.has(msg.call_id)) return;
      if (RINGING.has(msg.state)) {
        this.calls.set(msg.call_id, msg.call);
        return;
      }
      const elsewhere = msg.device_id && msg.device_id !== deviceId;
      this.remove(msg.call_id, elsewhere ? `${msg.state}-elsewhere` : msg.state);
    });
  }

  resync(incoming) {
    const live = new Set();
    for (const call of incoming) {
      if (RINGING.has(myState(call))) {
        live.add(call.id);
        this.add(call);
      }
    }
    for (const id of [...this.calls.keys()]) if (!live.has(id)) this.remove(id, "gone");
  }

  add(call) {
    if (!call || call.state === "ended" || !RINGING.has(myState(call))) return;
    this.calls.set(call.id, call);
    // "this device shows the invitation": inviting -> received (a no-op when already received).
    this.socket.send({ type: "call.ack", call_id: call.id });
    if (!this.shown) this.show(call);
  }

  remove(callId, why) {
    if (!this.calls.delete(callId)) return;
    if (this.shown !== callId) return;
    this.hide();
    const messages = {
      cancelled: "The caller hung up.",
      timeout: "Missed call.",
      "accepted-elsewhere": "Answered on another device.",
      "rejected-elsewhere": "Declined on another device.",
    };
    if (messages[why]) toast(messages[why]);
    if (why === "cancelled" || why === "timeout") bumpMissed();
    const next = this.calls.values().next();
    if (!next.done) this.show(next.value);
  }

  show(call) {
    this.shown = call.id;
    const kind = call.type === "video" ? "Incoming video call" : "Incoming voice call";
    document.getElementById("incoming-kind").textContent = kind;
    // Whoever invited me (someone may add me to a call that another person started).
    const mine = participantOf(call, me);
    const caller = (mine && mine.invited_by) || call.inviter;
    const callerEl = document.getElementById("incoming-caller");
    const setCaller = (name) => {
      callerEl.textContent = name === caller ? name : `${name} (@${caller})`;
    };
    setCaller(knownName(caller));
    displayName(caller).then((name) => this.shown === call.id && setCaller(name));
    const others = (call.participants || [])
      .filter((p) => p.user !== me && p.user !== caller && ACTIVE.has(p.state))
      .map((p) => p.user);
    for (const user of others) displayName(user).then(() => this.shown === call.id && this.describe(others));
    this.describe(others);
    this.acceptBtn.disabled = this.declineBtn.disabled = false;
    this.acceptBtn.textContent = call.type === "video" ? "Accept video" : "Accept";
    if (!this.dialog.open) this.dialog.showModal();
    this.acceptBtn.focus();
    this.ringtone.start();
    const wanted = this.answerOnShow;
    if (wanted && wanted.callId === call.id && Date.now() < wanted.until) {
      this.answerOnShow = null;
      this.answer("accept");
      return;
    }
    this.notify(call, kind);
  }

  describe(others) {
    const desc = document.getElementById("incoming-desc");
    desc.textContent = others.length ? `Group call with ${others.map(knownName).join(", ")}` : "";
  }

  async notify(call, kind) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    const caller = document.getElementById("incoming-caller").textContent;
    // Through the service worker when there is one (push turned on): the same tag and actions
    // as a pushed ring of this call (static/js/sw.js), so the two never show side by side.
    try {
      const registration = navigator.serviceWorker && (await navigator.serviceWorker.getRegistration("/"));
      if (registration && registration.active) {
        const mine = participantOf(call, me);
        await registration.showNotification(caller, {
          body: kind,
          tag: call.id,
          requireInteraction: true,
          actions: [
            { action: "answer", title: "Answer" },
            { action: "decline", title: "Decline" },
          ],
          data: { call_id: call.id, deadline: (mine && mine.deadline) || null, url: `/calls/${call.id}/` },
        });
        this.notifiedTag = call.id;
        if (this.shown !== call.id) this.closeNotification();
        return;
      }
    } catch {
      /* fall back to a page notification */
    }
    try {
      const n = new Notification(kind, {
        body: `${caller} is calling you`,
        tag: `callsite-${call.id}`,
        requireInteraction: true,
      });
      n.onclick = () => {
        window.focus();
        n.close();
      };
      this.notification = n;
    } catch {
      /* some browsers only allow notifications from a service worker */
    }
  }

  hide() {
    this.shown = null;
    this.ringtone.stop();
    this.closeNotification();
    if (this.dialog.open) this.dialog.close();
  }

  closeNotification() {
    if (this.notification) this.notification.close();
    this.notification = null;
    const tag = this.notifiedTag;
    this.notifiedTag = null;
    if (!tag || !navigator.serviceWorker) return;
    navigator.serviceWorker
      .getRegistration("/")
      .then((r) => r && r.getNotifications({ tag }))
      .then((shown) => (shown || []).forEach((n) => n.close()))
      .catch(() => {});
  }

  // "Answer" on a pushed notification (static/js/sw.js) opens this page and asks it to accept.
  // The call may not be ringing here yet (session.ready is on its way): accept when it shows.
  answerFromNotification(callId) {
    this.answerOnShow = { callId, until: Date.now() + ANSWER_FROM_NOTIFICATION_MS };
    if (this.shown === callId) this.answer("accept");
  }

  async answer(action) {
    const callId = this.shown;
    if (!callId || this.busy) return;
    this.busy = true;
    this.acceptBtn.disabled = this.declineBtn.disabled = true;
    this.ringtone.stop();
    try {
      await api("POST", `calls/${callId}/${action}/`, { device_id: deviceId });
      this.calls.delete(callId);
      this.hide();
      if (action === "accept") location.assign(`/calls/${callId}/`);
    } catch (err) {
      this.calls.delete(callId);
      this.hide();
      toast(err.code === "invalid_state" ? "That call is no longer ringing." : err.message, "error");
    } finally {
      this.busy = false;
    }
  }
}

export function bumpMissed() {
  const badge = document.querySelector("[data-testid=missed-count]");
  if (!badge) return;
  const n = (parseInt(badge.textContent, 10) || 0) + 1;
  badge.textContent = String(n);
  badge.classList.remove("is-empty");
  badge.setAttribute("aria-label", `${n} unseen missed calls`);
}
