"""Property-based differential tests: random expression graphs against torch, finite differences.

Hypothesis draws small programs: 1-3 leaves, then up to 6 operations, each on earlier nodes
(reuse included: `x * x`, `maximum(y, y)`) or on constants, over every primitive of the op table
and `sub`. Leaves and constants come from edge values (0, +-1e-300, +-1000, 709, 710, +-1,
ties) as well as ordinary floats. Each program is differentiated by every route chainrule
offers:

- values and first derivatives by `backward()`, `backward(create_graph=True)`, `grad()` and
  `gradients()`, which must all agree exactly (they run the same loop);
- second derivatives by `grad(grad(f))` and by `backward()` on a `create_graph` gradient,
  which must agree with each other;
- against torch float64 when it is installed: where torch's value is finite, chainrule's must
  match it (and must not raise); where torch's value is inf or nan, chainrule gives the same or
  raises an error naming an op of the program. Gradients and second derivatives are compared
  wherever torch's are finite;
- against central differences always, at points where the function is smooth (every kink and
  domain edge of the program farther than 0.05 away) and of moderate size.

The default runs in CI in well under a minute with a fixed seed; CHAINRULE_HYPOTHESIS_SCALE=20
(a nightly setting) runs 20 times as many programs, randomly seeded, and Hypothesis prints the
seed of any failure.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis comes with the test extra")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import autodiff  # noqa: E402
from autodiff import Value, grad, gradients, ops  # noqa: E402

try:
    import torch
except ImportError:  # the torch comparisons skip, saying why; central differences still run
    torch = None

SCALE = int(os.environ.get("CHAINRULE_HYPOTHESIS_SCALE", "1"))
PROFILE = settings(
    max_examples=150 * SCALE,
    deadline=None,  # a shared CI machine: no per-example time limit
    derandomize=SCALE == 1,  # CI: the same programs every run
    database=None,  # nothing written to the working tree
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)

# Number of inputs of each operation; "sum", "logsumexp" and "dot" draw theirs (dot: 2 * n).
ARITY = {
    "add": 2, "sub": 2, "mul": 2, "div": 2, "neg": 1, "reciprocal": 1, "pow": 2, "exp": 1,
    "log": 1, "log1p": 1, "sqrt": 1, "tanh": 1, "sigmoid": 1, "softplus": 1, "relu": 1,
    "abs": 1, "sin": 1, "cos": 1, "maximum": 2, "minimum": 2, "clamp": 3, "identity": 1,
    "sum": None, "dot": None, "logsumexp": None,
}
OPS = sorted(ARITY)
EDGES = [0.0, 1e-300, -1e-300, 1000.0, -1000.0, 709.0, 710.0, 1.0, -1.0, 0.5, -0.5, 2.0, 3.0,
         5e-324, 1e-310, -1e-310, math.inf, -math.inf, math.nan]
# Where the first step of an edge program starts: subnormal, infinite and NaN inputs, and the
# exponents that meet them (0, where x^(y-1) = 1/x overflows; fractions of a negative base).
SPECIAL = [5e-324, -5e-324, 1e-310, -1e-310, math.inf, -math.inf, math.nan, 0.0, -0.0]
EXPONENTS = [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 1.5, 2.5, -0.5, -2.5, math.inf, -math.inf]


def test_every_primitive_is_drawn():
    assert set(ops.PRIMITIVES) <= set(ARITY), "a primitive the differential tests never draw"


# ---- programs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    leaves: tuple[float, ...]
    steps: tuple[tuple[str, tuple], ...]  # (op, refs); a ref is ("n", index) or ("c", number)

    def run(self, lib: dict, inputs: list, constant=float, on_step=None, pool=None):
        """The program's output; every intermediate result is appended to `pool` if given."""
        pool = [] if pool is None else pool
        pool += inputs
        for name, refs in self.steps:
            args = [pool[i] if kind == "n" else constant(i) for kind, i in refs]
            if on_step is not None:
                on_step(name, args)
            pool.append(lib[name](*args))
        return pool[-1]


numbers = st.one_of(st.sampled_from(EDGES), st.floats(-4.0, 4.0, allow_nan=False))


