// The REST API of API.md, with the session cookie and Django's CSRF header.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch("/api/" + path.replace(/^\//, ""), init);
  } catch (err) {
    throw new ApiError(0, "network_error", "The server cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(response.status, e.code || "error", e.message || response.statusText, e.details);
  }
  return data;
}

// Display names by username, fetched once per page when an event only names a username.
const names = new Map();
export function rememberName(username, displayName) {
  if (username && displayName) names.set(username, displayName);
}
export function knownName(username) {
  return names.get(username) || username;
}
export async function displayName(username) {
  if (names.has(username)) return names.get(username);
  try {
    const page = await api("GET", "users/?search=" + encodeURIComponent(username));
    for (const u of page.results || []) rememberName(u.username, u.display_name);
  } catch {
    /* fall back to the username */
  }
  return knownName(username);
}
