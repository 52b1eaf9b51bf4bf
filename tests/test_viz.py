"""Tests of the graph drawings: valid DOT for the real `dot`, counts, stable ids, colours, escaping,
parameter names and clusters, and the summary of big graphs."""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

import autodiff
from autodiff import Value, draw_dot, to_dot
from examples import micrograd_readme_example

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed"
)
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
    with pytest.raises(TypeError, match=r"to_dot\(\) needs a Value to draw, got float: 3.0"):
        to_dot(3.0)
    with pytest.raises(TypeError, match="named_parameters"):
        to_dot(o, model=object())


# ---- gradient flow ------------------------------------------------------------------------------


def grad_cell_fill(text: str, node_id: str) -> str:
    line = next(line for line in text.splitlines() if line.strip().startswith(f"{node_id} ["))
    return re.search(r'<TD BGCOLOR="(#[0-9a-f]{6})"><FONT COLOR="#[0-9a-f]{6}">grad', line).group(1)


def test_zero_and_large_gradients_get_different_colours_and_zero_is_marked():
    o, leaves = neuron()
    o.backward()
    assert leaves["w2"].grad == 0.0 and abs(leaves["x1"].grad) > 1
    text = to_dot(o, legend=False)
    index = {v: i for i, v in enumerate(autodiff.topological_order(o))}
    zero = grad_cell_fill(text, f"n{index[leaves['w2']]}")
    large = grad_cell_fill(text, f"n{index[leaves['x1']]}")
    small = grad_cell_fill(text, f"n{index[leaves['x2']]}")  # 0.5
    assert len({zero, large, small}) == 3
    assert "grad 0<" in text  # a zero gradient says exactly 0, not a rounded number
    # the edge out of w2 carries no gradient: dashed
    edge = re.search(rf"n{index[leaves['w2']]} -> \w+ \[([^\]]*)\]", text).group(1)
    assert 'style="dashed"' in edge


def test_log_scale_orders_colours_by_magnitude():
    from autodiff.viz.look import GradScale

    scale = GradScale.fit([1e-4, 1e-2, 1.0, 10.0])
    darkness = [
        sum(int(scale.colour(g)[i : i + 2], 16) for i in (1, 3, 5)) for g in (1e-4, 1e-2, 1.0, 10.0)
    ]
    assert darkness == sorted(darkness, reverse=True) and len(set(darkness)) == 4
    assert scale.colour(-10.0) == scale.colour(10.0)


