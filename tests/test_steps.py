"""Tests of the step-through of backprop: `backward_steps` agrees with `backward()`, each local
derivative is the op's derivative, reuse shows as several contributions, `explain` reads right."""

from __future__ import annotations

import inspect
import io
import math
import random

import pytest

import autodiff
from autodiff import Value, backward_steps, explain
from autodiff.ops import PRIMITIVES, apply
from examples import micrograd_readme_example


def micrograd_readme_expression():
    return micrograd_readme_example()[-1]


def neuron():
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    return (x1 * w1 + x2 * w2 + b).tanh()


def random_expression(seed: int) -> Value:
    """Random expressions with heavy reuse: every new node picks earlier nodes at random."""
    rng = random.Random(seed)
    pool = [Value(rng.uniform(0.5, 1.5), label=f"x{i}") for i in range(4)]
    for _ in range(25):
        x, y = rng.choice(pool), rng.choice(pool)
        kind = rng.randrange(7)
        if kind == 0:
            z = x + y
        elif kind == 1:
            z = x * y
        elif kind == 2:
            z = (x - y).tanh()
        elif kind == 3:
            z = autodiff.sum([x, y, x])
        elif kind == 4:
            z = autodiff.dot([x, y], [y, x]).sigmoid()
        elif kind == 5:
            z = (x * 0.3).exp() / (1 + y * y)
        else:
            z = autodiff.logsumexp([x, y * 2.0, x * y])
        pool.append(z)
    return autodiff.sum(pool[-5:]) + pool[-1] * pool[-2]


EXPRESSIONS = {
    "a + a": lambda: (lambda a: a + a)(Value(3.0, label="a")),
    "a * a * a": lambda: (lambda a: a * a * a)(Value(-1.5, label="a")),
    "micrograd README": micrograd_readme_expression,
    "tanh neuron": neuron,
    **{f"random {s}": (lambda s=s: random_expression(s)) for s in range(5)},
}


def leaves_of(root):
    return [v for v in autodiff.topological_order(root) if not v.parents]


@pytest.mark.parametrize("build", EXPRESSIONS.values(), ids=EXPRESSIONS.keys())
def test_contributions_into_each_leaf_sum_to_its_grad(build):
    root = build()
    steps = backward_steps(root)
    assert all(v.grad == 0.0 for v in autodiff.topological_order(root))  # nothing was written
    root.backward()
    for leaf in leaves_of(root):
        mine = [s for s in steps if s.input is leaf]
        assert mine, "every leaf gets at least one contribution"
        assert mine[-1].final and not any(s.final for s in mine[:-1])
        assert mine[-1].total == leaf.grad  # the same sums in the same order: exactly equal
        assert math.fsum(s.contribution for s in mine) == pytest.approx(leaf.grad, rel=1e-12)
        assert mine[0].first and not any(s.first for s in mine[1:])


@pytest.mark.parametrize("build", EXPRESSIONS.values(), ids=EXPRESSIONS.keys())
def test_each_step_is_upstream_times_local_and_upstream_is_the_node_grad(build):
    root = build()
    root.backward()
    steps = backward_steps(root)
    for step in steps:
        assert step.upstream == step.node.grad  # interior grads are this pass's gradient
        assert step.contribution == pytest.approx(step.upstream * step.local, rel=1e-12, abs=1e-300)
    # running totals: each step adds its contribution to the previous total of that input
    totals = {}
    for step in steps:
        expected = (
            step.contribution
            if step.input not in totals
            else totals[step.input] + step.contribution
        )
        assert step.total == expected
        totals[step.input] = step.total


def test_a_plus_a_shows_two_contributions_adding_up():
    a = Value(3.0, label="a")
    b = a + a
    steps = backward_steps(b)
    assert [(s.input, s.local, s.contribution, s.total) for s in steps] == [
        (a, 1.0, 1.0, 1.0),
        (a, 1.0, 1.0, 2.0),
    ]
    assert [s.position for s in steps] == [0, 1]
    assert [s.first for s in steps] == [True, False] and [s.final for s in steps] == [False, True]


def test_steps_run_from_the_output_back():
    root = micrograd_readme_expression()
    order = autodiff.topological_order(root)
    position = {v: i for i, v in enumerate(order)}
    steps = backward_steps(root)
    nodes = [s.node for s in steps]
    assert nodes[0] is root
    assert all(position[x] >= position[y] for x, y in zip(nodes, nodes[1:]))
    # a node passes its gradient back only once all its users have passed theirs to it
    for i, step in enumerate(steps):
        assert all(later.input is not step.node for later in steps[i:])


