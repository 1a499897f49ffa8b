// What this tab learned from its own calls: the last calls made, and the rate-limit headers
// the gateway sent with them (the API has no "my key" endpoint to ask instead).

const CALLS = "ai1net.console.calls";
const LIMITS = "ai1net.console.limits";
const KEEP = 20;

function read(name, fallback) {
  try { return JSON.parse(sessionStorage.getItem(name)) ?? fallback; } catch { return fallback; }
}

export function recordCall(call) {
  const calls = [call, ...read(CALLS, [])].slice(0, KEEP);
  sessionStorage.setItem(CALLS, JSON.stringify(calls));
}

export function recentCalls() {
  return read(CALLS, []);
}

export function recordLimits(headers) {
  const limits = {};
  for (const [name, value] of headers.entries()) {
    if (name.startsWith("x-ratelimit-")) limits[name.slice("x-ratelimit-".length)] = value;
  }
  if (Object.keys(limits).length) {
    sessionStorage.setItem(LIMITS, JSON.stringify({ at: new Date().toISOString(), limits }));
  }
}

export function lastLimits() {
  return read(LIMITS, null);
}