def contrast_with_white(colour: str) -> float:
    """WCAG contrast ratio of an sRGB colour against white (1 = invisible, 21 = black)."""

    def linear(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_coloured_edge_reads_on_white_and_the_legend_shows_edge_colours():
    a = Value(3.0, label="a")
    b = Value(-4.0, label="b")
    L = (a + a) * b * 2.5  # gradients from 1 (into L) to 24: the edge into L is the smallest
    L.label = "L"
    L.backward()
    text = to_dot(L)
    edges = re.findall(r'-> \w+ \[[^\]]*color="(#[0-9a-f]{6})" penwidth="([\d.]+)"', text)
    assert len(edges) == len(dot_edges(text))  # every edge carries a gradient here
    thinnest = min(edges, key=lambda e: float(e[1]))[0]
    # WCAG asks 3:1 for graphics; the old scale drew the smallest gradient in #ffffcc (1.03:1).
    assert all(contrast_with_white(colour) >= 3 for colour, _ in edges), edges
    assert contrast_with_white(thinnest) >= 3
    # Across a scale of six decades, too, and still darker for larger gradients.
    from autodiff.viz.look import GradScale

    scale = GradScale.fit([1e-6, 1.0])
    grads = [10.0**e for e in range(-7, 2)]
    edge_contrast = [contrast_with_white(scale.edge_colour(g)) for g in grads]
    assert min(edge_contrast) >= 3 and edge_contrast == sorted(edge_contrast)
    # The palest box fill is visibly tinted, not white.
    assert contrast_with_white(scale.colour(1e-7)) > 1.3
    # The legend shows, for each decade, the box colour and under it the edge colour.
    legend = next(line for line in text.splitlines() if line.strip().startswith("legend ["))
    drawn = GradScale.fit([1.0, 24.0])  # the gradients of this graph span 1 to 24
    for _, magnitude in drawn.ticks():
        fill, line = drawn.colour(magnitude), drawn.edge_colour(magnitude)
        assert f'BGCOLOR="{fill}"' in legend and f'BGCOLOR="{line}"' in legend
    assert legend.index(f'BGCOLOR="{drawn.colour(1.0)}"') < legend.index("edges")
    assert legend.index("edges") < legend.index(f'BGCOLOR="{drawn.edge_colour(1.0)}"')
    # A summary's edges join groups of nodes and are not coloured: its legend says nothing of them.
    summary = to_dot(L, max_nodes=3)
    legend = next(line for line in summary.splitlines() if line.strip().startswith("legend ["))
    assert "Summary" in summary and "boxes" in legend and "edges" not in legend


def test_dead_relu_is_marked_and_passes_no_gradient():
    x = Value(-2.0, label="x")
    w = Value(3.0, label="w")
    h = (w * x).relu()
    out = h + w
    out.backward()
    text = to_dot(out)
    relu_line = next(line for line in text.splitlines() if "relu" in line and "_op [" in line)
    assert "dead" in relu_line and "octagon" in relu_line
    assert "dead ReLU" in text  # in the legend
    alive = x * -1.0
    alive2 = alive.relu()
    alive2.backward()
    assert "dead" not in to_dot(alive2, legend=False)


def test_before_backward_the_drawing_says_gradients_are_not_computed():
    o, _ = neuron()
    text = to_dot(o)
    assert "not computed yet" in text
    assert "grad ?" in text and "grad 0" not in text
    o.backward()
    after = to_dot(o)
    assert "not computed yet" not in after and "grad ?" not in after
    assert "not computed yet" not in to_dot(o, grads=False, show=("data",))
    assert "grad ?" in to_dot(o, grads=False)


def test_roles_are_styled_differently():
    o, leaves = neuron()
    c = Value(2.0)  # an unnamed constant
    out = o * c
    out.backward()
    params = {"w1": leaves["w1"], "w2": leaves["w2"], "b": leaves["b"]}
    text = to_dot(out, params=params, legend=False)
    index = {v: i for i, v in enumerate(autodiff.topological_order(out))}

    def border(v):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"n{index[v]} ["))
        return re.search(r'TABLE BORDER="(\d)"[^>]*COLOR="(#[0-9a-f]{6})"', line).groups()

    roles = {
        "parameter": border(leaves["w1"]),
        "input": border(leaves["x1"]),
        "constant": border(c),
        "output": border(out),
        "value": border(o),
    }
    assert len(set(roles.values())) == 5, roles
    assert border(leaves["w2"]) == roles["parameter"]


# ---- parameters and clusters --------------------------------------------------------------------


class TinyModel:
    """Duck-typed like nn.Module: named_parameters() is all a drawing needs."""

    def __init__(self, seed: int = 0):
        import random

        rng = random.Random(seed)
        self.layers = [
            [([Value(rng.uniform(-1, 1)) for _ in range(2)], Value(0.1)) for _ in range(3)],
            [([Value(rng.uniform(-1, 1)) for _ in range(3)], Value(0.1))],
        ]

    def named_parameters(self):
        for i, layer in enumerate(self.layers):
            for j, (ws, b) in enumerate(layer):
                for k, w in enumerate(ws):
                    yield f"layers.{i}.neurons.{j}.w.{k}", w
                yield f"layers.{i}.neurons.{j}.b", b

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = [autodiff.dot(ws, x) + b for ws, b in layer]
            if i < len(self.layers) - 1:
                x = [v.relu() for v in x]
        return x[0]


@needs_dot
def test_model_parameters_are_named_and_grouped_into_layer_and_neuron_clusters():
    model = TinyModel()
    loss = (model([Value(0.5), Value(-1.5)]) - 1.0) ** 2
    loss.backward()
    text = to_dot(loss, model=model)
    assert "layers.0.neurons.2.w.1" in text and "layers.1.neurons.0.b" in text  # tooltips
    assert "<B>w.1</B>" in text and "<B>b</B>" in text  # inside its neuron's box: short names
    assert "<B>layers.0.neurons.2.w.1</B>" in to_dot(loss, model=model, clusters=False)
    svg = render_svg(text)
    clusters = {"".join(svg_texts(g)) for g in svg_groups(svg, "cluster").values()}
    assert {"layers.0", "layers.1", "layers.0.neurons.0", "layers.0.neurons.2"} <= clusters
    # the same names through params=, as a mapping or as pairs
    assert to_dot(loss, params=dict(model.named_parameters())) == text
    assert to_dot(loss, params=list(model.named_parameters())) == text
    assert "subgraph" not in to_dot(loss, model=model, clusters=False)


