// chainrule race: several optimizers training the same network from the same start, a view
// of one nn.playground.Race on the server. Every number drawn comes from the server's frames.
"use strict";

const { api, runColour } = Views;  // formatNumber, mix: shared.js
const $ = (id) => document.getElementById(id);
const BUDGET_MS = 30;  // while playing: as many clock units as fit in this, then one frame
const PLAY_GRID = 20;  // while playing the small multiples come at 20 x 20 (a quarter of the work); 40 x 40 on pause
// one press of Step, and the unit the play loop asks for, on each clock
const UNIT = { steps: 1, evaluations: 10, seconds: 0.05 };

const state = {
  id: null, frame: null, points: null, runs: [], histories: {}, marks: [], playing: false,
  loop: Promise.resolve(), options: null, frames: 0, common: {},
};

function showError(message) { const e = $("error"); e.textContent = message; e.hidden = !message; }
function showNotice(message) { const e = $("notice"); e.textContent = message; e.hidden = !message; }

async function guarded(work) {
  try { await work(); } catch (error) { setPlaying(false); showError(error.message); }
}

const clock = () => $("clock").value;
const racePath = (action = "") => `/api/races/${state.id}${action ? "/" + action : ""}`;
// Per run: how many history entries the page has, and the run's history_thinned they came from
// (a run that thinned its long history since sends it all again).
const sinceParam = () => ({ since: state.runs.map((r) => `${r.id}:${(state.histories[r.id] || []).length}:${r.history_thinned || 0}`).join(",") });

// ---- the URL: ?runs=sgd:lr=0.1,adam:lr=0.01 and the common settings ---------------------------

