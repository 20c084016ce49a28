// A tiny SVG line chart: time on x, one value on y, a few series. No library, no inline styles
// (the page's CSP allows only its own stylesheet): colours and dashes come from CSS classes.

// The SVG namespace, from the HTML parser rather than written out: the static files carry no URL.
const SVG = (() => {
  const t = document.createElement("template");
  t.innerHTML = "<svg></svg>";
  return t.content.firstChild.namespaceURI;
})();
const W = 480;
const H = 180;
const PAD = { left: 52, right: 10, top: 12, bottom: 22 };

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

// Axis labels with as many decimals as the gridlines' spacing needs; rates (0..1) as percentages.
function axisFormat(yMax, rate) {
  const step = (rate ? yMax * 100 : yMax) / 4;
  let digits = 0;
  while (digits < 4 && Math.abs(Math.round(step * 10 ** digits) - step * 10 ** digits) > 1e-9) digits++;
  return rate ? (v) => `${(v * 100).toFixed(digits)} %` : (v) => v.toFixed(digits);
}

function clock(t) {
  const d = new Date(t);
  return d.toTimeString().slice(0, 8);
}

/**
 * Draw (or redraw) a chart into `host`, an element of its own.
 * series: [{name, cls, points: [[timeMs, value|null], ...]}]; null values break the line.
 * opts: {title, rate (values are 0..1, labelled as percentages), fixedMax}
 */
export function lineChart(host, series, opts = {}) {
  const all = series.flatMap((s) => s.points);
  const values = all.map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v));
  const times = all.map((p) => p[0]);

  const svg = el("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": opts.title || "chart",
  });
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const yMax = opts.fixedMax ?? niceMax(values.length ? Math.max(...values) : 0);
  const fmt = axisFormat(yMax, opts.rate === true);
  const tMin = times.length ? Math.min(...times) : 0;
  const tMax = times.length ? Math.max(...times) : 1;
  const x = (t) => PAD.left + (tMax > tMin ? ((t - tMin) / (tMax - tMin)) * plotW : plotW);
  const y = (v) => PAD.top + plotH - (Math.min(v, yMax) / yMax) * plotH;

  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: PAD.left - 4, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmt(v)));
  }
  if (!values.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, class: "axis", "text-anchor": "middle" }, "no data yet"));
  }
  if (times.length) {
    svg.append(el("text", { x: PAD.left, y: H - 6, class: "axis" }, clock(tMin)));
    svg.append(el("text", { x: W - PAD.right, y: H - 6, class: "axis", "text-anchor": "end" }, clock(tMax)));
  }

  for (const s of series) {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || !Number.isFinite(v)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    }
    const path = el("path", { d: d.trim() || "M0,0", class: `line ${s.cls || ""}` });
    path.append(el("title", {}, s.name));
    svg.append(path);
    const last = [...s.points].reverse().find((p) => p[1] !== null && Number.isFinite(p[1]));
    if (last) svg.append(el("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.5, class: `dot ${s.cls || ""}` }));
  }

  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    item.className = `key ${s.cls || ""}`;
    item.textContent = s.name;
    legend.append(item);
  }
  const title = document.createElement("h3");
  title.textContent = opts.title || "";
  host.replaceChildren(title, svg, legend);
}
