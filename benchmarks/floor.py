"""The floor: W1 and W3 on plain floats, with the backward pass written out by hand.

No graph, no nodes, no dispatch: just the arithmetic an autograd engine has to do, in the same
order, as a Python programmer would write it for this one network. The one idea to understand:
this is how fast pure Python can possibly go on these problems, so "engine / floor" says what
the engine's bookkeeping costs. Like an engine, the floor does every multiplication of the chain
rule, also those by a zero gradient (a ReLU that is off, a point the hinge ignores); skipping
them would be a different, sparser algorithm, not the same math done faster.
"""

from __future__ import annotations

from benchmarks import problems
from benchmarks.problems import ALPHA, Config
from benchmarks.workloads import clock


def demo_step(weights: list, X: list, y: list) -> tuple[float, list]:
    """Loss and gradients of the demo for `weights[layer][neuron]` = weights + [bias]."""
    n_layers = len(weights)
    grads = [[[0.0] * len(neuron) for neuron in layer] for layer in weights]
    scale = 1.0 / len(X)
    data_loss = 0.0
    for x, label in zip(X, y):
        # Forward, keeping every layer's outputs for the backward pass.
        activations = [x]
        for depth, layer in enumerate(weights):
            hidden = depth < n_layers - 1
            out = []
            for neuron in layer:
                s = neuron[-1]
                for w, xi in zip(neuron, x):
                    s += w * xi
                out.append(s if not hidden or s > 0 else 0.0)
            activations.append(out)
            x = out
        margin = 1.0 - label * x[0]
        active = margin > 0  # the hinge relu(margin) passes a gradient only when on
        data_loss += margin if active else 0.0
        # Backward: d loss / d score, then layer by layer down to the first weights.
        g_out = [-label * scale * (1.0 if active else 0.0)]
        for depth in range(n_layers - 1, -1, -1):
            inputs, outputs = activations[depth], activations[depth + 1]
            hidden = depth < n_layers - 1
            g_in = [0.0] * len(inputs)
            for neuron, g_neuron, out, g in zip(weights[depth], grads[depth], outputs, g_out):
                if hidden:
                    g *= 1.0 if out > 0 else 0.0  # through the ReLU
                for i, xi in enumerate(inputs):
                    g_neuron[i] += g * xi
                    g_in[i] += g * neuron[i]
                g_neuron[-1] += g
            g_out = g_in
    reg = 0.0
    for layer, g_layer in zip(weights, grads):
        for neuron, g_neuron in zip(layer, g_layer):
            for i, w in enumerate(neuron):
                reg += w * w
                g_neuron[i] += 2.0 * ALPHA * w
    return data_loss * scale + ALPHA * reg, grads


def w1(cfg: Config) -> dict:
    X, y = problems.moons(cfg.points)
    weights = problems.initial_weights()
    times: dict[str, list[float]] = {"forward": [], "backward": [], "update": []}
    losses, first_grads = [], None
    for step in range(cfg.repeats("w1", "floor") + 1):
        t0 = clock()
        loss, grads = demo_step(weights, X, y)  # forward and backward are one loop here
        t1 = clock()
        if step == 0:
            first_grads = problems.flat(grads)
        losses.append(loss)
        lr = problems.learning_rate(step)
        t2 = clock()
        for layer, g_layer in zip(weights, grads):
            for neuron, g_neuron in zip(layer, g_layer):
                for i, g in enumerate(g_neuron):
                    neuron[i] -= lr * g
        t3 = clock()
        if step > 0:
            times["forward"].append(t1 - t0)  # forward + backward, fused
            times["backward"].append(0.0)
            times["update"].append(t3 - t2)
    return {"times": times, "fused": True, "params": len(first_grads),
            "check": {"losses": losses, "grads": first_grads}}


def w3(cfg: Config) -> dict:
    """The wide graph on floats: products, the pairwise tree kept level by level, backward."""
    n = cfg.wide_n
    a, b = problems.wide_inputs(n)
    times: dict[str, list[float]] = {"forward": [], "backward": []}
    check = None
    for _ in range(cfg.repeats("w3", "floor")):
        t0 = clock()
        levels = [[x * y for x, y in zip(a, b)]]
        while len(levels[-1]) > 1:
            level = levels[-1]
            pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                pairs.append(level[-1])
            levels.append(pairs)
        t1 = clock()
        # Backward: every sum passes its gradient to both addends, level by level down.
        g = [1.0]
        for level in reversed(levels[:-1]):
            g = [g[i // 2] for i in range(len(level))]
        grad_a = [gi * y for gi, y in zip(g, b)]
        grad_b = [gi * x for gi, x in zip(g, a)]
        t2 = clock()
        times["forward"].append(t1 - t0)
        times["backward"].append(t2 - t1)
        check = {"value": levels[-1][0],
                 "grads": problems.sample(grad_a) + problems.sample(grad_b)}
    return {"n": n, "ops": 2 * n - 1, "times": times, "check": check}
