// The call page's buttons: mute, camera, hang up, end for everyone, and cancel while it rings.

import { api } from "../api.js";
import { toast } from "../ui.js";
import { stopMedia } from "./lifecycle.js";

const $ = (id) => document.getElementById(id);

function setPressed(btn, pressed, onLabel, offLabel) {
  btn.setAttribute("aria-pressed", pressed ? "true" : "false");
  btn.textContent = pressed ? onLabel : offLabel;
}

// POST one of the call's actions and go home. `tolerated` are the error codes that mean the
// call is already past that point, so leaving is still right.
async function leaveWith(state, action, tolerated, failure) {
  state.leaving = true;
  try {
    await api("POST", `calls/${state.callId}/${action}/`, {});
  } catch (err) {
    if (!tolerated.includes(err.code)) {
      state.leaving = false;
      return toast(`${failure}: ${err.message}`, "error");
    }
  }
  stopMedia(state);
  location.assign("/");
}

export function wireControls(state) {
  $("toggle-mic").addEventListener("click", (ev) => {
    const tracks = state.localStream ? state.localStream.getAudioTracks() : [];
    if (!tracks.length) return toast("No microphone.", "error");
    const muted = tracks[0].enabled;
    for (const t of tracks) t.enabled = !muted;
    setPressed(ev.currentTarget, muted, "Unmute", "Mute");
    $("local-flags").textContent = muted ? "(muted)" : "";
  });

  $("toggle-camera").addEventListener("click", (ev) => {
    const tracks = state.localStream ? state.localStream.getVideoTracks() : [];
    if (!tracks.length) return toast("No camera.", "error");
    const off = tracks[0].enabled;
    for (const t of tracks) t.enabled = !off;
    setPressed(ev.currentTarget, off, "Camera on", "Camera off");
    $("tile-local").classList.toggle("camera-off", off);
  });

  $("hangup").addEventListener("click", () =>
    leaveWith(state, "quit", ["invalid_state", "not_found"], "Could not hang up"),
  );

  $("end-for-all").addEventListener("click", () =>
    leaveWith(state, "end", ["invalid_state"], "Could not end the call"),
  );

  $("waiting-cancel").addEventListener("click", () => {
    // On /calls/new/ before the call exists there is nothing to cancel.
    if (!state.callId) {
      state.leaving = true;
      return location.assign("/");
    }
    return leaveWith(state, "cancel", ["invalid_state"], "Could not cancel");
  });
}