def test_cluster_membership_follows_the_parameters():
    model = TinyModel()
    loss = (model([Value(0.5), Value(-1.5)]) - 1.0) ** 2
    loss.backward()
    from autodiff.viz.graph import analyse

    info = analyse(loss, model=model)
    names = dict(model.named_parameters())
    w = names["layers.0.neurons.1.w.0"]
    order = [n.value for n in info.nodes]
    (dot_node,) = [v for v in order if v.op == "dot" and w in v.parents]
    (add_node,) = [v for v in order if dot_node in v.parents]
    (relu_node,) = [v for v in order if add_node in v.parents]
    for v in (w, dot_node, add_node, relu_node):
        assert info.of[v].cluster == "layers.0.neurons.1"
    assert info.of[loss].cluster is None  # the loss is outside the model


# ---- reading order ------------------------------------------------------------------------------


def svg_node_position(svg: ET.Element, node_id: str) -> tuple[float, float]:
    """Where a node's first line of text sits in the drawing (SVG y grows downwards)."""
    (group,) = [g for g in svg.iter(f"{SVG}g") if g.get("id") == node_id]
    text = next(group.iter(f"{SVG}text"))
    return float(text.get("x")), float(text.get("y"))


def along_rank(svg: ET.Element, node_id: str, rankdir: str) -> float:
    """Position in reading order within a rank: left to right (TB), top to bottom (LR)."""
    x, y = svg_node_position(svg, node_id)
    return x if rankdir == "TB" else y


def one_sample_loss(sizes, seed=0, samples=1):
    import nn
    from nn.losses import hinge

    X, y = nn.data.make_moons(10, noise=0.1, seed=seed, labels="pm1")
    model = nn.MLP(2, sizes, seed=seed)
    loss = hinge([model(x) for x in X[:samples]], y[:samples])
    loss.backward()
    return loss, model


@needs_dot
@pytest.mark.parametrize("samples", [1, 3])  # with 3, each weight feeds three dot products
@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_weights_and_operands_are_drawn_in_argument_order(rankdir, samples):
    loss, model = one_sample_loss([3, 4, 1], samples=samples)
    index = {v: i for i, v in enumerate(autodiff.topological_order(loss))}
    svg = render_svg(to_dot(loss, model=model, rankdir=rankdir))
    checked = 0
    for name, unit in model.named_modules():
        if not re.fullmatch(r"layers\.\d+\.neurons\.\d+", name):
            continue
        checked += 1
        places = [along_rank(svg, f"n{index[w]}", rankdir) for w in unit.w]
        assert places == sorted(places), (name, places)  # w.0, w.1, ... as a reader counts
    assert checked == 3 + 4 + 1
    # Without a model: the operands of x1 * w1 in argument order as well.
    o, leaves = neuron()
    index = {v: i for i, v in enumerate(autodiff.topological_order(o))}
    svg = render_svg(to_dot(o, rankdir=rankdir))
    for first, second in (("x1", "w1"), ("x2", "w2")):
        a, b = (along_rank(svg, f"n{index[leaves[k]]}", rankdir) for k in (first, second))
        assert a < b, (first, second)


@needs_dot
@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_summary_boxes_of_a_layer_are_drawn_in_natural_order(rankdir):
    loss, model = one_sample_loss([16, 16, 1], seed=1337)
    text = to_dot(loss, model=model, max_nodes=150, rankdir=rankdir)
    assert "Each Neuron/Layer cluster is drawn as one box" in text
    svg = render_svg(text)
    boxes = {}
    for g in svg_groups(svg, "node").values():
        paths = [t for t in svg_texts(g) if re.fullmatch(r"layers\.\d+\.neurons\.\d+", t)]
        if paths:
            boxes[paths[0]] = along_rank(svg, g.get("id"), rankdir)
    for layer in (0, 1):
        places = [boxes[f"layers.{layer}.neurons.{i}"] for i in range(16)]
        assert places == sorted(places), (layer, places)  # 0, 1, ..., 15, not 10, ..., 15, 0


