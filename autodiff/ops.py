"""The op table: every primitive operation, declared once, with its derivative rule beside it.

A primitive is a float function (`forward`) plus a vector-Jacobian rule (`vjp`) that maps the
gradient `g` flowing into the op's output to one gradient per input. The one idea to understand:
a rule is written only with arithmetic and the functions of this module, never with `math.*` or
`.data`. During an ordinary backward pass the rule runs on plain floats, which is fast; with
`create_graph=True` the very same rule runs on Values and records a new graph, which is why
second and third derivatives come for free.

    >>> tanh(0.5)                       # on a float: just the number
    0.46211715726000974
    >>> tanh(Value(0.5))                # on a Value: a node in the graph
    Value(data=0.46211715726000974, grad=0.0)

At the edges the rules give torch's numbers: where a derivative is 0 the share is an exact 0
(even when `g` is inf or nan; abs, which torch writes as g * sign x, is the exception), at a
kink or a tie the docstring says which side wins, and where torch's derivative is inf or nan
the rule gives the same (one exception, explained in POW). A forward function either gives
torch's number (NaN in, NaN out) or raises an error naming the op and its input.

`sub` is the one composite operation here: x - y is x + (-y), which is exact in floating point.
"""

from __future__ import annotations

import builtins
import math
import operator
import sys
from collections.abc import Iterable, Sequence

from autodiff.primitive import PRIMITIVES, Primitive, primitive  # noqa: F401 - re-exported
from autodiff.value import Value, apply

Operand = Value | float

_INF = math.inf
_NAN = math.nan
_TINY = 1 / sys.float_info.max  # below this, 1 / x overflows to inf (x is subnormal)


def _zero(g):
    """A share of exactly 0: where a derivative is 0 nothing flows back, even an inf or nan `g`.

    A Value (a constant) when `g` is one, so a `create_graph` pass gets Values throughout.
    """
    return 0.0 if type(g) is float else Value(0.0)


def _inf_at_zero(x):
    """inf, for a derivative that is infinite at x = 0 (sqrt x, x ** 0.5), written as
    inf * (1 - x) so that its own derivative there is -inf, as the next derivative of a root
    is at 0 (and as torch gives), not the 0 of a constant."""
    return _INF * (1 - x)


def _at(x, c) -> bool:
    """x == c for a float or a Value (a Value's == is identity); False for NaN."""
    return x <= c and x >= c


# ---- the primitives ----------------------------------------------------------------------------
# `@primitive(name, forward)` turns the rule below it into the table entry (bound to the upper-case
# name). Each forward works on floats; each rule returns a tuple with one gradient per input.


@primitive("add", operator.add, symbol="+")
def ADD(g, out, x, y):
    """d/dx (x + y) = 1, d/dy (x + y) = 1"""
    return g, g


@primitive("mul", operator.mul, symbol="*")
def MUL(g, out, x, y):
    """d/dx (x y) = y, d/dy (x y) = x"""
    return g * y, g * x


def _div_forward(x, y):
    if y == 0:
        raise ZeroDivisionError(f"division by zero: {x!r} / {y!r}")
    return x / y  # one IEEE division: correctly rounded, so 49 / 49 is exactly 1


@primitive("div", _div_forward, symbol="/")
def DIV(g, out, x, y):
    """d/dx (x / y) = 1 / y, d/dy (x / y) = -(x / y) / y

    Written as torch writes it, -g * (out / y) rather than -g * x / y**2, so it stays finite
    where y**2 would underflow: d(x / x)/dx at x = 1e-298 is 1e298 - 1e298 = 0.
    """
    return g / y, -g * (out / y)


@primitive("neg", operator.neg, symbol="neg")
def NEG(g, out, x):
    """d/dx (-x) = -1"""
    return (-g,)


def _reciprocal_forward(x):
    if x == 0:
        raise ZeroDivisionError(f"reciprocal() of zero: 1 / {x!r}")
    return 1.0 / x


