"""The rules after Adagrad, checked against their references after every step of a run.

NAdam, RAdam, Adamax, Adadelta and Rprop, ASGD against torch.optim (2.13); Lion against the
`lion-pytorch` package; the Schedule-Free pair against the `schedulefree` package. Each runs
over random configurations (drawn from a seeded generator, so a failure names its case) for
40 steps on a small loss with a valley, saturating units and a dead weight. torch runs with
float64 as its default dtype, so that its scalar state (NAdam's mu_product, ASGD's eta) is
float64 like ours. Then every rule resumes from a JSON state_dict bit for bit.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from autodiff import Value
from nn.optim.adaptive import ASGD, NAdam, RAdam, Adadelta, Adamax, Lion, Rprop
from nn.optim.schedule_free import AdamWScheduleFree, SGDScheduleFree

START = [-1.2, 1.0, 0.5, -0.3, 0.8, 0.25]
STEPS = 40


def loss_fn(p):
    """Operators and methods Value and torch.Tensor share: a valley, tanh units, a dead p[5]."""
    a, b, c, d, e, _ = p
    valley = (1 - a) ** 2 + 10 * (b - a * a) ** 2
    h1 = (a * 0.5 + c * -1.5 + e).tanh()
    h2 = (b * 2.0 + d * 0.7 - e).tanh()
    fit = (h1 * c + h2 * d - 0.3) ** 2 + ((c + d) * 0.8).sigmoid()
    return valley + fit + 0.1 * (c * d * e) ** 2


def _betas(rng, low1=0.5):
    return (rng.choice([0.9, rng.uniform(low1, 0.95)]),
            rng.choice([0.999, rng.uniform(0.9, 0.9999)]))


def _maybe(rng, value):
    return rng.choice([0.0, value])


# Each entry: a function of a random.Random that draws one configuration.
CONFIGS = {
    NAdam: lambda r: dict(lr=r.uniform(1e-3, 0.05), betas=_betas(r), eps=r.choice([1e-8, 1e-3]),
                          weight_decay=_maybe(r, r.uniform(0, 0.2)),
                          momentum_decay=r.choice([4e-3, r.uniform(0, 0.05)]),
                          decoupled_weight_decay=r.random() < 0.5, maximize=r.random() < 0.3),
    RAdam: lambda r: dict(lr=r.uniform(1e-3, 0.05), betas=_betas(r), eps=r.choice([1e-8, 1e-3]),
                          weight_decay=_maybe(r, r.uniform(0, 0.2)),
                          decoupled_weight_decay=r.random() < 0.5, maximize=r.random() < 0.3),
    Adamax: lambda r: dict(lr=r.uniform(1e-3, 0.05), betas=_betas(r), eps=r.choice([1e-8, 1e-3]),
                           weight_decay=_maybe(r, r.uniform(0, 0.2)), maximize=r.random() < 0.3),
    Adadelta: lambda r: dict(lr=r.uniform(0.1, 1.0), rho=r.uniform(0.5, 0.99),
                             eps=r.choice([1e-6, 1e-4]), weight_decay=_maybe(r, r.uniform(0, 0.2)),
                             maximize=r.random() < 0.3),
    Rprop: lambda r: dict(lr=r.uniform(1e-3, 0.05),
                          etas=(r.uniform(0.2, 0.8), r.uniform(1.05, 1.5)),
                          step_sizes=(r.choice([1e-6, 1e-3]), r.choice([50.0, 0.05])),
                          maximize=r.random() < 0.3),
    ASGD: lambda r: dict(lr=r.uniform(1e-3, 0.01), lambd=r.choice([1e-4, r.uniform(0, 0.1)]),
                         alpha=r.uniform(0.5, 1.0), t0=r.choice([1e6, float(r.randint(0, 20))]),
                         weight_decay=_maybe(r, r.uniform(0, 0.2)), maximize=r.random() < 0.3),
    Lion: lambda r: dict(lr=r.uniform(1e-4, 0.02), betas=_betas(r),
                         weight_decay=_maybe(r, r.uniform(0, 1.0)),
                         decoupled_weight_decay=r.random() < 0.5),
    AdamWScheduleFree: lambda r: dict(lr=r.uniform(1e-3, 0.05), betas=_betas(r),
                                      eps=r.choice([1e-8, 1e-3]),
                                      weight_decay=_maybe(r, r.uniform(0, 0.2)),
                                      warmup_steps=r.choice([0, r.randint(1, 20)]),
                                      r=r.choice([0.0, r.uniform(0, 2)]),
                                      weight_lr_power=r.choice([2.0, r.uniform(0, 3)])),
    SGDScheduleFree: lambda r: dict(lr=r.uniform(1e-3, 0.02), momentum=r.uniform(0.5, 0.95),
                                    weight_decay=_maybe(r, r.uniform(0, 0.2)),
                                    warmup_steps=r.choice([0, r.randint(1, 20)]),
                                    r=r.choice([0.0, r.uniform(0, 2)]),
                                    weight_lr_power=r.choice([2.0, r.uniform(0, 3)])),
}
SEEDS = range(6)
CASES = [(cls, seed) for cls in CONFIGS for seed in SEEDS]
IDS = [f"{cls.__name__}-{seed}" for cls, seed in CASES]


def config(cls, seed):
    return CONFIGS[cls](random.Random(f"{cls.__name__}-{seed}"))


def reference(cls):
    """The reference class of `cls`, or a skip saying which package is missing."""
    if cls is Lion:
        return pytest.importorskip(
            "lion_pytorch", reason="lion-pytorch is not installed (pip install lion-pytorch; "
            "it is in the test extra)").Lion
    if cls in (AdamWScheduleFree, SGDScheduleFree):
        module = pytest.importorskip(
            "schedulefree", reason="schedulefree is not installed (pip install schedulefree; "
            "it is in the test extra)")
        return getattr(module, cls.__name__)
    torch = pytest.importorskip("torch", reason="torch is not installed")
    return getattr(torch.optim, cls.__name__)


@pytest.fixture
def torch64():
    """torch with float64 as the default dtype (its optimizers' scalar state follows it)."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def _close(x, y, where):
    assert abs(x - y) <= 1e-9 * max(1.0, abs(y)), f"{where}: {x!r} vs {y!r}"


@pytest.mark.parametrize("cls, seed", CASES, ids=IDS)
def test_every_step_agrees_with_the_reference(cls, seed, torch64):
    torch = torch64
    kwargs = config(cls, seed)
    ref_cls = reference(cls)
    maximize = kwargs.get("maximize", False)
    f = (lambda p: -loss_fn(p)) if maximize else loss_fn

    ours = [Value(x) for x in START]
    opt = cls(ours, **kwargs)
    theirs = [torch.tensor(x, requires_grad=True) for x in START]
    ref = ref_cls(theirs, **kwargs)
    schedule_free = hasattr(opt, "train")
    if schedule_free:
        opt.train()
        ref.train()
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        f(ours).backward()
        opt.step()
        ref.zero_grad()
        f(theirs).backward()
        for t in theirs:
            if t.grad is None:  # the dead weight: torch leaves None, ours holds 0.0
                t.grad = torch.zeros_like(t)
        ref.step()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            _close(p.data, t.item(), f"{cls.__name__}{kwargs} step {step} param {i}")
    assert [p.data for p in ours] != START
    if schedule_free:  # the averaged point x, where the model is evaluated
        opt.eval()
        ref.eval()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            _close(p.data, t.item(), f"{cls.__name__}{kwargs} eval param {i}")


def run(cls, kwargs, steps, start=START, saved=None):
    params = [Value(x) for x in start]
    opt = cls(params, **kwargs)
    if saved is not None:
        opt.load_state_dict(saved)
    f = (lambda p: -loss_fn(p)) if opt.state_dict()["hyperparams"].get("maximize") else loss_fn
    for _ in range(steps):
        opt.zero_grad()
        f(params).backward()
        opt.step()
    return [p.data for p in params], opt


@pytest.mark.parametrize("cls", list(CONFIGS), ids=[c.__name__ for c in CONFIGS])
def test_resume_from_json_is_bit_for_bit(cls):
    kwargs = config(cls, 0)
    whole, _ = run(cls, kwargs, STEPS)
    half, opt = run(cls, kwargs, 17)
    saved = json.loads(json.dumps({"params": half, "optimizer": opt.state_dict()}))
    # A fresh optimizer with other hyper-parameters: loading must restore every one of them.
    resumed, _ = run(cls, {}, STEPS - 17, start=saved["params"], saved=saved["optimizer"])
    assert resumed == whole


@pytest.mark.parametrize("cls", list(CONFIGS), ids=[c.__name__ for c in CONFIGS])
def test_a_bad_state_is_refused_and_nothing_changes(cls):
    _, opt = run(cls, config(cls, 1), 3)
    before = json.dumps(opt.state_dict())
    bad = json.loads(before)
    bad["state"][0] = {"nonsense": 1.0}
    with pytest.raises(ValueError, match=f"{cls.__name__}.load_state_dict"):
        opt.load_state_dict(bad)
    assert json.dumps(opt.state_dict()) == before


# ---- first steps by hand -------------------------------------------------------------------


def test_lions_decoupled_decay_follows_the_lr_a_schedule_sets(torch64):
    # lion-pytorch divides weight_decay by the lr it was made with: halving lr halves the decay
    torch = torch64
    ref_cls = reference(Lion)
    ours = [Value(x) for x in START]
    theirs = [torch.tensor(x, requires_grad=True) for x in START]
    opt = Lion(ours, lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)
    ref = ref_cls(theirs, lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)
    saved = None
    for step in range(1, 31):
        if step == 11:
            opt.lr = ref.param_groups[0]["lr"] = 0.004
        if step == 21:  # resumed from JSON by an optimizer made with another lr
            saved = json.loads(json.dumps(opt.state_dict()))
            opt = Lion(ours, lr=0.5)
            opt.load_state_dict(saved)
        opt.zero_grad()
        loss_fn(ours).backward()
        opt.step()
        ref.zero_grad()
        loss_fn(theirs).backward()
        theirs[5].grad = torch.zeros_like(theirs[5])
        ref.step()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            _close(p.data, t.item(), f"step {step} param {i}")
    assert saved["lr0"] == 0.01


def test_lion_moves_every_weight_by_exactly_lr():
    ps = [Value(1.0), Value(-2.0), Value(0.5)]
    opt = Lion(ps, lr=0.1)
    for p, g in zip(ps, [1e-6, -300.0, 0.0]):
        p.grad = g
    opt.step()
    assert [p.data for p in ps] == [1.0 - 0.1, -2.0 + 0.1, 0.5]  # sign(0) = 0: no move


def test_rprop_speeds_up_on_agreement_and_backs_off_on_a_sign_change():
    w = Value(0.0)
    opt = Rprop([w], lr=0.1)
    for g, expected in [(1.0, -0.1), (1.0, -0.22), (-1.0, -0.22), (-1.0, -0.16)]:
        w.grad = g
        opt.step()
        assert w.data == pytest.approx(expected, abs=1e-15)
    # The step sizes: 0.1, 0.12, 0.06 (no move on the sign change), then 0.06 again.
    assert opt.state[0]["step_size"] == pytest.approx(0.06, abs=1e-15)


def test_asgd_averages_the_weights_after_t0():
    w = Value(0.0)
    opt = ASGD([w], lr=0.1, lambd=0.0, t0=2)
    seen = []
    for _ in range(5):
        w.grad = -1.0
        opt.step()
        seen.append(w.data)
    # lambd = 0: eta stays lr, w = 0.1, 0.2, ...; ax follows w up to step t0 + 2, then it
    # averages (mu = 1 / max(1, t - t0) is computed after step t, for the next one).
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5], abs=1e-15)
    assert opt.state[0]["ax"] == pytest.approx((0.4 + 0.5) / 2, abs=1e-15)