def test_the_ordering_edges_are_invisible_and_deterministic():
    loss, model = one_sample_loss([3, 1])
    text = to_dot(loss, model=model, rankdir="TB")
    order = [line for line in text.splitlines() if 'minlen="0"' in line]
    assert order and all('style="invis"' in line for line in order)
    assert 'remincross="false"' in text
    again, model_again = one_sample_loss([3, 1])
    assert to_dot(again, model=model_again, rankdir="TB") == text


# ---- escaping -----------------------------------------------------------------------------------

NASTY = [
    'say "hi"',
    "{braces} | pipe",
    "<b>not bold</b> & <i>",
    "back\\slash \\N \\G \\n",
    "two\nlines",
    "unicode: ∂L/∂w · é · 漢字 · 🙂",
    ']; n0 -> n1; x [label="',
    "&amp; &lt; &#45;",
    "tab\tbell\x07",
    "]",  # Graphviz's HTML lexer failed on text ending in "]"
    "]]",
    "x]]>",
    "[label]",
    "\ufffe",  # non-characters: not allowed in XML, so Graphviz's parser refused them
    "\uffff end",
    "".join(chr(c) for c in range(32, 127)),  # every printable ASCII character
]


@needs_dot
@pytest.mark.parametrize("label", NASTY)
def test_any_label_renders_literally(label):
    a = Value(1.5, label=label)
    b = Value(2.0)  # unlabelled: drawn with its parameter name
    c = a * b
    c.label = label
    c.backward()
    model_names = {label: b}  # a parameter name with the same text
    # clusters=False: a dotted name would also name a cluster (tested elsewhere)
    text = to_dot(c, params=model_names, title=label, rankdir="TB", clusters=False)
    svg = render_svg(text)
    texts = svg_texts(svg)
    expected = label.replace("\t", "\\x09").replace("\x07", "\\x07")
    expected = expected.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
    lines = expected.split("\n")
    # the label of a, of c, the parameter name of b and the title: each line four times
    for line in lines:
        assert texts.count(line) == 4, (line, texts)
    tooltips = [a.get("{http://www.w3.org/1999/xlink}title") for a in svg.iter(f"{SVG}a")]
    assert any(
        t.startswith(expected.replace("\n", " ")) or t.startswith(expected) for t in tooltips
    ), tooltips
    # no label turned into extra nodes or edges
    assert len(svg_groups(svg, "node")) == 3 + 1 + 1  # a, b, c, the op, the legend
    assert len(svg_groups(svg, "edge")) == 3


# ---- big graphs ---------------------------------------------------------------------------------


def moons_like_step(n_samples: int = 100, seed: int = 0):
    """A training step's loss as big as MLP(2, [16, 16, 1]) + hinge loss over 100 samples builds
    with one node per multiply and add (about 65,000 Values), and the named parameters."""
    import random

    rng = random.Random(seed)
    sizes = [2, 16, 16, 1]
    params, layers = {}, []
    for i, (nin, nout) in enumerate(zip(sizes, sizes[1:])):
        layer = []
        for j in range(nout):
            ws = [Value(rng.uniform(-1, 1)) for _ in range(nin)]
            b = Value(0.0)
            params.update({f"layers.{i}.neurons.{j}.w.{k}": w for k, w in enumerate(ws)})
            params[f"layers.{i}.neurons.{j}.b"] = b
            layer.append((ws, b))
        layers.append(layer)
    losses = []
    for _ in range(n_samples):
        x = [Value(rng.uniform(-2, 2)), Value(rng.uniform(-1, 1))]
        y = rng.choice([-1.0, 1.0])
        for i, layer in enumerate(layers):
            out = []
            for ws, b in layer:
                s = b
                for w, xi in zip(ws, x):
                    s = s + w * xi
                out.append(s.relu() if i < len(layers) - 1 else s)
            x = out
        losses.append((1 + -y * x[0]).relu())
    return autodiff.sum(losses) * (1.0 / n_samples), params


@pytest.fixture(scope="module")
def big_step():
    loss, params = moons_like_step()
    loss.backward()
    return loss, params


