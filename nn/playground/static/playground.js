// chainrule playground: the page is a view of one nn.playground.Session on the server
// (controls.js and inside.js, loaded after this file, add the controls and Look inside).
// It reimplements no autograd: every number drawn here comes from the server's frames.
// The one rule: requests go out one at a time (a queue), so frames arrive in order.
"use strict";

// Colours, formatNumber, bytesOf, mix, hex and classColour come from shared.js.
const BUDGET_MS = 20;  // while playing: as many steps as fit in this, then one frame (about 30/s)

const $ = (id) => document.getElementById(id);
const state = {
  options: null, id: null, attached: false, run: -1, version: "", history: [], thinned: 0,
  frame: null, points: null, playing: false, chosenNeuron: null, chosenPoint: null,
  structure: "", nodes: {}, edges: [], queue: Promise.resolve(), loop: Promise.resolve(),
  insideFit: false, frames: 0,
};

// ---- talking to the server ---------------------------------------------------------------------

// ApiError and transport (how a request travels) come from transport.js.

function api(method, path, params = {}) {
  const run = state.queue.then(async () => {
    const answer = await transport.request(method, path, params);
    const body = answer.kind.startsWith("application/json") ? JSON.parse(answer.body) : answer.body;
    if (answer.status >= 400) throw new ApiError(body.error || String(body), answer.status);
    return body;
  });
  state.queue = run.catch(() => {});
  return run;
}

// A session id is what the server makes (secrets.token_urlsafe): anything else in the URL
// (a path such as ../../api/options) is refused before it reaches a fetch.
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const sessionPath = (action = "") =>
  `/api/sessions/${encodeURIComponent(state.id)}${action ? "/" + action : ""}`;
const frameParams = () => ({ run: state.run, since: state.history.length, thinned: state.thinned });

function showError(message) { const e = $("error"); e.textContent = message; e.hidden = !message; }
function showNotice(message) { const e = $("notice"); e.textContent = message; e.hidden = !message; }

// What Python's settings rules changed and why (a dataset of three classes took cross_entropy,
// a bad value of a link was left out, ...): shown until dismissed. The page decides nothing.
function showChanges(changes) {
  if (!changes || !changes.length) return;
  let box = $("changes");
  if (!box) {
    box = document.createElement("div");
    box.id = "changes";
    box.className = "changes";
    box.dataset.testid = "changes";
    box.setAttribute("role", "status");
    $("notice").after(box);
  }
  box.textContent = "";
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "×";
  close.title = "dismiss";
  close.dataset.testid = "changes-dismiss";
  close.addEventListener("click", () => { box.hidden = true; });
  box.append(close);
  for (const change of changes) {
    const line = document.createElement("div");
    line.textContent = change.message;
    line.dataset.setting = change.setting;
    box.append(line);
  }
  box.hidden = false;
}

async function guarded(work) {
  try {
    await work();
  } catch (error) {
    if (error.status === 404 && !state.attached) {
      showNotice("This session had expired; a new one started from the same settings.");
      await createSession(urlSettings(state.frame ? state.frame.settings : {}));
      return;
    }
    showError(error.message);
  }
}

// ---- settings: form, URL --------------------------------------------------------------------------

