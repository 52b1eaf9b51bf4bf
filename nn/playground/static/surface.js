// chainrule surface: update rules on a 2-D loss, a view of one nn.playground.Surface on the
// server. Contours, each run's path, what each step evaluated (line-search trial points; the
// population of CMA-ES, the ES or the genetic algorithm; CMA-ES's covariance ellipse) and the
// gradient, at any step of the slider.
"use strict";

const { api, runColour } = Views;  // formatNumber, mix: shared.js
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const W = 1000;  // the drawing's width in viewBox units

const state = { id: null, frame: null, runs: [], contours: null, fn: null, playing: false,
  loop: Promise.resolve(), at: 0, follow: true, options: null, frames: 0 };

function showError(message) { const e = $("error"); e.textContent = message; e.hidden = !message; }

async function guarded(work) {
  try { await work(); } catch (error) { setPlaying(false); showError(error.message); }
}

const surfacePath = (action = "") => `/api/surfaces/${state.id}${action ? "/" + action : ""}`;
const stepCount = () => (state.frame ? state.frame.step_count : 0);

async function start() {
  state.options = await api("GET", "/api/surface-options");
  const query = new URLSearchParams(location.search);
  for (const name of Object.keys(state.options.functions)) $("function").add(new Option(name, name));
  try {
    await create(Object.fromEntries(query.entries()));
  } catch (error) {
    if (error.status !== 400) throw error;
    showError(`Bad setting in the URL: ${error.message}. Showing the default runs instead.`);
    await create({ surface: query.get("surface") in state.options.functions ? query.get("surface") : "rosenbrock" });
  }
  window.addEventListener("pagehide", () => { if (state.id) transport.beacon(surfacePath("close")); });
}

async function create(params) {
  const made = await api("POST", "/api/surfaces", params);
  if (state.id) api("POST", surfacePath("close")).catch(() => {});
  state.id = made.id;
  state.runs = [];
  state.contours = made.frame.contours;
  state.fn = made.frame.function;
  state.at = 0;
  state.follow = true;
  merge(made.frame);
  const query = new URLSearchParams(params);
  query.set("surface", state.fn.name);
  query.set("runs", runsText());
  const search = "?" + query.toString().replace(/%3A/g, ":").replace(/%2C/g, ",").replace(/%3D/g, "=");
  if (location.search !== search) history.replaceState(null, "", search);
  $("function").value = state.fn.name;
  $("runs-text").value = runsText();
  $("formula").textContent = `${state.fn.name}: f(x, y) = ${state.fn.formula}`;
  $("function-note").textContent = state.fn.note;
  $("race-link").href = "./?runs=" + runsText();
  drawStatic();
  draw();
}

const escape = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function textOf(v) { return Array.isArray(v) ? v.join(",") : String(v); }
function runsText() {
  return state.runs.map((r) => [r.settings.optimizer, ...Object.entries(r.settings)
    .filter(([k]) => k !== "optimizer").map(([k, v]) => `${k}=${textOf(v)}`)].join(":")).join(",");
}

// Frames carry each run's records from `since` on: append them.
function merge(frame) {
  state.frames += 1;
  frame.runs.forEach((run, i) => {
    const have = state.runs[i];
    if (!have || frame.since === 0) { state.runs[i] = run; return; }
    for (const key of ["path", "losses", "gradient", "trials", "ellipses", "evaluations", "gradients"]) {
      have[key].length = Math.min(have[key].length, frame.since + 1);
      have[key].push(...run[key].slice(have[key].length - frame.since));
    }
    have.stopped = run.stopped;
  });
  state.frame = frame;
  $("step-count").textContent = String(frame.step_count);
  const slider = $("slider");
  slider.max = String(frame.step_count);
  if (state.follow) state.at = frame.step_count;
  slider.value = String(state.at);
  $("slider-at").textContent = String(state.at);
}

function setPlaying(on) {
  state.playing = on;
  $("play").disabled = on;
  $("pause").disabled = !on;
  $("step").disabled = on;
}

async function stepRequest(count) {
  merge(await api("POST", surfacePath("step"), { count, since: stepCount() }));
  draw();
}

function play() {
  if (state.playing || !state.id) return state.loop;
  setPlaying(true);
  state.follow = true;
  state.loop = (async () => {
    while (state.playing) {
      const before = stepCount();
      try { await stepRequest(1); } catch (error) { setPlaying(false); showError(error.message); }
      if (stepCount() === before || state.frame.runs.every((r) => r.stopped)) setPlaying(false);
      await new Promise((r) => setTimeout(r, 40));  // a pace the eye can follow
    }
  })();
  return state.loop;
}

async function stepOnce() {
  if (state.playing || !state.id) return;
  state.follow = true;
  await guarded(() => stepRequest(1));
}

