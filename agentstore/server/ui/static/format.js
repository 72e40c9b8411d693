// Number formats and one-line event summaries, the same as the CLI's timeline
// (agentstore_cli/render.py), and the pairing of calls with their results.

import { clean } from "./dom.js";

export const BUILTIN_TYPES = [
  "user_message", "plan_created", "tool_called", "tool_result", "llm_request",
  "llm_response", "state_updated", "error", "custom",
];

/** The CSS class that colours an event type (user-defined types share one). */
export function typeClass(type) {
  return BUILTIN_TYPES.includes(type) ? `t-${type}` : "t-other";
}

export function fmtInt(n) {
  return Number(n || 0).toLocaleString("en-US");
}

export function fmtCost(v) {
  v = Number(v || 0);
  if (v >= 1) return "$" + v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (v === 0 || v >= 0.0001) return "$" + v.toFixed(4);
  return "$" + v.toFixed(6);
}

export function fmtDuration(ms) {
  if (ms < 1000) return ms >= 1 || ms === 0 ? `${ms.toFixed(0)}ms` : `${ms.toFixed(2)}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(2)}s`;
  let minutes = Math.floor(seconds / 60);
  const sec = Math.floor(seconds) % 60;
  if (minutes < 60) return `${minutes}m${String(sec).padStart(2, "0")}s`;
  const hours = Math.floor(minutes / 60);
  minutes %= 60;
  return `${hours}h${String(minutes).padStart(2, "0")}m`;
}

export function fmtElapsed(seconds) {
  if (seconds < 10) return `+${seconds.toFixed(3)}s`;
  if (seconds < 60) return `+${seconds.toFixed(2)}s`;
  return "+" + fmtDuration(seconds * 1000);
}

export function fmtBytes(size) {
  let value = size;
  for (const unit of ["B", "KB", "MB", "GB"]) {
    if (value < 1024 || unit === "GB") return unit === "B" ? `${size} B` : `${value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return `${size} B`;
}

export function fmtTime(iso) {
  if (!iso) return "-";
  return String(iso).replace("T", " ").replace(/\.\d+/, "").replace("Z", "");
}

export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return "-";
  const seconds = Math.max((now - Date.parse(iso)) / 1000, 0);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)}${unit} ago`;
  }
  return `${Math.floor(seconds)}s ago`;
}

const PREVIEW = 400;

function jsonText(value) {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return String(value);
  }
}

/** A one-line, cleaned preview of a JSON value (strings without quotes). */
export function preview(value, limit = PREVIEW) {
  let text = typeof value === "string" ? value.slice(0, limit * 2) : jsonText(value);
  if (text.length > limit) text = text.slice(0, limit - 1) + "…";
  return clean(text.replace(/\s+/g, " "));
}

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function first(payload, ...keys) {
  if (isObj(payload)) {
    for (const key of keys) {
      const value = payload[key];
      if (value !== undefined && value !== null && value !== "") return value;
    }
  }
  return null;
}

function textOf(payload, ...keys) {
  if (typeof payload === "string") return preview(payload);
  const found = first(payload, ...keys);
  if (found === null) return payload === null || payload === undefined ? "" : preview(payload);
  if (Array.isArray(found) && found.length && isObj(found[found.length - 1])) {
    const last = found[found.length - 1];
    const inner = first(last, "content", "text");
    return preview(inner !== null ? inner : last);
  }
  return preview(found);
}

/** The tool name of a tool event, or null. */
export function toolName(event) {
  const name = (event.metadata || {}).tool_name ?? first(event.payload, "tool", "tool_name", "name");
  return name === null || name === undefined ? null : String(name);
}

/** The model of an LLM event, or null. */
export function modelName(event) {
  const name = (event.metadata || {}).model ?? first(event.payload, "model");
  return name === null || name === undefined ? null : String(name);
}

function callArgs(payload) {
  let args = first(payload, "args", "arguments", "input", "parameters", "params");
  if (args === null && isObj(payload)) {
    args = Object.fromEntries(
      Object.entries(payload).filter(([k]) => !["tool", "tool_name", "name"].includes(k)),
    );
  }
  if (isObj(args)) {
    return Object.entries(args).map(([k, v]) => `${clean(k)}=${preview(jsonText(v), 80)}`).join(", ");
  }
  return args === null ? "" : preview(args, 160);
}

