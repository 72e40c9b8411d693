// The session page: header with totals, export and compare; tabs for the timeline,
// the state at any step and the charts; live updates over Server-Sent Events.

import { download, exportUrl, follow, readAllEvents, resolveSession, token } from "./api.js";
import { h, pageUrl, replace, sessionUrl, showError } from "./dom.js";
import { Analysis, fmtCost, fmtInt, fmtTime } from "./format.js";
import { Timeline } from "./timeline.js";
import { StatePanel } from "./statepanel.js";
import { renderCharts } from "./charts.js";

const TABS = ["timeline", "state", "charts"];

function seqFromHash() {
  const match = /^#seq-(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function totalsBar(analysis, session) {
  const t = analysis.totals;
  const item = (label, value, cls = "") =>
    h("span", { class: `stat ${cls}`, dataset: { stat: label } },
      h("span", { class: "stat-value" }, value), h("span", { class: "stat-label" }, label));
  const open = analysis.openCount();
  return [
    item("events", fmtInt(analysis.events.length)),
    item("tokens in", fmtInt(t.tokensIn)),
    item("tokens out", fmtInt(t.tokensOut)),
    item("cost", fmtCost(t.cost)),
    item("tool calls", fmtInt(t.toolCalls)),
    item("errors", fmtInt(t.errors), t.errors ? "bad" : ""),
    item("open calls", fmtInt(open), open ? "warn" : ""),
    item("created", fmtTime(session.created_at)),
  ];
}

function exportLink(elementId, href, filename, label, title) {
  const link = h("a", { class: "button", id: elementId, href, download: filename, title }, label);
  link.addEventListener("click", (e) => {
    if (!token()) return; // a plain download: the server needs no token
    e.preventDefault();
    download(href, filename).catch((err) => showError(document.getElementById("app"), err));
  });
  return link;
}