function textOf(value) {
  if (value === null || value === undefined) return "full";
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

// A run's own options on its card: only what differs from the Session's defaults, to stay short.
function shortRun(settings) {
  const opt = state.options.optimizers[settings.optimizer];
  const defaults = Object.fromEntries([...state.options.settings, ...opt.settings].map((s) => [s.name, s.default]));
  const out = { optimizer: settings.optimizer };
  for (const [k, v] of Object.entries(settings)) {
    if (k !== "optimizer" && textOf(v) !== textOf(defaults[k])) out[k] = v;
  }
  return out;
}

// The link is Python's (frame.link): the common settings and each run's settings as they were
// set, defaults included when written, so a shared link means the same race if a default changes.
function writeUrl() {
  if (!state.frame || !state.frame.link) return;
  const query = new URLSearchParams(state.frame.link);
  if (clock() !== "steps") query.set("by", clock());
  const search = "?" + query.toString().replace(/%3A/g, ":").replace(/%2C/g, ",").replace(/%3D/g, "=");
  if (location.search !== search) history.replaceState(null, "", search);
}

// ---- talking to the race -------------------------------------------------------------------------

async function start() {
  state.options = await api("GET", "/api/options");
  const query = new URLSearchParams(location.search);
  if (["steps", "evaluations", "seconds"].includes(query.get("by"))) $("clock").value = query.get("by");
  try {
    const made = await api("POST", "/api/races", Object.fromEntries(query.entries()));
    state.id = made.id;
    render(made.frame);
  } catch (error) {
    if (error.status !== 400) throw error;
    showError(`Bad setting in the URL: ${error.message}. Showing a default race instead.`);
    const made = await api("POST", "/api/races", { runs: "sgd:lr=0.1,sgd:lr=0.1:momentum=0.9,adam:lr=0.01" });
    state.id = made.id;
    render(made.frame);
  }
  window.addEventListener("pagehide", () => { if (state.id) transport.beacon(racePath("close")); });
}

function setPlaying(on) {
  state.playing = on;
  $("play").disabled = on;
  $("pause").disabled = !on;
  $("step").disabled = on;
  document.body.dataset.playing = on ? "1" : "0";
}

function play() {
  if (state.playing || !state.id) return state.loop;
  setPlaying(true);
  state.loop = (async () => {
    showNotice("");
    const ask = () => api("POST", racePath("step"), { ...sinceParam(), by: clock(), count: UNIT[clock()], budget_ms: BUDGET_MS, grid: PLAY_GRID });
    let pending = ask();
    while (pending) {
      try {
        const frame = await pending;
        // take the frame's numbers, ask for the next steps, then draw: the server (or the static
        // site's worker) trains while the page draws
        absorb(frame);
        const stopped = frame.runs.every((r) => r.stopped);
        pending = state.playing && !stopped ? ask() : null;
        draw();
        if (stopped) { showNotice("every run has stopped"); setPlaying(false); }
      } catch (error) { pending = null; setPlaying(false); showError(error.message); }
    }
    // paused: the boundaries again at full resolution
    if (state.id) await guarded(async () => render(await api("GET", racePath(), sinceParam())));
  })();
  return state.loop;
}

function pause() { setPlaying(false); }

async function stepOnce() {
  if (state.playing || !state.id) return;
  await guarded(async () => render(await api("POST", racePath("step"), { ...sinceParam(), by: clock(), count: UNIT[clock()] })));
}

async function reset() {
  await guarded(async () => { state.histories = {}; render(await api("POST", racePath("reset"), {})); showError(""); });
}

async function addRun() {
  if (state.runs.length >= 4) { showNotice("A race holds at most 4 runs."); return; }
  const used = new Set(state.runs.map((r) => r.settings.optimizer));
  const pick = ["adam", "sgd", "rmsprop", "lbfgs", "cmaes"].find((o) => !used.has(o)) || "sgd";
  await guarded(async () => render(await api("POST", racePath("runs"), { ...sinceParam(), run: pick })));
}

async function removeRun(id) {
  await guarded(async () => render(await api("POST", racePath(`runs/${id}/remove`), sinceParam())));
}

async function changeRun(id, changes) {
  await guarded(async () => {
    render(await api("POST", racePath(`runs/${id}/settings`), { ...sinceParam(), ...changes }));
    showError("");
  });
}

// ---- drawing a frame --------------------------------------------------------------------------------

// A frame's numbers kept (absorb), then drawn (draw): the play loop asks for more in between.
function absorb(frame) {
  state.frames += 1;
  state.frame = frame;
  state.points = frame.points;
  state.common = frame.common;
  state.marks = frame.marks;
  const ids = new Set(frame.runs.map((r) => r.id));
  for (const id of Object.keys(state.histories)) if (!ids.has(Number(id))) delete state.histories[id];
  for (const run of frame.runs) {
    const h = state.histories[run.id] || [];
    h.length = Math.min(h.length, run.history_start);
    h.push(...run.history);
    state.histories[run.id] = h;
  }
  state.runs = frame.runs;
}

function render(frame) {
  absorb(frame);
  draw();
}

function draw() {
  drawCards();
  drawBoundaries();
  drawCurves();
  writeUrl();
  $("one-run").href = "./?" + new URLSearchParams({ ...Object.fromEntries(Object.entries(state.common).map(([k, v]) => [k, textOf(v)])),
    ...Object.fromEntries(Object.entries(state.runs[0].settings).map(([k, v]) => [k, textOf(v)])) }).toString();
}

function cardFor(run) {
  const card = document.createElement("div");
  card.className = "card";
  card.dataset.testid = "run-card";
  card.dataset.run = String(run.id);
  const title = document.createElement("h3");
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  const select = document.createElement("select");
  select.dataset.testid = "run-optimizer";
  for (const name of Object.keys(state.options.optimizers)) select.add(new Option(name, name));
  select.addEventListener("change", () => changeRun(run.id, { optimizer: select.value }));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "✕";
  remove.title = "Remove this run";
  remove.dataset.testid = "remove-run";
  remove.addEventListener("click", () => removeRun(run.id));
  title.append(swatch, select, remove);
  const lrLabel = document.createElement("label");
  lrLabel.textContent = "lr";
  const lr = document.createElement("input");
  lr.type = "text";
  lr.inputMode = "decimal";
  lr.dataset.testid = "run-lr";
  lr.addEventListener("change", () => changeRun(run.id, { lr: lr.value }));
  const rows = [["options", "run-options"], ["train loss", "train-loss"], ["accuracy", "accuracy"], ["step", "run-steps"],
                ["evaluations", "run-evaluations"], ["gradients", "run-gradients"]];
  card.append(title, lrLabel, lr);
  for (const [label, testid] of rows) {
    const l = document.createElement("label");
    l.textContent = label;
    const v = document.createElement("span");
    v.dataset.testid = testid;
    if (testid === "train-loss") v.className = "big";
    card.append(l, v);
  }
  const stopped = document.createElement("div");
  stopped.className = "stopped";
  stopped.dataset.testid = "run-stopped";
  card.append(stopped);
  return card;
}

function drawCards() {
  const box = $("cards");
  const want = state.runs.map((r) => String(r.id)).join(",");
  if (box.dataset.runs !== want) {
    box.textContent = "";
    for (const run of state.runs) box.append(cardFor(run));
    box.dataset.runs = want;
  }
  state.runs.forEach((run, i) => {
    const card = box.children[i];
    const colour = runColour(run.id);
    card.style.borderColor = colour;
    card.dataset.optimizer = run.settings.optimizer;
    card.querySelector(".swatch").style.background = colour;
    const select = card.querySelector("select");
    if (select !== document.activeElement) select.value = run.settings.optimizer;
    const lr = card.querySelector("[data-testid=run-lr]");
    const hasLr = state.options.optimizers[run.settings.optimizer].lr;
    lr.disabled = !hasLr;
    if (lr !== document.activeElement) lr.value = hasLr ? textOf(run.settings.lr) : "none";
    const loss = card.querySelector("[data-testid=train-loss]");
    loss.dataset.value = run.train_loss_repr;
    loss.textContent = formatNumber(run.train_loss, run.train_loss_repr);
    card.querySelector("[data-testid=accuracy]").textContent =
      run.accuracy === null ? "–" : (100 * run.accuracy).toFixed(0) + "%";
    const own = shortRun(run.settings);
    card.querySelector("[data-testid=run-options]").textContent = Object.entries(own)
      .filter(([k]) => k !== "optimizer" && k !== "lr").map(([k, v]) => `${k}=${textOf(v)}`).join(" ") || "defaults";
    card.querySelector("[data-testid=run-steps]").textContent = String(run.step_count);
    card.querySelector("[data-testid=run-evaluations]").textContent = String(run.evaluations);
    card.querySelector("[data-testid=run-gradients]").textContent = String(run.gradients);
    card.querySelector("[data-testid=run-stopped]").textContent = run.stopped || "";
    card.title = run.compile_note ? `This run ${run.compile_note}` : "compiled: the eager engine's numbers, faster";
  });
  $("add-run").disabled = state.runs.length >= 4;
}

function drawBoundaries() {
  const box = $("boundaries");
  const want = state.runs.map((r) => String(r.id)).join(",");
  if (box.dataset.runs !== want) {
    box.textContent = "";
    for (const run of state.runs) {
      const holder = document.createElement("div");
      holder.className = "small-multiple";
      const canvas = document.createElement("canvas");
      canvas.dataset.testid = "run-boundary";
      canvas.dataset.run = String(run.id);
      const label = document.createElement("span");
      holder.append(canvas, label);
      box.append(holder);
    }
    box.dataset.runs = want;
  }
  state.runs.forEach((run, i) => {
    const holder = box.children[i];
    const canvas = holder.querySelector("canvas");
    canvas.style.borderColor = runColour(run.id);
    holder.querySelector("span").textContent = `${run.settings.optimizer} · step ${run.step_count}`;
    Views.drawBoundary(canvas, run.boundary, state.points);
  });
}

const AXIS = { steps: "step", evaluations: "evaluations", seconds: "seconds" };

function drawCurves() {
  const svg = $("race-curves");
  const w = svg.clientWidth || 600, h = svg.clientHeight || 300;
  const key = AXIS[clock()];
  const log = $("log-scale").checked;
  // the axis text at the page's own size (playground.css scales the root with the window)
  const fs = 0.95 * parseFloat(getComputedStyle(document.documentElement).fontSize);
  const right = w - 12, top = 12, bottom = h - 34;
  let left;
  const series = state.runs.map((run) => ({ run, rows: (state.histories[run.id] || []).filter((r) => r.train_loss !== null && r[key] !== undefined) }));
  const xs = series.flatMap((s) => s.rows.map((r) => r[key]));
  const ys = series.flatMap((s) => s.rows.map((r) => r.train_loss)).filter((v) => (log ? v > 0 : isFinite(v)));
  let out = "";
  if (!xs.length || !ys.length) { svg.innerHTML = ""; return; }
  const xMax = Math.max(...xs) > 0 ? Math.max(...xs) : 1;  // at step 0 the axis runs to 1
  const f = (v) => (log ? Math.log10(v) : v);
  let lo = Math.min(...ys.map(f)), hi = Math.max(...ys.map(f));
  if (!log) lo = Math.min(0, lo);
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const Y = (v) => bottom - ((bottom - top) * (f(v) - lo)) / (hi - lo);
  let ticks = log ? Array.from({ length: Math.floor(hi) - Math.ceil(lo) + 1 }, (_, k) => Math.ceil(lo) + k) : [lo, (lo + hi) / 2, hi];
  if (log && ticks.length < 3) ticks = [lo, (lo + hi) / 2, hi];  // less than two decades
  // room for the longest tick label on the left
  left = 12 + 0.62 * fs * Math.max(...ticks.map((t) => formatNumber(log ? 10 ** t : t).length));
  const X = (x) => left + ((right - left) * x) / xMax;
  out += `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#999"/>`;
  out += `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#999"/>`;
  for (const t of ticks) {
    const v = log ? 10 ** t : t;
    out += `<text x="${left - 6}" y="${Y(v) + fs / 3}" font-size="${fs}" text-anchor="end" fill="#555">${formatNumber(v)}</text>`;
    out += `<line x1="${left}" y1="${Y(v)}" x2="${right}" y2="${Y(v)}" stroke="#eee"/>`;
  }
  out += `<text x="${right}" y="${h - 6}" font-size="${fs}" text-anchor="end" fill="#555">${clock()} ${formatNumber(xMax)}</text>`;
  out += `<text x="${left}" y="${h - 6}" font-size="${fs}" fill="#555">0</text>`;
  for (const { run, rows } of series) {
    const stride = Math.max(1, Math.ceil(rows.length / 600));
    const pts = rows.filter((r, i) => (i % stride === 0 || i === rows.length - 1) && (!log || r.train_loss > 0))
      .map((r) => `${X(r[key]).toFixed(1)},${Y(r.train_loss).toFixed(1)}`);
    out += `<polyline data-testid="race-curve" data-run="${run.id}" fill="none" stroke="${runColour(run.id)}" stroke-width="3" points="${pts.join(" ")}"/>`;
  }
  for (const mark of state.marks) {
    const x = mark[key];
    if (x === undefined || x > xMax) continue;
    const label = Object.entries(mark.changes).filter(([k]) => ["optimizer", "lr"].includes(k)).map(([k, v]) => `${k}=${textOf(v)}`).join(" ");
    out += `<g data-testid="change-mark" data-run="${mark.run}"><line x1="${X(x)}" y1="${top}" x2="${X(x)}" y2="${bottom}" stroke="${runColour(mark.run)}" stroke-width="2" stroke-dasharray="6 4"/>` +
      `<text x="${X(x) + 4}" y="${top + fs}" font-size="${fs * 0.85}" fill="${runColour(mark.run)}">${label}</text></g>`;
  }
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = out;
}

// ---- the landscape --------------------------------------------------------------------------------

async function showLandscape() {
  $("landscape-panel").hidden = false;
  await guarded(async () => {
    const land = await api("GET", racePath("landscape"), { grid: 25, span: 1 });
    const canvas = $("landscape");
    const size = canvas.width;
    const ctx = canvas.getContext("2d");
    const n = land.alphas.length;
    const flat = land.loss.flat().filter((v) => v !== null && isFinite(v));
    const lo = Math.log10(Math.min(...flat) + 1e-12), hi = Math.log10(Math.max(...flat) + 1e-12);
    const off = document.createElement("canvas");
    off.width = off.height = n;
    const octx = off.getContext("2d");
    const image = octx.createImageData(n, n);
    land.loss.forEach((row, j) => row.forEach((v, i) => {
      const t = v === null ? 1 : (Math.log10(v + 1e-12) - lo) / Math.max(1e-9, hi - lo);
      const c = mix([255, 247, 236], [127, 39, 4], Math.min(1, Math.max(0, t)));
      image.data.set([c[0], c[1], c[2], 255], 4 * (j * n + i));
    }));
    octx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, 0, 0, size, size);
    const a0 = land.alphas[0], a1 = land.alphas[n - 1];
    const px = (a) => ((a - a0) / (a1 - a0)) * size, py = (b) => ((a1 - b) / (a1 - a0)) * size;
    for (const run of state.runs) {
      const path = land.paths[run.id];
      if (!path) continue;
      ctx.beginPath();
      path.forEach(([a, b], k) => (k ? ctx.lineTo(px(a), py(b)) : ctx.moveTo(px(a), py(b))));
      ctx.strokeStyle = runColour(run.id);
      ctx.lineWidth = 3;
      ctx.stroke();
    }
    ctx.beginPath();
    ctx.arc(px(0), py(0), 6, 0, 2 * Math.PI);
    ctx.fillStyle = "#111";
    ctx.fill();
    canvas.dataset.ready = "1";
  });
}

// ---- wiring ------------------------------------------------------------------------------------------

$("play").addEventListener("click", play);
$("pause").addEventListener("click", pause);
$("step").addEventListener("click", stepOnce);
$("reset").addEventListener("click", reset);
$("add-run").addEventListener("click", addRun);
$("clock").addEventListener("change", () => { drawCurves(); writeUrl(); });
$("log-scale").addEventListener("change", drawCurves);
$("show-landscape").addEventListener("click", showLandscape);
$("landscape-close").addEventListener("click", () => { $("landscape-panel").hidden = true; });
document.addEventListener("keydown", (event) => {
  if (event.target.closest && event.target.closest("input, select, textarea, button, a")) return;
  if (event.key === " ") { event.preventDefault(); state.playing ? pause() : play(); }
  else if (event.key === "ArrowRight") stepOnce();
});
window.addEventListener("resize", () => { if (state.frame) { drawBoundaries(); drawCurves(); } });

start().catch((error) => showError(error.message));
