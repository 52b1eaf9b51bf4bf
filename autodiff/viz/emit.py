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
class Item:
    """One Graphviz node."""

    id: str
    attrs: dict[str, str]
    cluster: str | None = None


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
    graph.
    """
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
        siblings.sort(key=_natural_key)
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
    for edge in edges:
        lines.append(f"\t{edge.tail} -> {edge.head}{attr_list(edge.attrs)}\n")
    return lines


def _natural_key(path: str) -> list[tuple[int, int | str]]:
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
