"""Step 4 of a drawing: how each thing looks (colours, boxes), chosen for the whole scene at once.

The scene (`scene`, `summary`) says *what* is drawn, as plain descriptions: a `ValueBox` for a
Value (or k copies of one), an `OpNode`, a `ClusterBox` for a whole Neuron, an `Again` for a
repeated node, a `Legend`, and edges with the gradient they carry. `dress` turns them into
Graphviz attributes. The one idea to understand: gradient magnitudes span many orders of
magnitude, so colours follow log10 |grad| (`GradScale`), fitted once over everything the scene
shows; every box, edge and the legend use that one scale. A Value's box is one HTML-like table
(`value_box_attrs`): a title row coloured by the Value's role (output, parameter, input,
constant) and cells for its data and gradient, the same for one Value and for k copies.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from autodiff.viz.escape import Html, html_text
from autodiff.viz.options import DrawOptions
from autodiff.viz.scene import Again, ClusterBox, Legend, More, OpNode, Scene, ValueBox

# ---- colours ------------------------------------------------------------------------------------

# Box fills, from light (tiny gradient) to dark red (large gradient): ColorBrewer YlOrRd without
# its two palest stops, which can hardly be told from white.
PALETTE = (
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
)
# Edges are thin lines on white, so they need more contrast than a filled box: the same hues,
# darkened where needed so that every colour of the scale has at least 3:1 contrast with white
# (the WCAG minimum for graphics). The legend shows both.
EDGE_PALETTE = (
    "#b8860b",
    "#c7700e",
    "#d9531a",
    "#e0301f",
    "#cb1420",
    "#a80026",
    "#800026",
)
ZERO_FILL = "#d9d9d9"  # an exactly-zero gradient: grey, not the palest colour of the scale
NONFINITE_FILL = "#ff00ff"  # nan or inf: impossible to miss
DEAD_FILL = "#404040"  # a ReLU whose input is <= 0 passes no gradient back
UNKNOWN_FILL = "#ffffff"

ROLE_HEADER = {  # background of a node's title row, by the role its Value plays
    "output": "#1f4e79",
    "parameter": "#cfe2ff",
    "input": "#d4edda",
    "constant": "#eeeeee",
    "value": "#ffffff",
}
ROLE_BORDER = {
    "output": "#1f4e79",
    "parameter": "#3a6fb0",
    "input": "#2e7d32",
    "constant": "#9e9e9e",
    "value": "#555555",
}

# Largest number of decades the colour scale spans; smaller gradients get the palest colour.
MAX_DECADES = 6


# ---- the gradient colour scale ------------------------------------------------------------------


@dataclass(frozen=True)
class GradScale:
    """Maps |grad| to a colour: log10 |grad| between decades `low` and `high` spans the palette."""

    low: int
    high: int

    @classmethod
    def fit(cls, magnitudes: Iterable[float]) -> GradScale:
        """The decades covering the nonzero finite magnitudes (at most MAX_DECADES of them)."""
        smallest, largest = math.inf, 0.0
        for m in magnitudes:
            if m > 0 and math.isfinite(m):
                smallest = min(smallest, m)
                largest = max(largest, m)
        if largest == 0.0:
            return cls(-1, 0)
        high = math.ceil(math.log10(largest))
        low = max(math.floor(math.log10(smallest)), high - MAX_DECADES)
        if low >= high:
            low = high - 1
        return cls(low, high)

    def position(self, magnitude: float) -> float:
        """Where a magnitude falls on the scale, from 0 (palest) to 1 (darkest)."""
        t = (math.log10(magnitude) - self.low) / (self.high - self.low)
        return min(1.0, max(0.0, t))

    def colour(self, grad: float) -> str:
        """Fill colour for a gradient: palette by log |grad|, grey for 0, magenta for nan/inf."""
        if not math.isfinite(grad):
            return NONFINITE_FILL
        if grad == 0.0:
            return ZERO_FILL
        return interpolate(self.position(abs(grad)))

    def edge_colour(self, grad: float) -> str:
        """Line colour for a gradient flowing along an edge: `colour`'s scale, darker at the low
        end so that even the smallest gradient's edge reads on white."""
        if not math.isfinite(grad):
            return NONFINITE_FILL
        if grad == 0.0:
            return ZERO_FILL
        return interpolate(self.position(abs(grad)), EDGE_PALETTE)

    def pen_width(self, grad: float) -> float:
        """Edge thickness: 1 for tiny or zero gradients, up to 3.5 for the largest."""
        if grad == 0.0 or not math.isfinite(grad):
            return 1.0
        return round(1.0 + 2.5 * self.position(abs(grad)), 2)

    def ticks(self) -> list[tuple[str, float]]:
        """(text, magnitude) for the legend: one swatch per decade boundary."""
        step = max(1, (self.high - self.low + 5) // 6)  # at most about six swatches
        exps = list(range(self.low, self.high + 1, step))
        if exps[-1] != self.high:
            exps.append(self.high)
        return [(f"1e{e}", 10.0**e) for e in exps]


def interpolate(t: float, palette: tuple[str, ...] = PALETTE) -> str:
    """The palette colour at position t in [0, 1], linearly interpolated between stops."""
    return _interpolate(round(t * 1000), palette)  # a thousand shades: more than eyes can tell


@functools.lru_cache(maxsize=2048)
def _interpolate(step: int, palette: tuple[str, ...]) -> str:
    t = step / 1000
    x = t * (len(palette) - 1)
    i = min(int(x), len(palette) - 2)
    frac = x - i
    a, b = _rgb(palette[i]), _rgb(palette[i + 1])
    r, g, bl = (round(a[k] + (b[k] - a[k]) * frac) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def text_colour(fill: str) -> str:
    """Black or white, whichever reads better on `fill` (by relative luminance)."""
    r, g, b = _rgb(fill)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 140 else "#ffffff"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


REPEAT = "↻"  # marks a node drawn again next to a far-away user, instead of a long edge


def dress(scene: Scene, options: DrawOptions) -> Scene:
    """Give every item and edge of the scene its Graphviz attributes (see the module docstring)."""
    magnitudes = [abs(e.flow) for e in scene.edges if e.flow is not None]
    for item in scene.items:
        m = getattr(item.look, "magnitude", None)
        if m is not None:
            magnitudes.append(abs(m))
    scale = GradScale.fit(magnitudes)
    for item in scene.items:
        item.attrs = {**look_attrs(item.look, scale, options), **item.attrs}
    for edge in scene.edges:
        more = MORE_EDGE if edge.more else {}
        edge.attrs = {**more, **edge.attrs, **flow_attrs(scale, edge.flow, edge.dead)}
    return scene


def look_attrs(look, scale: GradScale, options: DrawOptions) -> dict:
    if isinstance(look, ValueBox):
        return value_box_attrs(look, scale, options)
    if isinstance(look, OpNode):
        return op_attrs(look)
    if isinstance(look, ClusterBox):
        return cluster_box(look, scale, options)
    if isinstance(look, Again):
        return again_attrs(look)
    if isinstance(look, More):
        return {"label": look.text, **MORE_ATTRS}
    if isinstance(look, Legend):
        return legend_attrs(look, scale, options)
    raise TypeError(f"no look for {look!r}")


# ---- a Value's box: the one box builder ---------------------------------------------------------


def value_box_attrs(box: ValueBox, scale: GradScale, options: DrawOptions) -> dict:
    """The table drawn for a Value (or for k copies of one): title, ×k, data, grad."""
    cells = []
    if box.title:
        header = ROLE_HEADER[box.role]
        text = f"<B>{html_text(box.title)}</B>"
        if text_colour(header) == "#ffffff":
            text = f'<FONT COLOR="#ffffff">{text}</FONT>'
        cells.append(f'<TD BGCOLOR="{header}">{text}</TD>')
    if box.count > 1:
        cells.append(f"<TD><B>×{box.count}</B></TD>")
    if box.data is not None:
        cells.append(f"<TD>data {html_text(box.data)}</TD>")
    if box.grad == "?":
        cells.append('<TD><FONT COLOR="#888888">grad ?</FONT></TD>')
    elif box.grad is not None:
        fill = scale.colour(box.magnitude) if box.magnitude is not None else UNKNOWN_FILL
        cells.append(
            f'<TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">grad {html_text(box.grad)}'
            "</FONT></TD>"
        )
    if not cells:
        cells.append("<TD> </TD>")
    if options.rankdir in ("LR", "RL"):
        rows = "<TR>" + "".join(cells) + "</TR>"
        cells_attr = 'CELLBORDER="0" COLUMNS="*"'
    else:
        rows = "".join(f"<TR>{c}</TR>" for c in cells)
        cells_attr = 'CELLBORDER="0" ROWS="*"'
    border = "3" if box.role == "output" else "1"
    label = Html(
        f'<TABLE BORDER="{border}" {cells_attr} CELLSPACING="0" CELLPADDING="4" '
        f'COLOR="{ROLE_BORDER[box.role]}">{rows}</TABLE>'
    )
    if box.tooltip is None:
        return {"label": label, "shape": "plain"}
    return {"label": label, "shape": "plain", "tooltip": box.tooltip}


def again_attrs(again: Again) -> dict[str, str]:
    """A small dashed box, coloured like the original's title, that says it is a repeat."""
    role = again.role
    return {
        "label": Html(f"{REPEAT} {html_text(again.text)}"),
        "shape": "box",
        "style": "rounded,dashed,filled",
        "fillcolor": ROLE_HEADER[role] if role != "output" else "#ffffff",
        "color": ROLE_BORDER[role],
        "fontsize": "10",
        "height": "0.3",
        "margin": "0.06,0.02",
        "tooltip": f"{again.text}, drawn again here instead of a long edge: the original "
        f"is {again.where} ({again.original})",
    }


# ---- operations and edges -----------------------------------------------------------------------


def op_attrs(op: OpNode) -> dict:
    """An operation's small node: its symbol in an ellipse, or a dark octagon for a dead ReLU."""
    note = {"xlabel": op.note} if op.note else {}
    if op.dead:
        return {
            "label": Html(f'{html_text(op.text)}<BR/><FONT POINT-SIZE="9">dead</FONT>'),
            "shape": "octagon",
            "style": "filled",
            "fillcolor": DEAD_FILL,
            "fontcolor": "#ffffff",
            "fontsize": "11",
            "margin": "0.02",
            **note,
        }
    return {
        "label": op.text,
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": "#f2f2f2",
        "color": "#8c8c8c",
        "fontsize": "11",
        "margin": "0.04,0.02",
        "height": "0.3",
        **note,
    }


def flow_attrs(scale: GradScale, flow: float | None, dead: bool) -> dict:
    """An edge carrying `flow` back: coloured and as thick as |flow| on the scale."""
    if dead:
        return {"color": "#9e9e9e", "style": "dashed"}
    if flow is None:
        return {}
    if flow == 0.0:
        return {"color": ZERO_FILL, "style": "dashed"}
    return {"color": scale.edge_colour(flow), "penwidth": str(scale.pen_width(flow))}


# ---- a summary's neuron box and stubs -----------------------------------------------------------


def cluster_box(box: ClusterBox, scale: GradScale, options: DrawOptions) -> dict:
    """A whole cluster (a Neuron or a Layer) as one box: its size, ops, largest parameter
    gradient and how many of its ReLUs are off."""
    path, params, values, ops, relus, dead = (
        box.path, box.params, box.values, box.ops, box.relus, box.dead
    )
    rows = [f'<TR><TD BGCOLOR="{ROLE_HEADER["parameter"]}"><B>{html_text(path)}</B></TD></TR>']
    rows.append(f"<TR><TD>{params} params · {values:,} values</TD></TR>")
    if ops:
        rows.append(f"<TR><TD>ops: {html_text(' '.join(ops))}</TD></TR>")
    if box.grad is not None:
        fill = scale.colour(box.magnitude) if box.magnitude is not None else UNKNOWN_FILL
        text = box.grad
        rows.append(
            f'<TR><TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">max |grad| of params '
            f"{html_text(text)}</FONT></TD></TR>"
        )
    if relus:
        # One ReLU that is off is inactive on this input; "dead" needs it off on every copy.
        fill = DEAD_FILL if dead == relus else "#ffffff"
        if relus == 1:
            text = "ReLU off (input &lt;= 0)" if dead else "ReLU on"
        elif dead == relus:
            text = f"dead ReLU: off on all {relus} copies"
        else:
            text = f"ReLU off on {dead} of {relus} copies"
        rows.append(
            f'<TR><TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">{text}</FONT></TD></TR>'
        )
    label = (
        '<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" '
        f'COLOR="{ROLE_BORDER["parameter"]}" STYLE="ROUNDED">{"".join(rows)}</TABLE>'
    )
    return {"label": Html(label), "shape": "plain"}


MORE_ATTRS = {
    "shape": "box",
    "style": "rounded,dashed",
    "color": "#9e9e9e",
    "fontcolor": "#616161",
    "fontsize": "10",
}
MORE_EDGE = {"style": "dashed", "color": "#9e9e9e"}


# ---- the legend ---------------------------------------------------------------------------------


def legend_attrs(legend: Legend, scale: GradScale, options: DrawOptions) -> dict:
    """A small key: the roles present, the |grad| colour scale (for boxes and, when they are
    coloured, edges), zero gradients, dead ReLUs."""
    roles, grads_known, coloured_edges = legend.roles, legend.grads_known, legend.coloured_edges
    rows = ['<TR><TD COLSPAN="2"><B>legend</B></TD></TR>']
    for role in ("output", "parameter", "input", "constant"):
        if role in roles:
            rows.append(
                f'<TR><TD BGCOLOR="{ROLE_HEADER[role]}" BORDER="1" COLOR="{ROLE_BORDER[role]}">'
                f'</TD><TD ALIGN="LEFT">{role}</TD></TR>'
            )
    if grads_known and options.colour and "grad" in options.show:
        # One swatch per decade for the boxes, and under it the matching edge colour as a line
        # (a summary's edges join groups of nodes and carry no one gradient: no colour there).
        ticks = scale.ticks()
        fills = "".join(
            f'<TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}" POINT-SIZE="9">{text}'
            "</FONT></TD>"
            for text, fill in ((text, scale.colour(m)) for text, m in ticks)
        )
        lines = "".join(  # a short thick line: a thin filled cell inside the row's cell
            '<TD><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
            f'<TD BGCOLOR="{scale.edge_colour(m)}" WIDTH="22" HEIGHT="3" FIXEDSIZE="TRUE"></TD>'
            "</TR></TABLE></TD>"
            for _, m in ticks
        )
        small = '<TD ALIGN="RIGHT"><FONT POINT-SIZE="9">{}</FONT></TD>'
        rows.append(
            '<TR><TD COLSPAN="2" ALIGN="LEFT">|grad|, log scale</TD></TR>'
            '<TR><TD COLSPAN="2"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">'
            f'<TR>{small.format("boxes")}{fills}</TR>'
            + (f'<TR>{small.format("edges")}{lines}</TR>' if coloured_edges else "")
            + "</TABLE></TD></TR>"
        )
        rows.append(
            f'<TR><TD BGCOLOR="{ZERO_FILL}" BORDER="1"></TD>'
            '<TD ALIGN="LEFT">grad exactly 0</TD></TR>'
        )
        if legend.any_dead:
            rows.append(
                f'<TR><TD BGCOLOR="{DEAD_FILL}" BORDER="1"></TD>'
                '<TD ALIGN="LEFT">dead ReLU (input &lt;= 0)</TD></TR>'
            )
    elif not grads_known and "grad" in options.show:
        rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">grad ? = not computed yet</TD></TR>')
    table = (
        '<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3">'
        + "".join(rows)
        + "</TABLE>"
    )
    return {"label": Html(table), "shape": "plain", "fontsize": "10"}
