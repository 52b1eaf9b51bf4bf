"""Step 1 of every drawing: the facts about a graph, read once through the engine's public API.

`analyse(root)` walks the graph (`autodiff.topological_order`) and gives each Value a `Node`:
its stable name, what a reader calls it, its role, its parameter name and cluster, its gradient
and, for an operation, its symbol and whether it is a dead ReLU. The one idea to understand:
everything is keyed by *position in the topological order*, never by `id()`, so the same
expression always gets the same names (n0, n1, ...) and the same DOT text, byte for byte. The
later steps (the scene, the layout, the DOT text) read these facts and never the Values'
internals. Parameter names come from a model's `named_parameters()` (duck-typed: this module
never imports `nn`), and a name such as `layers.0.neurons.3.w.1` places its Value in the
clusters `layers.0` and `layers.0.neurons.3`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from autodiff.engine import local_grads, topological_order
from autodiff.ops import PRIMITIVES
from autodiff.value import Value

ROLES = ("output", "parameter", "input", "constant", "value")


# ---- one op, one Value ------------------------------------------------------------------------


def is_dead_relu(node: Value) -> bool:
    """A ReLU whose input is <= 0: its output is 0 and it passes no gradient back.

    Drawings mark such a node; `nn.plots` counts them per layer. (On one input a ReLU that is
    off is only *inactive*; it is dead when it is off for every input, which a caller that
    holds many inputs decides.)
    """
    return node.op == "relu" and node.parents[0].data <= 0


def symbol(op: str) -> str:
    """How an op is written in a drawing: its declared symbol ("+", "**", "1/x"), else its name."""
    prim = PRIMITIVES.get(op)
    return (prim.symbol if prim is not None else "") or op


def is_infix(op: str) -> bool:
    """Whether a two-input op reads `x <symbol> y` (+, *, **, /), not `name(x, y)`."""
    prim = PRIMITIVES.get(op)
    return prim is not None and prim.symbol != "" and not any(c.isalnum() for c in prim.symbol)


def is_variadic(op: str) -> bool:
    """Whether an op takes any number of inputs (sum, dot): its drawing says how many."""
    prim = PRIMITIVES.get(op)
    return prim is not None and _takes_any_number(prim.vjp)


@functools.lru_cache(maxsize=256)  # by the rule itself: reading a signature is slow
def _takes_any_number(rule) -> bool:
    try:
        parameters = inspect.signature(rule).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_POSITIONAL for p in parameters)


def op_text(op: str, arity: int) -> str:
    """An operation's symbol; an op of any number of inputs also says how many (`sum (3)`)."""
    if not is_variadic(op):
        return symbol(op)
    # a dot product of n terms has 2n inputs: w_1..w_n, x_1..x_n
    return f"{symbol(op)} ({arity // 2 if op == 'dot' else arity})"


# ---- the facts of a whole graph ---------------------------------------------------------------


class Node:
    """What a drawing knows about one Value: plain data, computed once by `analyse`."""

    __slots__ = ("value", "index", "role", "param", "cluster", "grad", "parents", "dead")

    def __init__(self, value, index, role, param, cluster, grad, parents, dead) -> None:
        self.value: Value = value
        self.index: int = index  # position in the topological order
        self.role: str = role  # one of ROLES
        self.param: str | None = param  # its parameter name, if it is a named parameter
        self.cluster: str | None = cluster  # the deepest cluster (Neuron, Layer) holding it
        self.grad: float = grad  # its gradient as a float (0.0 when gradients are not known)
        self.parents: tuple[Node, ...] = parents  # the Nodes of its inputs, in argument order
        self.dead: bool = dead  # a ReLU whose input is <= 0 (`is_dead_relu`)

    @property
    def name(self) -> str:
        """The stable name n<index>."""
        return f"n{self.index}"

    @property
    def title(self) -> str:
        """What a reader calls it: its label, else its parameter name, else its stable name."""
        return self.value.label or self.param or self.name

    @property
    def op(self) -> str:
        """The primitive's name, "" for a leaf."""
        return self.value.op

    @property
    def symbol(self) -> str:
        """How the op is written ("" for a leaf)."""
        op = self.value.op
        return symbol(op) if op else ""

    @property
    def op_text(self) -> str:
        """What its operation node says: the symbol, and for sum/dot how many inputs."""
        op = self.value.op
        return op_text(op, len(self.parents)) if op else ""