@needs_dot
def test_a_65k_node_step_is_summarised_into_a_small_drawing(big_step):
    loss, params = big_step
    n = len(autodiff.topological_order(loss))
    assert n > 60_000
    text = to_dot(loss, params=params)
    assert len(text) < 100_000  # a few hundred nodes at most, not 65k
    # named parameters in clusters: the default limit is 150 Values (one box per neuron past it)
    assert f"{n:,} values" in text and "max_nodes=150" in text and "max_nodes=None" in text
    assert "×100" in text  # the 100 samples' copies drawn once
    svg = render_svg(text)
    nodes = svg_groups(svg, "node")
    assert len(nodes) < 200
    boxes = [texts for texts in map(svg_texts, nodes.values()) if "layers.1.neurons.7" in texts]
    assert len(boxes) == 1  # one box per neuron, with its parameter count
    assert any("17 params" in t for t in boxes[0])


@needs_dot
def test_a_big_graph_without_a_model_is_summarised_too(big_step):
    loss, _ = big_step
    text = to_dot(loss, max_nodes=300)
    assert "max_nodes=300" in text and len(text) < 200_000
    render_svg(text)


@needs_dot
def test_when_copies_are_not_enough_only_the_part_nearest_the_output_is_kept():
    x = Value(1.0, label="x")
    for i in range(400):  # a chain: no repeated structure to merge
        x = (x * 0.999 + i / 1000).tanh()
    x.backward()
    text = to_dot(x, max_nodes=50)
    assert "nearest the output" in text and "more input" in text
    svg = render_svg(text)
    assert len(svg_groups(svg, "node")) < 120
    assert "max_nodes=None" in text
    full = to_dot(x, max_nodes=None, legend=False)
    order = autodiff.topological_order(x)
    assert len(dot_nodes(full)) == len(order) + sum(1 for v in order if v.parents)


def test_copies_of_a_sub_expression_are_merged_with_their_count():
    w = Value(0.5, label="w")
    terms = [(w * Value(float(i))).tanh() for i in range(30)]
    out = autodiff.sum(terms)
    out.backward()
    text = to_dot(out, max_nodes=20)
    assert "×30" in text
    assert text.count("tanh") >= 1 and "nearest the output" not in text


def test_summary_is_deterministic():
    texts = []
    for _ in range(2):  # two separately built graphs: ids never depend on object identity
        loss, params = moons_like_step(n_samples=20)
        loss.backward()
        texts.append(to_dot(loss, params=params, max_nodes=200))
    assert texts[0] == texts[1] and "×20" in texts[0]


def test_gradients_that_are_values_after_create_graph_are_drawn_as_numbers():
    x = Value(0.7, label="x")
    y = (x * x).tanh()
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value)
    text = to_dot(y, legend=False)
    assert f"grad {2 * 0.7 * (1 - y.data**2):.4g}<" in text  # d tanh(x^2)/dx by hand


def test_a_lone_leaf_and_params_given_as_values():
    a = Value(3.0, label="a")
    assert len(dot_nodes(to_dot(a))) == 1
    w = Value(0.5)
    out = w * a
    out.backward()
    text = to_dot(out, params=[w], legend=False)
    assert "<B>param0</B>" in text  # an unlabelled parameter is named by its position


# ---- long edges and Graphviz's layout cost ------------------------------------------------------


def demo_loss_with_l2(sizes=(2, 16, 16, 1), seed=0):
    """The demo's loss for one point as micrograd writes it: an MLP with builtin-sum neurons, a
    hinge, and ALPHA * sum(p * p) over every parameter, again with builtin sum: a chain of ~340
    additions whose terms reuse the leaves the model started from."""
    rng = random.Random(seed)
    layers = [
        [[Value(rng.uniform(-1, 1)) for _ in range(n_in)] + [Value(0.0)] for _ in range(n_out)]
        for n_in, n_out in zip(sizes, sizes[1:])
    ]
    params = [p for layer in layers for neuron in layer for p in neuron]
    x = [Value(0.4), Value(-0.3)][: sizes[0]]
    for depth, layer in enumerate(layers):
        acts = [sum((w * xi for w, xi in zip(n[:-1], x)), n[-1]) for n in layer]
        x = [a.relu() for a in acts] if depth < len(layers) - 1 else acts
    loss = (1 + -1.0 * x[0]).relu() * 1.0 + 1e-4 * sum(p * p for p in params)
    loss.backward()
    return loss, params


