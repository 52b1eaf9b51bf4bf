"""Tests for nn.optim: hand-computed first steps, parity with torch.optim, errors, resume."""

from __future__ import annotations

import json
import math

import pytest

from autodiff import Value
import nn
import nn.optim
from nn.optim import (TORCH_NAMESAKES, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop,
                      clip_grad_norm, registry)

# The registered optimizers that compute torch.optim's numbers (compared with torch below).
OPTIMIZERS = {e.cls.__name__: e.cls for e in registry.OPTIMIZERS.values()
              if e.cls in TORCH_NAMESAKES}


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = g


# ---- first steps, computed by hand --------------------------------------------------------


def test_sgd_plain_step_is_w_minus_lr_grad():
    w, b = Value(1.0), Value(-2.0)
    opt = SGD([w, b], lr=0.1)
    _set_grads([w, b], [0.5, -3.0])
    opt.step()
    assert w.data == pytest.approx(0.95, abs=1e-15)
    assert b.data == pytest.approx(-1.7, abs=1e-15)


def test_sgd_momentum_first_step_buffer_is_grad_without_dampening():
    w = Value(1.0)
    opt = SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    w.grad = 2.0
    opt.step()                      # b = 2 (no dampening on the first step)
    assert w.data == pytest.approx(0.8, abs=1e-15)
    w.grad = 1.0
    opt.step()                      # b = 0.9 * 2 + 0.5 * 1 = 2.3
    assert w.data == pytest.approx(0.57, abs=1e-15)


def test_sgd_nesterov_and_weight_decay_by_hand():
    w = Value(1.0)
    opt = SGD([w], lr=0.1, momentum=0.5, weight_decay=0.2, nesterov=True)
    w.grad = 1.0
    opt.step()                      # g = 1 + 0.2 = 1.2; b = 1.2; g = 1.2 + 0.6 = 1.8
    assert w.data == pytest.approx(0.82, abs=1e-15)
    w.grad = 1.0
    opt.step()                      # g = 1.164; b = 0.6 + 1.164 = 1.764; g = 1.164 + 0.882
    assert w.data == pytest.approx(0.82 - 0.1 * 2.046, abs=1e-15)


def test_adam_first_steps_by_hand():
    w = Value(1.0)
    opt = Adam([w], lr=0.1)
    w.grad = 2.0
    opt.step()  # m = 0.2, v = 0.004; m / 0.1 = 2, sqrt(v / 0.001) = 2: a step of lr * 2/(2+eps)
    assert w.data == pytest.approx(1.0 - 0.1 * 2.0 / (2.0 + 1e-8), abs=1e-15)
    w.grad = -1.0
    opt.step()  # m = 0.18 - 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996
    m_hat = 0.08 / (1 - 0.81)
    v_hat = 0.004996 / (1 - 0.998001)
    first = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8)
    assert w.data == pytest.approx(first - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8), abs=1e-15)
    assert opt.state[0]["step"] == 2


def test_adam_amsgrad_keeps_the_largest_second_moment():
    w = Value(0.0)
    opt = Adam([w], lr=0.1, amsgrad=True)
    w.grad = 10.0
    opt.step()
    w.grad = 0.0
    opt.step()  # v shrinks to 0.999 * 0.1 = 0.0999 but v_max stays 0.1
    assert opt.state[0]["max_exp_avg_sq"] == pytest.approx(0.1, abs=1e-15)
    assert opt.state[0]["exp_avg_sq"] == pytest.approx(0.0999, abs=1e-15)


def test_adamw_decays_the_weight_not_the_gradient():
    w = Value(2.0)
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = 0.0     # no gradient at all: only the decoupled decay moves w
    opt.step()
    assert w.data == pytest.approx(2.0 * (1 - 0.1 * 0.5), abs=1e-15)
    assert opt.state[0]["exp_avg"] == 0.0


