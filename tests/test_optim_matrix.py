"""Muon and Adafactor on matrices of Values, checked against torch.optim after every step.

The network is MLP(2, [4, 3, 1], tanh) and its torch twin (`model.to_torch()`); the loss is the
squared error on a few moons points. torch's Muon orthogonalises in bfloat16; the comparison
runs torch's own Newton-Schulz function with that one cast removed (so in float64), which is
what chainrule's Muon computes.
"""

from __future__ import annotations

import inspect
import json
import random

import pytest

from autodiff import Value
from nn import MLP, losses
from nn.data import make_moons
from nn.optim.matrix import Adafactor, Muon, matrices, newton_schulz, shape_of

X, Y = make_moons(12, noise=0.1, seed=1, labels="pm1")
STEPS = 35


def flat(items):
    return [v.data for item in items for v in _values(item)]


def _values(item):
    if isinstance(item, Value):
        return [item]
    if isinstance(item[0], Value):
        return list(item)
    return [v for row in item for v in row]


def our_loss(model):
    return losses.mse([model(x) for x in X], Y)


def torch_loss(torch, net):
    out = net(torch.tensor(X, dtype=torch.float64)).squeeze(-1)
    return ((out - torch.tensor(Y, dtype=out.dtype)) ** 2).mean()


def configs(cls, seed):
    r = random.Random(f"{cls.__name__}-{seed}")
    if cls is Adafactor:
        return dict(lr=r.uniform(0.005, 0.05), beta2_decay=r.choice([-0.8, r.uniform(-1, -0.3)]),
                    eps=(r.choice([None, 1e-12, 1e-3]), r.choice([1e-3, 1e-2])),
                    d=r.choice([1.0, r.uniform(1, 3)]), weight_decay=r.choice([0.0, 0.1]),
                    maximize=r.random() < 0.3)
    return dict(lr=r.uniform(0.005, 0.05), weight_decay=r.choice([0.1, 0.0, r.uniform(0, 0.5)]),
                momentum=r.choice([0.95, r.uniform(0.5, 0.99)]), nesterov=r.random() < 0.7,
                ns_steps=r.choice([5, r.randint(1, 8)]),
                adjust_lr_fn=r.choice([None, "original", "match_rms_adamw"]))