@st.composite
def programs(draw, special: bool = False) -> Program:
    """A random program; with `special`, its first leaf is subnormal, infinite, NaN or zero and
    its first step is pow (that leaf as the base) or abs of it, before the random steps."""
    drawn = []

    def number():  # often a number drawn before, so that ties between distinct nodes occur
        if drawn and draw(st.integers(0, 2)) == 0:
            return draw(st.sampled_from(drawn))
        drawn.append(draw(numbers))
        return drawn[-1]

    leaves = tuple(number() for _ in range(draw(st.integers(1, 3))))
    steps = []
    if special:
        leaves = (draw(st.sampled_from(SPECIAL)), *leaves[1:])
        if draw(st.booleans()):
            steps.append(("abs", (("n", 0),)))
        elif len(leaves) > 1 and draw(st.booleans()):  # a variable exponent
            steps.append(("pow", (("n", 0), ("n", 1))))
        else:
            steps.append(("pow", (("n", 0), ("c", draw(st.sampled_from(EXPONENTS))))))
    for k in range(len(steps), len(steps) + draw(st.integers(1, 6))):
        name = draw(st.sampled_from(OPS))
        arity = ARITY[name]
        if name in ("sum", "logsumexp"):
            arity = draw(st.integers(1 if name == "logsumexp" else 2, 4))
        elif name == "dot":
            arity = 2 * draw(st.integers(1, 3))
        refs = []
        for _ in range(arity):
            if draw(st.integers(0, 4)) == 0:
                refs.append(("c", number()))
            else:  # an earlier node, most often a recent one, so graphs get deep and reuse
                size = len(leaves) + k
                refs.append(("n", size - 1 - draw(st.integers(0, size - 1))))
        steps.append((name, tuple(refs)))
    return Program(leaves, tuple(steps))


# ---- chainrule's side -------------------------------------------------------------------------

OURS = {name: getattr(autodiff, name) for name in OPS
        if name not in ("identity", "sum", "dot", "logsumexp")}
