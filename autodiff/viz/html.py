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
from autodiff.viz.steps import backward_steps, explanation

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
) -> str:
    """Write (when `path` is given) and return an HTML page that steps through backprop on `root`.

    The page shows the graph with every Value's label, stable name and data, and controls:
    Previous / Next / Play (or the arrow keys and space) walk through `backward_steps(root)`,
    highlighting each step and filling in gradients as backprop reaches them. Everything is
    inline (SVG, CSS, JavaScript): the file works offline. The gradients are computed here, so
    `root.backward()` need not have run. Needs Graphviz's `dot` for the layout; graphs with
    more than `max_nodes` Values are refused (step through a smaller expression instead).
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

    header, lines = explanation(root, steps)
    data = {
        "root": info.of[root].name,
        "rootCell": cell(root),
        "ids": [n.name for n in info.nodes],
        "header": header,
        "steps": [
            {
                "from": info.of[s.node].name,
                "to": info.of[s.input].name,
                "edge": f"{info.of[s.node].name}_op_in{s.position}",
                "op": f"{info.of[s.node].name}_op",
                "text": line.strip(),
                "total": number(s.total) if s.total != 0 else "0",
                "final": s.final,
                **({"cell": cell(s.input)} if s.final else {}),
            }
            for s, line in zip(steps, lines)
        ],
    }
    legend = _legend(scale, info)
    page = _PAGE.format(
        title=html.escape(title or f"Backpropagation through {info.of[root].title}"),
        svg=svg,
        data=_script_json(data),
        legend=legend,
        step_items="".join(f"<li>{html.escape(line)}</li>" for line in lines),
        accumulating=ACCUMULATING,
        css=_CSS,
        js=_JS,
    )
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page


def render_svg(dot_text: str) -> str:
    """Lay out DOT text with Graphviz's `dot` and return the <svg> element (no XML prolog)."""
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            "to_html() needs Graphviz's `dot` program to lay out the graph; install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz, or run scripts/setup.sh)"
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


_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial,
       sans-serif; color: #1d2733; background: #f6f7f9; }
header { padding: 10px 16px; background: #1f4e79; color: #fff; display: flex; gap: 16px;
         align-items: center; flex-wrap: wrap; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; }
.cr-controls { display: flex; gap: 6px; align-items: center; }
.cr-controls button { font: inherit; padding: 4px 12px; border-radius: 6px; cursor: pointer;
                      border: 1px solid #9db7d3; background: #fff; color: #1f4e79; }
.cr-controls button:disabled { opacity: .45; cursor: default; }
.cr-controls label { font-size: 13px; display: flex; gap: 4px; align-items: center; }
#cr-counter { font-variant-numeric: tabular-nums; min-width: 110px; }
main { padding: 12px 16px; }
#cr-now { font: 16px/1.5 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
          background: #fff; border: 1px solid #d5dbe3; border-left: 5px solid #d62728;
          border-radius: 6px; padding: 8px 12px; margin-bottom: 10px; white-space: pre-wrap; }
#cr-graph { background: #fff; border: 1px solid #d5dbe3; border-radius: 6px; overflow: auto;
            padding: 8px; }
#cr-graph svg { width: 100%; height: auto; max-height: 72vh; display: block; margin: 0 auto; }
#cr-graph.cr-actual svg { width: auto; max-width: none; max-height: none; }
.cr-legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; margin: 8px 2px; }
.cr-key { display: inline-flex; align-items: center; gap: 4px; }
.cr-key i { display: inline-block; width: 16px; height: 12px; border: 1px solid #999; }
.cr-key i.cr-tick { width: auto; height: auto; font: 10px sans-serif; font-style: normal;
                    padding: 1px 4px; border: 0; }
.cr-swatch-to { border: 3px solid #d62728 !important; }
.cr-swatch-from { border: 3px solid #1f77b4 !important; }
#cr-steps { font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
            background: #fff; border: 1px solid #d5dbe3; border-radius: 6px; margin: 10px 0 0;
            padding: 6px 0; max-height: 40vh; overflow: auto; list-style: none; }
#cr-steps li { padding: 1px 12px; white-space: pre; cursor: pointer; color: #56606b; }
#cr-steps li.cr-done { color: #1d2733; }
#cr-steps li.cr-current { background: #fde2e2; color: #000; }
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
  const steps = data.steps;
  const UNKNOWN = {text: "?", fill: "#ffffff", ink: "#888888"};
  const ACCUMULATING = document.body.dataset.accumulating;
  let k = 0, timer = null;

  // Each box's last cell is its gradient: Graphviz draws a cell as its background polygon
  // followed by its text. Centre the text in the cell, so numbers of any width stay inside.
  const cells = {};
  for (const id of data.ids) {
    const g = document.getElementById(id);
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
    const el = document.getElementById(id);
    if (el) el.classList.add(cls);
  }
  const items = Array.from(document.querySelectorAll("#cr-steps li"));
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
    items.forEach((li, i) => {
      li.classList.toggle("cr-done", i < k);
      li.classList.toggle("cr-current", i === k - 1);
    });
    const now = document.getElementById("cr-now");
    if (k === 0) {
      now.textContent = data.header + "\\nPress Next (or the right arrow) to take the first step.";
      mark(data.root, "cr-from");
    } else {
      const s = steps[k - 1];
      mark(s.to, "cr-to"); mark(s.from, "cr-from"); mark(s.op, "cr-op");
      mark(s.edge, "cr-edge"); mark(s.op + "_out", "cr-out");
      now.textContent = s.text;
      items[k - 1].scrollIntoView({block: "nearest"});
    }
    document.getElementById("cr-counter").textContent = "Step " + k + " of " + steps.length;
    document.getElementById("cr-prev").disabled = k === 0;
    document.getElementById("cr-next").disabled = k === steps.length;
    document.body.dataset.step = k;
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    document.getElementById("cr-play").textContent = "Play";
  }
  function play() {
    if (timer) return stop();
    if (k === steps.length) show(0);
    document.getElementById("cr-play").textContent = "Pause";
    const speed = +document.getElementById("cr-speed").value;
    timer = setInterval(() => { if (k >= steps.length) stop(); else show(k + 1); }, speed);
  }
  document.getElementById("cr-prev").onclick = () => { stop(); show(k - 1); };
  document.getElementById("cr-next").onclick = () => { stop(); show(k + 1); };
  document.getElementById("cr-reset").onclick = () => { stop(); show(0); };
  document.getElementById("cr-play").onclick = play;
  document.getElementById("cr-speed").onchange = () => { if (timer) { stop(); play(); } };
  items.forEach((li, i) => { li.onclick = () => { stop(); show(i + 1); }; });
  document.getElementById("cr-zoom").onclick = e => {
    const actual = document.getElementById("cr-graph").classList.toggle("cr-actual");
    e.target.textContent = actual ? "Fit" : "Actual size";
  };
  document.addEventListener("keydown", e => {
    if (e.key === "ArrowRight") { stop(); show(k + 1); }
    else if (e.key === "ArrowLeft") { stop(); show(k - 1); }
    else if (e.key === " ") { e.preventDefault(); play(); }
  });
  show(0);
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
<button id="cr-zoom" title="fit to the window, or show at actual size">Actual size</button>
<span id="cr-counter"></span>
</div>
</header>
<main>
<div id="cr-now"></div>
<div id="cr-graph">
{svg}
</div>
<div class="cr-legend">{legend}</div>
<ol id="cr-steps">{step_items}</ol>
</main>
<script type="application/json" id="cr-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""
