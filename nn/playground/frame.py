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

from autodiff import Value
from nn.playground.features import FEATURES, feature_columns, features_of
from nn.playground.settings import inactive_settings, lr_of
from nn.plots import grad_flow_stats

__all__ = ["build_frame", "plane_extent", "picture_boundary", "json_ready"]


def build_frame(session: Any, since: int = 0, run: int | None = None,
                grid: int = 40, thinned: int | None = None) -> dict[str, Any]:
    """Everything the page draws of `session`, as JSON-ready data (`Session.frame` calls this
    under the session's lock).

    `since` is how many history entries the caller already has from run `run`; only the
    newer ones are sent (all of them, with the points, when the run changed). `thinned` is the
    `history_thinned` the caller's copy was made at: when the session has thinned its history
    since, the whole history is sent again (`history_start` 0).
    """
    fresh = run != session.run
    stale = thinned is not None and thinned != session.history_thinned
    since = 0 if fresh or stale else max(0, min(int(since), len(session.history)))
    try:
        stats = grad_flow_stats(session.model, session.X_train)
    except ArithmeticError:  # diverged weights: report without the dead neurons
        stats = grad_flow_stats(session.model)
    frame: dict[str, Any] = {
        "run": session.run,
        "version": session.version,
        "step_count": session.step_count,
        "settings": dict(session.settings),
        "lr": lr_of(session.optimizer),
        "inactive": inactive_settings(session.settings),
        "train_loss": session.train_loss,
        "train_loss_repr": repr(session.train_loss),
        "test_loss": session.test_loss,
        "test_loss_repr": repr(session.test_loss),
        "accuracy": session.accuracy,
        "gradient_free": session.last_step_gradient_free,
        "last_step_loss": session.last_step_loss,
        "last_step_loss_repr": repr(session.last_step_loss),
        "diverged": _diverged(session),
        "marks": list(session.marks),
        "evaluations": session.evaluations,
        "gradients": session.gradients,
        "seconds": session.seconds,
        "compiled": session.compiled and session.compile_note is None,
        "compile_note": session.compile_note,
        "test_accuracy": session.test_accuracy,
        "history_start": since,
        "history_thinned": session.history_thinned,
        "history": [dict(h) for h in session.history[since:]],
        "boundary": None,
        "network": None,
        "grad_flow": [{"name": s["name"], "mean": s["mean"],
                       "max": s["max"], "vanishing": s["vanishing"],
                       "dead": s["dead"], "no_grad": s["no_grad"]} for s in stats],
    }
    if fresh:
        frame["points"] = {
            "train": [[x[0], x[1], c]
                      for x, c in zip(session.points_train, session.labels_train)],
            "test": [[x[0], x[1], c] for x, c in zip(session.points_test, session.labels_test)],
            "classes": session.classes,
            "extent": session.extent,
        }
    frame["boundary"], frame["network"] = _pictures(session.model, session.extent, grid, stats,
                                                    session.settings["features"])
    return json_ready(frame)


def _grid(extent: list[float], grid: int) -> list[tuple[float, float]]:
    """The centres of a grid x grid raster of the plane `extent`, row by row, top row first."""
    x0, x1, y0, y1 = extent
    xs = [x0 + (x1 - x0) * (i + 0.5) / grid for i in range(grid)]
    ys = [y1 - (y1 - y0) * (j + 0.5) / grid for j in range(grid)]
    return [(x, y) for y in ys for x in xs]


def _inputs(points: list[tuple[float, float]], features: list[str]) -> list:
    """What the network sees of each point: the point itself, or its input `features`."""
    if list(features) == ["x1", "x2"]:
        return points
    return [features_of(features, p) for p in points]


def picture_boundary(model: Any, extent: list[float], grid: int = 40,
                     features: list[str] = ("x1", "x2")) -> dict[str, Any]:
    """The decision boundary alone (what a race's small multiples draw), from the model's one
    float evaluation of the grid (its input `features`)."""
    return _boundary(grid, model.layer_outputs(_inputs(_grid(extent, grid), features))[-1])


def _boundary(grid: int, h: list[list[float]]) -> dict[str, Any]:
    """The boundary from the last layer's outputs over the grid: the score squashed to
    [-1, 1] for one output, the winning class and its softmax confidence for several."""
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


