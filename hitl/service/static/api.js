// The service's API, as the signed-in person: the bearer token lives in this tab's sessionStorage only.

const KEY = "hitl.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(message(status, body));
    this.status = status;
    this.body = body;
  }
}

function message(status, body) {
  if (body && Array.isArray(body.detail)) {  // FastAPI's request validation: one line per field
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".") || "body"}: ${d.msg}`).join("; ");
  }
  return (body && body.detail) || `HTTP ${status}`;
}

export async function api(path, { method = "GET", body, idempotent = false } = {}) {
  const headers = { Authorization: `Bearer ${token.get()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // A decision retried after a lost answer must not be applied twice: the service replays the first answer.
  if (idempotent) headers["Idempotency-Key"] = crypto.randomUUID();
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// An approval id is <run_id>/<requirement_id>, each one path segment of letters, digits and . _ : @ -
// (hitl.ids). fetch resolves "." and ".." segments and encodeURIComponent leaves dots alone, so a
// URL is built only from ids that fit: anything else could address another approval than the one shown.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

export const isSafeApprovalId = (id) => {
  const parts = String(id).split("/");
  return parts.length === 2 && parts.every((part) => part.length <= 1000 && SEGMENT.test(part));
};

export class UnsafeIdError extends Error {
  constructor(id) {
    super(`The approval id ${JSON.stringify(String(id).slice(0, 120))} is not <run_id>/<requirement_id> of letters, ` +
      "digits and . _ : @ -; it cannot be addressed safely, so nothing is sent.");
    this.status = 0;
  }
}

function segments(id) {
  if (!isSafeApprovalId(id)) throw new UnsafeIdError(id);
  return String(id).split("/").map(encodeURIComponent).join("/");
}

export const approvalPath = (id) => `/approvals/${segments(id)}`;
export const inboxPath = (id) => `/inbox/approvals/${segments(id)}`;

// The approval event stream (server-sent events), read with fetch because EventSource cannot send
// an Authorization header. Reconnects after a drop, resuming after the last event it saw.
export function stream(onEvent, onState) {
  let stopped = false;
  let last = null;
  const controller = new AbortController();
  (async () => {
    while (!stopped) {
      try {
        const headers = { Authorization: `Bearer ${token.get()}`, Accept: "text/event-stream" };
        if (last) headers["Last-Event-ID"] = last;
        const response = await fetch("/approvals/events", { headers, signal: controller.signal });
        if (response.status === 401) {  // revoked or expired: retrying would never succeed
          stopped = true;
          onState("signed-out");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
            const event = parse(block);
            if (event.event === "signed-out") {  // the credential was revoked or has expired while streaming
              stopped = true;
              controller.abort();
              onState("signed-out");
              return;
            }
            if (event.id) last = event.id;
            if (event.data) onEvent(event);
          }
        }
      } catch (error) {
        if (stopped) return;
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
  return () => { stopped = true; controller.abort(); };
}

function parse(block) {
  const event = { event: "message", data: "" };
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "data") event.data += (event.data ? "\n" : "") + value;
    else if (field === "event" || field === "id") event[field] = value;
  }
  if (event.data) {
    try { event.data = JSON.parse(event.data); } catch { /* keep the text */ }
  }
  return event;
}
