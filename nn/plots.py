"""Charts of a model: where it draws its decision boundary, how training went, how gradients flow.

Each `plot_*` function returns a matplotlib `Figure` (which Jupyter shows inline, with no
`%matplotlib` magic and no pyplot figure) and, given a `path`, also saves it there;
`plot_decision_boundary` and `plot_grad_flow` also draw into an Axes of yours (`ax=`), to put
several models side by side. matplotlib is imported inside the functions, so `import nn` stays
light. The one idea to understand is in `plot_grad_flow`: after
`loss.backward()` every weight holds a gradient, and their sizes per layer tell you whether
learning reaches the early layers (gradients that shrink layer after layer "vanish") and
whether some ReLU neurons have died.

    fig = plot_decision_boundary(model, X, y, path="boundary.png")
    fig = plot_history({"loss": losses, "accuracy": accuracies}, path="curves.png")
    fig = plot_grad_flow(model, path="grad_flow.png", X=X)   # right after loss.backward()

Two ways a neuron can stop learning are counted. A ReLU neuron is *dead* when its output is 0
on every point of the batch (its input sum is <= 0 everywhere, so ReLU passes no gradient back);
telling that needs the batch, so pass `X=` to see it. Any neuron has *no gradient* when its
weights and bias all received exactly zero gradient in the last backward pass, which needs
nothing but the model: a dead ReLU is one cause, a hinge loss that is already zero on every
point the neuron responds to is another. (An L2 penalty in the loss gives every weight a
gradient, dead or not: then only the dead count tells.)
"""

from __future__ import annotations

import functools
import io
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from numbers import Real

from autodiff import Value, no_grad
from nn._checks import check_int, check_non_negative, check_number, grad_of
from nn.layers import MLP, Layer, Neuron
from nn.module import Module

__all__ = ["plot_decision_boundary", "plot_history", "plot_grad_flow", "grad_flow_stats"]

# Colours: class 0 (or -1) blue, class 1 (or +1) red; more classes take the tab10 cycle.
_NEG, _POS = "#2166ac", "#b2182b"
_TAB10 = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


# ---- decision boundary ---------------------------------------------------------------------------


