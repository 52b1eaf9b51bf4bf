// chainrule playground: Look inside, a side panel beside the network. It shows one point's loss
// graph after backward (drawn by Python), the chosen neuron highlighted with its name in view.
// It is drawn again on every Step and Pause and after Reset, so its caption never names an old
// step; while playing, the caption says it waits for the pause.
"use strict";

function chooseNeuron(name) {
  hideZoom();
  if (state.chosenNeuron && state.nodes[state.chosenNeuron]) {
    state.nodes[state.chosenNeuron].el.classList.remove("chosen");
  }
  state.chosenNeuron = name;
  state.nodes[name].el.classList.add("chosen");
  writeUrl(state.frame.settings);
  showInside();
}

function pointName(index) {
  const train = state.points.train.length;
  return index < train ? `training point ${index}` : `test point ${index - train}`;
}

function insideOpen() { return !$("inside").hidden; }

// One drawing at a time: asked again while one is on its way, it is drawn once more after.
async function showInside() {
  if (state.insideBusy) { state.insideAgain = true; return; }
  state.insideBusy = true;
  try {
    do {
      state.insideAgain = false;
      await drawInside();
    } while (state.insideAgain && insideOpen());
  } finally {
    state.insideBusy = false;
  }
}

async function drawInside() {
  if (!state.chosenNeuron) return;
  const panel = $("inside");
  if (panel.hidden) {
    panel.hidden = false;
    document.body.classList.add("inside-open");  // the network's box changes: it is redrawn
  }
  $("inside-title").textContent = `Look inside ${state.chosenNeuron}`;
  const caption = $("inside-caption");
  caption.classList.remove("stale");
  caption.textContent = state.chosenPoint === null ? "drawing the loss of the worst training point…"
    : `drawing the loss of ${pointName(state.chosenPoint)}…`;
  await guarded(async () => {
    const graph = await api("GET", sessionPath("graph"), { neuron: state.chosenNeuron,
      point: state.chosenPoint === null ? "" : state.chosenPoint });
    state.chosenPoint = graph.point;
    writeUrl(state.frame.settings);
    drawBoundary();
    const holder = $("neuron-graph");
    holder.innerHTML = graph.svg;
    const svg = holder.querySelector("svg");
    let found = null;
    for (const text of svg.querySelectorAll("text")) {
      if (text.textContent.trim() === graph.neuron) { found = text.closest("g.node, g.cluster"); break; }
    }
    if (found) {
      found.classList.add("pg-highlight");
      if (!state.insideFit) bringIntoView(holder, found, graph.neuron);
    }
    holder.dataset.neuron = graph.neuron;
    holder.dataset.point = String(state.chosenPoint);
    holder.dataset.step = String(state.frame.step_count);
    caption.textContent = (state.frame.diverged ? "Diverged: these numbers are no longer finite. " : "") +
      graph.title + ". Click a point of the decision boundary to choose another.";
    caption.dataset.step = String(state.frame.step_count);
    showZeroWhy(graph);
    const link = $("step-through");
    link.href = `${sessionPath("backprop")}?point=${state.chosenPoint}`;
  });
}

// The neuron's box can be larger than the panel: its name (at the box's top) must be in view,
// so the box is centred only when it fits, else its top-left corner is shown.
function bringIntoView(holder, found, name) {
  const view = holder.getBoundingClientRect();
  let at = found.getBoundingClientRect();
  for (const text of found.querySelectorAll("text")) {
    if (text.textContent.trim() === name) { at = text.getBoundingClientRect(); break; }
  }
  const box = found.getBoundingClientRect();
  const dx = box.width < view.width ? box.left + box.width / 2 - (view.left + view.width / 2)
    : at.left - view.left - 16;
  const dy = box.height < view.height ? box.top + box.height / 2 - (view.top + view.height / 2)
    : at.top - view.top - 16;
  holder.scrollLeft += dx;
  holder.scrollTop += dy;
}

// A point whose loss is 0 has only zero gradients: Python says why, and the page offers the
// point with the largest loss instead.
function showZeroWhy(graph) {
  const box = $("zero-why");
  box.hidden = !graph.zero_why;
  if (!graph.zero_why) return;
  box.querySelector("p").textContent = graph.zero_why;
  const button = $("worst-point");
  button.textContent = `Show the worst point instead (${pointName(graph.worst)})`;
  button.onclick = () => { state.chosenPoint = graph.worst; showInside(); };
}

// After a frame: a graph drawn at an older step is redrawn (when not playing) or marked stale.
function refreshInside() {
  if (!insideOpen() || !state.chosenNeuron) return;
  const holder = $("neuron-graph");
  if (holder.dataset.step === String(state.frame.step_count)) return;
  if (state.playing) {
    const caption = $("inside-caption");
    caption.classList.add("stale");
    caption.textContent = `Drawn after ${holder.dataset.step} steps; training goes on ` +
      `(step ${state.frame.step_count}): it is drawn again when you pause.`;
    caption.dataset.step = holder.dataset.step;
  } else {
    showInside();
  }
}

function closeInside() {
  $("inside").hidden = true;
  document.body.classList.remove("inside-open");
  if (state.chosenNeuron && state.nodes[state.chosenNeuron]) {
    state.nodes[state.chosenNeuron].el.classList.remove("chosen");
  }
  state.chosenNeuron = null;
  if (state.frame) writeUrl(state.frame.settings);
}

$("inside-close").addEventListener("click", closeInside);
$("inside-refresh").addEventListener("click", showInside);
$("inside-zoom").addEventListener("click", () => {
  state.insideFit = !state.insideFit;
  $("neuron-graph").classList.toggle("fit", state.insideFit);
  $("inside-zoom").textContent = state.insideFit ? "100%" : "fit";
});
