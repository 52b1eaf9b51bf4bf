// chainrule playground: the controls a class reaches for, as in TensorFlow Playground: sliders
// for lr, noise and batch size, +/- buttons for layers and neurons, input features as chips,
// presentation mode, the enlarged picture of a hovered neuron. Each control only sends a
// setting (changeSetting / sendSetting in playground.js); Python checks it and answers a frame.
"use strict";

// The learning rates a slider offers (log scale); any other lr can be typed in the form.
const LR_STEPS = [1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const MAX_NOISE_SLIDER = 1;  // the setting allows up to 2; the slider covers the useful part

function nearestLrStep(lr) {
  let best = 0;
  LR_STEPS.forEach((v, i) => {
    if (Math.abs(Math.log(v / lr)) < Math.abs(Math.log(LR_STEPS[best] / lr))) best = i;
  });
  return best;
}

// A range input beside a setting's text field: dragging shows the value, letting go sends it.
function sliderFor(spec, input) {
  if (!["lr", "noise", "batch_size"].includes(spec.name)) return null;
  const slider = document.createElement("input");
  slider.type = "range";
  slider.dataset.testid = "slider-" + spec.name;
  slider.title = spec.help;
  slider.setAttribute("aria-label", spec.name);
  if (spec.name === "lr") {
    slider.min = 0; slider.max = LR_STEPS.length - 1; slider.step = 1;
  } else if (spec.name === "noise") {
    slider.min = 0; slider.max = MAX_NOISE_SLIDER; slider.step = 0.05;
  } else {
    slider.min = 1; slider.step = 1;  // max: the training set's size, set when a frame arrives
  }
  const valueOf = () => {
    if (spec.name === "lr") return String(LR_STEPS[Number(slider.value)]);
    if (spec.name === "batch_size" && Number(slider.value) >= Number(slider.max)) return "full";
    return slider.value;
  };
  slider.addEventListener("input", () => { input.value = valueOf(); });
  slider.addEventListener("change", () => { input.value = valueOf(); changeSetting(spec.name, input); });
  return slider;
}

// Put the sliders where the frame's settings are (called from fillForm).
function syncSliders(settings) {
  const train = state.points ? state.points.train.length : 0;
  for (const slider of document.querySelectorAll("#settings input[type=range]")) {
    if (slider === document.activeElement) continue;
    const name = slider.dataset.testid.slice("slider-".length);
    if (name === "lr") slider.value = nearestLrStep(settings.lr);
    else if (name === "noise") slider.value = Math.min(MAX_NOISE_SLIDER, settings.noise);
    else if (name === "batch_size") {
      slider.max = Math.max(1, train);
      slider.value = settings.batch_size === null ? slider.max : settings.batch_size;
    }
  }
  const header = $("lr-slider");
  if (header !== document.activeElement) header.value = nearestLrStep(settings.lr);
  const hasLr = state.options.optimizers[settings.optimizer].lr;
  header.disabled = !hasLr;
  header.parentElement.title = hasLr ? "learning rate (log scale; type any value in the form)"
    : `${state.options.optimizers[settings.optimizer].class} has no learning rate`;
}

// The input features: one checkbox per feature of nn.playground.features, in one row.
function featureChips(spec, input) {
  const chips = document.createElement("div");
  chips.className = "chips";
  for (const name of spec.choices) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.dataset.testid = "feature-" + name;
    box.title = `feed the network ${state.options.features[name]} of each point`;
    box.addEventListener("change", () => {
      const chosen = [...chips.querySelectorAll("input:checked")].map((b) => b.value);
      input.value = chosen.join(",");
      changeSetting(spec.name, input);
    });
    label.append(box, state.options.features[name]);
    chips.append(label);
  }
  return chips;
}

function syncFeatureChips(settings) {
  for (const box of document.querySelectorAll("#settings .chips input")) {
    box.checked = settings.features.includes(box.value);
  }
}

// ---- +/- for layers and neurons: they only change the `hidden` setting --------------------------

function changeHidden(hidden) {
  sendSetting("hidden", hidden.join(","));
}

function layerTools() {
  const hidden = state.frame.settings.hidden;
  const limits = state.options.limits;
  $("layer-count").textContent = `${hidden.length} hidden layer${hidden.length === 1 ? "" : "s"}`;
  $("add-layer").disabled = hidden.length >= limits.layers;
  $("remove-layer").disabled = hidden.length === 0;
}

function neuronTools(box, layer, x, y) {
  const hidden = state.frame.settings.hidden;
  const tools = document.createElement("div");
  tools.className = "neuron-tools";
  tools.style.left = x + "px";
  tools.style.top = y + "px";
  for (const [sign, delta, testid] of [["−", -1, "remove-neuron"], ["+", 1, "add-neuron"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = sign;
    button.dataset.testid = testid;
    button.dataset.layer = String(layer);
    button.title = `${delta > 0 ? "one more neuron in" : "one neuron fewer in"} layer ${layer}`;
    const width = hidden[layer] + delta;
    button.disabled = width < 1 || width > state.options.limits.width;
    button.addEventListener("click", () => {
      const next = [...state.frame.settings.hidden];
      next[layer] += delta;
      changeHidden(next);
    });
    tools.append(button);
  }
  box.append(tools);
}

$("add-layer").addEventListener("click", () => {
  const hidden = state.frame.settings.hidden;
  changeHidden([...hidden, hidden.length ? hidden[hidden.length - 1] : 4]);
});
$("remove-layer").addEventListener("click", () => changeHidden(state.frame.settings.hidden.slice(0, -1)));
$("lr-slider").addEventListener("input", () => {
  $("lr-now").textContent = formatNumber(LR_STEPS[Number($("lr-slider").value)]);
});
$("lr-slider").addEventListener("change", () => sendSetting("lr", String(LR_STEPS[Number($("lr-slider").value)])));

// ---- presentation mode ---------------------------------------------------------------------------

function setPresenting(on) {
  document.body.classList.toggle("presenting", on);
  $("present").setAttribute("aria-pressed", on ? "true" : "false");
  // the network and curves follow their boxes (a ResizeObserver); the boundary is CSS-sized
}
$("present").addEventListener("click", () => setPresenting(!document.body.classList.contains("presenting")));

// ---- hover: a neuron's picture, large ---------------------------------------------------------

function showZoom(node, name, label) {
  const zoom = $("neuron-zoom");
  const canvas = zoom.querySelector("canvas");
  canvas.width = node.canvas.width;
  canvas.height = node.canvas.height;
  canvas.getContext("2d").drawImage(node.canvas, 0, 0);
  zoom.querySelector("span").textContent = label || name;
  zoom.hidden = false;
  const box = $("middle").getBoundingClientRect(), at = node.el.getBoundingClientRect();
  const w = zoom.offsetWidth, h = zoom.offsetHeight;
  let left = at.right - box.left + 8;
  if (left + w > box.width) left = at.left - box.left - w - 8;
  const top = Math.max(0, Math.min(box.height - h, at.top - box.top + at.height / 2 - h / 2));
  zoom.style.left = Math.max(0, left) + "px";
  zoom.style.top = top + "px";
  zoom.dataset.name = name;
}

function hideZoom() { $("neuron-zoom").hidden = true; }