def repeats_of(text: str) -> dict[str, str]:
    """{repeated node id: id of its original} (a copy's id is its original's + _again<k>)."""
    ids = re.findall(r"^\s*(\w+_again\d+) \[", text, flags=re.M)
    return {i: i.rsplit("_again", 1)[0] for i in ids}


def drawn_edges(text: str) -> list[tuple[str, str]]:
    """The visible edges (not the invisible ones that only keep siblings in order)."""
    return re.findall(r"^\s*(\w+) -> (\w+)(?!.*invis)", text, flags=re.M)


def render_in_time(dot_text: str) -> ET.Element:
    """`dot -Tsvg`, failing the test if Graphviz has not finished after a minute (a hang guard:
    these drawings take about a second; before long edges were cut they took minutes)."""
    try:
        return render_svg(dot_text)
    except subprocess.TimeoutExpired:
        pytest.fail("Graphviz's dot did not finish laying out the drawing within 60 s")


@needs_dot
@pytest.mark.parametrize("max_nodes", [500, None])
def test_a_deep_l2_chain_over_all_parameters_renders_promptly(max_nodes):
    loss, _ = demo_loss_with_l2()
    assert len(autodiff.topological_order(loss)) > 1500
    text = to_dot(loss, max_nodes=max_nodes)
    copies = repeats_of(text)
    assert copies, "the parameters' uses in the L2 chain are far from the model: repeats expected"
    cut = sum(1 for tail, _ in drawn_edges(text) if tail in copies)
    assert f"{cut} long edges drawn as {len(copies)} repeated nodes" in text
    if max_nodes is None:  # an edge from a copy still carries its gradient, coloured as before
        from_copies = [
            line for line in text.splitlines() if " -> " in line and line.split()[0] in copies
        ]
        assert from_copies and all("color=" in s for s in from_copies)
    svg = render_in_time(text)
    drawn = svg_groups(svg, "node")
    assert set(copies) <= set(drawn)
    for copy in copies:  # marked as a repeat, with a dashed border, pointing at the original
        assert svg_texts(drawn[copy])[0].startswith("↻")
        assert any(p.get("stroke-dasharray") for p in drawn[copy].iter(f"{SVG}path"))
        assert f"({copies[copy]})" in ET.tostring(drawn[copy], encoding="unicode")


def test_repeated_nodes_keep_the_graph_the_same():
    loss, params = demo_loss_with_l2(sizes=(2, 4, 4, 1))
    names = {p: f"p{i}" for i, p in enumerate(params)}
    text = to_dot(loss, max_nodes=None, params={n: p for p, n in names.items()}, legend=False)
    copies = repeats_of(text)
    assert copies
    # Every edge from a copy, read as an edge from its original, gives exactly the graph.
    drawn = sorted((copies.get(tail, tail), head) for tail, head in drawn_edges(text))
    order = autodiff.topological_order(loss)
    name = {v: f"n{i}" for i, v in enumerate(order)}
    expected = []
    for v in order:
        expected += [(name[p], name[v] + "_op") for p in v.parents]
        expected += [(name[v] + "_op", name[v])] if v.parents else []
    assert drawn == sorted(expected)
    # The originals stay with the model; the far-away uses are the L2 terms p * p.
    originals = {name[p] for p in params}
    assert set(copies.values()) <= originals
    for copy in copies:
        (head,) = {h for t, h in drawn_edges(text) if t == copy}
        inputs = [t for t, h in drawn_edges(text) if h == head]
        assert inputs == [copy, copy]  # p * p: both inputs from the one copy
        label = re.search(rf"^\s*{copy} \[.*label=<([^>]*)>", text, flags=re.M).group(1)
        assert label.startswith(f"↻ {names[order[int(copies[copy][1:])]]} = ")


def micrograd_readme_expression():
    return micrograd_readme_example()[-1]


def a_plus_a():
    a = Value(3.0, label="a")
    return a + a


@pytest.mark.parametrize("build", [micrograd_readme_expression, a_plus_a, lambda: neuron()[0]])
def test_small_expressions_have_no_repeats_and_one_node_per_value_and_op(build):
    out = build()
    out.backward()
    text = to_dot(out, legend=False)
    order = autodiff.topological_order(out)
    assert "↻" not in text and "_again" not in text and "repeated" not in text
    assert "nslimit" not in text and "mclimit" not in text
    assert len(dot_nodes(text)) == len(order) + sum(1 for v in order if v.parents)
    assert len(drawn_edges(text)) == sum(len(v.parents) + 1 for v in order if v.parents)


