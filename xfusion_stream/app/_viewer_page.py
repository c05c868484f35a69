"""The live viewer's one page: plain HTML and JavaScript, nothing fetched from elsewhere.

It polls ``api/state`` (run, frame count, new series rows), shows a frame's three
panels from ``frame/N/PANEL.png`` and draws the plots on canvases. Stable element ids
(``frame-count``, ``run-uid``, ``run-status``, ``panel-fused``, ``panel-shimadzu``,
``panel-phantom``, ``scrubber``, ``follow``) are what the browser test reads.
"""

from __future__ import annotations

__all__ = ["PAGE"]

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 12px; background: #f4f4f4; color: #222; }
header { display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; }
.count { font-size: 22px; font-weight: bold; }
.panels { display: flex; gap: 12px; margin: 12px 0; flex-wrap: wrap; }
figure { margin: 0; background: #fff; padding: 6px; border: 1px solid #ccc; }
figure img { width: 384px; min-height: 64px; image-rendering: pixelated; background: #ddd;
  display: block; }
figcaption { font-size: 12px; margin-top: 4px; max-width: 384px; }
.missing { color: #a00; }
.controls { display: flex; gap: 12px; align-items: center; }
#scrubber { width: 600px; }
.plots { display: flex; gap: 12px; flex-wrap: wrap; }
.plot { background: #fff; border: 1px solid #ccc; padding: 4px; }
.plot h2 { font-size: 12px; margin: 0 0 4px 0; }
"""

_BODY = """
<header>
  <h1>xfusion live viewer</h1>
  <span>frames fused: <span id="frame-count" class="count">0</span></span>
  <span>gaps: <span id="gap-count">0</span></span>
  <span>run: <code id="run-uid">waiting for a fused run</code></span>
  <span>status: <b id="run-status">waiting</b></span>
  <span id="run-detail"></span>
</header>
<div class="panels">
  <figure><img id="panel-fused" alt="fused frame"><figcaption id="cap-fused">fused</figcaption></figure>
  <figure><img id="panel-shimadzu" alt="registered Shimadzu frame">
    <figcaption id="cap-shimadzu">registered Shimadzu</figcaption></figure>
  <figure><img id="panel-phantom" alt="nearest Phantom frame">
    <figcaption id="cap-phantom">nearest Phantom</figcaption></figure>
</div>
<div class="controls">
  <input type="range" id="scrubber" min="0" max="0" value="0" step="1">
  <span>frame <b id="shown-frame">-</b></span>
  <label><input type="checkbox" id="follow" checked> follow newest</label>
  <span id="kept"></span>
</div>
<div class="plots" id="plots"></div>
"""

_SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
let serial = null, firstRow = 0, series = {}, groups = [], shown = 0, count = 0;

async function poll() {
  try {
    const since = firstRow + rowCount();
    const r = await fetch("api/state?since=" + since, {cache: "no-store"});
    if (r.ok) update(await r.json());
  } catch (e) { $("run-status").textContent = "viewer unreachable"; }
  setTimeout(poll, 500);
}

function rowCount() {
  const k = Object.keys(series)[0];
  return k === undefined ? 0 : series[k].length;
}

function update(s) {
  const run = s.run || {};
  if (run.serial !== serial || s.first_row !== firstRow || s.since !== firstRow + rowCount()) {
    serial = run.serial; firstRow = s.first_row; series = {}; shown = 0;
    if (s.since !== s.first_row) return;  // refetch from the start next time
  }
  const before = rowCount();
  for (const [k, v] of Object.entries(s.series)) {
    if (!(k in series)) series[k] = new Array(before).fill(null);
    series[k].push(...v);
  }
  const after = before + (Object.values(s.series)[0] || []).length;
  for (const k in series) while (series[k].length < after) series[k].push(null);
  groups = s.groups;
  count = s.count;
  $("frame-count").textContent = String(count);
  $("gap-count").textContent = String(s.gaps);
  $("run-uid").textContent = run.uid || (run.joined_late ? "(joined mid-run)" : "waiting for a fused run");
  $("run-status").textContent = run.status || "waiting";
  const detail = [run.traverse_mode && run.traverse_mode + " mode", run.model && "model " + run.model,
    run.raw_uid && "raw run " + run.raw_uid.slice(0, 8), run.reason].filter(Boolean);
  $("run-detail").textContent = detail.join(", ");
  const sc = $("scrubber");
  const lo = s.kept.length ? s.kept[0] : 0, hi = s.kept.length ? s.kept[1] : 0;
  sc.min = String(lo); sc.max = String(hi);
  $("kept").textContent = s.kept.length ? `panels kept: ${lo}-${hi} (last ${s.max_frames})` : "";
  if ($("follow").checked && hi) sc.value = String(hi);
  show(Number(sc.value));
  drawPlots();
}

async function show(n) {
  if (!n || n === shown) return;
  shown = n;
  const r = await fetch("api/frame/" + n, {cache: "no-store"});
  const info = r.ok ? await r.json() : null;
  if (n !== shown) return;  // a later frame was asked for while this one was on its way
  $("shown-frame").textContent = String(n);
  for (const panel of ["fused", "shimadzu", "phantom"]) {
    const img = $("panel-" + panel), cap = $("cap-" + panel);
    if (info && info.panels.includes(panel)) {
      img.src = `frame/${n}/${panel}.png`;
      cap.className = "";
      cap.textContent = caption(panel, info);
    } else {
      img.removeAttribute("src");
      cap.className = "missing";
      const why = info && info.problems[panel];
      cap.textContent = info ? `${panel}: ${why || "not in this stream"}` : `frame ${n} is no longer kept`;
    }
  }
  drawPlots();
}

function caption(panel, info) {
  let text;
  if (panel === "fused") text = `fused: Shimadzu ${info.shimadzu_index} (window ${info.window_index})`;
  else if (panel === "shimadzu") text = `registered Shimadzu ${info.shimadzu_index}`;
  else {
    const held = info.truth_index !== null && info.truth_index >= 0 && info.truth_index === info.phantom_index;
    text = `nearest Phantom ${info.phantom_index}` + (held ? " (held out, at t)" : " (input before t)");
  }
  const bad = info.nonfinite[panel];
  return bad ? text + ` - ${bad} non-finite pixels (magenta)` : text;
}

function drawPlots() {
  const box = $("plots");
  for (const g of groups) {
    const id = "plot-" + g.title.replace(/[^a-z0-9]+/gi, "-");
    let div = document.getElementById(id);
    if (!div) {
      div = document.createElement("div");
      div.className = "plot"; div.id = id;
      div.innerHTML = "<h2></h2><canvas width='420' height='190'></canvas>";
      div.querySelector("h2").textContent = g.title;
      box.appendChild(div);
    }
    // a group with no value in this run (truth scores outside double mode) stays hidden
    const any = g.keys.some((k) => (series[k] || []).some((v) => v !== null));
    div.style.display = any ? "" : "none";
    if (any) drawPlot(div.querySelector("canvas"), g.keys);
  }
}

function drawPlot(canvas, keys) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  const L = 48, R = 8, T = 8, B = 42;
  ctx.clearRect(0, 0, W, H);
  const n = rowCount();
  let lo = Infinity, hi = -Infinity;
  for (const k of keys) for (const v of series[k] || []) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  ctx.fillStyle = "#666"; ctx.font = "11px sans-serif";
  if (!isFinite(lo)) { ctx.fillText("no values yet", L, H / 2); return; }
  if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
  const x = (i) => L + (n > 1 ? (i / (n - 1)) : 0.5) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  ctx.strokeStyle = "#999"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillText(hi.toPrecision(4), 2, T + 8); ctx.fillText(lo.toPrecision(4), 2, H - B);
  ctx.fillText(String(firstRow + 1), L, H - B + 12);
  ctx.fillText(String(firstRow + n), W - R - 24, H - B + 12);
  keys.forEach((k, j) => {
    const col = COLOURS[j % COLOURS.length], vals = series[k] || [];
    ctx.strokeStyle = col; ctx.beginPath();
    let pen = false;
    vals.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      if (pen) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
      pen = true;
    });
    ctx.stroke();
    const label = k.includes("[") ? k.slice(k.indexOf("[") + 1, -1) : k;
    ctx.fillStyle = col; ctx.fillText(label, L + 125 * (j % 3), H - 16 + 11 * Math.floor(j / 3));
  });
  if (shown && n) {  // the frame on show
    ctx.strokeStyle = "#000"; ctx.setLineDash([3, 3]); ctx.beginPath();
    const i = shown - 1 - firstRow;
    ctx.moveTo(x(i), T); ctx.lineTo(x(i), H - B); ctx.stroke(); ctx.setLineDash([]);
  }
}

$("scrubber").addEventListener("input", () => { $("follow").checked = false; show(Number($("scrubber").value)); });
$("follow").addEventListener("change", () => { if ($("follow").checked) { const sc = $("scrubber"); sc.value = sc.max; show(Number(sc.max)); } });
poll();
"""

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xfusion live viewer</title>
<style>{_STYLE}</style></head>
<body>{_BODY}<script>{_SCRIPT}</script></body></html>
"""