def test_rmsprop_first_step_by_hand():
    w = Value(1.0)
    opt = RMSprop([w], lr=0.01)
    w.grad = 2.0
    opt.step()  # v = 0.01 * 4 = 0.04, avg = 0.2 + eps
    assert w.data == pytest.approx(1.0 - 0.01 * 2.0 / (0.2 + 1e-8), abs=1e-15)


def test_rmsprop_centered_momentum_first_step_by_hand():
    w = Value(1.0)
    opt = RMSprop([w], lr=0.01, alpha=0.9, momentum=0.5, centered=True)
    w.grad = 2.0
    opt.step()  # v = 0.4, g_avg = 0.2, avg = sqrt(0.4 - 0.04) + eps = 0.6 + eps, b = 2 / avg
    assert w.data == pytest.approx(1.0 - 0.01 * 2.0 / (0.6 + 1e-8), abs=1e-15)
    assert opt.state[0]["momentum_buffer"] == pytest.approx(2.0 / 0.6, abs=1e-6)


def test_adagrad_first_steps_by_hand():
    w = Value(1.0)
    opt = Adagrad([w], lr=0.1, lr_decay=0.5, initial_accumulator_value=5.0)
    w.grad = 2.0
    opt.step()  # s = 5 + 4 = 9, clr = 0.1: step 0.1 * 2 / (3 + eps)
    first = 1.0 - 0.2 / (3.0 + 1e-10)
    assert w.data == pytest.approx(first, abs=1e-15)
    w.grad = 4.0
    opt.step()  # s = 25, clr = 0.1 / 1.5: step (0.1 / 1.5) * 4 / (5 + eps)
    assert w.data == pytest.approx(first - (0.1 / 1.5) * 4.0 / (5.0 + 1e-10), abs=1e-15)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_zero_gradient_still_counts_as_a_step(name):
    if "weight_decay" not in OPTIMIZERS[name].hyperparams:
        pytest.skip(f"{name} has no weight decay (nor has torch's)")
    w, u = Value(1.0), Value(1.0)
    opt = OPTIMIZERS[name]([w, u], lr=0.1, weight_decay=0.5)
    w.grad, u.grad = 0.0, 1.0
    opt.step()
    # Weight decay alone moves w (every optimizer here applies it when the gradient is 0).
    assert w.data < 1.0
    if opt.state[0]:
        assert opt.state[0]["step"] == 1


def test_grad_that_is_a_value_is_read_as_its_float():
    w = Value(3.0)
    (w * w).backward(create_graph=True)
    assert isinstance(w.grad, Value)
    SGD([w], lr=0.1).step()
    assert type(w.data) is float and w.data == pytest.approx(2.4, abs=1e-15)


def test_zero_grad_resets_every_gradient():
    ps = [Value(1.0), Value(2.0)]
    opt = Adam(ps)
    (ps[0] * ps[1]).backward()
    assert ps[0].grad == 2.0
    opt.zero_grad()
    assert [p.grad for p in ps] == [0.0, 0.0]


def test_params_accepts_a_generator_and_keeps_its_order():
    ps = [Value(float(i)) for i in range(4)]
    opt = SGD((p for p in ps), lr=0.1)
    assert opt.params == ps and all(a is b for a, b in zip(opt.params, ps))


def test_lr_can_be_changed_between_steps():
    w = Value(1.0)
    opt = SGD([w], lr=0.1)
    w.grad = 1.0
    opt.step()
    opt.lr = 0.5
    opt.step()
    assert w.data == pytest.approx(1.0 - 0.1 - 0.5, abs=1e-15)
    with pytest.raises(ValueError, match="SGD.*lr=-1.0"):
        opt.lr = -1.0


