"""Tests for nn.schedules: hand-computed sequences, parity with torch.optim.lr_scheduler, resume."""

from __future__ import annotations

import json
import math

import pytest

from autodiff import Value
from nn.optim import SGD, Adam
from nn.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    StepLR,
)

SCHEDULES = {cls.__name__: cls for cls in
             (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, LambdaLR)}


def sequence(cls, kwargs, steps=35, lr=0.1, opt_cls=SGD):
    """The lr of epochs 0, 1, ..., steps (set by construction, then by each step())."""
    opt = opt_cls([Value(1.0)], lr=lr)
    sched = cls(opt, **kwargs)
    lrs = [opt.lr]
    for _ in range(steps):
        opt.step()
        sched.step()
        assert sched.get_last_lr() == [opt.lr]
        lrs.append(opt.lr)
    return lrs


def assert_close(ours, expected, tol=1e-12):
    assert len(ours) == len(expected)
    for epoch, (x, y) in enumerate(zip(ours, expected)):
        assert abs(x - y) <= tol, f"epoch {epoch}: {x} vs {y}"


# ---- hand-computed values (closed forms), no torch needed ------------------------------


def test_step_lr_by_hand():
    lrs = sequence(StepLR, {"step_size": 3, "gamma": 0.5}, steps=9, lr=0.8)
    assert_close(lrs, [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1])


def test_step_lr_default_gamma():
    assert_close(sequence(StepLR, {"step_size": 1}, steps=3, lr=1.0), [1.0, 0.1, 0.01, 0.001])


def test_multistep_lr_by_hand_with_a_repeated_milestone():
    lrs = sequence(MultiStepLR, {"milestones": [4, 2, 4], "gamma": 0.5}, steps=5, lr=1.0)
    assert_close(lrs, [1.0, 1.0, 0.5, 0.5, 0.125, 0.125])


def test_exponential_lr_by_hand():
    lrs = sequence(ExponentialLR, {"gamma": 0.9}, steps=4, lr=2.0)
    assert_close(lrs, [2.0, 1.8, 1.62, 1.458, 1.3122])


def test_cosine_annealing_by_hand():
    lrs = sequence(CosineAnnealingLR, {"T_max": 4, "eta_min": 0.1}, steps=8, lr=1.1)
    # eta_min + (1.1 - 0.1) * (1 + cos(pi * e / 4)) / 2, with cos(pi/4) = sqrt(2)/2
    h = math.sqrt(2) / 4
    expected = [1.1, 0.6 + h, 0.6, 0.6 - h, 0.1, 0.6 - h, 0.6, 0.6 + h, 1.1]
    assert_close(lrs, expected)


