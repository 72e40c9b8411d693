// The timeline: one row per event (the CLI's summaries), filters by type, time and payload
// text, an inspector with the full event as pretty JSON, and j/k to move through it.
//
// Only the rows in view are in the DOM (a fixed row height and a tall spacer), so a
// session of 10,000 events costs a few dozen elements, not 10,000.

import { clean, debounce, h, replace, sessionUrl } from "./dom.js";
import { fmtDuration, fmtTime, typeClass } from "./format.js";

const ROW_H = 28; // px; must match .row in style.css
const OVERSCAN = 8;
const INSPECTOR_CHARS = 200_000; // more is shown on request: a huge payload must not stall

function parseUtc(text) {
  const value = text.trim();
  if (!value) return null;
  const iso = value.replace(" ", "T");
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
  return Number.isNaN(ms) ? undefined : ms;
}

function jsonPretty(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch (err) {
    return `(cannot show this value: ${err.message})`;
  }
}

/** The timeline of one session; `element` is attached by the page. */
export class Timeline {
  constructor(analysis, { onSelect } = {}) {
    this.analysis = analysis;
    this.onSelect = onSelect || (() => {});
    this.hiddenTypes = new Set();
    this.since = null;
    this.until = null;
    this.needle = "";
    this.haystacks = new Map();
    this.visible = [];
    this.indexOf = new Map(); // seq -> index in visible
    this.seen = 0; // analysis.events already filtered into visible
    this.selected = null;
    this.followTail = false; // true while the view is scrolled to the last row
    this.build();
    document.addEventListener("keydown", (e) => this.onKey(e));
  }