def _pictures(model: Any, extent: list[float], grid: int, stats: list[dict],
              features: list[str]) -> tuple[dict, dict]:
    """The decision boundary over a grid x grid raster of the plane `extent` and each neuron's
    (and input feature's) output over a half-resolution raster, from the model's one float
    evaluation of the grid's input `features` (`MLP.layer_outputs`): what is drawn is what the
    model computes."""
    points = _grid(extent, grid)
    thumb = [j * grid + i for j in range(0, grid, 2) for i in range(0, grid, 2)]
    dead = {name for s in stats for name in (s["dead"] or [])}
    inputs = []
    for name, column in zip(features, feature_columns(features, *zip(*points))):
        pic = [column[k] for k in thumb]
        scale = max((abs(v) for v in pic), default=0.0) or 1.0
        inputs.append({"name": name, "label": FEATURES[name][0],
                       "picture": _bytes(pic, scale, True), "scale": scale})
    outputs = model.layer_outputs(_inputs(points, features))
    layers_out = []
    for index, (layer, columns) in enumerate(zip(model.layers, outputs)):
        neurons = []
        for j, (neuron, out) in enumerate(zip(layer.neurons, columns)):
            name = f"layers.{index}.neurons.{j}"
            pic = [out[k] for k in thumb]
            scale = max((abs(v) for v in pic if math.isfinite(v)), default=0.0) or 1.0
            neurons.append({
                "name": name,
                "w": [w.data for w in neuron.w], "b": neuron.b.data,
                "gw": [_grad(w) for w in neuron.w], "gb": _grad(neuron.b),
                "dead": name in dead, "activation": neuron.activation,
                "picture": _bytes(pic, scale, True), "scale": scale,
            })
        layers_out.append({"name": f"layers.{index}", "neurons": neurons})
    h = outputs[-1]
    if len(h) > 1:
        # One output per class: each output neuron also shows where the network gives its
        # class the highest probability (softmax over the outputs), drawn in the class's colour.
        for k, neuron in enumerate(layers_out[-1]["neurons"]):
            neuron["probability"] = _bytes([_softmax_at(h, i, k) for i in thumb], 1.0, False)
    return _boundary(grid, h), {"inputs": inputs, "layers": layers_out}


def _softmax_at(h: list[list[float]], i: int, k: int) -> float:
    """softmax(scores at grid point i)[k], or 0 where a score is not finite."""
    row = [column[i] for column in h]
    if not all(math.isfinite(v) for v in row):
        return 0.0
    top = max(row)
    weights = [math.exp(v - top) for v in row]
    return weights[k] / sum(weights)


def _diverged(session: Any) -> str | None:
    """Why training cannot go on, for every panel of the page to say (None while it can)."""
    if session.diverged:
        return session.diverged
    if not math.isfinite(session.train_loss):
        return (f"training diverged: the training loss is {session.train_loss!r} after step "
                f"{session.step_count}; lower the learning rate and press Reset")
    return None


def plane_extent(X: list[list[float]]) -> list[float]:
    """The plane shown: the points' bounding box with a margin, as [x0, x1, y0, y1]."""
    lo = [min(p[k] for p in X) for k in (0, 1)]
    hi = [max(p[k] for p in X) for k in (0, 1)]
    pad = [0.15 * max(hi[k] - lo[k], 1e-6) for k in (0, 1)]
    return [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]]


def _bytes(values: list[float], scale: float, signed: bool) -> str:
    """Values quantised to one byte each (base64): v / scale in [-1, 1] (signed) or [0, 1].

    Written as one comprehension with the clamp inline (no min/max calls): a frame quantises
    a few thousand values, and this was a third of its cost."""
    finite = math.isfinite
    if signed:  # clamp to [-1, 1] (a NaN quotient counts as 1, as min(1.0, nan) does)
        ts = [v / scale if finite(v) else 0.0 for v in values]
        out = bytes([round(127.5 + 127.5 * (1.0 if not t <= 1.0 else -1.0 if t < -1.0 else t))
                     for t in ts])
    else:  # clamp to [0, 1]
        ts = [v / scale if finite(v) else 0.0 for v in values]
        out = bytes([round(255 * (1.0 if not t <= 1.0 else 0.0 if t < 0.0 else t))
                     for t in ts])
    return base64.b64encode(out).decode("ascii")


def json_ready(data: Any) -> Any:
    """`data` with every NaN and infinity as None: JSON has no such numbers (the *_repr fields
    of a frame keep their text). Dicts, lists and tuples are copied, anything else kept."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_ready(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_ready(v) for v in data]
    return data


def _grad(p: Value) -> float:
    g = p.grad
    return g.data if isinstance(g, Value) else float(g)
