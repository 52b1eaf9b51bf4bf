"""How each thing in a drawing looks: Graphviz attributes for boxes, operations, edges, the legend.

The scene (`scene`, `summary`) decides *what* is drawn; this module decides how it looks, so the
full drawing and the summary of a big graph share every look. The one idea to understand: a
Value's box is one HTML-like table built by `value_box`, a title row coloured by the Value's role
(output, parameter, input, constant) and cells for its data and gradient, the gradient cell
coloured on the |grad| scale. A summary's box of k copies is the same table with a `×k` cell and
ranges instead of numbers.
"""

from __future__ import annotations

from autodiff.viz.emit import Html, html_text
from autodiff.viz.style import (
    DEAD_FILL,
    ROLE_BORDER,
    ROLE_HEADER,
    UNKNOWN_FILL,
    ZERO_FILL,
    DrawOptions,
    GradScale,
    text_colour,
)

REPEAT = "↻"  # marks a node drawn again next to a far-away user, instead of a long edge


# ---- a Value's box: the one box builder ---------------------------------------------------------


def value_box(
    options: DrawOptions,
    role: str,
    title: str,
    data: str | None,
    grad: tuple[str, str] | str | None,
    count: int = 1,
) -> Html:
    """The table drawn for a Value (or for `count` copies of one).

    `title` heads the box in its role's colour ("" for none); `data` is the data cell's text;
    `grad` is (text, fill) for a known gradient, "?" for one not computed yet, None to omit.
    """
    cells = []
    if title:
        header = ROLE_HEADER[role]
        text = f"<B>{html_text(title)}</B>"
        if text_colour(header) == "#ffffff":
            text = f'<FONT COLOR="#ffffff">{text}</FONT>'
        cells.append(f'<TD BGCOLOR="{header}">{text}</TD>')
    if count > 1:
        cells.append(f"<TD><B>×{count}</B></TD>")
    if data is not None:
        cells.append(f"<TD>data {html_text(data)}</TD>")
    if grad == "?":
        cells.append('<TD><FONT COLOR="#888888">grad ?</FONT></TD>')
    elif grad is not None:
        text, fill = grad
        cells.append(
            f'<TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">grad {html_text(text)}'
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
    border = "3" if role == "output" else "1"
    return Html(
        f'<TABLE BORDER="{border}" {cells_attr} CELLSPACING="0" CELLPADDING="4" '
        f'COLOR="{ROLE_BORDER[role]}">{rows}</TABLE>'
    )


def grad_cell(options: DrawOptions, scale: GradScale, text: str, magnitude: float):
    """The (text, fill) of a gradient cell: coloured by `magnitude` on the scale."""
    return text, scale.colour(magnitude) if options.colour else UNKNOWN_FILL


def again_attrs(text: str, role: str, where: str, original: str) -> dict[str, str]:
    """A small dashed box, coloured like the original's title, that says it is a repeat."""
    return {
        "label": Html(f"{REPEAT} {html_text(text)}"),
        "shape": "box",
        "style": "rounded,dashed,filled",
        "fillcolor": ROLE_HEADER[role] if role != "output" else "#ffffff",
        "color": ROLE_BORDER[role],
        "fontsize": "10",
        "height": "0.3",
        "margin": "0.06,0.02",
        "tooltip": f"{text}, drawn again here instead of a long edge: the original "
        f"is {where} ({original})",
    }


# ---- operations and edges -----------------------------------------------------------------------


def op_attrs(text: str, dead: bool) -> dict:
    """An operation's small node: its symbol in an ellipse, or a dark octagon for a dead ReLU."""
    if dead:
        return {
            "label": Html(f'{html_text(text)}<BR/><FONT POINT-SIZE="9">dead</FONT>'),
            "shape": "octagon",
            "style": "filled",
            "fillcolor": DEAD_FILL,
            "fontcolor": "#ffffff",
            "fontsize": "11",
            "margin": "0.02",
        }
    return {
        "label": text,
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": "#f2f2f2",
        "color": "#8c8c8c",
        "fontsize": "11",
        "margin": "0.04,0.02",
        "height": "0.3",
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


def neuron_box(
    path: str,
    params: int,
    values: int,
    ops: list[str],
    grad: tuple[str, str] | None,
    relus: int,
    dead: int,
) -> dict:
    """A whole cluster (a Neuron or a Layer) as one box: its size, ops, largest parameter
    gradient (`grad` = (text, fill), or None) and how many of its ReLUs are off."""
    rows = [f'<TR><TD BGCOLOR="{ROLE_HEADER["parameter"]}"><B>{html_text(path)}</B></TD></TR>']
    rows.append(f"<TR><TD>{params} params · {values:,} values</TD></TR>")
    if ops:
        rows.append(f"<TR><TD>ops: {html_text(' '.join(ops))}</TD></TR>")
    if grad is not None:
        text, fill = grad
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


def legend_attrs(
    options: DrawOptions,
    roles: set[str],
    scale: GradScale,
    grads_known: bool,
    any_dead: bool,
    coloured_edges: bool = True,
) -> dict:
    """A small key: the roles present, the |grad| colour scale (for boxes and, when they are
    coloured, edges), zero gradients, dead ReLUs."""
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
        if any_dead:
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
