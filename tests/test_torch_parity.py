"""Values, first and second derivatives agree with PyTorch in float64 (when torch is installed)."""

import math

import pytest

import autodiff
from autodiff import Value, grad
from nn.losses import cross_entropy

torch = pytest.importorskip("torch", reason="torch not installed: parity tests need it")


def _stack(*xs):
    return torch.stack([x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)
                        for x in xs])


# Each case: (our function on Values, torch's on 0-d float64 tensors, inputs)
CASES = {
    "polynomial": (
        lambda x, y: x**3 * y - y / x + 2**x,
        lambda x, y: x**3 * y - y / x + 2**x,
        (1.3, -0.7),
    ),
    "exp_log": (
        lambda x, y: (x * y).exp() + (x + 3).log(),
        lambda x, y: (x * y).exp() + (x + 3).log(),
        (0.4, 1.2),
    ),
    "tanh_sigmoid": (
        lambda x, y: (x * y).tanh() * y.sigmoid(),
        lambda x, y: (x * y).tanh() * y.sigmoid(),
        (0.8, -1.1),
    ),
    "sin_cos_sqrt": (
        lambda x, y: x.sin() * y.cos() + (x * x + y * y).sqrt(),
        lambda x, y: x.sin() * y.cos() + (x * x + y * y).sqrt(),
        (0.9, 2.1),
    ),
    "relu_abs": (
        lambda x, y: (x - y).relu() * abs(y) + x,
        lambda x, y: (x - y).relu() * y.abs() + x,
        (1.5, -0.5),
    ),
    "pow_values": (lambda x, y: x**y, lambda x, y: x**y, (1.7, 2.3)),
    "n_ary": (
        lambda x, y: autodiff.dot([x, y, x], [y, y, 2.0]) + autodiff.sum([x, y, x * y]),
        lambda x, y: x * y + y * y + x * 2.0 + x + y + x * y,
        (0.3, -1.4),
    ),
    "logsumexp": (
        lambda x, y: autodiff.logsumexp([x, x * y, 2.0, -y]) * y,
        lambda x, y: torch.logsumexp(_stack(x, x * y, 2.0, -y), 0) * y,
        (0.7, -1.3),
    ),
    "logsumexp_large": (  # e^800 overflows a float: only the shifted forms stay finite
        lambda x, y: autodiff.logsumexp([x * 800, x * y, -y]),
        lambda x, y: torch.logsumexp(_stack(x * 800, x * y, -y), 0),
        (1.0, 799.5),
    ),
    "cross_entropy": (
        lambda x, y: cross_entropy([x, y, x * y, 0.5], 1),
        lambda x, y: torch.nn.functional.cross_entropy(_stack(x, y, x * y, 0.5)[None],
                                                       torch.tensor([1])),
        (0.4, -0.9),
    ),
    "cross_entropy_batch": (
        lambda x, y: cross_entropy([[x * 300, y], [x, y * 400]], [0, 1]),
        lambda x, y: torch.nn.functional.cross_entropy(
            torch.stack([_stack(x * 300, y), _stack(x, y * 400)]), torch.tensor([0, 1])),
        (1.1, 0.9),
    ),
}


def _torch_derivatives(f, point):
    xs = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in point]
    out = f(*xs)
    firsts = torch.autograd.grad(out, xs, create_graph=True)
    seconds = [
        [
            0.0 if h is None else float(h)
            for h in torch.autograd.grad(g, xs, retain_graph=True, allow_unused=True)
        ]
        for g in firsts
    ]
    return float(out.detach()), [float(g.detach()) for g in firsts], seconds


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_first_and_second_derivatives_match_torch(name):
    ours, theirs, point = CASES[name]
    t_out, t_first, t_second = _torch_derivatives(theirs, point)

    xs = [Value(p) for p in point]
    out = ours(*xs)
    out.backward()
    assert out.data == pytest.approx(t_out, rel=1e-12, abs=1e-12)
    assert [x.grad for x in xs] == pytest.approx(t_first, rel=1e-12, abs=1e-12)

    everything = tuple(range(len(point)))
    for i in everything:
        row = grad(grad(ours, argnums=i), argnums=everything)(*point)
        assert list(row) == pytest.approx(t_second[i], rel=1e-10, abs=1e-12)


def test_create_graph_backward_matches_torch():
    x = Value(0.6)
    y = (x * x).tanh() * x.exp()
    y.backward(create_graph=True)
    first = x.grad
    x.grad = 0.0
    first.backward()

    tx = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    ty = (tx * tx).tanh() * tx.exp()
    (tg,) = torch.autograd.grad(ty, tx, create_graph=True)
    (th,) = torch.autograd.grad(tg, tx)
    assert first.data == pytest.approx(float(tg.detach()), rel=1e-12)
    assert x.grad == pytest.approx(float(th), rel=1e-12)


def test_saturated_sigmoid_matches_torch():
    for point in (-1000.0, -30.0, 30.0, 1000.0):
        x = Value(point)
        s = x.sigmoid()
        s.backward()
        tx = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        ts = torch.sigmoid(tx)
        ts.backward()
        assert s.data == pytest.approx(float(ts.detach()), rel=1e-15, abs=1e-300)
        assert x.grad == pytest.approx(float(tx.grad), rel=1e-15, abs=1e-300)


@pytest.mark.parametrize("point", [
    (math.inf, 1.0), (-math.inf, -math.inf), (math.nan, 1.0), (-math.inf, 1.0),
    (math.inf, -math.inf), (math.inf, math.inf), (-math.inf,), (1000.0, 1000.0),
    (-1000.0, 0.0, 3.0), (0.0, -40.0), (-0.0,), (1e308, 1e308),
])
def test_logsumexp_edges_match_torch(point):
    xs = [Value(p) for p in point]
    out = autodiff.logsumexp(xs)
    out.backward()
    tx = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    tout = torch.logsumexp(tx, 0)
    tout.backward()

    def same(a, b):  # (0, -40): ours keeps e^-40 = 4.2e-18 (log1p), torch's log(1 + ...) is 0
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-15, abs=1e-15)

    assert same(out.data, tout.item()), (out.data, tout.item())
    assert all(same(x.grad, g) for x, g in zip(xs, tx.grad.tolist())), \
        ([x.grad for x in xs], tx.grad.tolist())