@primitive("reciprocal", _reciprocal_forward, symbol="1/x")
def RECIPROCAL(g, out, x):
    """d/dx (1/x) = -1/x^2 = -out^2"""
    return (-g * (out * out),)


def _pow_forward(x, y):
    if x == 0 and y < 0:
        raise ZeroDivisionError(f"pow() of zero to a negative power: {x!r} ** {y!r}")
    if x < 0 and x != -_INF and math.isfinite(y) and not float(y).is_integer():
        raise ValueError(f"pow() of a negative base needs an integer exponent, got {x!r} ** {y!r}")
    try:
        return float(x) ** y
    except OverflowError:  # too large for a float: inf, as torch and float multiplication give
        odd = x < 0 and float(y).is_integer() and y % 2 == 1
        return -_INF if odd else _INF


@primitive("pow", _pow_forward, symbol="**")
def POW(g, out, x, y):
    """d/dx x^y = y x^(y-1), d/dy x^y = x^y log x; at the edges:

    at x = 0, d/dx is 0 for y = 0 (so x ** 0, and third derivatives of x ** 2, are fine at 0;
    the same at subnormal x, where 1/x overflows) and inf for 0 < y < 1, as in torch; d/dy is
    0 at x = 0 (y >= 0), as in torch, and 0 for a negative base (nan when y is NaN). There
    x^y exists only at integer y, so no derivative in y exists; torch's formula gives nan, but
    the exponent of a negative base is in practice a constant such as the 2 of (a - b) ** 2,
    and a nan on that constant would only hide real trouble.
    """
    if _at(y, 0) and (not (x >= _TINY or x <= -_TINY) or not -_INF < g < _INF):
        # y = 0 at x = 0, at NaN, at |x| so small that x^(y-1) = 1/x overflows (a subnormal
        # x, where y * x^(y-1) would be 0 * inf), or with an inf or nan g: 0, as torch
        dx = _zero(g)
    elif _at(x, 0) and y < 1:  # 0 < y < 1: x^(y-1) is infinite at 0 (y < 0 failed in forward)
        dx = g * (y * _inf_at_zero(x))
    else:  # y = 0 elsewhere too: the share is 0, but its derivative in y, g / x, is not
        dx = g * (y * pow(x, y - 1))
    if x > 0:
        dy = g * (out * log(x))
    elif _at(x, 0) and (y <= 0 or y >= 0):
        dy = g * 0.0  # torch multiplies g by this 0, so an inf or nan g still gives nan
    elif x < 0 and (y <= 0 or y >= 0):
        dy = _zero(g)
    else:  # x or y is NaN
        dy = g * _NAN
    return dx, dy


def _exp_forward(x):
    try:
        return math.exp(x)
    except OverflowError:
        raise OverflowError(f"exp() overflows a float for input {x!r}") from None


@primitive("exp", _exp_forward)
def EXP(g, out, x):
    """d/dx e^x = e^x"""
    return (g * out,)


def _log_forward(x):
    if x <= 0:
        raise ValueError(f"log() needs a positive input, got {float(x)!r}")
    return math.log(x)


@primitive("log", _log_forward)
def LOG(g, out, x):
    """d/dx log x = 1/x"""
    return (g / x,)


def _log1p_forward(x):
    if x <= -1:
        raise ValueError(f"log1p() needs an input greater than -1, got {float(x)!r}")
    return math.log1p(x)


@primitive("log1p", _log1p_forward)
def LOG1P(g, out, x):
    """d/dx log(1 + x) = 1 / (1 + x)"""
    return (g / (x + 1),)


def _sqrt_forward(x):
    if x < 0:
        raise ValueError(f"sqrt() needs a non-negative input, got {float(x)!r}")
    return math.sqrt(x)


