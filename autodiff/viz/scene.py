"""Step 2 of a drawing: what to draw. Every Value a box, every operation a small node between.

`compose` turns the facts of a graph (`graph.GraphInfo`) into a `Scene` of Graphviz nodes and
edges: node by node when the graph is small enough (`full_scene`), or as a summary when it has
more than `max_nodes` Values (`summary.summarise`). The one idea to understand: the edges show
*gradient flow*. Each edge into an operation carries the share of the gradient that backward()
passes back along it (computed by the engine, `autodiff.local_grads`), coloured and as thick as
|share| on a log scale, so you see at a glance where the signal is strong and where it vanishes.
"""

from __future__ import annotations

from autodiff.viz.look import Again, Legend, OpNode, ValueBox
from autodiff.viz.emit import Edge, Item, Scene
from autodiff.viz.graph import GraphInfo, Node
from autodiff.viz.options import DrawOptions
from autodiff.viz.summary import summarise


def compose(
    info: GraphInfo, options: DrawOptions, limit: int | None, keep: int | None = None
) -> Scene:
    """The scene for `info`: every node, or a summary past `limit` Values (see `to_dot`).

    `keep` bounds the nodes a summary draws (by default `limit` itself)."""
    if limit is not None and len(info.nodes) > limit:
        return summarise(info, options, limit, keep)
    return full_scene(info, options)


def full_scene(info: GraphInfo, options: DrawOptions) -> Scene:
    """One box per Value, one small node per operation, an edge per input (every node drawn)."""
    show_grads = info.grads_known and "grad" in options.show
    coloured = show_grads and options.colour
    flows = info.flows() if coloured else {}
    items: list[Item] = []
    edges: list[Edge] = []
    for node in info.nodes:
        cluster = node.cluster if options.clusters else None
        box = value_box(info, options, node)
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
    return Scene(items, edges, cluster_tree(info, used))


def cluster_tree(info: GraphInfo, used) -> dict[str, str | None]:
    """{cluster path: enclosing cluster} for the clusters in `used` and all that enclose them."""
    tree: dict[str, str | None] = {}
    for path in used:
        chain = info.cluster_chains.get(path, [path]) if path is not None else []
        for i, p in enumerate(chain):
            tree[p] = chain[i - 1] if i else None
    return tree


def value_box(info: GraphInfo, options: DrawOptions, node: Node) -> ValueBox:
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
