"""What a drawing needs to know about a graph: stable names, roles, parameter names, clusters.

A `GraphInfo` is computed once per drawing from the output Value. The one idea to understand:
everything is keyed by *position in the topological order*, never by `id()`, so the same
expression always gets the same names (n0, n1, ...) and the same DOT text, byte for byte.
Parameter names come from a model's `named_parameters()` (duck-typed: this module never imports
`nn`), and a name such as `layers.0.neurons.3.w.1` places its Value in the clusters `layers.0`
and `layers.0.neurons.3`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from autodiff.engine import topological_order
from autodiff.value import Value
from autodiff.viz.style import as_float

ROLES = ("output", "parameter", "input", "constant", "value")


@dataclass
class GraphInfo:
    """The analysed graph of `root`: nodes in topological order and what each of them is."""

    root: Value
    order: list[Value]
    index: dict[Value, int]
    param_names: dict[Value, str]
    grads_known: bool
    cluster_of: dict[Value, str] = field(default_factory=dict)  # deepest cluster path, if any
    grad_values: dict[Value, float] | None = None  # gradients to draw instead of `.grad`
    # {cluster path: the clusters enclosing it and itself, outermost first}
    cluster_chains: dict[str, list[str]] = field(default_factory=dict)

    def name(self, node: Value) -> str:
        """The stable name of a node: n<position in topological order>."""
        return f"n{self.index[node]}"

    def title(self, node: Value) -> str:
        """What a reader calls the node: its label, else its parameter name, else its name."""
        return node.label or self.param_names.get(node) or self.name(node)

    def role(self, node: Value) -> str:
        """output, parameter, input (a labelled leaf), constant (an unlabelled leaf) or value."""
        if node is self.root:
            return "output"
        if node in self.param_names:
            return "parameter"
        if node.parents:
            return "value"
        return "input" if node.label else "constant"

    def grad(self, node: Value) -> float:
        if self.grad_values is not None:
            return self.grad_values.get(node, 0.0)
        return as_float(node.grad)


def analyse(
    root: Value, model=None, params=None, grads: bool | None = None, who: str = "to_dot"
) -> GraphInfo:
    """Order, name and classify every node `root` depends on (see the module docstring)."""
    if not isinstance(root, Value):
        raise TypeError(f"{who}() needs a Value to draw, got {type(root).__name__}: {root!r}")
    order = topological_order(root)
    index = {node: i for i, node in enumerate(order)}
    param_names = parameter_names(model, params)
    if grads is None:
        # backward() always sets the output's own gradient to 1, so a zero there means no
        # backward pass has run on this graph yet: its other gradients would be misleading.
        grads = as_float(root.grad) != 0.0
    info = GraphInfo(root, order, index, param_names, bool(grads))
    info.cluster_of = assign_clusters(order, param_names)
    for name in param_names.values():
        chain = cluster_chain(name)
        for i, path in enumerate(chain):
            info.cluster_chains.setdefault(path, chain[: i + 1])
    return info


def parameter_names(model=None, params=None) -> dict[Value, str]:
    """{Value: name} from `model.named_parameters()` and/or `params`.

    `params` may be a mapping {name: Value}, an iterable of (name, Value) pairs, or an iterable
    of Values (named by their label, else param0, param1, ...).
    """
    pairs: list[tuple[str, Value]] = []
    if model is not None:
        named = getattr(model, "named_parameters", None)
        if not callable(named):
            raise TypeError(
                "draw_dot(model=...) needs an object with a named_parameters() method, "
                f"got {type(model).__name__}"
            )
        pairs.extend(named())
    if params is not None:
        if isinstance(params, Mapping):
            pairs.extend(params.items())
        else:
            for i, item in enumerate(_iterate(params)):
                if isinstance(item, Value):
                    pairs.append((item.label or f"param{i}", item))
                elif isinstance(item, tuple) and len(item) == 2:
                    pairs.append(item)
                else:
                    raise TypeError(
                        "draw_dot(params=...) needs a mapping {name: Value}, (name, Value) pairs "
                        f"or Values, got an item {item!r}"
                    )
    names: dict[Value, str] = {}
    for name, value in pairs:
        if not isinstance(value, Value):
            raise TypeError(f"parameter {name!r} is not a Value: {value!r}")
        names.setdefault(value, str(name))
    return names


def _iterate(params) -> Iterable:
    try:
        return iter(params)
    except TypeError:
        raise TypeError(
            f"draw_dot(params=...) needs a mapping or an iterable, got {type(params).__name__}"
        ) from None


# ---- clusters -----------------------------------------------------------------------------------


def cluster_chain(param_name: str) -> list[str]:
    """The clusters a parameter's Value belongs to, outermost first.

    The module path is the name without its trailing indices and attribute (`w.1`, `b`). Every
    prefix of it that ends in an index is a cluster (an element of a list of modules, such as a
    Layer in `layers` or a Neuron in `neurons`), and so is the module path itself.

        >>> cluster_chain("layers.0.neurons.3.w.1")
        ['layers.0', 'layers.0.neurons.3']
        >>> cluster_chain("fc.b")
        ['fc']
        >>> cluster_chain("w")
        []
    """
    parts = param_name.split(".")
    while parts and parts[-1].isdigit():
        parts.pop()
    module = parts[:-1]
    chain = [".".join(module[: i + 1]) for i, part in enumerate(module) if part.isdigit()]
    path = ".".join(module)
    if path and (not chain or chain[-1] != path):
        chain.append(path)
    return chain


def assign_clusters(order: list[Value], param_names: dict[Value, str]) -> dict[Value, str]:
    """The deepest cluster of every node that belongs to one.

    A parameter belongs to the clusters of its name. An operation that consumes parameters
    belongs to the deepest cluster shared by those parameters (the dot product of a neuron's
    weights sits in the neuron). Any other operation joins a cluster only when all of its inputs
    are in that same cluster (a neuron's activation), so the loss built from the outputs of a
    model stays outside it.
    """
    chains = {v: cluster_chain(n) for v, n in param_names.items()}
    cluster_of: dict[Value, str] = {v: c[-1] for v, c in chains.items() if c}
    for node in order:
        parents = node.parents
        if not parents or node in chains:
            continue
        owners = [chains[p] for p in parents if p in chains]
        if owners:
            common = owners[0]
            for chain in owners[1:]:
                common = _common_prefix(common, chain)
            if common:
                cluster_of[node] = common[-1]
        else:
            first = cluster_of.get(parents[0])
            if first is not None and all(cluster_of.get(p) == first for p in parents):
                cluster_of[node] = first
    return cluster_of


def _common_prefix(a: list[str], b: list[str]) -> list[str]:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


def cluster_parent(path: str, paths: Iterable[str]) -> str | None:
    """The longest other cluster path that is a dotted prefix of `path` (its enclosing cluster)."""
    best = None
    for other in paths:
        if (
            other != path
            and path.startswith(other + ".")
            and (best is None or len(other) > len(best))
        ):
            best = other
    return best