  build() {
    this.chips = h("div", { class: "chips", id: "type-filters", role: "group", "aria-label": "Event types" });
    this.sinceInput = h("input", { type: "text", id: "filter-since", class: "time-input",
      placeholder: "from (UTC) 2026-01-31 12:00:00", "aria-label": "Show events from (UTC)" });
    this.untilInput = h("input", { type: "text", id: "filter-until", class: "time-input",
      placeholder: "until (UTC)", "aria-label": "Show events until (UTC)" });
    this.searchInput = h("input", { type: "search", id: "payload-search",
      placeholder: "Search payloads ( / )", "aria-label": "Search event payloads" });
    this.count = h("span", { class: "muted small", id: "row-count" });
    this.spacer = h("div", { class: "spacer" });
    this.scroller = h("div", { class: "scroller", id: "timeline", tabindex: "0",
      role: "listbox", "aria-label": "Events (j/k to move)" }, this.spacer);
    this.inspector = h("aside", { class: "inspector", id: "inspector", "aria-live": "polite" },
      h("p", { class: "muted" }, "Select an event (click, or j/k) to see its payload and metadata."));
    this.element = h("div", { class: "timeline-view" },
      h("div", { class: "filters" }, this.chips,
        h("div", { class: "filter-row" }, this.searchInput, this.sinceInput, this.untilInput, this.count)),
      h("div", { class: "split" }, this.scroller, this.inspector));

    this.scroller.addEventListener("scroll", () => {
      this.followTail = this.scroller.scrollTop + this.scroller.clientHeight >= this.spacer.offsetHeight - ROW_H;
      if (!this.frame) this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.renderRows();
      });
    });
    this.scroller.addEventListener("click", (e) => {
      const row = e.target.closest(".row");
      if (row) this.select(Number(row.dataset.seq));
    });
    this.chips.addEventListener("click", (e) => {
      const chip = e.target.closest("[data-type]");
      if (!chip) return;
      const type = chip.dataset.type;
      if (this.hiddenTypes.has(type)) this.hiddenTypes.delete(type);
      else this.hiddenTypes.add(type);
      this.refilter();
    });
    this.searchInput.addEventListener("input", debounce(() => {
      this.needle = this.searchInput.value.trim().toLowerCase();
      this.refilter();
    }, 150));
    for (const [input, key] of [[this.sinceInput, "since"], [this.untilInput, "until"]]) {
      input.addEventListener("change", () => {
        const ms = parseUtc(input.value);
        input.classList.toggle("invalid", ms === undefined);
        this[key] = ms === undefined ? null : ms;
        this.refilter();
      });
    }
    window.addEventListener("resize", () => this.renderRows());
  }

  /** Call once the element is in the page (it needs its height). */
  attach() {
    this.renderChips();
    this.renderRows();
    if (this.selected !== null) this.renderInspector();
  }

  matches(event) {
    if (this.hiddenTypes.has(event.type)) return false;
    if (this.since !== null || this.until !== null) {
      const ts = Date.parse(event.timestamp);
      if (this.since !== null && ts < this.since) return false;
      if (this.until !== null && ts > this.until) return false;
    }
    if (this.needle) {
      let hay = this.haystacks.get(event.sequence_number);
      if (hay === undefined) {
        hay = `${event.type} ${JSON.stringify(event.payload)} ${JSON.stringify(event.metadata || {})}`.toLowerCase();
        this.haystacks.set(event.sequence_number, hay);
      }
      if (!hay.includes(this.needle)) return false;
    }
    return true;
  }

  refilter() {
    this.visible = [];
    this.indexOf = new Map();
    this.seen = 0;
    this.eventsAdded();
    this.scroller.scrollTop = Math.min(this.scroller.scrollTop, this.spacer.offsetHeight);
  }

  /** Take in events the analysis gained (first load, more pages, live). */
  eventsAdded() {
    const events = this.analysis.events;
    for (; this.seen < events.length; this.seen++) {
      const event = events[this.seen];
      if (this.matches(event)) {
        this.indexOf.set(event.sequence_number, this.visible.length);
        this.visible.push(event);
      }
    }
    this.spacer.style.height = `${this.visible.length * ROW_H}px`;
    if (!this.element.isConnected) return;
    this.renderChips();
    if (this.followTail) this.scroller.scrollTop = this.spacer.offsetHeight;
    this.renderRows();
    // A result that arrived closes its call: the inspector's pairing line may change.
    if (this.selected !== null) this.renderInspector();
  }

  renderChips() {
    const chips = [...this.analysis.typeCounts.entries()].map(([type, n]) =>
      h("button", {
        type: "button",
        class: `chip type-chip ${typeClass(type)} ${this.hiddenTypes.has(type) ? "off" : ""}`,
        dataset: { type },
        "aria-pressed": this.hiddenTypes.has(type) ? "false" : "true",
        title: `Show or hide ${type} events`,
      }, `${type} ${n}`));
    this.chips.replaceChildren(...chips);
    const total = this.analysis.events.length;
    this.count.textContent = this.visible.length === total
      ? `${total} events` : `${this.visible.length} of ${total} events`;
  }

  renderRows() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const start = Math.max(Math.floor(top / ROW_H) - OVERSCAN, 0);
    const end = Math.min(Math.ceil((top + height) / ROW_H) + OVERSCAN, this.visible.length);
    const partner = this.selected !== null ? this.analysis.partner.get(this.selected) : undefined;
    const rows = [];
    for (let i = start; i < end; i++) rows.push(this.row(this.visible[i], i, partner));
    this.spacer.replaceChildren(...rows);
  }

  row(event, index, selectedPartner) {
    const a = this.analysis;
    const seq = event.sequence_number;
    const pair = a.partner.get(seq);
    const open = a.isOpen(seq);
    const classes = ["row", typeClass(event.type)];
    if (seq === this.selected) classes.push("selected");
    if (seq === selectedPartner) classes.push("partner");
    if (open) classes.push("open");
    if (pair !== undefined) classes.push(`pair pair-${Math.min(seq, pair) % 6}`);
    const summary = h("span", { class: "summary" },
      a.summary(event).map(([text, cls]) => (cls ? h("span", { class: cls }, text) : text)));
    let badge = null;
    if (open) badge = h("span", { class: "badge open-badge", title: "No result yet" }, "open");
    else if (pair !== undefined) {
      badge = h("span", { class: "badge pair-badge", title: pair > seq ? "Its result" : "Its call" },
        pair > seq ? `→ #${pair}` : `← #${pair}`);
    }
    const el = h("div", {
      class: classes.join(" "), role: "option", id: `row-${seq}`,
      "aria-selected": seq === this.selected ? "true" : "false", dataset: { seq: String(seq) },
    },
    h("span", { class: "seq" }, `#${seq}`),
    h("span", { class: "elapsed" }, a.elapsed(event)),
    h("span", { class: `type ${typeClass(event.type)}` }, event.type),
    summary, badge);
    el.style.top = `${index * ROW_H}px`;
    return el;
  }

  /** Select the event `seq`: highlight it (and its pair), scroll to it, inspect it. */
  select(seq, { scroll = true } = {}) {
    if (!this.analysis.bySeq.has(seq)) return;
    this.selected = seq;
    if (scroll) this.scrollTo(seq);
    this.renderRows();
    this.renderInspector();
    this.onSelect(seq);
  }

  scrollTo(seq) {
    const index = this.indexOf.get(seq);
    if (index === undefined) return;
    const top = index * ROW_H;
    const view = this.scroller.clientHeight || 600;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + ROW_H > this.scroller.scrollTop + view) this.scroller.scrollTop = top + ROW_H - view;
    this.followTail = false;
  }

  move(step) {
    if (!this.visible.length) return;
    let index = this.selected === null ? -1 : this.indexOf.get(this.selected);
    if (index === undefined) {
      // the selected event is filtered out: continue from the nearest visible one
      index = this.visible.findIndex((e) => e.sequence_number > this.selected) - (step > 0 ? 1 : 0);
    }
    const next = Math.min(Math.max(index + step, 0), this.visible.length - 1);
    this.select(this.visible[next].sequence_number);
  }

  onKey(e) {
    if (!this.element.isConnected || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) {
      if (e.key === "Escape") target.blur();
      return;
    }
    if (e.key === "j" || (e.key === "ArrowDown" && target === this.scroller)) this.move(1);
    else if (e.key === "k" || (e.key === "ArrowUp" && target === this.scroller)) this.move(-1);
    else if (e.key === "/") this.searchInput.focus();
    else return;
    e.preventDefault();
  }

  renderInspector() {
    const a = this.analysis;
    const event = a.bySeq.get(this.selected);
    if (!event) return;
    const seq = event.sequence_number;
    const text = clean(jsonPretty(event));
    const pre = h("pre", { class: "json", id: "inspector-json" });
    let more = null;
    if (text.length > INSPECTOR_CHARS) {
      pre.textContent = text.slice(0, INSPECTOR_CHARS);
      more = h("button", { type: "button", id: "show-all" },
        `Show all (${(text.length - INSPECTOR_CHARS).toLocaleString("en-US")} more characters)`);
      more.addEventListener("click", () => {
        pre.textContent = text;
        more.remove();
      });
    } else pre.textContent = text;

    const pair = a.partner.get(seq);
    let pairLine = null;
    if (pair !== undefined) {
      const isCall = pair > seq;
      const ms = a.duration.get(isCall ? pair : seq);
      const jump = h("a", { href: `#seq-${pair}`, class: "jump" }, `#${pair}`);
      pairLine = h("p", { class: "pair-line" }, isCall ? "Result: " : "Call: ", jump,
        ms !== undefined ? ` · took ${fmtDuration(ms)}` : "");
    } else if (a.isOpen(seq)) {
      pairLine = h("p", { class: "pair-line warn" }, "Open call: no result yet.");
    }
    const status = h("span", { class: "muted small", id: "copy-status" });
    const copy = h("button", { type: "button", id: "copy-json" }, "Copy JSON");
    copy.addEventListener("click", async () => {
      const full = jsonPretty(event);
      try {
        await navigator.clipboard.writeText(full);
        status.textContent = "Copied.";
      } catch {
        // No clipboard permission: select the text so Ctrl+C copies it.
        pre.textContent = full;
        getSelection().selectAllChildren(pre);
        status.textContent = document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C.";
      }
    });
    replace(this.inspector,
      h("div", { class: "insp-head" },
        h("span", { class: `type ${typeClass(event.type)}` }, event.type),
        h("span", { class: "mono" }, ` #${seq}`),
        h("span", { class: "muted small" }, ` ${fmtTime(event.timestamp)}`)),
      pairLine,
      h("div", { class: "insp-actions" }, copy,
        h("a", { class: "button", href: sessionUrl(event.session_id, `seq-${seq}`), id: "event-link" }, "Link"),
        h("a", { class: "button", href: `?tab=state#seq-${seq}`, id: "state-at" }, "State here"),
        status),
      more, pre);
  }
}