function resultShape(payload) {
  let result = first(payload, "result", "results", "output", "data");
  if (result === null) result = payload;
  if (Array.isArray(result)) return `${result.length} item${result.length !== 1 ? "s" : ""}`;
  if (isObj(result)) {
    const lists = Object.entries(result).filter(([, v]) => Array.isArray(v));
    if (lists.length === 1) return `${lists[0][1].length} ${clean(lists[0][0])}`;
  }
  return null;
}

const CALL_TYPES = { tool_called: "tool_result", llm_request: "llm_response" };
// A result or an error closes the latest open call with its id (as the store's reducer does).
const RESULT_TYPES = { tool_result: true, llm_response: true, error: true };

/**
 * What the timeline knows about a session's events: calls paired with results by
 * `metadata.call_id` (a result closes the latest open call with its id, as the store's
 * `open_calls` does), durations, totals, and cumulative series for the charts.
 * Events are added in order with `add()`, so live events extend it.
 */
export class Analysis {
  constructor() {
    this.events = [];
    this.bySeq = new Map();
    this.partner = new Map(); // seq -> seq of the paired call or result
    this.duration = new Map(); // result seq -> ms
    this.open = new Map(); // call_id -> [seq, ...] still open (latest last)
    this.typeCounts = new Map();
    this.totals = { tokensIn: 0, tokensOut: 0, cost: 0, toolCalls: 0, errors: 0 };
    this.cumulative = []; // [seq, tokensIn, tokensOut, cost] per event
    this.toolDurations = []; // {seq, name, ms}
    this.firstTs = null;
  }

  add(event) {
    const seq = event.sequence_number;
    if (this.bySeq.has(seq)) return false;
    this.events.push(event);
    this.bySeq.set(seq, event);
    const meta = event.metadata || {};
    const type = event.type;
    if (this.firstTs === null && event.timestamp) this.firstTs = Date.parse(event.timestamp);
    this.typeCounts.set(type, (this.typeCounts.get(type) || 0) + 1);
    const t = this.totals;
    if (type === "llm_request" || type === "llm_response") {
      t.tokensIn += meta.tokens_in || 0;
      t.tokensOut += meta.tokens_out || 0;
      t.cost += meta.cost_usd || 0;
    } else if (type === "tool_called") t.toolCalls += 1;
    else if (type === "error") t.errors += 1;
    this.cumulative.push([seq, t.tokensIn, t.tokensOut, t.cost]);
    const callId = meta.call_id;
    if (callId !== undefined && callId !== null) {
      if (CALL_TYPES[type]) {
        const list = this.open.get(callId) || [];
        list.push(seq);
        this.open.set(callId, list);
      } else if (RESULT_TYPES[type]) {
        const list = this.open.get(callId);
        const callSeq = list ? list.pop() : undefined;
        if (list && !list.length) this.open.delete(callId);
        if (callSeq !== undefined) {
          this.partner.set(seq, callSeq);
          this.partner.set(callSeq, seq);
        }
        let ms = typeof meta.duration_ms === "number" ? meta.duration_ms : null;
        const call = callSeq !== undefined ? this.bySeq.get(callSeq) : null;
        if (ms === null && call && call.timestamp && event.timestamp) {
          ms = Date.parse(event.timestamp) - Date.parse(call.timestamp);
        }
        if (ms !== null) {
          this.duration.set(seq, ms);
          if (type === "tool_result") {
            this.toolDurations.push({ seq, name: toolName(event) || (call && toolName(call)) || "?", ms });
          }
        }
      }
    }
    return true;
  }

  /** Tell whether the call at `seq` has no result yet. */
  isOpen(seq) {
    const event = this.bySeq.get(seq);
    return Boolean(event && CALL_TYPES[event.type] && !this.partner.has(seq) &&
      (event.metadata || {}).call_id != null);
  }

