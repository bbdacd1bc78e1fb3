// The public API, called with the signed-in workspace token. The token stays in this tab's
// session storage: closing the tab signs out.
const KEY = "up.session";

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
}

export function setSession(s) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

// APIError carries the API's error envelope: {"error":{"code","message",…}}.
export class APIError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }
}

// api calls the API and returns the decoded JSON (null for 204); an error answer throws
// APIError with the API's own message. token overrides the session's (operator pages).
export async function api(method, path, body, token) {
  const t = token ?? session()?.token;
  const headers = {};
  if (t) headers.Authorization = "Bearer " + t;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new APIError(0, "network", "The API did not answer (" + e.message + "). Check your connection and try again.");
  }
  // Read every body, a 204's empty one too: a response left unread is reported as aborted.
  const text = await res.text();
  if (res.status === 204) return null;
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new APIError(res.status, e.code || "http_" + res.status, e.message || res.statusText || "The request failed.", e);
  }
  return data;
}

// download fetches an authenticated file and hands it to the browser as a download.
export async function download(path, filename) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + session().token } });
  if (!res.ok) {
    let msg = res.statusText;
    try { msg = (await res.json()).error.message; } catch { /* not JSON */ }
    throw new APIError(res.status, "http_" + res.status, msg);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ws is a path under the signed-in workspace.
export function ws(rest = "") {
  return "/v1/workspaces/" + encodeURIComponent(session().workspace_id) + rest;
}

// workspace reads the signed-in workspace (setup steps, usage).
export function workspace() {
  return api("GET", ws());
}

// firstSpace is the workspace's first space id, where sources feed by default.
export async function firstSpace() {
  const list = await api("GET", ws("/spaces"));
  return (list.spaces || [])[0];
}
