"""Writing DOT text: Graphviz nodes, edges and nested clusters, in a fixed order.

Both the full drawing and the summary of a big graph are built as a list of `Item`s and `Edge`s
and written out here, so there is exactly one place where DOT syntax is produced. Attribute
values are either `Html` (an HTML-like label, already escaped by its builder) or plain text,
which is always quoted and escaped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autodiff.viz.graph import cluster_parent
from autodiff.viz.style import quoted


class Html(str):
    """An HTML-like label body, written as <...>; every user string in it is already escaped."""


@dataclass
class Repeat:
    """How a node is shown when it is drawn again next to a far-away user (see `layout`)."""

    text: str  # a short title, and the value when the drawing shows values
    role: str  # colours the copy like the original
    where: str  # what the tooltip calls the original


@dataclass
class Item:
    """One Graphviz node. Items of one cluster that have a `sibling_key` are drawn in its order;
    an item with a `repeat` may be drawn again instead of a long edge leaving it."""

    id: str
    attrs: dict[str, str]
    cluster: str | None = None
    sibling_key: tuple | None = None
    repeat: Repeat | None = None


@dataclass
class Edge:
    tail: str
    head: str
    attrs: dict[str, str] = field(default_factory=dict)


def attr_list(attrs: dict[str, str]) -> str:
    parts = []
    for key, value in attrs.items():
        text = f"<{value}>" if isinstance(value, Html) else quoted(str(value))
        parts.append(f"{key}={text}")
    return " [" + " ".join(parts) + "]" if parts else ""


def write_dot(
    items: list[Item],
    edges: list[Edge],
    graph_attrs: dict[str, str],
    node_attrs: dict[str, str],
    edge_attrs: dict[str, str],
    cluster_labels: dict[str, str],
    cluster_attrs: dict[str, str],
) -> list[str]:
    """The body lines of a `digraph` (each starting with a tab and ending in a newline).

    Clusters nest by their dotted paths (`layers.0` holds `layers.0.neurons.3`) and siblings are
    written in natural order (`neurons.2` before `neurons.10`), so the text depends only on the
    graph. Invisible edges at the end keep siblings in reading order (see `reading_order`).
    """
    order = reading_order(items, edges, graph_attrs.get("rankdir", "TB") in ("LR", "RL"))
    if order:
        # Graphviz's second crossing-minimisation pass over the whole graph ignores the order
        # that these edges set inside clusters (newer releases move them): skip it.
        graph_attrs = {**graph_attrs, "remincross": "false"}
    lines = [f"\tgraph{attr_list(graph_attrs)}\n"]
    if node_attrs:
        lines.append(f"\tnode{attr_list(node_attrs)}\n")
    if edge_attrs:
        lines.append(f"\tedge{attr_list(edge_attrs)}\n")

    # Which clusters exist, each one's parent, and the order in which they are met.
    members: dict[str | None, list[Item]] = {}
    for item in items:
        members.setdefault(item.cluster, []).append(item)
    paths = set(cluster_labels)
    parent = {p: cluster_parent(p, paths) for p in paths}
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
            attrs = dict(cluster_attrs, id=f"cluster_{number[child]}")
            attrs["label"] = cluster_labels[child]
            lines.append(f"{indent}\tgraph{attr_list(attrs)}\n")
            write(child, depth + 1)
            lines.append(f"{indent}}}\n")

    write(None, 1)
    for edge in [*edges, *order]:
        lines.append(f"\t{edge.tail} -> {edge.head}{attr_list(edge.attrs)}\n")
    return lines


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


def natural_key(path: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.split(".")]


def _depth_first(children: dict[str | None, list[str]]) -> list[str]:
    # Clusters are numbered depth-first in the order they were met.
    order: list[str] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        p = stack.pop()
        order.append(p)
        stack.extend(reversed(children.get(p, [])))
    return order
