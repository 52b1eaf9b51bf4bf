"""Neuron, Layer, MLP and the Module base: parameters, names, defaults, graph shape, training."""

from __future__ import annotations

import math
import random

import pytest

import autodiff
from autodiff import Value, no_grad, topological_order
from nn.data import make_moons
from nn.layers import MLP, Layer, Neuron
from nn.losses import accuracy, hinge, l2_penalty
from nn.module import Module


# ---- parameters and names -------------------------------------------------------------------


@pytest.mark.parametrize("nin, nouts", [(2, [16, 16, 1]), (3, [4, 4, 1]), (1, [1]), (5, [3, 2])])
def test_parameter_count_is_weights_plus_biases(nin, nouts):
    sizes = [nin, *nouts]
    expected = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(nouts)))
    model = MLP(nin, nouts, seed=0)
    assert len(model.parameters()) == expected
    assert model.num_parameters() == expected


def test_micrograd_demo_model_has_337_parameters():
    assert len(MLP(2, [16, 16, 1]).parameters()) == 337


def test_parameters_are_ordered_layer_neuron_weights_then_bias():
    model = MLP(2, [3, 2], seed=0)
    expected = []
    for layer in model.layers:
        for neuron in layer.neurons:
            expected += [*neuron.w, neuron.b]
    got = model.parameters()
    assert len(got) == len(expected)
    assert all(a is b for a, b in zip(got, expected))


def test_named_parameters_are_readable_paths():
    model = MLP(2, [16, 16, 1], seed=0)
    names = [name for name, _ in model.named_parameters()]
    assert names[:3] == ["layers.0.neurons.0.w.0", "layers.0.neurons.0.w.1",
                         "layers.0.neurons.0.b"]
    assert names[-1] == "layers.2.neurons.0.b"
    assert len(set(names)) == len(names)
    named = dict(model.named_parameters())
    assert named["layers.0.neurons.3.w.1"] is model.layers[0].neurons[3].w[1]
    assert named["layers.1.neurons.15.w.15"] is model.layers[1].neurons[15].w[15]


def test_parameters_listed_once_even_when_shared():
    class Tied(Module):
        def __init__(self):
            self.a = Neuron(2, seed=0)
            self.b = self.a            # the same module under a second name
            self.extra = [self.a.b]    # and one of its Values again

        def forward(self, x):
            return self.a(x) + self.b(x)

    model = Tied()
    assert len(model.parameters()) == 3
    assert [n for n, _ in model.named_parameters()] == ["a.w.0", "a.w.1", "a.b"]


def test_private_attributes_are_not_parameters():
    class WithCache(Module):
        def __init__(self):
            self.w = Value(1.0)
            self._cache = Value(5.0)

    assert [n for n, _ in WithCache().named_parameters()] == ["w"]


def test_named_modules_walks_the_tree():
    model = MLP(2, [3, 1], seed=0)
    names = [n for n, _ in model.named_modules()]
    assert names[:3] == ["", "layers.0", "layers.0.neurons.0"]
    assert len(names) == 1 + 2 + 3 + 1


def test_zero_grad_clears_every_gradient():
    model = MLP(2, [4, 1], seed=0)
    model([1.0, -2.0]).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_repr_is_readable():
    model = MLP(2, [16, 16, 1], seed=0)
    text = repr(model)
    assert text.splitlines()[0] == "MLP(2, [16, 16, 1]; 337 parameters)"
    assert "(layers.0): Layer(2 -> 16, activation='relu')" in text
    assert "(layers.2): Layer(16 -> 1, activation='linear')" in text
    assert repr(Neuron(3, "tanh", seed=0)) == "Neuron(3, activation='tanh')"


# ---- micrograd-compatible defaults ------------------------------------------------------------


def test_defaults_match_micrograd():
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    # micrograd draws every weight with random.uniform(-1, 1), layer by layer, weights then a
    # bias of 0 per neuron, from the global generator.
    random.seed(1337)
    for layer in model.layers:
        for neuron in layer.neurons:
            assert [w.data for w in neuron.w] == [random.uniform(-1, 1) for _ in neuron.w]
            assert neuron.b.data == 0.0
    assert [layer.activation for layer in model.layers] == ["relu", "relu", "linear"]


