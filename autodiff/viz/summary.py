"""A readable drawing of a graph too big to draw node by node.

A training step over a batch is the same computation repeated once per sample, sharing the
parameters. The one idea to understand: two nodes are *copies* when they apply the same op to
inputs that are themselves copies (parameters are never copies of each other; unnamed constants
always are). Drawing each set of copies once, marked `×100`, turns a 65,000-node graph into the
few hundred nodes of one sample's computation. When that is still too many, each Neuron or Layer
cluster becomes one box, and as a last resort only the part nearest the output is kept. The
drawing always says what was left out and how to see it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from autodiff.value import Value
from autodiff.viz.emit import Edge, Html, Item, Repeat, natural_key
from autodiff.viz.graph import GraphInfo, cluster_parent
from autodiff.viz.style import (
    DEAD_FILL,
    ROLE_BORDER,
    ROLE_HEADER,
    UNKNOWN_FILL,
    GradScale,
    html_text,
    text_colour,
)


@dataclass
class Copies:
    """One set of structurally identical nodes (a class), with statistics over its members."""

    id: int
    first: Value
    role: str
    parents: list[int]  # parent classes, in argument order (with repeats)
    cluster: str | None
    count: int = 0
    data_min: float = math.inf
    data_max: float = -math.inf
    grad_min: float = math.inf
    grad_max: float = -math.inf
    abs_grad_sum: float = 0.0
    dead: int = 0

    def add(self, node: Value, grad: float) -> None:
        self.count += 1
        self.data_min = min(self.data_min, node.data)
        self.data_max = max(self.data_max, node.data)
        self.grad_min = min(self.grad_min, grad)
        self.grad_max = max(self.grad_max, grad)
        self.abs_grad_sum += abs(grad)
        if node.op == "relu" and node.parents[0].data <= 0:
            self.dead += 1

    @property
    def mean_abs_grad(self) -> float:
        return self.abs_grad_sum / self.count


@dataclass
class Box:
    """One collapsed cluster (a Neuron or a Layer) with statistics over everything inside it."""

    id: str
    path: str
    values: int = 0
    params: int = 0
    ops: list[str] = field(default_factory=list)
    param_grad_max: float = 0.0
    grad_max: float = 0.0
    relus: int = 0
    dead: int = 0


def find_copies(info: GraphInfo) -> tuple[list[Copies], dict[tuple[int, int], Copies]]:
    """Group the nodes of the graph into classes of copies, in topological order.

    Also returns, for each (class, argument position) fed by constants, the statistics of just
    those constants: all unnamed constants are one class, but each use is drawn on its own.
    """
    classes: list[Copies] = []
    constants: dict[tuple[int, int], Copies] = {}
    keys: dict[tuple, int] = {}
    class_of: dict[Value, int] = {}
    for node in info.order:
        role = info.role(node)
        if node is info.root:
            key: tuple = ("output",)
        elif role == "parameter":
            key = ("parameter", info.index[node])  # every parameter is its own class
        elif not node.parents:
            key = (role, node.label)
        else:
            key = (node.op, tuple([class_of[p] for p in node.parents]))
        cid = keys.get(key)
        if cid is None:
            cid = keys[key] = len(classes)
            parents = [class_of[p] for p in node.parents]
            classes.append(Copies(cid, node, role, parents, info.cluster_of.get(node)))
        class_of[node] = cid
        classes[cid].add(node, info.grad(node) if info.grads_known else 0.0)
        for position, parent in enumerate(node.parents):
            if not parent.parents and not parent.label and parent not in info.param_names:
                stats = constants.get((cid, position))
                if stats is None:
                    stats = constants[(cid, position)] = Copies(-1, parent, "constant", [], None)
                stats.add(parent, info.grad(parent) if info.grads_known else 0.0)
    return classes, constants


def summarise(info: GraphInfo, options, keep: int | None = None):
    """Items and edges for a summary drawing of `info`, plus notes saying what was left out.

    At most `keep` nodes (by default `options.max_nodes`) are drawn: past that, only the part
    nearest the output."""
    from autodiff.viz.dot import OP_SYMBOLS, op_attrs

    classes, constants = find_copies(info)
    show_grads = info.grads_known and "grad" in options.show
    notes = [
        f"Summary: the graph has {len(info.order):,} values, more than "
        f"max_nodes={options.max_nodes}."
    ]
    # Unnamed constants always share a class; copies of computed nodes mean repeated structure.
    repeated = any(c.count > 1 and c.first.parents for c in classes)
    if repeated:
        notes.append(
            f"Repeated structure is drawn once: a box marked ×k stands for k copies "
            f"({len(classes):,} distinct nodes)."
        )

    # Which clusters to fold into one box each: none, the deepest level, then shallower levels.
    chains = {
        c.cluster: info.cluster_chains.get(c.cluster, [c.cluster]) for c in classes if c.cluster
    }
    depth = max((len(ch) for ch in chains.values()), default=0)
    use_clusters = options.clusters and options.collapse in ("auto", "clusters") and depth > 0
    levels = list(range(depth, 0, -1)) if use_clusters else []
    level = None
    for level in levels:
        if count_units(classes, box_paths(classes, chains, level)) <= options.max_nodes:
            break
    boxes_at = box_paths(classes, chains, level) if levels else None
    if boxes_at:
        kind = "Neuron/Layer" if info.param_names else "cluster"
        notes.append(
            f'Each {kind} cluster is drawn as one box; pass collapse="repeats" to open them.'
        )

    # Units: a class drawn as a node, or a box standing for all classes of one cluster.
    unit_of: dict[int, str] = {}
    boxes: dict[str, Box] = {}
    for c in classes:
        path = boxes_at.get(c.id) if boxes_at else None
        if path is None:
            unit_of[c.id] = f"c{c.id}"
            continue
        box = boxes.get(path)
        if box is None:
            box = boxes[path] = Box(f"g{len(boxes)}", path)
        unit_of[c.id] = box.id
        box.values += c.count
        if c.role == "parameter":
            box.params += 1
            box.param_grad_max = max(box.param_grad_max, abs(c.grad_min), abs(c.grad_max))
        elif c.first.parents:
            symbol = OP_SYMBOLS.get(c.first.op, c.first.op)
            if symbol not in box.ops:
                box.ops.append(symbol)
        if c.first.op == "relu":
            box.relus += c.count
            box.dead += c.dead
    box_by_id = {box.id: box for box in boxes.values()}
    all_paths = {p for chain in chains.values() for p in chain}

    magnitudes = []
    if show_grads:
        magnitudes = [c.mean_abs_grad for c in classes] + [b.param_grad_max for b in boxes.values()]
    scale = GradScale.fit(magnitudes)

    # The graph between units, in topological order; a constant is drawn next to each user.
    items: dict[str, Item] = {}
    edges: list[Edge] = []
    edge_keys: set[tuple[str, str]] = set()
    for c in classes:
        unit = unit_of[c.id]
        if unit in box_by_id:
            if unit not in items:
                box = box_by_id[unit]
                enclosing = cluster_parent(box.path, all_paths)
                attrs = box_attrs(box, scale, show_grads, options)
                # neurons.0, neurons.1, ... in reading order, whatever Graphviz's tie-breaking
                items[unit] = Item(
                    unit,
                    attrs,
                    enclosing,
                    sibling_key=tuple(natural_key(box.path)),
                    repeat=Repeat(box.path, "parameter", f"the box {box.path}"),
                )
            target = unit
        elif c.role == "constant":
            continue  # drawn next to each of its users instead, below
        else:
            attrs = class_attrs(info, options, scale, c, show_grads)
            items[unit] = Item(unit, attrs, c.cluster, repeat=class_repeat(info, options, c))
            if not c.parents:
                continue
            dead = c.dead == c.count and c.first.op == "relu"
            attrs = op_attrs(c.first.op, len(c.parents), dead)
            if c.dead and not dead:
                attrs["xlabel"] = f"{c.dead} of {c.count} dead"
            items[unit + "_op"] = Item(unit + "_op", attrs, c.cluster)
            edges.append(Edge(unit + "_op", unit))
            target = unit + "_op"
        times: dict[str, int] = {}
        for position, p in enumerate(c.parents):
            source = unit_of[p]
            if source == unit:
                continue  # inside one box
            if classes[p].role == "constant":
                if target in box_by_id:
                    continue  # folded into the box with its user
                source = f"c{c.id}_arg{position}"
                attrs = class_attrs(info, options, scale, constants[(c.id, position)], show_grads)
                items[source] = Item(source, attrs, c.cluster)
            times[source] = times.get(source, 0) + 1
        for source, n in times.items():
            if (source, target) in edge_keys:
                continue
            edge_keys.add((source, target))
            attrs = {"label": f"×{n}", "fontsize": "9"} if n > 1 and target.endswith("_op") else {}
            edges.append(Edge(source, target, attrs))

    # Last resort: keep only the units nearest the output.
    item_list = list(items.values())
    keep = options.max_nodes if keep is None else keep
    drawn = [i for i in item_list if not i.id.endswith("_op")]
    if len(drawn) > keep:
        item_list, edges, left_out = nearest(item_list, edges, unit_of[len(classes) - 1], keep)
        notes.append(
            f"Only the {keep} nodes nearest the output are drawn; {left_out:,} "
            "more are left out (the grey '… more' boxes)."
        )
    total = len(info.order)
    slow = " (Graphviz may take minutes)" if total > 5000 else ""
    smaller = ", or draw a smaller expression, such as the loss of one sample" if repeated else ""
    notes.append(f"Pass max_nodes=None (or at least {total:,}) to draw every node{slow}{smaller}.")
    cluster_labels = {}
    if options.clusters:
        for item in item_list:
            path = item.cluster
            while path is not None:
                cluster_labels[path] = Html(html_text(path))
                path = cluster_parent(path, all_paths)
    return item_list, edges, scale, cluster_labels, notes, bool(boxes)


def box_paths(classes: list[Copies], chains: dict[str, list[str]], level: int | None):
    """{class id: the cluster path it is folded into} when clusters `level` deep become boxes."""
    if level is None:
        return None
    out = {}
    for c in classes:
        if c.cluster and c.role != "output":
            chain = chains[c.cluster]
            out[c.id] = chain[min(level, len(chain)) - 1]
    return out


def count_units(classes: list[Copies], boxes_at: dict[int, str] | None) -> int:
    """How many value-like nodes a drawing with these boxes has (operation nodes not counted)."""
    boxes_at = boxes_at or {}
    drawn = len(classes) - len(boxes_at) + len(set(boxes_at.values()))
    for c in classes:  # each user of a constant gets its own copy, unless the user is in a box
        if c.id not in boxes_at:
            drawn += len({p for p in c.parents if classes[p].role == "constant"})
    return drawn


def nearest(items: list[Item], edges: list[Edge], root: str, keep_values: int):
    """Keep the `keep_values` value-like nodes nearest `root` (walking edges backwards)."""
    into: dict[str, list[str]] = {}
    for e in edges:
        into.setdefault(e.head, []).append(e.tail)
    keep: set[str] = set()
    kept_values = 0
    queue = deque([root])
    while queue and kept_values < keep_values:
        unit = queue.popleft()
        if unit in keep:
            continue
        keep.add(unit)
        if not unit.endswith("_op"):
            kept_values += 1
        queue.extend(into.get(unit, ()))
    left_out = sum(1 for i in items if i.id not in keep and not i.id.endswith("_op"))
    kept_items = [i for i in items if i.id in keep]
    kept_edges = [e for e in edges if e.tail in keep and e.head in keep]
    for unit in [i.id for i in kept_items]:
        missing = sum(1 for t in into.get(unit, ()) if t not in keep)
        if missing:
            stub = f"{unit}_more"
            kept_items.append(
                Item(
                    stub,
                    {
                        "label": f"… {missing} more input{'s' if missing > 1 else ''}",
                        "shape": "box",
                        "style": "rounded,dashed",
                        "color": "#9e9e9e",
                        "fontcolor": "#616161",
                        "fontsize": "10",
                    },
                )
            )
            kept_edges.append(Edge(stub, unit, {"style": "dashed", "color": "#9e9e9e"}))
    return kept_items, kept_edges, left_out


# ---- labels -------------------------------------------------------------------------------------


def class_attrs(info: GraphInfo, options, scale: GradScale, c: Copies, show_grads: bool) -> dict:
    number = options.number
    node = c.first
    title = node.label or info.param_names.get(node, "")
    if c.role == "output" and not title:
        title = "output"
    cells = []
    if title and "label" in options.show or c.role == "output":
        header = ROLE_HEADER[c.role]
        text = f"<B>{html_text(title)}</B>"
        if text_colour(header) == "#ffffff":
            text = f'<FONT COLOR="#ffffff">{text}</FONT>'
        cells.append(f'<TD BGCOLOR="{header}">{text}</TD>')
    if c.count > 1:
        cells.append(f"<TD><B>×{c.count}</B></TD>")
    if "data" in options.show:
        if c.data_min == c.data_max:
            text = number(c.data_min)
        else:
            text = f"{number(c.data_min)} … {number(c.data_max)}"
        cells.append(f"<TD>data {html_text(text)}</TD>")
    if "grad" in options.show:
        if not show_grads:
            cells.append('<TD><FONT COLOR="#888888">grad ?</FONT></TD>')
        else:
            if c.grad_min == c.grad_max:
                text = "0" if c.grad_min == 0 else number(c.grad_min)
            else:
                text = f"{number(c.grad_min)} … {number(c.grad_max)}"
            fill = scale.colour(c.mean_abs_grad) if options.colour else UNKNOWN_FILL
            cells.append(
                f'<TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">grad {html_text(text)}'
                "</FONT></TD>"
            )
    if not cells:
        cells.append("<TD> </TD>")
    border = "3" if c.role == "output" else "1"
    rows = "<TR>" + "".join(cells) + "</TR>"
    if options.rankdir in ("TB", "BT"):
        rows = "".join(f"<TR>{cell}</TR>" for cell in cells)
    label = (
        f'<TABLE BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" '
        f'COLOR="{ROLE_BORDER[c.role]}">{rows}</TABLE>'
    )
    return {"label": Html(label), "shape": "plain"}


def class_repeat(info: GraphInfo, options, c: Copies) -> Repeat:
    """How a class reads when drawn again next to a far-away user: its title, else its op."""
    from autodiff.viz.dot import OP_SYMBOLS

    node = c.first
    title = node.label or info.param_names.get(node) or OP_SYMBOLS.get(node.op, node.op)
    text = title if c.count == 1 else f"{title} ×{c.count}"
    if "data" in options.show:  # a computed class has no name: its data tells it apart
        text += f" = {options.number(c.data_min)}"
        if c.data_min != c.data_max:
            text += f" … {options.number(c.data_max)}"
    return Repeat(text, c.role, f"the box {title}")


def box_attrs(box: Box, scale: GradScale, show_grads: bool, options) -> dict:
    rows = [f'<TR><TD BGCOLOR="{ROLE_HEADER["parameter"]}"><B>{html_text(box.path)}</B></TD></TR>']
    rows.append(f"<TR><TD>{box.params} params · {box.values:,} values</TD></TR>")
    if box.ops:
        rows.append(f"<TR><TD>ops: {html_text(' '.join(box.ops))}</TD></TR>")
    if show_grads:
        fill = scale.colour(box.param_grad_max) if options.colour else UNKNOWN_FILL
        text = "0" if box.param_grad_max == 0 else options.number(box.param_grad_max)
        rows.append(
            f'<TR><TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">max |grad| of params '
            f"{html_text(text)}</FONT></TD></TR>"
        )
    if box.relus:
        # One ReLU that is off is inactive on this input; "dead" needs it off on every copy.
        fill = DEAD_FILL if box.dead == box.relus else "#ffffff"
        if box.relus == 1:
            text = "ReLU off (input &lt;= 0)" if box.dead else "ReLU on"
        elif box.dead == box.relus:
            text = f"dead ReLU: off on all {box.relus} copies"
        else:
            text = f"ReLU off on {box.dead} of {box.relus} copies"
        rows.append(
            f'<TR><TD BGCOLOR="{fill}"><FONT COLOR="{text_colour(fill)}">{text}</FONT></TD></TR>'
        )
    label = (
        '<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" '
        f'COLOR="{ROLE_BORDER["parameter"]}" STYLE="ROUNDED">{"".join(rows)}</TABLE>'
    )
    return {"label": Html(label), "shape": "plain"}
