// Small SVG drawing kit shared by the book's explorers (the interactive figures of the
// web pages, written as OJS cells in chapters/_explorers/*.qmd). Each explorer loads it
// under its own name, e.g. gdKit = import(new URL("_explorers/explorer.js", document.baseURI).href)
// (a static OJS import would make Quarto's runtime fetch highlight.js to display it).
// No dependencies: the pages load only Observable Inputs for the sliders.

const SVG = "http://www.w3.org/2000/svg";

// An SVG element with attributes and children (elements or strings).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

// A linear or logarithmic scale from a data domain [d0, d1] to pixels [r0, r1].
export function scale([d0, d1], [r0, r1], {log = false} = {}) {
  const t = log ? Math.log10 : (v) => v;
  const t0 = t(d0), t1 = t(d1);
  const s = (v) => r0 + ((t(v) - t0) / (t1 - t0)) * (r1 - r0);
  s.invert = (p) => {
    const u = t0 + ((p - r0) / (r1 - r0)) * (t1 - t0);
    return log ? 10 ** u : u;
  };
  s.ticks = (n = 5) => (log ? logTicks(d0, d1) : ticks(d0, d1, n));
  s.domain = [d0, d1];
  s.range = [r0, r1];
  s.log = log;
  return s;
}

// About n "nice" tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
export function ticks(lo, hi, n = 5) {
  if (lo > hi) [lo, hi] = [hi, lo];
  const raw = (hi - lo) / Math.max(1, n);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => raw <= s);
  const out = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    out.push(Number((k * step).toPrecision(12)));
  }
  return out;
}

// The powers of ten inside [lo, hi].
export function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.ceil(Math.log10(lo) - 1e-9); e <= Math.floor(Math.log10(hi) + 1e-9); e++) {
    out.push(10 ** e);
  }
  return out;
}

// A tick label: plain decimals for "ordinary" numbers, 10^k style for powers of ten on log axes.
export function tickLabel(v, log = false) {
  if (log) {
    const e = Math.round(Math.log10(v));
    return e >= -2 && e <= 3 ? String(10 ** e >= 1 ? 10 ** e : Number((10 ** e).toFixed(-e))) : `1e${e}`;
  }
  return String(Number(v.toPrecision(6)));
}

// A plotting frame: an <svg> with axes, grid, tick labels and axis titles.
// Returns {svg, x, y, plot}: the scales map data to pixels, and `plot` is the
// group to draw into (clipped to the plotting area).
export function frame({width = 480, height = 320, margin = {top: 12, right: 14, bottom: 42, left: 56},
                       x: xDomain, y: yDomain, xLog = false, yLog = false,
                       xLabel = "", yLabel = "", title = "", id = "frame"}) {
  const x = scale(xDomain, [margin.left, width - margin.right], {log: xLog});
  const y = scale(yDomain, [height - margin.bottom, margin.top], {log: yLog});
  const clipId = `${id}-clip`;
  const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, width, role: "img",
                         "aria-label": title, style: "max-width: 100%; height: auto; font: 11px sans-serif; display: block;"});
  svg.append(el("defs", {}, el("clipPath", {id: clipId},
    el("rect", {x: margin.left, y: margin.top, width: width - margin.left - margin.right,
                height: height - margin.top - margin.bottom}))));
  const grid = el("g", {stroke: "currentColor", "stroke-opacity": 0.12});
  const labels = el("g", {fill: "currentColor"});
  for (const v of x.ticks(6)) {
    grid.append(el("line", {x1: x(v), x2: x(v), y1: margin.top, y2: height - margin.bottom}));
    labels.append(el("text", {x: x(v), y: height - margin.bottom + 14, "text-anchor": "middle"}, tickLabel(v, xLog)));
  }
  for (const v of y.ticks(5)) {
    grid.append(el("line", {x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v)}));
    labels.append(el("text", {x: margin.left - 5, y: y(v) + 4, "text-anchor": "end"}, tickLabel(v, yLog)));
  }
  labels.append(el("text", {x: (margin.left + width - margin.right) / 2, y: height - 6, "text-anchor": "middle"}, xLabel));
  labels.append(el("text", {transform: `translate(13, ${(margin.top + height - margin.bottom) / 2}) rotate(-90)`,
                            "text-anchor": "middle"}, yLabel));
  const box = el("rect", {x: margin.left, y: margin.top, width: width - margin.left - margin.right,
                          height: height - margin.top - margin.bottom, fill: "none", stroke: "currentColor",
                          "stroke-opacity": 0.4});
  const plot = el("g", {"clip-path": `url(#${clipId})`});
  svg.append(grid, box, labels, plot);
  return {svg, x, y, plot};
}