def test_same_weights_as_micrograd_itself():
    micrograd_nn = pytest.importorskip("micrograd.nn", reason="micrograd is not installed")
    random.seed(1337)
    theirs = micrograd_nn.MLP(2, [16, 16, 1])
    random.seed(1337)
    ours = MLP(2, [16, 16, 1])
    assert [p.data for p in theirs.parameters()] == [p.data for p in ours.parameters()]
    from micrograd.engine import Value as TheirValue

    x = [0.3, -0.7]
    assert theirs([TheirValue(v) for v in x]).data == pytest.approx(ours(x).data, abs=1e-12)


def test_forward_matches_a_hand_written_network():
    model = MLP(2, [3, 1], seed=4)
    x = [0.5, -1.5]
    hidden = [max(0.0, sum(w.data * xi for w, xi in zip(n.w, x)) + n.b.data)
              for n in model.layers[0].neurons]
    out = model.layers[1].neurons[0]
    expected = sum(w.data * h for w, h in zip(out.w, hidden)) + out.b.data
    assert model(x).data == pytest.approx(expected, abs=1e-12)


def test_one_output_is_a_value_several_are_a_list():
    assert isinstance(MLP(2, [3, 1], seed=0)([1.0, 2.0]), Value)
    out = MLP(2, [3, 2], seed=0)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 2
    assert isinstance(Layer(2, 1, seed=0)([1.0, 2.0]), Value)
    assert len(Layer(2, 4, seed=0)([1.0, 2.0])) == 4


def test_micrograd_nonlin_keyword():
    assert Neuron(2, nonlin=False, seed=0).activation == "linear"
    assert Layer(2, 3, nonlin=True, seed=0).activation == "relu"


# ---- options: activation, init, seed ------------------------------------------------------------


@pytest.mark.parametrize("name, f", [("relu", lambda s: max(0.0, s)),
                                     ("tanh", autodiff.tanh),
                                     ("sigmoid", autodiff.sigmoid),
                                     ("linear", lambda s: s)])
def test_each_activation(name, f):
    neuron = Neuron(2, name, seed=1)
    neuron.b.data = 0.25
    x = [0.7, -0.4]
    s = neuron.w[0].data * 0.7 + neuron.w[1].data * -0.4 + 0.25
    assert neuron(x).data == pytest.approx(f(s), abs=1e-12)


def test_activation_per_layer_and_output_activation():
    model = MLP(2, [4, 4, 1], activation=["tanh", "relu", "sigmoid"], seed=0)
    assert [layer.activation for layer in model.layers] == ["tanh", "relu", "sigmoid"]
    model = MLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    assert [layer.activation for layer in model.layers] == ["tanh", "sigmoid"]
    assert 0.0 < model([3.0, 1.0]).data < 1.0


@pytest.mark.parametrize("init, bound", [("uniform", 1.0), ("fan_in", 0.25), ("kaiming", 0.6124)])
def test_init_bounds(init, bound):
    neuron = Neuron(16, init=init, seed=3)
    weights = [w.data for w in neuron.w]
    assert all(abs(w) <= bound for w in weights)
    assert max(abs(w) for w in weights) > bound / 2  # the bound is used, not something smaller
    assert neuron.b.data == 0.0


def test_seed_makes_models_reproducible_without_touching_global_random():
    random.seed(5)
    before = random.random()
    random.seed(5)
    a = MLP(2, [8, 1], seed=42)
    b = MLP(2, [8, 1], rng=random.Random(42))
    assert random.random() == before  # the global generator was not used
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    c = MLP(2, [8, 1], seed=43)
    assert [p.data for p in a.parameters()] != [p.data for p in c.parameters()]


