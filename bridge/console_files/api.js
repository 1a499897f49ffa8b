// The console's only way out: the public HTTP API, with the key from sessionStorage.

const KEY = "ai1net.console.key";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { sessionStorage.setItem(KEY, value); },
  clear() { sessionStorage.clear(); },
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type || "";
    this.field = error.field || "";
    this.requestId = error.request_id || "";
  }
}

function headers(extra = {}) {
  const key = session.key;
  return { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...extra };
}

async function send(method, path, body, { signal, accept } = {}) {
  const init = { method, headers: headers(accept ? { Accept: accept } : {}),
    credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { error: { message: "the gateway cannot be reached" } });
  }
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not the envelope */ }
    throw new ApiError(response.status, parsed);
  }
  return response;
}

export async function api(method, path, body, options) {
  const response = await send(method, path, body, options);
  return response.status === 204 ? null : response.json();
}

export const get = (path, options) => api("GET", path, undefined, options);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// POST /v1/generate with stream:true: calls onStart(headers), then onEvent(obj) for each
// NDJSON line as it arrives.
export async function generateStream(body, { onStart, onEvent, signal }) {
  const response = await send("POST", "/v1/generate", { ...body, stream: true },
    { signal, accept: "application/x-ndjson" });
  onStart(response.headers);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
  if (buffer.trim()) onEvent(JSON.parse(buffer));
}

export async function generateOnce(body, { signal }) {
  const response = await send("POST", "/v1/generate", { ...body, stream: false }, { signal });
  return { headers: response.headers, body: await response.json() };
}

// The signed-in key as the API describes it to its holder: role, limits, budget, spend.
export function currentKey(options) {
  return get("/v1/keys/me", options);
}