def test_linear_warmup_by_hand():
    lrs = sequence(LinearLR, {"start_factor": 0.25, "total_iters": 3}, steps=5, lr=0.4)
    assert_close(lrs, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    lrs = sequence(LinearLR, {}, steps=6, lr=0.3)       # defaults: 1/3 -> 1 over 5 epochs
    assert_close(lrs, [0.1, 0.1 + 0.04, 0.1 + 0.08, 0.1 + 0.12, 0.1 + 0.16, 0.3, 0.3])


def test_linear_decay_to_end_factor():
    lrs = sequence(LinearLR, {"start_factor": 1.0, "end_factor": 0.5, "total_iters": 2},
                   steps=3, lr=1.0)
    assert_close(lrs, [1.0, 0.75, 0.5, 0.5])


def test_lambda_lr_by_hand():
    lrs = sequence(LambdaLR, {"lr_lambda": lambda e: 1.0 / (e + 1)}, steps=3, lr=0.6)
    assert_close(lrs, [0.6, 0.3, 0.2, 0.15])


def test_a_hand_change_to_the_lr_carries_on_in_chainable_schedules():
    opt = SGD([Value(1.0)], lr=1.0)
    sched = ExponentialLR(opt, gamma=0.5)
    sched.step()
    opt.lr = 10.0
    sched.step()
    assert opt.lr == 5.0


def test_schedules_drive_any_optimizer_and_the_optimizer_uses_the_new_lr():
    w = Value(0.0)
    opt = Adam([w], lr=0.1)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    w.grad = 1.0
    opt.step()                 # first Adam step moves by ~lr
    sched.step()
    before = w.data
    opt.step()                 # second step (same gradient) moves by ~0.05
    assert before == pytest.approx(-0.1, abs=1e-8)
    assert w.data - before == pytest.approx(-0.05, abs=1e-8)
    assert opt.initial_lr == 0.1


# ---- parity with torch ----------------------------------------------------------------------

CASES = [
    ("StepLR", {"step_size": 7}),
    ("StepLR", {"step_size": 3, "gamma": 0.7}),
    ("MultiStepLR", {"milestones": [5, 12, 12, 30]}),
    ("MultiStepLR", {"milestones": [2, 9], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("ExponentialLR", {"gamma": 1.05}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ("CosineAnnealingLR", {"T_max": 40, "eta_min": 0.05}),
    ("CosineAnnealingLR", {"T_max": 1}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.1, "total_iters": 12}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 20}),
    ("LinearLR", {"start_factor": 0.5, "end_factor": 0.0, "total_iters": 8}),
]


def torch_sequence(torch, name, kwargs, steps=35, lr=0.1, change_at=None):
    p = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
    lrs = [opt.param_groups[0]["lr"]]
    for epoch in range(steps):
        if epoch == change_at:
            opt.param_groups[0]["lr"] *= 3.0
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_sequence_agrees_with_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = sequence(SCHEDULES[name], kwargs, steps=35)
    assert len(set(ours)) > 1
    assert_close(ours, torch_sequence(torch, name, kwargs, steps=35))


@pytest.mark.parametrize("name, kwargs", CASES[1::3], ids=[f"{n}-{kw}" for n, kw in CASES[1::3]])
def test_hand_change_of_lr_agrees_with_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    opt = SGD([Value(1.0)], lr=0.1)
    sched = SCHEDULES[name](opt, **kwargs)
    ours = [opt.lr]
    for epoch in range(32):
        if epoch == 4:
            opt.lr *= 3.0
        sched.step()
        ours.append(opt.lr)
    assert_close(ours, torch_sequence(torch, name, kwargs, steps=32, change_at=4))


def test_lambda_lr_agrees_with_torch():
    torch = pytest.importorskip("torch")

    def warmup_then_decay(epoch):
        return (epoch + 1) / 5 if epoch < 5 else 0.9 ** (epoch - 5)

    kwargs = {"lr_lambda": warmup_then_decay}
    assert_close(sequence(LambdaLR, kwargs, steps=35),
                 torch_sequence(torch, "LambdaLR", kwargs, steps=35))


def test_last_epoch_resume_agrees_with_torch():
    torch = pytest.importorskip("torch")
    p = torch.zeros((), dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.1)
    topt.param_groups[0]["initial_lr"] = 0.1
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, last_epoch=4)
    opt = SGD([Value(1.0)], lr=0.1)
    opt.initial_lr = 0.1
    sched = CosineAnnealingLR(opt, T_max=10, last_epoch=4)
    ours, theirs = [opt.lr], [topt.param_groups[0]["lr"]]
    for _ in range(12):
        topt.step()
        tsched.step()
        sched.step()
        ours.append(opt.lr)
        theirs.append(tsched.get_last_lr()[0])
    assert sched.last_epoch == tsched.last_epoch == 17
    assert_close(ours, theirs)


# ---- resume through JSON --------------------------------------------------------------------


RESUME_CASES = CASES[::2] + [("LambdaLR", {"lr_lambda": lambda e: 0.9 ** e})]


@pytest.mark.parametrize("name, kwargs", RESUME_CASES)
def test_resume_from_json_continues_the_same_sequence(name, kwargs):
    cls = SCHEDULES[name]
    uninterrupted = sequence(cls, kwargs, steps=30)

    opt = SGD([Value(1.0)], lr=0.1)
    sched = cls(opt, **kwargs)
    for _ in range(12):
        sched.step()
    saved = json.loads(json.dumps({"opt": opt.state_dict(), "sched": sched.state_dict()}))

    # Build both as at the start, then load both states.
    opt2 = SGD([Value(1.0)], lr=0.1)
    sched2 = cls(opt2, **kwargs)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    assert sched2.get_last_lr() == [opt2.lr] == [uninterrupted[12]]
    resumed = [opt2.lr]
    for _ in range(18):
        sched2.step()
        resumed.append(opt2.lr)
    assert resumed == uninterrupted[12:]


def test_state_dict_is_plain_data():
    opt = SGD([Value(1.0)], lr=0.1)
    sched = MultiStepLR(opt, milestones=[3, 1], gamma=0.5)
    sched.step()
    assert sched.state_dict() == {"schedule": "MultiStepLR", "last_epoch": 1, "base_lr": 0.1,
                                  "last_lr": 0.05, "milestones": [1, 3], "gamma": 0.5}
    with pytest.raises(ValueError, match="StepLR.load_state_dict: expected the state of a StepLR"):
        StepLR(SGD([Value(1.0)], lr=0.1), step_size=2).load_state_dict(sched.state_dict())


# ---- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, message", [
    (lambda o: StepLR(o, step_size=0), ValueError, r"StepLR: invalid step_size=0"),
    (lambda o: StepLR(o, step_size=2.5), TypeError, r"StepLR: step_size must be an int"),
    (lambda o: StepLR(o, step_size=2, gamma="x"), TypeError, r"StepLR: gamma must be a number"),
    (lambda o: MultiStepLR(o, milestones=5), TypeError, r"MultiStepLR: milestones must be"),
    (lambda o: MultiStepLR(o, milestones=[2, -1]), ValueError, r"invalid milestone=-1"),
    (lambda o: CosineAnnealingLR(o, T_max=0), ValueError, r"CosineAnnealingLR: invalid T_max=0"),
    (lambda o: LinearLR(o, start_factor=0.0), ValueError, r"LinearLR: invalid start_factor=0.0"),
    (lambda o: LinearLR(o, end_factor=1.5), ValueError, r"LinearLR: invalid end_factor=1.5"),
    (lambda o: LinearLR(o, total_iters=0), ValueError, r"LinearLR: invalid total_iters=0"),
    (lambda o: LambdaLR(o, lr_lambda=0.5), TypeError, r"LambdaLR: lr_lambda must be a function"),
    (lambda o: ExponentialLR(o, gamma=0.9, last_epoch=3), ValueError,
     r"ExponentialLR: last_epoch=3 resumes a schedule, which needs optimizer.initial_lr"),
    (lambda o: ExponentialLR(object(), gamma=0.9), TypeError,
     r"ExponentialLR: optimizer must be an nn.optim.Optimizer, got object"),
])
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make(SGD([Value(1.0)], lr=0.1))