def test_an_edge_is_repeated_only_past_the_long_span():
    a = Value(1.0, label="a")
    x = a
    for _ in range(7):  # a uses seven operations later: 14 ranks, not long
        x = x.tanh()
    short = x * a
    y = a
    for _ in range(9):  # nine operations later: 18 ranks, long
        y = y.tanh()
    far = y * a
    for out, repeated in ((short, False), (far, True)):
        out.backward()
        text = to_dot(out, legend=False)
        assert bool(repeats_of(text)) == repeated, text


def test_a_summary_still_too_costly_to_lay_out_keeps_fewer_nodes(monkeypatch):
    from autodiff.viz import layout

    loss, _ = demo_loss_with_l2()
    normal = to_dot(loss)
    monkeypatch.setattr(layout, "BUDGET", 0)  # nothing is cheap enough: draw less and less
    small = to_dot(loss)
    assert "so that Graphviz lays the drawing out in seconds" in small
    assert "nearest the output are drawn" in small
    assert len(drawn_edges(small)) < len(drawn_edges(normal))


def test_the_layout_estimate_is_linear_and_counts_ranks_crossed():
    from autodiff.viz import layout

    # 0 -> 1 -> 2 -> 3 and 0 -> 3: the long edge crosses ranks 1 and 2.
    as_late, at_home = layout.ranks(4, [0, 1, 2, 0], [1, 2, 3, 3])
    assert as_late == [0, 1, 2, 3] and at_home == [0, 1, 2, 3]
    assert layout.cost([0, 1, 2, 0], [1, 2, 3, 3], as_late) == 2
    # An input used first late and then early is placed at its first use when choosing cuts.
    as_late, at_home = layout.ranks(5, [1, 2, 0, 0], [2, 3, 3, 1])
    assert as_late[0] == 0 and at_home[0] == 2


def test_a_big_full_drawing_bounds_graphvizs_effort():
    from autodiff.viz import layout

    assert layout.effort_limits(300, 100) == {}
    limits = layout.effort_limits(20_000, 1_000)
    assert float(limits["nslimit"]) * 20_000 <= layout.ITERATIONS * 1.01
    assert 0 < float(limits["mclimit"]) < 1
    loss, _ = demo_loss_with_l2(sizes=(2, 24, 24, 1))
    text = to_dot(loss, max_nodes=None)
    assert "nslimit=" in text and "mclimit=" in text and "stop improving the layout" in text


@needs_dot
def test_l2_terms_of_a_model_leave_the_neuron_clusters_and_render_cleanly():
    import nn

    model = nn.MLP(3, [4, 4, 1], seed=0)
    loss = (model([2.0, 3.0, -1.0]) - 1.0) ** 2 + 0.01 * sum(p * p for p in model.parameters())
    loss.backward()
    text = to_dot(loss, model=model, max_nodes=500)  # every node (the default draws neurons)
    copies = repeats_of(text)
    # The L2 chain starts far from the model and ends near it: the first terms get copies.
    assert len(model.parameters()) // 2 < len(copies) < len(model.parameters())
    # Copies, their p * p and its value are drawn at the top level, not in a Neuron's cluster:
    # the clusters stay around the model. (Also: no "lost edge" from Graphviz.)
    top_level = set(re.findall(r"^\t(\w+) \[", text, flags=re.M))
    assert set(copies) <= top_level
    heads = {h for t, h in drawn_edges(text) if t in copies}
    assert heads <= top_level and {h.removesuffix("_op") for h in heads} <= top_level
    render_svg(text)


# ---- a model's drawing: one box per neuron by default --------------------------------------------


