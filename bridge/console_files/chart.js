// A small SVG bar chart drawn from data (no library): bars, a value axis, labels, and the same
// figures as a table for screen readers and for anyone who prefers numbers.

import { h, svg } from "./dom.js";

const WIDTH = 640;
const BAR_AREA = 180;
const LEFT = 64;
const BOTTOM = 56;
const TOP = 12;

export function barChart({ title, points, format, tick = format, id }) {
  const max = Math.max(...points.map((p) => p.value), 0) || 1;
  const step = (WIDTH - LEFT - 8) / Math.max(points.length, 1);
  const barWidth = Math.max(Math.min(step * 0.7, 48), 2);
  const y = (value) => TOP + BAR_AREA - (value / max) * BAR_AREA;
  const ticks = [0, max / 2, max];
  // Label every bar when there is room, else every n-th one (the table has them all).
  const every = Math.ceil(44 / step);
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${TOP + BAR_AREA + BOTTOM}`, role: "img",
    "aria-labelledby": `${id}-title`, class: "chart", "data-points": points.length },
  svg("title", { id: `${id}-title`, text: title }),
  ticks.map((value) => [
    svg("line", { x1: LEFT, x2: WIDTH, y1: y(value), y2: y(value), class: "grid" }),
    svg("text", { x: LEFT - 6, y: y(value) + 4, "text-anchor": "end", class: "axis",
      text: tick(value) }),
  ]),
  points.map((point, i) => {
    const x = LEFT + i * step + (step - barWidth) / 2;
    const top = y(point.value);
    return svg("g", { class: "bar", "data-label": point.label, "data-value": point.value },
      svg("rect", { x, y: top, width: barWidth, height: TOP + BAR_AREA - top, rx: 2 },
        svg("title", { text: `${point.label}: ${format(point.value)}` })),
      i % every ? null : svg("text", { x: x + barWidth / 2, y: TOP + BAR_AREA + 16,
        "text-anchor": "middle", class: "label", text: shorten(point.label, step * every) }));
  }));
  const table = h("details", { class: "chart-data" }, h("summary", { text: "Show the figures" }),
    h("table", {}, h("caption", { class: "visually-hidden", text: title }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Group" }),
        h("th", { scope: "col", text: "Value" }))),
      h("tbody", {}, points.map((p) => h("tr", {}, h("th", { scope: "row", text: p.label }),
        h("td", { text: format(p.value) }))))));
  return h("figure", { class: "card chart-card", id },
    h("figcaption", { text: title }), chart, table);
}

function shorten(label, room) {
  const fits = Math.max(Math.floor(room / 7), 3);
  return label.length > fits ? `${label.slice(0, fits - 1)}…` : label;
}