function textOf(value) {
  if (value === null || value === undefined) return "full";
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

function urlSettings(settings) {
  const out = {};
  for (const [key, value] of Object.entries(settings)) out[key] = textOf(value);
  return out;
}

// Not settings: what the page looks at (kept in the URL, so a shared link shows it too).
const VIEW_KEYS = ["session", "neuron", "point"];

function writeUrl(settings) {
  const query = new URLSearchParams(urlSettings(settings));
  if (state.attached) query.set("session", state.id);
  if (state.chosenNeuron) query.set("neuron", state.chosenNeuron);
  if (state.chosenPoint !== null) query.set("point", String(state.chosenPoint));
  const search = "?" + query.toString();
  // only when it changed: browsers throttle (and complain about) frequent history updates
  if (location.search !== search) history.replaceState(null, "", search);
}

const GROUPS = [
  ["Data", ["dataset", "n", "noise", "test_fraction", "seed"]],
  ["Model", ["features", "hidden", "activation", "init", "loss"]],
  ["Training", ["optimizer", "lr", "*", "schedule", "decay_steps", "gamma", "batch_size", "l2", "l1"]],
];

function fieldFor(spec) {
  const row = document.createElement("div");
  row.className = "row";
  row.dataset.setting = spec.name;
  const label = document.createElement("label");
  label.htmlFor = "set-" + spec.name;
  label.textContent = spec.name;
  label.title = spec.help;
  let input;
  if (spec.kind === "choice") {
    input = document.createElement("select");
    for (const c of spec.choices) input.add(new Option(c, c));
  } else if (spec.kind === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
  } else {
    input = document.createElement("input");
    input.type = "text";
    input.inputMode = spec.kind === "sizes" || spec.kind === "floats" ? "text" : "decimal";
    input.spellcheck = false;
  }
  input.id = "set-" + spec.name;
  input.name = spec.name;
  input.title = spec.help;
  input.dataset.testid = "setting-" + spec.name;
  input.addEventListener("change", () => changeSetting(spec.name, input));
  if (spec.kind === "features") {  // checkboxes; the text field behind them is what is sent
    input.type = "hidden";
    row.classList.add("features");
    row.append(label, input, featureChips(spec, input));
    return row;
  }
  const slider = sliderFor(spec, input);
  if (slider) {
    const pair = document.createElement("div");
    pair.className = "with-slider";
    pair.append(input, slider);
    row.append(label, pair);
    return row;
  }
  row.append(label, input);
  return row;
}

function buildForm(optimizer) {
  const form = $("settings");
  form.textContent = "";
  const specs = Object.fromEntries(state.options.settings.map((s) => [s.name, s]));
  for (const [title, names] of GROUPS) {
    const set = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = title;
    set.append(legend);
    for (const name of names) {
      if (name === "*") {
        for (const spec of state.options.optimizers[optimizer].settings) set.append(fieldFor(spec));
      } else {
        set.append(fieldFor(specs[name]));
      }
    }
    form.append(set);
  }
  form.dataset.optimizer = optimizer;
  form.addEventListener("submit", (e) => e.preventDefault());
}

function fillForm(settings) {
  if ($("settings").dataset.optimizer !== settings.optimizer) buildForm(settings.optimizer);
  for (const [key, value] of Object.entries(settings)) {
    const input = $("set-" + key);
    if (!input || input === document.activeElement) continue;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = textOf(value);
    input.closest(".row").classList.remove("bad");
  }
  syncSliders(settings);
  syncFeatureChips(settings);
  // settings that do nothing now, and why: Python says so in every frame
  const inactive = (state.frame && state.frame.inactive) || {};
  for (const row of $("settings").querySelectorAll(".row")) {
    const why = inactive[row.dataset.setting];
    row.classList.toggle("off", Boolean(why));
    row.dataset.off = why || "";
  }
}

// A setting changed by a control that is not its form field (a slider, a +/- button).
function sendSetting(name, value) {
  const input = $("set-" + name);
  input.value = value;
  return changeSetting(name, input);
}

async function changeSetting(name, input) {
  const value = input.type === "checkbox" ? String(input.checked) : input.value.trim();
  await guarded(async () => {
    try {
      // Only what was changed: Python applies the rules (a three-class dataset takes
      // cross_entropy, CMA-ES no schedule) and the frame says what they changed.
      const frame = await api("POST", sessionPath("settings"), { ...frameParams(), [name]: value });
      input.closest(".row").classList.remove("bad");
      showError("");
      render(frame);
      showChanges(frame.changes);
    } catch (error) {
      if (error.status === 400) {
        input.closest(".row").classList.add("bad");
        fillForm(state.frame.settings);
        input.closest(".row").classList.add("bad");
      }
      throw error;
    }
  });
}

// ---- sessions and the play loop -------------------------------------------------------------------

async function createSession(settings, link = false) {
  const made = await api("POST", "/api/sessions", link ? { ...settings, link: "1" } : settings);
  state.id = made.id;
  state.run = -1;
  state.history = [];
  render(made.frame);
  showChanges(made.changes);
}

async function start() {
  state.options = await api("GET", "/api/options");
  const query = new URLSearchParams(location.search);
  let attach = query.get("session");
  if (attach !== null && !SESSION_ID.test(attach)) {
    showNotice("The address names no valid session; a new session started instead.");
    query.delete("session");
    attach = null;
  }
  try {
    if (attach) {
      state.id = attach;
      state.attached = true;
      render(await api("GET", sessionPath(), frameParams()));
      setInterval(pollAttached, 1000);
    } else {
      const settings = Object.fromEntries([...query.entries()].filter(([k]) => !VIEW_KEYS.includes(k)));
      // a link: a bad value is left out by the server and named in the answer's changes
      await createSession(settings, true);
    }
    const total = state.points.train.length + state.points.test.length;
    const point = Number(query.get("point"));
    if (query.get("point") !== null && Number.isInteger(point) && point >= 0 && point < total) {
      state.chosenPoint = point;
      drawBoundary();
    }
    const neuron = query.get("neuron");
    if (neuron && state.nodes[neuron] && state.nodes[neuron].el.classList.contains("neuron")) {
      chooseNeuron(neuron);
    }
    writeUrl(state.frame.settings);
  } catch (error) {
    showError(error.message);
  }
  window.addEventListener("pagehide", () => {
    if (state.id && !state.attached) transport.beacon(sessionPath("close"));
  });
}

async function pollAttached() {
  if (state.playing || !state.frame) return;
  try {
    const frame = await api("GET", sessionPath(), { ...frameParams(),
      version: `${state.frame.run}.${state.frame.version}` });
    if (!frame.unchanged) render(frame);
  } catch (error) { showError(error.message); }
}

function setPlaying(on) {
  const stopped = state.playing && !on;
  state.playing = on;
  $("play").disabled = on;
  $("pause").disabled = !on;
  $("step").disabled = on;
  document.body.dataset.playing = on ? "1" : "0";
  if (stopped && state.frame) refreshInside();  // the graph shows the step training paused at
}

function play() {
  if (state.playing || !state.id) return state.loop;
  setPlaying(true);
  state.loop = playLoop();  // resolves when the loop has stopped (tests wait for it)
  return state.loop;
}

async function playLoop() {
  showNotice("");
  const ask = (params) => api("POST", sessionPath("step"), { ...params, budget_ms: BUDGET_MS });
  let pending = ask(frameParams());
  while (pending) {
    try {
      const frame = await pending;
      // Ask for the next steps before drawing these: the server (or the static site's worker)
      // trains while the page draws. The request says what the page will hold once this frame
      // is drawn (render keeps history_start + history.length entries).
      pending = state.playing && !frame.stopped
        ? ask({ run: frame.run, since: frame.history_start + frame.history.length,
                thinned: frame.history_thinned })
        : null;
      render(frame);
      showError("");
      if (frame.stopped) { showNotice(frame.stopped); setPlaying(false); }
    } catch (error) {
      pending = null;
      setPlaying(false);
      await guarded(async () => { throw error; });
    }
  }
}

function pause() { setPlaying(false); }

async function stepOnce() {
  if (state.playing || !state.id) return;
  await guarded(async () => {
    const frame = await api("POST", sessionPath("step"), { ...frameParams(), count: 1 });
    render(frame);
    showError("");  // an earlier message (a refused setting) is answered: the form shows the old value
    showNotice(frame.stopped || "");
  });
}

async function reset() {
  if (!state.id) return;
  await guarded(async () => {
    render(await api("POST", sessionPath("reset"), frameParams()));
    showError("");
    showNotice("");
  });
}

// ---- drawing a frame ------------------------------------------------------------------------------

function render(frame) {
  state.frames += 1;  // frames drawn (the benchmark counts them)
  if (frame.run !== state.run) {
    state.run = frame.run;
    state.history = [];
    state.points = frame.points;
    const total = frame.points.train.length + frame.points.test.length;
    if (state.chosenPoint >= total) state.chosenPoint = null;
  }
  state.history.length = frame.history_start;  // 0 when the server thinned its history
  state.history.push(...frame.history);
  state.thinned = frame.history_thinned;
  state.frame = frame;
  $("step-count").textContent = String(frame.step_count);
  // compiled sessions give the eager numbers faster; one that cannot compile says why here
  $("step-count").title = frame.compile_note ? `This session ${frame.compile_note}` : "";
  const loss = $("train-loss");
  loss.dataset.value = frame.train_loss_repr;
  loss.textContent = formatNumber(frame.train_loss, frame.train_loss_repr);
  const test = $("test-loss");
  test.dataset.value = frame.test_loss_repr;
  test.textContent = frame.test_loss_repr === "None" ? "–" : formatNumber(frame.test_loss, frame.test_loss_repr);
  $("accuracy").textContent = percent(frame.accuracy) +
    (frame.test_accuracy === null ? "" : " / " + percent(frame.test_accuracy));
  $("accuracy").title = "train / test";
  $("lr-now").textContent = formatNumber(frame.lr);
  fillForm(frame.settings);
  writeUrl(frame.settings);
  layerTools();
  drawBoundary();
  drawNetwork();
  drawGradFlow();
  drawCurves();
  const note = $("right").querySelector(".diverged-note");
  note.hidden = !frame.diverged;
  note.textContent = frame.diverged ? "Diverged: " + frame.diverged : "";
  if (frame.rebuilt && insideOpen()) closeInside();
  else refreshInside();
}

// Font sizes of the SVG drawings follow the page's type (it grows with the window).
const typeScale = () => parseFloat(getComputedStyle(document.body).fontSize) / 15;

const percent = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(0) + "%");