# ---- no silent bad input; a failed step or load changes nothing ------------------------------


@pytest.mark.parametrize("make, error, message", [
    (lambda o: StepLR(o, step_size=2, gamma=-0.5), ValueError,
     r"StepLR: invalid gamma=-0.5, it must be a finite number >= 0"),
    (lambda o: StepLR(o, step_size=2, gamma=True), TypeError, r"StepLR: gamma must be a number"),
    (lambda o: MultiStepLR(o, milestones=[2], gamma=math.nan), ValueError,
     r"MultiStepLR: invalid gamma=nan"),
    (lambda o: ExponentialLR(o, gamma=math.inf), ValueError, r"ExponentialLR: invalid gamma=inf"),
    (lambda o: CosineAnnealingLR(o, T_max=3, eta_min=-1e-3), ValueError,
     r"CosineAnnealingLR: invalid eta_min=-0.001"),
    (lambda o: CosineAnnealingLR(o, T_max=3.0), TypeError, r"T_max must be an int, got float"),
    (lambda o: LinearLR(o, total_iters=True), TypeError, r"total_iters must be an int, got bool"),
    (lambda o: StepLR(o, step_size=2, last_epoch="0"), TypeError, r"last_epoch must be an int"),
])
def test_numbers_must_be_numbers_in_range(make, error, message):
    with pytest.raises(error, match=message):
        make(SGD([Value(1.0)], lr=0.1))


@pytest.mark.parametrize("factor, error, message", [
    (-0.5, ValueError, r"LambdaLR: invalid lr_lambda\(2\)=-0.5, it must be a finite number >= 0"),
    ("0.5", TypeError, r"LambdaLR: lr_lambda\(2\) must be a number, got str"),
    (math.nan, ValueError, r"LambdaLR: invalid lr_lambda\(2\)=nan"),
])
def test_a_refused_step_keeps_the_epoch_and_the_lr(factor, error, message):
    opt = SGD([Value(1.0)], lr=0.1)
    sched = LambdaLR(opt, lr_lambda=lambda epoch: factor if epoch == 2 else 0.5 ** epoch)
    sched.step()
    before = (sched.last_epoch, opt.lr, sched.get_last_lr())
    with pytest.raises(error, match=message):
        sched.step()
    assert (sched.last_epoch, opt.lr, sched.get_last_lr()) == before == (1, 0.05, [0.05])


@pytest.mark.parametrize("edit, error, message", [
    (lambda sd: sd.pop("last_epoch"), ValueError, r"the 'last_epoch' field is missing"),
    (lambda sd: sd.pop("gamma"), ValueError, r"the 'gamma' field is missing"),
    (lambda sd: sd.update(gamma=-2.0), ValueError, r"invalid gamma=-2.0"),
    (lambda sd: sd.update(milestones=[4, "x"]), TypeError,
     r"milestones\[1\] must be an int, got str"),
    (lambda sd: sd.update(milestones=7), TypeError, r"milestones must be a list of ints"),
    (lambda sd: sd.update(base_lr="0.1"), TypeError, r"base_lr must be a number"),
    (lambda sd: sd.update(last_lr=-1.0), ValueError, r"invalid last_lr=-1.0"),
])
def test_a_failed_schedule_load_leaves_it_as_it_was(edit, error, message):
    source = MultiStepLR(SGD([Value(1.0)], lr=0.2), milestones=[1, 3], gamma=0.1)
    for _ in range(4):
        source.step()
    bad = json.loads(json.dumps(source.state_dict()))
    edit(bad)
    sched = MultiStepLR(SGD([Value(1.0)], lr=0.1), milestones=[2, 5], gamma=0.5)
    sched.step()
    before = json.dumps(sched.state_dict())
    with pytest.raises(error, match=message):
        sched.load_state_dict(bad)
    assert json.dumps(sched.state_dict()) == before
