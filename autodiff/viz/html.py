"""A self-contained web page that plays the backward pass on the drawing of the graph.

`to_html(root, path)` lays the graph out with Graphviz's `dot` once, inlines the SVG with a little
CSS and JavaScript, and writes one file that opens in any browser without a network. The one
idea to understand: the page holds the list of `backward_steps` and redraws from scratch for the
current step number, so Previous, Next, Play and clicking a step all go through one `show(k)`:
gradients not reached yet read `grad ?`, running totals are pale blue, finished gradients take
their colour on the |grad| scale, and the current step's edge and nodes are outlined.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

from autodiff.engine import topological_order
from autodiff.value import Value
from autodiff.viz.emit import write_dot
from autodiff.viz.graph import analyse
from autodiff.viz.layout import affordable
from autodiff.viz.look import ROLE_BORDER, ROLE_HEADER, ZERO_FILL, GradScale, dress, text_colour
from autodiff.viz.options import DEFAULT_MAX_NODES, DrawOptions
from autodiff.viz.scene import full_scene
from autodiff.viz.page import HTMLPage
from autodiff.viz.steps import backward_steps, explanation_lines, explanation_parts
from autodiff.viz.steps import number as step_number

ACCUMULATING = "#cfe3ff"  # a gradient still being summed up (more contributions to come)


def to_html(
    root: Value,
    path: str | Path | None = None,
    *,
    rankdir: str = "LR",
    fmt: str = ".4g",
    model=None,
    params=None,
    title: str | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    group: bool = False,
) -> HTMLPage:
    """Write (when `path` is given) and return an HTML page that steps through backprop on `root`.

    The page shows the graph with every Value's label, stable name and data, and controls:
    Previous / Next / Play (or the arrow keys and space) walk through `backward_steps(root)`,
    highlighting each step and filling in gradients as backprop reaches them; the list of steps
    and the drawing (at actual size) follow the current step. "One step per node" (or
    `group=True`) groups the steps by the node passing its gradient back, with its shares
    listed (a neuron's dot product is one step); "jump to" goes to the step where a parameter
    (named as in `model.named_parameters()`) or a label gets its whole gradient. The controls
    stay on screen. Everything is inline (SVG, CSS, JavaScript): the file works offline. The
    gradients are computed here, so `root.backward()` need not have run. Needs Graphviz's `dot`
    for the layout; graphs with more than `max_nodes` Values are refused (step through a
    smaller expression, such as the loss of one sample, instead).
    """
    options = DrawOptions(
        rankdir, ("label", "name", "data", "grad"), fmt, colour=False, legend=False,
        max_nodes=None, title=title, html_ids=True,
    )
    if not isinstance(root, Value):
        raise TypeError(f"to_html() needs a Value, got {type(root).__name__}: {root!r}")
    size = len(topological_order(root))
    if size > max_nodes:
        raise ValueError(
            f"to_html() draws every node, and this graph has {size:,} Values, more "
            f"than max_nodes={max_nodes}; pass a larger max_nodes or a smaller expression "
            "(for a model, the loss of a single sample)"
        )
    steps = backward_steps(root, model=model, params=params)
    final = {root: 1.0}
    for step in steps:
        final[step.input] = step.total
    info = analyse(root, model, params, grads=True, who="to_html", grad_values=final)
    scene = dress(affordable(full_scene(info, options)), options)
    svg = render_svg(write_dot(scene, rankdir, title))

    scale = GradScale.fit(abs(g) for g in final.values())
    number = options.number

    def cell(node: Value) -> dict:
        g = final[node]
        fill = scale.colour(g)
        return {"text": "0" if g == 0 else number(g), "fill": fill, "ink": text_colour(fill)}

    header, parts = explanation_parts(root, steps)
    lines = explanation_lines(parts)
    name = {n.value: n.name for n in info.nodes}
    # One group per node passing its gradient back: its steps are consecutive (a dot node's 2n
    # shares are one group), so a group is a range of steps.
    groups: list[dict] = []
    for i, s in enumerate(steps):
        if groups and steps[groups[-1]["first"]].node is s.node:
            groups[-1]["last"] = i
            continue
        groups.append({"first": i, "last": i, "text": parts[i][0]})
    out = root.label or "L"  # as explain calls the output
    for g in groups:
        node = steps[g["first"]].node
        node_name = out if node is root else steps[g["first"]].node_name
        count = g["last"] - g["first"] + 1
        g["text"] = (
            f"{g['text']}   passes d{out}/d{node_name} = {step_number(final[node])} "
            f"back to {count} input{'s' if count > 1 else ''}"
        )
    # Jump by name: each input's last step, when its gradient is complete.
    finals = {s.input_name: s.index for s in steps if s.final}
    findable = sorted(
        {s.input_name for s in steps if s.input.label or s.input in info.param_names}
    )
    data = {
        "root": name[root],
        "rootCell": cell(root),
        "ids": [n.name for n in info.nodes],
        "header": header,
        "steps": [
            {
                "from": name[s.node],
                "to": name[s.input],
                "edge": f"{name[s.node]}_op_in{s.position}",
                "op": f"{name[s.node]}_op",
                "text": line.strip(),
                # in the list, a node's later shares say `"` (ditto) for its long expression
                "item": (
                    line.replace(expression, '"'.center(len(expression)), 1)
                    if i and s.node is steps[i - 1].node
                    else line
                ).strip(),
                "share": share,
                "total": number(s.total) if s.total != 0 else "0",
                "final": s.final,
                **({"cell": cell(s.input)} if s.final else {}),
            }
            for i, (s, line, (expression, share)) in enumerate(zip(steps, lines, parts))
        ],
        "groups": groups,
        "finals": finals,
        "grouped": bool(group),
    }
    legend = _legend(scale, info)
    page = _PAGE.format(
        title=html.escape(title or f"Backpropagation through {out}"),  # as explain calls it
        svg=svg,
        data=_script_json(data),
        legend=legend,
        names="".join(f'<option value="{html.escape(n)}">' for n in findable),
        accumulating=ACCUMULATING,
        checked=" checked" if group else "",
        css=_CSS,
        js=_JS,
    )
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return HTMLPage(page)  # a str that Jupyter shows inline


def render_svg(dot_text: str) -> str:
    """Lay out DOT text with Graphviz's `dot` and return the <svg> element (no XML prolog)."""
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            "to_html() needs Graphviz's `dot` program to lay out the graph; install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; Windows: "
            "winget install Graphviz.Graphviz)"
        )
    result = subprocess.run(
        [exe, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.decode('utf-8', 'replace').strip()}")
    svg = result.stdout.decode("utf-8")
    return svg[svg.index("<svg") :]


def _script_json(data) -> str:
    # Inside <script>, "</script>" or "<!--" in a label must not end the block: escape < > &.
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _legend(scale: GradScale, info) -> str:
    roles = {n.role for n in info.nodes}
    parts = []
    for role in ("output", "parameter", "input", "constant"):
        if role in roles:
            parts.append(
                f'<span class="cr-key"><i style="background:{ROLE_HEADER[role]};'
                f'border-color:{ROLE_BORDER[role]}"></i>{role}</span>'
            )
    ticks = "".join(
        f'<i class="cr-tick" style="background:{colour};color:{text_colour(colour)}">{text}</i>'
        for text, colour in ((text, scale.colour(m)) for text, m in scale.ticks())
    )
    parts.append(f'<span class="cr-key">|grad|: {ticks}</span>')
    parts.append(f'<span class="cr-key"><i style="background:{ZERO_FILL}"></i>0</span>')
    parts.append(
        f'<span class="cr-key"><i style="background:{ACCUMULATING}"></i>still adding up</span>'
    )
    parts.append('<span class="cr-key"><i class="cr-swatch-to"></i>receives a gradient</span>')
    parts.append('<span class="cr-key"><i class="cr-swatch-from"></i>passes it back</span>')
    return "".join(parts)


# The page fills the window and never scrolls as a whole: the header (controls and the current
# step) stays on screen, and the drawing and the list of steps scroll each in its own panel.
# Sizes are for a projector: 18 px text at 1280x720.
_CSS = """
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; font: 18px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial,
       sans-serif; color: #1d2733; background: #f6f7f9; display: flex; flex-direction: column; }
header { position: sticky; top: 0; z-index: 10; flex: none; padding: 8px 14px;
         background: #1f4e79; color: #fff; }
header h1 { font-size: 19px; margin: 0 0 6px; font-weight: 600; white-space: nowrap;
            overflow: hidden; text-overflow: ellipsis; }
.cr-controls { display: flex; gap: 6px 8px; align-items: center; flex-wrap: wrap; }
.cr-controls button, .cr-controls select, .cr-controls input[type=text] {
  font: inherit; padding: 3px 12px; border-radius: 6px; border: 1px solid #9db7d3;
  background: #fff; color: #1f4e79; }
.cr-controls button { cursor: pointer; }
.cr-controls button:disabled { opacity: .45; cursor: default; }
.cr-controls label { display: flex; gap: 4px; align-items: center; }
.cr-controls input[type=text] { width: 15em; color: #1d2733; }
#cr-counter { font-variant-numeric: tabular-nums; min-width: 9em; }
#cr-found { font-size: 15px; color: #ffd9d9; }
#cr-now { font: 17px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
          background: #fff; color: #1d2733; border-left: 6px solid #d62728; border-radius: 6px;
          padding: 6px 10px; margin-top: 8px; white-space: pre-wrap; max-height: 7.5em;
          overflow: auto; }
main { flex: 1 1 auto; min-height: 0; display: flex; flex-direction: column; gap: 6px;
       padding: 8px 14px; }
#cr-graph { flex: 3 1 0; min-height: 120px; background: #fff; border: 1px solid #d5dbe3;
            border-radius: 6px; overflow: auto; padding: 6px; }
#cr-graph svg { width: 100%; height: 100%; display: block; }
#cr-graph.cr-actual svg { width: auto; height: auto; max-width: none; max-height: none; }
.cr-legend { flex: none; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 15px; }
.cr-key { display: inline-flex; align-items: center; gap: 4px; }
.cr-key i { display: inline-block; width: 16px; height: 12px; border: 1px solid #999; }
.cr-key i.cr-tick { width: auto; height: auto; font: 12px sans-serif; font-style: normal;
                    padding: 1px 4px; border: 0; }
.cr-swatch-to { border: 3px solid #d62728 !important; }
.cr-swatch-from { border: 3px solid #1f77b4 !important; }
.cr-list { flex: 2 1 0; min-height: 80px; margin: 0; padding: 4px 0; overflow: auto;
           font: 16px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
           background: #fff; border: 1px solid #d5dbe3; border-radius: 6px; list-style: none; }
.cr-list li { padding: 1px 12px; white-space: pre; cursor: pointer; color: #56606b; }
.cr-list li.cr-done { color: #1d2733; }
.cr-list li.cr-current { background: #fde2e2; color: #000; }
.cr-list li .cr-share { display: block; padding-left: 2em; }
body.cr-grouped #cr-steps, body:not(.cr-grouped) #cr-groups { display: none; }
g.node.cr-to > polygon[fill="none"] { stroke: #d62728; stroke-width: 4px; }
g.node.cr-from > polygon[fill="none"] { stroke: #1f77b4; stroke-width: 4px; }
g.node.cr-op > ellipse, g.node.cr-op > polygon { fill: #ffd166; stroke: #d62728;
                                                  stroke-width: 2px; }
g.edge.cr-edge > path { stroke: #d62728; stroke-width: 3.5px; }
g.edge.cr-edge > polygon { stroke: #d62728; fill: #d62728; }
g.edge.cr-out > path { stroke: #1f77b4; stroke-width: 3px; }
g.edge.cr-out > polygon { stroke: #1f77b4; fill: #1f77b4; }
"""

_JS = """
(function () {
  const data = JSON.parse(document.getElementById("cr-data").textContent);
  const steps = data.steps, groups = data.groups;
  const UNKNOWN = {text: "?", fill: "#ffffff", ink: "#888888"};
  const ACCUMULATING = document.body.dataset.accumulating;
  const $ = id => document.getElementById(id);
  const graph = $("cr-graph");
  let k = 0, timer = null, grouped = data.grouped;
  const groupOf = new Array(steps.length);
  groups.forEach((g, i) => { for (let j = g.first; j <= g.last; j++) groupOf[j] = i; });

  // Each box's last cell is its gradient: Graphviz draws a cell as its background polygon
  // followed by its text. Centre the text in the cell, so numbers of any width stay inside.
  const cells = {};
  for (const id of data.ids) {
    const g = $(id);
    const texts = g ? g.querySelectorAll(":scope > text") : [];
    if (!texts.length) continue;
    const text = texts[texts.length - 1], box = text.previousElementSibling;
    if (box && box.tagName === "polygon") {
      const xs = box.getAttribute("points").trim().split(/\\s+/).map(p => +p.split(",")[0]);
      text.setAttribute("x", (Math.min(...xs) + Math.max(...xs)) / 2);
      text.setAttribute("text-anchor", "middle");
    }
    cells[id] = {text, box};
  }
  function paint(id, c) {
    const cell = cells[id];
    if (!cell) return;
    cell.text.textContent = "grad " + c.text;
    cell.text.setAttribute("fill", c.ink);
    if (cell.box) cell.box.setAttribute("fill", c.fill);
  }
  function mark(id, cls) {
    const el = $(id);
    if (el) el.classList.add(cls);
    return el;
  }

  // The two lists, built from the data (as text: no label is ever read as markup).
  const stepItems = steps.map((s, i) => {
    const li = document.createElement("li");
    li.textContent = s.item;
    li.onclick = () => { stop(); show(i + 1); };
    return li;
  });
  $("cr-steps").append(...stepItems);
  const groupItems = groups.map((g, i) => {
    const li = document.createElement("li");
    li.textContent = (i + 1) + ". " + g.text;
    for (let j = g.first; j <= g.last; j++) {
      const share = document.createElement("span");
      share.className = "cr-share";
      share.textContent = steps[j].share;
      li.append(share);
    }
    li.onclick = () => { stop(); show(g.last + 1); };
    return li;
  });
  $("cr-groups").append(...groupItems);

  // Keep `el` in view inside its scrolling panel (only when it is not already in view).
  function reveal(el, panel) {
    if (!el || !panel) return;
    const r = el.getBoundingClientRect(), p = panel.getBoundingClientRect();
    if (r.left >= p.left && r.right <= p.right && r.top >= p.top && r.bottom <= p.bottom) return;
    panel.scrollLeft += (r.left + r.right) / 2 - (p.left + p.right) / 2;
    panel.scrollTop += (r.top + r.bottom) / 2 - (p.top + p.bottom) / 2;
  }

  function show(n) {
    k = Math.max(0, Math.min(steps.length, n));
    for (const id of data.ids) paint(id, UNKNOWN);
    paint(data.root, data.rootCell);
    for (let i = 0; i < k; i++) {
      const s = steps[i];
      paint(s.to, s.final ? s.cell : {text: s.total, fill: ACCUMULATING, ink: "#000000"});
    }
    for (const cls of ["cr-to", "cr-from", "cr-op", "cr-edge", "cr-out"]) {
      document.querySelectorAll("." + cls).forEach(el => el.classList.remove(cls));
    }
    const g = k ? groupOf[k - 1] : -1;
    stepItems.forEach((li, i) => {
      li.classList.toggle("cr-done", i < k);
      li.classList.toggle("cr-current", i === k - 1);
    });
    groupItems.forEach((li, i) => {
      li.classList.toggle("cr-done", i <= g);
      li.classList.toggle("cr-current", i === g);
    });
    const now = $("cr-now");
    let focus = null;
    if (k === 0) {
      now.textContent = data.header + "\\nPress Next (or the right arrow) to take the first step.";
      focus = mark(data.root, "cr-from");
    } else if (grouped) {
      const group = groups[g];
      const lines = [(g + 1) + ". " + group.text];
      for (let j = group.first; j < k; j++) {
        const s = steps[j];
        mark(s.to, "cr-to"); mark(s.edge, "cr-edge");
        lines.push("    " + s.share);
      }
      const s = steps[group.first];
      mark(s.from, "cr-from"); mark(s.op + "_out", "cr-out");
      focus = mark(s.op, "cr-op");
      now.textContent = lines.join("\\n");
    } else {
      const s = steps[k - 1];
      mark(s.from, "cr-from"); mark(s.op, "cr-op");
      mark(s.edge, "cr-edge"); mark(s.op + "_out", "cr-out");
      focus = mark(s.to, "cr-to");
      now.textContent = s.text;
    }
    const current = grouped ? groupItems[g] : stepItems[k - 1];
    if (current) reveal(current, $(grouped ? "cr-groups" : "cr-steps"));
    if (graph.classList.contains("cr-actual")) reveal(focus, graph);
    $("cr-counter").textContent = grouped
      ? "Node " + (g + 1) + " of " + groups.length
      : "Step " + k + " of " + steps.length;
    $("cr-prev").disabled = k === 0;
    $("cr-next").disabled = k === steps.length;
    document.body.dataset.step = k;
    document.body.dataset.group = g + 1;
  }
  // Next and Previous move one step, or one node's group of steps.
  function next() {
    if (!grouped || k === steps.length) return show(k + 1);
    // the group after the one that ends with step k (k is at a group's end in this mode)
    const g = k === 0 ? 0 : groupOf[k - 1] + (k - 1 === groups[groupOf[k - 1]].last ? 1 : 0);
    show(groups[g].last + 1);
  }
  function previous() {
    if (!grouped || k === 0) return show(k - 1);
    const g = groupOf[k - 1];
    show(g === 0 ? 0 : groups[g - 1].last + 1);
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    $("cr-play").textContent = "Play";
  }
  function play() {
    if (timer) return stop();
    if (k === steps.length) show(0);
    $("cr-play").textContent = "Pause";
    const speed = +$("cr-speed").value;
    timer = setInterval(() => { if (k >= steps.length) stop(); else next(); }, speed);
  }
  function setGrouped(on) {
    grouped = on;
    document.body.classList.toggle("cr-grouped", on);
    $("cr-group").checked = on;
    // in groups, the current position is the end of the current node's group
    show(on && k ? groups[groupOf[k - 1]].last + 1 : k);
  }
  function zoom(actual) {
    graph.classList.toggle("cr-actual", actual);
    $("cr-zoom").textContent = actual ? "Fit" : "Actual size";
    show(k);
  }
  function find() {
    const name = $("cr-find").value.trim();
    if (!name) return;
    const i = data.finals[name];
    $("cr-found").textContent = i === undefined ? "no gradient for " + JSON.stringify(name) : "";
    if (i === undefined) return;
    stop();
    show(grouped ? groups[groupOf[i]].last + 1 : i + 1);
  }
  $("cr-prev").onclick = () => { stop(); previous(); };
  $("cr-next").onclick = () => { stop(); next(); };
  $("cr-reset").onclick = () => { stop(); show(0); };
  $("cr-play").onclick = play;
  $("cr-speed").onchange = () => { if (timer) { stop(); play(); } };
  $("cr-group").onchange = e => setGrouped(e.target.checked);
  $("cr-zoom").onclick = () => zoom(!graph.classList.contains("cr-actual"));
  $("cr-find").onchange = find;
  $("cr-find").onkeydown = e => { if (e.key === "Enter") find(); e.stopPropagation(); };
  document.addEventListener("keydown", e => {
    // the keys belong to the page unless a text field or a menu is being used; space is
    // Play / Pause even when a button has the focus (it would click that button)
    if (e.target.id === "cr-find" || e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight") { stop(); next(); }
    else if (e.key === "ArrowLeft") { stop(); previous(); }
    else if (e.key === " ") { e.preventDefault(); play(); }
  });
  document.body.classList.toggle("cr-grouped", grouped);
  // A drawing that would be too small to read when fitted starts at actual size.
  const svg = graph.querySelector("svg");
  const fit = Math.min(graph.clientWidth / svg.width.baseVal.value,
                       graph.clientHeight / svg.height.baseVal.value);
  if (fit < 0.6) zoom(true); else show(0);
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body data-accumulating="{accumulating}">
<header>
<h1>{title}</h1>
<div class="cr-controls">
<button id="cr-reset" title="back to the start">Start</button>
<button id="cr-prev" title="previous step (left arrow)">&#9664; Previous</button>
<button id="cr-next" title="next step (right arrow)">Next &#9654;</button>
<button id="cr-play" title="play / pause (space)">Play</button>
<label>speed <select id="cr-speed">
<option value="1500">slow</option><option value="700" selected>normal</option>
<option value="250">fast</option><option value="60">very fast</option></select></label>
<label title="one step per node, with the shares it passes to each input">
<input type="checkbox" id="cr-group"{checked}> one step per node</label>
<button id="cr-zoom" title="fit to the window, or show at actual size">Actual size</button>
<input type="text" id="cr-find" list="cr-names" placeholder="jump to a parameter"
 title="a parameter's name (or a label): go to the step that completes its gradient">
<datalist id="cr-names">{names}</datalist>
<span id="cr-counter"></span>
<span id="cr-found"></span>
</div>
<div id="cr-now"></div>
</header>
<main>
<div id="cr-graph">
{svg}
</div>
<div class="cr-legend">{legend}</div>
<ol id="cr-steps" class="cr-list"></ol>
<ol id="cr-groups" class="cr-list"></ol>
</main>
<script type="application/json" id="cr-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""
