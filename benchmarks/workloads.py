"""The workloads W1-W5, each written once and run on whichever engine the worker was given.

A workload returns a dict that the worker prints as JSON: `times` (lists of seconds, one entry
per repetition), `check` (numbers every engine must agree on: losses, gradients) and anything
else the report shows. The one idea to understand: W1-W4 are written against the plain scalar
API (`*`, `+`, `.relu()`, `.backward()`), so micrograd, chainrule and PyTorch execute the same
Python code and build the same graph; only `chainrule-nn` and the n-ary sum use chainrule's own
API, and `benchmarks.floor` redoes W1 and W3 on plain floats by hand.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

from benchmarks import problems
from benchmarks.engines import Engine
from benchmarks.problems import ALPHA, CHAIN_SCALE, CHAIN_SHIFT, Config

#: CPU time of this worker process. Every engine here computes on one thread (torch is set to
#: one), and CPU time does not count the moments the process waits for a core, so other work on
#: a shared machine inflates one engine's numbers much less than wall-clock time would.
clock = time.process_time
#: Wall-clock time, for W5, whose SVG rendering runs in a child process (Graphviz's dot).
wall_clock = time.perf_counter


# ---- W1: micrograd's demo step ------------------------------------------------------------------


def demo_params(engine: Engine, weights) -> list:
    """The demo MLP as nested lists of leaves: `layers[layer][neuron]` = weights + [bias]."""
    return [[[engine.leaf(w) for w in neuron] for neuron in layer] for layer in weights]


def demo_model(layers: list, x: list):
    """micrograd's MLP: each neuron is `sum(w_i * x_i, b)`, ReLU on all but the last layer."""
    for depth, layer in enumerate(layers):
        hidden = depth < len(layers) - 1
        outputs = []
        for *w, b in layer:
            act = sum((wi * xi for wi, xi in zip(w, x)), b)
            outputs.append(act.relu() if hidden else act)
        x = outputs
    return x[0]


def demo_loss(engine: Engine, layers: list, params: list, X, y):
    """The demo's loss, as its author wrote it: mean hinge loss plus ALPHA times the L2 norm."""
    inputs = [[engine.leaf(v, requires_grad=False) for v in row] for row in X]
    scores = [demo_model(layers, x) for x in inputs]
    losses = [(1 + -yi * score).relu() for yi, score in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in params)
    return data_loss + reg_loss


def nn_model(weights):
    """`nn.MLP(2, [16, 16, 1])` with the benchmark's starting weights loaded."""
    import nn

    model = nn.MLP(problems.SIZES[0], list(problems.SIZES[1:]), seed=0)
    params = model.parameters()
    assert len(params) == len(problems.flat(weights)), "nn.MLP has an unexpected layout"
    for p, w in zip(params, problems.flat(weights)):
        p.data = w
    return model


def nn_loss(model, X, y):
    """The same loss through `nn`: one dot node per neuron, hinge and l2_penalty from nn.losses."""
    from nn.losses import hinge, l2_penalty

    scores = [model(x) for x in X]
    return hinge(scores, y) + l2_penalty(model, ALPHA)


def w1(engine: Engine, cfg: Config, variant: str) -> dict:
    """Forward, backward and SGD update of the demo, timed separately, step after step."""
    X, y = problems.moons(cfg.points)
    weights = problems.initial_weights()
    if variant == "chainrule-nn":
        model = nn_model(weights)
        params = model.parameters()

        def forward():
            return nn_loss(model, X, y)
    else:
        layers = demo_params(engine, weights)
        params = [p for layer in layers for neuron in layer for p in neuron]

        def forward():
            return demo_loss(engine, layers, params, X, y)

    repeats = cfg.repeats("w1", variant)
    times: dict[str, list[float]] = {"forward": [], "backward": [], "update": []}
    losses, grads, nodes = [], None, None
    loss = None
    for step in range(repeats + 1):  # step 0 is a warm-up, and the one whose gradients we check
        t0 = clock()
        loss = forward()  # rebinding frees the previous step's graph: part of the cost
        t1 = clock()
        engine.backward(loss)
        t2 = clock()
        if step == 0:
            grads = [engine.grad(p) for p in params]
            nodes = engine.count_nodes(loss)
        losses.append(engine.data(loss))
        t3 = clock()
        engine.sgd_step(params, problems.learning_rate(step))
        t4 = clock()
        if step > 0:
            times["forward"].append(t1 - t0)
            times["backward"].append(t2 - t1)
            times["update"].append(t4 - t3)
    return {"times": times, "nodes": nodes, "params": len(params),
            "check": {"losses": losses, "grads": grads}}