def plot_decision_boundary(
    model: Module,
    X: Sequence[Sequence[float]],
    y: Sequence[int],
    path: str | os.PathLike | None = None,
    *,
    threshold: float = 0.0,
    margin: float | None = None,
    resolution: int | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Colour the plane by the model's prediction and draw the 2-D points on top.

    A model with one output predicts the positive class where its score is above `threshold`
    (0 for raw scores, 0.5 for probabilities); the colour gets deeper with the score's distance
    from it, and the boundary itself is a black line. `margin` (e.g. 1.0 for the hinge loss)
    also draws the dashed lines score = threshold +- margin. A model with several outputs
    predicts the class with the largest score. Labels may be 0/1, -1/+1 or class indices;
    misclassified points are circled in black. `resolution` is the number of grid points
    along each axis (default 100). The colours come from the model itself, called on every
    grid point under `no_grad()` (MLP(2, [16, 16, 1]): about 0.4 s for the 10,000 points of
    the default grid), so what you see is exactly what `model(x)` computes. Returns the Figure.
    """
    import numpy as np

    who = "plot_decision_boundary"
    if resolution is None:
        resolution = 100
    check_int(who, "resolution", resolution, 2)
    threshold = check_number(who, "threshold", threshold, finite=True)
    if margin is not None:
        margin = check_number(who, "margin", margin, finite=True)
        if margin <= 0:
            raise ValueError(f"{who}: invalid margin={margin!r}, it must be > 0 (or None)")
    _check_title(who, title)

    if not callable(model):
        raise TypeError(f"{who}: model must be a Module (or any function of a point), "
                        f"got {type(model).__name__}")
    points = _points(who, X)
    labels = list(y)
    if not points or len(points) != len(labels):
        raise ValueError(f"plot_decision_boundary: needs equally many points and labels, got "
                         f"{len(points)} and {len(labels)}")
    if any(len(p) != 2 for p in points):
        raise ValueError("plot_decision_boundary: needs 2-D points (lists of two numbers)")
    for i, label in enumerate(labels):
        check_int(who, f"y[{i}]", label, -1)  # -1/+1, 0/1 or a class index
    pts = np.array(points)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.15 * np.maximum(hi - lo, 1e-9)
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(gx, gy)
    grid = _predict(model, np.column_stack([xx.ravel(), yy.ravel()]))
    at_points = _predict(model, pts)

    fig, ax = _figure_and_axes(ax, (6.4, 5.6))
    binary = grid.shape[1] == 1
    if binary:
        scores = grid[:, 0].reshape(xx.shape)
        span = max(2.0 * (margin or 1.0), 1e-9)
        shade = np.clip(scores - threshold, -span, span)
        ax.contourf(xx, yy, shade, levels=np.linspace(-span, span, 21), cmap="RdBu_r",
                    alpha=0.45, antialiased=True)
        ax.contour(xx, yy, scores, levels=[threshold], colors="black", linewidths=1.6)
        if margin:
            ax.contour(xx, yy, scores, levels=[threshold - margin, threshold + margin],
                       colors="black", linewidths=0.9, linestyles="dashed", alpha=0.6)
        predicted = at_points[:, 0] > threshold
        truth = np.array([t > 0 for t in labels])
        colours = [_POS if t else _NEG for t in truth]
        negative_name = "-1" if min(labels) < 0 else "0"
        legend = [(_NEG, f"class {negative_name}"), (_POS, "class 1" if min(labels) == 0
                                                    else "class +1")]
    else:
        from matplotlib.colors import ListedColormap

        k = grid.shape[1]
        classes = grid.argmax(axis=1).reshape(xx.shape)
        palette = [_TAB10[i % len(_TAB10)] for i in range(k)]
        ax.contourf(xx, yy, classes, levels=np.arange(k + 1) - 0.5,
                    cmap=ListedColormap(palette), alpha=0.3)
        ax.contour(xx, yy, classes, levels=np.arange(k) + 0.5, colors="black", linewidths=1.0)
        predicted = at_points.argmax(axis=1)
        truth = np.array(labels)
        colours = [palette[int(t) % k] for t in truth]
        legend = [(palette[i], f"class {i}") for i in range(k)]
    wrong = predicted != truth
    ax.scatter(pts[:, 0], pts[:, 1], c=colours, s=36, edgecolors="white", linewidths=0.8,
               zorder=3)
    if wrong.any():
        ax.scatter(pts[wrong, 0], pts[wrong, 1], s=130, facecolors="none", edgecolors="black",
                   linewidths=1.6, zorder=4)
    for colour, name in legend:
        ax.scatter([], [], c=colour, s=36, edgecolors="white", label=name)
    if wrong.any():
        ax.scatter([], [], s=90, facecolors="none", edgecolors="black", label="misclassified")
    ax.plot([], [], color="black", linewidth=1.6, label="decision boundary")
    if binary and margin:
        ax.plot([], [], color="black", linewidth=0.9, linestyle="dashed", alpha=0.6,
                label=f"margin (score = {threshold - margin:g}, {threshold + margin:g})")
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    right = int((~wrong).sum())
    ax.set_title(title or f"Decision boundary: {right}/{len(labels)} points right "
                          f"({100 * right / len(labels):.0f}%)")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    return _finish(fig, path)


def _predict(model: Module, points: Any) -> Any:
    """The model's outputs for an (n, d) array of points as an (n, outputs) array.

    An MLP, Layer or Neuron gives them by its one float evaluation (`layer_outputs`); any other
    model is called on each point under `no_grad()`. Never a copy of the maths: a copy would
    silently draw another model for any activation or layer it does not know.
    """
    import numpy as np

    if type(model) in (MLP, Layer, Neuron):  # the model's own float evaluation, many points at once
        return np.array(model.layer_outputs(points.tolist())[-1], dtype=float).T.reshape(
            len(points), -1)
    rows = []
    with no_grad():
        for p in points.tolist():
            out = model(p)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            if not outs or not all(isinstance(o, (Value, Real)) and not isinstance(o, bool)
                                   for o in outs):
                raise TypeError("plot_decision_boundary: the model must return a Value, a "
                                f"number or a list of them, got {type(out).__name__}: {out!r}")
            rows.append([float(o) for o in outs])  # a Value converts to its data
    if len({len(row) for row in rows}) > 1:
        raise ValueError("plot_decision_boundary: the model returned different numbers of "
                         "outputs for different points")
    return np.array(rows, dtype=float)


# ---- training curves -----------------------------------------------------------------------------


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike | None = None,
    *,
    loss_label: str = "loss",
    title: str | None = None,
) -> Any:
    """Loss (and accuracy, and learning rate, when present) against the training step.

    `history` maps "loss" to one number per step; "accuracy" (fractions in [0, 1]) and "lr" are
    optional; `loss_label` names the loss. The loss uses a log scale when it spans more than a
    factor of 20, so the slow late progress stays visible. Returns the Figure.
    """
    who = "plot_history"
    if not isinstance(history, Mapping):
        raise TypeError(f"{who}: history must be a dict of lists, got {type(history).__name__}")
    if "loss" not in history or not len(history["loss"]):
        raise ValueError("plot_history: history needs a non-empty 'loss' list")
    loss, accuracy, lr = (
        [check_number(who, f"history[{key!r}][{i}]", v) for i, v in
         enumerate(history.get(key, []))] for key in ("loss", "accuracy", "lr"))
    _check_title(who, loss_label, "loss_label", optional=False)
    _check_title(who, title)
    steps = list(range(len(loss)))
    panels = 2 if accuracy else 1
    fig, _ = _figure_and_axes(None, (5.2 * panels + 0.6, 4.0), panels=panels)
    ax_loss = fig.axes[0]
    ax_loss.plot(steps, loss, color="#b2182b", linewidth=1.8, label=loss_label)
    positive = [v for v in loss if v > 0]
    if positive and len(positive) == len(loss) and max(positive) / min(positive) > 20:
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel(loss_label)
    ax_loss.set_title(f"Loss: {loss[0]:.4g} at the start, {loss[-1]:.4g} at the end")
    ax_loss.grid(True, which="major", alpha=0.3)
    handles, names = ax_loss.get_legend_handles_labels()
    if lr:
        ax_lr = ax_loss.twinx()
        ax_lr.plot(range(len(lr)), lr, color="#555555", linestyle="dashed", linewidth=1.2,
                   label="learning rate")
        ax_lr.set_ylabel("learning rate", color="#555555")
        ax_lr.set_ylim(0, max(lr) * 1.1 if max(lr) > 0 else 1)
        more_handles, more_names = ax_lr.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    ax_loss.legend(handles, names, loc="upper right", fontsize=8)
    if accuracy:
        ax_acc = fig.axes[1]
        percent = [100 * a for a in accuracy]
        ax_acc.plot(range(len(percent)), percent, color="#2166ac", linewidth=1.8)
        ax_acc.axhline(100, color="black", linewidth=0.8, linestyle="dotted")
        ax_acc.set_ylim(min(min(percent), 50) - 2, 102)
        ax_acc.set_xlabel("step")
        ax_acc.set_ylabel("training accuracy (%)")
        best = max(percent)
        first = percent.index(best)
        ax_acc.set_title(f"Accuracy: {percent[-1]:.0f}% at the end")
        ax_acc.plot([first], [best], marker="o", color="#2166ac", markersize=7)
        ax_acc.annotate(f"{best:.0f}% first reached at step {first}", xy=(first, best),
                        xytext=(0, -18), textcoords="offset points", ha="left", va="top",
                        fontsize=9, color="#333333")
        ax_acc.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# ---- gradient flow -------------------------------------------------------------------------------


def grad_flow_stats(model: Module, X: Sequence[Sequence[float]] | None = None,
                    vanish_ratio: float = 1e-3) -> list[dict[str, Any]]:
    """Per layer: the gradient sizes of its weights, and which neurons learn nothing.

    Returns one dict per layer, in order, with
      "name", "neurons" (how many), "mean" and "max" of |grad| over the layer's weights
      (biases excluded);
      "vanishing": true when the layer's mean |grad| is zero or below `vanish_ratio` times the
      largest layer mean in the model;
      "no_grad": neurons whose weights and bias all got exactly zero gradient in the last
      backward pass (they learn nothing from that step, whatever the reason);
      "dead": given the batch `X` of that pass (MLP, Layer or Neuron only), the ReLU neurons
      whose output is 0 on every point of it; None without `X`.
    """
    vanish_ratio = check_non_negative("grad_flow_stats", "vanish_ratio", vanish_ratio)
    if not isinstance(model, Module):
        raise TypeError(f"grad_flow_stats: model must be an nn Module, "
                        f"got {type(model).__name__}")
    groups = _layer_groups(model)
    outputs = _layer_outputs(model, X) if X is not None else None
    stats = []
    for index, (name, neurons) in enumerate(groups):
        prefix = f"{name}.neurons" if name else "neurons"
        grads = [abs(grad_of(w, "grad_flow_stats")) for n in neurons for w in n.w]
        no_grad_names = [f"{prefix}.{i}" for i, n in enumerate(neurons)
                         if all(grad_of(p, "grad_flow_stats") == 0.0 for p in [*n.w, n.b])]
        dead = None
        if outputs is not None:
            dead = [f"{prefix}.{i}" for i, n in enumerate(neurons)
                    if _is_dead_relu(n, outputs[index][i])]
        stats.append({"name": name or type(model).__name__, "neurons": len(neurons),
                      "mean": sum(grads) / len(grads), "max": max(grads),
                      "no_grad": no_grad_names, "dead": dead})
    top = max(s["mean"] for s in stats)
    for s in stats:
        s["vanishing"] = top > 0 and (s["mean"] == 0 or s["mean"] < vanish_ratio * top)
    return stats


def plot_grad_flow(
    model: Module,
    path: str | os.PathLike | None = None,
    *,
    X: Sequence[Sequence[float]] | None = None,
    vanish_ratio: float = 1e-3,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Bars of mean and max |grad| of each layer's weights, on a log axis, after a backward pass.

    Call it right after `loss.backward()` (before `zero_grad()`), and pass the batch `X` of
    that forward pass to have dead ReLU neurons counted (see `grad_flow_stats`). Above each
    layer it writes how many neurons are dead and how many others got no gradient at all;
    layers whose gradients vanish are marked in red. Given `ax`, it draws into that matplotlib Axes,
    so several models can sit side by side; with `sharey=True` the shared log axis is widened
    to fit every panel's bars. Returns the Figure.

        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
        for ax, (name, model) in zip(axes, models.items()):
            plot_grad_flow(model, X=X, title=name, ax=ax)
    """
    import numpy as np

    _check_title("plot_grad_flow", title)
    stats = grad_flow_stats(model, X, vanish_ratio)
    given = ax is not None
    # A panel already on a log scale shares its y axis with one drawn before: keep that range.
    earlier = ax.get_ylim() if given and _shares_log_y(ax) else None
    fig, ax = _figure_and_axes(ax, (min(12.0, max(6.4, 1.0 * len(stats) + 3.0)), 4.8))
    width_in = ax.get_position().width * fig.get_figwidth() if given else fig.get_figwidth()
    means = np.array([s["mean"] for s in stats])
    maxes = np.array([s["max"] for s in stats])
    positive = [v for v in [*means, *maxes] if v > 0]
    if not positive:
        ax.text(0.5, 0.5, "every gradient is zero:\ncall loss.backward() before plotting",
                ha="center", va="center", transform=ax.transAxes, fontsize=11)
        ax.set_xticks([])
        if not earlier:
            ax.set_yticks([])
        ax.set_title(title or "Gradient flow")
        return _finish(fig, path)
    floor = min(positive) / 10  # where a zero gradient is drawn on the log axis
    x = np.arange(len(stats))
    width = 0.38
    ax.bar(x - width / 2, np.maximum(means, floor), width, color="#2166ac", label="mean |grad|")
    ax.bar(x + width / 2, np.maximum(maxes, floor), width, color="#92c5de", label="max |grad|")
    ax.set_yscale("log")
    low, high = floor / 2, max(positive) * 60
    if earlier:
        low, high = min(low, earlier[0]), max(high, earlier[1])
    ax.set_ylim(low, high)
    # Narrow slots (a deep model, or a panel among several): shorter labels and notes.
    tight = width_in / len(stats) < 0.8
    names = [s["name"] for s in stats]
    prefix = os.path.commonprefix(names) if tight and len(names) > 1 else ""
    prefix = prefix[: prefix.rfind(".") + 1]  # "layers." of layers.0, layers.1, ...
    ax.set_xticks(x)
    if prefix:
        ax.set_xticklabels([f"{s['name'][len(prefix):]}\n({s['neurons']})" for s in stats],
                           fontsize=8)
        ax.set_xlabel(f"{prefix}N  (neurons)", fontsize=8)
    else:
        ax.set_xticklabels([f"{s['name']}\n{s['neurons']} neuron"
                            f"{'s' if s['neurons'] != 1 else ''}" for s in stats], fontsize=8)
    for i, s in enumerate(stats):
        dead = s["dead"] or []
        others = [name for name in s["no_grad"] if name not in dead]
        of = "" if tight else f"/{s['neurons']}"
        notes = []
        if dead:  # a dead neuron gets no gradient (unless an L2 term gives it some): say it once
            notes.append(f"{len(dead)}{of} dead")
        if others:
            notes.append(f"{len(others)} more no grad" if dead else f"{len(others)}{of} no grad")
        if s["vanishing"]:
            notes.append("vanishing")
            ax.get_xticklabels()[i].set_color("#d62728")
        if notes:
            ax.text(i, max(s["max"], floor) * 1.8, "\n".join(notes), ha="center",
                    va="bottom", color="#d62728", fontsize=7 if tight else 8)
    spec = ax.get_subplotspec() if given else None
    if not (earlier and spec is not None and not spec.is_first_col()):  # once per shared row
        ax.set_ylabel("|d loss / d weight|  (log scale)")
    verdict = textwrap.fill(_grad_flow_verdict(model, stats, X), width=int(width_in * 11))
    ax.set_title(f"{title or 'Gradient flow through the layers (weights only)'}\n{verdict}",
                 fontsize=10)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _finish(fig, path)


def _grad_flow_verdict(model: Module, stats: list[dict[str, Any]],
                       X: Sequence[Sequence[float]] | None) -> str:
    """The line under the title: dead ReLUs (when the model has ReLUs and X was given), any
    other neurons that got no gradient, and where the gradient vanishes."""
    parts = []
    relus = sum(n.activation == "relu" for _, neurons in _layer_groups(model) for n in neurons)
    dead = [name for s in stats for name in (s["dead"] or [])]
    if X is not None and relus:
        if dead:
            parts.append(f"{len(dead)} of {relus} ReLU neuron{'s' if relus != 1 else ''} dead "
                         f"(output 0 on all {len(X)} points)")
        else:
            parts.append("the ReLU neuron is alive" if relus == 1
                         else f"all {relus} ReLU neurons alive")
    # A dead neuron gets no gradient by definition: count only the others.
    silent = sum(1 for s in stats for name in s["no_grad"] if name not in dead)
    if silent:
        parts.append(f"{silent} {'other ' if dead else ''}neuron{'s' if silent != 1 else ''} "
                     "got no gradient")
    vanishing = [s["name"] for s in stats if s["vanishing"]]
    parts.append(f"gradient vanishing in {', '.join(vanishing)}" if vanishing
                 else "gradient reaches every layer")
    return "; ".join(parts)


def _shares_log_y(ax: Any) -> bool:
    """Whether `ax` shares its y axis with another Axes and a log scale is already set on it."""
    return ax.get_yscale() == "log" and len(ax.get_shared_y_axes().get_siblings(ax)) > 1


def _layer_outputs(model: Module, X: Sequence[Sequence[float]]) -> list[list[list[float]]]:
    """Each layer's outputs, `[layer][neuron][point]`, for every point of X: the model's own
    float evaluation (`MLP.layer_outputs`)."""
    if type(model) not in (MLP, Layer, Neuron):  # a subclass may compute something else
        raise ValueError(f"grad_flow_stats: X (to find dead neurons) works for MLP, Layer and "
                         f"Neuron, not {type(model).__name__}")
    points = _points("grad_flow_stats", X)
    for h in points:
        if len(h) != model.nin:
            raise ValueError(f"grad_flow_stats: points of X must have {model.nin} "
                             f"coordinates, got {len(h)}")
    return model.layer_outputs(points)


def _layer_groups(model: Module) -> list[tuple[str, list[Neuron]]]:
    """(name, neurons) for each layer in the model; a bare Neuron is a layer of one."""
    if isinstance(model, Neuron):
        return [("", [model])]
    if isinstance(model, Layer):
        return [("", list(model.neurons))]
    groups = [(name, list(m.neurons)) for name, m in model.named_modules()
              if isinstance(m, Layer)]
    if not groups:
        neurons = [m for _, m in model.named_modules() if isinstance(m, Neuron)]
        if not neurons:
            raise ValueError(f"plot_grad_flow: {type(model).__name__} has no Layer or Neuron "
                             "to report on")
        groups = [("", neurons)]
    return groups


def _is_dead_relu(neuron: Neuron, outputs: Sequence[float]) -> bool:
    """Whether `neuron` is a ReLU whose output is 0 on every point of the batch.

    Its sum is then <= 0 everywhere, so ReLU passes no gradient back and the neuron cannot
    recover. This is the per-neuron, whole-batch form of the per-node test the drawings use
    (one relu node of one graph is dead when its input is <= 0): a neuron is dead here when
    its relu node would be drawn dead for every point of X. A NaN output is not 0: not dead.
    """
    return neuron.activation == "relu" and all(v == 0.0 for v in outputs)


# ---- shared plumbing -----------------------------------------------------------------------------


def _points(who: str, X: Any) -> list[list[float]]:
    """X as a list of points, each a list of finite floats, or an error naming the point."""
    if isinstance(X, (str, bytes, Mapping)) or not isinstance(X, Iterable):
        raise TypeError(f"{who}: X must be a list of points, got {type(X).__name__}")
    points = []
    for i, x in enumerate(X):
        if isinstance(x, (str, bytes, Mapping)) or not isinstance(x, Iterable):
            raise TypeError(f"{who}: X[{i}] must be a list of numbers, got {type(x).__name__}: "
                            f"{x!r}")
        points.append([check_number(who, f"X[{i}][{j}]", v, finite=True)
                       for j, v in enumerate(x)])
    return points


def _check_title(who: str, text: Any, name: str = "title", optional: bool = True) -> None:
    if not (isinstance(text, str) or (optional and text is None)):
        raise TypeError(f"{who}: {name} must be a str{' or None' if optional else ''}, "
                        f"got {type(text).__name__}: {text!r}")


def _figure_and_axes(ax: Any, size: tuple[float, float], panels: int = 1) -> tuple[Any, Any]:
    if ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}: {ax!r}")
        return ax.figure, ax
    # A bare Figure, not pyplot: nothing is registered globally, so figures are freed when
    # dropped, and saving uses the Agg renderer whatever backend is active.
    fig = _chart_figure_class()(figsize=size, layout="constrained")
    axes = fig.subplots(1, panels)
    return fig, axes