/** Render the page of session `idOrPrefix` (an exact id or a unique prefix) into `root`. */
export async function renderSession(root, crumbs, idOrPrefix) {
  const session = await resolveSession(idOrPrefix);
  if (session.id !== idOrPrefix) {
    location.replace(sessionUrl(session.id) + location.search + location.hash);
    return;
  }
  const id = session.id;
  document.title = `${session.name || id} · agentstore`;
  replace(crumbs, h("a", { href: "/" }, "Sessions"), h("span", { class: "sep" }, "/"),
    h("span", { class: "mono" }, session.name || id));

  const params = new URLSearchParams(location.search);
  let tab = TABS.includes(params.get("tab")) ? params.get("tab") : "timeline";
  const analysis = new Analysis();

  const totals = h("div", { class: "totals", id: "totals" });
  const live = h("span", { class: "live off", id: "live", title: "Live updates" }, "○ connecting");
  const compareInput = h("input", {
    type: "text", id: "compare-with", placeholder: "Compare with session id…",
    "aria-label": "Compare with another session (id)",
  });
  const compareForm = h("form", { class: "inline", id: "compare-form" }, compareInput,
    h("button", { type: "submit" }, "Compare"));
  compareForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const other = compareInput.value.trim();
    if (other) location.assign(pageUrl("/compare", { a: id, b: other }));
  });
  const actions = h("div", { class: "actions" },
    exportLink("export-json", exportUrl(id), `${id}.json`, "Export JSON",
      "The session and its events, as `agentstore export` writes them"),
    exportLink("export-events", exportUrl(id, { bare: true }), `${id}.events.json`, "Events only",
      "Only the events, as one JSON array (agentstore export --bare)"),
    session.parent_id
      ? h("a", { class: "button", id: "compare-parent",
        href: pageUrl("/compare", { a: session.parent_id, b: id }) }, "Compare with parent")
      : null,
    compareForm);
  const tabBar = h("div", { class: "tabs", role: "tablist" }, TABS.map((name) =>
    h("button", { type: "button", role: "tab", class: "tab", id: `tab-${name}`,
      dataset: { tab: name } }, name[0].toUpperCase() + name.slice(1))));
  const body = h("div", { class: "tab-body" });
  replace(root,
    h("section", { class: "session-head" },
      h("div", { class: "title-row" },
        h("h1", {}, session.name || "(unnamed)"), live),
      h("div", { class: "mono muted small", id: "session-id" }, id,
        session.parent_id ? ` · fork of ${session.parent_id} at #${session.forked_at}` : ""),
      h("div", { class: "labels" }, Object.entries(session.labels || {}).map(([k, v]) =>
        h("span", { class: "chip" }, `${k}=${v}`))),
      totals, actions),
    tabBar, body);

  const timeline = new Timeline(analysis, {
    onSelect: (seq) => history.replaceState(null, "", location.pathname + location.search + `#seq-${seq}`),
  });
  const statePanel = new StatePanel(id, analysis, {
    onStep: (seq) => history.replaceState(null, "", location.pathname + location.search + `#seq-${seq}`),
  });

  const showTab = (name) => {
    tab = name;
    for (const button of tabBar.children) {
      const on = button.dataset.tab === name;
      button.classList.toggle("active", on);
      button.setAttribute("aria-selected", on ? "true" : "false");
    }
    const url = pageUrl(location.pathname, { tab: name === "timeline" ? "" : name });
    history.replaceState(null, "", url + location.hash);
    if (name === "timeline") {
      replace(body, timeline.element);
      timeline.attach();
      const seq = seqFromHash();
      if (seq !== null) timeline.select(seq, { scroll: true });
    } else if (name === "state") {
      replace(body, statePanel.element);
      // Until every event is in, the last step is not known yet: shown once loaded.
      if (loaded) statePanel.show(seqFromHash() ?? analysis.events.length);
    } else {
      replace(body, renderCharts(analysis));
    }
  };
  tabBar.addEventListener("click", (e) => {
    const name = e.target.closest("[data-tab]")?.dataset.tab;
    if (name) showTab(name);
  });
  window.addEventListener("hashchange", () => {
    const seq = seqFromHash();
    if (seq === null) return;
    if (tab === "timeline") timeline.select(seq, { scroll: true });
    else if (tab === "state") statePanel.show(seq);
  });

  let chartsDirty = false;
  const refresh = () => {
    replace(totals, totalsBar(analysis, session));
    if (tab === "state") statePanel.setMax(analysis.events.length ? analysis.events.at(-1).sequence_number : 0);
    if (tab === "charts") chartsDirty = true;
  };

  // The first page shows as soon as it arrives; the rest stream in behind it.
  const wanted = seqFromHash(); // before selecting anything rewrites the URL
  let loaded = false;
  let shown = false;
  await readAllEvents(id, (page) => {
    for (const event of page) analysis.add(event);
    timeline.eventsAdded();
    if (!shown) {
      shown = true;
      refresh();
      showTab(tab);
      document.getElementById("loading")?.remove();
      performance.mark("agentstore:first-rows");
    }
  });
  if (!shown) {
    refresh();
    showTab(tab);
    document.getElementById("loading")?.remove();
  }
  refresh();
  // The first page was shown before the rest arrived: an event or step named by the URL
  // may only now be loaded, and the charts only now complete.
  loaded = true;
  if (tab === "state") statePanel.show(wanted ?? analysis.events.length);
  else if (tab === "charts") replace(body, renderCharts(analysis));
  else if (wanted !== null && timeline.selected === null) timeline.select(wanted, { scroll: true });
  performance.mark("agentstore:all-events");
  document.body.dataset.loaded = "true";

  // Live: follow from the next sequence number; after a drop, resume where it stopped.
  const last = analysis.events.length ? analysis.events.at(-1).sequence_number : 0;
  const flush = () => {
    timeline.eventsAdded();
    refresh();
    if (chartsDirty && tab === "charts") {
      chartsDirty = false;
      replace(body, renderCharts(analysis));
    }
  };
  let pending = 0;
  const source = follow(id, last + 1, {
    createdAt: session.created_at,
    onEvent: (event) => {
      if (!analysis.add(event)) return;
      // Many events at once are drawn once per frame, not once each.
      if (!pending) pending = requestAnimationFrame(() => {
        pending = 0;
        flush();
      });
    },
    onStatus: (status) => {
      live.textContent = status === "open" ? "● live" : "○ reconnecting";
      live.className = status === "open" ? "live on" : "live off";
    },
    onEnd: (detail) => {
      live.textContent = `○ ${detail}`;
      live.className = "live off";
    },
  });
  window.addEventListener("pagehide", () => source.close());
}