# ---- W2: the deep chain -------------------------------------------------------------------------


def chain(engine: Engine, n: int) -> tuple[dict, dict]:
    """`x = x * 0.999 + 0.001`, n times, then backward: times and the numbers to check."""
    x0 = engine.leaf(0.5)
    x = x0
    t0 = clock()
    for _ in range(n):
        x = x * CHAIN_SCALE + CHAIN_SHIFT
    t1 = clock()
    engine.backward(x)
    t2 = clock()
    check = {"value": engine.data(x), "grad": engine.grad(x0)}
    t3 = clock()
    del x  # dropping a deep graph must not recurse either; time it, as a user pays it too
    t4 = clock()
    return {"forward": t1 - t0, "backward": t2 - t1, "free": t4 - t3}, check


def w2_probe(engine: Engine, n: int) -> dict:
    """Does a chain of n steps work under the default recursion limit? (one n per process)"""
    try:
        times, check = chain(engine, n)
    except RecursionError as error:
        return {"n": n, "ok": False, "error": f"RecursionError: {error}"}
    return {"n": n, "ok": True, "times": {k: [v] for k, v in times.items()}, "check": check,
            "recursion_limit": sys.getrecursionlimit()}


def w2(engine: Engine, cfg: Config, name: str) -> dict:
    """Time per node of a chain of cfg.chain_n steps (2 nodes per step: a mul and an add)."""
    n = cfg.chain_n
    raised = False
    if name == "micrograd":
        # micrograd's topological sort recurses once per node: raise the limit so it can run.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * n + 1000))
        raised = True
    times: dict[str, list[float]] = {"forward": [], "backward": [], "free": []}
    check = None
    for _ in range(cfg.repeats("w2", name)):
        t, check = chain(engine, n)
        for key, value in t.items():
            times[key].append(value)
    return {"n": n, "ops": 2 * n, "times": times, "check": check, "limit_raised": raised}


# ---- W3: the wide graph -------------------------------------------------------------------------


def w3(engine: Engine, cfg: Config, variant: str) -> dict:
    """n products a_i * b_i, added pairwise (or by one n-ary sum), then backward."""
    n = cfg.wide_n
    a_values, b_values = problems.wide_inputs(n)
    if variant == "chainrule-sum":
        import autodiff

        def total(products):
            return autodiff.sum(products)

        ops = n + 1
    else:
        total = problems.pairwise_sum
        ops = 2 * n - 1
    times: dict[str, list[float]] = {"forward": [], "backward": []}
    check = None
    for _ in range(cfg.repeats("w3", variant)):
        a = [engine.leaf(v) for v in a_values]
        b = [engine.leaf(v) for v in b_values]
        t0 = clock()
        root = total([x * y for x, y in zip(a, b)])
        t1 = clock()
        engine.backward(root)
        t2 = clock()
        times["forward"].append(t1 - t0)
        times["backward"].append(t2 - t1)
        check = {"value": engine.data(root),
                 "grads": [engine.grad(v) for v in problems.sample(a) + problems.sample(b)]}
        del root, a, b
    return {"n": n, "ops": ops, "times": times, "check": check}


# ---- W4: memory ---------------------------------------------------------------------------------


