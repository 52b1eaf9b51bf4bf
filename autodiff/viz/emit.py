"""The last step of every drawing: a `Scene` written out as DOT text, where DOT syntax lives.

Both the full drawing and the summary of a big graph are a `Scene`, a list of `Item`s (Graphviz
nodes) and `Edge`s with the clusters that hold them, and `write_dot` turns it into text in a
fixed order. The one idea to understand: every piece of user text (labels, parameter names)
reaches Graphviz through one of the two escapers of `escape`, so no label can break the DOT or
inject markup. Attribute values are either `Html` (an HTML-like label whose user text went
through `html_text` when `look` made it) or plain text, which is always quoted here.
"""

from __future__ import annotations

from autodiff.viz.escape import Html, html_text, quoted
from autodiff.viz.scene import Edge, Item, Scene, natural_key

# ---- the DOT text -------------------------------------------------------------------------------


def attr_list(attrs: dict[str, str]) -> str:
    parts = []
    for key, value in attrs.items():
        text = f"<{value}>" if isinstance(value, Html) else quoted(str(value))
        parts.append(f"{key}={text}")
    return " [" + " ".join(parts) + "]" if parts else ""


FONT = "Helvetica"
GRAPH = {"fontname": FONT, "newrank": "true"}
NODE = {"fontname": FONT, "fontsize": "12"}
EDGE = {"arrowsize": "0.7", "color": "#555555"}
CLUSTER = {
    "style": "rounded,dashed",
    "color": "#7f8fa6",
    "fontcolor": "#3d4a5c",
    "fontsize": "11",
    "labeljust": "l",
}


def write_dot(scene: Scene, rankdir: str, title: str | None = None) -> str:
    """The DOT text of a scene: a `digraph` with its caption, nodes, clusters and edges.

    Clusters nest by their dotted paths (`layers.0` holds `layers.0.neurons.3`) and siblings are
    written in natural order (`neurons.2` before `neurons.10`), so the text depends only on the
    graph. Invisible edges at the end keep siblings in reading order (see `reading_order`).
    """
    items, edges = scene.items, scene.edges
    caption = [html_text(title)] if title else []
    caption += [f'<FONT POINT-SIZE="11">{html_text(n)}</FONT>' for n in scene.notes]
    graph_attrs = {"rankdir": rankdir, **GRAPH}
    if scene.dense:  # boxes of whole neurons are densely connected: merge parallel edge runs
        graph_attrs["concentrate"] = "true"
    graph_attrs.update(scene.limits)
    if caption:
        graph_attrs.update(label=Html("<BR/>".join(caption)), labelloc="t", labeljust="l")
    order = reading_order(items, edges, rankdir in ("LR", "RL"))
    if order:
        # Graphviz's second crossing-minimisation pass over the whole graph ignores the order
        # that these edges set inside clusters (newer releases move them): skip it.
        graph_attrs["remincross"] = "false"
    lines = [f"\tgraph{attr_list(graph_attrs)}\n"]
    lines.append(f"\tnode{attr_list(NODE)}\n")
    lines.append(f"\tedge{attr_list(EDGE)}\n")

    # Which clusters are used, and the order in which they are met.
    members: dict[str | None, list[Item]] = {}
    for item in items:
        members.setdefault(item.cluster, []).append(item)
    parent = scene.clusters
    children: dict[str | None, list[str]] = {}
    seen: set[str] = set()
    for item in items:
        path = item.cluster
        chain = []
        while path is not None and path not in seen:
            chain.append(path)
            path = parent[path]
        for p in reversed(chain):
            seen.add(p)
            children.setdefault(parent[p], []).append(p)
    for siblings in children.values():  # layers.2 before layers.10, as a reader counts
        siblings.sort(key=natural_key)
    number = {p: i for i, p in enumerate(_depth_first(children))}

    def write(path: str | None, depth: int) -> None:
        indent = "\t" * depth
        for item in members.get(path, ()):
            lines.append(f"{indent}{item.id}{attr_list({'id': item.id, **item.attrs})}\n")
        for child in children.get(path, ()):
            lines.append(f"{indent}subgraph cluster_{number[child]} {{\n")
            attrs = dict(CLUSTER, id=f"cluster_{number[child]}", label=Html(html_text(child)))
            lines.append(f"{indent}\tgraph{attr_list(attrs)}\n")
            write(child, depth + 1)
            lines.append(f"{indent}}}\n")

    write(None, 1)
    for edge in [*edges, *order]:
        lines.append(f"\t{edge.tail} -> {edge.head}{attr_list(edge.attrs)}\n")
    return "digraph chainrule {\n" + "".join(lines) + "}\n"


ORDER_EDGE = {"style": "invis", "minlen": "0"}


def reading_order(items: list[Item], edges: list[Edge], flipped: bool) -> list[Edge]:
    """Invisible edges that make Graphviz draw siblings in reading order.

    Left to itself, `dot` orders the nodes of a rank to minimise crossings, and breaks ties in
    a way that changes with the Graphviz release: `w.1` may come out before `w.0`, or a layer's
    neurons as 10, 11, ..., 15, 0, 1, .... Two kinds of siblings are pinned down:

    - leaves that feed exactly the same nodes (a neuron's weights, which feed its dot product
      once per sample; the operands of `x1 * w1`), in argument order, per cluster: having the
      same users, they always share a rank;
    - items of one cluster that carry a `sibling_key` (the summary's neuron boxes), in its order.

    Each pair of neighbours gets an invisible edge with `minlen=0`: the two already share a rank,
    so the edge is *flat*, and `dot` always draws a flat edge's tail before its head (left of it
    top to bottom, above it left to right). One exception, the same in Graphviz 2.43 and 16:
    with rankdir LR or RL the order inside a cluster is mirrored, so there the edge is reversed.
    """
    cluster = {item.id: item.cluster for item in items}
    has_input = {edge.head for edge in edges}
    users: dict[str, list[str]] = {}  # leaf -> the nodes it feeds, in the order of the edges
    for edge in edges:
        if edge.tail not in has_input:
            users.setdefault(edge.tail, []).append(edge.head)
    # Edges are written user by user in topological order, and the edges into one user in
    # argument order, so leaves are met in argument order of their first user.
    runs: dict[tuple, list[str]] = {}
    for leaf, heads in users.items():
        runs.setdefault((cluster.get(leaf), tuple(heads)), []).append(leaf)
    keyed: dict[str | None, list[tuple[tuple, str]]] = {}
    for item in items:
        if item.sibling_key is not None:
            keyed.setdefault(item.cluster, []).append((item.sibling_key, item.id))
    sequences = [run for run in runs.values() if len(run) > 1]
    sequences += [[i for _, i in sorted(group)] for group in keyed.values() if len(group) > 1]
    order = []
    for run in sequences:
        for a, b in zip(run, run[1:]):
            mirrored = flipped and cluster.get(a) is not None
            order.append(Edge(b, a, ORDER_EDGE) if mirrored else Edge(a, b, ORDER_EDGE))
    return order


def _depth_first(children: dict[str | None, list[str]]) -> list[str]:
    # Clusters are numbered depth-first in the order they were met.
    order: list[str] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        p = stack.pop()
        order.append(p)
        stack.extend(reversed(children.get(p, [])))
    return order
