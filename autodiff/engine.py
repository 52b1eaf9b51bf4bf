"""Backpropagation: walk the graph in topological order and apply each op's derivative rule.

The one idea to understand: a node's gradient is complete only once every node that *uses* it
has passed its share back. Sorting the graph so that each node comes after its inputs, then
walking that order backwards, guarantees exactly that. The sort is iterative (an explicit stack,
no recursion), so a graph a million nodes deep is as fine as a shallow one. Gradients are kept
in a dict during the pass, as HIPS autograd does (`_backprop`); `backward()` on floats runs the
same rules through a leaner loop (`_backward_floats`) that keeps them in the nodes' own slots.

    >>> from autodiff import Value
    >>> a = Value(3.0)
    >>> b = a + a            # a is used twice: both uses add up
    >>> b.backward()
    >>> a.grad
    2.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from numbers import Real

from autodiff.value import Value

# Per thread and per asyncio task, so no_grad() in one thread never affects another.
_GRAD_ENABLED: ContextVar[bool] = ContextVar("autodiff_grad_enabled", default=True)
# How many grad() calls are being evaluated right now (nested derivatives must build graphs).
_GRAD_DEPTH: ContextVar[int] = ContextVar("autodiff_grad_depth", default=0)


class no_grad:  # noqa: N801 - used like a function, as torch.no_grad
    """Context manager (or decorator) in which operations record no graph.

    Use it for evaluation and for updating parameters, where no gradient is wanted:

        >>> from autodiff import Value, no_grad
        >>> w = Value(1.0)
        >>> with no_grad():
        ...     y = w * 2
        >>> y.parents
        ()
    """

    def __enter__(self) -> None:
        self._token = _GRAD_ENABLED.set(False)

    def __exit__(self, *exc) -> None:
        _GRAD_ENABLED.reset(self._token)

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)

        return wrapper


def is_grad_enabled() -> bool:
    """False inside `no_grad()`."""
    return _GRAD_ENABLED.get()


def topological_order(root: Value, stop: frozenset | set = frozenset()) -> list[Value]:
    """Every Value that `root` depends on, each after all of its parents; `root` comes last.

    Depth-first, in the order of each node's `parents`, so the result is deterministic (the same
    order a recursive DFS would give) but uses an explicit stack instead of recursion. Nodes in
    `stop` are treated as leaves: their own parents are not visited.

    Each node is popped twice: the first time it goes back on the stack with its parents on top
    of it, the second time (its parents all placed by then) it takes its place in the order.
    The stack holds only nodes, so even a million-deep graph allocates nothing per level.
    """
    order: list[Value] = []
    placed: dict[Value, bool] = {}  # False: its parents are being placed; True: in the order
    stack = [root]
    while stack:
        node = stack.pop()
        state = placed.get(node)
        if state is None:  # first visit: come back to it after its parents
            placed[node] = False
            stack.append(node)
            if node not in stop:
                stack.extend(reversed(node.parents))  # reversed: the first parent pops first
        elif state is False:  # second visit: every parent is placed
            placed[node] = True
            order.append(node)
    return order


def _backprop(root: Value, create_graph: bool, stop: frozenset | set = frozenset()):
    """The backward pass: returns the topological order and a dict {node: d root / d node}."""
    order = topological_order(root, stop)
    grads: dict = {root: Value(1.0) if create_graph else 1.0}
    for node in reversed(order):
        parents = node.parents
        if not parents or node in stop:
            continue
        g = grads[node]
        rule = node._op.vjp
        if create_graph:  # the rule runs on Values, so its arithmetic is recorded
            local = rule(g, node, *parents)
        elif len(parents) == 2:  # fast paths for the common arities
            local = rule(g, node.data, parents[0].data, parents[1].data)
        elif len(parents) == 1:
            local = rule(g, node.data, parents[0].data)
        else:
            local = rule(g, node.data, *[p.data for p in parents])
        for parent, contribution in zip(parents, local):
            if parent in grads:
                grads[parent] = grads[parent] + contribution
            else:
                grads[parent] = contribution
    return order, grads


def local_grads(node: Value, upstream: float = 1.0) -> tuple[float, ...]:
    """The shares `node` passes back to each of its parents, given its own gradient `upstream`.

    This is one step of the backward pass, exactly as `backward()` computes it: the op's rule
    applied on floats. With `upstream=1.0` the shares are the local derivatives
    d node / d parent. A leaf has no parents and gives ().

        >>> from autodiff import Value
        >>> a, b = Value(2.0), Value(-3.0)
        >>> local_grads(a * b)
        (-3.0, 2.0)
    """
    parents = node.parents
    if not parents:
        return ()
    shares = node._op.vjp(upstream, node.data, *[p.data for p in parents])
    return tuple(float(s) for s in shares)


def backward(root: Value, create_graph: bool = False) -> None:
    """Fill `.grad` of `root` and of everything it depends on (see `Value.backward`)."""
    if not create_graph:
        _backward_floats(root)
        return
    token = _GRAD_ENABLED.set(True)  # the gradient graph is wanted even under no_grad
    try:
        order, grads = _backprop(root, True)
    finally:
        _GRAD_ENABLED.reset(token)
    for node in order:
        if node.parents:
            node.grad = grads[node]  # interior: this pass's gradient
        else:
            node.grad = node.grad + grads[node]  # leaf: accumulate, as PyTorch does


def _backward_floats(root: Value) -> None:
    """`backward()` on floats, the hot loop of every training step, arranged for speed.

    It computes what `_backprop` computes, with the same rules of the op table, visiting the
    nodes in the same order, so the gradients are the same numbers. Only the bookkeeping differs:

    - Every gradient is summed in the node's own `.grad` slot, not in a dict: a slot is the
      cheapest place Python has to keep a number. The sort resets interior nodes to 0.0 (their
      `.grad` is this pass's gradient); leaves are not reset, so each share is added to what
      they hold, `+=` as PyTorch accumulates. From `zero_grad()`'s 0.0 that is exactly the sum
      `_backprop` computes; on top of an older gradient it may round in the last bit.
    - Leaves (weights, inputs, constants: often half of a graph) are never sorted or visited.
    - Inputs are read from the `_x` / `_y` slots (see `Value`), so nodes with one or two inputs,
      nearly all of them, need no tuple and no list.
    - Nothing is allocated per node that outlives its step, so even a deep graph does not wake
      the cyclic garbage collector (whose cost grows with the number of live objects).

    If a rule raises midway (pow's rule at 0 ** -0.5, say), some gradients are already added:
    zero them before trying again, as after a failed backward in PyTorch.
    """
    if root._op is None:  # a leaf: d root / d root = 1
        root.grad = root.grad + 1.0
        return
    # topological_order's sort, without the leaves, reading the inputs straight from their slots.
    order: list[Value] = []
    placed: dict[Value, bool] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        state = placed.get(node)
        if state is None:
            placed[node] = False
            stack.append(node)
            x, y = node._x, node._y
            if y is None:  # push interior inputs last-first, so the first one pops first
                if x._op is not None:
                    stack.append(x)
            elif x is not None:
                if y._op is not None:
                    stack.append(y)
                if x._op is not None:
                    stack.append(x)
            else:
                stack.extend([p for p in reversed(y) if p._op is not None])
        elif state is False:
            placed[node] = True
            node.grad = 0.0  # ready to sum this pass's shares
            order.append(node)

    root.grad = 1.0
    for node in reversed(order):  # a node's .grad is complete when its turn comes
        rule = node._op.vjp
        x, y = node._x, node._y  # the inputs, kept as Value explains
        if y is None:  # one input
            (gx,) = rule(node.grad, node.data, x.data)
            x.grad += gx
        elif x is not None:  # two inputs
            gx, gy = rule(node.grad, node.data, x.data, y.data)
            x.grad += gx
            y.grad += gy
        else:  # many inputs, all in the tuple y
            shares = rule(node.grad, node.data, *[p.data for p in y])
            for parent, share in zip(y, shares):
                parent.grad += share


def gradients(root, wrt: Sequence[Value], create_graph: bool = False) -> list:
    """d root / d w for each w in `wrt`, without touching any `.grad` attribute.

    The walk stops at the `wrt` nodes, as if they were leaves. Returns floats, or Values when
    `create_graph` is true; 0.0 for a node that `root` does not depend on.
    """
    if not isinstance(root, Value):
        return [0.0] * len(wrt)
    if create_graph:
        token = _GRAD_ENABLED.set(True)
        try:
            _, grads = _backprop(root, True, frozenset(wrt))
        finally:
            _GRAD_ENABLED.reset(token)
    else:
        _, grads = _backprop(root, False, frozenset(wrt))
    return [grads.get(w, 0.0) for w in wrt]


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The derivative of `f` as a function, JAX style: `grad(f)(x)` is df/dx at x.

    Accepts floats or Values. Called on floats at top level it returns floats; called on Values,
    or inside another `grad`, it returns Values that can be differentiated again, so
    `grad(grad(f))` is the second derivative. With a tuple `argnums` it returns a tuple.

        >>> from autodiff import grad, sin
        >>> grad(sin)(0.0)
        1.0
        >>> grad(grad(lambda x: x ** 3))(2.0)
        12.0
    """
    from autodiff.ops import identity

    single = isinstance(argnums, int)
    positions = (argnums,) if single else tuple(argnums)

    @functools.wraps(f)
    def derivative(*args):
        traced = _GRAD_DEPTH.get() > 0 or any(isinstance(a, Value) for a in args)
        args = list(args)
        for i in positions:
            if i >= len(args):
                raise TypeError(f"grad(f, argnums={argnums}): f was called with {len(args)} args")
            # A fresh node per call: even when the argument is an outer variable, this call's
            # derivative is taken with respect to its own copy (no "perturbation confusion").
            args[i] = identity(args[i]) if isinstance(args[i], Value) else Value(args[i])
        wrt = [args[i] for i in positions]
        token = _GRAD_DEPTH.set(_GRAD_DEPTH.get() + 1)
        try:
            out = f(*args)
        finally:
            _GRAD_DEPTH.reset(token)
        if not isinstance(out, (Value, Real)):
            raise TypeError(f"grad(f): f must return a Value or a number, got {type(out).__name__}")
        result = gradients(out, wrt, create_graph=traced)
        if not traced:
            result = [g.data if isinstance(g, Value) else float(g) for g in result]
        return result[0] if single else tuple(result)

    return derivative