def rss_bytes() -> int:
    """This process's resident memory, from /proc (Linux); 0 where that is not available."""
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _wide_graph(engine: Engine, n: int):
    a_values, b_values = problems.wide_inputs(n)
    a = [engine.leaf(v) for v in a_values]
    b = [engine.leaf(v) for v in b_values]
    root = problems.pairwise_sum([x * y for x, y in zip(a, b)])
    engine.backward(root)
    return root, a, b


def w4(engine: Engine, cfg: Config, name: str) -> dict:
    """Bytes per node of the W3 graph after backward, and what the cyclic GC finds once dropped.

    Nodes are counted the same way for every engine: 2n leaves, n products, n - 1 sums.
    RSS is measured first, in a fresh process; then tracemalloc, which sees only memory that
    went through Python's allocator (PyTorch's tensors live mostly outside it).
    """
    n = cfg.wide_n
    nodes = 4 * n - 1
    gc.collect()
    rss0 = rss_bytes()
    graph = _wide_graph(engine, n)
    rss1 = rss_bytes()
    del graph
    gc.collect()

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    graph = _wide_graph(engine, n)
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    # Drop the graph with the collector off, then let one collection count what is left.
    gc.disable()
    try:
        del graph
        left = gc.collect()
    finally:
        gc.enable()
    return {"n": n, "nodes": nodes, "bytes_tracemalloc": traced / nodes,
            "bytes_rss": (rss1 - rss0) / nodes, "gc_objects": left}


# ---- W5: drawing --------------------------------------------------------------------------------

#: Longest wait for Graphviz to lay out one drawing; past it the cell says "> 120 s".
SVG_TIMEOUT = 120.0


