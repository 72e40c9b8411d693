// State at any step: a slider over the sequence numbers, `get_state` at that step (from
// the server, so the user's reducer's result is what is shown) and what changed from the
// step before.

import { getState } from "./api.js";
import { clean, debounce, h, replace } from "./dom.js";
import { typeClass } from "./format.js";

const MAX_CHANGES = 500;

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** The leaf paths that differ between two JSON values: [{path, kind, before, after}]. */
export function diff(before, after, path = "", out = []) {
  if (out.length >= MAX_CHANGES) return out;
  if (isObj(before) && isObj(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) {
      const sub = path ? `${path}.${key}` : key;
      if (!(key in before)) out.push({ path: sub, kind: "added", after: after[key] });
      else if (!(key in after)) out.push({ path: sub, kind: "removed", before: before[key] });
      else diff(before[key], after[key], sub, out);
      if (out.length >= MAX_CHANGES) break;
    }
  } else if (JSON.stringify(before) !== JSON.stringify(after)) {
    out.push({ path: path || "(state)", kind: "changed", before, after });
  }
  return out;
}

function short(value) {
  const text = JSON.stringify(value);
  if (text === undefined) return "undefined";
  return clean(text.length > 300 ? text.slice(0, 299) + "…" : text);
}

/** The state tab of a session page. */
export class StatePanel {
  constructor(sessionId, analysis, { onStep } = {}) {
    this.id = sessionId;
    this.analysis = analysis;
    this.onStep = onStep || (() => {});
    this.token = 0;
    this.slider = h("input", { type: "range", id: "state-slider", min: "0", max: "0", step: "1",
      "aria-label": "Step (sequence number)" });
    this.number = h("input", { type: "number", id: "state-step", min: "0", class: "step-input",
      "aria-label": "Step number" });
    this.prev = h("button", { type: "button", id: "state-prev", title: "Step before" }, "←");
    this.next = h("button", { type: "button", id: "state-next", title: "Step after" }, "→");
    this.caption = h("div", { class: "step-caption", id: "step-caption" });
    this.changes = h("div", { class: "changes", id: "state-diff" });
    this.json = h("pre", { class: "json", id: "state-json" });
    this.element = h("div", { class: "state-view" },
      h("div", { class: "step-bar" }, this.prev, this.slider, this.next, this.number),
      this.caption,
      h("div", { class: "state-split" },
        h("section", {}, h("h2", {}, "What changed"), this.changes),
        h("section", {}, h("h2", {}, "State"), this.json)));
    const go = debounce((v) => this.show(v), 80);
    this.slider.addEventListener("input", () => {
      this.number.value = this.slider.value;
      go(Number(this.slider.value));
    });
    this.number.addEventListener("change", () => this.show(Number(this.number.value)));
    this.prev.addEventListener("click", () => this.show(this.step - 1));
    this.next.addEventListener("click", () => this.show(this.step + 1));
    this.step = 0;
  }

  setMax(max) {
    this.slider.max = String(max);
    this.number.max = String(max);
  }

  /** Show the state after event `seq` (0: before any event) and its change. */
  async show(seq) {
    const max = this.analysis.events.length ? this.analysis.events.at(-1).sequence_number : 0;
    this.setMax(max);
    const step = Math.min(Math.max(Number.isFinite(seq) ? seq : max, 0), max);
    this.step = step;
    this.slider.value = String(step);
    this.number.value = String(step);
    this.prev.disabled = step <= 0;
    this.next.disabled = step >= max;
    const event = this.analysis.bySeq.get(step);
    replace(this.caption, step === 0
      ? h("span", { class: "muted" }, "Before the first event.")
      : event
        ? [h("span", { class: `type ${typeClass(event.type)}` }, event.type), ` #${step} `,
          h("span", {}, this.analysis.summary(event).map(([t]) => t).join(""))]
        : `#${step}`);
    const token = ++this.token;
    this.element.dataset.loading = "true";
    const [now, before] = await Promise.all([
      getState(this.id, step),
      step > 0 ? getState(this.id, step - 1) : Promise.resolve(null),
    ]);
    if (token !== this.token) return; // a later step was asked for meanwhile
    this.json.textContent = clean(JSON.stringify(now, null, 2));
    const changes = before === null ? [] : diff(before, now);
    replace(this.changes, changes.length
      ? h("ul", { class: "diff" }, changes.map((c) => h("li", { class: `diff-${c.kind}`, dataset: { path: c.path } },
        h("span", { class: "diff-path mono" }, c.path),
        c.kind === "added" ? h("span", { class: "after" }, ` + ${short(c.after)}`)
          : c.kind === "removed" ? h("span", { class: "before" }, ` − ${short(c.before)}`)
            : [h("span", { class: "before" }, ` ${short(c.before)}`), " → ",
              h("span", { class: "after" }, short(c.after))])))
      : h("p", { class: "muted" }, step === 0 ? "The empty state." : "Nothing changed."));
    this.element.dataset.loading = "false";
    this.element.dataset.step = String(step);
    this.onStep(step);
  }
}
