"""The backward pass: reuse, repeated backward, depth, higher order, grad(), no_grad, memory."""

import gc
import math
import threading

import pytest

import autodiff
from autodiff import Value, grad, no_grad, topological_order
from examples import micrograd_readme_example


def test_micrograd_readme_example():
    a, b, g = micrograd_readme_example()
    g.backward()
    assert f"{g.data:.4f}" == "24.7041"
    assert f"{a.grad:.4f}" == "138.8338"
    assert f"{b.grad:.4f}" == "645.5773"


def test_single_tanh_neuron_from_the_lecture():
    x1, x2 = Value(2.0), Value(0.0)
    w1, w2 = Value(-3.0), Value(1.0)
    b = Value(6.8813735870195432)
    n = x1 * w1 + x2 * w2 + b
    o = n.tanh()
    o.backward()
    assert o.data == pytest.approx(math.sqrt(0.5))
    assert x1.grad == pytest.approx(-1.5)
    assert w1.grad == pytest.approx(1.0)
    assert x2.grad == pytest.approx(0.5)
    assert w2.grad == 0.0
    assert n.grad == pytest.approx(0.5)


def test_reuse_adds_contributions():
    a = Value(3.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0

    a = Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 2.0, 1.0)

    a = Value(3.0)
    (a * a * a).backward()
    assert a.grad == 27.0


def test_second_backward_accumulates_leaves_and_resets_interior():
    a, b, d = Value(1.0), Value(2.0), Value(5.0)
    s = a + b
    e = s * d
    e.backward()
    e.backward()
    assert a.grad == 2 * d.data
    assert b.grad == 2 * d.data
    assert d.grad == 2 * s.data
    assert s.grad == d.data  # interior: the gradient from this pass, not the sum of two
    assert e.grad == 1.0


def test_backward_from_an_intermediate_node_after_another_backward():
    a = Value(2.0)
    b = a * 3
    c = b * b
    c.backward()
    assert b.grad == 12.0
    b.backward()  # b's own backward: d b / d b = 1, nothing stale from c's pass
    assert b.grad == 1.0
    assert a.grad == 36.0 + 3.0


def test_backward_of_a_leaf():
    a = Value(2.0)
    a.backward()
    a.backward()
    assert a.grad == 2.0


def test_topological_order_puts_parents_first_and_root_last():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    order = topological_order(d)
    assert order[-1] is d
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[parent] < position[node]
    assert len(order) == len(set(order)) == 4


# A deep chain (no recursion anywhere, under a recursion limit barely above the test's own depth)
# is tests/test_performance_properties.py::test_deep_chain_needs_no_recursion.


def test_builtin_sum_of_many_values():
    xs = [Value(float(i)) for i in range(100_000)]
    total = sum(xs)
    total.backward()
    assert total.data == sum(range(100_000))
    assert all(x.grad == 1.0 for x in xs[::997])


def test_create_graph_makes_gradients_values():
    x = Value(3.0)
    y = x**3
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert x.grad.data == 27.0
    dx = x.grad
    x.grad = 0.0
    dx.backward()
    assert x.grad == 18.0  # d2/dx2 x^3 = 6x


def test_grad_returns_derivative_functions():
    assert grad(lambda x: x**3)(2.0) == 12.0
    assert grad(grad(lambda x: x**3))(2.0) == 12.0
    assert grad(grad(grad(lambda x: x**3)))(2.0) == 6.0
    assert isinstance(grad(autodiff.sin)(0.0), float)
    f = lambda x, y: x * y + y.exp()  # noqa: E731
    assert grad(f, argnums=1)(2.0, 0.0) == pytest.approx(3.0)
    assert grad(f, argnums=(0, 1))(2.0, 0.0) == pytest.approx((0.0, 3.0))


def test_grad_accepts_values_and_returns_values():
    x = Value(2.0)
    d = grad(lambda t: t**3)(x)
    assert isinstance(d, Value) and d.data == 12.0
    d.backward()
    assert x.grad == 12.0  # d/dx 3x^2


def test_grad_does_not_touch_grad_attributes():
    w = Value(4.0)
    assert grad(lambda x: x * w)(3.0) == 4.0
    assert w.grad == 0.0


def test_nested_grad_has_no_perturbation_confusion():
    # d/dx [ x * (d/dy x*y) ] = d/dx [x * x] = 2x, whatever the inner variable's value
    assert grad(lambda x: x * grad(lambda y: x * y)(x))(3.0) == 6.0
    assert grad(lambda x: x * grad(lambda y: x * y)(2.0))(3.0) == 6.0
    assert grad(lambda x: grad(lambda y: x * y)(5.0))(3.0) == 1.0


def test_grad_of_a_constant_function_is_zero():
    assert grad(lambda x: 3.0)(1.0) == 0.0
    assert grad(lambda x: Value(2.0) * 3)(1.0) == 0.0