@dataclass
class GraphInfo:
    """The analysed graph of `root`: a `Node` per Value, in topological order."""

    root: Value
    nodes: list[Node]
    of: dict[Value, Node]  # the Node of each Value
    param_names: dict[Value, str]
    grads_known: bool
    # {cluster path: the clusters enclosing it and itself, outermost first}
    cluster_chains: dict[str, list[str]] = field(default_factory=dict)

    def flows(self) -> dict[tuple[Node, int], float]:
        """{(node, input position): gradient flowing back along that edge}.

        One backward step per node, computed by the engine (`local_grads`) from the node's own
        gradient, so the edges show exactly the shares `backward()` adds up.
        """
        flows = {}
        for node in self.nodes:
            if not node.parents:
                continue
            try:
                shares = local_grads(node.value, node.grad)
            except (ArithmeticError, ValueError):  # data changed since backward: no colour
                continue
            for position, share in enumerate(shares):
                flows[(node, position)] = share
        return flows


def analyse(
    root: Value,
    model=None,
    params=None,
    grads: bool | None = None,
    who: str = "to_dot",
    grad_values: Mapping[Value, float] | None = None,
) -> GraphInfo:
    """Order, name and classify every node `root` depends on (see the module docstring).

    `grad_values` gives the gradients to draw instead of `.grad` (the HTML page computes them
    itself, so that `backward()` need not have run)."""
    if not isinstance(root, Value):
        raise TypeError(f"{who}() needs a Value to draw, got {type(root).__name__}: {root!r}")
    order = topological_order(root)
    param_names = parameter_names(model, params, who)
    if grads is None:
        # backward() always sets the output's own gradient to 1, so a zero there means no
        # backward pass has run on this graph yet: its other gradients would be misleading.
        grads = float(root.grad) != 0.0  # a Value after create_graph=True
    cluster_of = assign_clusters(order, param_names)
    of: dict[Value, Node] = {}
    nodes = []
    param_of, cluster = param_names.get, cluster_of.get  # bound once: 65,000 calls each
    for i, value in enumerate(order):
        param = param_of(value)
        inputs = value.parents
        parents = tuple([of[p] for p in inputs]) if inputs else ()
        if value is root:
            role = "output"
        elif param is not None:
            role = "parameter"
        elif parents:
            role = "value"
        else:
            role = "input" if value.label else "constant"
        if not grads:
            grad = 0.0
        elif grad_values is not None:
            grad = float(grad_values.get(value, 0.0))
        else:
            grad = value.grad
            grad = grad if type(grad) is float else float(grad)
        dead = bool(parents) and value.op == "relu" and is_dead_relu(value)
        node = Node(value, i, role, param, cluster(value), grad, parents, dead)
        of[value] = node
        nodes.append(node)
    info = GraphInfo(root, nodes, of, param_names, bool(grads))
    for name in param_names.values():
        chain = cluster_chain(name)
        for i, path in enumerate(chain):
            info.cluster_chains.setdefault(path, chain[: i + 1])
    return info


def parameter_names(model=None, params=None, who: str = "draw_dot") -> dict[Value, str]:
    """{Value: name} from `model.named_parameters()` and/or `params`.

    `params` may be a mapping {name: Value}, an iterable of (name, Value) pairs, or an iterable
    of Values (named by their label, else param0, param1, ...).
    """
    pairs: list[tuple[str, Value]] = []
    if model is not None:
        named = getattr(model, "named_parameters", None)
        if not callable(named):
            raise TypeError(
                f"{who}(model=...) needs an object with a named_parameters() method, "
                f"got {type(model).__name__}"
            )
        pairs.extend(named())
    if params is not None:
        if isinstance(params, Mapping):
            pairs.extend(params.items())
        else:
            for i, item in enumerate(_iterate(params, who)):
                if isinstance(item, Value):
                    pairs.append((item.label or f"param{i}", item))
                elif isinstance(item, tuple) and len(item) == 2:
                    pairs.append(item)
                else:
                    raise TypeError(
                        f"{who}(params=...) needs a mapping {{name: Value}}, (name, Value) pairs "
                        f"or Values, got an item {item!r}"
                    )
    names: dict[Value, str] = {}
    for name, value in pairs:
        if not isinstance(value, Value):
            raise TypeError(f"parameter {name!r} is not a Value: {value!r}")
        names.setdefault(value, str(name))
    return names


def _iterate(params, who: str) -> Iterable:
    try:
        return iter(params)
    except TypeError:
        raise TypeError(
            f"{who}(params=...) needs a mapping or an iterable, got {type(params).__name__}"
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
    if not cluster_of:
        return cluster_of  # no named clusters: nothing can join one
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