@needs_dot
def test_one_sample_through_a_model_draws_one_box_per_neuron_by_default():
    loss, model = one_sample_loss([16, 16, 1])
    n = len(autodiff.topological_order(loss))
    assert 150 < n < 500  # drawn node by node before: a drawing metres tall
    text = to_dot(loss, model=model)
    assert "Each Neuron/Layer cluster is drawn as one box" in text and "max_nodes=150" in text
    svg = render_svg(text)
    texts = [t for g in svg_groups(svg, "node").values() for t in svg_texts(g)]
    for name, _ in model.named_modules():
        if re.fullmatch(r"layers\.\d+\.neurons\.\d+", name):
            assert texts.count(name) == 1, name  # each neuron exactly once, as a box
    assert len(svg_groups(svg, "node")) < 80
    # Every Value on request, as the caption says
    assert "Pass max_nodes=None" in text
    full = to_dot(loss, model=model, max_nodes=None, legend=False)
    assert len(dot_nodes(full)) == n + sum(1 for v in autodiff.topological_order(loss) if v.parents)
    # A small model, and any expression without a model up to 500 Values, are drawn in full.
    small, small_model = one_sample_loss([3, 1])
    assert "Summary" not in to_dot(small, model=small_model)
    assert "Summary" not in to_dot(loss)  # no clusters to fold: the limit stays 500
    with pytest.raises(ValueError, match="max_nodes"):
        to_dot(loss, max_nodes="many")


# ---- drawings are a layer on the engine's public API --------------------------------------------


def test_drawings_read_graphs_only_through_the_public_api():
    import ast
    import pathlib

    import autodiff.viz

    folder = pathlib.Path(autodiff.viz.__file__).parent
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # no node._op, node._x, node._y, ... on anything
            if isinstance(node, ast.Attribute):
                assert not (node.attr.startswith("_") and not node.attr.startswith("__")), (
                    f"{path.name}:{node.lineno} reads the private attribute {node.attr}"
                )
            # nothing private imported from the engine (value, ops, engine)
            if isinstance(node, ast.ImportFrom) and not node.module.startswith("autodiff.viz"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name}:{node.lineno} imports {private}"


def test_a_new_primitive_is_drawn_and_explained_from_its_declaration(monkeypatch):
    from autodiff.ops import PRIMITIVES, Primitive, apply

    # Declared as the op table declares any primitive: a forward, a rule and a symbol.
    ratio = Primitive(
        "ratio", lambda x, y: x / y, lambda g, out, x, y: (g / y, -g * x / y / y), "/"
    )
    soft = Primitive(
        "softish", lambda x: x / (1 + abs(x)), lambda g, out, x: (g / (1 + abs(x)) ** 2,)
    )
    monkeypatch.setitem(PRIMITIVES, "ratio", ratio)
    monkeypatch.setitem(PRIMITIVES, "softish", soft)
    a, b = Value(3.0, label="a"), Value(4.0, label="b")
    q = apply(ratio, a, b)
    q.label = "q"
    out = apply(soft, q)
    out.label = "out"
    steps = autodiff.backward_steps(out)
    assert [s.local for s in steps] == [pytest.approx(1 / 1.75**2), 0.25, pytest.approx(-3 / 16)]
    text = autodiff.explain(out, file=None)
    assert "q = a / b" in text and "out = softish(q)" in text  # infix symbol, else a call
    assert "dout/da += dout/dq * ∂q/∂a = " in text
    out.backward()
    dot_text = to_dot(out, legend=False)
    ops = re.findall(r'_op \[id="\w+" label="([^"]*)"', dot_text)
    assert sorted(ops) == ["/", "softish"]
    edges = re.findall(r'-> n\d+_op \[id="\w+" color="(#[0-9a-f]{6})"', dot_text)
    assert len(edges) == 3  # the shares passed back colour every input edge


def test_a_logsumexp_node_draws_and_explains_as_one_call():
    # One n-ary node: drawn `logsumexp (3)`, explained as a call, its local derivatives the
    # softmax of its inputs (so they add up to 1).
    a, b, c = Value(1.0, label="a"), Value(2.0, label="b"), Value(3.0, label="c")
    lse = autodiff.logsumexp([a, b, c])
    lse.label = "lse"
    loss = lse - b
    loss.label = "L"
    text = autodiff.explain(loss, file=None)
    assert "lse = logsumexp(a, b, c)" in text
    steps = [s for s in autodiff.backward_steps(loss) if s.node is lse]
    assert [s.input for s in steps] == [a, b, c]
    total = math.fsum(math.exp(x) for x in (1.0, 2.0, 3.0))
    assert [s.local for s in steps] == pytest.approx([math.exp(x) / total for x in (1, 2, 3)],
                                                     rel=1e-15)
    loss.backward()
    dot_text = to_dot(loss, legend=False)
    ops = re.findall(r'_op \[id="\w+" label="([^"]*)"', dot_text)
    assert sorted(ops) == ["+", "logsumexp (3)", "neg"]