@pytest.fixture
def torch_float64_muon(monkeypatch):
    """torch, with Muon's Newton-Schulz run in float64: its own source, the bfloat16 cast out."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    import torch.optim._muon as muon_module
    source = inspect.getsource(muon_module._zeropower_via_newtonschulz)
    if "grad.bfloat16()" not in source:
        pytest.skip("torch's Muon no longer casts with grad.bfloat16(); update this test")
    namespace = dict(vars(muon_module))
    exec(source.replace("grad.bfloat16()", "grad.clone()"), namespace)
    monkeypatch.setattr(muon_module, "_zeropower_via_newtonschulz",
                        namespace["_zeropower_via_newtonschulz"])
    return torch


@pytest.mark.parametrize("cls", [Adafactor, Muon])
@pytest.mark.parametrize("seed", range(5))
def test_every_step_agrees_with_torch(cls, seed, torch_float64_muon):
    torch = torch_float64_muon
    kwargs = configs(cls, seed)
    model = MLP(2, [4, 3, 1], activation="tanh", seed=seed)
    net = model.to_torch()
    items = matrices(model)
    tensors = list(net.parameters())
    if cls is Muon:  # matrices only (as torch's): the biases stay where they are
        items, tensors = items[0::2], tensors[0::2]
    opt = cls(items, **kwargs)
    ref = getattr(torch.optim, cls.__name__)(tensors, **kwargs)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        (sign * our_loss(model)).backward()
        opt.step()
        ref.zero_grad()
        (sign * torch_loss(torch, net)).backward()
        ref.step()
        theirs = [x for t in tensors for x in t.detach().flatten().tolist()]
        for i, (a, b) in enumerate(zip(flat(items), theirs)):
            assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), \
                f"{cls.__name__}{kwargs} step {step} weight {i}: {a!r} vs {b!r}"


@pytest.mark.parametrize("cls", [Adafactor, Muon])
def test_resume_from_json_is_bit_for_bit(cls):
    def run(steps, start=None, saved=None, **kwargs):
        model = MLP(2, [4, 3, 1], activation="tanh", seed=0)
        if start is not None:
            for p, x in zip(model.parameters(), start):
                p.data = x
        items = matrices(model)
        opt = cls(items if cls is Adafactor else items[0::2], **kwargs)
        if saved is not None:
            opt.load_state_dict(saved)
        for _ in range(steps):
            opt.zero_grad()
            our_loss(model).backward()
            opt.step()
        return [p.data for p in model.parameters()], opt

    whole, _ = run(20, **configs(cls, 0))
    half, opt = run(8, **configs(cls, 0))
    saved = json.loads(json.dumps(opt.state_dict()))
    resumed, _ = run(12, start=half, saved=saved, lr=0.5)
    assert resumed == whole
    bad = json.loads(json.dumps(saved))
    key = "row_var" if cls is Adafactor else "momentum_buffer"
    bad["state"][0][key] = bad["state"][0][key][:-1]
    with pytest.raises(ValueError, match=rf"{cls.__name__}.load_state_dict: state\[0\]"):
        opt.load_state_dict(bad)


def test_newton_schulz_orthogonalises():
    rng = random.Random(0)
    g = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(7)]
    # The cubic iteration (a, b, c) = (1.5, -0.5, 0) converges to the polar factor: Q^T Q = I.
    q = newton_schulz(g, (1.5, -0.5, 0.0), steps=40)
    for i in range(3):
        for j in range(3):
            dot = sum(q[k][i] * q[k][j] for k in range(7))
            assert dot == pytest.approx(1.0 if i == j else 0.0, abs=1e-9)
    # Muon's quintic trades exactness for speed: singular values land near 1, not on it.
    np = pytest.importorskip("numpy", reason="numpy is not installed")
    s = np.linalg.svd(np.array(newton_schulz(g)), compute_uv=False)
    assert 0.5 < s.min() and s.max() < 1.5
    assert (np.linalg.svd(np.array(g), compute_uv=False).max()
            / np.linalg.svd(np.array(g), compute_uv=False).min()) > 1.5  # it had to work


def test_matrices_hand_out_a_model_in_torch_order_and_muon_refuses_a_bias():
    model = MLP(3, [2, 1], seed=0)
    items = matrices(model)
    assert [shape_of(i) for i in items] == [(2, 3), (2,), (1, 2), (1,)]
    assert items[0][1] == model.layers[0].neurons[1].w
    assert sorted(map(id, (v for i in items for v in _values(i)))) == \
        sorted(map(id, model.parameters()))
    with pytest.raises(ValueError, match=r"Muon: params\[1\] is a vector of 2 Values; with "
                                         r"others='refuse' Muon updates weight matrices only"):
        Muon(items, others="refuse")
    with pytest.raises(ValueError, match=r"Muon: params\[0\] is a single Value"):
        Muon([Value(1.0)], others="refuse")


def test_muon_gives_what_is_not_a_matrix_to_adamw():
    from nn.optim import AdamW
    start = [0.5, -1.0, 2.0, 0.25]
    ours, twin = [Value(x) for x in start], [Value(x) for x in start]
    muon = Muon([ours[:3], ours[3]], lr=0.01, weight_decay=0.05)  # a vector and a scalar
    adamw = AdamW(twin, lr=0.01, weight_decay=0.05)
    for _ in range(10):
        for ps, opt in ((ours, muon), (twin, adamw)):
            opt.zero_grad()
            sum((p - i) ** 2 * (i + 1) for i, p in enumerate(ps)).backward()
            opt.step()
    assert [p.data for p in ours] == [p.data for p in twin]


@pytest.mark.parametrize("cls", [Adafactor, Muon])
def test_n_steps_here_then_m_in_torch_and_back(cls, torch_float64_muon):
    """Settings and state cross the torch bridge both ways: N here + M there = N + M here."""
    torch = torch_float64_muon
    from nn.optim import from_torch, to_torch

    def pick(items):  # Muon: the weight matrices only, as torch's Muon takes
        return items if cls is Adafactor else items[0::2]

    kwargs = configs(cls, 3)
    alone = MLP(2, [4, 3, 1], activation="tanh", seed=3)
    opt = cls(pick(matrices(alone)), **kwargs)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    for _ in range(9):
        opt.zero_grad()
        (sign * our_loss(alone)).backward()
        opt.step()

    model = MLP(2, [4, 3, 1], activation="tanh", seed=3)
    opt = cls(pick(matrices(model)), **kwargs)
    for _ in range(4):
        opt.zero_grad()
        (sign * our_loss(model)).backward()
        opt.step()
    net = model.to_torch()
    moved = to_torch(opt, pick(list(net.parameters())))
    assert type(moved) is getattr(torch.optim, cls.__name__)
    for _ in range(3):
        moved.zero_grad()
        (sign * torch_loss(torch, net)).backward()
        moved.step()
    back_model = MLP.from_torch(net)
    back = from_torch(moved, pick(matrices(back_model)))
    assert type(back) is cls and back.state_dict()["hyperparams"] == \
        {**opt.state_dict()["hyperparams"], "lr": opt.lr}
    for _ in range(2):
        back.zero_grad()
        (sign * our_loss(back_model)).backward()
        back.step()
    for a, b in zip(flat(matrices(back_model)), flat(matrices(alone))):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_a_muon_with_biases_does_not_cross():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    from nn.optim import to_torch
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match="torch's Muon takes weight matrices only"):
        to_torch(Muon(matrices(model)), model.to_torch().parameters())
    with pytest.raises(ValueError, match="has 2 matrices .* but there are 4 torch tensors"):
        to_torch(Muon(matrices(model)[0::2]), model.to_torch().parameters())
    assert torch.optim.Muon