def test_grad_rejects_non_scalar_output():
    with pytest.raises(TypeError, match="f must return a Value or a number, got list"):
        grad(lambda x: [x])(1.0)


def test_no_grad_builds_no_graph():
    w = Value(2.0)
    with no_grad():
        assert not autodiff.is_grad_enabled()
        y = w * 3 + 1
    assert autodiff.is_grad_enabled()
    assert y.parents == () and y.op == "" and y.data == 7.0
    z = w * 3
    assert z.parents != ()


def test_no_grad_as_decorator_and_nested():
    @no_grad()
    def f(v):
        return v * 2

    assert f(Value(1.0)).parents == ()
    with no_grad():
        with no_grad():
            pass
        assert not autodiff.is_grad_enabled()
    assert autodiff.is_grad_enabled()


def test_no_grad_is_per_thread():
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def worker():
        with no_grad():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen["main"] = (Value(1.0) * 2).parents != ()
    release.set()
    t.join()
    assert seen["main"] is True


def test_detach_is_a_constant_leaf():
    a = Value(2.0, label="a")
    b = (a * 3).detach()
    assert b.parents == () and b.data == 6.0
    (b * a).backward()
    assert a.grad == 6.0 and b.grad == 2.0


def test_dropped_graph_is_freed_without_the_cyclic_gc():
    gc.collect()
    gc.disable()
    try:
        x = Value(1.0)
        y = x
        for _ in range(100):
            y = (y * 0.5 + 1).tanh()
        y.backward()
        assert len(topological_order(y)) > 300
        del y, x
        assert gc.collect() == 0, "dropping the graph left reference cycles for the collector"
    finally:
        gc.enable()


def test_local_grads_replays_backward_bit_for_bit():
    # The shared contract: nodes in reversed(topological_order(root)); each node's shares go to
    # its parents in argument order; a first share initialises, later ones are added with `+`.
    # local_grads is the very step backward() takes, so replaying it gives the same floats.
    from test_performance_properties import every_primitive_graph

    for seed in range(3):
        root, leaves = every_primitive_graph(seed)
        root.backward()
        replayed = {root: 1.0}
        for node in reversed(topological_order(root)):
            if node.parents:
                for parent, share in zip(node.parents, autodiff.local_grads(node, replayed[node])):
                    replayed[parent] = share if parent not in replayed else replayed[parent] + share
        assert [replayed.get(x, 0.0) for x in leaves] == [x.grad for x in leaves]
        for node in topological_order(root):
            assert replayed[node] == node.grad


def test_one_loop_serves_every_route():
    # backward(), backward(create_graph=True), gradients() and grad() give the same floats
    from test_performance_properties import every_primitive_graph

    root, leaves = every_primitive_graph(11)
    root.backward()
    by_backward = [x.grad for x in leaves]
    by_gradients = autodiff.gradients(root, leaves)
    for x in leaves:
        x.grad = 0.0
    root.backward(create_graph=True)
    by_create_graph = [x.grad.data for x in leaves]
    assert by_backward == by_gradients == by_create_graph


def test_grad_under_no_grad_still_differentiates():
    with no_grad():
        assert grad(lambda x: x * x)(3.0) == 6.0
        assert grad(grad(lambda x: x**3))(2.0) == 12.0


def test_the_core_modules_import_each_other_in_one_direction_only():
    # Every import counts, also one inside a function: modes and primitive at the bottom, then
    # anomaly, engine, value, ops, functional, gradcheck.
    import ast
    from pathlib import Path

    core = Path(autodiff.__file__).parent
    names = {p.stem for p in core.glob("*.py")} - {"__init__"}
    imports = {}
    for name in names:
        tree = ast.parse((core / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] == "autodiff" and len(parts) > 1:
                    found.add(parts[1])
                elif node.module == "autodiff":
                    found |= {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names
                          if a.name.startswith("autodiff.")}
        imports[name] = found & names

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for other in imports[todo.pop()]:
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    assert not [name for name in names if name in reachable(name)], imports
    assert imports["modes"] == imports["primitive"] == set()
    assert "value" not in imports["engine"] and "ops" not in imports["value"]


def test_the_walk_is_the_backward_pass_its_users_sum():
    # engine.walk yields each interior node once, from the output back, with its complete
    # gradient and the shares of its rule; summing the shares as backward_pass does gives
    # backward()'s gradients.
    from autodiff.engine import float_step, walk

    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    out = (c + a).tanh()
    order = topological_order(out)
    grads = {out: 1.0}
    seen = []
    for node, g, shares in walk(order, grads, float_step):
        seen.append(node)
        assert g == grads[node]
        assert len(shares) == len(node.parents)
        for parent, share in zip(node.parents, shares):
            grads[parent] = grads.get(parent, 0.0) + share
    assert seen == [n for n in reversed(order) if n.parents]
    out.backward()
    assert (grads[a], grads[b]) == (a.grad, b.grad)
