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
from nn.plots import (_predict, grad_flow_stats, plot_decision_boundary,  # noqa: E402
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
def test_fast_grid_evaluation_matches_the_model(make):
    model = make()
    points = np.array([[-1.5, 0.3], [0.0, 0.0], [2.0, -1.0], [40.0, -60.0]])
    with no_grad():
        expected = []
        for p in points.tolist():
            out = model(p)
            expected.append([o.data for o in (out if isinstance(out, list) else [out])])
    assert _predict(model, points) == pytest.approx(np.array(expected), abs=1e-12)


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
