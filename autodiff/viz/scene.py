"""Step 2 of a drawing: what to draw. Every Value a box, every operation a small node between.

The facts of a graph (`graph.GraphInfo`) become a `Scene`: `Item`s (Graphviz nodes, each with a
plain description of what it shows: a `ValueBox`, an `OpNode`, a `ClusterBox` for a whole
Neuron, an `Again` for a repeated node, a `More` stub, the `Legend`) and `Edge`s. This module
holds that vocabulary, which the later steps (`layout`, `look`, `emit`) read, and
`full_scene`, node by node; `summary` composes a big graph's scene from the same vocabulary.
The one idea to understand: the edges show *gradient flow*. Each edge into an operation carries
the share of the gradient that backward() passes back along it (computed by the engine,
`autodiff.local_grads`), coloured and as thick as |share| on a log scale, so you see at a
glance where the signal is strong and where it vanishes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from autodiff.viz.graph import GraphInfo, Node
from autodiff.viz.options import DrawOptions

# ---- what a drawing is made of ------------------------------------------------------------------


@dataclass
class Item:
    """One Graphviz node: what it shows (`look`, a description from `boxes`) and, once dressed,
    its attributes. Items of one cluster that have a `sibling_key` are drawn in its order; an
    item with `again` (the look of a small copy of it) may be drawn again next to a far-away
    user instead of a long edge leaving it (see `layout`)."""

    id: str
    look: object
    cluster: str | None = None
    sibling_key: tuple | None = None
    again: object | None = None
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Edge:
    """One Graphviz edge; `flow` is the gradient it carries back (colours it), if shown."""

    tail: str
    head: str
    attrs: dict[str, str] = field(default_factory=dict)
    flow: float | None = None
    dead: bool = False  # out of a dead ReLU: no gradient passes
    more: bool = False  # from a stub standing for inputs left out (`More`)


@dataclass
class Scene:
    """Everything one drawing shows: nodes, edges, the clusters holding them, and the caption."""

    items: list[Item]
    edges: list[Edge]
    clusters: dict[str, str | None]  # {cluster path: the cluster enclosing it, or None}
    notes: list[str] = field(default_factory=list)  # caption lines: what was left out, and why
    dense: bool = False  # boxes of whole neurons: densely connected, parallel edges merged
    summary: bool = False  # a summary of a graph too big to draw node by node
    cost: int = 0  # Graphviz's layout work, estimated by `layout`
    limits: dict[str, str] = field(default_factory=dict)  # bounds on Graphviz's effort
    root: str | None = None  # the output's item, from which a summary is cut down
    limit: int | None = None  # the node limit a summary was made for


@dataclass
class ValueBox:
    """A Value's box, or the box of `count` copies (whose data and grad are then ranges)."""

    role: str
    title: str  # "" for no title row
    data: str | None  # the data cell's text; None: no data cell
    grad: str | None  # the grad cell's text; "?" before backward; None: no grad cell
    magnitude: float | None = None  # colours the grad cell on the scale; None: not coloured
    count: int = 1
    tooltip: str | None = None


@dataclass
class OpNode:
    """An operation between its inputs and its output: its symbol, or a dark octagon if dead."""

    text: str
    dead: bool = False
    note: str | None = None  # a small label beside it ("3 of 100 dead")


@dataclass
class ClusterBox:
    """A whole cluster (a Neuron or a Layer) drawn as one box, with statistics over it."""

    path: str
    params: int
    values: int
    ops: list[str]
    grad: str | None  # the largest parameter gradient, as text; None: not shown
    magnitude: float | None
    relus: int
    dead: int


@dataclass
class Again:
    """A small copy of a node, drawn next to a far-away user instead of a long edge."""

    text: str
    role: str
    where: str  # what the tooltip calls the original
    original: str  # the original's node id


@dataclass
class More:
    """A stub standing for inputs left out of a cut-down summary."""

    text: str


@dataclass
class Legend:
    """The key: the roles present, the |grad| scale, zero gradients, dead ReLUs."""

    roles: set[str]
    grads_known: bool
    any_dead: bool
    coloured_edges: bool = True



def natural_key(path: str) -> list[tuple[int, int | str]]:
    """Sorts cluster paths as people count: `neurons.2` before `neurons.10`."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.split(".")]


def nearest(scene: Scene, keep_values: int) -> tuple[Scene, int]:
    """The scene cut down to the `keep_values` value-like nodes nearest its output (walking
    edges backwards), with a `More` stub for each node's inputs left out; and how many were."""
    items, edges = scene.items, scene.edges
    into: dict[str, list[str]] = {}
    for e in edges:
        into.setdefault(e.head, []).append(e.tail)
    keep: set[str] = {"legend"}
    kept_values = 0
    queue = deque([scene.root])
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
            label = f"… {missing} more input{'s' if missing > 1 else ''}"
            kept_items.append(Item(stub, More(label)))
            kept_edges.append(Edge(stub, unit, more=True))
    return replace(scene, items=kept_items, edges=kept_edges), left_out