def render_svg(dot_text: str, timeout: float = SVG_TIMEOUT) -> float | None:
    """Seconds Graphviz's `dot -Tsvg` takes on `dot_text` (what `draw_dot(...).pipe()` runs),
    or None when it does not finish within `timeout`."""
    import subprocess

    t0 = wall_clock()
    try:
        subprocess.run(["dot", "-Tsvg"], input=dot_text.encode(), stdout=subprocess.DEVNULL,
                       check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return wall_clock() - t0


def w5(engine: Engine, cfg: Config, name: str) -> dict:
    """Time to write DOT text and to render it as SVG, for demo graphs of growing size.

    For each size: `to_dot(root, max_nodes=None)` (every node), `to_dot(root)` (the default,
    which summarises graphs past its node limit), and Graphviz's SVG rendering of the default
    text (skipped in a quick run, given up after SVG_TIMEOUT seconds, and not tried again for
    the bigger graphs once it timed out).
    """
    import shutil

    import autodiff

    weights = problems.initial_weights()
    try_svg = shutil.which("dot") is not None and not cfg.quick
    rows = []
    for points in cfg.draw_sizes:
        X, y = problems.moons(points)
        layers = demo_params(engine, weights)
        params = [p for layer in layers for neuron in layer for p in neuron]
        loss = demo_loss(engine, layers, params, X, y)
        loss.backward()
        row = {"points": points, "nodes": len(autodiff.topological_order(loss))}
        t0 = wall_clock()
        full = autodiff.to_dot(loss, max_nodes=None)
        t1 = wall_clock()
        default = autodiff.to_dot(loss)
        t2 = wall_clock()
        row.update(dot_full=t1 - t0, dot_default=t2 - t1,
                   lines_full=full.count("\n"), lines_default=default.count("\n"))
        if try_svg:
            row["svg_default"] = render_svg(default)
            row["svg_timeout"] = SVG_TIMEOUT
            # A bigger graph's drawing is no smaller: once one times out, stop waiting.
            try_svg = row["svg_default"] is not None
        rows.append(row)
    return {"rows": rows}


# ---- compiled: W1-W3 through autodiff.compile ---------------------------------------------------
# The same problems traced once and run as generated straight-line Python. The first call (trace,
# code generation, CPython's compile()) is timed apart as the one-time "compile" cost, and so is
# the first reuse, which autodiff.compile checks against eager execution once by default.


def _compile_costs(t0: float, t1: float, t2: float, step) -> dict:
    source = step.source
    return {"compile": t1 - t0, "first_check": t2 - t1, "lines": source.count("\n"),
            "source_bytes": len(source)}


def w1_compiled(engine: Engine, cfg: Config) -> dict:
    """The chainrule-nn step with nn.compile_loss: one call gives the loss and every p.grad."""
    import nn

    X, y = problems.moons(cfg.points)
    model = nn_model(problems.initial_weights())
    params = model.parameters()
    step = nn.compile_loss(model, nn.losses.hinge,
                           penalty=lambda m: nn.losses.l2_penalty(m, ALPHA))
    repeats = cfg.repeats("w1", "chainrule-nn")
    times: dict[str, list[float]] = {"forward": [], "backward": [], "update": []}
    losses, grads, costs = [], None, {}
    for k in range(repeats + 2):  # call 0 traces and compiles, call 1 is checked once
        for p in params:
            p.grad = 0.0
        t0 = clock()
        loss = step.backward(X, y)
        t1 = clock()
        if k == 0:
            grads = [p.grad for p in params]
            costs["compile"] = t1 - t0
        elif k == 1:
            costs["first_check"] = t1 - t0
        losses.append(loss)
        t2 = clock()
        engine.sgd_step(params, problems.learning_rate(k))
        t3 = clock()
        if k > 1:
            times["forward"].append(t1 - t0)
            times["backward"].append(0.0)
            times["update"].append(t3 - t2)
    trace = step.compiled.traces[0]
    return {"times": times, "fused": True, "params": len(params),
            "nodes": None, "operations": trace.operations, "lines": trace.source.count("\n"),
            **costs, "check": {"losses": losses, "grads": grads}}


def w2_compiled(engine: Engine, cfg: Config) -> dict:
    """The deep chain as one compiled function of x0 (no graph limit)."""
    import autodiff

    n = cfg.chain_n

    def chain_fn(x):
        for _ in range(n):
            x = x * CHAIN_SCALE + CHAIN_SHIFT
        return x

    t0 = clock()
    step = autodiff.compile(chain_fn, max_nodes=None)
    value, (grad,) = step(0.5)
    t1 = clock()
    step(0.5)
    t2 = clock()
    times: dict[str, list[float]] = {"forward": [], "backward": [], "free": []}
    for _ in range(cfg.repeats("w2", "chainrule")):
        t3 = clock()
        value, (grad,) = step(0.5)
        t4 = clock()
        times["forward"].append(t4 - t3)  # forward and backward are one call
        times["backward"].append(0.0)
        times["free"].append(0.0)
    return {"n": n, "ops": 2 * n, "times": times, "fused": True,
            **_compile_costs(t0, t1, t2, step), "check": {"value": value, "grad": grad}}


def w3_compiled(engine: Engine, cfg: Config) -> dict:
    """The wide graph as one compiled function of the two factor lists (no graph limit)."""
    import autodiff

    n = cfg.wide_n
    a_values, b_values = problems.wide_inputs(n)

    def wide(a, b):
        return problems.pairwise_sum([x * y for x, y in zip(a, b)])

    t0 = clock()
    step = autodiff.compile(wide, max_nodes=None)
    step(a_values, b_values)
    t1 = clock()
    step(a_values, b_values)
    t2 = clock()
    times: dict[str, list[float]] = {"forward": [], "backward": []}
    check = None
    for _ in range(cfg.repeats("w3", "chainrule")):
        t3 = clock()
        value, (grad_a, grad_b) = step(a_values, b_values)
        t4 = clock()
        times["forward"].append(t4 - t3)
        times["backward"].append(0.0)
        check = {"value": value, "grads": problems.sample(grad_a) + problems.sample(grad_b)}
    return {"n": n, "ops": 2 * n - 1, "times": times, "fused": True,
            **_compile_costs(t0, t1, t2, step), "check": check}