# ---- invalid hyper-parameters and parameters --------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=-0.1), r"SGD: invalid learning rate lr=-0.1"),
    (lambda p: SGD(p, lr=float("nan")), r"SGD: invalid learning rate lr=nan"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.5), r"SGD: invalid momentum=-0.5"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1), r"SGD: invalid weight_decay=-1.0"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), r"SGD: nesterov=True needs momentum > 0"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"dampening=0.1"),
    (lambda p: Adam(p, lr=-1e-3), r"Adam: invalid learning rate lr=-0.001"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), r"Adam: invalid betas\[0\]=1.0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), r"Adam: invalid betas\[1\]=-0.1"),
    (lambda p: Adam(p, eps=-1e-8), r"Adam: invalid eps=-1e-08"),
    (lambda p: Adam(p, weight_decay=-0.1), r"Adam: invalid weight_decay=-0.1"),
    (lambda p: AdamW(p, betas=(0.9, 1.5)), r"AdamW: invalid betas\[1\]=1.5"),
    (lambda p: AdamW(p, weight_decay=-0.01), r"AdamW: invalid weight_decay=-0.01"),
    (lambda p: RMSprop(p, lr=-0.01), r"RMSprop: invalid learning rate lr=-0.01"),
    (lambda p: RMSprop(p, alpha=-0.5), r"RMSprop: invalid alpha=-0.5"),
    (lambda p: RMSprop(p, eps=-1.0), r"RMSprop: invalid eps=-1.0"),
    (lambda p: RMSprop(p, momentum=-0.9), r"RMSprop: invalid momentum=-0.9"),
    (lambda p: RMSprop(p, weight_decay=-2), r"RMSprop: invalid weight_decay=-2.0"),
    (lambda p: Adagrad(p, lr_decay=-0.1), r"Adagrad: invalid lr_decay=-0.1"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), r"initial_accumulator_value=-1.0"),
    (lambda p: Adagrad(p, eps=-1e-10), r"Adagrad: invalid eps=-1e-10"),
    (lambda p: Adagrad(p, weight_decay=-1), r"Adagrad: invalid weight_decay=-1.0"),
])
def test_invalid_hyperparameters_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make([Value(1.0)])


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr="0.1"), r"SGD: learning rate lr must be a number, got str"),
    (lambda p: Adam(p, betas=0.9), r"Adam: betas must be a pair"),
    (lambda p: Adam(p, betas=(0.9, None)), r"Adam: betas\[1\] must be a number"),
])
def test_wrong_types_raise_type_error(make, message):
    with pytest.raises(TypeError, match=message):
        make([Value(1.0)])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_bad_params_are_rejected_naming_the_optimizer(name):
    cls = OPTIMIZERS[name]
    v = Value(1.0)
    with pytest.raises(ValueError, match=f"{name}: got an empty parameter list"):
        cls([], lr=0.1)
    with pytest.raises(ValueError, match=f"{name}: params\\[2\\] is the same Value as params"):
        cls([v, Value(2.0), v], lr=0.1)
    with pytest.raises(TypeError, match=f"{name}: params\\[1\\] must be a Value, got float"):
        cls([v, 2.0], lr=0.1)
    with pytest.raises(TypeError, match=f"{name}: .*not a set"):
        cls({v}, lr=0.1)
    with pytest.raises(TypeError, match=f"{name}: .*single Value"):
        cls(v, lr=0.1)
    with pytest.raises(TypeError, match=f"{name}: params must be an iterable"):
        cls(3, lr=0.1)
    with pytest.raises(ValueError, match=f"{name}: params\\[1\\] was computed by 'mul'"):
        cls([v, v * 2], lr=0.1)


def test_base_optimizer_step_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer([Value(1.0)], lr=0.1).step()


# ---- the same loss for autodiff and torch ------------------------------------------------

START = [-1.2, 1.0, 0.5, -0.3, 0.8, 0.25]


