// Line charts drawn as inline SVG: no library, nothing fetched.

const NS = "http://www.w3.org/2000/svg";
// Distinguishable colours, each at least 3:1 against the panel background.
const COLOURS = ["#0b4f8a", "#a4161a", "#1a6b2f", "#7a4b00", "#5b2a86", "#00616e", "#8a2c5c", "#3d4a57"];

function el(name, attrs) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function fmt(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (v >= 10 || v === 0) return String(Math.round(v));
  return v.toFixed(2);
}

/**
 * A figure with one line per series. `series` is [{ name, values: [numbers] }],
 * all over the same sample times `times` (Date objects).
 */
export function lineChart(title, times, series) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap);
  const W = 600, H = 180, L = 44, R = 8, T = 8, B = 22;
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  const top = max > 0 ? max * 1.1 : 1;
  const n = Math.max(times.length, 2);
  const x = (i) => L + ((W - L - R) * i) / (n - 1);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const latest = series.map((s) => `${s.name} ${fmt(s.values[s.values.length - 1] || 0)}`).join(", ");
  const svg = el("svg", {
    class: "chart",
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": `${title}: latest ${latest || "no data"}`,
  });
  for (const f of [0, 0.5, 1]) {
    const v = top * f;
    svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#c9d1d9", "stroke-width": 1 }));
    const t = el("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" });
    t.textContent = fmt(v);
    svg.append(t);
  }
  if (times.length) {
    const first = el("text", { x: L, y: H - 6 });
    first.textContent = times[0].toLocaleTimeString();
    const last = el("text", { x: W - R, y: H - 6, "text-anchor": "end" });
    last.textContent = times[times.length - 1].toLocaleTimeString();
    svg.append(first, last);
  }
  series.forEach((s, i) => {
    if (!s.values.length) return;
    const pts = s.values.map((v, j) => `${x(j).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("polyline", {
      points: pts, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": 2,
      "vector-effect": "non-scaling-stroke",
    }));
  });
  fig.append(svg);
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, i) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = COLOURS[i % COLOURS.length];
    li.append(sw, `${s.name}: ${fmt(s.values[s.values.length - 1] || 0)}`);
    legend.append(li);
  });
  if (!series.length) {
    const li = document.createElement("li");
    li.textContent = "No data yet.";
    legend.append(li);
  }
  fig.append(legend);
  return fig;
}
