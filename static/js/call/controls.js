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

// A button that turns the local stream's audio or video tracks off and on again; `shown` tells
// the page whether they are now off.
function wireTrackToggle(state, id, kind, missing, [onLabel, offLabel], shown) {
  $(id).addEventListener("click", (ev) => {
    const tracks = state.localStream ? state.localStream[`get${kind}Tracks`]() : [];
    if (!tracks.length) return toast(missing, "error");
    const off = tracks[0].enabled;
    for (const t of tracks) t.enabled = !off;
    setPressed(ev.currentTarget, off, onLabel, offLabel);
    shown(off);
  });
}

export function wireControls(state) {
  wireTrackToggle(state, "toggle-mic", "Audio", "No microphone.", ["Unmute", "Mute"], (muted) => {
    $("local-flags").textContent = muted ? "(muted)" : "";
  });
  wireTrackToggle(state, "toggle-camera", "Video", "No camera.", ["Camera on", "Camera off"], (off) => {
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