@functools.cache
def _chart_figure_class() -> type:
    """The Figure subclass every chart is drawn on, made on first use (matplotlib is lazy).

    Jupyter shows a bare `matplotlib.figure.Figure` as a picture only once a pyplot backend
    has told IPython how: the inline backend registers a PNG printer for `Figure` when pyplot
    first loads it. Before that, a chart returned by the first cell showed as the text
    `<Figure size ...>`. `_repr_png_` is IPython's own hook for "draw me as PNG", so a
    ChartFigure displays without pyplot and without `%matplotlib inline`; once the inline
    backend is active, its printer (registered for `Figure`) takes precedence as before.
    """
    from matplotlib.figure import Figure

    class ChartFigure(Figure):
        """A matplotlib Figure that shows itself inline in Jupyter, with or without pyplot."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

    # Named as a module attribute (see __getattr__ below), so a chart can be pickled.
    ChartFigure.__module__, ChartFigure.__qualname__ = __name__, "ChartFigure"
    return ChartFigure


def __getattr__(name: str) -> Any:
    if name == "ChartFigure":  # created on demand, to keep `import nn.plots` free of matplotlib
        return _chart_figure_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _finish(fig: Any, path: str | os.PathLike | None) -> Any:
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig



# ---- teaching charts: paths on a loss surface, curves, the range test --------------------------
#
# The notebooks draw the same few pictures again and again; these helpers keep their cells about
# the idea (which runs to compare) rather than about matplotlib.

__all__ += ["plot_descent_1d", "plot_paths_2d", "plot_curves", "plot_lr_range_test"]

#: One colour per run, colour-blind safe (Okabe and Ito), in the order runs are given.
_RUN_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000"]


def _run_colours(names: Sequence[str], colours: Mapping[str, str] | None) -> dict[str, str]:
    colours = dict(colours or {})
    return {name: colours.get(name, _RUN_COLOURS[i % len(_RUN_COLOURS)])
            for i, name in enumerate(names)}


def plot_descent_1d(
    loss: Any,
    runs: Mapping[str, Sequence[float]],
    path: str | os.PathLike | None = None,
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float] | None = None,
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """A 1-D loss curve with the weights each run visited, start to end, as joined dots.

    `loss` takes a float and returns a float (or a Value); `runs` maps a label to the list of
    weights visited. The start of each run is a black dot. Returns the Figure.
    """
    import numpy as np

    if not runs:
        raise ValueError("plot_descent_1d: runs is empty; give at least one list of weights")
    fig, ax = _figure_and_axes(ax, (7.0, 4.2))
    ws = np.linspace(*xlim, 300)
    value = lambda w: float(loss(float(w)))  # noqa: E731  (a Value converts to its data)
    ax.plot(ws, [value(w) for w in ws], color="0.35", lw=2, label="loss")
    for name, colour in _run_colours(list(runs), colours).items():
        weights = [float(w) for w in runs[name]]
        ax.plot(weights, [value(w) for w in weights], "o-", color=colour, ms=4, lw=1.2,
                label=name)
        ax.plot(weights[0], value(weights[0]), "o", color="black", ms=7, zorder=5)
    ax.set(xlabel="weight w", ylabel="loss", xlim=xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_paths_2d(
    f: Any,
    paths: Mapping[str, Any],
    path: str | os.PathLike | None = None,
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    levels: Any = 12,
    minimum: Sequence[float] | None = None,
    colours: Mapping[str, str] | None = None,
    equal_aspect: bool = False,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Contour lines of a 2-D loss `f(x, y)` and the points each run visited, joined.

    `f` must work on numpy arrays (write it with `+ - * / **`, and it works on Values too);
    `paths` maps a label to an (n, 2) array or list of points. The start is a white dot, each
    run's last point a dot of its colour, `minimum` a star. `levels` is a number of contour
    lines or the list of their heights. Returns the Figure.
    """
    import numpy as np

    if not paths:
        raise ValueError("plot_paths_2d: paths is empty; give at least one run")
    fig, ax = _figure_and_axes(ax, (7.0, 5.0))
    X, Y = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    Z = f(X, Y)
    ax.contourf(X, Y, Z, levels=levels, cmap="Greys_r", alpha=0.12, extend="both")
    ax.contour(X, Y, Z, levels=levels, colors="0.6", linewidths=0.6)
    for name, colour in _run_colours(list(paths), colours).items():
        points = np.asarray(paths[name], dtype=float).reshape(-1, 2)
        ax.plot(points[:, 0], points[:, 1], "-", color=colour, lw=1.6, marker="o", ms=2.5,
                label=f"{name}: {len(points) - 1} steps")
        ax.plot(*points[-1], "o", color=colour, ms=6, mec="white", zorder=4)
        ax.plot(*points[0], "o", color="black", ms=7, mfc="white", mew=1.8, zorder=5)
    if minimum is not None:
        ax.plot(*minimum, "*", color="#CC79A7", ms=15, mec="black", zorder=6)
    ax.set(xlim=xlim, ylim=ylim, xlabel="x", ylabel="y")
    if equal_aspect:
        ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="best", framealpha=0.95)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike | None = None,
    *,
    xlabel: str = "step",
    ylabel: str = "loss",
    log: bool = True,
    x: Mapping[str, Sequence[float]] | None = None,
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Several curves on one axis (a log y axis by default), one colour and label per run.

    `curves` maps a label to its values; `x` optionally maps a label to its x values (for
    example the number of gradient evaluations instead of the step). Values that are not
    positive are left out on a log axis. Returns the Figure.
    """
    if not curves:
        raise ValueError("plot_curves: curves is empty; give at least one run")
    fig, ax = _figure_and_axes(ax, (7.5, 4.2))
    for name, colour in _run_colours(list(curves), colours).items():
        ys = [float(v) for v in curves[name]]
        xs = [float(v) for v in x[name]] if x and name in x else list(range(len(ys)))
        if log:
            xs, ys = zip(*[(a, b) for a, b in zip(xs, ys) if b > 0]) if any(
                b > 0 for b in ys) else ([], [])
        ax.plot(xs, ys, color=colour, lw=1.8, label=name)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_lr_range_test(
    result: Any,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """The loss against the learning rate from `nn.lr_finder.lr_range_test`, on a log lr axis.

    Draws the raw losses (and the smoothed ones when they differ), the lowest point, the
    suggested rate (ten times smaller) and, when the test stopped early, where the loss blew up.
    Returns the Figure.
    """
    import math

    if not getattr(result, "lrs", None):
        raise ValueError("plot_lr_range_test: needs the result of lr_range_test")
    fig, ax = _figure_and_axes(ax, (7.5, 4.2))
    finite = [(lr, loss) for lr, loss in zip(result.lrs, result.losses) if math.isfinite(loss)]
    ax.plot(*zip(*finite), color="#0072B2", lw=1.2, alpha=0.6 if result.smoothed != result.losses
            else 1.0, label="loss after a step at this lr")
    if result.smoothed != result.losses:
        ax.plot(result.lrs, result.smoothed, color="#0072B2", lw=2.2, label="smoothed")
    ax.set_xscale("log")
    lowest = min(s for s in result.smoothed if math.isfinite(s))
    ax.axvline(result.lr_at_min, color="0.4", ls=":", lw=1.2,
               label=f"lowest loss: lr = {result.lr_at_min:.3g}")
    ax.axvline(result.suggestion, color="#009E73", lw=2,
               label=f"suggestion (10x smaller): lr = {result.suggestion:.3g}")
    if result.diverged:
        ax.axvline(result.lrs[-1], color="#D55E00", ls="--", lw=1.5,
                   label=f"blew up: lr = {result.lrs[-1]:.3g}")
    top = max(result.start_loss, lowest) * 2
    ax.set_ylim(0, top if top > 0 else None)
    ax.set(xlabel="learning rate (log scale)", ylabel="loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Learning-rate range test")
    return _finish(fig, path)
