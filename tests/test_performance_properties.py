"""The properties the engine's speed rests on, checked without a single timing assertion.

Speed itself is measured by `python -m benchmarks`, outside the test run. What is tested here is
what makes it possible and must not quietly regress: a dropped graph is freed by reference
counting alone (nothing for the cyclic garbage collector), a node is two objects the collector
tracks (the Value and its tuple of parents), nothing recurses, every route through the one
backward loop gives the same numbers, a neuron is a handful of nodes however wide it is, and the
benchmark suite runs.
"""

import gc
import math
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import autodiff
from autodiff import Value, gradients, grad, topological_order

ROOT = Path(__file__).resolve().parent.parent


def count_values() -> int:
    return sum(type(o) is Value for o in gc.get_objects())


def every_primitive_graph(seed: int = 0):
    """A random graph that uses every primitive of the op table, with reuse and constants."""
    rng = random.Random(seed)
    leaves = [Value(rng.uniform(0.5, 1.5), label=f"x{i}") for i in range(4)]
    pool = list(leaves)
    for prim in autodiff.PRIMITIVES.values():
        args = [rng.choice(pool) for _ in range(2)]
        if prim.name == "pow":
            out = autodiff.ops.apply(prim, args[0], 2.0)
        elif prim.name == "dot":
            out = autodiff.dot(args, [rng.choice(pool), 0.5])
        elif prim.name == "sum":
            out = autodiff.sum(args + [1.5])
        elif prim.name == "logsumexp":
            out = autodiff.logsumexp(args + [0.5])
        elif prim.name == "log" or prim.name == "sqrt":
            out = autodiff.ops.apply(prim, args[0] * args[0] + 1.0)
        elif prim.name in ("reciprocal", "log1p"):
            out = autodiff.ops.apply(prim, args[0] + 2.0)
        elif prim.name == "div":
            out = autodiff.ops.apply(prim, args[0], args[1] + 2.0)
        elif prim.name == "clamp":
            out = autodiff.ops.apply(prim, args[0], 0.8, args[1])
        else:
            arity = 2 if prim.name in ("add", "mul", "maximum", "minimum") else 1
            out = autodiff.ops.apply(prim, *args[:arity])
        pool.append(out)
    root = autodiff.sum(pool[len(leaves):]) * pool[-1]
    return root, leaves


# ---- no reference cycles: the cyclic GC never has anything to do -------------------------------


def _mlp_loss():
    rng = random.Random(1)
    w1 = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(4)]
    w2 = [Value(rng.uniform(-1, 1)) for _ in range(4)]
    x = [0.5, -1.0, 2.0]
    hidden = [autodiff.dot(row, x).tanh() for row in w1]
    score = sum((w * h for w, h in zip(w2, hidden)), Value(0.0))
    return (1 - score).relu() + 1e-3 * autodiff.dot(w2, w2)


GRAPHS = {
    "every primitive": lambda: every_primitive_graph()[0],
    "mlp": _mlp_loss,
    "grad(grad(f))": lambda: grad(grad(lambda t: t.tanh() * t))(Value(0.3)),
}


@pytest.mark.parametrize("build", GRAPHS.values(), ids=GRAPHS.keys())
def test_a_dropped_graph_is_freed_by_reference_counting_alone(build):
    gc.collect()
    gc.disable()  # nothing may be freed by a collection we did not ask for
    try:
        before = count_values()
        root = build()
        if root.grad == 0.0:
            root.backward()
        assert count_values() > before
        del root
        assert count_values() == before, "Values outlived their graph"
        assert gc.collect() == 0, "the graph left reference cycles for the cyclic GC"
    finally:
        gc.enable()


