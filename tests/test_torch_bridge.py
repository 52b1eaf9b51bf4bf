"""Tests for nn.torch_bridge: models and optimizer state to and from PyTorch, with the numbers.

The claims checked: `to_torch()` gives the same outputs and, after the same loss, the same
gradients (to 1e-12, element by element through `torch_names`); `from_torch` is its inverse and
refuses anything it cannot represent, naming the layer; an optimizer moved across in either
direction mid-training ends where training on one side alone ends (to 1e-9); and torch stays
optional (importing nn never imports it; without it every entry point says what to install).
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nn
from autodiff import Value
from nn.torch_bridge import torch_locations, torch_names

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with this checkout's packages first on the path."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


# ---- torch stays optional (these run whether or not torch is installed) --------------------------


def test_importing_nn_never_imports_torch():
    result = run_python("""
        import sys
        import nn, nn.optim, nn.torch_bridge
        model = nn.MLP(2, [3, 1], seed=0)
        names = nn.torch_bridge.torch_names(model)        # the pairing needs no torch either
        assert names["layers.0.neurons.2.w.1"] == "0.weight[2, 1]", names
        assert "torch" not in sys.modules, "importing nn imported torch"
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_without_torch_every_entry_point_says_which_pip_line_to_run():
    result = run_python("""
        import sys
        sys.modules["torch"] = None          # `import torch` now raises ImportError
        import nn
        from autodiff import Value

        model = nn.MLP(2, [3, 1], seed=0)
        opt = nn.optim.Adam(model.parameters(), lr=0.1)
        calls = {
            "MLP.to_torch()": lambda: model.to_torch(),
            "Layer.to_torch()": lambda: nn.Layer(2, 3, seed=0).to_torch(),
            "Neuron.to_torch()": lambda: nn.Neuron(2, seed=0).to_torch(),
            "MLP.from_torch()": lambda: nn.MLP.from_torch(object()),
            "Layer.from_torch()": lambda: nn.Layer.from_torch(object()),
            "Neuron.from_torch()": lambda: nn.Neuron.from_torch(object()),
            "nn.optim.to_torch()": lambda: nn.optim.to_torch(opt, []),
            "nn.optim.from_torch()": lambda: nn.optim.from_torch(object(), []),
        }
        for who, call in calls.items():
            try:
                call()
            except ImportError as err:
                message = str(err)
                assert who in message, (who, message)
                assert "pip install torch==2.13.0" in message, message
            else:
                raise AssertionError(f"{who} did not raise ImportError")
        print(len(calls))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8"


def test_torch_names_pairs_every_parameter_in_order():
    model = nn.MLP(3, [5, 4, 2], seed=0)
    names = torch_names(model)
    assert list(names) == [name for name, _ in model.named_parameters()]
    assert names["layers.0.neurons.3.w.1"] == "0.weight[3, 1]"
    assert names["layers.0.neurons.3.b"] == "0.bias[3]"
    assert names["layers.1.neurons.0.w.4"] == "2.weight[0, 4]"
    assert names["layers.2.neurons.1.b"] == "4.bias[1]"
    assert torch_locations(model)["layers.2.neurons.1.w.3"] == ("4.weight", (1, 3))
    assert torch_names(nn.Layer(2, 3, seed=0))["neurons.2.w.0"] == "0.weight[2, 0]"
    assert torch_names(nn.Neuron(2, seed=0)) == {
        "w.0": "0.weight[0, 0]", "w.1": "0.weight[0, 1]", "b": "0.bias[0]"}


def test_torch_names_refuses_what_is_not_a_layer_stack():
    class Scaled(nn.MLP):
        def __init__(self):
            super().__init__(2, [1], seed=0)
            self.scale = Value(2.0)

    with pytest.raises(ValueError, match=r"parameters outside its layers.*\['scale'\]"):
        torch_names(Scaled())
    with pytest.raises(TypeError, match="expected an nn.MLP, nn.Layer or nn.Neuron, got Value"):
        torch_names(Value(1.0))


def test_only_the_classes_of_nn_layers_are_converted():
    # The bridge does not import nn.layers (which imports it), so it recognises the classes by
    # their lineage. A Module that holds the same structure but computes its own forward pass
    # is refused: its torch copy would compute something else.
    class Residual(nn.Module):
        def __init__(self):
            self.layers = [nn.Layer(2, 2, seed=0), nn.Layer(2, 2, seed=1)]

        def forward(self, x):
            h = self.layers[0](x)
            return [a + b for a, b in zip(self.layers[1](h), x)]

    with pytest.raises(TypeError, match="expected an nn.MLP, nn.Layer or nn.Neuron, "
                                        "got Residual"):
        torch_names(Residual())

    class Wide(nn.MLP):  # a subclass keeps MLP's forward pass, so it converts
        pass

    assert torch_names(Wide(2, [3, 1], seed=0)) == torch_names(nn.MLP(2, [3, 1], seed=0))


# ---- models: the same numbers in torch -----------------------------------------------------------

torch = pytest.importorskip("torch", reason="torch not installed: the bridge's numbers need it")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: torch's worker threads would cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


X = [[0.3, -1.2, 0.5], [1.0, 2.0, -0.7], [-0.4, 0.1, 0.9], [0.8, -0.6, -1.5], [2.0, 0.5, 0.0]]
T = [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.7], [0.0, 1.1], [1.0, -0.5]]


def chainrule_loss(model, X=X, T=T):
    """Mean squared error over every output of every point, written with Values."""
    total, count = 0.0, 0
    for x, t in zip(X, T):
        out = model(x)
        out = out if isinstance(out, list) else [out]
        for o, target in zip(out, t):  # a one-output model uses the first target only
            total = total + (o - target) ** 2
            count += 1
    return total / count


def torch_loss(sequential, X=X, T=T):
    out = sequential(torch.tensor(X, dtype=torch.float64))
    return ((out - torch.tensor(T, dtype=torch.float64)[:, : out.shape[1]]) ** 2).mean()


def torch_numbers(model, sequential, what="data"):
    """{chainrule name: the paired torch element's number (or gradient)}."""
    out = {}
    for name, (tensor, index) in torch_locations(model).items():
        t = sequential.get_parameter(tensor)
        out[name] = (t if what == "data" else t.grad)[index].item()
    return out


def assert_close(ours: dict, theirs: dict, tol: float, what: str) -> None:
    assert list(ours) == list(theirs)
    bad = [(n, ours[n], theirs[n]) for n in ours
           if not abs(ours[n] - theirs[n]) <= tol * max(1.0, abs(theirs[n]))]
    assert not bad, f"{len(bad)} {what} differ, e.g. {bad[:3]}"


MODELS = {
    "mlp-relu": lambda: nn.MLP(3, [5, 4, 2], seed=1),
    "mlp-mixed": lambda: nn.MLP(3, [4, 3, 3, 2], activation=["tanh", "sigmoid", "relu", "linear"],
                                seed=2),
    "mlp-sigmoid-out": lambda: nn.MLP(3, [6, 2], activation="tanh", output_activation="sigmoid",
                                      seed=3),
    "layer-tanh": lambda: nn.Layer(3, 2, "tanh", seed=4),
    "layer-linear": lambda: nn.Layer(3, 2, "linear", seed=5),
    "neuron-relu": lambda: nn.Neuron(3, seed=6),
    "neuron-sigmoid": lambda: nn.Neuron(3, "sigmoid", seed=7),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_to_torch_gives_the_same_outputs_and_gradients(name):
    model = MODELS[name]()
    sequential = model.to_torch()

    ours = [model(x) for x in X]
    theirs = sequential(torch.tensor(X, dtype=torch.float64))
    ours = [[v.data for v in (out if isinstance(out, list) else [out])] for out in ours]
    assert theirs.dtype == torch.float64
    assert theirs.shape == (len(X), len(ours[0]))
    for row, trow in zip(ours, theirs.tolist()):
        assert row == pytest.approx(trow, rel=1e-12, abs=1e-12)

    # The same loss, backward on both sides: every .grad pairs with its torch element's .grad.
    model.zero_grad()
    loss = chainrule_loss(model)
    loss.backward()
    t_loss = torch_loss(sequential)
    t_loss.backward()
    assert loss.data == pytest.approx(t_loss.item(), rel=1e-12, abs=1e-12)
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert any(g != 0 for g in grads.values())
    assert_close(grads, torch_numbers(model, sequential, "grad"), 1e-12, "gradients")
    assert_close(model.state_dict(), torch_numbers(model, sequential), 0.0, "weights")


def test_to_torch_builds_linear_layers_and_matching_activations():
    model = nn.MLP(3, [4, 3, 2, 1], activation=["relu", "tanh", "sigmoid", "linear"], seed=0)
    sequential = model.to_torch()
    assert isinstance(sequential, torch.nn.Sequential)
    kinds = [type(m).__name__ for m in sequential]
    assert kinds == ["Linear", "ReLU", "Linear", "Tanh", "Linear", "Sigmoid", "Linear", "Identity"]
    assert [(m.in_features, m.out_features) for m in sequential[::2]] == [(3, 4), (4, 3), (3, 2),
                                                                          (2, 1)]
    assert all(p.dtype == torch.float64 and p.requires_grad for p in sequential.parameters())
    neuron = nn.Neuron(4, "tanh", seed=0).to_torch()
    assert [type(m).__name__ for m in neuron] == ["Linear", "Tanh"]
    assert neuron[0].weight.shape == (1, 4)


def test_to_torch_copies_and_leaves_random_generators_alone():
    model = nn.MLP(2, [3, 1], seed=0)
    before = model.state_dict()
    torch_rng, python_rng = torch.get_rng_state(), random.getstate()
    sequential = model.to_torch()
    again = nn.MLP.from_torch(sequential)
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert random.getstate() == python_rng
    with torch.no_grad():
        sequential[0].weight += 1.0  # the torch copy is its own
    assert model.state_dict() == before
    assert again.state_dict() == before


# ---- models: the way back ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_from_torch_undoes_to_torch(name):
    model = MODELS[name]()
    back = type(model).from_torch(model.to_torch())
    assert type(back) is type(model)
    assert back.config() == {**model.config(), "init": back.config()["init"]}
    assert back.state_dict() == model.state_dict()  # exact: float64 both ways


def test_from_torch_reads_a_model_made_in_torch():
    torch.manual_seed(0)
    sequential = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.Tanh(),
        torch.nn.Linear(8, 8),                       # no activation: linear
        torch.nn.Linear(8, 4), torch.nn.ReLU(inplace=True),
        torch.nn.Linear(4, 2),                       # the last layer, linear
    ).double()
    model = nn.MLP.from_torch(sequential)
    assert model.nouts == [8, 8, 4, 2]
    assert model.activations == ["tanh", "linear", "relu", "linear"]
    theirs = sequential(torch.tensor(X, dtype=torch.float64)).tolist()
    for x, trow in zip(X, theirs):
        assert [v.data for v in model(x)] == pytest.approx(trow, rel=1e-12, abs=1e-12)
    # A bare Linear is a one-layer model, a Layer or (one output) a Neuron.
    linear = torch.nn.Linear(3, 1, dtype=torch.float64)
    assert nn.MLP.from_torch(linear).activations == ["linear"]
    neuron = nn.Neuron.from_torch(torch.nn.Sequential(linear, torch.nn.Sigmoid()))
    assert neuron.activation == "sigmoid" and neuron.b.data == linear.bias.item()
    layer = nn.Layer.from_torch(sequential[:2])
    assert (layer.nin, layer.nout, layer.activation) == (3, 8, "tanh")


def test_from_torch_leaves_python_random_alone():
    sequential = nn.MLP(2, [3, 1], seed=0).to_torch()
    state = random.getstate()
    nn.MLP.from_torch(sequential)
    assert random.getstate() == state


def _linear(nin, nout, **kwargs):
    return torch.nn.Linear(nin, nout, dtype=torch.float64, **kwargs)


def _nan_linear():
    layer = _linear(3, 2)
    with torch.no_grad():
        layer.weight[1, 0] = math.nan
    return layer


BAD_SEQUENTIALS = {
    "conv2d": (lambda: torch.nn.Sequential(_linear(3, 4), torch.nn.Conv2d(1, 1, 3)),
               r"layer 1 \(Conv2d\(1, 1.*has no chainrule counterpart"),
    "dropout": (lambda: torch.nn.Sequential(_linear(3, 4), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                            _linear(4, 1)),
                r"layer 2 \(Dropout\(p=0.5.*has no chainrule counterpart"),
    "leaky_relu": (lambda: torch.nn.Sequential(_linear(3, 4), torch.nn.LeakyReLU()),
                   r"layer 1 \(LeakyReLU.*has no chainrule counterpart.*ReLU, Tanh, Sigmoid"),
    "float32": (lambda: torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()),
                r"layer 0 \(Linear\(in_features=3.*torch.float32 weights.*\.double\(\)"),
    "shapes": (lambda: torch.nn.Sequential(_linear(3, 4), torch.nn.ReLU(), _linear(5, 1)),
               r"layer 2 \(Linear\(in_features=5.*takes 5 inputs.*gives 4 outputs"),
    "no_bias": (lambda: torch.nn.Sequential(_linear(3, 4, bias=False)),
                r"layer 0 \(Linear.*bias=False\)\) has no bias; every chainrule neuron has one"),
    "activation_first": (lambda: torch.nn.Sequential(torch.nn.Tanh(), _linear(3, 4)),
                         r"layer 0 \(Tanh\(\)\) is an activation that does not follow a Linear"),
    "two_activations": (lambda: torch.nn.Sequential(_linear(3, 4), torch.nn.ReLU(),
                                                    torch.nn.Tanh()),
                        r"layer 2 \(Tanh\(\)\) is an activation that does not follow"),
    "nested": (lambda: torch.nn.Sequential(torch.nn.Sequential(_linear(3, 4))),
               r"layer 0 \(Sequential\( \(0\): Linear\(in_features=3.*\) \)\) has no chainrule "
               "counterpart"),
    "nan": (lambda: torch.nn.Sequential(_nan_linear()),
            r"layer 0 \(Linear.*weight holds a non-finite number"),
    "empty": (lambda: torch.nn.Sequential(), r"the Sequential holds no Linear layer"),
}


@pytest.mark.parametrize("case", sorted(BAD_SEQUENTIALS))
def test_from_torch_names_the_layer_it_cannot_read(case):
    make, message = BAD_SEQUENTIALS[case]
    with pytest.raises(ValueError, match=r"MLP.from_torch\(\): " + message):
        nn.MLP.from_torch(make())


def test_from_torch_checks_what_the_class_can_hold():
    with pytest.raises(TypeError, match=r"expected a torch.nn.Sequential .*got list"):
        nn.MLP.from_torch([_linear(3, 4)])
    two = torch.nn.Sequential(_linear(3, 4), torch.nn.ReLU(), _linear(4, 1))
    with pytest.raises(ValueError, match=r"Layer.from_torch\(\): a Layer is one Linear layer, "
                                         r"the Sequential has 2; use nn.MLP.from_torch"):
        nn.Layer.from_torch(two)
    with pytest.raises(ValueError, match=r"Neuron.from_torch\(\): a Neuron has one output, "
                                         r"the Linear layer has 4"):
        nn.Neuron.from_torch(two[:2])


# ---- optimizers: N steps here, M there -----------------------------------------------------------

OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.5,
                 "weight_decay": 0.1, "eps": 1e-6}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.05, "weight_decay": 0.05}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.05}),
    ("Rprop", {"lr": 0.01, "etas": (0.4, 1.3), "step_sizes": (1e-4, 1.0)}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "t0": 3.0, "weight_decay": 0.05}),
]
IDS = [f"{name}-{kwargs}" for name, kwargs in OPTIMIZERS]
N, M = 4, 5


