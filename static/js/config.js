// Page configuration rendered by the server, and this tab's device id.

const el = document.getElementById("callsite-config");
export const config = el ? JSON.parse(el.textContent) : {};
export const me = config.me || null;

// One device per browser tab: the id survives navigation and reloads inside the tab (so the
// call page reconnects as the device that accepted) but differs between tabs and windows.
const KEY = "callsite.device_id";
function makeDeviceId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
let device = null;
try {
  device = sessionStorage.getItem(KEY);
  if (!device) {
    device = makeDeviceId();
    sessionStorage.setItem(KEY, device);
  }
} catch {
  device = makeDeviceId();
}
export const deviceId = device;