@pytest.mark.parametrize("make, message", [
    (lambda: MLP(2, [4, 1], seed=0)([1.0, 2.0, 3.0]), "MLP expects 2 inputs, got 3"),
    (lambda: MLP(3, [1], seed=0)([1.0]), "MLP expects 3 inputs, got 1"),
    (lambda: Layer(2, 3, seed=0)([1.0]), "Layer expects 2 inputs, got 1"),
    (lambda: Neuron(1, seed=0)([1.0, 2.0]), "Neuron expects 1 input, got 2"),
    (lambda: MLP(2, [], seed=0), "nouts must be a non-empty list"),
    (lambda: MLP(0, [1]), "nin must be a positive integer, got 0"),
    (lambda: MLP(2, [4, 0]), "each entry of nouts must be a positive integer, got 0"),
    (lambda: Neuron(2, "gelu"), "unknown activation 'gelu'"),
    (lambda: MLP(2, [1], init="normal"), "unknown init 'normal'"),
    (lambda: MLP(2, [4, 1], activation=["relu"]), "1 activations for 2 layers"),
    (lambda: MLP(2, [1], seed=1, rng=random.Random(1)), "seed or rng, not both"),
])
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        make()


def test_non_numeric_input_raises_type_error():
    with pytest.raises(TypeError, match="MLP inputs must be numbers or Values, got str"):
        MLP(2, [1], seed=0)([1.0, "x"])


# ---- inputs and graph shape -------------------------------------------------------------------


def test_accepts_floats_values_tuples_and_numpy_rows():
    np = pytest.importorskip("numpy")
    model = MLP(2, [4, 1], seed=0)
    ref = model([0.5, -0.25]).data
    assert model((0.5, -0.25)).data == ref
    assert model([Value(0.5), Value(-0.25)]).data == ref
    assert model(np.array([0.5, -0.25])).data == ref
    assert MLP(1, [2, 1], seed=0)(0.5).data == MLP(1, [2, 1], seed=0)([0.5]).data


def test_gradients_flow_to_value_inputs():
    model = MLP(2, [4, 1], activation="tanh", seed=0)
    x = [Value(0.5), Value(-0.25)]
    model(x).backward()
    ok = autodiff.gradcheck(lambda a, b: model([a, b]), 0.5, -0.25, order=1)
    assert ok and any(xi.grad != 0 for xi in x)


@pytest.mark.parametrize("nin", [1, 2, 16, 50])
@pytest.mark.parametrize("activation, interior", [("relu", 3), ("linear", 2)])
def test_a_neuron_is_one_dot_node_plus_bias_and_activation(nin, activation, interior):
    neuron = Neuron(nin, activation, seed=0)
    out = neuron([Value(0.1 * i) for i in range(nin)])
    nodes = topological_order(out)
    inner = [v for v in nodes if v.parents]
    assert len(inner) == interior
    assert [v.op for v in inner][:2] == ["dot", "add"]
    assert len(nodes) == interior + 2 * nin + 1  # + weights, inputs and the bias


def test_no_grad_forward_gives_same_numbers_and_no_graph():
    model = MLP(2, [8, 8, 3], activation=["relu", "tanh", "sigmoid"], seed=0)
    x = [0.3, -1.2]
    with_graph = [v.data for v in model(x)]
    with no_grad():
        out = model(x)
    assert [v.data for v in out] == pytest.approx(with_graph, abs=1e-12)
    assert all(not v.parents for v in out)


# ---- a short training run -------------------------------------------------------------------


def test_training_on_moons_lowers_loss_and_fits_every_point():
    # micrograd's demo, shortened: hinge loss + L2, SGD with a decaying learning rate.
    X, y = make_moons(30, noise=0.1, seed=3, labels="pm1")
    model = MLP(2, [16, 16, 1], seed=3)
    losses = []
    for k in range(40):
        scores = [model(x) for x in X]
        loss = hinge(scores, y) + l2_penalty(model, 1e-4)
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / 40
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    assert losses[-1] < 0.2 * losses[0]
    with no_grad():
        assert accuracy([model(x) for x in X], y) == 1.0


def _micrograd_demo_losses(Value, MLP, steps=3):
    """The training loop of micrograd's demo notebook: numpy rows, np.int64 labels, no nn API."""
    np = pytest.importorskip("numpy")
    X, y = make_moons(20, noise=0.1, seed=0)
    X, y = np.array(X), np.array(y) * 2 - 1
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    history = []
    for k in range(steps):
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        acc = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        history.append((total_loss.data, sum(acc) / len(acc)))
    return history