@primitive("sqrt", _sqrt_forward)
def SQRT(g, out, x):
    """d/dx sqrt x = 1 / (2 sqrt x); inf at 0, as torch

    (written so that the next derivative at 0 is -inf, as torch's, see `_inf_at_zero`)
    """
    return (g * _inf_at_zero(x) if _at(out, 0) else g / (2 * out),)


@primitive("tanh", math.tanh)  # math.tanh saturates to +-1.0 and never overflows
def TANH(g, out, x):
    """d/dx tanh x = 1 - tanh^2 x"""
    return (g * (1 - out * out),)


def _sigmoid_forward(x):
    # Only ever exponentiate a non-positive number, so large |x| cannot overflow.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@primitive("sigmoid", _sigmoid_forward)
def SIGMOID(g, out, x):
    """d/dx sigmoid x = sigmoid x (1 - sigmoid x)"""
    return (g * out * (1 - out),)


def _softplus_forward(x):
    # log(1 + e^x) = x + log(1 + e^-x): exponentiate only -|x|, and log1p keeps e^-40 = 4e-18.
    if x > 0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))  # also NaN for NaN


@primitive("softplus", _softplus_forward)
def SOFTPLUS(g, out, x):
    """d/dx log(1 + e^x) = sigmoid x"""
    return (g * sigmoid(x),)


@primitive("relu", lambda x: 0.0 if x < 0 else x)  # NaN stays NaN; relu(-0.0) is -0.0 as torch
def RELU(g, out, x):
    """d/dx relu x = 1 if x > 0 else 0 (0 at 0; g passes for a NaN output, as torch)"""
    return (_zero(g) if out <= 0 else g,)


@primitive("abs", lambda x: builtins.abs(float(x)))
def ABS(g, out, x):
    """d/dx |x| = sign x, with sign 0 at 0 and at NaN, as torch

    Unlike the exact zeros elsewhere, the share at 0 (and at NaN) is g * 0, as torch writes it
    (g * sign x), so an inf or nan g gives nan there: abs never turns a NaN into a number.
    """
    return (g if x > 0 else -g if x < 0 else g * 0.0,)


def _periodic(f):
    def forward(x):
        return f(x) if math.isfinite(x) else _NAN  # math.sin(inf) raises; torch gives nan

    forward.__name__ = f.__name__
    return forward


@primitive("sin", _periodic(math.sin))
def SIN(g, out, x):
    """d/dx sin x = cos x"""
    return (g * cos(x),)


@primitive("cos", _periodic(math.cos))
def COS(g, out, x):
    """d/dx cos x = -sin x"""
    return (-g * sin(x),)


def _maximum_forward(x, y):
    return x if x >= y or x != x else y  # a tie gives x; NaN on either side gives NaN


@primitive("maximum", _maximum_forward)
def MAXIMUM(g, out, x, y):
    """d/dx max(x, y) = 1 where x > y, 0 where x < y; at a tie each gets g / 2 (as torch)"""
    if x > y:
        return g, _zero(g)
    if x < y:
        return _zero(g), g
    if _at(x, y):
        return g / 2, g / 2
    return g, g  # a NaN input: torch passes g to both


def _minimum_forward(x, y):
    return x if x <= y or x != x else y


@primitive("minimum", _minimum_forward)
def MINIMUM(g, out, x, y):
    """d/dx min(x, y) = 1 where x < y, 0 where x > y; at a tie each gets g / 2 (as torch)"""
    if x < y:
        return g, _zero(g)
    if x > y:
        return _zero(g), g
    if _at(x, y):
        return g / 2, g / 2
    return g, g


def _clamp_forward(x, low, high):
    if x != x or low != low or high != high:
        return _NAN
    if low > high:  # as torch: every x becomes high
        return high
    return low if x < low else high if x > high else x


@primitive("clamp", _clamp_forward)
def CLAMP(g, out, x, low, high):
    """d/dx clamp(x, low, high) = 1 for low <= x <= high (bounds included, as torch), else 0;

    d/dlow = 1 where x < low < high, d/dhigh = 1 where x > high or high < low.
    """
    inside = low <= x <= high
    below = x < low < high
    above = x > high or high < low
    return (g if inside else _zero(g), g if below else _zero(g), g if above else _zero(g))