def loss_fn(p):
    """A small loss written with operators and methods both Value and torch.Tensor have.

    A damped Rosenbrock valley, a one-neuron tanh "network" on two inputs, a sigmoid, a
    product term, and p[5] appears nowhere (its gradient stays 0, as a dead weight's would).
    """
    a, b, c, d, e, _ = p
    valley = (1 - a) ** 2 + 10 * (b - a * a) ** 2
    h1 = (a * 0.5 + c * -1.5 + e).tanh()
    h2 = (b * 2.0 + d * 0.7 - e).tanh()
    fit = (h1 * c + h2 * d - 0.3) ** 2 + ((c + d) * 0.8).sigmoid()
    return valley + fit + 0.1 * (c * d * e) ** 2


def objective(kwargs):
    """loss_fn, or -loss_fn for maximize=True (so that climbing it converges as descent does)."""
    return (lambda p: -loss_fn(p)) if kwargs.get("maximize") else loss_fn


def run_autodiff(cls, kwargs, steps=50, start=START, opt_state=None, f=None):
    params = [Value(x) for x in start]
    opt = cls(params, **kwargs)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    f = f or objective(opt.state_dict()["hyperparams"])
    for _ in range(steps):
        opt.zero_grad()
        f(params).backward()
        opt.step()
    return [p.data for p in params], opt


def run_torch(torch, name, kwargs, steps=50):
    params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in START]
    opt = getattr(torch.optim, name)(params, **kwargs)
    f = objective(kwargs)
    for _ in range(steps):
        opt.zero_grad()
        f(params).backward()
        for p in params:
            # torch skips a parameter whose grad is None; ours always has a float grad.
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        opt.step()
    return [p.item() for p in params]


