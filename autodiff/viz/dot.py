"""Draw a computation graph: `to_dot` gives DOT text, `draw_dot` a `graphviz.Digraph`.

Each Value is a box with its label, data and grad; each operation is a small node between its
inputs and its output, so the drawing reads like the expression. Boxes and edges are coloured by
|grad| on a log scale (the legend gives the decades), an exactly-zero gradient is grey and a dead
ReLU is dark, so you see at a glance where the signal is strong and where it vanishes. The one
idea to understand is the pipeline every drawing goes through, one module per step:

1. `graph.analyse`: the facts of the graph (names, roles, clusters, gradients), read once;
2. `scene.full_scene` or `summary.summarise`: what to draw, every node or a summary of a big
   graph, in the vocabulary of `scene` that the later steps read;
3. `layout.affordable`: long edges drawn as repeated nodes, a summary cut down to the part
   nearest the output, so that Graphviz finishes quickly;
4. `look.dress`: how each thing looks (colours on one |grad| scale, one box builder);
5. `emit.write_dot`: the DOT text, where user text is escaped (`look` escapes what it puts in
   its HTML-like labels with `escape.html_text`).

Each step takes what the one before gives and is called once, in this order.

    >>> from autodiff import Value, to_dot
    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> c = a * b
    >>> c.backward()
    >>> print(to_dot(c).splitlines()[0])
    digraph chainrule {

A graph bigger than `max_nodes` is summarised instead of drawn node by node (see `to_dot`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from autodiff.value import Value
from autodiff.viz.emit import write_dot
from autodiff.viz.graph import analyse
from autodiff.viz.layout import affordable
from autodiff.viz.look import dress
from autodiff.viz.options import DEFAULT_SHOW, DrawOptions, NumberFormat
from autodiff.viz.scene import full_scene
from autodiff.viz.summary import summarise


def to_dot(
    root: Value,
    *,
    rankdir: str = "LR",
    show: Iterable[str] = DEFAULT_SHOW,
    fmt: NumberFormat = ".4g",
    model=None,
    params: Mapping[str, Value] | Iterable | None = None,
    grads: bool | None = None,
    colour: bool = True,
    legend: bool = True,
    clusters: bool = True,
    max_nodes: int | None | str = "auto",
    collapse: str = "auto",
    title: str | None = None,
) -> str:
    """The computation graph of `root` as DOT text (Graphviz's language); standard library only.

    - `rankdir`: "LR" (inputs on the left) or "TB" (inputs on top).
    - `show`: what each Value's box shows, any of "label" (its label, or its parameter name),
      "name" (the stable name n0, n1, ... that `explain` also uses), "data", "grad".
    - `fmt`: number format, a format spec such as ".4g" or ".4f", or a function float -> str.
    - `model` / `params`: name parameters, from `model.named_parameters()` or from a mapping
      {name: Value} or (name, Value) pairs. Named parameters are drawn as parameters and, with
      `clusters=True`, the nodes of each Neuron and Layer are grouped in a box.
    - `grads`: whether to show gradients. By default they are shown when `root.grad` is nonzero
      (backward() sets it to 1); before backward the drawing says so instead of showing zeros.
    - `colour`: colour boxes and edges by |grad| on a log scale; `legend` adds the key.
    - `max_nodes`: past this many Values the graph is summarised (repeated structure collapsed,
      then each cluster drawn as one box, then only the part nearest the output kept), and the
      drawing says what was left out. "auto" (the default) is 150 when named parameters group
      the graph into clusters (a model's neurons: one box per neuron past 150 Values) and 500
      otherwise. `None` draws every node, however slow Graphviz gets.
    - `collapse`: how to summarise: "auto", "repeats" (merge copies only) or "clusters".
    - `title`: a caption at the top.

    Node ids follow the topological order, so the same graph always gives the same text.
    """
    options = DrawOptions(rankdir, show, fmt, colour, legend, clusters, max_nodes, collapse, title)
    info = analyse(root, model=model, params=params, grads=grads)  # 1. the facts
    limit = options.node_limit(bool(info.cluster_chains))
    if limit is not None and len(info.nodes) > limit:  # 2. what to draw
        scene = summarise(info, options, limit)
    else:
        scene = full_scene(info, options)
    scene = affordable(scene)  # 3. what Graphviz can lay out quickly
    if not info.grads_known and "grad" in options.show:
        scene.notes.append("gradients not computed yet: call backward() on the output to see them")
    scene = dress(scene, options)  # 4. how each thing looks
    return write_dot(scene, options.rankdir, options.title)  # 5. the DOT text


def draw_dot(root: Value, *, format: str = "svg", **options):
    """`to_dot` rendered by Graphviz: a `graphviz.Digraph` (shows inline as SVG in Jupyter).

    Takes the same keyword options as `to_dot`; `format` is the output format of `.render()`
    (svg, png, pdf). Needs the `graphviz` Python package and Graphviz's `dot` program.

        graph = draw_dot(loss, model=model)
        graph.render("loss_graph")          # writes loss_graph.svg
    """
    import graphviz  # imported here so that autodiff itself needs nothing beyond the stdlib

    text = to_dot(root, **options)
    head, _, rest = text.partition("\n")
    body = rest[: rest.rstrip().rfind("}")].splitlines(keepends=True)
    return graphviz.Digraph(name=head.split()[1], body=body, format=format)