@primitive("sum", lambda *xs: builtins.sum(xs, 0.0))
def SUM(g, out, *xs):
    """d/dx_i (x_1 + ... + x_n) = 1"""
    return (g,) * len(xs)


def _logsumexp_forward(*xs):
    if not xs:
        raise ValueError("logsumexp() needs at least one input, got none")
    if any(x != x for x in xs):
        return _NAN
    m = builtins.max(xs)
    if m == _INF or m == -_INF:  # an inf input gives inf; all -inf give -inf (as torch)
        return m
    # Shift by the largest input, so every exponent is <= 0 and nothing overflows. The largest
    # term is then exactly 1: log1p of the others keeps them even where 1 + e^-40 rounds to 1.
    top = xs.index(m)
    return m + math.log1p(math.fsum([math.exp(x - m) for i, x in enumerate(xs) if i != top]))


@primitive("logsumexp", _logsumexp_forward)
def LOGSUMEXP(g, out, *xs):
    """d/dx_i log(e^x_1 + ... + e^x_n) = e^(x_i - out)

    The softmax of the inputs. Written with `out`, so no exponent is positive and nothing
    overflows; the forward's shift by the largest input is a float detail, not part of the
    graph. At the edges it gives torch's numbers: an input of -inf gets 0; where out is inf or
    every input is -inf, inf - inf is nan.
    """
    return tuple([g * exp(x - out) for x in xs])


def _dot_forward(*inputs):
    n = len(inputs) // 2
    return builtins.sum(map(operator.mul, inputs[:n], inputs[n:]), 0.0)


@primitive("dot", _dot_forward)
def DOT(g, out, *inputs):
    """d/dw_i (w . x) = x_i, d/dx_i (w . x) = w_i   (inputs are w_1..w_n, x_1..x_n)"""
    n = len(inputs) // 2
    return tuple([g * x for x in inputs[n:]] + [g * w for w in inputs[:n]])


@primitive("identity", lambda x: x, symbol="id")
def IDENTITY(g, out, x):
    """d/dx x = 1"""
    return (g,)


# ---- the public functions: each accepts a float or a Value -------------------------------------


def add(x: Operand, y: Operand) -> Operand:
    """x + y"""
    return apply(ADD, x, y)


def sub(x: Operand, y: Operand) -> Operand:
    """x - y, computed as x + (-y) (exact in floating point; no rule of its own)"""
    return apply(ADD, x, apply(NEG, y))


def mul(x: Operand, y: Operand) -> Operand:
    """x * y"""
    return apply(MUL, x, y)


def div(x: Operand, y: Operand) -> Operand:
    """x / y, one correctly rounded division; ZeroDivisionError naming both numbers at y = 0."""
    return apply(DIV, x, y)


def neg(x: Operand) -> Operand:
    """-x"""
    return apply(NEG, x)


def reciprocal(x: Operand) -> Operand:
    """1 / x; ZeroDivisionError at 0."""
    return apply(RECIPROCAL, x)


def pow(x: Operand, y: Operand) -> Operand:  # noqa: A001 - mirrors the builtin on purpose
    """x ** y; inf past the largest float; errors for 0 to a negative power and for a finite
    negative base to a fractional power (-inf ** 2.5 is inf and -inf ** -2.5 is 0, as torch)."""
    return apply(POW, x, y)


def exp(x: Operand) -> Operand:
    """e ** x; OverflowError naming exp past about 709.78."""
    return apply(EXP, x)


def log(x: Operand) -> Operand:
    """Natural logarithm; ValueError for inputs <= 0."""
    return apply(LOG, x)


def log1p(x: Operand) -> Operand:
    """log(1 + x), exact for tiny x (log1p(1e-20) is 1e-20); ValueError for x <= -1."""
    return apply(LOG1P, x)