CASES = [
    ("SGD", {"lr": 0.01}),
    ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ("SGD", {"lr": 0.01, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.01, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.01, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.005, "momentum": 0.5, "weight_decay": 0.2, "nesterov": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-3}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True, "betas": (0.5, 0.99)}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.005, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.005, "centered": True}),
    ("RMSprop", {"lr": 0.002, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.002, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.005, "eps": 1e-2, "weight_decay": 0.3}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-3, "lr_decay": 0.01, "weight_decay": 0.05}),
    # maximize=True (on -loss_fn): every optimizer, with the options that touch the gradient.
    ("SGD", {"lr": 0.01, "maximize": True}),
    ("SGD", {"lr": 0.01, "momentum": 0.9, "dampening": 0.3, "maximize": True}),
    ("SGD", {"lr": 0.005, "momentum": 0.5, "weight_decay": 0.2, "nesterov": True,
             "maximize": True}),
    ("Adam", {"lr": 0.05, "maximize": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {"lr": 0.005, "maximize": True}),
    ("RMSprop", {"lr": 0.002, "momentum": 0.5, "centered": True, "weight_decay": 0.1,
                 "maximize": True}),
    ("Adagrad", {"lr": 0.1, "maximize": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "maximize": True}),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_fifty_steps_agree_with_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours, _ = run_autodiff(OPTIMIZERS[name], kwargs)
    theirs = run_torch(torch, name, kwargs)
    assert ours != START
    for i, (x, y) in enumerate(zip(ours, theirs)):
        assert abs(x - y) <= 1e-9 * max(1.0, abs(y)), f"{name}{kwargs}: param {i}: {x} vs {y}"


# ---- resume from JSON -----------------------------------------------------------------------


RESUME_CASES = CASES[1::2]


@pytest.mark.parametrize("name, kwargs", RESUME_CASES, ids=[f"{n}-{kw}" for n, kw in RESUME_CASES])
def test_resume_from_json_gives_the_same_trajectory(name, kwargs):
    cls = OPTIMIZERS[name]
    uninterrupted, _ = run_autodiff(cls, kwargs, steps=50)
    halfway, opt = run_autodiff(cls, kwargs, steps=20)
    saved = json.loads(json.dumps({"params": halfway, "optimizer": opt.state_dict()}))
    # A fresh optimizer with other hyper-parameters: load_state_dict must restore them all.
    resumed, _ = run_autodiff(cls, {"lr": 0.5}, steps=30, start=saved["params"],
                              opt_state=saved["optimizer"])
    assert resumed == uninterrupted


def test_state_dict_is_plain_json_and_keyed_by_parameter_position():
    _, opt = run_autodiff(Adam, {"lr": 0.05, "amsgrad": True}, steps=3)
    sd = opt.state_dict()
    assert json.loads(json.dumps(sd)) == {**sd, "hyperparams": {**sd["hyperparams"],
                                                                "betas": [0.9, 0.999]}}
    assert len(sd["state"]) == len(START)
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert sd["state"][0]["step"] == 3


def test_load_state_dict_rejects_mismatches():
    _, adam = run_autodiff(Adam, {}, steps=1)
    sd = adam.state_dict()
    with pytest.raises(ValueError, match="SGD.load_state_dict: expected the state of a SGD"):
        SGD([Value(0.0)], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="the state has 6 parameters, this optimizer has 1"):
        Adam([Value(0.0)]).load_state_dict(sd)
    bad = json.loads(json.dumps(sd))
    bad["hyperparams"]["betas"] = [0.9, 2.0]
    with pytest.raises(ValueError, match=r"Adam: invalid betas\[1\]=2.0"):
        Adam([Value(0.0) for _ in START]).load_state_dict(bad)


# ---- gradient clipping ---------------------------------------------------------------------


def test_clip_grad_norm_by_hand():
    ps = [Value(0.0), Value(0.0)]
    _set_grads(ps, [3.0, 4.0])
    total = clip_grad_norm(ps, max_norm=1.0)
    assert total == 5.0
    assert ps[0].grad == pytest.approx(3.0 / (5.0 + 1e-6), abs=1e-15)
    assert ps[1].grad == pytest.approx(4.0 / (5.0 + 1e-6), abs=1e-15)
    _set_grads(ps, [3.0, 4.0])
    assert clip_grad_norm(ps, max_norm=10.0) == 5.0
    assert [p.grad for p in ps] == [3.0, 4.0]      # under the limit: untouched
    _set_grads(ps, [3.0, -4.0])
    assert clip_grad_norm(ps, max_norm=2.0, norm_type=float("inf")) == 4.0


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_agrees_with_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    grads = [0.3, -1.7, 2.2, 0.0, -0.45]
    ps = [Value(1.0) for _ in grads]
    _set_grads(ps, grads)
    ts = [torch.ones((), dtype=torch.float64, requires_grad=True) for _ in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.tensor(g, dtype=torch.float64)
    ours = clip_grad_norm(ps, max_norm, norm_type)
    theirs = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type).item()
    assert ours == pytest.approx(theirs, rel=1e-12)
    for p, t in zip(ps, ts):
        assert p.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-15)


def test_clip_grad_norm_of_no_parameters_is_zero():
    assert clip_grad_norm([], max_norm=1.0) == 0.0


def test_clip_grad_norm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="clip_grad_norm: norm_type must be > 0, got -1.0"):
        clip_grad_norm([Value(1.0)], 1.0, norm_type=-1)
    with pytest.raises(TypeError, match="clip_grad_norm: max_norm must be a number"):
        clip_grad_norm([Value(1.0)], "1")


# ---- maximize ------------------------------------------------------------------------------


MAXIMIZE_CASES = [(name, kwargs) for name, kwargs in CASES if kwargs.get("maximize")]


@pytest.mark.parametrize("name, kwargs", MAXIMIZE_CASES,
                         ids=[f"{n}-{kw}" for n, kw in MAXIMIZE_CASES])
