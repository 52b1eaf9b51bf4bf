"""The backward pass, one chain-rule product at a time: `backward_steps` and `explain`.

Backpropagation is a loop of one line: for each node, from the output back, and for each of its
inputs, `input.grad += node.grad * ∂node/∂input`. `backward_steps` runs that loop without
touching any `.grad` and records every iteration: the upstream gradient dL/d(node), the local
derivative ∂node/∂input (the partial derivative of one op, written with ∂ so that it cannot be
taken for a total), their product and the input's running total. The one idea to understand: a
Value used twice gets two contributions, and its gradient is their sum, which is why the update
is `+=`:

    >>> from autodiff import Value, explain
    >>> a = Value(3.0, label="a")
    >>> b = Value(-2.0, label="b")
    >>> L = a * b + a
    >>> explain(L)
    Backward pass from L (n3): 4 steps, starting from dL/dL = 1.0 (∂: one op's local derivative)
    1. L = n2 + a   dL/dn2 += dL/dL * ∂L/∂n2 = 1.0 * 1.0 = 1.0
    2. L = n2 + a   dL/da += dL/dL * ∂L/∂a = 1.0 * 1.0 = 1.0
    3. n2 = a * b   dL/da += dL/dn2 * ∂n2/∂a = 1.0 * -2.0 = -2.0   (now -1.0, final)
    4. n2 = a * b   dL/db += dL/dn2 * ∂n2/∂b = 1.0 * 3.0 = 3.0   (final)

Each step's shares are computed by the engine (`autodiff.local_grads`, one backward step of the
op's own rule), so what is shown is exactly what `backward()` computes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from autodiff.engine import local_grads, topological_order, walk
from autodiff.value import Value
from autodiff.viz.graph import is_infix, parameter_names, symbol


@dataclass(frozen=True)
class BackwardStep:
    """One `input.grad += upstream * local` of the backward pass."""

    index: int  # position in the pass, from 0
    node: Value  # the op's output, whose gradient is being passed back
    input: Value  # the input that receives a share
    position: int  # which argument of the op `input` is
    op: str  # the primitive's name
    upstream: float  # d root / d node: the node's complete gradient
    local: float  # d node / d input: the op's local derivative
    contribution: float  # upstream * local: what is added to the input's gradient
    total: float  # d root / d input so far, after this step's +=
    first: bool  # the input's first contribution (its gradient was 0 before)
    final: bool  # the input's last contribution: `total` is its gradient
    node_name: str  # the label, parameter name, or stable name n<i> of `node`
    input_name: str


def backward_steps(root: Value, *, model=None, params=None) -> list[BackwardStep]:
    """The backward pass from `root` as a list of steps, in the order `backward()` runs them.

    Nothing is written to `.grad`. For every leaf, the contributions sum to the gradient a fresh
    `root.backward()` gives it. `model` / `params` name parameters, as in `to_dot`.
    """
    if not isinstance(root, Value):
        raise TypeError(f"backward_steps() needs a Value, got {type(root).__name__}: {root!r}")
    order = topological_order(root)
    index = {node: i for i, node in enumerate(order)}
    names = parameter_names(model, params, "backward_steps")

    def name(node: Value) -> str:
        return node.label or names.get(node) or f"n{index[node]}"

    uses: dict[Value, int] = {}  # contributions still to come, to tell when a gradient is final
    for node in order:
        for parent in node.parents:
            uses[parent] = uses.get(parent, 0) + 1

    # The engine's own walk; its step is the op's rule on floats, one backward step, as in
    # backward(). Here each share is added, and recorded, one at a time.
    grads: dict[Value, float] = {root: 1.0}
    steps: list[BackwardStep] = []
    for node, g, shares in walk(order, grads, lambda node, g: local_grads(node, g)):
        local = local_grads(node, 1.0)
        # What backward() adds is the rule applied to the real upstream gradient; every rule is
        # linear in g, so this equals upstream * local up to rounding, and keeps totals exact.
        for position, parent in enumerate(node.parents):
            share = shares[position]
            first = parent not in grads
            total = share if first else grads[parent] + share
            grads[parent] = total
            uses[parent] -= 1
            steps.append(
                BackwardStep(
                    index=len(steps),
                    node=node,
                    input=parent,
                    position=position,
                    op=node.op,
                    upstream=float(g),
                    local=local[position],
                    contribution=share,
                    total=float(total),
                    first=first,
                    final=uses[parent] == 0,
                    node_name=name(node),
                    input_name=name(parent),
                )
            )
    return steps


def number(x: float) -> str:
    """Short, honest numbers: 6 significant digits, floats keep a '.0' (1.0, -3.0, 2.5e-07)."""
    text = f"{x:.6g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


def _expression(step: BackwardStep, names: list[str]) -> str:
    """`c = a * b` for an infix op of two inputs, `c = tanh(a)` or `s = sum(a, b, c, ...)` else."""
    if len(names) == 2 and is_infix(step.op):
        return f"{step.node_name} = {names[0]} {symbol(step.op)} {names[1]}"
    shown = names if len(names) <= 4 else names[:3] + ["..."]
    return f"{step.node_name} = {step.op}({', '.join(shown)})"


_STDOUT = object()


def explain(
    root: Value,
    *,
    file: TextIO | None = _STDOUT,  # type: ignore[assignment]
    model=None,
    params=None,
    max_steps: int | None = None,
) -> str | None:
    """Print the backward pass from `root` as chain-rule lines (see the module docstring).

    Each line reads `dL/da += dL/dc * ∂c/∂a = upstream * local = contribution`: the gradient of
    the output with respect to the node (upstream, d) times the local derivative of the node's
    op with respect to this input (∂, one op only, holding its other inputs fixed), with labels as
    names where Values have them and stable names n0, n1, ... (the ones `to_dot(show=("name",))`
    draws) where they don't. A later line for the same input says its running total; "final"
    marks its last contribution. Prints to stdout, or to `file`; with `file=None` nothing is
    printed and the text is returned. `max_steps` cuts long passes short (and says so).
    """
    steps = backward_steps(root, model=model, params=params)
    header, lines = explanation(root, steps)
    shown = lines if max_steps is None else lines[:max_steps]
    lines = [header, *shown]
    if len(shown) < len(steps):
        lines.append(f"... {len(steps) - len(shown)} more steps (pass max_steps=None to see all)")
    text = "\n".join(lines) + "\n"
    if file is None:
        return text
    stream = sys.stdout if file is _STDOUT else file
    try:
        stream.write(text)
    except UnicodeEncodeError:  # a stream that cannot encode ∂ (cp1252 on Windows, say)
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
    return None


def explanation(root: Value, steps: list[BackwardStep]) -> tuple[str, list[str]]:
    """A header line and one line per step (what `explain` prints, and the HTML export shows)."""
    header, parts = explanation_parts(root, steps)
    return header, explanation_lines(parts)


def explanation_lines(parts: list[tuple[str, str]]) -> list[str]:
    """`k. expression   share` for each step, the expressions padded to line the shares up."""
    pad = min(max((len(e) for e, _ in parts), default=0), 32)
    width = len(str(len(parts)))
    return [
        f"{k:>{width}}. {expression:<{pad}}   {share}"
        for k, (expression, share) in enumerate(parts, start=1)
    ]


def explanation_parts(root: Value, steps: list[BackwardStep]) -> tuple[str, list[tuple[str, str]]]:
    """The header, and for each step its node's expression (`c = a * b`) and its share
    (`dL/da += dL/dc * ∂c/∂a = 1.0 * -3.0 = -3.0   (final)`)."""
    root_name = root.label or "L"
    if not root.label:  # an unnamed output is called L, as in dL/dw
        steps = [_rename(s, root, root_name) for s in steps]
    header = (
        f"Backward pass from {root_name} ({_stable(steps)}): "
        f"{len(steps)} step{'' if len(steps) == 1 else 's'}, "
        f"starting from d{root_name}/d{root_name} = 1.0 (∂: one op's local derivative)"
    )
    arg_names: dict[Value, list[str]] = {}
    for step in steps:
        arg_names.setdefault(step.node, []).append(step.input_name)
    d = f"d{root_name}/d"
    parts = []
    for step in steps:
        share = (
            f"{d}{step.input_name} += {d}{step.node_name} * ∂{step.node_name}/∂{step.input_name}"
            f" = {number(step.upstream)} * {number(step.local)} = {number(step.contribution)}"
        )
        if not step.first and step.final:
            share += f"   (now {number(step.total)}, final)"
        elif not step.first:
            share += f"   (now {number(step.total)})"
        elif step.final and not step.input.parents:
            share += "   (final)"
        parts.append((_expression(step, arg_names[step.node]), share))
    return header, parts


def _stable(steps: list[BackwardStep]) -> str:
    # The output comes last in the topological order, so its stable name is n<count - 1>; every
    # other node feeds some node, so it is the input of some step.
    return f"n{len({s.input for s in steps})}"


def _rename(step: BackwardStep, root: Value, name: str) -> BackwardStep:
    if step.node is not root:
        return step
    from dataclasses import replace

    return replace(step, node_name=name)