def new_model():
    return nn.MLP(3, [5, 4, 2], activation="tanh", seed=11)


def chainrule_steps(model, opt, steps):
    for _ in range(steps):
        opt.zero_grad()
        chainrule_loss(model).backward()
        opt.step()


def torch_steps(sequential, opt, steps):
    for _ in range(steps):
        opt.zero_grad()
        torch_loss(sequential).backward()
        opt.step()


def torch_state(opt):
    """The torch optimizer's state as plain lists, tensor by tensor, in parameter order."""
    return [{key: value.tolist() for key, value in opt.state[p].items()}
            for group in opt.param_groups for p in group["params"]]


def flat(x):
    return [z for y in x for z in flat(y)] if isinstance(x, list) else [x]


def assert_states_close(a, b):
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        assert sorted(sa) == sorted(sb)
        for key in sa:
            assert flat(sa[key]) == pytest.approx(flat(sb[key]), rel=1e-12, abs=1e-14), key


@pytest.fixture(autouse=True)
def float64_scalar_state(request):
    """NAdam's mu_product and ASGD's eta and mu are one float per tensor in torch, float32
    unless float64 is the default dtype: the optimizer tests compare them in float64."""
    callspec = getattr(request.node, "callspec", None)
    if (callspec.params.get("name") if callspec else None) not in ("NAdam", "ASGD"):
        yield
        return
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=IDS)
def test_n_steps_here_then_m_in_torch_equal_n_plus_m_on_either_side(name, kwargs):
    cls, torch_cls = getattr(nn.optim, name), getattr(torch.optim, name)

    # N + M steps in chainrule alone, and in torch alone (from the same weights).
    alone = new_model()
    torch_alone = alone.to_torch()
    opt = cls(alone.parameters(), **kwargs)
    torch_opt = torch_cls(torch_alone.parameters(), **kwargs)
    chainrule_steps(alone, opt, N)
    torch_steps(torch_alone, torch_opt, N)
    state_after_n = torch_state(torch_opt)
    chainrule_steps(alone, opt, M)
    torch_steps(torch_alone, torch_opt, M)
    assert_close(alone.state_dict(), torch_numbers(alone, torch_alone), 1e-9, "weights")

    # N steps in chainrule, then model and optimizer to torch, then M steps there.
    model = new_model()
    opt = cls(model.parameters(), **kwargs)
    chainrule_steps(model, opt, N)
    sequential = model.to_torch()
    moved = nn.optim.to_torch(opt, sequential.parameters())
    assert type(moved) is torch_cls
    assert_states_close(torch_state(moved), state_after_n)
    torch_steps(sequential, moved, M)
    assert_close(alone.state_dict(), torch_numbers(alone, sequential), 1e-9, "weights")
    assert model.state_dict() != alone.state_dict()  # the chainrule model stayed at step N

    # The way back: N steps in torch, then to chainrule, then M steps here.
    start = new_model()
    sequential = start.to_torch()
    torch_opt = torch_cls(sequential.parameters(), **kwargs)
    torch_steps(sequential, torch_opt, N)
    back = nn.MLP.from_torch(sequential)
    opt_back = nn.optim.from_torch(torch_opt, back.parameters())
    assert type(opt_back) is cls
    chainrule_steps(back, opt_back, M)
    assert_close(back.state_dict(), alone.state_dict(), 1e-9, "weights")


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=IDS)
def test_every_hyper_parameter_and_state_entry_crosses_both_ways(name, kwargs):
    model = new_model()
    opt = getattr(nn.optim, name)(model.parameters(), **kwargs)
    chainrule_steps(model, opt, 2)
    sequential = model.to_torch()
    moved = nn.optim.to_torch(opt, sequential)       # a Module works as well as its parameters
    group = moved.param_groups[0]
    for key in opt.hyperparams:                       # whatever the class has, maximize included
        assert group[key] == getattr(opt, key), key
    back = nn.optim.from_torch(moved, model.parameters())
    assert back.state_dict() == opt.state_dict()      # exact, step counts as ints
    assert all(isinstance(s["step"], int) for s in back.state if "step" in s)


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=IDS)
def test_an_optimizer_that_has_not_stepped_crosses_as_new(name, kwargs):
    model = new_model()
    opt = getattr(nn.optim, name)(model.parameters(), **kwargs)
    moved = nn.optim.to_torch(opt, model.to_torch().parameters())
    fresh = getattr(torch.optim, name)(new_model().to_torch().parameters(), **kwargs)
    assert_states_close(torch_state(moved), torch_state(fresh))
    back = nn.optim.from_torch(moved, model.parameters())
    assert back.state == [{} for _ in model.parameters()]


