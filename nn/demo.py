"""A first demo: build an expression, run backward, print the numbers, write the graph as SVG.

Run with `python -m nn.demo [output folder]` (default `demo_output`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import graphviz

from autodiff import Value, topological_order


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0] if args else "demo_output")
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.label = "o"
    o.backward()
    print(f"o = tanh(x1*w1 + x2*w2 + b) = {o.data:.4f}")
    for v in (x1, x2, w1, w2, b):
        print(f"  do/d{v.label} = {v.grad:+.4f}")

    graph = graphviz.Digraph(graph_attr={"rankdir": "LR"}, node_attr={"shape": "record"})
    ids: dict[Value, str] = {}
    for node in topological_order(o):
        ids[node] = f"n{len(ids)}"
        graph.node(ids[node], f"{node.label} | data {node.data:.4f} | grad {node.grad:.4f}")
        for parent in node.parents:
            graph.edge(ids[parent], ids[node], label=node.op)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = graph.render(out_dir / "graph", format="svg", cleanup=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
