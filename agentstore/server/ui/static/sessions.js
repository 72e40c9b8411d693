// The sessions page: newest first, search by name or id prefix, label filter, cursor paging.
// Sessions the server passed over (a session file it could not read) are named above the
// table with the server's reason, so a run missing from the list is never missing silently.

import { ApiError, listSessions } from "./api.js";
import { debounce, h, pageUrl, replace, sessionUrl, showError } from "./dom.js";
import { fmtAgo, fmtCost, fmtInt, fmtTime } from "./format.js";

const COLUMNS = [
  ["", "select"], ["Session", "name"], ["Labels", "labels"], ["Events", "num"],
  ["Tokens in", "num"], ["Tokens out", "num"], ["Cost", "num"], ["Errors", "num"],
  ["Open calls", "num"], ["Last activity", "time"],
];

function labelChips(labels) {
  return Object.entries(labels || {}).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`));
}

function row(session, summary, selected, onSelect) {
  const s = summary || {};
  const box = h("input", {
    type: "checkbox",
    class: "pick",
    "aria-label": `Select ${session.id} to compare`,
    on: { change: (e) => onSelect(session.id, e.target.checked) },
  });
  box.checked = selected.has(session.id);
  const link = h("a", { href: sessionUrl(session.id), class: "session-link" },
    session.name || "(unnamed)");
  return h("tr", { dataset: { id: session.id } },
    h("td", {}, box),
    h("td", { class: "name" }, link, h("div", { class: "muted mono small" }, session.id),
      session.parent_id ? h("div", { class: "small muted" }, `fork of ${session.parent_id} at #${session.forked_at}`) : null),
    h("td", { class: "labels" }, labelChips(session.labels)),
    h("td", { class: "num" }, fmtInt(s.events ?? session.event_count)),
    h("td", { class: "num" }, fmtInt(s.tokens_in)),
    h("td", { class: "num" }, fmtInt(s.tokens_out)),
    h("td", { class: "num" }, fmtCost(s.cost_usd)),
    h("td", { class: s.errors ? "num bad" : "num" }, fmtInt(s.errors)),
    h("td", { class: s.open_calls ? "num warn" : "num" }, fmtInt(s.open_calls)),
    h("td", { class: "time", title: fmtTime(s.last_activity || session.updated_at) },
      fmtAgo(s.last_activity || session.updated_at)),
  );
}

/**
 * The notice of the sessions this page's listing passed over (`page.skipped`), or null.
 * Ids and reasons are the server's text, shown as text (h() never parses HTML). Open when
 * the list is short; a long one stays folded under its count.
 */
function skippedNotice(skipped) {
  if (!skipped.length) return null;
  const n = skipped.length;
  const items = skipped.map((s) => h("li", { dataset: { id: s.session_id } },
    h("span", { class: "mono skipped-id" }, s.session_id), " ",
    h("span", { class: "muted skipped-reason" }, s.reason)));
  return h("details", { class: "skipped-notice", id: "skipped-sessions", role: "status", open: n <= 5 },
    h("summary", {}, `${n} session${n === 1 ? "" : "s"} could not be read and ${n === 1 ? "is" : "are"} not listed`),
    h("ul", {}, items));
}

/** Render the sessions page into `root`. */
export async function renderSessions(root, crumbs) {
  document.title = "Sessions · agentstore";
  replace(crumbs, h("span", {}, "Sessions"));
  const params = new URLSearchParams(location.search);
  const state = {
    q: params.get("q") || "",
    labels: params.getAll("label"),
    cursor: params.get("cursor") || "",
    limit: Math.min(Math.max(Number(params.get("limit")) || 50, 1), 100),
    // Cursors of the pages before this one, so "Newer" goes back without a reload.
    back: (params.get("back") || "").split(",").filter(Boolean),
  };
  const selected = new Set();

  const search = h("input", {
    type: "search", id: "session-search", placeholder: "Search name or id prefix",
    "aria-label": "Search sessions by name or id prefix", value: state.q,
  });
  const labelInput = h("input", {
    type: "text", id: "label-filter", placeholder: "Label filter: env=prod, team=search",
    "aria-label": "Filter by labels (KEY=VALUE, comma-separated)", value: state.labels.join(", "),
  });
  const compareBtn = h("button", { type: "button", id: "compare-selected", disabled: true },
    "Compare selected");
  const tbody = h("tbody");
  const table = h("table", { class: "sessions", id: "sessions-table" },
    h("thead", {}, h("tr", {}, COLUMNS.map(([name, cls]) => h("th", { class: cls }, name)))),
    tbody);
  const newer = h("button", { type: "button", id: "page-newer" }, "← Newer");
  const older = h("button", { type: "button", id: "page-older" }, "Older →");
  const status = h("span", { class: "muted", id: "page-status" });
  const notice = h("div", { id: "skipped-slot" });
  replace(root,
    h("div", { class: "toolbar" }, search, labelInput, compareBtn),
    notice,
    table,
    h("div", { class: "pager" }, newer, status, older));

  const onSelect = (id, on) => {
    if (on) selected.add(id);
    else selected.delete(id);
    compareBtn.disabled = selected.size !== 2;
  };
  compareBtn.addEventListener("click", () => {
    const [a, b] = [...selected];
    location.assign(pageUrl("/compare", { a, b }));
  });

  let nextCursor = null;
  const syncUrl = () => {
    const url = pageUrl("/", {
      q: state.q, label: state.labels, cursor: state.cursor,
      back: state.back.join(","), limit: state.limit === 50 ? "" : state.limit,
    });
    history.replaceState(null, "", url);
  };

  async function load() {
    syncUrl();
    status.textContent = "Loading…";
    let page;
    try {
      page = await listSessions({
        limit: state.limit, cursor: state.cursor || undefined, q: state.q || undefined,
        labels: state.labels, summary: true,
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err; // the page asks for a token
      status.textContent = "";
      notice.replaceChildren(); // said of the page that was shown, not of this one
      root.querySelector(".error-banner")?.remove();
      showError(root, err);
      return;
    }
    root.querySelector(".error-banner")?.remove();
    nextCursor = page.next_cursor;
    const rows = page.sessions.map((s) => row(s, (page.summaries || {})[s.id], selected, onSelect));
    tbody.replaceChildren(...rows);
    const skipped = Array.isArray(page.skipped) ? page.skipped : []; // older servers: none
    replace(notice, skippedNotice(skipped));
    if (!rows.length) {
      const empty = skipped.length ? "No session here could be read."
        : state.q || state.labels.length ? "No session matches." : "No sessions yet.";
      tbody.append(h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted empty" }, empty)));
    }
    const pageNo = state.back.length + (state.cursor ? 1 : 0) + 1;
    status.textContent = `Page ${pageNo} · ${rows.length} session${rows.length === 1 ? "" : "s"}`;
    newer.disabled = !state.cursor;
    older.disabled = !nextCursor;
    document.getElementById("loading")?.remove();
  }

  const reset = () => {
    state.cursor = "";
    state.back = [];
    load();
  };
  search.addEventListener("input", debounce(() => {
    state.q = search.value.trim();
    reset();
  }, 200));
  labelInput.addEventListener("change", () => {
    state.labels = labelInput.value.split(",").map((x) => x.trim()).filter(Boolean);
    reset();
  });
  older.addEventListener("click", () => {
    if (!nextCursor) return;
    if (state.cursor) state.back.push(state.cursor);
    state.cursor = nextCursor;
    load();
  });
  newer.addEventListener("click", () => {
    state.cursor = state.back.pop() || "";
    load();
  });
  await load();
}
