// Small SVG charts for the dashboard, no library: a line chart of series
// over time (one <circle> per point, carrying data-arm / data-series, so a
// reader or a test can count them) and a bar chart per day. Axes carry
// ticks and units; a legend names each series.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 420, H = 220, L = 56, R = 12, T = 28, B = 44;

  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1); }
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const start = Math.floor(lo / step) * step, ticks = [];
    for (let v = start; v <= hi + step * 0.5; v += step) ticks.push(+v.toPrecision(12));
    return ticks;
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(1);
    if (a >= 100) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1).replace(/\.0$/, "");
    return v.toPrecision(2);
  }

  function clock(ms) {
    const d = new Date(ms);
    return d.toTimeString().slice(0, 8);
  }

  function frame(svg, title, unit, yTicks, y) {
    svg.appendChild(el("text", { x: L, y: 16, class: "title" }, title + (unit ? " (" + unit + ")" : "")));
    for (const t of yTicks) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(t), y2: y(t), class: "gridline" }));
      svg.appendChild(el("text", { x: L - 6, y: y(t) + 4, "text-anchor": "end" }, fmt(t)));
    }
    svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  }

  function legend(svg, names) {
    let x = L;
    for (const name of names) {
      svg.appendChild(el("rect", { x: x, y: H - 14, width: 10, height: 10, class: "s-" + name }));
      svg.appendChild(el("text", { x: x + 14, y: H - 5 }, name));
      x += 24 + name.length * 7;
    }
  }

  // series: [{name, points: [[t_ms, value], ...]}]; attr: the data-*
  // attribute naming a point's series ("arm" for a canary's arms).
  function line(opts) {
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img" });
    for (const [k, v] of Object.entries(opts.data || {})) svg.setAttribute("data-" + k, v);
    const pts = opts.series.flatMap((s) => s.points);
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (!pts.length) { x0 = Date.now() - 60000; x1 = Date.now(); }
    if (x1 - x0 < 1000) { x0 -= 1000; x1 += 1000; }
    const yTicks = niceTicks(Math.min(0, ...ys), pts.length ? Math.max(...ys) : 1, 4);
    const ylo = yTicks[0], yhi = yTicks[yTicks.length - 1];
    const x = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const y = (v) => H - B - ((v - ylo) / (yhi - ylo || 1)) * (H - B - T);
    frame(svg, opts.title, opts.unit, yTicks, y);
    [["start", x0], ["middle", (x0 + x1) / 2], ["end", x1]].forEach(([anchor, t]) => {
      svg.appendChild(el("text", { x: x(t), y: H - B + 14, "text-anchor": anchor }, clock(t)));
    });
    if (!pts.length) {
      svg.appendChild(el("text", { x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle", class: "empty" }, opts.empty || "no value yet"));
    }
    svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - B + 28, "text-anchor": "middle" }, "time"));
    for (const s of opts.series) {
      if (s.points.length > 1) {
        svg.appendChild(el("polyline", {
          class: "s-" + s.name,
          points: s.points.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "),
        }));
      }
      for (const p of s.points) {
        // Baseline points are rings, canary points dots, so equal values
        // still show both arms.
        const c = el("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: s.name === "baseline" ? 4 : 2.5, class: "point s-" + s.name });
        c.setAttribute("data-" + (opts.attr || "series"), s.name);
        c.appendChild(el("title", {}, s.name + " " + fmt(p[1]) + (opts.unit ? " " + opts.unit : "") + " at " + clock(p[0])));
        svg.appendChild(c);
      }
    }
    legend(svg, opts.series.map((s) => s.name));
    return svg;
  }

  // days: [{until_ms, <series>: n}], series: names to draw side by side.
  function bars(opts) {
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img" });
    for (const [k, v] of Object.entries(opts.data || {})) svg.setAttribute("data-" + k, v);
    const max = Math.max(1, ...opts.days.flatMap((d) => opts.series.map((s) => d[s])));
    const yTicks = niceTicks(0, max, Math.min(4, max));
    const yhi = yTicks[yTicks.length - 1];
    const y = (v) => H - B - (v / yhi) * (H - B - T);
    frame(svg, opts.title, opts.unit, yTicks, y);
    const slot = (W - L - R) / Math.max(1, opts.days.length);
    const bw = Math.max(1, (slot - 2) / opts.series.length);
    opts.days.forEach((d, i) => {
      opts.series.forEach((s, j) => {
        if (!d[s]) return;
        const r = el("rect", {
          x: (L + i * slot + 1 + j * bw).toFixed(1), y: y(d[s]).toFixed(1),
          width: bw.toFixed(1), height: (H - B - y(d[s])).toFixed(1), class: "bar s-" + s,
        });
        r.setAttribute("data-series", s);
        r.appendChild(el("title", {}, s + ": " + d[s] + " on the day to " + new Date(d.until_ms).toLocaleDateString()));
        svg.appendChild(r);
      });
    });
    const days = opts.days;
    if (days.length) {
      const label = (ms) => new Date(ms).toISOString().slice(5, 10);
      svg.appendChild(el("text", { x: L, y: H - B + 14 }, label(days[0].until_ms)));
      svg.appendChild(el("text", { x: W - R, y: H - B + 14, "text-anchor": "end" }, label(days[days.length - 1].until_ms)));
    }
    svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - B + 28, "text-anchor": "middle" }, "day"));
    legend(svg, opts.series);
    return svg;
  }

  window.Charts = { line: line, bars: bars, fmt: fmt };
})();