OURS["identity"] = ops.identity
OURS["sum"] = lambda *xs: autodiff.sum(xs)
OURS["dot"] = lambda *xs: autodiff.dot(xs[: len(xs) // 2], xs[len(xs) // 2:])
OURS["logsumexp"] = lambda *xs: autodiff.logsumexp(xs)


def ours(program: Program, xs):
    return program.run(OURS, list(xs))


class Margin:
    """How far the program's evaluation stays from every kink and domain edge (smoothness)."""

    def __init__(self) -> None:
        self.distance = math.inf

    def near(self, *gaps: float) -> None:
        self.distance = min(self.distance, *(abs(g) for g in gaps))

    def __call__(self, name: str, args) -> None:
        v = [float(a.data if isinstance(a, Value) else a) for a in args]
        if not all(map(math.isfinite, v)):  # inf and NaN inputs: no neighbourhood to sample
            self.distance = 0.0
        if name in ("relu", "abs", "sqrt", "log", "reciprocal"):
            self.near(v[0])
        elif name == "log1p":
            self.near(v[0] + 1)
        elif name == "div":
            self.near(v[1])
        elif name in ("maximum", "minimum"):
            self.near(v[0] - v[1])
        elif name == "clamp":
            self.near(v[0] - v[1], v[0] - v[2], v[1] - v[2])
        elif name == "pow":
            self.near(v[0])  # 0 ** y and negative bases are edges
        self.size = max(getattr(self, "size", 0.0), *(abs(x) for x in v))


def first_by_every_route(program: Program):
    """(value, [df/dx_i]) by backward, create_graph, grad and gradients; all must agree."""
    xs = [Value(x) for x in program.leaves]
    out = ours(program, xs)
    assume(isinstance(out, Value) and any(x in autodiff.topological_order(out) for x in xs))
    out.backward()
    by_backward = [x.grad for x in xs]

    ys = [Value(x) for x in program.leaves]
    out2 = ours(program, ys)
    out2.backward(create_graph=True)
    by_create_graph = [y.grad.data if isinstance(y.grad, Value) else y.grad for y in ys]

    n = len(xs)
    by_grad = list(grad(lambda *v: ours(program, v), argnums=tuple(range(n)))(*program.leaves))
    zs = [Value(x) for x in program.leaves]
    by_gradients = gradients(ours(program, zs), zs)

    size = magnitude(out)
    assert_same(out2.data, out.data, "value: create_graph pass")
    for route, gs in (("create_graph", by_create_graph), ("grad", by_grad),
                      ("gradients", by_gradients)):
        for i, (a, b) in enumerate(zip(gs, by_backward)):
            assert_same(a, b, f"d/dx{i} by {route} vs backward")
    return out.data, by_backward, size


def second_by_every_route(program: Program):
    """The Hessian by grad(grad(f)) and by backward() on create_graph gradients; must agree."""
    n = len(program.leaves)
    f = lambda *v: ours(program, v)  # noqa: E731
    by_grad = [list(grad(grad(f, argnums=i), argnums=tuple(range(n)))(*program.leaves))
               for i in range(n)]
    by_backward = []
    size = 0.0
    for i in range(n):
        xs = [Value(x) for x in program.leaves]
        out = ours(program, xs)
        out.backward(create_graph=True)
        gi = xs[i].grad
        for x in xs:
            x.grad = 0.0
        if isinstance(gi, Value):
            gi.backward()
            by_backward.append([x.grad for x in xs])
            size = max(size, magnitude(gi))
        else:  # a constant first derivative
            by_backward.append([0.0] * n)
    for i in range(n):
        for j in range(n):
            assert_close(by_backward[i][j], by_grad[i][j], 1e-12, f"d2/dx{i}dx{j}: routes")
    return by_grad, size


def magnitude(root: Value) -> float:
    """The largest finite |data|, |grad| or contribution of one edge in root's graph: the size
    of the terms whose rounding a derivative may carry (d(x/x)/dx at 1e-5 is 1e5 - 1e5, exact
    only up to 1e5 * 2e-16; a y / y beside y ** 2 adds 1/y - 1/y to 2 y, which a tiny y swamps
    in whichever order the two are summed)."""
    sizes = [1.0]
    for node in autodiff.topological_order(root):
        for x in (node.data, node.grad.data if isinstance(node.grad, Value) else node.grad):
            if math.isfinite(x):
                sizes.append(abs(x))
    with autodiff.no_grad():
        for step in autodiff.backward_steps(root):
            c = step.contribution
            c = c.data if isinstance(c, Value) else c
            if math.isfinite(c):
                sizes.append(abs(c))
    return max(sizes)


# ---- the references ---------------------------------------------------------------------------


def torch_lib():
    t = torch

    def stack(*xs):
        return t.stack([x if isinstance(x, t.Tensor) else t.tensor(x, dtype=t.float64)
                        for x in xs])

    return {
        "add": t.add, "sub": t.sub, "mul": t.mul, "div": t.div, "neg": t.neg,
        "reciprocal": t.reciprocal, "pow": t.pow, "exp": t.exp, "log": t.log,
        "log1p": t.log1p, "sqrt": t.sqrt, "tanh": t.tanh, "sigmoid": t.sigmoid,
        "softplus": lambda x: t.logaddexp(x, t.zeros((), dtype=t.float64)),
        "relu": t.relu, "abs": t.abs, "sin": t.sin, "cos": t.cos, "maximum": t.maximum,
        "minimum": t.minimum, "clamp": t.clamp, "identity": lambda x: x.clone(),
        "sum": lambda *xs: stack(*xs).sum(),
        "dot": lambda *xs: t.dot(stack(*xs[: len(xs) // 2]), stack(*xs[len(xs) // 2:])),
        "logsumexp": lambda *xs: t.logsumexp(stack(*xs), 0),
    }


def torch_derivatives(program: Program):
    """torch's value, gradient, Hessian and every intermediate result."""
    xs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in program.leaves]
    lib = torch_lib()
    pool = []
    out = program.run(lib, xs, constant=lambda c: torch.tensor(c, dtype=torch.float64),
                      pool=pool)
    value = out.item()
    # Every intermediate result, also those the output ignores (chainrule may raise there).
    intermediates = [v.item() for v in pool]
    if not out.requires_grad:
        return value, [0.0] * len(xs), [[0.0] * len(xs) for _ in xs], intermediates
    firsts = torch.autograd.grad(out, xs, create_graph=True, allow_unused=True)
    first = [0.0 if g is None else g.item() for g in firsts]
    hessian = []
    for g in firsts:
        if g is None or not g.requires_grad:
            hessian.append([0.0] * len(xs))
            continue
        row = torch.autograd.grad(g, xs, allow_unused=True, retain_graph=True)
        hessian.append([0.0 if h is None else h.item() for h in row])
    return value, first, hessian, intermediates


def central(fn, point, i, eps=1e-5):
    up, down = list(point), list(point)
    up[i] += eps
    down[i] -= eps
    return (fn(up) - fn(down)) / (2 * eps)


# ---- comparisons ------------------------------------------------------------------------------


def finite(x) -> bool:
    return math.isfinite(x)


def assert_same(a, b, what):
    assert a == b or (a != a and b != b), f"{what}: {a!r} != {b!r}"


def assert_close(a, b, rel, what, size=0.0):
    """|a - b| within `rel` of the larger, plus the rounding of terms as large as `size`."""
    if not (finite(a) and finite(b)):
        assert_same(a, b, what)
        return
    tolerance = rel * max(abs(a), abs(b), 1.0) + 1e-12 * size
    assert abs(a - b) <= tolerance, f"{what}: {a!r} vs {b!r} (terms up to {size:.3g})"


def names_an_op(error: Exception, program: Program) -> bool:
    text = str(error)
    return "division" in text or any(f"{name}()" in text for name, _ in program.steps)


def where_torch_differs(program: Program) -> tuple[bool, bool]:
    """(first, second): whether torch's first or second derivatives are known to differ here.

    First: d/dy x**y at x < 0 is nan in torch and 0 in chainrule (see autodiff.ops.POW).
    Second: torch's rule for d/dx x**y is `where(y == 0, 0, ...)`, a constant whose derivative
    in y is lost, so its d2/dxdy at y = 0 is 0 instead of 1/x; chainrule keeps it (the central
    differences check chainrule's).
    """
    xs = [Value(x) for x in program.leaves]
    first, second = [], []

    def watch(name, args):
        if name == "pow":
            base, exponent = (a.data if isinstance(a, Value) else a for a in args)
            variable = isinstance(args[1], Value) and any(
                x in autodiff.topological_order(args[1]) for x in xs)
            if base < 0 and variable:
                first.append(True)
            if exponent == 0:
                second.append(True)

    program.run(OURS, xs, on_step=watch)
    return bool(first), bool(second)


def torch_sqrt_at_minus_inf(program: Program) -> bool:
    """Whether the program takes -inf to a power whose value or first two derivatives torch
    computes with sqrt (exponents 0.5 and -0.5, and 1.5 and 2.5 through y - 1 and y - 2):
    sqrt(-inf) is nan, where IEEE pow, which chainrule follows for every exponent, gives inf
    or 0."""
    found = []

    def watch(name, args):
        if name == "pow":
            base, exponent = (a.data if isinstance(a, Value) else a for a in args)
            found.append(base == -math.inf and exponent in (-0.5, 0.5, 1.5, 2.5))

    try:
        program.run(OURS, [Value(x) for x in program.leaves], on_step=watch)
    except (ArithmeticError, ValueError):
        pass
    return any(found)


def torch_rounds_subnormals_differently(program: Program, t_intermediates: list) -> bool:
    """Whether some step's result is subnormal and torch's differs from chainrule's there.

    Some torch kernels lose subnormals or their last bits: log1p(5e-324) is 0.0 in torch and
    log1p(1e-310) is 1.00000000000005e-310, where exact arithmetic (and chainrule) give the
    input back. A tie or a kink downstream (maximum, abs) then decides differently, so the
    derivatives follow torch's rounding, not the mathematics, and are not compared."""
    pool = []
    try:
        program.run(OURS, list(program.leaves), pool=pool)
    except (ArithmeticError, ValueError):
        return False
    tiny = sys.float_info.min
    return any(x != t and (0 < abs(x) < tiny or 0 < abs(t) < tiny)
               for x, t in zip(pool, t_intermediates))


# ---- the properties ---------------------------------------------------------------------------


def evaluate_or_error(program: Program):
    try:
        return first_by_every_route(program), second_by_every_route(program), None
    except (ArithmeticError, ValueError) as error:
        return None, None, error


@PROFILE
@given(programs())
def test_against_torch(program):
    compare_with_torch(program)


@PROFILE
@given(programs(special=True))
def test_against_torch_at_special_inputs(program):
    # pow at subnormal, infinite and NaN bases, abs of NaN and of 0, and what follows them.
    # Here a NaN torch's derivative has must show in chainrule's too (nothing hides a NaN).
    compare_with_torch(program, nan_shows=True)


def compare_with_torch(program, nan_shows=False):
    if torch is None:
        pytest.skip("torch is not installed (it comes with CI's test set-up)")
    with torch.autograd.set_grad_enabled(True):
        t_value, t_first, t_hessian, t_intermediates = torch_derivatives(program)
    firsts, hessian, error = evaluate_or_error(program)
    if error is not None:
        # The inputs themselves may be inf or nan; what counts is what the steps make of them.
        made = t_intermediates[len(program.leaves):]
        everything = [*made, *t_first, *[h for row in t_hessian for h in row]]
        assert not all(map(finite, everything)), (
            f"chainrule raised {error!r} where torch is finite: {t_value}, {t_first}")
        assert names_an_op(error, program), f"the error names no op: {error!r}"
        return
    value, first, size = firsts
    hessian, hsize = hessian
    if torch_sqrt_at_minus_inf(program):
        return
    if finite(t_value):
        assert_close(value, t_value, 1e-9, "value", size)
    else:
        assert_same(value, t_value, "value (non-finite in torch)")
    differs_first, differs_second = where_torch_differs(program)
    if not (finite(t_value) or nan_shows) or differs_first:
        return
    if torch_rounds_subnormals_differently(program, t_intermediates):
        return
    for i, (a, b) in enumerate(zip(first, t_first)):
        if finite(b):
            assert_close(a, b, 1e-9, f"d/dx{i}", size)
        elif nan_shows and math.isnan(b):
            assert math.isnan(a), f"d/dx{i}: torch's nan became {a!r}"
    if differs_second or not finite(t_value):
        return
    for i in range(len(first)):
        for j in range(len(first)):
            if finite(t_hessian[i][j]):
                assert_close(hessian[i][j], t_hessian[i][j], 1e-9, f"d2/dx{i}dx{j}",
                             max(size, hsize))


@PROFILE
@given(programs())
def test_against_central_differences(program):
    margin = Margin()
    try:
        out = program.run(OURS, [Value(x) for x in program.leaves], on_step=margin)
    except (ArithmeticError, ValueError):
        assume(False)
    assume(isinstance(out, Value) and margin.distance > 0.05 and margin.size < 50)
    assume(abs(out.data) < 1e4)
    firsts, hessian, error = evaluate_or_error(program)
    assume(error is None)
    value, first, _ = firsts
    hessian, _ = hessian

    def f(point):
        return float(ours(program, point))

    def df(i):
        return lambda point: grad(lambda *v: ours(program, v), argnums=i)(*point)

    point = list(program.leaves)
    try:
        numeric = [central(f, point, i) for i in range(len(point))]
        numeric_h = [[central(df(i), point, j) for j in range(len(point))]
                     for i in range(len(point))]
    except (ArithmeticError, ValueError):
        assume(False)  # a nudge crossed a domain edge
    for i, (a, n) in enumerate(zip(first, numeric)):
        assert abs(a - n) <= 1e-4 * (1 + abs(n)), f"d/dx{i}: analytic {a}, numeric {n}"
    for i in range(len(point)):
        for j in range(len(point)):
            a, n = hessian[i][j], numeric_h[i][j]
            assert abs(a - n) <= 1e-3 * (1 + abs(n)), f"d2/dx{i}dx{j}: analytic {a}, numeric {n}"