def test_maximize_climbs_f_exactly_as_minimizing_minus_f(name, kwargs):
    # The gradient of -f is exactly -(gradient of f), and maximize negates it back: bit for bit
    # the same trajectory as descending f.
    cls = OPTIMIZERS[name]
    climbed, _ = run_autodiff(cls, kwargs, steps=20, f=lambda p: -loss_fn(p))
    descended, _ = run_autodiff(cls, {**kwargs, "maximize": False}, steps=20, f=loss_fn)
    assert climbed == descended
    raised, _ = run_autodiff(cls, kwargs, steps=5, f=loss_fn)   # and on f itself it goes up
    assert loss_fn([Value(x) for x in raised]).data > loss_fn([Value(x) for x in START]).data


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_maximize_is_saved_and_restored(name):
    _, opt = run_autodiff(OPTIMIZERS[name], {"lr": 0.01, "maximize": True}, steps=2)
    sd = json.loads(json.dumps(opt.state_dict()))
    assert sd["hyperparams"]["maximize"] is True
    fresh = OPTIMIZERS[name]([Value(x) for x in START], lr=0.01)
    fresh.load_state_dict(sd)
    assert fresh.maximize is True


# ---- no silent bad input --------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov="no"),
     r"SGD: nesterov must be True or False, got str: 'no'"),
    (lambda p: SGD(p, lr=0.1, maximize=1), r"SGD: maximize must be True or False, got int"),
    (lambda p: Adam(p, amsgrad="false"), r"Adam: amsgrad must be True or False, got str"),
    (lambda p: Adam(p, decoupled_weight_decay=None), r"Adam: decoupled_weight_decay must be"),
    (lambda p: AdamW(p, maximize="yes"), r"AdamW: maximize must be True or False"),
    (lambda p: RMSprop(p, centered=0), r"RMSprop: centered must be True or False, got int"),
    (lambda p: Adagrad(p, maximize="true"), r"Adagrad: maximize must be True or False"),
    (lambda p: SGD(p, lr=True), r"SGD: learning rate lr must be a number, got bool"),
    (lambda p: Adam(p, eps="1e-8"), r"Adam: eps must be a number, got str"),
])
def test_flags_must_be_bools_and_numbers_must_be_numbers(make, message):
    with pytest.raises(TypeError, match=message):
        make([Value(1.0)])


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=float("inf")), r"SGD: invalid learning rate lr=inf"),
    (lambda p: SGD(p, lr=0.1, dampening=float("nan")), r"SGD: invalid dampening=nan"),
    (lambda p: Adam(p, weight_decay=float("inf")), r"Adam: invalid weight_decay=inf"),
    (lambda p: RMSprop(p, alpha=1.5), r"RMSprop: invalid alpha=1.5, it must be in \[0, 1\]"),
    (lambda p: Adagrad(p, eps=float("nan")), r"Adagrad: invalid eps=nan"),
])
def test_numbers_out_of_range_are_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make([Value(1.0)])


def _snapshot(params, opt):
    return [p.data for p in params], json.dumps(opt.state_dict())


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("bad_grad", [None, "1.0", True])
def test_a_step_with_a_bad_grad_changes_nothing(name, bad_grad):
    kwargs = {"lr": 0.01, "weight_decay": 0.1}
    if "weight_decay" not in OPTIMIZERS[name].hyperparams:  # Rprop has none, as torch's
        del kwargs["weight_decay"]
    _, opt = run_autodiff(OPTIMIZERS[name], kwargs, steps=3)
    params = opt.params
    loss_fn(params).backward()
    params[4].grad = bad_grad          # a later parameter: the earlier ones must not move
    before = _snapshot(params, opt)
    with pytest.raises(TypeError, match=rf"{name}: params\[4\].grad must be a number"):
        opt.step()
    assert _snapshot(params, opt) == before


@pytest.mark.parametrize("name, kwargs", [("Adam", {"eps": 0.0}), ("RMSprop", {"eps": 0.0}),
                                          ("Adagrad", {"eps": 0.0}),
                                          ("RMSprop", {"eps": 0.0, "alpha": 0.0,
                                                       "centered": True})])
