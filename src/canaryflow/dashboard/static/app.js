// canaryflow dashboard: live fragments over server-sent events, and the charts (uPlot).
// The server renders and escapes every fragment; this script only places them and draws numbers.
"use strict";
(function () {
  const PHASES = ["Initializing", "Initialized", "Waiting", "Progressing", "WaitingPromotion", "Promoting",
    "Finalising", "Succeeded", "Failed", "Terminating", "Terminated"];
  const UNITS = {
    bytes: (v) => (v / 1048576).toFixed(1) + " MiB", percentunit: (v) => (v * 100).toFixed(1) + "%",
    ms: (v) => v + " ms", s: (v) => v.toPrecision(2) + " s", reqps: (v) => v + " req/s", percent: (v) => v + "%",
  };
  const charts = {};
  const state = (window.canaryflow = { timeline: null, panels: [] });

  function width(el) { return Math.max(320, el.clientWidth || 800); }

  function chart(el, name, opts, data) {
    el.setAttribute("data-points", String(data[0].length));
    if (charts[name] && charts[name].series.length === opts.series.length) { charts[name].setData(data); return; }
    if (charts[name]) charts[name].destroy();
    el.textContent = "";
    charts[name] = new uPlot(Object.assign({ width: width(el), height: 220 }, opts), data, el);
  }

  function drawTimeline(t) {
    state.timeline = t;
    const el = document.getElementById("timeline");
    if (!el) return;
    const phase = t.phase.map((p) => PHASES.indexOf(p));
    chart(el, "timeline", {
      scales: { x: { time: true }, w: { range: [0, 100] }, p: { range: [0, PHASES.length - 1] } },
      axes: [{}, { scale: "w", label: "weight %" },
        { scale: "p", side: 1, grid: { show: false }, size: 120, splits: () => PHASES.map((_, i) => i),
          values: (u, v) => v.map((i) => PHASES[i] || "") }],
      series: [{}, { label: "canary weight", scale: "w", stroke: "#d9480f", width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: "primary weight", scale: "w", stroke: "#1864ab", width: 1, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: "phase", scale: "p", stroke: "#5c940d", dash: [4, 4], paths: uPlot.paths.stepped({ align: 1 }),
          value: (u, v) => PHASES[v] || "" }],
    }, [t.time, t.weight, t.weight.map((w) => 100 - w), phase]);
    const box = document.getElementById("metric-charts");
    Object.keys(t.metrics).forEach((name) => {
      let fig = box.querySelector(`figure[data-metric="${CSS.escape(name)}"]`);
      if (!fig) {
        fig = document.createElement("figure");
        fig.className = "metric";
        fig.dataset.metric = name;
        const cap = document.createElement("figcaption");
        cap.textContent = name;
        fig.append(cap, document.createElement("div"));
        box.append(fig);
      }
      const th = t.thresholds[name] || {};
      const line = (v) => t.time.map(() => (v === null || v === undefined ? null : v));
      chart(fig.lastChild, "metric:" + name, {
        height: 160, scales: { x: { time: true } },
        series: [{}, { label: name, stroke: "#1864ab", width: 2 },
          { label: "min", stroke: "#c92a2a", dash: [6, 4] }, { label: "max", stroke: "#c92a2a", dash: [6, 4] }],
      }, [t.time, t.metrics[name], line(th.min), line(th.max)]);
    });
  }

  function live(url) {
    const source = new EventSource(url);
    source.addEventListener("html", (e) => {
      const parts = JSON.parse(e.data);
      Object.keys(parts).forEach((id) => {
        const el = document.getElementById(id);
        if (el) el.innerHTML = parts[id];  // server-rendered, escaped HTML
      });
    });
    source.addEventListener("timeline", (e) => drawTimeline(JSON.parse(e.data)));
  }

  async function grafana(root) {
    const response = await fetch(root.dataset.source, { headers: { accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) { root.prepend(Object.assign(document.createElement("p"), { className: "notice", textContent: data.error })); return; }
    state.panels = data.panels;
    data.panels.forEach((panel, i) => {
      const fig = root.querySelector(`figure[data-index="${i}"]`);
      // The fewest points any of its series has: 0 when a query returned nothing.
      const counts = panel.series.map((s) => s.values.filter((v) => v !== null).length);
      const points = counts.length ? Math.min(...counts) : 0;
      const series = [{}].concat(panel.series.map((s, j) => ({ label: s.label, stroke: ["#1864ab", "#d9480f", "#5c940d", "#862e9c"][j % 4] })));
      const fmt = UNITS[fig.dataset.unit] || ((v) => v);
      const axes = [{}, { size: 80, values: (u, vals) => vals.map(fmt) }];
      chart(fig.querySelector(".plot"), "panel:" + i, { height: 200, scales: { x: { time: true } }, axes: axes, series: series },
        [data.time].concat(panel.series.map((s) => s.values)));
      fig.setAttribute("data-points", String(points));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const stream = document.body.dataset.stream;
    if (stream) live(stream);
    const root = document.getElementById("grafana");
    if (root) { grafana(root); setInterval(() => grafana(root), 10000); }
  });
})();
