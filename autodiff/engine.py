"""Backpropagation: one topological sort and one backward loop, for every kind of pass.

The one idea to understand: a node's gradient is complete only once every node that *uses* it
has passed its share back. Sorting the graph so that each node comes after its inputs, then
walking that order backwards, guarantees exactly that. The walk below is the whole algorithm,
the same as micrograd's `backward` and HIPS autograd's `backward_pass`: each node hands its
gradient `g` to its op's rule, and each share the rule returns is added to a parent's gradient.

    >>> from autodiff import Value
    >>> a = Value(3.0)
    >>> b = a + a            # a is used twice: both uses add up
    >>> b.backward()
    >>> a.grad
    2.0

The same loop serves `backward()` (on floats), `backward(create_graph=True)` and `grad()` (on
Values, so the gradient is itself a graph), `gradients()` (which stops at chosen nodes) and
`local_grads()` (one step of it). The walk is offered on its own (`walk`), so the step-through
drawings and `autodiff.compile`, which writes the pass out as code, follow this very loop. The
sort is iterative, so a graph a million nodes deep is as fine as a shallow one; gradients are
summed in a dict that belongs to one pass, so passes in several threads never see each other's
partial sums.

This module works on nodes through their public fields (`parents`, `op`, `data`, `grad`) and
imports no `Value`: `autodiff.value` uses it, not the other way round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from numbers import Real

from autodiff import anomaly
from autodiff.modes import ANOMALY, MODE, anomaly_checks_off


def topological_order(root, stop: Collection = frozenset()) -> list:
    """Every Value that `root` depends on, each after all of its parents; `root` comes last.

    Depth-first, in the order of each node's `parents`, so the result is deterministic (the same
    order a recursive DFS would give) but uses an explicit stack instead of recursion. Nodes in
    `stop` are treated as leaves: their own parents are not visited.

    A node seen for the first time goes back on the stack under a `None` marker, with its
    parents on top. Popping the marker means every parent has been placed in the order, so the
    node under it takes its place next.
    """
    _check_node("topological_order", "root", root)
    if not isinstance(stop, Collection):
        raise TypeError(f"topological_order(stop=...) needs a set of Values, got {stop!r}")
    order = []
    seen = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None:  # the marker: the node below it has all its parents placed
            order.append(stack.pop())
        elif node not in seen:
            seen.add(node)
            parents = node.parents
            if parents and not (stop and node in stop):
                stack.append(node)
                stack.append(None)
                stack += parents[::-1]  # reversed: the first parent pops first
            else:  # a leaf: nothing to wait for
                order.append(node)
    return order


def local_grads(node, upstream: float = 1.0) -> tuple[float, ...]:
    """The shares `node` passes back to each of its parents, given its own gradient `upstream`.

    This is one step of the backward pass, computed by the very function the loop calls: the
    op's rule applied on floats. With `upstream=1.0` the shares are the local derivatives
    d node / d parent. A leaf has no parents and gives ().

        >>> from autodiff import Value
        >>> a, b = Value(2.0), Value(-3.0)
        >>> local_grads(a * b)
        (-3.0, 2.0)
    """
    _check_node("local_grads", "node", node)
    if isinstance(upstream, bool) or not isinstance(upstream, Real):
        raise TypeError(
            f"local_grads(upstream=...) needs a real number, got {type(upstream).__name__}: "
            f"{upstream!r}"
        )
    if not node.parents:
        return ()
    return tuple(float(s) for s in float_step(node, float(upstream)))


def walk(order: list, grads: dict, step: Callable,
         stop: Collection = frozenset()) -> Iterator[tuple]:
    """The backward walk: `(node, g, shares)` for each node of `order` from the last back.

    `g` is `grads[node]`, the node's gradient, complete when its turn comes because every node
    that uses it comes later in `order`; `shares = step(node, g)` are what it passes to each of
    its parents. The caller adds the shares into `grads` before asking for the next node: that
    sum is the caller's, so the same walk serves `backward_pass` (numbers), the step-through
    drawings (which record each addition) and `autodiff.compile` (which writes each one as a
    line of code). Leaves and nodes in `stop` pass nothing on and are not yielded.

        >>> from autodiff import Value
        >>> a = Value(3.0)
        >>> b = a * a
        >>> order, grads = topological_order(b), {b: 1.0}
        >>> for node, g, shares in walk(order, grads, float_step):
        ...     print(node.op, g, shares)
        mul 1.0 (3.0, 3.0)
    """
    for node in reversed(order):
        if node.parents and not (stop and node in stop):
            g = grads[node]
            yield node, g, step(node, g)


def float_step(node, g) -> tuple:
    """One backward step on floats: the op's rule maps `node`'s gradient `g` to its shares."""
    parents = node.parents
    if len(parents) == 2:  # the common arities, without building a list of numbers
        return node.op.vjp(g, node.data, parents[0].data, parents[1].data)
    if len(parents) == 1:
        return node.op.vjp(g, node.data, parents[0].data)
    return node.op.vjp(g, node.data, *[p.data for p in parents])


def value_step(node, g) -> tuple:
    """One backward step on Values: the rule's arithmetic records the gradient's own graph."""
    return node.op.vjp(g, node, *node.parents)


def backward_pass(root, seed, stop: Collection = frozenset()) -> tuple[list, dict]:
    """The backward pass: the topological order and a dict {node: d root / d node}.

    `seed` is d root / d root: the float 1.0 for an ordinary pass, or `Value(1.0)`, in which case
    every rule runs on Values and the gradients form a graph of their own (the caller turns grad
    mode on for that). Nodes in `stop` are treated as leaves. Nothing is written to any `.grad`.
    """
    order = topological_order(root, stop)
    step = float_step if isinstance(seed, float) else value_step
    if MODE.get() & ANOMALY:
        step = _checked(step, order)
    grads = {root: seed}
    earlier_of = grads.get
    for node, _g, shares in walk(order, grads, step, stop):
        for parent, share in zip(node.parents, shares):
            earlier = earlier_of(parent)
            # The first share initialises the parent's gradient; later ones are added to it.
            grads[parent] = share if earlier is None else earlier + share
    return order, grads


def _checked(step: Callable, order: list) -> Callable:
    """The step of anomaly mode: check the node's inputs, take the step, check its shares."""

    def checked_step(node, g):
        anomaly.check_inputs_unchanged(node, order)
        with anomaly_checks_off():  # a NaN share is reported below, naming this node
            shares = step(node, g)
        anomaly.check_shares(node, g, shares, order)
        return shares

    return checked_step


# One pass writes its gradients at a time, so two threads' passes that share leaves add up
# exactly as if they had run one after the other.
_writing = threading.Lock()


def store_grads(grads: dict) -> None:
    """Write one pass's gradients: interior nodes are *set*, leaves accumulate (`+`) as in torch.

    Runs only after the whole pass succeeded, so a rule that raises midway leaves every `.grad`
    as it was.
    """
    with _writing:
        for node, g in grads.items():
            if node.parents:
                node.grad = g  # interior: this pass's gradient
            else:
                node.grad = node.grad + g  # leaf: add to what earlier passes left


def _check_node(function: str, argument: str, x) -> None:
    # Any object with a tuple of parents is a node; in practice that is a Value.
    if not isinstance(getattr(x, "parents", None), tuple):
        raise TypeError(f"{function}({argument}) needs a Value, got {type(x).__name__}: {x!r}")
