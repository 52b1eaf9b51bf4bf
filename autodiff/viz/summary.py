"""Step 2 for a graph too big to draw node by node: a readable summary of it.

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
from dataclasses import dataclass, field

from autodiff.viz.graph import GraphInfo, Node
from autodiff.viz.options import DrawOptions
from autodiff.viz.scene import (
    Again,
    ClusterBox,
    Edge,
    Item,
    Legend,
    OpNode,
    Scene,
    ValueBox,
    natural_key,
)


@dataclass
class Copies:
    """One set of structurally identical nodes (a class), with statistics over its members."""

    id: int
    first: Node
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

    def add(self, node: Node) -> None:
        data = node.value.data
        self.count += 1
        self.data_min = min(self.data_min, data)
        self.data_max = max(self.data_max, data)
        self.grad_min = min(self.grad_min, node.grad)
        self.grad_max = max(self.grad_max, node.grad)
        self.abs_grad_sum += abs(node.grad)
        self.dead += node.dead

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
    class_of: dict[Node, int] = {}
    for node in info.nodes:
        if node.role == "output":
            key: tuple = ("output",)
        elif node.role == "parameter":
            key = ("parameter", node.index)  # every parameter is its own class
        elif not node.parents:
            key = (node.role, node.value.label)
        else:
            key = (node.op, tuple([class_of[p] for p in node.parents]))
        cid = keys.get(key)
        if cid is None:
            cid = keys[key] = len(classes)
            parents = [class_of[p] for p in node.parents]
            classes.append(Copies(cid, node, node.role, parents, node.cluster))
        class_of[node] = cid
        classes[cid].add(node)
        for position, parent in enumerate(node.parents):
            if parent.role == "constant":
                stats = constants.get((cid, position))
                if stats is None:
                    stats = constants[(cid, position)] = Copies(-1, parent, "constant", [], None)
                stats.add(parent)
    return classes, constants


def summarise(info: GraphInfo, options: DrawOptions, limit: int) -> Scene:
    """A summary scene of `info`, whose notes say what was left out (`limit`: the node limit).

    Past `limit` drawn nodes, `layout` keeps only the part nearest the output (`scene.root`)."""
    classes, constants = find_copies(info)
    show_grads = info.grads_known and "grad" in options.show
    notes = [f"Summary: the graph has {len(info.nodes):,} values, more than max_nodes={limit}."]
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
        if count_units(classes, box_paths(classes, chains, level)) <= limit:
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
            if c.first.symbol not in box.ops:
                box.ops.append(c.first.symbol)
        if c.first.op == "relu":
            box.relus += c.count
            box.dead += c.dead
    box_by_id = {box.id: box for box in boxes.values()}

    def enclosing(path: str | None) -> str | None:
        chain = info.cluster_chains.get(path, []) if path is not None else []
        return chain[-2] if len(chain) > 1 else None

    # The graph between units, in topological order; a constant is drawn next to each user.
    items: dict[str, Item] = {}
    edges: list[Edge] = []
    edge_keys: set[tuple[str, str]] = set()
    for c in classes:
        unit = unit_of[c.id]
        if unit in box_by_id:
            if unit not in items:
                box = box_by_id[unit]
                grad = magnitude = None
                if show_grads:
                    grad = "0" if box.param_grad_max == 0 else options.number(box.param_grad_max)
                    magnitude = box.param_grad_max if options.colour else None
                look = ClusterBox(
                    box.path, box.params, box.values, box.ops, grad, magnitude, box.relus, box.dead
                )
                # neurons.0, neurons.1, ... in reading order, whatever Graphviz's tie-breaking
                items[unit] = Item(
                    unit,
                    look,
                    enclosing(box.path),
                    sibling_key=tuple(natural_key(box.path)),
                    again=Again(box.path, "parameter", f"the box {box.path}", unit),
                )
            target = unit
        elif c.role == "constant":
            continue  # drawn next to each of its users instead, below
        else:
            look = class_box(options, c, show_grads)
            items[unit] = Item(unit, look, c.cluster, again=class_again(options, c, unit))
            if not c.parents:
                continue
            dead = c.dead == c.count and c.first.op == "relu"
            note = f"{c.dead} of {c.count} dead" if c.dead and not dead else None
            items[unit + "_op"] = Item(unit + "_op", OpNode(c.first.op_text, dead, note), c.cluster)
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
                look = class_box(options, constants[(c.id, position)], show_grads)
                items[source] = Item(source, look, c.cluster)
            times[source] = times.get(source, 0) + 1
        for source, n in times.items():
            if (source, target) in edge_keys:
                continue
            edge_keys.add((source, target))
            attrs = {"label": f"×{n}", "fontsize": "9"} if n > 1 and target.endswith("_op") else {}
            edges.append(Edge(source, target, attrs))  # groups of nodes: no one gradient

    item_list = list(items.values())
    total = len(info.nodes)
    slow = " (Graphviz may take minutes)" if total > 5000 else ""
    smaller = ", or draw a smaller expression, such as the loss of one sample" if repeated else ""
    notes.append(f"Pass max_nodes=None (or at least {total:,}) to draw every node{slow}{smaller}.")
    if options.legend:
        roles = {n.role for n in info.nodes}
        dead = any(n.dead for n in info.nodes)
        legend = Legend(roles, info.grads_known, dead, coloured_edges=False)
        item_list.insert(0, Item("legend", legend))
    tree: dict[str, str | None] = {}
    if options.clusters:
        for item in item_list:
            path = item.cluster
            while path is not None and path not in tree:
                tree[path] = enclosing(path)
                path = tree[path]
    root = unit_of[len(classes) - 1]
    return Scene(item_list, edges, tree, notes, dense=bool(boxes), summary=True, root=root,
                 limit=limit)


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


# ---- labels -------------------------------------------------------------------------------------


def class_box(options: DrawOptions, c: Copies, show_grads: bool) -> ValueBox:
    """The box of a class of copies: the one Value box, with ×count and ranges."""
    number = options.number
    node = c.first
    title = node.value.label or node.param or ""
    if c.role == "output" and not title:
        title = "output"
    if not ("label" in options.show or c.role == "output"):
        title = ""
    data = None
    if "data" in options.show:
        data = number(c.data_min)
        if c.data_min != c.data_max:
            data = f"{number(c.data_min)} … {number(c.data_max)}"
    grad = magnitude = None
    if "grad" in options.show:
        if not show_grads:
            grad = "?"
        else:
            if c.grad_min == c.grad_max:
                grad = "0" if c.grad_min == 0 else number(c.grad_min)
            else:
                grad = f"{number(c.grad_min)} … {number(c.grad_max)}"
            magnitude = c.mean_abs_grad if options.colour else None
    return ValueBox(c.role, title, data, grad, magnitude, c.count)


def class_again(options: DrawOptions, c: Copies, unit: str) -> Again:
    """How a class reads when drawn again next to a far-away user: its title, else its op."""
    node = c.first
    title = node.value.label or node.param or node.symbol
    text = title if c.count == 1 else f"{title} ×{c.count}"
    if "data" in options.show:  # a computed class has no name: its data tells it apart
        text += f" = {options.number(c.data_min)}"
        if c.data_min != c.data_max:
            text += f" … {options.number(c.data_max)}"
    return Again(text, c.role, f"the box {title}", unit)