def test_zero_denominators_give_torchs_nan_and_inf_instead_of_stopping_half_way(name, kwargs):
    # With eps = 0 a parameter whose gradients were all 0 divides 0 by 0 (torch: nan), and a
    # centered RMSprop with alpha = 0 divides g by 0 (torch: +-inf). Never a ZeroDivisionError.
    torch = pytest.importorskip("torch")
    grads = [0.0, 2.0, -3.0]
    ours = [Value(1.0) for _ in grads]
    theirs = [torch.tensor(1.0, dtype=torch.float64, requires_grad=True) for _ in grads]
    opt, topt = OPTIMIZERS[name](ours, lr=0.1, **kwargs), getattr(torch.optim, name)(
        theirs, lr=0.1, **kwargs)
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = g, torch.tensor(g, dtype=torch.float64)
    opt.step()
    topt.step()
    got, want = [p.data for p in ours], [t.item() for t in theirs]
    assert any(not math.isfinite(w) for w in want)          # the edge case really is reached
    assert [repr(x) for x in got] == [repr(w) for w in want]


def test_load_state_dict_without_hyperparams_names_the_field():
    opt = SGD([Value(1.0)], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: the 'hyperparams' field is "
                                         r"missing"):
        opt.load_state_dict({"optimizer": "SGD", "state": [{}]})
    with pytest.raises(ValueError, match=r"the 'state' field is missing"):
        opt.load_state_dict({"optimizer": "SGD", "hyperparams": {"lr": 0.1}})


@pytest.mark.parametrize("make", [
    lambda: SGD([Value(1.0)], lr=0.1),
    lambda: nn.optim.LBFGS([Value(1.0)]),
    lambda: nn.optim.CMAES([Value(1.0), Value(2.0)], seed=0),
    lambda: nn.optim.GeneticAlgorithm([Value(1.0)], popsize=4, seed=0),
    lambda: nn.optim.Muon([[[Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]]], lr=0.1),
    lambda: nn.optim.Adafactor([[[Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]]]),
], ids=["SGD", "LBFGS", "CMAES", "GeneticAlgorithm", "Muon", "Adafactor"])
def test_every_kind_of_optimizer_checks_a_saved_state_alike(make):
    """One check of what a state_dict must hold serves the per-parameter, closure and matrix
    optimizers: the same messages, and nothing changes when it fails."""
    opt = make()
    saved = opt.state_dict()
    for edit, words in [
            (lambda sd: sd.pop("hyperparams"), r"the 'hyperparams' field is missing"),
            (lambda sd: sd.pop("state"), r"the 'state' field is missing"),
            (lambda sd: sd.update(hyperparams=[0.1]), r"'hyperparams' must be a dict of "),
            (lambda sd: sd["hyperparams"].update(bogus=1), r"unknown hyper-parameter 'bogus'"),
            (lambda sd: sd.update(optimizer="Nope"), r"expected the state of a ")]:
        bad = json.loads(json.dumps(saved))
        edit(bad)
        with pytest.raises(ValueError, match=f"{opt.name}.load_state_dict: {words}"):
            opt.load_state_dict(bad)
        assert json.dumps(opt.state_dict()) == json.dumps(saved)
    opt.load_state_dict(json.loads(json.dumps(saved)))  # the saved state itself loads


def _adam_state(steps=3, **change):
    _, opt = run_autodiff(Adam, {"lr": 0.05, "amsgrad": True}, steps=steps)
    return json.loads(json.dumps(opt.state_dict()))


