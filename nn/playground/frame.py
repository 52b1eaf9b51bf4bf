"""The frame: everything the playground page draws of a session, as JSON-ready data.

A frame carries the numbers (losses, accuracy, the new history entries, gradient flow), the
points, and the pictures: the decision boundary over a raster of the plane and each neuron's
output as a small image, from one float forward pass of the grid. Pictures travel as one byte
per pixel in base64, so a 40 x 40 boundary and a dozen neurons stay a few kilobytes.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from autodiff import PRIMITIVES, Value
from nn.playground.settings import _lr_of
from nn.plots import _is_dead_relu, grad_flow_stats

__all__ = ["build_frame", "plane_extent", "forward_columns", "picture_boundary"]


def build_frame(session: Any, since: int = 0, run: int | None = None,
                grid: int = 40) -> dict[str, Any]:
    """Everything the page draws of `session`, as JSON-ready data (`Session.frame` calls this
    under the session's lock).

    `since` is how many history entries the caller already has from run `run`; only the
    newer ones are sent (all of them, with the points, when the run changed).
    """
    fresh = run != session.run
    since = 0 if fresh else max(0, min(int(since), len(session.history)))
    stats = _grad_flow(session.model, session.X_train)
    frame: dict[str, Any] = {
        "run": session.run,
        "version": session.version,
        "step_count": session.step_count,
        "settings": dict(session.settings),
        "lr": _lr_of(session.optimizer),
        "train_loss": _number(session.train_loss),
        "train_loss_repr": repr(session.train_loss),
        "test_loss": _number(session.test_loss),
        "test_loss_repr": repr(session.test_loss),
        "accuracy": session.accuracy,
        "gradient_free": session.last_step_gradient_free,
        "evaluations": session.evaluations,
        "gradients": session.gradients,
        "seconds": session.seconds,
        "compiled": session.compiled and session.compile_note is None,
        "compile_note": session.compile_note,
        "test_accuracy": session.test_accuracy,
        "history_start": since,
        "history": [{k: _number(v) for k, v in h.items()}
                    for h in session.history[since:]],
        "boundary": None,
        "network": None,
        "grad_flow": [{"name": s["name"], "mean": _number(s["mean"]),
                       "max": _number(s["max"]), "vanishing": s["vanishing"],
                       "dead": s["dead"], "no_grad": s["no_grad"]} for s in stats],
    }
    if fresh:
        frame["points"] = {
            "train": [[x[0], x[1], c] for x, c in zip(session.X_train, session.labels_train)],
            "test": [[x[0], x[1], c] for x, c in zip(session.X_test, session.labels_test)],
            "classes": session.classes,
            "extent": session._extent,
        }
    frame["boundary"], frame["network"] = _pictures(session.model, session._extent, grid, stats)
    return frame


def _grad_flow(model: Any, X: list[list[float]]) -> list[dict[str, Any]]:
    """`grad_flow_stats(model, X)`, its dead neurons found from the float forward of all the
    points at once (the same outputs, without a Value per point and neuron)."""
    stats = grad_flow_stats(model)
    columns = forward_columns(model, [[x[0] for x in X], [x[1] for x in X]])
    for layer_stats, layer, cols in zip(stats, model.layers, columns):
        layer_stats["dead"] = [f"{layer_stats['name']}.neurons.{j}"
                               for j, (neuron, out) in enumerate(zip(layer.neurons, cols))
                               if _is_dead_relu(neuron, out)]
    return stats


def forward_columns(model: Any, columns: list[list[float]]) -> list[list[list[float]]]:
    """The model on many points at once, in plain floats: `columns` holds one list per input
    (all the points' x1, then all their x2), and the result one list of columns per layer
    (each neuron's output on every point).

    Each neuron computes b + w1 x1 + w2 x2 + ... in that order and applies its activation's
    own float forward: the very operations a Neuron performs under `no_grad()`, so the
    numbers are bit for bit those of `model(x)` there, at a fraction of the cost (no Value is
    made, and the loop over points is a list comprehension).
    """
    outputs = []
    h = columns
    for layer in model.layers:
        act = layer.activation
        kernel = _kernel(len(h))
        cols = [_activate(act, kernel(neuron.b.data, *[w.data for w in neuron.w], *h))
                for neuron in layer.neurons]
        outputs.append(cols)
        h = cols
    return outputs


_kernels: dict[int, Any] = {}


def _kernel(nin: int) -> Any:
    """A function of (b, w_1..w_n, column_1..column_n) giving b + w_1 x_1 + ... + w_n x_n for
    every point: one pass over the points, the additions in the Neuron's order (left to right,
    never `sum()`, whose float rounding differs between Python versions)."""
    kernel = _kernels.get(nin)
    if kernel is None:
        ws = ", ".join(f"w{i}" for i in range(nin))
        cs = ", ".join(f"c{i}" for i in range(nin))
        xs = "".join(f"x{i}, " for i in range(nin))
        terms = "".join(f" + w{i} * x{i}" for i in range(nin))
        source = (f"def kernel(b, {ws}, {cs}):\n"
                  f"    return [b{terms} for ({xs}) in zip({cs})]\n")
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<neuron kernel of {nin} inputs>", "exec"), namespace)
        kernel = _kernels[nin] = namespace["kernel"]
    return kernel


def _grid(extent: list[float], grid: int) -> tuple[list[float], list[float]]:
    x0, x1, y0, y1 = extent
    xs = [x0 + (x1 - x0) * (i + 0.5) / grid for i in range(grid)]
    ys = [y1 - (y1 - y0) * (j + 0.5) / grid for j in range(grid)]  # top row first
    return [x for _ in ys for x in xs], [y for y in ys for _ in xs]


def picture_boundary(model: Any, extent: list[float], grid: int = 40) -> dict[str, Any]:
    """The decision boundary alone (what a race's small multiples draw)."""
    return _boundary(grid, forward_columns(model, list(_grid(extent, grid)))[-1])


def _boundary(grid: int, h: list[list[float]]) -> dict[str, Any]:
    if len(h) == 1:
        return {"kind": "score", "grid": grid,
                "values": _bytes([math.tanh(v) if math.isfinite(v) else 0.0
                                  for v in h[0]], 1.0, True)}
    best, confidence = [], []
    for row in zip(*h):
        if not all(math.isfinite(v) for v in row):
            best.append(0)
            confidence.append(0.0)
            continue
        top = max(row)
        weights = [math.exp(v - top) for v in row]
        k = row.index(top)
        best.append(k)
        confidence.append(weights[k] / sum(weights))
    return {"kind": "classes", "grid": grid, "classes": len(h),
            "values": base64.b64encode(bytes(best)).decode("ascii"),
            "confidence": _bytes(confidence, 1.0, False)}


def _pictures(model: Any, extent: list[float], grid: int,
              stats: list[dict]) -> tuple[dict, dict]:
    """The decision boundary over a grid x grid raster of the plane `extent` and each neuron's
    output over a half-resolution raster, from one float forward pass of the grid."""
    col_x, col_y = _grid(extent, grid)
    thumb = [j * grid + i for j in range(0, grid, 2) for i in range(0, grid, 2)]
    dead = {name for s in stats for name in (s["dead"] or [])}
    layers_out = []
    inputs = [{"name": name, "picture": _bytes([c[k] for k in thumb], 1.0, True),
               "scale": 1.0} for name, c in (("x1", col_x), ("x2", col_y))]
    outputs = forward_columns(model, [col_x, col_y])
    for index, (layer, cols) in enumerate(zip(model.layers, outputs)):
        neurons = []
        for j, (neuron, out) in enumerate(zip(layer.neurons, cols)):
            name = f"layers.{index}.neurons.{j}"
            pic = [out[k] for k in thumb]
            scale = max((abs(v) for v in pic if math.isfinite(v)), default=0.0) or 1.0
            neurons.append({
                "name": name,
                "w": [_number(w.data) for w in neuron.w], "b": _number(neuron.b.data),
                "gw": [_number(_grad(w)) for w in neuron.w], "gb": _number(_grad(neuron.b)),
                "dead": name in dead, "activation": layer.activation,
                "picture": _bytes(pic, scale, True), "scale": scale,
            })
        layers_out.append({"name": f"layers.{index}", "neurons": neurons})
    return _boundary(grid, outputs[-1]), {"inputs": inputs, "layers": layers_out}


def plane_extent(X: list[list[float]]) -> list[float]:
    """The plane shown: the points' bounding box with a margin, as [x0, x1, y0, y1]."""
    lo = [min(p[k] for p in X) for k in (0, 1)]
    hi = [max(p[k] for p in X) for k in (0, 1)]
    pad = [0.15 * max(hi[k] - lo[k], 1e-6) for k in (0, 1)]
    return [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]]


def _activate(act: str, s: list[float]) -> list[float]:
    """The activations of nn.layers on a list of floats: each primitive's own float forward
    (relu's written out inline, as its forward is: 0.0 if x < 0 else x, so -0.0 and NaN pass)."""
    if act == "relu":
        return [0.0 if v < 0 else v for v in s]
    if act == "tanh":
        return [math.tanh(v) for v in s]
    if act == "sigmoid":
        forward = PRIMITIVES["sigmoid"].forward
        return [forward(v) for v in s]
    return s


def _bytes(values: list[float], scale: float, signed: bool) -> str:
    """Values quantised to one byte each (base64): v / scale in [-1, 1] (signed) or [0, 1]."""
    out = bytearray()
    for v in values:
        t = v / scale if math.isfinite(v) else 0.0
        t = max(-1.0, min(1.0, t))
        out.append(round(127.5 + 127.5 * t) if signed else round(255 * max(t, 0.0)))
    return base64.b64encode(bytes(out)).decode("ascii")


def _number(v: Any) -> Any:
    """JSON has no NaN or infinity: those become None (the *_repr fields keep the text)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _grad(p: Value) -> float:
    g = p.grad
    return g.data if isinstance(g, Value) else float(g)
