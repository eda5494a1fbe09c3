// One RTCPeerConnection per remote participant, with the "perfect negotiation" pattern
// (API.md "WebRTC over rtc.signal"): either side may (re)negotiate; when two offers cross, the
// polite peer (the username that sorts first) rolls back and answers, the impolite one ignores
// the other's offer. Signals travel as rtc.signal `data`: {description} or {candidate}.

const DISCONNECTED_GRACE_MS = 4000;

function fingerprint(sdp) {
  const m = /a=fingerprint:\S+ (\S+)/.exec(sdp || "");
  return m ? m[1] : null;
}

export class Peer {
  /**
   * @param {object} opts
   * @param {string} opts.me          my username
   * @param {string} opts.remote      their username
   * @param {RTCIceServer[]} opts.iceServers
   * @param {MediaStream|null} opts.localStream
   * @param {string} opts.callType    "video" | "audio"
   * @param {(data: object) => void} opts.send   sends rtc.signal data to the remote
   * @param {(stream: MediaStream) => void} opts.onStream
   * @param {(state: string) => void} opts.onState
   * @param {() => Promise<RTCIceServer[]>} [opts.refreshIceServers]
   */
  constructor(opts) {
    Object.assign(this, opts);
    // Code-unit order, which matches Python's str ordering for the usernames Django allows.
    this.polite = this.me < this.remote;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.closed = false;
    this.restarts = 0;
    this.disconnectTimer = null;
    this.queue = Promise.resolve();
    this.remoteStream = new MediaStream();

    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [] });
    this.pc = pc;
    const tracks = this.localStream ? this.localStream.getTracks() : [];
    for (const track of tracks) pc.addTrack(track, this.localStream);
    // Without a microphone or camera we still want to receive theirs.
    if (!tracks.some((t) => t.kind === "audio")) pc.addTransceiver("audio", { direction: "recvonly" });
    if (this.callType === "video" && !tracks.some((t) => t.kind === "video")) {
      pc.addTransceiver("video", { direction: "recvonly" });
    }

    pc.ontrack = ({ track, streams }) => {
      const stream = streams[0];
      if (stream) this.remoteStream = stream;
      else if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      this.onStream(this.remoteStream);
    };
    pc.onicecandidate = ({ candidate }) => {
      this.send({ candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.send({ description: pc.localDescription.toJSON() });
      } catch (err) {
        console.warn("callsite: offer to", this.remote, "failed", err);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => this.connectionChanged();
    pc.oniceconnectionstatechange = () => this.connectionChanged();
  }

  connectionChanged() {
    if (this.closed) return;
    const pc = this.pc;
    this.onState(pc.connectionState);
    if (pc.connectionState === "connected") {
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = null;
      this.restarts = 0;
    } else if (pc.connectionState === "failed" || pc.iceConnectionState === "failed") {
      this.restartIce();
    } else if (pc.iceConnectionState === "disconnected" && !this.disconnectTimer) {
      // "disconnected" often heals by itself (a lost packet burst); restart only if it lasts.
      this.disconnectTimer = setTimeout(() => {
        this.disconnectTimer = null;
        if (!this.closed && ["disconnected", "failed"].includes(this.pc.iceConnectionState)) this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    }
  }

  // ICE restart: new ICE credentials, renegotiated through onnegotiationneeded.
  // TURN credentials are short-lived, so fetch fresh ICE servers first when we can.
  async restartIce() {
    if (this.closed || this.restarting) return;
    this.restarting = true;
    try {
      this.restarts += 1;
      if (this.refreshIceServers) {
        const servers = await this.refreshIceServers();
        if (this.closed) return;
        this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: servers });
      }
      this.pc.restartIce();
    } catch (err) {
      console.warn("callsite: ICE restart with", this.remote, "failed", err);
    } finally {
      this.restarting = false;
    }
  }

  // Signals are handled one at a time, in arrival order (a candidate needs its description).
  handle(data) {
    this.queue = this.queue.then(() => this.apply(data)).catch((err) => {
      console.warn("callsite: signal from", this.remote, "failed", err);
    });
    return this.queue;
  }

  // True when an offer comes from a restarted peer (a reloaded page): a new DTLS identity cannot
  // be renegotiated into the old connection; the caller replaces this Peer with a fresh one.
  isFromNewSession(data) {
    const d = data && data.description;
    if (!d || d.type !== "offer" || !this.pc.currentRemoteDescription) return false;
    const before = fingerprint(this.pc.currentRemoteDescription.sdp);
    const now = fingerprint(d.sdp);
    return Boolean(before && now && before !== now);
  }

  async apply(data) {
    if (this.closed) return;
    const pc = this.pc;
    if (data.description) {
      const description = data.description;
      const readyForOffer =
        !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswer);
      const collision = description.type === "offer" && !readyForOffer;
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswer = description.type === "answer";
      try {
        // In have-local-offer this rolls back our own offer first (implicit rollback).
        await pc.setRemoteDescription(description);
      } finally {
        this.settingRemoteAnswer = false;
      }
      if (description.type === "offer") {
        await pc.setLocalDescription();
        this.send({ description: pc.localDescription.toJSON() });
      }
    } else if ("candidate" in data) {
      if (!data.candidate || !data.candidate.candidate) return; // end of candidates: nothing to do
      try {
        await pc.addIceCandidate(data.candidate);
      } catch (err) {
        if (!this.ignoreOffer) throw err;
      }
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.disconnectTimer);
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
  }
}
