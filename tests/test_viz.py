"""Tests of the graph drawings: valid DOT for the real `dot`, counts, stable ids, colours, escaping,
parameter names and clusters, and the summary of big graphs."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

import autodiff
from autodiff import Value, draw_dot, to_dot

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"


def render_svg(dot_text: str) -> ET.Element:
    """Render with the real `dot`; fail the test when dot rejects or warns about the text."""
    result = subprocess.run(
        ["dot", "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b"", result.stderr.decode()
    return ET.fromstring(result.stdout)


def svg_groups(svg: ET.Element, cls: str) -> dict[str, ET.Element]:
    return {g.get("id"): g for g in svg.iter(f"{SVG}g") if g.get("class") == cls}


def svg_texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def neuron():
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.label = "o"
    return o, dict(x1=x1, x2=x2, w1=w1, w2=w2, b=b)


def dot_nodes(text: str) -> list[str]:
    return re.findall(r"^\s*(n\d+(?:_op)?) \[", text, flags=re.M)


def dot_edges(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+)", text, flags=re.M)


# ---- structure ----------------------------------------------------------------------------------


@needs_dot
def test_dot_renders_with_one_node_per_value_and_op_and_one_edge_per_input():
    o, _ = neuron()
    o.backward()
    text = to_dot(o, legend=False)
    svg = render_svg(text)
    nodes = svg_groups(svg, "node")
    edges = svg_groups(svg, "edge")
    order = autodiff.topological_order(o)
    interior = [v for v in order if v.parents]
    assert len(nodes) == len(order) + len(interior)
    assert len(edges) == sum(len(v.parents) for v in interior) + len(interior)
    assert set(nodes) == {f"n{i}" for i in range(len(order))} | {
        f"n{order.index(v)}_op" for v in interior
    }


def test_edges_follow_the_graph():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b + a  # a is used twice
    text = to_dot(c, legend=False)
    order = autodiff.topological_order(c)
    name = {v: f"n{i}" for i, v in enumerate(order)}
    expected = set()
    for v in order:
        for p in v.parents:
            expected.add((name[p], name[v] + "_op"))
        if v.parents:
            expected.add((name[v] + "_op", name[v]))
    assert set(dot_edges(text)) == expected
    assert len(dot_edges(text)) == len(expected)


def test_same_graph_gives_byte_identical_dot_and_ids_do_not_depend_on_identity():
    texts = []
    for _ in range(3):
        o, _ = neuron()
        o.backward()
        texts.append(to_dot(o))
        del o
    assert texts[0] == texts[1] == texts[2]
    assert "n0 [" in texts[0] and str(id(Value)) not in texts[0]


def test_draw_dot_is_a_digraph_with_the_same_source_and_renders_svg_inline():
    graphviz = pytest.importorskip("graphviz")
    o, _ = neuron()
    o.backward()
    graph = draw_dot(o, rankdir="TB")
    assert isinstance(graph, graphviz.Digraph)
    assert graph.source == to_dot(o, rankdir="TB")
    if shutil.which("dot"):
        bundle = graph._repr_mimebundle_()
        assert "<svg" in bundle["image/svg+xml"]


@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_rankdir_and_show_options(rankdir):
    o, _ = neuron()
    o.backward()
    text = re.sub(r'tooltip="[^"]*"', "", to_dot(o, rankdir=rankdir, show=("data",), fmt=".2f"))
    assert f'rankdir="{rankdir}"' in text
    assert "data 0.71" in text and "grad" not in text and "<B>o</B>" not in text
    text = re.sub(r'tooltip="[^"]*"', "", to_dot(o, show=("name", "grad"), fmt=".3f"))
    assert "grad 1.000" in text and "data" not in text
    assert f"<B>n{len(autodiff.topological_order(o)) - 1}</B>" in text  # the output's name
    assert "<B>o · n" in to_dot(o, show=("label", "name"))


def test_bad_options_are_named():
    o, _ = neuron()
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(o, rankdir="sideways")
    with pytest.raises(ValueError, match="show"):
        to_dot(o, show=("colour",))
    with pytest.raises(ValueError, match="fmt"):
        to_dot(o, fmt="!!")
    with pytest.raises(TypeError, match="Value"):
        to_dot(3.0)
    with pytest.raises(TypeError, match="named_parameters"):
        to_dot(o, model=object())
