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

async function getJSON(path, params) {
  let response;
  try {
    response = await fetch(url(path, params), { headers: { Accept: "application/json" } });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the server cannot be reached (${err.message})`);
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // not problem JSON: keep the status line
    }
    throw new ApiError(
      response.status,
      problem.code || "http_error",
      problem.detail || `${response.status} ${response.statusText}`,
    );
  }
  return response.json();
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

/** The URL of a session's events as one JSON array (`agentstore export --bare`). */
export function exportUrl(id) {
  return `/v1/sessions/${enc(id)}/export`;
}

/**
 * The text of `agentstore export ID`: `{"session": {...}, "events": [...]}`, the session
 * written as it is on disk (unset fields and empty labels left out).
 */
export async function exportText(id) {
  const session = await getSession(id);
  const response = await fetch(url(exportUrl(id)));
  if (!response.ok) throw new ApiError(response.status, "http_error", `export failed: ${response.status}`);
  const events = (await response.text()).trimEnd();
  const onDisk = {};
  for (const [key, value] of Object.entries(session)) {
    if (value === null || value === undefined) continue;
    if (key === "labels" && !Object.keys(value).length) continue;
    onDisk[key] = value;
  }
  return `{"session":${JSON.stringify(onDisk)},\n"events":${events}}\n`;
}

/** The URL of a session's live stream (Server-Sent Events) from `fromSeq` on. */
export function streamUrl(id, fromSeq) {
  return url(`/v1/sessions/${enc(id)}/stream`, { from_seq: fromSeq }).toString();
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