def test_schedule_free_train_and_eval_switch_between_the_two_points():
    w = Value(1.0)
    opt = SGDScheduleFree([w], lr=0.1, momentum=0.5)
    for _ in range(3):
        w.grad = 2.0 * w.data
        opt.step()
    y = w.data
    opt.eval()
    x = w.data
    opt.eval()  # twice changes nothing
    assert w.data == x != y
    opt.train()
    assert w.data == pytest.approx(y, abs=1e-15)
    opt.eval()
    with pytest.raises(RuntimeError, match=r"SGDScheduleFree.step: .*eval mode.*train\(\)"):
        opt.step()


@pytest.mark.parametrize("cls", [SGDScheduleFree, AdamWScheduleFree])
def test_schedule_free_evaluating_between_steps_changes_no_bit_of_the_training(cls):
    rng = random.Random(7)
    start = [rng.uniform(-2, 2) for _ in range(5)]
    runs = []
    for evaluate in (False, True):
        ws = [Value(v) for v in start]
        opt = cls(ws, lr=0.05)
        seen = []
        for k in range(30):
            for i, w in enumerate(ws):
                w.grad = (i + 1) * w.data ** 3 - math.sin(k + w.data)
            opt.step()
            if evaluate:
                with opt.evaluating():
                    seen.append([w.data for w in ws])
                    assert not opt.train_mode
        runs.append([w.data for w in ws])
    assert runs[0] == runs[1]  # to the last bit
    opt.eval()
    assert [w.data for w in ws] == seen[-1]  # inside the context: the averaged point x
    with opt.evaluating():  # already in eval mode: stays there
        pass
    assert not opt.train_mode and [w.data for w in ws] == seen[-1]


@pytest.mark.parametrize("make, message", [
    (lambda p: NAdam(p, momentum_decay=-1), r"NAdam: invalid momentum_decay=-1.0"),
    (lambda p: RAdam(p, betas=(1.0, 0.9)), r"RAdam: invalid betas\[0\]=1.0"),
    (lambda p: Adadelta(p, rho=1.5), r"Adadelta: invalid rho=1.5"),
    (lambda p: Rprop(p, etas=(1.5, 1.2)), r"Rprop: invalid etas=\(1.5, 1.2\)"),
    (lambda p: Rprop(p, step_sizes=(1.0, 0.5)), r"Rprop: invalid step_sizes"),
    (lambda p: ASGD(p, t0="soon"), r"ASGD: t0 must be a number, got str"),
    (lambda p: Lion(p, lr=-1), r"Lion: invalid learning rate lr=-1"),
    (lambda p: SGDScheduleFree(p, momentum=1.0), r"SGDScheduleFree: invalid momentum=1.0"),
    (lambda p: AdamWScheduleFree(p, warmup_steps=-1),
     r"AdamWScheduleFree: invalid warmup_steps=-1"),
])
def test_bad_hyper_parameters_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make([Value(0.0)])