def test_micrograd_demo_code_runs_unchanged():
    history = _micrograd_demo_losses(Value, MLP)
    assert history[-1][0] < history[0][0]


def test_micrograd_demo_gives_micrograds_numbers():
    micrograd_nn = pytest.importorskip("micrograd.nn", reason="micrograd is not installed")
    from micrograd.engine import Value as TheirValue

    ours = _micrograd_demo_losses(Value, MLP)
    theirs = _micrograd_demo_losses(TheirValue, micrograd_nn.MLP)
    # Same weights, same data, same loop: the same losses up to float summation order.
    assert [h[0] for h in ours] == pytest.approx([h[0] for h in theirs], rel=1e-9)
    assert [h[1] for h in ours] == [h[1] for h in theirs]


def test_float_inputs_become_one_shared_node_per_input():
    model = MLP(2, [3, 1], seed=0)
    out = model([1.0, 2.0])
    params = set(model.parameters())
    inputs = [v for v in topological_order(out) if v.is_leaf and v not in params]
    assert sorted(v.data for v in inputs) == [1.0, 2.0]  # not one copy per neuron
    out.backward()
    xs = [Value(1.0), Value(2.0)]
    model.zero_grad()
    model(xs).backward()
    assert sorted(v.grad for v in inputs) == sorted(x.grad for x in xs)


# ---- no silent bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, message", [
    (lambda: MLP(2, [3, 1], activation="gelu"), ValueError,
     "MLP: unknown activation 'gelu'; choose one of relu, tanh, sigmoid, linear"),
    (lambda: MLP(2, [3, 1], output_activation="softmax"), ValueError,
     "MLP: unknown activation 'softmax'"),
    (lambda: MLP(2, [3, 1], activation=5), TypeError,
     "MLP: activation must be a name or a list of names, one per layer, got int: 5"),
    (lambda: Layer(2, 3, activation=None), ValueError, "Layer: unknown activation None"),
    (lambda: MLP(2, [3, 1], seed="abc"), TypeError, "MLP: seed must be an int, got str: 'abc'"),
    (lambda: Neuron(2, seed=1.5), TypeError, "Neuron: seed must be an int, got float: 1.5"),
    (lambda: Layer(2, 3, seed=True), TypeError, "Layer: seed must be an int, got bool"),
    (lambda: MLP(2, [3, 1], rng=42), TypeError,
     "MLP: rng must be a random.Random (e.g. random.Random(42)), got int: 42; for a number, "
     "pass seed= instead"),
    (lambda: Neuron(2, nonlin="no"), TypeError, "Neuron: nonlin must be True or False, got str"),
    (lambda: Layer(2, 1, nonlin=0), TypeError, "Layer: nonlin must be True or False, got int"),
    (lambda: MLP(2, [3, 1], init=None), ValueError, "MLP: unknown init None"),
])
def test_bad_constructor_arguments_name_the_argument(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize("x, kind", [({"a": 1.0, "b": 2.0}, "dict"), ({1.0, 2.0}, "set"),
                                     ("ab", "str"), (b"ab", "bytes"), (None, "NoneType")])
@pytest.mark.parametrize("make", [lambda: MLP(2, [3, 1], seed=0), lambda: Layer(2, 3, seed=0),
                                  lambda: Neuron(2, seed=0)])
def test_inputs_that_are_not_a_point_are_type_errors(make, x, kind):
    model = make()
    who = type(model).__name__
    with pytest.raises(TypeError, match=f"{who} expects a list of 2 numbers or Values, "
                                        f"got {kind}"):
        model(x)


def test_nan_inputs_are_not_refused_and_show_in_the_output():
    # NaN is a number: refusing it is the engine's business (anomaly mode), not the layer's.
    out = MLP(2, [3, 1], activation="tanh", seed=0)([float("nan"), 1.0])
    assert math.isnan(out.data)
