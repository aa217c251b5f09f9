// Talking to the server: JSON calls, NDJSON streams, typed errors, and pairing a device (401 opens the dialog).
import { $ } from "./dom.js";

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export function errorText(data, status) {
  if (data && typeof data === "object") {
    const e = data.error;
    if (typeof e === "string") return e;
    if (e && typeof e.message === "string") return e.message;
  }
  return `the server answered ${status}`;
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  return readJson(response);
}

export async function readJson(response) {
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (response.status === 401) showPairing();
  if (!response.ok) throw new ApiError(response.status, errorText(data, response.status));
  return data;
}

export async function* ndjson(response, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 1);
        if (line) yield JSON.parse(line);
      }
    }
    if (buffer.trim()) yield JSON.parse(buffer);
  } finally {
    if (signal && signal.aborted) reader.cancel().catch(() => {});
  }
}

export function showPairing() {
  const dialog = $("pair-dialog");
  if (!dialog.open) dialog.showModal();
}

export async function pair(code) {
  const response = await fetch("/api/pair", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: code.trim() }),
  });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, errorText(data, response.status));
}

export async function pairFromUrl() {
  const params = new URLSearchParams(location.search);
  const code = params.get("pair");
  if (!code) return;
  history.replaceState(null, "", location.pathname);  // the code works once: keep it out of the history
  try {
    await pair(code);
  } catch (err) {
    $("pair-error").textContent = err.message;
    showPairing();
  }
}