  /** The number of calls without a result. */
  openCount() {
    let n = 0;
    for (const list of this.open.values()) n += list.length;
    return n;
  }

  elapsed(event) {
    if (this.firstTs === null || !event.timestamp) return "";
    return fmtElapsed(Math.max((Date.parse(event.timestamp) - this.firstTs) / 1000, 0));
  }

  /** The summary of an event as [text, class] segments (the CLI's wording). */
  summary(event) {
    const out = [];
    const payload = event.payload;
    const meta = event.metadata || {};
    const seq = event.sequence_number;
    const pair = this.partner.get(seq);
    const call = pair !== undefined && RESULT_TYPES[event.type] ? this.bySeq.get(pair) : null;
    switch (event.type) {
      case "user_message":
        out.push([textOf(payload, "content", "message", "text", "prompt"), ""]);
        break;
      case "plan_created": {
        const goal = first(payload, "goal", "objective");
        const steps = first(payload, "steps", "plan");
        if (goal !== null) out.push(["goal: ", "dim"], [preview(goal, 120), ""], [" · ", "dim"]);
        if (Array.isArray(steps)) {
          const names = steps.map((step) => {
            const label = first(step, "name", "tool", "title", "description", "step");
            return preview(label !== null ? label : step, 60);
          });
          out.push([`${steps.length} step${steps.length !== 1 ? "s" : ""}: ${names.join(" → ")}`, ""]);
        } else if (goal === null) out.push([preview(payload), ""]);
        break;
      }
      case "tool_called":
        out.push([clean(toolName(event) || "?"), "b"], [`(${callArgs(payload)})`, ""]);
        break;
      case "tool_result": {
        const name = toolName(event) || (call && toolName(call));
        out.push([clean(name || "?"), "b"], [" → ", ""]);
        const parts = [];
        const shape = resultShape(payload);
        if (shape !== null) parts.push(shape);
        parts.push(fmtBytes(new TextEncoder().encode(jsonText(payload)).length));
        if (this.duration.has(seq)) parts.push(`in ${fmtDuration(this.duration.get(seq))}`);
        if (call) parts.push(`call #${call.sequence_number}`);
        out.push([parts.join(", "), ""]);
        const error = first(payload, "error");
        if (error !== null) out.push([" · error: ", "err b"], [preview(error, 200), "err"]);
        else {
          const result = first(payload, "result", "results", "output");
          out.push([" · ", "dim"], [preview(result !== null ? result : payload), "dim"]);
        }
        break;
      }
      case "llm_request":
      case "llm_response": {
        const text = event.type === "llm_request"
          ? textOf(payload, "prompt", "messages", "input", "content")
          : textOf(payload, "content", "text", "output", "message");
        const model = modelName(event) || (call && modelName(call));
        const parts = [];
        if (meta.tokens_in != null) parts.push(`${fmtInt(meta.tokens_in)} in`);
        if (meta.tokens_out != null) parts.push(`${fmtInt(meta.tokens_out)} out`);
        if (meta.cost_usd != null) parts.push(fmtCost(meta.cost_usd));
        if (event.type === "llm_response" && this.duration.has(seq)) {
          parts.push(`in ${fmtDuration(this.duration.get(seq))}`);
        }
        if (model !== null) {
          out.push([clean(model), "b"]);
          if (parts.length) out.push([" · ", "dim"]);
        }
        out.push([parts.join(" · "), "num"]);
        if (text) out.push([parts.length || model !== null ? " · " : "", "dim"], [text, ""]);
        break;
      }
      case "error": {
        const kind = first(payload, "type", "error_type", "kind", "code");
        if (kind !== null) out.push([preview(kind, 60) + ": ", "err b"]);
        out.push([textOf(payload, "message", "error", "detail", "reason"), "err"]);
        if (first(payload, "recoverable") === true) out.push([" (recoverable)", "dim"]);
        if (call) out.push([` · call #${call.sequence_number}`, "dim"]);
        break;
      }
      default:
        out.push([payload === null || payload === undefined ? "" : preview(payload), ""]);
    }
    return out;
  }
}