function signedColour(byte) {  // 0..255 with 127.5 = zero: blue (negative) to red (positive)
  const t = (byte - 127.5) / 127.5;
  return t < 0 ? mix(WHITE, NEG, -t) : mix(WHITE, POS, t);
}

function paint(canvas, n, colourAt) {
  if (canvas.width !== n) { canvas.width = n; canvas.height = n; }
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(n, n);
  const data = image.data;
  for (let k = 0; k < n * n; k++) {
    const c = colourAt(k);
    data[4 * k] = c[0]; data[4 * k + 1] = c[1]; data[4 * k + 2] = c[2]; data[4 * k + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function drawBoundary() {
  const canvas = $("boundary");
  const { boundary } = state.frame;
  const { extent, classes } = state.points;
  const n = boundary.grid;
  const off = document.createElement("canvas");
  const discrete = $("discretize").checked;  // each cell in its class's colour, no shades
  if (boundary.kind === "score") {
    const v = bytesOf(boundary.values);
    // the continuous ramp (shared.js); discretized: two flat colours
    paint(off, n, discrete ? (k) => mix(WHITE, v[k] > 127.5 ? POS : NEG, 0.6)
      : (k) => scoreColour(v[k]));
  } else {
    const best = bytesOf(boundary.values), conf = bytesOf(boundary.confidence);
    const k0 = 1 / boundary.classes;
    paint(off, n, (k) => mix(WHITE, classColour(best[k], boundary.classes),
      discrete ? 0.6 : 0.75 * Math.max(0, (conf[k] / 255 - k0) / (1 - k0))));
  }
  canvas.dataset.discretized = discrete ? "1" : "0";
  const ctx = canvas.getContext("2d");
  // as many canvas pixels as the screen shows (the box grows with the window)
  const size = Math.max(200, Math.round((canvas.clientWidth || 336) * (window.devicePixelRatio || 1)));
  if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
  const u = (size / (canvas.clientWidth || 336)) * Math.max(1, typeScale());  // one CSS px, scaled
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, size, size);
  const [x0, x1, y0, y1] = extent;
  const px = (x) => ((x - x0) / (x1 - x0)) * size, py = (y) => ((y1 - y) / (y1 - y0)) * size;
  const all = [...state.points.train.map((p) => [p, true]), ...state.points.test.map((p) => [p, false])];
  const hideTest = $("hide-test").checked;
  canvas.dataset.drawn = String(hideTest ? state.points.train.length : all.length);
  ctx.lineWidth = u;
  all.forEach(([[x, y, c], train]) => {
    if (hideTest && !train) return;
    ctx.beginPath();
    ctx.arc(px(x), py(y), 3.6 * u, 0, 2 * Math.PI);
    const colour = `rgb(${classColour(c, classes).join(",")})`;
    if (train) { ctx.fillStyle = colour; ctx.fill(); ctx.strokeStyle = "#fff"; ctx.stroke(); }
    else { ctx.fillStyle = "#fff"; ctx.fill(); ctx.strokeStyle = colour; ctx.lineWidth = 2 * u; ctx.stroke(); ctx.lineWidth = u; }
  });
  const chosen = state.chosenPoint === null ? null : all[state.chosenPoint];
  if (chosen) {
    ctx.beginPath();
    ctx.arc(px(chosen[0][0]), py(chosen[0][1]), 7 * u, 0, 2 * Math.PI);
    ctx.strokeStyle = "#f59e0b";
    ctx.lineWidth = 2.5 * u;
    ctx.stroke();
  }
  canvas.dataset.point = state.chosenPoint === null ? "" : String(state.chosenPoint);
}

function pointAt(event) {
  const canvas = $("boundary");
  const rect = canvas.getBoundingClientRect();
  const [x0, x1, y0, y1] = state.points.extent;
  const all = [...state.points.train, ...($("hide-test").checked ? [] : state.points.test)];
  let best = -1, bestDistance = 14;  // CSS pixels
  all.forEach(([x, y], i) => {
    const sx = ((x - x0) / (x1 - x0)) * rect.width, sy = ((y1 - y) / (y1 - y0)) * rect.height;
    const d = Math.hypot(sx - (event.clientX - rect.left), sy - (event.clientY - rect.top));
    if (d < bestDistance) { best = i; bestDistance = d; }
  });
  return best;
}

// -- network diagram

function structureKey(net) {
  const box = $("network");
  return [net.inputs.map((i) => i.name).join(","), ...net.layers.map((l) => l.neurons.length),
    box.clientWidth, box.clientHeight, typeScale()].join("-");
}

// Output neurons of a 3-class model: each is one class's score, so it is named after its class
// and shows where the network gives that class a high probability, in the class's colour.
function outputClass(layerIndex, neuronIndex) {
  const net = state.frame.network;
  const classes = state.points ? state.points.classes : 2;
  const last = layerIndex === net.layers.length - 1;
  return last && classes > 2 && net.layers[layerIndex].neurons.length === classes ? neuronIndex : null;
}

function classPicture(byte, c) {  // byte: the class's probability, 0..255
  return mix(WHITE, hex(PALETTE[c % PALETTE.length]), byte / 255);
}

function drawNetwork() {
  const net = state.frame.network;
  const box = $("network");
  const key = structureKey(net);
  if (key !== state.structure || !box.firstChild) buildNetwork(net, key);
  const gradMode = $("edge-grad").checked;
  net.inputs.forEach((item) => {
    const canvas = state.nodes[item.name].canvas;
    if (canvas.drawnPicture === item.picture) return;  // the inputs' pictures rarely change
    const pic = bytesOf(item.picture);
    paint(canvas, Math.round(Math.sqrt(pic.length)), (k) => signedColour(pic[k]));
    canvas.drawnPicture = item.picture;
  });
  net.layers.forEach((layer, li) => layer.neurons.forEach((item, ni) => {
    const node = state.nodes[item.name];
    const pic = bytesOf(item.picture);
    const n = Math.round(Math.sqrt(pic.length));
    const c = outputClass(li, ni);
    if (c === null || !item.probability) {
      paint(node.canvas, n, (k) => signedColour(pic[k]));
    } else {
      const p = bytesOf(item.probability);
      paint(node.canvas, n, (k) => classPicture(p[k], c));
    }
    node.el.classList.toggle("dead", item.dead);
    node.el.title = `${item.name}: ${item.activation}, bias ${formatNumber(item.b)}` +
      (c === null ? "" : `\nclass ${c}: its picture is the probability of class ${c}`) +
      (item.dead ? " — dead ReLU: output 0 on every training point" : "") +
      `\nclick to see this neuron in the graph of one point's loss`;
    node.el.dataset.dead = item.dead ? "1" : "0";
  }));
  let top = 0;
  if (gradMode) {
    for (const layer of net.layers) for (const nr of layer.neurons) for (const g of nr.gw) {
      if (g !== null) top = Math.max(top, Math.abs(g));
    }
  }
  let e = 0;
  net.layers.forEach((layer) => layer.neurons.forEach((nr) => nr.w.forEach((w, i) => {
    const line = state.edges[e++];
    if (gradMode) {
      const g = nr.gw[i] === null ? NaN : Math.abs(nr.gw[i]);
      // log scale over three decades below the largest |gradient|
      const t = top > 0 && g > 0 ? Math.max(0, 1 + Math.log10(g / top) / 3) : 0;
      line.setAttribute("stroke", g > 0 ? `rgb(${mix([254, 217, 118], [128, 0, 38], t).join(",")})` : "#d9d9d9");
      line.setAttribute("stroke-width", (0.4 + 3.6 * t * t).toFixed(2));
      line.setAttribute("stroke-opacity", (0.5 + 0.5 * t).toFixed(2));
      line.dataset.grad = String(nr.gw[i]);
    } else {
      const a = w === null ? 0 : Math.abs(w);
      line.setAttribute("stroke", w > 0 ? `rgb(${POS.join(",")})` : `rgb(${NEG.join(",")})`);
      line.setAttribute("stroke-width", Math.min(9, 0.5 + 3 * a).toFixed(2));
      line.setAttribute("stroke-opacity", (0.35 + 0.65 * Math.min(1, a)).toFixed(2));
    }
    line.dataset.weight = String(w);
  })));
  const legend = gradMode
    ? 'edges: <i style="background:#fed976"></i>small to <i style="background:#800026"></i>large |gradient| of the last step (log scale), grey = 0; width grows with it'
    : 'edges: weight <i style="background:rgb(178,24,43)"></i>positive <i style="background:rgb(33,102,172)"></i>negative, width = |w|; pictures: output &gt; 0 red, &lt; 0 blue; <b>&#10005;</b> dead ReLU';
  $("legend").innerHTML = legend + (state.points && state.points.classes > 2
    ? "; each output neuron: the probability of its class" : "");
  if (state.frame.diverged) {
    const note = document.createElement("b");
    note.className = "diverged-text";
    note.dataset.testid = "diverged";
    note.style.color = "#991b1b";
    note.textContent = " Diverged: the weights no longer give finite numbers.";
    $("legend").append(note);
  }
}

function buildNetwork(net, key) {
  const box = $("network");
  hideZoom();  // the units move: the pointer is over none of them until it moves again
  box.textContent = "";
  state.structure = key;
  state.nodes = {};
  state.edges = [];
  const columns = [net.inputs, ...net.layers.map((l) => l.neurons)];
  const k = typeScale();
  const width = box.clientWidth || 600, height = box.clientHeight || 360;
  // room for the layer names above, the +/- buttons below, input names left, class names right
  const top = 22 * k, bottom = 30 * k, left = 46 * k, right = (state.points && state.points.classes > 2 ? 64 : 10) * k;
  const tallest = Math.max(...columns.map((c) => c.length));
  const row = (height - top - bottom) / tallest;
  // as large as the box allows (a projector), never larger than a row, so nothing overlaps
  const size = Math.max(8, Math.min(80 * k, row - 6, (width - left - right) / columns.length / 2));
  const xAt = (c) => left + ((width - left - right) * (c + 0.5)) / columns.length;
  const yAt = (c, i) => top + ((height - top - bottom) * (i + 0.5)) / columns[c].length;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "edges");
  box.append(svg);
  columns.forEach((column, c) => {
    const label = document.createElement("div");
    label.className = "layer-label";
    label.style.left = xAt(c) + "px";
    label.style.top = "0px";
    label.textContent = c === 0 ? "input" : c === columns.length - 1 ? "output" : `layer ${c - 1}`;
    box.append(label);
    if (c > 0 && c < columns.length - 1) neuronTools(box, c - 1, xAt(c), height - bottom + 4 * k);
    column.forEach((item, i) => {
      const el = document.createElement("div");
      el.className = "unit" + (c > 0 ? " neuron" : " input");
      el.style.left = xAt(c) + "px";
      el.style.top = yAt(c, i) + "px";
      el.style.width = el.style.height = size + "px";
      const canvas = document.createElement("canvas");
      el.append(canvas);
      const node = { el, canvas };
      let shown = item.name;
      if (c > 0) {
        el.dataset.testid = "neuron";
        el.dataset.name = item.name;
        el.addEventListener("click", () => chooseNeuron(item.name));
        el.tabIndex = 0;  // reachable with Tab, opened with Enter
        el.setAttribute("role", "button");
        el.addEventListener("keydown", (e) => { if (e.key === "Enter") chooseNeuron(item.name); });
        const cls = outputClass(c - 1, i);
        if (cls !== null) {
          const colour = PALETTE[cls % PALETTE.length];
          el.style.borderColor = colour;
          el.dataset.class = String(cls);
          const name = document.createElement("div");
          name.className = "class-label";
          name.dataset.testid = "class-label";
          name.style.left = xAt(c) + size / 2 + "px";
          name.style.top = yAt(c, i) + "px";
          name.style.color = colour;
          name.textContent = `class ${cls}`;
          box.append(name);
          shown = `${item.name}: the probability of class ${cls}`;
        }
      } else {
        el.title = `input ${item.label} over the plane`;
        el.dataset.testid = "input";
        el.dataset.name = item.name;
        const name = document.createElement("div");
        name.className = "input-label";
        name.style.left = xAt(c) - size / 2 + "px";
        name.style.top = yAt(c, i) + "px";
        name.textContent = item.label;
        box.append(name);
        shown = `input ${item.label}`;
      }
      el.addEventListener("mouseenter", () => showZoom(node, item.name, shown));
      el.addEventListener("mouseleave", hideZoom);
      box.append(el);
      state.nodes[item.name] = node;
      if (c > 0) {
        item.w.forEach((_, k) => {
          const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
          line.setAttribute("x1", xAt(c - 1));
          line.setAttribute("y1", yAt(c - 1, k));
          line.setAttribute("x2", xAt(c));
          line.setAttribute("y2", yAt(c, i));
          line.dataset.from = columns[c - 1][k].name;
          line.dataset.to = item.name;
          svg.append(line);
          state.edges.push(line);
        });
      }
    });
  });
  if (state.chosenNeuron && state.nodes[state.chosenNeuron]) {
    state.nodes[state.chosenNeuron].el.classList.add("chosen");
  }
}

// -- gradient flow bars

function svgNote(x, y, text, size, colour = "#666", testid = "") {
  const esc = String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<text x="${x}" y="${y}" text-anchor="middle" fill="${colour}" font-size="${size}"` +
    `${testid ? ` data-testid="${testid}"` : ""}>${esc}</text>`;
}

function drawGradFlow() {
  const svg = $("gradflow");
  const frame = state.frame;
  const stats = frame.grad_flow;
  const k = typeScale();
  const w = svg.clientWidth || 500, h = svg.clientHeight || 110;
  const values = stats.flatMap((s) => [s.mean, s.max]).filter((v) => v > 0);
  let out = "";
  if (frame.diverged) {
    out = svgNote(w / 2, h / 2, "Diverged: no gradient to show; lower the learning rate and press Reset",
      14 * k, "#991b1b", "diverged");
  } else if (!values.length) {
    // why every gradient is zero, from what the last step's loss was
    const why = frame.step_count === 0 ? "no gradient yet: press Step"
      : frame.gradient_free ? "no gradients: this optimizer only evaluates the loss"
      : frame.last_step_loss === 0 ? "every gradient of the last step is zero: its loss was 0 (no point inside the margin)"
      : "every gradient of the last step is zero: no neuron passed a signal back (dead ReLUs?)";
    out = svgNote(w / 2, h / 2, why, 14 * k);
  } else {
    const hi = Math.log10(Math.max(...values)) + 0.2, lo = Math.min(hi - 1, Math.log10(Math.min(...values)) - 0.5);
    const left = 110 * k, span = w - left - 10;
    const xOf = (v) => (v > 0 ? (span * (Math.log10(v) - lo)) / (hi - lo) : 0);
    const row = Math.min(26 * k, (h - 14 * k) / stats.length);
    stats.forEach((s, i) => {
      const y = 4 + i * row;
      const notes = [];
      if (s.dead && s.dead.length) notes.push(`${s.dead.length} dead`);
      if (s.vanishing) notes.push("vanishing");
      const colour = s.vanishing ? "#dc2626" : "#1f2937";
      out += `<text x="0" y="${y + row * 0.62}" font-size="${13 * k}" fill="${colour}">${s.name}${notes.length ? " · " + notes.join(", ") : ""}</text>`;
      out += `<rect x="${left}" y="${y + 1}" width="${xOf(s.max).toFixed(1)}" height="${(row * 0.8).toFixed(1)}" fill="#92c5de"><title>max |grad| ${s.max}</title></rect>`;
      out += `<rect x="${left}" y="${y + row * 0.25}" width="${xOf(s.mean).toFixed(1)}" height="${(row * 0.4).toFixed(1)}" fill="#2166ac"><title>mean |grad| ${s.mean}</title></rect>`;
    });
    const ticks = [];
    for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) ticks.push(d);
    const yAxis = 4 + stats.length * row + 10 * k;
    for (const d of ticks) {
      const x = left + (span * (d - lo)) / (hi - lo);
      out += `<text x="${x}" y="${yAxis}" font-size="${11 * k}" fill="#666" text-anchor="middle">1e${d}</text>`;
    }
  }
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = out;
}

// -- curves

function drawCurves() {
  const svg = $("curves");
  const k = typeScale();
  const w = svg.clientWidth || 340, h = svg.clientHeight || 220;
  const hist = state.history;
  const stride = Math.max(1, Math.ceil(hist.length / 300));
  const rows = hist.filter((_, i) => i % stride === 0 || i === hist.length - 1);
  const steps = Math.max(1, hist[hist.length - 1].step);
  const logLoss = $("log-loss").checked;
  svg.dataset.scale = logLoss ? "log" : "linear";
  const panels = [
    { title: logLoss ? "loss (log scale)" : "loss", keys: ["train_loss", "test_loss"], height: 0.5, log: logLoss },
    { title: "accuracy", keys: ["train_accuracy", "test_accuracy"], height: 0.3, fixed: [0, 1] },
    { title: "learning rate", keys: ["lr"], height: 0.2 },
  ];
  let out = "", top = 0;
  const left = 54 * k, right = w - 8;
  const X = (s) => left + ((right - left) * s) / steps;
  const usable = (v, log) => v !== null && isFinite(v) && (!log || v > 0);
  for (const p of panels) {
    const ph = h * p.height, y0 = top + 20 * k, y1 = top + ph - 6 * k;
    const vals = rows.flatMap((r) => p.keys.map((key) => r[key])).filter((v) => usable(v, p.log));
    out += `<text x="${left}" y="${top + 12 * k}" font-size="${12 * k}" font-weight="600">${p.title}</text>`;
    if (!vals.length && !p.fixed) {  // e.g. CMA-ES, which has a step size but no learning rate
      out += `<text x="${left}" y="${top + 30 * k}" font-size="${11 * k}" fill="#666">none: this optimizer has no ${p.title}</text>`;
      top += ph;
      continue;
    }
    const f = p.log ? Math.log10 : (v) => v;
    let lo = p.fixed ? p.fixed[0] : p.log ? Math.min(...vals.map(f)) : Math.min(0, ...vals);
    let hi = p.fixed ? p.fixed[1] : Math.max(...vals.map(f), p.log ? -Infinity : 1e-12);
    if (p.log) { lo = Math.floor(lo); hi = Math.ceil(hi); }
    if (hi <= lo) hi = lo + 1;
    const Y = (v) => y1 - ((y1 - y0) * (f(v) - lo)) / (hi - lo);
    const label = (v) => (p.log ? `1e${v}` : formatNumber(v));
    out += `<text x="${left - 4}" y="${y0 + 4 * k}" font-size="${11 * k}" text-anchor="end" fill="#666">${label(hi)}</text>`;
    out += `<text x="${left - 4}" y="${y1}" font-size="${11 * k}" text-anchor="end" fill="#666">${label(lo)}</text>`;
    out += `<line x1="${left}" y1="${y1}" x2="${right}" y2="${y1}" stroke="#bbb"/>`;
    p.keys.forEach((key, i) => {
      const pts = rows.filter((r) => usable(r[key], p.log)).map((r) => `${X(r.step).toFixed(1)},${Y(r[key]).toFixed(1)}`);
      if (pts.length) {
        out += `<polyline fill="none" stroke="${key === "lr" ? "#7c3aed" : "#1f2937"}" stroke-width="2" ` +
          `${i === 1 ? 'stroke-dasharray="5 3"' : ""} points="${pts.join(" ")}"/>`;
      }
    });
    top += ph;
  }
  // where the optimizer or the lr changed mid-run (Python keeps the marks)
  for (const mark of state.frame.marks || []) {
    const x = X(mark.step).toFixed(1);
    out += `<g data-testid="mark" data-step="${mark.step}"><line x1="${x}" y1="${14 * k}" x2="${x}" y2="${h - 14 * k}" ` +
      `stroke="#d97706" stroke-width="1.5" stroke-dasharray="3 3"/><text x="${Number(x) + 3}" y="${24 * k}" ` +
      `font-size="${11 * k}" fill="#b45309">${mark.text.replace(/</g, "&lt;")}</text></g>`;
  }
  if (state.frame.diverged) {
    out += svgNote(w / 2, h * 0.28, `Diverged: the loss is ${state.frame.train_loss_repr}`, 13 * k, "#991b1b", "diverged");
  }
  out += `<text x="${right}" y="${h - 1}" font-size="${11 * k}" text-anchor="end" fill="#666">step ${hist[hist.length - 1].step}</text>`;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = out;
}


