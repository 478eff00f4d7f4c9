// The console's one way to the gateway: every call sends the custom header
// the CSRF guard looks for, JSON bodies as JSON, and the admin token (when
// signed in) from session storage, never from or into a URL.

const TOKEN_KEY = "switchyard.adminToken";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A refusal or failure the gateway answered, with its JSON error. */
export class ApiError extends Error {
  constructor(status, body) {
    const msg =
      (body && body.error && body.error.message) ||
      (body && body.message) ||
      (typeof body === "string" && body) ||
      `HTTP ${status}`;
    super(msg);
    this.status = status;
    this.body = body;
  }
}

let unauthorized = () => {};
/** Called on every 401, so the page can offer the sign-in. */
export function onUnauthorized(f) {
  unauthorized = f;
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", "X-Switchyard-Request": "console" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: "omit" });
  const text = await r.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (r.status === 401) unauthorized();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/** `GET /readyz` answers 503 while starting or stopping: a fact, not an error. */
export async function ready() {
  const r = await fetch("/readyz", { cache: "no-store" });
  return r.ok;
}
