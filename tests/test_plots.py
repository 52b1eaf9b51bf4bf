"""Model charts: each writes a real PNG, and the numbers behind the charts are right."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install .[demo])")
np = pytest.importorskip("numpy", reason="numpy is not installed")

from autodiff import Value, no_grad  # noqa: E402
from nn.data import make_blobs, make_moons  # noqa: E402
from nn.layers import MLP, Layer, Neuron  # noqa: E402
from nn.losses import cross_entropy, hinge  # noqa: E402
from nn.module import Module  # noqa: E402
from nn.plots import (grad_flow_stats, plot_decision_boundary,  # noqa: E402
                      plot_grad_flow, plot_history)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=8000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is suspiciously small ({len(data)} bytes)"
    width, height = struct.unpack(">II", data[16:24])  # from the IHDR chunk
    assert width > 300 and height > 300


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(40, noise=0.1, seed=0, labels="pm1")
    return X, y


def test_decision_boundary_png_binary(moons, tmp_path):
    X, y = moons
    model = MLP(2, [8, 1], seed=0)
    fig = plot_decision_boundary(model, X, y, tmp_path / "b.png", margin=1.0, resolution=60)
    assert_png(tmp_path / "b.png")
    with no_grad():
        right = sum((model(x).data > 0) == (t > 0) for x, t in zip(X, y))
    assert fig.axes[0].get_title() == (f"Decision boundary: {right}/{len(X)} points right "
                                       f"({100 * right / len(X):.0f}%)")


def test_decision_boundary_png_multiclass(tmp_path):
    X, y = make_blobs(30, centers=3, seed=0)
    model = MLP(2, [6, 3], seed=0)
    plot_decision_boundary(model, X, y, tmp_path / "m.png", resolution=60)
    assert_png(tmp_path / "m.png")


def test_decision_boundary_of_a_custom_module(moons, tmp_path):
    class Circle(Module):  # not an MLP: evaluated point by point
        def __init__(self):
            self.r = Value(0.8)

        def forward(self, x):
            return self.r * self.r - (x[0] - 0.5) ** 2 - x[1] ** 2

    X, y = moons
    plot_decision_boundary(Circle(), X, y, tmp_path / "c.png", resolution=25)
    assert_png(tmp_path / "c.png", min_bytes=5000)


@pytest.mark.parametrize("make", [
    lambda: MLP(2, [5, 4, 1], activation=["relu", "tanh", "sigmoid"], seed=1),
    lambda: MLP(2, [3, 2], activation="tanh", init="kaiming", seed=2),
    lambda: Layer(2, 3, "sigmoid", seed=3),
    lambda: Neuron(2, "relu", seed=4),
])
def test_grid_evaluation_is_the_model_itself(make):
    model = make()
    points = np.array([[-1.5, 0.3], [0.0, 0.0], [2.0, -1.0], [40.0, -60.0]])
    expected = []
    for p in points.tolist():  # with the graph: the ordinary forward pass, bit for bit
        out = model(p)
        expected.append([o.data for o in (out if isinstance(out, list) else [out])])
    outputs = model.layer_outputs(points)[-1]  # what the drawings draw from
    assert [list(row) for row in zip(*outputs)] == expected


def test_the_drawing_follows_an_activation_it_has_never_heard_of(monkeypatch):
    # A copy of the forward pass (as plots once had, in numpy) drew unknown activations as
    # linear: a different model. Evaluating the model itself cannot.
    import autodiff
    import nn.layers

    monkeypatch.setitem(nn.layers.ACTIVATIONS, "abs", autodiff.abs)
    model = MLP(2, [4, 1], activation="abs", output_activation="abs", seed=0)
    points = np.array([[-1.0, 0.5], [0.25, -2.0], [3.0, 3.0]])
    got = model.layer_outputs(points)[-1][0]
    assert got == [model(p).data for p in points.tolist()]
    assert all(v > 0 for v in got)   # the output is |...|: a linear copy would go negative


def test_grid_evaluation_builds_no_graph(moons):
    seen = []

    class Probe(Module):
        def __init__(self):
            self.w = Value(1.0)

        def forward(self, x):
            seen.append(autodiff.is_grad_enabled())
            return self.w * x[0] - x[1]

    import autodiff

    X, y = moons
    plot_decision_boundary(Probe(), X, y, resolution=5)
    assert len(seen) == 25 + len(X) and not any(seen)


@pytest.mark.parametrize("call, error, message", [
    (lambda m, X, y: plot_decision_boundary(m, X, y, resolution=1.5), TypeError,
     "plot_decision_boundary: resolution must be an int, got float"),
    (lambda m, X, y: plot_decision_boundary(m, X, y, resolution=1), ValueError,
     "invalid resolution=1, it must be >= 2"),
    (lambda m, X, y: plot_decision_boundary(m, X, y, threshold="0.5"), TypeError,
     "threshold must be a number, got str"),
    (lambda m, X, y: plot_decision_boundary(m, X, y, margin=-1.0), ValueError,
     "invalid margin=-1.0, it must be > 0 (or None)"),
    (lambda m, X, y: plot_decision_boundary(m, X, y, title=3), TypeError,
     "title must be a str or None, got int"),
    (lambda m, X, y: plot_decision_boundary(m, [["1", 2.0]] + X[1:], y), TypeError,
     "plot_decision_boundary: X[0][0] must be a number, got str: '1'"),
    (lambda m, X, y: plot_decision_boundary(m, [[float("nan"), 2.0]] + X[1:], y), ValueError,
     "invalid X[0][0]=nan, it must be a finite number"),
    (lambda m, X, y: plot_decision_boundary(m, {"a": 1}, y), TypeError,
     "X must be a list of points, got dict"),
    (lambda m, X, y: plot_decision_boundary(m, X, ["+"] + y[1:]), TypeError,
     "y[0] must be an int, got str"),
    (lambda m, X, y: plot_history([0.5, 0.4]), TypeError,
     "plot_history: history must be a dict of lists, got list"),
    (lambda m, X, y: plot_history({"loss": [0.5, "0.4"]}), TypeError,
     "plot_history: history['loss'][1] must be a number, got str"),
    (lambda m, X, y: plot_history({"loss": [0.5], "lr": [None]}), TypeError,
     "history['lr'][0] must be a number, got NoneType"),
    (lambda m, X, y: plot_history({"loss": [0.5]}, loss_label=None), TypeError,
     "plot_history: loss_label must be a str, got NoneType"),
    (lambda m, X, y: grad_flow_stats(m, vanish_ratio=-1), ValueError,
     "grad_flow_stats: invalid vanish_ratio=-1.0"),
    (lambda m, X, y: plot_grad_flow(m, title=["a"]), TypeError, "plot_grad_flow: title must be"),
    (lambda m, X, y: grad_flow_stats(m, [[1.0, True]]), TypeError,
     "grad_flow_stats: X[0][1] must be a number, got bool"),
    (lambda m, X, y: grad_flow_stats([m]), TypeError,
     "grad_flow_stats: model must be an nn Module, got list"),
    (lambda m, X, y: plot_decision_boundary("MLP", X, y), TypeError,
     "plot_decision_boundary: model must be a Module (or any function of a point), got str"),
    (lambda m, X, y: plot_decision_boundary(m, X, y, resolution=3, ax="left"), TypeError,
     "ax must be a matplotlib Axes, got str"),
])
def test_bad_arguments_are_clear_errors_naming_them(moons, call, error, message):
    X, y = moons
    with pytest.raises(error) as info:
        call(MLP(2, [3, 1], seed=0), list(X), list(y))
    assert message in str(info.value)


def test_a_model_that_returns_no_number_is_a_type_error(moons):
    class Words(Module):
        def forward(self, x):
            return "yes"

    X, y = moons
    with pytest.raises(TypeError, match="the model must return a Value, a number or a list of "
                                        "them, got str: 'yes'"):
        plot_decision_boundary(Words(), X, y, resolution=3)


def test_decision_boundary_rejects_bad_data():
    with pytest.raises(ValueError, match="needs 2-D points"):
        plot_decision_boundary(MLP(3, [1], seed=0), [[1.0, 2.0, 3.0]], [1])
    with pytest.raises(ValueError, match="equally many points and labels, got 2 and 1"):
        plot_decision_boundary(MLP(2, [1], seed=0), [[1.0, 2.0], [0.0, 1.0]], [1])


def test_history_png(tmp_path):
    history = {"loss": [1.0 / (k + 1) for k in range(30)],
               "accuracy": [min(1.0, 0.5 + k / 40) for k in range(30)],
               "lr": [1.0 - 0.9 * k / 30 for k in range(30)]}
    fig = plot_history(history, tmp_path / "h.png", loss_label="hinge loss")
    assert_png(tmp_path / "h.png")
    assert len(fig.axes) == 3  # loss, its learning-rate twin, accuracy
    assert fig.axes[0].get_yscale() == "log"  # 1 -> 1/30 spans more than 20x
    plot_history({"loss": [0.5, 0.4, 0.45]}, tmp_path / "l.png")
    assert_png(tmp_path / "l.png", min_bytes=5000)
    with pytest.raises(ValueError, match="non-empty 'loss'"):
        plot_history({"accuracy": [1.0]})


def _backward_on(model, X, y):
    model.zero_grad()
    hinge([model(x) for x in X], y).backward()


def test_grad_flow_png(moons, tmp_path):
    X, y = moons
    model = MLP(2, [8, 8, 1], seed=0)
    _backward_on(model, X, y)
    fig = plot_grad_flow(model, tmp_path / "g.png", X=X)
    assert_png(tmp_path / "g.png")
    dead = sum(len(s["dead"]) for s in grad_flow_stats(model, X))
    assert dead > 0 and f"{dead} of 16 ReLU neurons dead" in fig.axes[0].get_title()
    assert fig.axes[0].get_yscale() == "log"


def _verdict(fig):
    return fig.axes[0].get_title().split("\n", 1)[1].replace("\n", " ")


def test_grad_flow_title_mentions_only_what_the_model_has(moons):
    X, y = moons
    sigmoid = MLP(2, [8, 8, 1], activation="sigmoid", seed=0)
    _backward_on(sigmoid, X, y)
    assert all(not s["no_grad"] for s in grad_flow_stats(sigmoid))
    verdict = _verdict(plot_grad_flow(sigmoid, X=X))
    assert "ReLU" not in verdict and "dead" not in verdict and "no gradient" not in verdict
    assert verdict == "gradient reaches every layer"

    relu = MLP(2, [8, 8, 1], seed=0)
    relu.layers[0].neurons[2].b.data = -100.0  # dead on every point: no gradient either
    _backward_on(relu, X, y)
    stats = grad_flow_stats(relu, X)
    dead = [name for s in stats for name in s["dead"]]
    silent = [name for s in stats for name in s["no_grad"]]
    others = len(set(silent) - set(dead))
    assert dead and others  # this seed has both kinds: the title tells them apart
    verdict = _verdict(plot_grad_flow(relu, X=X))
    assert f"{len(dead)} of 16 ReLU neurons dead (output 0 on all {len(X)} points)" in verdict
    assert f"; {others} other neuron{'s' if others > 1 else ''} got no gradient;" in verdict
    without_x = _verdict(plot_grad_flow(relu))  # dead neurons cannot be told without the batch
    assert "dead" not in without_x and f"{len(silent)} neurons got no gradient" in without_x

    alive = MLP(2, [8, 1], seed=0)
    for neuron in alive.layers[0].neurons:
        neuron.b.data = 100.0  # positive on every point: every ReLU passes gradient
    _backward_on(alive, X, y)
    assert all(not s["dead"] for s in grad_flow_stats(alive, X))
    verdict = _verdict(plot_grad_flow(alive, X=X))
    assert "all 8 ReLU neurons alive" in verdict and "0 " not in verdict


def test_grad_flow_draws_into_given_axes_side_by_side(moons, tmp_path):
    from matplotlib.figure import Figure

    X, y = moons
    models = {name: MLP(2, [6] * 5 + [1], activation=name, seed=0)
              for name in ("sigmoid", "tanh", "relu")}
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (name, model) in zip(axes, models.items()):
        _backward_on(model, X, y)
        returned = plot_grad_flow(model, tmp_path / "side.png", X=X, title=name, ax=ax)
        assert returned is fig  # the Axes' own Figure, as plot_decision_boundary returns
    assert len(fig.axes) == 3  # drawn into the given Axes, no new ones
    assert [bool(ax.get_ylabel()) for ax in axes] == [True, False, False]  # once per shared row
    assert_png(tmp_path / "side.png")
    heights = []
    for ax, (name, model) in zip(axes, models.items()):
        assert ax.get_title().startswith(f"{name}\n")
        bars = [p.get_height() for p in ax.patches]
        assert len(bars) == 2 * len(model.layers)  # mean and max of each layer
        heights += bars
    # The shared log axis shows every panel's bars, not just the last panel's.
    low, high = axes[0].get_ylim()
    assert axes[0].get_yscale() == "log" and low < min(heights) and max(heights) < high


def test_grad_flow_stats_are_the_layer_means_and_maxima(moons):
    X, y = moons
    model = MLP(2, [8, 8, 1], seed=0)
    _backward_on(model, X, y)
    stats = grad_flow_stats(model)
    assert [s["name"] for s in stats] == ["layers.0", "layers.1", "layers.2"]
    for s, layer in zip(stats, model.layers):
        grads = [abs(w.grad) for n in layer.neurons for w in n.w]
        assert s["mean"] == pytest.approx(sum(grads) / len(grads))
        assert s["max"] == max(grads)
        assert s["neurons"] == len(layer.neurons)


def test_grad_flow_flags_dead_relu_neurons(moons):
    X, y = moons
    model = MLP(2, [8, 8, 1], seed=0)
    # A bias of -100 keeps the sum negative for every point: ReLU passes no gradient back.
    model.layers[0].neurons[2].b.data = -100.0
    model.layers[1].neurons[5].b.data = -100.0
    _backward_on(model, X, y)
    stats = grad_flow_stats(model, X)
    # Independently: a ReLU neuron is dead when its output is 0 on every point of the batch.
    with no_grad():
        outputs = []
        for x in X:
            h0 = [v.data for v in model.layers[0](x)]
            h1 = [v.data for v in model.layers[1](h0)]
            outputs.append((h0, h1))
    for i in range(2):
        silent = [f"layers.{i}.neurons.{j}" for j in range(8)
                  if all(out[i][j] == 0.0 for out in outputs)]
        assert stats[i]["dead"] == silent
    assert "layers.0.neurons.2" in stats[0]["dead"] and "layers.1.neurons.5" in stats[1]["dead"]
    assert stats[2]["dead"] == []  # the output neuron is linear: never "dead"
    # A dead neuron gets no gradient; the converse need not hold.
    for s in stats:
        assert set(s["dead"]) <= set(s["no_grad"])
        for name in s["no_grad"]:
            neuron = dict(model.named_modules())[name]
            assert all(p.grad == 0.0 for p in neuron.parameters())
    assert grad_flow_stats(model)[0]["dead"] is None  # without X: not known


def test_grad_flow_flags_vanishing_layers(moons, tmp_path):
    X, y = moons
    # Eight sigmoid layers: each multiplies the gradient by sigmoid' <= 1/4 on its way back.
    model = MLP(2, [8] * 8 + [1], activation="sigmoid", seed=0)
    _backward_on(model, X, y)
    stats = grad_flow_stats(model)
    means = [s["mean"] for s in stats]
    assert stats[0]["vanishing"] and not stats[-1]["vanishing"]
    assert means[0] < 1e-3 * max(means)
    assert [s["vanishing"] for s in stats] == [m < 1e-3 * max(means) for m in means]
    plot_grad_flow(model, tmp_path / "v.png")
    assert_png(tmp_path / "v.png")


def test_grad_flow_before_any_backward_says_so(tmp_path):
    model = MLP(2, [4, 1], seed=0)
    stats = grad_flow_stats(model)
    assert all(s["mean"] == 0 and not s["vanishing"] for s in stats)
    fig = plot_grad_flow(model, tmp_path / "z.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("call loss.backward()" in t for t in texts)
    assert (tmp_path / "z.png").read_bytes()[:8] == PNG_SIGNATURE


def test_grad_flow_of_a_multiclass_model(tmp_path):
    X, y = make_blobs(20, centers=3, seed=0)
    model = MLP(2, [6, 3], seed=0)
    cross_entropy([model(x) for x in X], y).backward()
    assert len(grad_flow_stats(model)) == 2
    plot_grad_flow(model, tmp_path / "mc.png")
    assert_png(tmp_path / "mc.png")


def test_grad_flow_dead_neurons_need_a_known_architecture(moons):
    class Wrapper(Module):
        def __init__(self):
            self.inner = MLP(2, [3, 1], seed=0)

        def forward(self, x):
            return self.inner(x)

    X, _ = moons
    assert [s["name"] for s in grad_flow_stats(Wrapper())] == ["inner.layers.0", "inner.layers.1"]
    with pytest.raises(ValueError, match="works for MLP, Layer and Neuron, not Wrapper"):
        grad_flow_stats(Wrapper(), X)
    with pytest.raises(ValueError, match="points of X must have 2 coordinates, got 3"):
        grad_flow_stats(MLP(2, [3, 1], seed=0), [[1.0, 2.0, 3.0]])


def test_a_relu_neuron_with_nan_outputs_is_not_counted_dead():
    X = [[0.5, -1.0], [2.0, 3.0]]

    def dead(activation, w, b):
        neuron = Neuron(2, activation, seed=0)
        for p, v in zip([*neuron.w, neuron.b], [*w, b]):
            p.data = v
        return grad_flow_stats(neuron, X)[0]["dead"] == ["neurons.0"]

    assert dead("relu", [0.0, 0.0], -1.0) and not dead("tanh", [0.0, 0.0], 0.0)
    assert not dead("relu", [float("nan"), 0.0], 0.0) and not dead("relu", [0.0, 0.0], 1e-300)


# ---- shown in Jupyter without pyplot -------------------------------------------------------------

def _every_chart(moons):
    """One small chart from each plot_* function, drawn on a figure of its own."""
    from nn.lr_finder import lr_range_test
    from nn.optim import SGD
    from nn.plots import plot_curves, plot_descent_1d, plot_lr_range_test, plot_paths_2d

    X, y = moons
    model = MLP(2, [4, 1], seed=0)
    _backward_on(model, X, y)
    w = Value(3.0)
    result = lr_range_test(SGD([w], lr=0.1), lambda: w * w, steps=20)
    return {
        "plot_decision_boundary": plot_decision_boundary(model, X, y, resolution=10),
        "plot_history": plot_history({"loss": [1.0, 0.5]}),
        "plot_grad_flow": plot_grad_flow(model, X=X),
        "plot_descent_1d": plot_descent_1d(lambda v: v * v, {"GD": [1.0, 0.5]}, xlim=(-1, 1)),
        "plot_paths_2d": plot_paths_2d(lambda a, b: a * a + b * b, {"GD": [[1, 1], [0, 0]]},
                                       xlim=(-1, 1), ylim=(-1, 1)),
        "plot_curves": plot_curves({"GD": [1.0, 0.5]}),
        "plot_lr_range_test": plot_lr_range_test(result),
    }


def test_charts_show_inline_in_jupyter_without_pyplot(moons):
    """IPython shows an object as a picture if a printer is registered for its type or it has
    `_repr_png_`. The inline backend registers one for Figure only once pyplot has loaded it, so
    a chart returned before any pyplot figure existed used to show as `<Figure size ...>`."""
    formatters = pytest.importorskip("IPython.core.formatters",
                                     reason="IPython is not installed (it comes with Jupyter)")
    # A fresh formatter knows no matplotlib printer: the chart must bring its own.
    display = formatters.DisplayFormatter()
    figures_before = _pyplot_figures()
    for name, fig in _every_chart(moons).items():
        data, _ = display.format(fig)
        assert "image/png" in data, f"{name}: Jupyter would show only {data['text/plain']!r}"
        assert data["image/png"][:8] == PNG_SIGNATURE, name
        width, height = struct.unpack(">II", data["image/png"][16:24])
        assert width > 300 and height > 200, (name, width, height)
    # Nothing was drawn through pyplot, so no figure stays registered (and leaks) in scripts.
    assert _pyplot_figures() == figures_before


def _pyplot_figures():
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    return None if pyplot is None else pyplot.get_fignums()


def test_a_chart_pickles_and_import_stays_light(moons, tmp_path):
    import pickle
    import subprocess
    import sys

    fig = plot_history({"loss": [1.0, 0.5]})
    copy = pickle.loads(pickle.dumps(fig))
    assert type(copy) is type(fig) and len(copy.axes) == len(fig.axes)
    assert copy._repr_png_()[:8] == PNG_SIGNATURE
    # The ChartFigure class is made on first use: `import nn.plots` imports no matplotlib.
    code = "import sys, nn.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