def test_a_schedules_initial_lr_and_current_lr_cross():
    model = new_model()
    opt = nn.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    sched = nn.schedules.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=10)
    for _ in range(3):
        chainrule_steps(model, opt, 1)
        sched.step()
    moved = nn.optim.to_torch(opt, model.to_torch().parameters())
    assert moved.param_groups[0]["lr"] == opt.lr < 1.0
    assert moved.param_groups[0]["initial_lr"] == opt.initial_lr == 1.0
    assert nn.optim.from_torch(moved, model.parameters()).initial_lr == 1.0


def test_plain_values_pair_with_tensors_element_by_element():
    """Outside a Linear layer's weight-and-bias pair, tensors are read in row-major order."""
    values = [Value(x) for x in (0.5, -1.0, 2.0, 0.25, 1.5)]

    def loss(a, b, c, d, e):
        return (a * b - c) ** 2 + (d + e * a).tanh()

    opt = nn.optim.Adam(values, lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss(*values).backward()
        opt.step()
    # A 0-d tensor for the first Value, a 2x2 matrix (no bias after it) for the other four.
    moved = nn.optim.to_torch(opt, _fill([(), (2, 2)], values))
    params = moved.param_groups[0]["params"]
    for _ in range(3):
        moved.zero_grad()
        loss(params[0], *params[1].flatten()).backward()
        moved.step()
        opt.zero_grad()
        loss(*values).backward()
        opt.step()
    theirs = [params[0].item(), *params[1].flatten().tolist()]
    assert [v.data for v in values] == pytest.approx(theirs, rel=1e-12, abs=1e-12)


def _fill(shapes, values):
    """Tensors of these shapes holding the Values' current numbers (row-major)."""
    flat = iter([v.data for v in values])
    out = []
    for shape in shapes:
        n = math.prod(shape)
        out.append(torch.tensor([next(flat) for _ in range(n)],
                                dtype=torch.float64).reshape(shape).requires_grad_())
    return out


# ---- optimizers: what cannot cross ---------------------------------------------------------------


def test_optimizer_to_torch_refuses_mismatched_parameters():
    model = new_model()
    opt = nn.optim.Adam(model.parameters(), lr=0.1)
    sequential = model.to_torch()
    chainrule_steps(model, opt, 1)  # the torch copy is now one step behind
    with pytest.raises(ValueError, match=r"opt.params\[0\] is .* but its torch counterpart "
                                         r"0.weight\[0, 0\] is .*model.to_torch\(\) after the "
                                         r"last step"):
        nn.optim.to_torch(opt, sequential)
    with pytest.raises(ValueError, match=r"54 parameters but the torch tensors hold 44 numbers"):
        nn.optim.to_torch(opt, list(model.to_torch().parameters())[:-2])
    with pytest.raises(ValueError, match=r"0.weight is torch.float32; .*float64"):
        nn.optim.to_torch(opt, model.to_torch().float())
    with pytest.raises(TypeError, match=r"got a single tensor; wrap it in a list"):
        nn.optim.to_torch(opt, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"torch_params\[1\] must be a torch.Tensor, got float"):
        nn.optim.to_torch(nn.optim.SGD([Value(1.0), Value(2.0)], lr=0.1),
                          [torch.tensor(1.0, dtype=torch.float64), 2.0])


def test_optimizer_to_torch_refuses_what_torch_would_read_differently():
    class Custom(nn.optim.SGD):
        pass

    values = [Value(1.0), Value(2.0)]
    with pytest.raises(TypeError, match=r"expected one of the optimizers SGD, Adam.* got Custom"):
        nn.optim.to_torch(Custom(values, lr=0.1), [torch.tensor([1.0, 2.0], dtype=torch.float64)])
    opt = nn.optim.Adam(values, lr=0.1)
    opt.state = [{"step": 3, "exp_avg": 0.1, "exp_avg_sq": 0.2},
                 {"step": 4, "exp_avg": 0.1, "exp_avg_sq": 0.2}]
    with pytest.raises(ValueError, match=r"torch_params\[0\] have different "
                                         r"step counts \[3, 4\]"):
        nn.optim.to_torch(opt, [torch.tensor([1.0, 2.0], dtype=torch.float64)])


def test_optimizer_from_torch_refuses_what_chainrule_cannot_hold():
    model = new_model()
    sequential = model.to_torch()
    params = list(sequential.parameters())
    climbing = torch.optim.SGD(params, lr=0.1, maximize=True)
    if "maximize" in nn.optim.SGD.hyperparams:
        assert nn.optim.from_torch(climbing, model.parameters()).maximize is True
    else:
        with pytest.raises(ValueError, match=r"maximize=True, which chainrule's SGD does not "):
            nn.optim.from_torch(climbing, model.parameters())
    plain = torch.optim.SGD(params, lr=0.1)
    plain.param_groups[0]["note"] = "a key of the user's own"   # not a torch setting: ignored
    assert nn.optim.from_torch(plain, model.parameters()).lr == 0.1
    two_groups = torch.optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    with pytest.raises(ValueError, match=r"has 2 parameter groups; a chainrule optimizer has one"):
        nn.optim.from_torch(two_groups, model.parameters())
    with pytest.raises(TypeError, match=r"expected a torch.optim SGD, .* got LBFGS"):
        nn.optim.from_torch(torch.optim.LBFGS(params), model.parameters())
    with pytest.raises(ValueError, match=r"params\[0\] is .* but its torch counterpart"):
        nn.optim.from_torch(torch.optim.SGD(params, lr=0.1), new_model_other().parameters())


def new_model_other():
    return nn.MLP(3, [5, 4, 2], activation="tanh", seed=12)