@pytest.mark.parametrize("edit, error, message", [
    (lambda sd: sd["hyperparams"].update(nesterov=True), ValueError,
     r"unknown hyper-parameter 'nesterov'; Adam has lr, betas"),
    (lambda sd: sd["hyperparams"].update(amsgrad="true"), TypeError,
     r"Adam: amsgrad must be True or False"),
    (lambda sd: sd.update(hyperparams=[0.1]), ValueError, r"'hyperparams' must be a dict"),
    (lambda sd: sd.update(initial_lr="0.1"), TypeError, r"initial_lr must be a number"),
    (lambda sd: sd.update(state={}), ValueError, r"the state has dict parameters"),
    (lambda sd: sd["state"][5].pop("max_exp_avg_sq"), ValueError,
     r"state\[5\] has the keys \['exp_avg', 'exp_avg_sq', 'step'\], but with these "
     r"hyper-parameters a step keeps"),
    (lambda sd: sd["state"][2].update(exp_avg="0.5"), TypeError,
     r"state\[2\]\['exp_avg'\] must be a number, got str"),
    (lambda sd: sd["state"][3].update(exp_avg_sq=-1.0), ValueError,
     r"invalid state\[3\]\['exp_avg_sq'\]=-1.0, it must be >= 0"),
    (lambda sd: sd["state"][1].update(step=0), ValueError, r"invalid state\[1\]\['step'\]=0"),
    (lambda sd: sd["state"][1].update(step=2.5), TypeError, r"state\[1\]\['step'\] must be an"),
])
def test_a_failed_optimizer_load_leaves_it_as_it_was(edit, error, message):
    bad = _adam_state()
    edit(bad)
    params = [Value(x) for x in START]
    opt = Adam(params, lr=0.01, betas=(0.5, 0.6))
    run_steps = 2
    for _ in range(run_steps):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    before = _snapshot(params, opt)
    with pytest.raises(error, match=message):
        opt.load_state_dict(bad)
    assert _snapshot(params, opt) == before


def test_clip_grad_norm_refuses_a_negative_limit_and_string_grads():
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be >= 0, got -1.0"):
        clip_grad_norm([Value(1.0)], -1.0)
    v = Value(1.0)
    v.grad = "2"
    with pytest.raises(TypeError, match=r"clip_grad_norm: params\[0\].grad must be a number"):
        clip_grad_norm([v], 1.0)


# ---- the registry: one name per optimizer, everywhere --------------------------------------------


def test_registering_an_optimizer_is_one_line_and_it_appears_everywhere():
    from nn import demo
    from nn.playground import Session
    from nn.playground.settings import optimizer_settings, options

    class HalfStep(SGD):
        """SGD that moves half as far (a stand-in for a new optimizer)."""

        def __init__(self, params, lr=0.1, shrink=0.5):
            super().__init__(params, lr=lr * shrink)
            self.shrink = shrink

    try:
        registry.register("half_step", HalfStep, lr=0.2, aliases={"half": {"shrink": 0.25}})
        assert demo.parse_args(["--optimizer", "half_step"]).optimizer == "half_step"
        opt = registry.build("half", [Value(1.0)])  # an alias, with what it implies
        assert type(opt) is HalfStep and opt.shrink == 0.25 and opt.lr == 0.2 * 0.25
        assert "half_step" in options()["optimizers"] and "shrink" in optimizer_settings(
            "half_step")
        s = Session(n=30, hidden=[2], optimizer="half", seed=0)
        assert s.settings["optimizer"] == "half_step" and s.settings["shrink"] == 0.25
        s.step()
        with pytest.raises(ValueError, match="the name 'half_step' is taken"):
            registry.register("half_step", HalfStep)
    finally:
        registry.OPTIMIZERS.pop("half_step", None)
        registry.ALIASES.pop("half", None)
    with pytest.raises(ValueError, match="optimizer: unknown choice 'half_step'"):
        registry.resolve("half_step")


def test_the_shared_division_gives_ieee_results_and_lives_in_base():
    import ast
    import pathlib

    from nn.optim.base import ieee_div
    assert ieee_div(3.0, 2.0) == 1.5
    assert math.isnan(ieee_div(0.0, 0.0)) and math.isnan(ieee_div(math.nan, 0.0))
    assert ieee_div(1.0, 0.0) == math.inf and ieee_div(-1.0, 0.0) == -math.inf
    assert ieee_div(1.0, -0.0) == -math.inf
    # The division the update rules share lives in base.py under a public name: no rule
    # reaches into first_order.py's private names for it.
    for path in pathlib.Path(nn.optim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "nn.optim.first_order":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
