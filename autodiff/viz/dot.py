"""Draw a computation graph: `to_dot` gives DOT text, `draw_dot` a `graphviz.Digraph`.

Each Value is a box with its label, data and grad; each operation is a small node between its
inputs and its output, so the drawing reads like the expression. The one idea to understand:
the colours show *gradient flow*. Boxes and edges are coloured by |grad| on a log scale (the
legend gives the decades), an exactly-zero gradient is grey and a dead ReLU is dark, so you see
at a glance where the signal is strong and where it vanishes.

    >>> from autodiff import Value, to_dot
    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> c = a * b
    >>> c.backward()
    >>> print(to_dot(c).splitlines()[0])
    digraph chainrule {

A graph bigger than `max_nodes` is summarised instead of drawn node by node (see `to_dot`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from autodiff.value import Value
from autodiff.viz import layout
from autodiff.viz.emit import Edge, Html, Item, Repeat, write_dot
from autodiff.viz.graph import GraphInfo, analyse, cluster_chain
from autodiff.viz.layout import affordable
from autodiff.viz.style import (
    DEAD_FILL,
    ROLE_BORDER,
    ROLE_HEADER,
    UNKNOWN_FILL,
    ZERO_FILL,
    GradScale,
    NumberFormat,
    formatter,
    html_text,
    text_colour,
)

SHOW_FIELDS = ("label", "name", "data", "grad")
DEFAULT_SHOW = ("label", "data", "grad")
DEFAULT_MAX_NODES = 500
COLLAPSE_MODES = ("auto", "repeats", "clusters")

# How each primitive is written in its operation node (anything else shows its name).
OP_SYMBOLS = {
    "add": "+",
    "mul": "*",
    "pow": "**",
    "neg": "neg",
    "reciprocal": "1/x",
    "identity": "id",
}

FONT = "Helvetica"


class DrawOptions:
    """The validated options of one drawing, shared by the full drawing and the summary."""

    def __init__(
        self,
        rankdir: str,
        show: Iterable[str],
        fmt: NumberFormat,
        colour: bool,
        legend: bool,
        clusters: bool,
        max_nodes: int | None,
        collapse: str,
        title: str | None,
    ) -> None:
        if rankdir not in ("LR", "TB", "RL", "BT"):
            raise ValueError(f"to_dot(rankdir={rankdir!r}): use 'LR' (left to right) or 'TB'")
        show = (show,) if isinstance(show, str) else tuple(show)
        unknown = [s for s in show if s not in SHOW_FIELDS]
        if unknown:
            raise ValueError(f"to_dot(show=...) got unknown field(s) {unknown}; use {SHOW_FIELDS}")
        if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 1):
            raise ValueError(f"to_dot(max_nodes={max_nodes!r}) needs a positive int or None")
        if collapse not in COLLAPSE_MODES:
            raise ValueError(f"to_dot(collapse={collapse!r}): use one of {COLLAPSE_MODES}")
        self.rankdir = rankdir
        self.show = show
        self.number = formatter(fmt)
        self.colour = bool(colour)
        self.legend = bool(legend)
        self.clusters = bool(clusters)
        self.max_nodes = max_nodes
        self.collapse = collapse
        self.title = title
        self.html_ids = False  # to_html: no node tooltips, so the page's script sees each cell


def to_dot(
    root: Value,
    *,
    rankdir: str = "LR",
    show: Iterable[str] = DEFAULT_SHOW,
    fmt: NumberFormat = ".4g",
    model=None,
    params: Mapping[str, Value] | Iterable | None = None,
    grads: bool | None = None,
    colour: bool = True,
    legend: bool = True,
    clusters: bool = True,
    max_nodes: int | None = DEFAULT_MAX_NODES,
    collapse: str = "auto",
    title: str | None = None,
) -> str:
    """The computation graph of `root` as DOT text (Graphviz's language); standard library only.

    - `rankdir`: "LR" (inputs on the left) or "TB" (inputs on top).
    - `show`: what each Value's box shows, any of "label" (its label, or its parameter name),
      "name" (the stable name n0, n1, ... that `explain` also uses), "data", "grad".
    - `fmt`: number format, a format spec such as ".4g" or ".4f", or a function float -> str.
    - `model` / `params`: name parameters, from `model.named_parameters()` or from a mapping
      {name: Value} or (name, Value) pairs. Named parameters are drawn as parameters and, with
      `clusters=True`, the nodes of each Neuron and Layer are grouped in a box.
    - `grads`: whether to show gradients. By default they are shown when `root.grad` is nonzero
      (backward() sets it to 1); before backward the drawing says so instead of showing zeros.
    - `colour`: colour boxes and edges by |grad| on a log scale; `legend` adds the key.
    - `max_nodes`: past this many Values the graph is summarised (repeated structure collapsed,
      then each cluster drawn as one box, then only the part nearest the output kept), and the
      drawing says what was left out. `None` draws every node, however slow Graphviz gets.
    - `collapse`: how to summarise: "auto", "repeats" (merge copies only) or "clusters".
    - `title`: a caption at the top.

    Node ids follow the topological order, so the same graph always gives the same text.
    """
    options = DrawOptions(rankdir, show, fmt, colour, legend, clusters, max_nodes, collapse, title)
    info = analyse(root, model=model, params=params, grads=grads)
    return build_dot(info, options)


def draw_dot(root: Value, *, format: str = "svg", **options):
    """`to_dot` rendered by Graphviz: a `graphviz.Digraph` (shows inline as SVG in Jupyter).

    Takes the same keyword options as `to_dot`; `format` is the output format of `.render()`
    (svg, png, pdf). Needs the `graphviz` Python package and Graphviz's `dot` program.

        graph = draw_dot(loss, model=model)
        graph.render("loss_graph")          # writes loss_graph.svg
    """
    import graphviz  # imported here so that autodiff itself needs nothing beyond the stdlib

    text = to_dot(root, **options)
    head, _, rest = text.partition("\n")
    body = rest[: rest.rstrip().rfind("}")].splitlines(keepends=True)
    return graphviz.Digraph(name=head.split()[1], body=body, format=format)


def build_dot(info: GraphInfo, options: DrawOptions) -> str:
    """DOT text for an analysed graph: the full drawing, or a summary when it is too big."""
    notes: list[str] = []
    summary = options.max_nodes is not None and len(info.order) > options.max_nodes
    if summary:
        from autodiff.viz.summary import summarise

        items, edges, scale, cluster_labels, notes, dense = summarise(info, options)
        items, edges, copies, cut, cost = affordable(items, edges)
        keep = options.max_nodes
        while cost > layout.BUDGET and keep > 25:  # still slow to lay out: draw less
            keep //= 2
            items, edges, scale, cluster_labels, notes, dense = summarise(info, options, keep)
            items, edges, copies, cut, cost = affordable(items, edges)
            notes.insert(
                -1,
                f"(Fewer than max_nodes={options.max_nodes}, so that Graphviz lays the drawing "
                "out in seconds.)",
            )
    else:
        dense = False
        items, edges, scale = full_items(info, options)
        items, edges, copies, cut, cost = affordable(items, edges)
        cluster_labels = _cluster_labels(info, options, (item.cluster for item in items))
    if cut:
        notes.append(repeat_note(copies, cut))
    limits = layout.effort_limits(len(items), cost)
    if limits:
        notes.append(
            "A big drawing: Graphviz is told to stop improving the layout early (nslimit, "
            "mclimit), so that it finishes; edges may cross more than they need to."
        )
    if not info.grads_known and "grad" in options.show:
        notes.append("gradients not computed yet: call backward() on the output to see them")
    if options.legend:
        items.insert(0, legend_item(info, options, scale, coloured_edges=not summary))
    return finish(items, edges, options, cluster_labels, notes, dense=dense, limits=limits)


def repeat_note(copies: int, cut: int) -> str:
    edges = f"{cut} long edge{'s' if cut > 1 else ''}"
    nodes = f"{copies} repeated node{'s' if copies > 1 else ''}"
    return (
        f"{edges} drawn as {nodes} instead (dashed, marked {layout.REPEAT}; hover one to see "
        "where its original is), so that the layout stays quick and readable."
    )


def finish(items, edges, options, cluster_labels, notes, dense=False, limits=None) -> str:
    caption = [html_text(options.title)] if options.title else []
    caption += [f'<FONT POINT-SIZE="11">{html_text(n)}</FONT>' for n in notes]
    graph_attrs = {"rankdir": options.rankdir, "fontname": FONT, "newrank": "true"}
    if dense:  # boxes of whole neurons are densely connected: merge parallel edge runs
        graph_attrs["concentrate"] = "true"
    graph_attrs.update(limits or {})
    if caption:
        graph_attrs.update(label=Html("<BR/>".join(caption)), labelloc="t", labeljust="l")
    node_attrs = {"fontname": FONT, "fontsize": "12"}
    edge_attrs = {"arrowsize": "0.7", "color": "#555555"}
    cluster_attrs = {
        "style": "rounded,dashed",
        "color": "#7f8fa6",
        "fontcolor": "#3d4a5c",
        "fontsize": "11",
        "labeljust": "l",
    }
    body = write_dot(
        items, edges, graph_attrs, node_attrs, edge_attrs, cluster_labels, cluster_attrs
    )
    return "digraph chainrule {\n" + "".join(body) + "}\n"


def _cluster_labels(info: GraphInfo, options: DrawOptions, used: Iterable[str | None]):
    """{cluster path: label} for the clusters in use and every cluster enclosing them."""
    if not options.clusters:
        return {}
    wanted = {c for c in used if c is not None}
    labels = {}
    for name in info.param_names.values():
        chain = cluster_chain(name)
        for i, path in enumerate(chain):
            if any(p in wanted for p in chain[i:]):
                labels[path] = Html(html_text(path))
    return labels


# ---- the full drawing ---------------------------------------------------------------------------


def full_items(info: GraphInfo, options: DrawOptions):
    """One box per Value, one small node per operation, an edge per input (every node drawn)."""
    show_grads = info.grads_known and "grad" in options.show
    flows = edge_flows(info) if show_grads and options.colour else {}
    scale = GradScale.fit(
        [abs(info.grad(n)) for n in info.order] + [abs(f) for f in flows.values()]
        if show_grads
        else ()
    )
    items: list[Item] = []
    edges: list[Edge] = []
    for node in info.order:
        name = info.name(node)
        cluster = info.cluster_of.get(node) if options.clusters else None
        attrs = value_attrs(info, options, scale, node)
        items.append(Item(name, attrs, cluster, repeat=repeat_of(info, options, node)))
        if not node.parents:
            continue
        op_id = f"{name}_op"
        dead = is_dead_relu(node)
        items.append(Item(op_id, op_attrs(node.op, len(node.parents), dead), cluster))
        for position, parent in enumerate(node.parents):
            attrs = flow_attrs(options, scale, flows.get((node, position)), dead)
            edges.append(Edge(info.name(parent), op_id, {"id": f"{op_id}_in{position}", **attrs}))
        out_flow = info.grad(node) if show_grads and options.colour else None
        edges.append(
            Edge(op_id, name, {"id": f"{op_id}_out", **flow_attrs(options, scale, out_flow, False)})
        )
    return items, edges, scale


def repeat_of(info: GraphInfo, options: DrawOptions, node: Value) -> Repeat:
    """How `node` reads when drawn again next to a far-away user: its title, else its op."""
    role = info.role(node)
    if node.label or node in info.param_names:
        text = node.label or info.param_names[node]
    elif "name" in options.show or not node.parents:
        text = info.name(node)
    else:
        text = f"{OP_SYMBOLS.get(node.op, node.op)} {info.name(node)}"
    if "data" in options.show:
        text += f" = {options.number(node.data)}"
    return Repeat(text, role, f"the {role} {info.title(node)}")


def is_dead_relu(node: Value) -> bool:
    """A ReLU whose input is <= 0: its output is 0 and it passes no gradient back."""
    return node.op == "relu" and node.parents[0].data <= 0


def edge_flows(info: GraphInfo) -> dict[tuple[Value, int], float]:
    """{(node, input position): gradient flowing back along that edge} = vjp with node.grad."""
    flows = {}
    for node in info.order:
        if not node.parents:
            continue
        try:
            local = node.op.vjp(info.grad(node), node.data, *[p.data for p in node.parents])
        except (ArithmeticError, ValueError):  # data changed since backward: no colour, no crash
            continue
        for position, contribution in enumerate(local):
            flows[(node, position)] = float(contribution)
    return flows


def flow_attrs(options: DrawOptions, scale: GradScale, flow: float | None, dead: bool) -> dict:
    if dead:
        return {"color": "#9e9e9e", "style": "dashed"}
    if flow is None:
        return {}
    if flow == 0.0:
        return {"color": ZERO_FILL, "style": "dashed"}
    return {"color": scale.edge_colour(flow), "penwidth": str(scale.pen_width(flow))}


def op_attrs(op: str, arity: int, dead: bool) -> dict:
    symbol = OP_SYMBOLS.get(op, op)
    if op in ("sum", "dot"):
        symbol = f"{op} ({arity // 2 if op == 'dot' else arity})"
    if dead:
        return {
            "label": Html(f'{html_text(symbol)}<BR/><FONT POINT-SIZE="9">dead</FONT>'),
            "shape": "octagon",
            "style": "filled",
            "fillcolor": DEAD_FILL,
            "fontcolor": "#ffffff",
            "fontsize": "11",
            "margin": "0.02",
        }
    return {
        "label": symbol,
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": "#f2f2f2",
        "color": "#8c8c8c",
        "fontsize": "11",
        "margin": "0.04,0.02",
        "height": "0.3",
    }


def value_attrs(info: GraphInfo, options: DrawOptions, scale: GradScale, node: Value) -> dict:
    role = info.role(node)
    title_parts = []
    if "label" in options.show and (node.label or node in info.param_names):
        title_parts.append(node.label or short_name(info, options, node))
    if "name" in options.show:
        title_parts.append(info.name(node))
    title = " · ".join(title_parts) or ("output" if role == "output" else "")
    cells = []
    if title:
        header = ROLE_HEADER[role]
        text = f"<B>{html_text(title)}</B>"
        if text_colour(header) == "#ffffff":
            text = f'<FONT COLOR="#ffffff">{text}</FONT>'
        cells.append(f'<TD BGCOLOR="{header}">{text}</TD>')
    if "data" in options.show:
        cells.append(f"<TD>data {html_text(options.number(node.data))}</TD>")
    if "grad" in options.show:
        if info.grads_known:
            grad = info.grad(node)
            fill = scale.colour(grad) if options.colour else UNKNOWN_FILL
            text = "0" if grad == 0.0 else options.number(grad)
            cells.append(
                f'<TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">grad {html_text(text)}'
                "</FONT></TD>"
            )
        else:
            cells.append('<TD><FONT COLOR="#888888">grad ?</FONT></TD>')
    if not cells:
        cells.append("<TD> </TD>")
    if options.rankdir in ("LR", "RL"):
        rows = "<TR>" + "".join(cells) + "</TR>"
        cells_attr = 'CELLBORDER="0" COLUMNS="*"'
    else:
        rows = "".join(f"<TR>{c}</TR>" for c in cells)
        cells_attr = 'CELLBORDER="0" ROWS="*"'
    border = "3" if role == "output" else "1"
    label = (
        f'<TABLE BORDER="{border}" {cells_attr} CELLSPACING="0" CELLPADDING="4" '
        f'COLOR="{ROLE_BORDER[role]}">{rows}</TABLE>'
    )
    if options.html_ids:  # a node tooltip would wrap the whole table and hide the cell ids
        return {"label": Html(label), "shape": "plain"}
    return {"label": Html(label), "shape": "plain", "tooltip": tooltip(info, node)}


def short_name(info: GraphInfo, options: DrawOptions, node: Value) -> str:
    """A parameter's name, without the cluster path that its box already shows (w.1, b)."""
    name = info.param_names[node]
    cluster = info.cluster_of.get(node) if options.clusters else None
    if cluster and name.startswith(cluster + "."):
        return name[len(cluster) + 1 :]
    return name


def tooltip(info: GraphInfo, node: Value) -> str:
    """Hover text: the full-precision numbers, the op and the role."""
    what = node.op or info.role(node)
    text = f"{info.title(node)} ({info.name(node)}, {what}): data={node.data!r}"
    if info.grads_known:
        text += f", grad={info.grad(node)!r}"
    return text


# ---- the legend ---------------------------------------------------------------------------------


def legend_item(
    info: GraphInfo, options: DrawOptions, scale: GradScale, coloured_edges: bool = True
) -> Item:
    """A small key: the roles present, the |grad| colour scale (for boxes and, when they are
    coloured, edges), zero gradients, dead ReLUs."""
    rows = ['<TR><TD COLSPAN="2"><B>legend</B></TD></TR>']
    roles = {info.role(n) for n in info.order}
    for role in ("output", "parameter", "input", "constant"):
        if role in roles:
            rows.append(
                f'<TR><TD BGCOLOR="{ROLE_HEADER[role]}" BORDER="1" COLOR="{ROLE_BORDER[role]}">'
                f'</TD><TD ALIGN="LEFT">{role}</TD></TR>'
            )
    if info.grads_known and options.colour and "grad" in options.show:
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
        if any(n.op == "relu" and is_dead_relu(n) for n in info.order):
            rows.append(
                f'<TR><TD BGCOLOR="{DEAD_FILL}" BORDER="1"></TD>'
                '<TD ALIGN="LEFT">dead ReLU (input &lt;= 0)</TD></TR>'
            )
    elif not info.grads_known and "grad" in options.show:
        rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">grad ? = not computed yet</TD></TR>')
    table = (
        '<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3">'
        + "".join(rows)
        + "</TABLE>"
    )
    return Item("legend", {"label": Html(table), "shape": "plain", "fontsize": "10"})