def sqrt(x: Operand) -> Operand:
    """Square root; ValueError for negative inputs; its derivative at 0 is inf, as in torch."""
    return apply(SQRT, x)


def tanh(x: Operand) -> Operand:
    """Hyperbolic tangent, in (-1, 1)."""
    return apply(TANH, x)


def sigmoid(x: Operand) -> Operand:
    """Logistic function 1 / (1 + e^-x), computed without overflow for any x."""
    return apply(SIGMOID, x)


def softplus(x: Operand) -> Operand:
    """log(1 + e^x), computed without overflow and without losing tiny values for any x."""
    return apply(SOFTPLUS, x)


def relu(x: Operand) -> Operand:
    """max(0, x); NaN stays NaN."""
    return apply(RELU, x)


def abs(x: Operand) -> Operand:  # noqa: A001
    """|x|"""
    return apply(ABS, x)


def sin(x: Operand) -> Operand:
    """Sine (radians); nan for an infinite input, as in torch."""
    return apply(SIN, x)


def cos(x: Operand) -> Operand:
    """Cosine (radians); nan for an infinite input, as in torch."""
    return apply(COS, x)


def maximum(x: Operand, y: Operand) -> Operand:
    """The larger of x and y, exactly (x on a tie; NaN if either is NaN).

    The gradient goes to the larger input; on a tie each input gets half of it, as in
    torch.maximum.
    """
    return apply(MAXIMUM, x, y)


def minimum(x: Operand, y: Operand) -> Operand:
    """The smaller of x and y, exactly (x on a tie; NaN if either is NaN).

    The gradient goes to the smaller input; on a tie each input gets half of it, as in
    torch.minimum.
    """
    return apply(MINIMUM, x, y)


def clamp(x: Operand, low: Operand = -math.inf, high: Operand = math.inf) -> Operand:
    """x limited to [low, high], exactly; `high` if low > high; NaN if any of them is NaN.

    As torch.clamp: the gradient goes to x when low <= x <= high (the bounds count as inside),
    else to the bound that was returned. Bounds may be numbers or Values.
    """
    return apply(CLAMP, x, low, high)


def identity(x: Operand) -> Operand:
    """x itself, as a new node (used by `grad` to tell nested derivatives apart)."""
    return apply(IDENTITY, x)


def sum(values: Iterable[Operand]) -> Operand:  # noqa: A001
    """The sum of many values as ONE node with many inputs (not a chain of additions)."""
    return apply(SUM, *_sequence("sum", "values", values))


def logsumexp(values: Iterable[Operand]) -> Operand:
    """log(e^x_1 + ... + e^x_n) as ONE node, computed without overflow (as torch.logsumexp).

    Its gradient is the softmax of the inputs, so `logsumexp(z) - z[k]` is the softmax
    cross-entropy with no max taken in the graph. NaN in gives NaN; an input of +inf gives inf,
    all inputs -inf give -inf. ValueError for an empty sequence.
    """
    xs = _sequence("logsumexp", "values", values)
    if not xs:
        raise ValueError("logsumexp() needs at least one value, got an empty sequence")
    return apply(LOGSUMEXP, *xs)


def dot(ws: Sequence[Operand], xs: Sequence[Operand]) -> Operand:
    """w_1 x_1 + ... + w_n x_n as ONE node with 2n inputs; the heart of a neuron."""
    ws, xs = _sequence("dot", "ws", ws), _sequence("dot", "xs", xs)
    if len(ws) != len(xs):
        raise ValueError(f"dot() needs two sequences of equal length, got {len(ws)} and {len(xs)}")
    return apply(DOT, *ws, *xs)


def _sequence(function: str, argument: str, items) -> tuple:
    if isinstance(items, (Value, str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(
            f"{function}({argument}) needs an iterable of numbers or Values, got "
            f"{type(items).__name__}: {items!r}"
        )
    return tuple(items)

