"""Anomaly mode's checks: where did the first NaN come from, and did a node's inputs change?

A NaN loss says something went wrong, not where. Inside `detect_anomaly()` (see
`autodiff.modes`), `Value` operations call `check_forward` on every result and the backward pass
calls `check_inputs_unchanged` and `check_shares` on every step, so the error points at the first
operation that produced a NaN and names its inputs with their values. Outside it these
functions are never called.

Nodes are named by their label, else by what they are ("leaf", "output of mul"),
and in a backward pass also by their position in the topological order (`#3`), which is the
same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence


class AnomalyError(RuntimeError):
    """Inside `detect_anomaly()`: a NaN appeared, or a node's inputs changed before backward."""


def _is_nan(x) -> bool:
    x = getattr(x, "data", x)  # a gradient share is a float, or a Value with create_graph
    return x != x


def name(node, order: Sequence | None = None) -> str:
    """How an error message refers to `node`: its label, else what it is (and where)."""
    if node.label:
        return node.label
    if not node.parents:
        kind = "leaf"
    else:
        kind = f"output of {node.op}"
    if order is not None:
        kind = f"#{order.index(node)} ({kind})"
    return kind


def _inputs(parents: Sequence, order: Sequence | None = None) -> str:
    return ", ".join(f"{name(p, order)} = {p.data!r}" for p in parents)


def check_forward(op: str, parents: tuple, data: float) -> None:
    """Raise if an operation's result `data` is NaN, naming the op and its inputs."""
    if data != data:
        raise AnomalyError(f"{op} produced nan from {_inputs(parents)}")


def check_inputs_unchanged(node, order: Sequence) -> None:
    """Raise if `node`'s inputs now give another result than the one recorded in forward.

    Recomputing the op from its parents' current numbers costs a forward pass, which is why only
    anomaly mode does it. A changed leaf is the classic mistake it catches: a weight updated
    before `backward()`, so the gradient would be taken at a point the loss was never at.
    """
    try:
        now = node.op.forward(*[p.data for p in node.parents])
    except (ArithmeticError, ValueError) as error:
        now = f"an error ({error})"
    recorded = node.data
    if now == recorded or (_is_nan(now) and _is_nan(recorded)):
        return
    raise AnomalyError(
        f"the inputs of {name(node, order)} changed after its forward pass: it computed "
        f"{recorded!r}, they now give {now!r} ({_inputs(node.parents, order)}). Was a .data "
        f"changed (an optimizer step?) between the forward pass and backward()?"
    )


def check_shares(node, g, shares: Sequence, order: Sequence) -> None:
    """Raise if one backward step gave a NaN gradient share to one of `node`'s parents."""
    for position, (parent, share) in enumerate(zip(node.parents, shares)):
        if _is_nan(share):
            raise AnomalyError(
                f"backward of {node.op} gave a nan gradient to its input {position}, "
                f"{name(parent, order)} = {parent.data!r}: that node's gradient went bad here. "
                f"The {node.op} node {name(node, order)} = {node.data!r} had gradient "
                f"{getattr(g, 'data', g)!r}; its inputs: {_inputs(node.parents, order)}"
            )