async function reset() {
  const params = Object.fromEntries(new URLSearchParams(location.search).entries());
  await guarded(() => create(params));
}

// ---- drawing --------------------------------------------------------------------------------------

function geometry() {
  const [x0, x1, y0, y1] = state.fn.extent;
  const H = (W * (y1 - y0)) / (x1 - x0);
  return { H, X: (x) => ((x - x0) / (x1 - x0)) * W, Y: (y) => ((y1 - y) / (y1 - y0)) * H };
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

// The heat map (an image) and the contour lines (marching squares): drawn once per function.
function drawStatic() {
  const svg = $("surface");
  const { H } = geometry();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.textContent = "";
  const c = state.contours, n = c.grid;
  const shade = (v) => (c.log_scale ? Math.log1p(v - c.low) / Math.log1p(c.high - c.low) : (v - c.low) / (c.high - c.low || 1));
  const off = document.createElement("canvas");
  off.width = off.height = n;
  const ctx = off.getContext("2d");
  const image = ctx.createImageData(n, n);
  c.values.forEach((v, k) => {
    const t = Math.min(1, Math.max(0, shade(v)));
    const col = mix([247, 252, 245], [35, 110, 70], Math.sqrt(t));
    image.data.set([col[0], col[1], col[2], 255], 4 * k);
  });
  ctx.putImageData(image, 0, 0);
  el("image", { href: off.toDataURL(), x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none" }, svg);
  const lines = el("g", { fill: "none", stroke: "#2f4f3f", "stroke-opacity": "0.55", "stroke-width": "1.5" }, svg);
  const cx = (i) => (i / (n - 1)) * W, cy = (j) => (j / (n - 1)) * H;
  for (const level of c.levels) {
    let d = "";
    for (let j = 0; j < n - 1; j++) for (let i = 0; i < n - 1; i++) {
      const v = [c.values[j * n + i], c.values[j * n + i + 1], c.values[(j + 1) * n + i + 1], c.values[(j + 1) * n + i]];
      const corners = [[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]];
      const cuts = [];
      for (let e = 0; e < 4; e++) {
        const a = v[e], b = v[(e + 1) % 4];
        if ((a < level) !== (b < level)) {
          const t = (level - a) / (b - a);
          const [pi, pj] = corners[e], [qi, qj] = corners[(e + 1) % 4];
          cuts.push([cx(pi + t * (qi - pi)), cy(pj + t * (qj - pj))]);
        }
      }
      for (let k = 0; k + 1 < cuts.length; k += 2) {
        d += `M${cuts[k][0].toFixed(1)},${cuts[k][1].toFixed(1)}L${cuts[k + 1][0].toFixed(1)},${cuts[k + 1][1].toFixed(1)}`;
      }
    }
    if (d) el("path", { d }, lines);
  }
  const { X, Y } = geometry();
  for (const [mx, my] of state.fn.minima) {
    const t = el("text", { x: X(mx), y: Y(my) + 9, "font-size": 28, "text-anchor": "middle", fill: "#111" }, svg);
    t.textContent = "★";
  }
  el("g", { id: "runs-layer" }, svg);
}

function arrowHead(x, y, angle, size) {
  const a = angle + Math.PI * 0.85, b = angle - Math.PI * 0.85;
  return `M${x},${y}L${x + size * Math.cos(a)},${y + size * Math.sin(a)}M${x},${y}L${x + size * Math.cos(b)},${y + size * Math.sin(b)}`;
}

function draw() {
  const layer = document.getElementById("runs-layer");
  if (!layer) return;
  layer.textContent = "";
  const { X, Y } = geometry();
  const k = state.at;
  const clip = (v) => Math.max(-5 * W, Math.min(6 * W, v));
  state.runs.forEach((run, i) => {
    const colour = runColour(i);
    const at = Math.min(k, run.path.length - 1);
    const group = el("g", { "data-run": i }, layer);
    // what step `at` evaluated: a line search's trial points (rings), a generation's
    // population (dots: where CMA-ES, the ES or the genetic algorithm looked), CMA-ES's ellipse
    const ellipse = run.ellipses[at];
    if (ellipse) {
      const [r1, r2] = ellipse.radii;
      const sx = X(1) - X(0), sy = Y(0) - Y(1);
      el("ellipse", { cx: X(ellipse.centre[0]), cy: Y(ellipse.centre[1]), rx: Math.abs(2 * r1 * sx), ry: Math.abs(2 * r2 * sy),
        transform: `rotate(${(-ellipse.angle * 180) / Math.PI} ${X(ellipse.centre[0])} ${Y(ellipse.centre[1])})`,
        fill: colour, "fill-opacity": 0.08, stroke: colour, "stroke-width": 2, "stroke-dasharray": "8 5",
        "data-testid": "ellipse" }, group);
    }
    const population = run.trial_kind === "population";
    for (const [tx, ty] of run.trials[at] || []) {
      el("circle", population
        ? { cx: clip(X(tx)), cy: clip(Y(ty)), r: 5, fill: colour, "fill-opacity": 0.55, stroke: "#fff", "stroke-width": 1,
            "data-testid": "trial", "data-kind": "population" }
        : { cx: clip(X(tx)), cy: clip(Y(ty)), r: 6, fill: "#fff", stroke: colour, "stroke-width": 2.5,
            "data-testid": "trial", "data-kind": "line-search" }, group);
    }
    const points = run.path.slice(0, at + 1).map(([x, y]) => `${clip(X(x)).toFixed(1)},${clip(Y(y)).toFixed(1)}`);
    el("polyline", { points: points.join(" "), fill: "none", stroke: colour, "stroke-width": 4, "stroke-linejoin": "round",
      "data-testid": "path", "data-optimizer": run.settings.optimizer, "data-run": i, "data-points": String(at + 1) }, group);
    const [px, py] = run.path[at];
    el("circle", { cx: clip(X(px)), cy: clip(Y(py)), r: 9, fill: colour, stroke: "#fff", "stroke-width": 3 }, group);
    const [gx, gy] = run.gradient[at] || [null, null];
    if (gx !== null && gy !== null && (gx !== 0 || gy !== 0)) {
      // downhill: minus the gradient, its length growing with log |gradient|
      const norm = Math.hypot(gx, gy);
      const len = 40 + 18 * Math.max(0, Math.min(6, Math.log10(norm) + 2));
      const dx = (-gx / norm) * len, dy = (gy / norm) * len;  // y grows downward on screen
      const x2 = X(px) + dx, y2 = Y(py) + dy;
      el("path", { d: `M${X(px)},${Y(py)}L${x2},${y2}` + arrowHead(x2, y2, Math.atan2(dy, dx), 14),
        stroke: "#111", "stroke-width": 3, fill: "none", "data-testid": "gradient-arrow" }, group);
    }
  });
  drawLegend();
}

function drawLegend() {
  const box = $("legend-runs");
  if (box.children.length !== state.runs.length) {
    box.textContent = "";
    state.runs.forEach(() => {
      const card = document.createElement("div");
      card.className = "card";
      card.dataset.testid = "surface-run";
      box.append(card);
    });
  }
  const k = state.at;
  state.runs.forEach((run, i) => {
    const card = box.children[i];
    const at = Math.min(k, run.path.length - 1);
    card.style.borderColor = runColour(i);
    card.dataset.optimizer = run.settings.optimizer;
    const opts = Object.entries(run.settings).filter(([key]) => key !== "optimizer").map(([key, v]) => `${key}=${textOf(v)}`).join(" ");
    const [x, y] = run.path[at];
    card.innerHTML = `<h3><span class="swatch" style="background:${runColour(i)}"></span>${escape(run.settings.optimizer)}</h3>` +
      `<label>options</label><span>${escape(opts || "defaults")}</span>` +
      `<label>f</label><span class="big" data-testid="surface-loss" data-value="${run.losses[at]}">${formatNumber(run.losses[at])}</span>` +
      `<label>at</label><span>(${formatNumber(x)}, ${formatNumber(y)})</span>` +
      `<label>evaluations</label><span>${run.evaluations[at]}</span>` +
      `<label>gradients</label><span>${run.gradients[at]}</span>` +
      (run.stopped ? `<div class="stopped">${escape(run.stopped)}</div>` : "");
  });
}

// ---- wiring ----------------------------------------------------------------------------------------

$("play").addEventListener("click", play);
$("pause").addEventListener("click", () => setPlaying(false));
$("step").addEventListener("click", stepOnce);
$("reset").addEventListener("click", reset);
$("slider").addEventListener("input", () => {
  state.at = Number($("slider").value);
  state.follow = state.at === stepCount();
  $("slider-at").textContent = String(state.at);
  draw();
});
$("function").addEventListener("change", () => guarded(() => create({ surface: $("function").value, runs: runsText() })));
$("runs-text").addEventListener("change", () => guarded(async () => {
  await create({ surface: state.fn.name, runs: $("runs-text").value });
  showError("");
}));
document.addEventListener("keydown", (event) => {
  if (event.target.closest && event.target.closest("input, select, textarea, button, a")) return;
  if (event.key === " ") { event.preventDefault(); state.playing ? setPlaying(false) : play(); }
  else if (event.key === "ArrowRight") stepOnce();
});

start().catch((error) => showError(error.message));
