// The HTTP/JSON API of `agentstore serve`, as the UI uses it.

/** An error answered by the server (RFC 9457 problem JSON) or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function url(path, params = {}) {
  const u = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of [].concat(value)) u.searchParams.append(key, String(item));
  }
  return u;
}

const TOKEN_KEY = "agentstore-token";

/** The bearer token this tab was given for a server that asks for one, or null. */
export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Remember `value` as the token for this tab (it is gone when the tab closes). */
export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

/** The headers every API request sends: the token, when there is one. */
export function authHeaders(extra = {}) {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : { ...extra };
}

async function problemOf(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // not problem JSON: keep the status line
  }
  return new ApiError(
    response.status,
    problem.code || "http_error",
    problem.detail || `${response.status} ${response.statusText}`,
  );
}

async function getJSON(path, params) {
  let response;
  try {
    response = await fetch(url(path, params), { headers: authHeaders({ Accept: "application/json" }) });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the server cannot be reached (${err.message})`);
  }
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

/** Download `href` (an API URL) as `filename`, sending the token (a plain link cannot). */
export async function download(href, filename) {
  const response = await fetch(url(href), { headers: authHeaders() });
  if (!response.ok) throw await problemOf(response);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

const enc = encodeURIComponent;

/** List sessions newest first, with per-session summaries. */
export function listSessions({ limit = 50, cursor, q, labels, prefix, summary = true } = {}) {
  return getJSON("/v1/sessions", { limit, cursor, q, label: labels, prefix, summary: summary ? 1 : 0 });
}

/** Get one session by its exact id. */
export function getSession(id) {
  return getJSON(`/v1/sessions/${enc(id)}`);
}

/** Read events of a session (bounds inclusive). */
export function readEvents(id, { fromSeq, toSeq, limit } = {}) {
  return getJSON(`/v1/sessions/${enc(id)}/events`, { from_seq: fromSeq, to_seq: toSeq, limit });
}

/** Read every event of a session in pages, calling `onPage(events)` as each arrives. */
export async function readAllEvents(id, onPage, pageSize = 2000) {
  let from = 1;
  for (;;) {
    const page = await readEvents(id, { fromSeq: from, limit: pageSize });
    if (page.length) onPage(page);
    if (page.length < pageSize) return;
    from = page[page.length - 1].sequence_number + 1;
  }
}

/** The state of a session as of event `atSeq` (every event when omitted). */
export function getState(id, atSeq) {
  return getJSON(`/v1/sessions/${enc(id)}/state`, { at_seq: atSeq });
}

/** The URL of a session's export: what `agentstore export` writes (`bare`: `--bare`). */
export function exportUrl(id, { bare = false } = {}) {
  return `/v1/sessions/${enc(id)}/export` + (bare ? "?bare=1" : "");
}

/**
 * Follow a session live (the server's Server-Sent Events) from `fromSeq` on.
 *
 * Read with fetch rather than EventSource, which cannot send the token. After a dropped
 * connection it reconnects every 2 s from the event after the last one received.
 * Calls onEvent(event), onStatus("open" | "reconnecting") and, when the server ends the
 * stream for good (the session was deleted), onEnd(detail). Returns {close()}.
 * `createdAt` (the session's created_at as read) is sent on every connection: a session
 * deleted and made again under its id meanwhile is refused, not resumed in the other's events.
 */
export function follow(id, fromSeq, { onEvent, onStatus, onEnd, createdAt }) {
  let next = fromSeq;
  let stopped = false;
  let controller = null;

  const handle = (block) => {
    let kind = "message";
    let seq = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") kind = value;
      else if (field === "id") seq = Number(value);
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    if (kind === "error") {
      let detail = "the live stream ended";
      try {
        detail = JSON.parse(data.join("\n")).detail || detail;
      } catch {
        // keep the generic text
      }
      stopped = true;
      onEnd(detail);
      return;
    }
    if (seq !== null && Number.isFinite(seq)) next = seq + 1;
    try {
      onEvent(JSON.parse(data.join("\n")));
    } catch {
      // not an event: ignore it
    }
  };

  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const params = { from_seq: next, created_at: createdAt };
        const response = await fetch(url(`/v1/sessions/${enc(id)}/stream`, params), {
          headers: authHeaders({ Accept: "text/event-stream" }),
          signal: controller.signal,
          cache: "no-store",
        });
        if (!response.ok) {
          const err = await problemOf(response);
          if (response.status === 404 || response.status === 401 || response.status === 400) {
            stopped = true;
            onEnd(err.message);
            return;
          }
          throw err;
        }
        onStatus("open");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while (!stopped && (end = buffer.indexOf("\n\n")) >= 0) {
            handle(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // dropped or refused: try again below
      }
      if (stopped) return;
      onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  run();
  return {
    close() {
      stopped = true;
      controller?.abort();
    },
  };
}

/** Resolve an exact id or a unique id prefix to a session; throw ApiError otherwise. */
export async function resolveSession(idOrPrefix) {
  try {
    return await getSession(idOrPrefix);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  const page = await listSessions({ prefix: idOrPrefix, limit: 2, summary: false });
  if (page.sessions.length === 1) return page.sessions[0];
  if (page.sessions.length > 1) {
    throw new ApiError(409, "ambiguous", `more than one session id starts with "${idOrPrefix}"`);
  }
  throw new ApiError(404, "not_found", `no session "${idOrPrefix}"`);
}
