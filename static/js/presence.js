// Presence of the people a page shows (API.md "Presence"). A socket hears presence.changed only
// for the users it subscribed to with presence.subscribe; each subscribe replaces the previous
// set and is answered by one presence.snapshot. The server forgets the set when the socket
// closes, so the page subscribes again after every session.ready, and the snapshot then
// replaces the re-read a reconnect needed before.
// Nothing here touches the DOM: Node's test runner imports it (tests/js/presence.test.mjs).

export const MAX_SUBSCRIBED = 500; // the server's limit per socket

// The users to subscribe to: each once, in the order shown, never myself, at most `max`.
export function subscriptionFor(users, me, max = MAX_SUBSCRIBED) {
  const chosen = new Set();
  for (const user of users) {
    if (chosen.size >= max) break;
    if (user && user !== me) chosen.add(user);
  }
  return [...chosen];
}

export function sameUsers(a, b) {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((user) => set.has(user));
}

export class PresenceWatch {
  /**
   * @param {{ready: boolean, on: Function, send: Function}} socket  a CallSocket
   * @param {object} opts
   * @param {string|null} opts.me   my username (my own presence is not watched)
   * @param {(user: string, online: boolean) => void} opts.onChange
   */
  constructor(socket, { me, onChange }) {
    this.socket = socket;
    this.me = me;
    this.onChange = onChange;
    this.users = []; // the subscription the page wants
    this.watched = new Set(this.users);
    this.sent = null; // the subscription this socket has; null: none since it (re)connected
    socket.on("session.ready", () => {
      this.sent = null;
      this.send();
    });
    // A snapshot of an older subscription may arrive after a newer one was sent: only the users
    // still watched are applied, and the newer snapshot follows.
    socket.on("presence.snapshot", (msg) => {
      for (const entry of msg.users || []) this.apply(entry.user, entry.online);
    });
    socket.on("presence.changed", (msg) => this.apply(msg.user, msg.online));
  }

  // Watch these users (and no others) from now on.
  watch(users) {
    this.users = subscriptionFor(users, this.me);
    this.watched = new Set(this.users);
    this.send();
  }

  apply(user, online) {
    if (this.watched.has(user)) this.onChange(user, Boolean(online));
  }

  send() {
    // While the socket is down, the next session.ready sends the subscription (the socket's own
    // queue would send a stale one as well).
    if (!this.socket.ready) return;
    // A new socket watches nobody, so an empty subscription would change nothing.
    const current = this.sent ?? [];
    if (sameUsers(current, this.users)) {
      this.sent = current;
      return;
    }
    this.sent = this.users;
    this.socket.send({ type: "presence.subscribe", users: this.users });
  }
}
