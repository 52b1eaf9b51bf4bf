"""A self-contained web page that plays the backward pass on the drawing of the graph.

`to_html(root, path)` lays the graph out with Graphviz's `dot` once, inlines the SVG with the
page's style and script (`static/steps.css`, `static/steps.js`, written into the template
`static/steps.html`), and writes one file that opens in any browser without a network. The one
idea to understand: the page holds the list of `backward_steps` and redraws from scratch for the
current step number, so Previous, Next, Play and clicking a step all go through one `show(k)`:
gradients not reached yet read `grad ?`, running totals are pale blue, finished gradients take
their colour on the |grad| scale, and the current step's edge and nodes are outlined.
"""

from __future__ import annotations

import functools
import html
import json
from importlib import resources
from pathlib import Path

from autodiff.engine import topological_order
from autodiff.value import Value
from autodiff.viz.emit import write_dot
from autodiff.viz.graph import analyse
from autodiff.viz.layout import affordable
from autodiff.viz.look import ROLE_BORDER, ROLE_HEADER, ZERO_FILL, GradScale, dress, text_colour
from autodiff.viz.options import DEFAULT_MAX_NODES, DrawOptions
from autodiff.viz.render import render_svg
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
    page = _asset("steps.html").format(
        title=html.escape(title or f"Backpropagation through {out}"),  # as explain calls it
        svg=svg,
        data=_script_json(data),
        legend=legend,
        names="".join(f'<option value="{html.escape(n)}">' for n in findable),
        accumulating=ACCUMULATING,
        checked=" checked" if group else "",
        css=_asset("steps.css"),
        js=_asset("steps.js"),
    )
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return HTMLPage(page)  # a str that Jupyter shows inline


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


@functools.cache
def _asset(name: str) -> str:
    """The page's template, style or script: files of `static/`, shipped as package data and
    written into each page, so the page needs nothing but itself. `steps.html` is filled with
    `str.format`: its {fields} are named in `to_html`, and a literal brace is written twice."""
    return (resources.files("autodiff.viz") / "static" / name).read_text(encoding="utf-8")
