// Charts drawn as SVG by this file: cumulative tokens and cost over steps, tool-call
// durations, and events per type. Colours come from CSS classes, so both themes apply.

import { h, s } from "./dom.js";
import { fmtCost, fmtDuration, fmtInt, typeClass } from "./format.js";

const W = 640;
const H = 220;
const PAD = { left: 64, right: 16, top: 12, bottom: 28 };
const MAX_POINTS = 800; // a line of 10,000 points draws no better than one of 800

function thin(points) {
  if (points.length <= MAX_POINTS) return points;
  const step = points.length / MAX_POINTS;
  const out = [];
  for (let i = 0; i < MAX_POINTS; i++) out.push(points[Math.floor(i * step)]);
  out.push(points[points.length - 1]);
  return out;
}

function frame(title, id) {
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", id, role: "img", "aria-label": title });
  return svg;
}

function axes(svg, maxY, yFormat, xLabel) {
  const x0 = PAD.left;
  const y0 = H - PAD.bottom;
  svg.append(
    s("line", { x1: x0, y1: PAD.top, x2: x0, y2: y0, class: "axis" }),
    s("line", { x1: x0, y1: y0, x2: W - PAD.right, y2: y0, class: "axis" }),
  );
  for (const frac of [0, 0.5, 1]) {
    const y = y0 - frac * (y0 - PAD.top);
    svg.append(
      s("line", { x1: x0, y1: y, x2: W - PAD.right, y2: y, class: "grid" }),
      s("text", { x: x0 - 6, y: y + 4, class: "tick", "text-anchor": "end" }, yFormat(maxY * frac)),
    );
  }
  svg.append(s("text", { x: W - PAD.right, y: H - 6, class: "tick", "text-anchor": "end" }, xLabel));
}

/** A line chart of `series` ([{name, cls, points: [[x, y]]}]) over steps. */
export function lineChart(title, id, series, yFormat) {
  const svg = frame(title, id);
  const all = series.flatMap((line) => line.points);
  const maxX = Math.max(1, ...all.map((p) => p[0]));
  const maxY = Math.max(...all.map((p) => p[1]), 0) || 1;
  axes(svg, maxY, yFormat, `step (max ${fmtInt(maxX)})`);
  const sx = (x) => PAD.left + (x / maxX) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - (y / maxY) * (H - PAD.top - PAD.bottom);
  for (const line of series) {
    const pts = thin(line.points);
    if (!pts.length) continue;
    const d = pts.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    svg.append(s("path", { d, class: `line ${line.cls}` }, s("title", {}, line.name)));
  }
  return figure(title, svg, series.map((line) => h("span", { class: `key ${line.cls}` }, line.name)));
}

/** Vertical bars, one per item ([{label, value, cls}]), in order. */
export function barChart(title, id, items, yFormat) {
  const svg = frame(title, id);
  const maxY = Math.max(...items.map((i) => i.value), 0) || 1;
  axes(svg, maxY, yFormat, `${fmtInt(items.length)} calls, in order`);
  const inner = W - PAD.left - PAD.right;
  const bw = inner / Math.max(items.length, 1);
  items.forEach((item, i) => {
    const bh = (item.value / maxY) * (H - PAD.top - PAD.bottom);
    svg.append(s("rect", {
      x: (PAD.left + i * bw + bw * 0.1).toFixed(2), y: (H - PAD.bottom - bh).toFixed(2),
      width: Math.max(bw * 0.8, 0.5).toFixed(2), height: Math.max(bh, 0.5).toFixed(2),
      class: `bar ${item.cls || ""}`, dataset: { seq: String(item.seq ?? "") },
    }, s("title", {}, item.label)));
  });
  return figure(title, svg, []);
}

/** Horizontal bars with labels: [{label, value, cls}]. */
export function hbarChart(title, id, items) {
  const rowH = 24;
  const height = Math.max(items.length * rowH + 8, 40);
  const svg = s("svg", { viewBox: `0 0 ${W} ${height}`, class: "chart", id, role: "img", "aria-label": title });
  const maxV = Math.max(...items.map((i) => i.value), 0) || 1;
  const x0 = 140;
  items.forEach((item, i) => {
    const y = 4 + i * rowH;
    const bw = (item.value / maxV) * (W - x0 - 70);
    svg.append(
      s("text", { x: x0 - 8, y: y + 15, class: "tick", "text-anchor": "end" }, item.label),
      s("rect", { x: x0, y: y + 3, width: Math.max(bw, 1).toFixed(2), height: rowH - 8,
        class: `bar ${item.cls || ""}`, dataset: { type: item.label } }, s("title", {}, `${item.label}: ${item.value}`)),
      s("text", { x: x0 + bw + 6, y: y + 15, class: "tick" }, fmtInt(item.value)),
    );
  });
  return figure(title, svg, []);
}

function figure(title, svg, keys) {
  return h("figure", { class: "chart-box" }, h("figcaption", {}, title, keys.length ? h("span", { class: "keys" }, keys) : null), svg);
}

/** The charts tab of a session page. */
export function renderCharts(analysis) {
  const cum = analysis.cumulative;
  const tokens = lineChart("Tokens over steps (cumulative)", "chart-tokens", [
    { name: "in", cls: "s-in", points: cum.map((c) => [c[0], c[1]]) },
    { name: "out", cls: "s-out", points: cum.map((c) => [c[0], c[2]]) },
  ], (v) => fmtInt(Math.round(v)));
  const cost = lineChart("Cost over steps (cumulative, USD)", "chart-cost", [
    { name: "cost", cls: "s-cost", points: cum.map((c) => [c[0], c[3]]) },
  ], (v) => fmtCost(v));
  let calls = analysis.toolDurations;
  let note = null;
  if (calls.length > 400) {
    note = h("p", { class: "muted small" }, `The last 400 of ${fmtInt(calls.length)} tool calls.`);
    calls = calls.slice(-400);
  }
  const durations = calls.length
    ? barChart("Tool-call durations", "chart-durations", calls.map((c) => ({
      label: `#${c.seq} ${c.name}: ${fmtDuration(c.ms)}`, value: c.ms, cls: "t-tool_result", seq: c.seq,
    })), (v) => fmtDuration(v))
    : h("figure", { class: "chart-box", id: "chart-durations" }, h("figcaption", {}, "Tool-call durations"),
      h("p", { class: "muted" }, "No tool call has a result with a duration yet."));
  const types = hbarChart("Events per type", "chart-types",
    [...analysis.typeCounts.entries()].sort((a, b) => b[1] - a[1])
      .map(([type, n]) => ({ label: type, value: n, cls: typeClass(type) })));
  return h("div", { class: "charts", id: "charts" }, tokens, cost, durations, note, types);
}