def test_create_graph_ties_nodes_to_their_gradients_until_grads_are_cleared():
    # backward(create_graph=True) stores in each node's .grad a Value computed from that node:
    # a cycle, as in PyTorch (which warns about it). grad() builds the same gradient graph
    # without storing it, so it has none; clearing .grad, as zero_grad() does, breaks the cycle.
    gc.collect()
    gc.disable()
    try:
        before = count_values()
        x = Value(0.7)
        y = (x.sin() * x.exp() + x**3).sigmoid()
        y.backward(create_graph=True)
        assert isinstance(x.grad, Value)
        for node in topological_order(y):
            node.grad = 0.0
        del x, y, node
        assert count_values() == before
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_dropped_nn_model_graph_leaves_no_cycles():
    nn = pytest.importorskip("nn")
    model = nn.MLP(2, [8, 8, 1], seed=0)
    gc.collect()
    gc.disable()
    try:
        before = count_values()
        loss = nn.losses.hinge([model([0.5, -0.2]), model([-1.0, 0.3])], [1, -1])
        loss.backward()
        del loss
        assert count_values() == before
        assert gc.collect() == 0
    finally:
        gc.enable()


# ---- size of a node ----------------------------------------------------------------------------


def test_a_node_is_two_objects_for_the_garbage_collector():
    # The collector's passes cost time per tracked object, and they run while a graph grows:
    # a node is its Value and its tuple of parents, and must bring nothing else along (no
    # closure, no dict, no list).
    a, b = Value(1.5), Value(-2.0)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        nodes = [a * b for _ in range(1000)] + [(a * b).relu() for _ in range(1000)]
        added = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert len(nodes) == 2000
    assert 6000 <= added < 6100, f"{added} tracked objects for 3000 nodes"


def test_values_have_slots_and_no_dict():
    v = Value(1.0) * 2
    assert not hasattr(v, "__dict__")
    with pytest.raises(AttributeError):
        v.colour = "red"


def test_memory_per_node_stays_under_240_bytes():
    # A product node: the Value (72 bytes), its parents tuple (56), its number and its gradient
    # (24 each), and its share of the sum node's tuple of inputs.
    n = 5_000
    a = [Value(float(i)) for i in range(n)]
    b = [Value(1.0 / (i + 1)) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        root = autodiff.sum([x * y for x, y in zip(a, b)])
        root.backward()  # gradients are part of a node's cost
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    nodes = n + 1  # the products and the sum; the leaves existed before
    assert used / nodes < 240, f"{used / nodes:.0f} bytes per node"


# ---- nothing recurses ---------------------------------------------------------------------------


def test_deep_chain_needs_no_recursion(monkeypatch):
    n = 50_000
    x = Value(0.5)
    y = x
    for _ in range(n):
        y = y * 0.999 + 0.001
    # A limit barely above the current depth: any recursion per node would fail at once.
    frame, depth = sys._getframe(), 0
    while frame:
        frame, depth = frame.f_back, depth + 1
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)  # restored after
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)
    try:
        order = topological_order(y)
        y.backward()
        (dx,) = gradients(y, [x])
        del y  # freeing a deep graph must not recurse either
    finally:
        sys.setrecursionlimit(old)
    assert len(order) == 4 * n + 1  # per step: a constant, a product, a constant, a sum
    assert x.grad == dx == pytest.approx(0.999**n, rel=1e-9)


def test_deep_chain_with_create_graph():
    x = Value(0.5)
    y = x
    for _ in range(5_000):
        y = (y * 0.9).sin()
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert len(topological_order(x.grad)) > 10_000


# ---- backward() and gradients() run the same loop, so they give the same numbers --------------


@pytest.mark.parametrize("seed", range(5))
def test_float_backward_gives_the_reference_numbers(seed):
    root, leaves = every_primitive_graph(seed)
    reference = gradients(root, leaves)  # the same loop, no .grad touched
    root.backward()
    assert [x.grad for x in leaves] == reference  # bit for bit: same rules, same order
    for node in topological_order(root)[-6:]:  # interior nodes: d root / d node
        if not node.is_leaf:
            assert node.grad == gradients(root, [node])[0]