def arity(prim) -> int:
    params = list(inspect.signature(prim.vjp).parameters.values())[2:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 4
    return len(params)


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_local_derivative_is_the_ops_partial_derivative(name):
    prim = PRIMITIVES[name]
    n = arity(prim)
    point = [0.7, 1.3, 0.4, 0.9][:n]
    inputs = [Value(x) for x in point]
    out = apply(prim, *inputs)
    steps = backward_steps(out)
    assert len(steps) == n
    h = 1e-6

    def at(position: int, d: float) -> float:
        return prim.forward(*[x + d if i == position else x for i, x in enumerate(point)])

    for step in steps:
        numeric = (at(step.position, h) - at(step.position, -h)) / (2 * h)
        assert step.local == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, step.position)


def test_names_are_labels_parameter_names_or_stable_names():
    w = Value(0.5)
    x = Value(2.0, label="x")
    y = (w * x).tanh()
    steps = backward_steps(y, params={"layers.0.w.0": w})
    names = {s.input_name for s in steps}
    assert {"layers.0.w.0", "x", "n2"} == names
    assert steps[0].node_name == "n3"
    with pytest.raises(TypeError, match="Value"):
        backward_steps(1.0)


# ---- explain ------------------------------------------------------------------------------------


def test_explain_writes_the_chain_rule_with_numbers():
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = c + a  # a reaches L twice: directly and through c
    text = explain(L, file=None)
    # dL/dc = 1 and dc/da = b = -3, so this step adds -3 to dL/da (worked out by hand)
    assert "dL/da += dL/dc * ∂c/∂a = 1.0 * -3.0 = -3.0" in text
    assert "dL/db += dL/dc * ∂c/∂b = 1.0 * 2.0 = 2.0" in text
    # the direct use adds 1, so a's final gradient is -2
    assert "(now -2.0, final)" in text
    assert text.startswith("Backward pass from L")
    assert len(text.strip().splitlines()) == 1 + len(backward_steps(L))


def test_explain_uses_the_outputs_label_and_prints_to_a_file(capsys):
    x = Value(0.5, label="x")
    y = x.tanh()
    y.label = "y"
    assert explain(y) is None
    printed = capsys.readouterr().out
    assert "dy/dx += dy/dy * ∂y/∂x = 1.0 * " in printed
    assert "from y (n1): 1 step, starting" in printed
    buffer = io.StringIO()
    explain(y, file=buffer)
    assert buffer.getvalue() == printed == explain(y, file=None)


@pytest.mark.parametrize("build", EXPRESSIONS.values(), ids=EXPRESSIONS.keys())
def test_explain_writes_the_local_factor_so_that_it_cannot_be_read_as_the_total(build):
    # `dL/dd += dL/dL * dL/dd` reads as circular: the local factor is the op's partial
    # derivative, written with ∂, and the totals (upstream and the input's) with d.
    root = build()
    header, *lines = explain(root, file=None).splitlines()
    assert f"(n{len(autodiff.topological_order(root)) - 1})" in header  # the output's name
    assert len(lines) == len(backward_steps(root))
    for line, step in zip(lines, backward_steps(root)):
        node, x = step.node_name if step.node is not root else "L", step.input_name
        if step.node is root and root.label:
            node = root.label
        out = root.label or "L"
        assert f"d{out}/d{x} += d{out}/d{node} * ∂{node}/∂{x} = " in line, line
        assert f"d{node}/d{x}" not in line.split("+=")[1], line  # no local factor as a total


def test_explain_prints_to_a_stream_that_cannot_encode_the_partial_sign():
    x = Value(0.5, label="x")
    y = x.tanh()
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252")  # a redirected stdout on Windows
    explain(y, file=stream)
    stream.flush()
    assert "dL/dx += dL/dL * \\u2202L/\\u2202x = 1.0 * " in raw.getvalue().decode("cp1252")


def test_explain_can_be_cut_short():
    root = micrograd_readme_expression()
    text = explain(root, file=None, max_steps=5)
    total = len(backward_steps(root))
    assert len(text.strip().splitlines()) == 1 + 5 + 1
    assert f"{total - 5} more steps" in text
