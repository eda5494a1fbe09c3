// A ringtone synthesised with Web Audio: two mixed tones, two seconds on, four off. No asset.

export class Ringtone {
  constructor() {
    this.ctx = null;
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    try {
      this.ctx = this.ctx || new (window.AudioContext || window.webkitAudioContext)();
      // Autoplay rules may keep the context suspended until the user interacts with the page.
      if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    } catch {
      return; // no Web Audio: the dialog still shows
    }
    const ring = () => this.burst();
    ring();
    this.timer = setInterval(ring, 6000);
  }

  burst() {
    const ctx = this.ctx;
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.02;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0, t0);
    gain.connect(ctx.destination);
    for (const freq of [440, 480]) {
      const osc = ctx.createOscillator();
      osc.type = "sine";
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start(t0);
      osc.stop(t0 + 2.05);
    }
    // Short ramps avoid clicks; two beeps inside the two seconds sound like a phone.
    for (const [start, end] of [[0, 0.9], [1.1, 2.0]]) {
      gain.gain.setValueAtTime(0, t0 + start);
      gain.gain.linearRampToValueAtTime(0.15, t0 + start + 0.03);
      gain.gain.setValueAtTime(0.15, t0 + end - 0.03);
      gain.gain.linearRampToValueAtTime(0, t0 + end);
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.ctx) {
      this.ctx.close().catch(() => {});
      this.ctx = null;
    }
  }

  get playing() {
    return this.timer !== null;
  }
}