// Path data of a polyline through [x, y] points; non-finite points break the line.
export function linePath(points, x, y) {
  let d = "", pen = false;
  for (const [u, v] of points) {
    const px = x(u), py = y(v);
    if (!Number.isFinite(px) || !Number.isFinite(py)) { pen = false; continue; }
    d += `${pen ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`;
    pen = true;
  }
  return d;
}

// Contour lines of f over a grid (marching squares), as one list of segments per level.
export function contours(f, [x0, x1], [y0, y1], levels, n = 100) {
  const xs = Array.from({length: n + 1}, (_, i) => x0 + ((x1 - x0) * i) / n);
  const ys = Array.from({length: n + 1}, (_, j) => y0 + ((y1 - y0) * j) / n);
  const v = ys.map((yv) => xs.map((xv) => f(xv, yv)));
  const out = levels.map(() => []);
  // the edges of a cell: [corner a, corner b] as (i, j) offsets, in the order bottom, right, top, left
  const edges = [[[0, 0], [1, 0]], [[1, 0], [1, 1]], [[0, 1], [1, 1]], [[0, 0], [0, 1]]];
  // for each corner pattern (a bit per corner above the level: 1 = (0,0), 2 = (1,0), 4 = (1,1), 8 = (0,1)),
  // the pairs of crossed edges that a segment joins (saddles 5 and 10 are split by the center)
  const pairs = {1: [[3, 0]], 2: [[0, 1]], 3: [[3, 1]], 4: [[1, 2]], 6: [[0, 2]], 7: [[3, 2]], 8: [[2, 3]],
                 9: [[2, 0]], 11: [[2, 1]], 12: [[1, 3]], 13: [[1, 0]], 14: [[0, 3]]};
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const a = v[j][i], b = v[j][i + 1], c = v[j + 1][i + 1], d = v[j + 1][i];
      const lo = Math.min(a, b, c, d), hi = Math.max(a, b, c, d);
      for (let k = 0; k < levels.length; k++) {
        const level = levels[k];
        if (level < lo || level >= hi) continue;
        const code = (a > level) | ((b > level) << 1) | ((c > level) << 2) | ((d > level) << 3);
        const center = (a + b + c + d) / 4 > level;
        const joined = code === 5 ? (center ? [[3, 2], [0, 1]] : [[3, 0], [1, 2]])
          : code === 10 ? (center ? [[0, 3], [2, 1]] : [[0, 1], [2, 3]]) : pairs[code];
        if (!joined) continue;
        const value = (di, dj) => v[j + dj][i + di];
        const point = (e) => {
          const [[ai, aj], [bi, bj]] = edges[e];
          const va = value(ai, aj), vb = value(bi, bj), t = (level - va) / (vb - va);
          return [xs[i + ai] + t * (xs[i + bi] - xs[i + ai]), ys[j + aj] + t * (ys[j + bj] - ys[j + aj])];
        };
        for (const [p, q] of joined) out[k].push([point(p), point(q)]);
      }
    }
  }
  return out;
}

// Path data of line segments [[x, y], [x, y]] in data coordinates.
export function segmentsPath(segments, x, y) {
  return segments.map(([[a, b], [c, d]]) =>
    `M${x(a).toFixed(1)},${y(b).toFixed(1)}L${x(c).toFixed(1)},${y(d).toFixed(1)}`).join("");
}

// Fixed-decimals formatting (as Python's f"{v:.3f}"), but writing -0.000 as 0.000.
export function fixed(v, digits) {
  const s = v.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

// Give every control of an Inputs form an accessible name. Inputs labels only the first
// input of a form (a slider's number box), so the slider gets the label's text, and a
// group of radio buttons (each labelled by its option) is named as a radio group.
export function labelled(form) {
  const text = form.querySelector("label")?.textContent.trim();
  if (!text) return form;
  for (const input of form.querySelectorAll("input, select")) {
    const named = input.closest("label") || (input.id && form.querySelector(`label[for="${input.id}"]`));
    if (!named && !input.getAttribute("aria-label")) input.setAttribute("aria-label", text);
  }
  const radio = form.querySelector("input[type=radio]");
  if (radio) {
    radio.parentElement.parentElement.setAttribute("role", "radiogroup");
    radio.parentElement.parentElement.setAttribute("aria-label", text);
  }
  return form;
}

// Set an Inputs control to a value and let the page react, as if the reader had moved it.
export function setInput(input, value) {
  input.value = value;
  input.dispatchEvent(new Event("input", {bubbles: true}));
}

// The book's palette (the colorblind palette of seaborn used by the static figures).
export const colors = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494"];

