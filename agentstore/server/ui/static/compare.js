// Compare two runs side by side: where they diverge, and the difference in tokens and
// cost. For a fork and its parent, the comparison starts at the fork point.

import { readAllEvents, resolveSession } from "./api.js";
import { h, pageUrl, replace, sessionUrl } from "./dom.js";
import { Analysis, fmtCost, fmtInt, typeClass } from "./format.js";

const PAGE = 100;

function same(a, b) {
  return a.type === b.type && JSON.stringify(a.payload) === JSON.stringify(b.payload);
}

async function load(session) {
  const analysis = new Analysis();
  await readAllEvents(session.id, (page) => page.forEach((e) => analysis.add(e)));
  return analysis;
}

function totalsAfter(analysis, index) {
  const t = { events: 0, tokensIn: 0, tokensOut: 0, cost: 0, toolCalls: 0, errors: 0 };
  for (const e of analysis.events.slice(index)) {
    const m = e.metadata || {};
    t.events += 1;
    if (e.type === "llm_request" || e.type === "llm_response") {
      t.tokensIn += m.tokens_in || 0;
      t.tokensOut += m.tokens_out || 0;
      t.cost += m.cost_usd || 0;
    } else if (e.type === "tool_called") t.toolCalls += 1;
    else if (e.type === "error") t.errors += 1;
  }
  return t;
}

function signed(v, fmt) {
  if (v === 0) return fmt(0);
  return (v > 0 ? "+" : "−") + fmt(Math.abs(v));
}

function cell(analysis, event, diverged) {
  if (!event) return h("td", { class: "empty-cell muted" }, "—");
  const seq = event.sequence_number;
  const link = h("a", { href: sessionUrl(event.session_id, `seq-${seq}`), class: "mono" }, `#${seq}`);
  return h("td", { class: `cmp-cell ${diverged ? "diverged" : ""}` }, link, " ",
    h("span", { class: `type ${typeClass(event.type)}` }, event.type), " ",
    h("span", { class: "summary" }, analysis.summary(event).map(([t]) => t).join("")));
}

/** Render the compare page (?a=<id>&b=<id>) into `root`. */
export async function renderCompare(root, crumbs) {
  const params = new URLSearchParams(location.search);
  const [aId, bId] = [params.get("a"), params.get("b")];
  replace(crumbs, h("a", { href: "/" }, "Sessions"), h("span", { class: "sep" }, "/"), h("span", {}, "Compare"));
  document.title = "Compare · agentstore";
  if (!aId || !bId) {
    replace(root, h("p", {}, "Pick two sessions on the sessions page to compare them."));
    return;
  }
  let [a, b] = await Promise.all([resolveSession(aId), resolveSession(bId)]);
  if (a.parent_id === b.id) [a, b] = [b, a]; // the parent on the left
  const [ea, eb] = await Promise.all([load(a), load(b)]);
  const forkPoint = b.parent_id === a.id ? b.forked_at || 0 : 0;
  // Events up to the fork point were copied; check them anyway, then find the first
  // position where the two logs differ.
  let diverge = 0;
  const n = Math.min(ea.events.length, eb.events.length);
  while (diverge < n && same(ea.events[diverge], eb.events[diverge])) diverge++;
  const identical = diverge === ea.events.length && diverge === eb.events.length;
  const ta = totalsAfter(ea, diverge);
  const tb = totalsAfter(eb, diverge);
  const rows = [
    ["Events", ta.events, tb.events, fmtInt],
    ["Tokens in", ta.tokensIn, tb.tokensIn, fmtInt],
    ["Tokens out", ta.tokensOut, tb.tokensOut, fmtInt],
    ["Tokens total", ta.tokensIn + ta.tokensOut, tb.tokensIn + tb.tokensOut, fmtInt],
    ["Cost", ta.cost, tb.cost, fmtCost],
    ["Tool calls", ta.toolCalls, tb.toolCalls, fmtInt],
    ["Errors", ta.errors, tb.errors, fmtInt],
  ];
  const head = (session, label) => h("th", {},
    h("a", { href: sessionUrl(session.id) }, session.name || session.id),
    h("div", { class: "mono small muted" }, `${label} · ${session.id}`));
  const summary = h("table", { class: "compare-totals", id: "compare-totals" },
    h("thead", {}, h("tr", {}, h("th", {}, identical ? "Identical runs" : `From step #${diverge + 1}`),
      head(a, "A"), head(b, "B"), h("th", {}, "B − A"))),
    h("tbody", {}, rows.map(([name, va, vb, fmt]) => h("tr", { dataset: { row: name } },
      h("td", {}, name), h("td", { class: "num" }, fmt(va)), h("td", { class: "num" }, fmt(vb)),
      h("td", { class: `num delta ${vb > va ? "up" : vb < va ? "down" : ""}` }, signed(vb - va, fmt))))));

  const where = identical
    ? "The two runs hold the same events."
    : diverge === n
      ? `They agree for ${diverge} events; then only ${ea.events.length > n ? "A" : "B"} goes on.`
      : `They agree for ${diverge} event${diverge === 1 ? "" : "s"} and diverge at step #${diverge + 1}.`;
  const note = h("p", { id: "divergence", class: "divergence", dataset: { diverge: String(diverge + 1) } },
    forkPoint ? `B was forked from A at #${forkPoint}. ` : "", where);

  const start = Math.max(diverge - 2, 0);
  let shown = 0;
  const body = h("tbody");
  const more = h("button", { type: "button", id: "compare-more" }, "Show more");
  const total = Math.max(ea.events.length, eb.events.length);
  const addRows = () => {
    const end = Math.min(start + shown + PAGE, total);
    for (let i = start + shown; i < end; i++) {
      const diverged = i >= diverge;
      body.append(h("tr", { class: diverged ? "after" : "before", dataset: { index: String(i + 1) } },
        cell(ea, ea.events[i], diverged), cell(eb, eb.events[i], diverged)));
    }
    shown = end - start;
    more.hidden = end >= total;
  };
  more.addEventListener("click", addRows);
  addRows();
  replace(root,
    h("h1", {}, "Compare runs"),
    note,
    summary,
    h("p", { class: "small muted" }, "Totals count the events from the divergence on. ",
      forkPoint ? null : h("a", { href: pageUrl("/compare", { a: b.id, b: a.id }) }, "Swap sides")),
    h("table", { class: "compare-events", id: "compare-events" },
      h("thead", {}, h("tr", {}, h("th", {}, "A"), h("th", {}, "B"))), body),
    more);
  document.getElementById("loading")?.remove();
  document.body.dataset.loaded = "true";
}