// ---- look inside: inside.js; the controls: controls.js ---------------------------------------------

// ---- wiring ------------------------------------------------------------------------------------------

$("play").addEventListener("click", play);
$("pause").addEventListener("click", pause);
$("step").addEventListener("click", stepOnce);
$("reset").addEventListener("click", reset);
$("edge-grad").addEventListener("change", () => state.frame && drawNetwork());
$("discretize").addEventListener("change", () => state.frame && drawBoundary());
$("hide-test").addEventListener("change", () => state.frame && drawBoundary());
$("log-loss").addEventListener("change", () => state.frame && drawCurves());
$("boundary").addEventListener("click", (event) => {
  if (!state.points) return;
  const i = pointAt(event);
  if (i < 0) return;
  state.chosenPoint = i;
  drawBoundary();
  writeUrl(state.frame.settings);
  if (state.chosenNeuron) showInside();
});
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape" && insideOpen()) { closeInside(); return; }
  // typing in a field, or a focused button or link doing its own thing
  if (event.target.closest && event.target.closest("input, select, textarea, button, a")) return;
  if (event.key === " ") { event.preventDefault(); state.playing ? pause() : play(); }
  else if (event.key === "ArrowRight") stepOnce();
  else if (event.key === "r") reset();
  else if (event.key === "p") setPresenting(!document.body.classList.contains("presenting"));
});
// Every drawing follows its box: a window resized, presentation mode, Look inside opening or
// closing, a zoomed page. Each box is drawn again when its size changes.
const redraws = new Map([["network", () => drawNetwork()], ["gradflow", () => drawGradFlow()],
  ["curves", () => drawCurves()], ["boundary", () => drawBoundary()]]);
const sizes = new Map();
const watcher = new ResizeObserver((entries) => {
  if (!state.frame) return;
  for (const entry of entries) {
    const { width, height } = entry.contentRect;
    const size = `${Math.round(width)}x${Math.round(height)}`;
    if (sizes.get(entry.target.id) === size) continue;
    sizes.set(entry.target.id, size);
    redraws.get(entry.target.id)();
  }
});
for (const id of redraws.keys()) watcher.observe($(id));

// once controls.js and inside.js (loaded after this file) are there too
document.addEventListener("DOMContentLoaded", () => start().catch((error) => showError(error.message)));