def test_float_backward_accumulates_leaves_and_resets_interior():
    root, leaves = every_primitive_graph(7)
    root.backward()
    first = [x.grad for x in leaves]
    interior = [n for n in topological_order(root) if not n.is_leaf]
    interior_grads = [n.grad for n in interior]
    root.backward()
    assert [x.grad for x in leaves] == pytest.approx([2 * g for g in first], rel=1e-12)
    assert [n.grad for n in interior] == interior_grads


def test_float_backward_through_wide_nodes_and_shared_inputs():
    xs = [Value(float(i) + 0.5) for i in range(300)]
    total = autodiff.sum([x * x for x in xs]) + autodiff.dot(xs, xs[::-1]) + xs[0] * xs[0]
    total.backward()
    for i in (0, 1, 150, 299):
        expected = 2 * xs[i].data + 2 * xs[299 - i].data + (2 * xs[0].data if i == 0 else 0.0)
        assert xs[i].grad == pytest.approx(expected)
    assert math.isfinite(total.grad) and total.grad == 1.0


# ---- nn: a neuron is a handful of nodes, however many inputs it has -----------------------------


@pytest.mark.parametrize("activation, expected_max", [("relu", 3), ("linear", 2)])
def test_a_neuron_is_a_few_nodes_whatever_its_width(activation, expected_max):
    nn = pytest.importorskip("nn")
    counts = []
    for nin in (1, 4, 64):
        neuron = nn.Neuron(nin, activation, seed=0)
        x = [Value(0.1 * (i + 1)) for i in range(nin)]
        out = neuron(x)
        interior = [n for n in topological_order(out) if not n.is_leaf]
        counts.append(len(interior))
        widest = max(len(n.parents) for n in interior)
        assert widest >= 2 * nin, "weights and inputs should meet in one n-ary node"
    assert counts[0] == counts[1] == counts[2] <= expected_max, counts


# ---- the benchmark suite runs (quick mode) and its agreement check can fail ---------------------


def run_benchmarks(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", "--quick", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_benchmarks_quick_run_without_micrograd_or_torch():
    proc = run_benchmarks("--engines", "chainrule,chainrule-nn,chainrule-sum,floor")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for title in ("W1 demo step", "W2 deep chain", "W3 wide graph", "W4 memory", "W5 drawing"):
        assert title in out, f"{title} missing from:\n{out}"
    assert "agreement: every engine's losses and gradients match" in out
    w1 = out.split("W1 demo step")[1].split("\n\n")[0]
    for engine in ("chainrule-nn", "chainrule", "floor"):
        assert f"\n{engine} " in w1
    assert "micrograd" not in w1.split("\n", 2)[2]  # no row for an engine not asked for


def test_benchmarks_quick_run_against_micrograd():
    pytest.importorskip("micrograd", reason="micrograd comes with the bench extra: "
                        "pip install -e '.[bench]'")
    proc = run_benchmarks("--engines", "chainrule,chainrule-nn,micrograd,floor",
                          "--workloads", "w1,w2,w3,w4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\nmicrograd " in proc.stdout
    assert "RecursionError at 1,000" in proc.stdout  # micrograd's recursive sort at depth 1000+
    assert "agreement: every engine's losses and gradients match" in proc.stdout


def test_the_agreement_check_reports_a_wrong_gradient(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.runner import compare

    reference = {"losses": [1.0, 0.5], "grads": [0.25, -3.0, 0.0]}
    assert compare(reference, {"losses": [1.0, 0.5, 0.4], "grads": [0.25, -3.0, 1e-20]}) == []
    problems = compare(reference, {"losses": [1.0, 0.5], "grads": [0.25, -3.0000001, 0.0]})
    assert len(problems) == 1 and problems[0].startswith("grads[1]")
    assert compare(reference, {"losses": [1.1], "grads": [0.25, -3.0, 0.0]})