def drawn_values(scene: Scene) -> int:
    """How many value-like nodes the scene draws (operation nodes and the legend not counted)."""
    return sum(1 for i in scene.items if not i.id.endswith("_op") and i.id != "legend")


# ---- every node drawn ---------------------------------------------------------------------------


def full_scene(info: GraphInfo, options: DrawOptions) -> Scene:
    """One box per Value, one small node per operation, an edge per input (every node drawn)."""
    show_grads = info.grads_known and "grad" in options.show
    coloured = show_grads and options.colour
    flows = info.flows() if coloured else {}
    items: list[Item] = []
    edges: list[Edge] = []
    for node in info.nodes:
        cluster = node.cluster if options.clusters else None
        box = box_of(info, options, node)
        items.append(Item(node.name, box, cluster, again=again(options, node)))
        if not node.parents:
            continue
        op_id = f"{node.name}_op"
        items.append(Item(op_id, OpNode(node.op_text, node.dead), cluster))
        for position, parent in enumerate(node.parents):
            flow = flows.get((node, position))
            attrs = {"id": f"{op_id}_in{position}"}
            edges.append(Edge(parent.name, op_id, attrs, flow, node.dead))
        out_flow = node.grad if coloured else None
        edges.append(Edge(op_id, node.name, {"id": f"{op_id}_out"}, out_flow))
    if options.legend:
        roles = {n.role for n in info.nodes}
        dead = any(n.dead for n in info.nodes)
        items.insert(0, Item("legend", Legend(roles, info.grads_known, dead)))
    used = {item.cluster for item in items}
    root = info.nodes[-1].name if info.nodes else None
    return Scene(items, edges, cluster_tree(info, used), root=root)


def cluster_tree(info: GraphInfo, used) -> dict[str, str | None]:
    """{cluster path: enclosing cluster} for the clusters in `used` and all that enclose them."""
    tree: dict[str, str | None] = {}
    for path in used:
        chain = info.cluster_chains.get(path, [path]) if path is not None else []
        for i, p in enumerate(chain):
            tree[p] = chain[i - 1] if i else None
    return tree


def box_of(info: GraphInfo, options: DrawOptions, node: Node) -> ValueBox:
    """A Value's box: its title (label, parameter name, stable name), data and grad."""
    title_parts = []
    if "label" in options.show and (node.value.label or node.param is not None):
        title_parts.append(node.value.label or short_name(options, node))
    if "name" in options.show:
        title_parts.append(node.name)
    title = " · ".join(title_parts) or ("output" if node.role == "output" else "")
    data = options.number(node.value.data) if "data" in options.show else None
    grad = magnitude = None
    if "grad" in options.show:
        if info.grads_known:
            grad = "0" if node.grad == 0.0 else options.number(node.grad)
            magnitude = node.grad if options.colour else None
        else:
            grad = "?"
    # to_html: no node tooltip, which would wrap the whole table and hide the cell ids
    hover = None if options.html_ids else tooltip(info, node)
    return ValueBox(node.role, title, data, grad, magnitude, tooltip=hover)


def again(options: DrawOptions, node: Node) -> Again:
    """How `node` reads when drawn again next to a far-away user: its title, else its op."""
    if node.value.label or node.param is not None:
        text = node.title
    elif "name" in options.show or not node.parents:
        text = node.name
    else:
        text = f"{node.symbol} {node.name}"
    if "data" in options.show:
        text += f" = {options.number(node.value.data)}"
    return Again(text, node.role, f"the {node.role} {node.title}", node.name)


def short_name(options: DrawOptions, node: Node) -> str:
    """A parameter's name, without the cluster path that its box already shows (w.1, b)."""
    name = node.param
    cluster = node.cluster if options.clusters else None
    if cluster and name.startswith(cluster + "."):
        return name[len(cluster) + 1 :]
    return name


def tooltip(info: GraphInfo, node: Node) -> str:
    """Hover text: the full-precision numbers, the op and the role."""
    text = f"{node.title} ({node.name}, {node.op or node.role}): data={node.value.data!r}"
    if info.grads_known:
        text += f", grad={node.grad!r}"
    return text
