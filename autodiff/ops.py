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

Composite operations (sub, div, maximum, ...) are plain functions of primitives and need no rule.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from numbers import Real

from autodiff.engine import _GRAD_ENABLED
from autodiff.value import Value

Operand = Value | float


class Primitive:
    """One entry of the op table: a name, a float forward function and its derivative rule."""

    __slots__ = ("name", "forward", "vjp", "symbol")

    def __init__(
        self,
        name: str,
        forward: Callable[..., float],
        vjp: Callable[..., tuple],
        symbol: str = "",
    ):
        self.name = name
        self.forward = forward  # floats in, float out; raises on inputs outside the domain
        self.vjp = vjp  # (g, out, *inputs) -> one gradient per input; floats or Values
        self.symbol = symbol  # how drawings and explanations write it ("+"); "" reads as name(x)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


#: Every primitive by name, in declaration order. Tests are parametrised over this table.
PRIMITIVES: dict[str, Primitive] = {}


def primitive(name: str, forward: Callable[..., float], symbol: str = ""):
    """Declare a primitive: decorate its derivative rule, give its forward function."""

    def declare(vjp):
        prim = PRIMITIVES[name] = Primitive(name, forward, vjp, symbol)
        return prim

    return declare


# ---- building nodes ----------------------------------------------------------------------------


def _node(data: float, prim: Primitive, x: Value | None, y: Value | tuple | None = None) -> Value:
    """A new node made by `prim` from `x` (and `y`); see `Value` for how inputs are kept."""
    out = Value.__new__(Value)  # data is already a float: no need for Value.__init__'s checks
    out.data = data
    out.grad = 0.0
    out.label = ""
    if _GRAD_ENABLED.get():
        out._op = prim
        out._x = x
        out._y = y
    else:  # inside no_grad(): a constant with no history
        out._op = out._x = out._y = None
    return out


def _lift(x) -> Value:
    return x if isinstance(x, Value) else Value(x)


def _apply1(prim: Primitive, x):
    if type(x) is Value or isinstance(x, Value):
        return _node(prim.forward(x.data), prim, x)
    return prim.forward(_check_number(prim, x))


def _apply2(prim: Primitive, x, y):
    # `type(v) is Value` is the cheapest test there is, and true for nearly every operand.
    if type(x) is Value:
        if type(y) is not Value:
            y = _lift(y)
    elif type(y) is Value or isinstance(x, Value) or isinstance(y, Value):
        x, y = _lift(x), _lift(y)
    else:
        return prim.forward(_check_number(prim, x), _check_number(prim, y))
    return _node(prim.forward(x.data, y.data), prim, x, y)


def _applyn(prim: Primitive, inputs: Sequence):
    if not builtins.any(isinstance(x, Value) for x in inputs):
        return prim.forward(*[_check_number(prim, x) for x in inputs])
    inputs = tuple([x if type(x) is Value else _lift(x) for x in inputs])
    return _node(prim.forward(*[x.data for x in inputs]), prim, None, inputs)


def apply(prim: Primitive, *inputs):
    """Apply any primitive of the table to floats or Values.

    One- and two-input calls build exactly the nodes the operators build, so code (and tests)
    going through here exercise the same representation.
    """
    if len(inputs) == 1:
        return _apply1(prim, inputs[0])
    if len(inputs) == 2:
        return _apply2(prim, *inputs)
    return _applyn(prim, inputs)


def _check_number(prim: Primitive, x):
    if isinstance(x, Real):
        return x
    raise TypeError(f"{prim.name}() needs a number or a Value, got {type(x).__name__}: {x!r}")


def _data(x) -> float:
    return x.data if isinstance(x, Value) else x


# ---- the primitives ----------------------------------------------------------------------------
# `@primitive(name, forward)` turns the rule below it into the table entry (bound to the upper-case
# name). Each forward works on floats and raises a clear error outside its domain; each rule
# returns a tuple with one gradient per input.


@primitive("add", operator.add, symbol="+")
def ADD(g, out, x, y):
    """d/dx (x + y) = 1, d/dy (x + y) = 1"""
    return g, g


@primitive("mul", operator.mul, symbol="*")
def MUL(g, out, x, y):
    """d/dx (x y) = y, d/dy (x y) = x"""
    return g * y, g * x


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
    """d/dx (1/x) = -1/x^2"""
    return (-g * out * out,)


def _pow_forward(x, y):
    if x == 0 and y < 0:
        raise ZeroDivisionError(f"pow() of zero to a negative power: {x!r} ** {y!r}")
    if x < 0 and math.isfinite(y) and not float(y).is_integer():
        raise ValueError(f"pow() of a negative base needs an integer exponent, got {x!r} ** {y!r}")
    try:
        return float(x) ** y
    except OverflowError:
        raise OverflowError(f"pow() overflows a float: {x!r} ** {y!r}") from None


@primitive("pow", _pow_forward, symbol="**")
def POW(g, out, x, y):
    """d/dx x^y = y x^(y-1), d/dy x^y = x^y log x (taken as 0 where log x is undefined)"""
    return g * y * x ** (y - 1), (g * out * log(x) if x > 0 else g * 0.0)


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


def _sqrt_forward(x):
    if x < 0:
        raise ValueError(f"sqrt() needs a non-negative input, got {float(x)!r}")
    return math.sqrt(x)


@primitive("sqrt", _sqrt_forward)
def SQRT(g, out, x):
    """d/dx sqrt x = 1 / (2 sqrt x)"""
    return (g / (2 * out),)


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


@primitive("relu", lambda x: x if x > 0 else 0.0)
def RELU(g, out, x):
    """d/dx relu x = 1 if x > 0 else 0"""
    return (g * (1.0 if x > 0 else 0.0),)


@primitive("abs", lambda x: builtins.abs(float(x)))
def ABS(g, out, x):
    """d/dx |x| = sign x (0 at 0)"""
    return (g * (1.0 if x > 0 else -1.0 if x < 0 else 0.0),)


@primitive("sin", math.sin)
def SIN(g, out, x):
    """d/dx sin x = cos x"""
    return (g * cos(x),)


@primitive("cos", math.cos)
def COS(g, out, x):
    """d/dx cos x = -sin x"""
    return (-g * sin(x),)


@primitive("sum", lambda *xs: builtins.sum(xs, 0.0))
def SUM(g, out, *xs):
    """d/dx_i (x_1 + ... + x_n) = 1"""
    return (g,) * len(xs)


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
    return _apply2(ADD, x, y)


def mul(x: Operand, y: Operand) -> Operand:
    """x * y"""
    return _apply2(MUL, x, y)


def neg(x: Operand) -> Operand:
    """-x"""
    return _apply1(NEG, x)


def reciprocal(x: Operand) -> Operand:
    """1 / x; ZeroDivisionError at 0."""
    return _apply1(RECIPROCAL, x)


def pow(x: Operand, y: Operand) -> Operand:  # noqa: A001 - mirrors the builtin on purpose
    """x ** y; errors for 0 to a negative power and a negative base to a fractional power."""
    return _apply2(POW, x, y)


def exp(x: Operand) -> Operand:
    """e ** x; OverflowError naming exp past about 709.78."""
    return _apply1(EXP, x)


def log(x: Operand) -> Operand:
    """Natural logarithm; ValueError for inputs <= 0."""
    return _apply1(LOG, x)


def sqrt(x: Operand) -> Operand:
    """Square root; ValueError for negative inputs."""
    return _apply1(SQRT, x)


def tanh(x: Operand) -> Operand:
    """Hyperbolic tangent, in (-1, 1)."""
    return _apply1(TANH, x)


def sigmoid(x: Operand) -> Operand:
    """Logistic function 1 / (1 + e^-x), computed without overflow for any x."""
    return _apply1(SIGMOID, x)


def relu(x: Operand) -> Operand:
    """max(0, x)"""
    return _apply1(RELU, x)


def abs(x: Operand) -> Operand:  # noqa: A001
    """|x|"""
    return _apply1(ABS, x)


def sin(x: Operand) -> Operand:
    """Sine (radians)."""
    return _apply1(SIN, x)


def cos(x: Operand) -> Operand:
    """Cosine (radians)."""
    return _apply1(COS, x)


def identity(x: Operand) -> Operand:
    """x itself, as a new node (used by `grad` to tell nested derivatives apart)."""
    return _apply1(IDENTITY, x)


def sum(values: Iterable[Operand]) -> Operand:  # noqa: A001
    """The sum of many values as ONE node with many inputs (not a chain of additions)."""
    return _applyn(SUM, tuple(values))


def dot(ws: Sequence[Operand], xs: Sequence[Operand]) -> Operand:
    """w_1 x_1 + ... + w_n x_n as ONE node with 2n inputs; the heart of a neuron."""
    ws, xs = tuple(ws), tuple(xs)
    if len(ws) != len(xs):
        raise ValueError(f"dot() needs two sequences of equal length, got {len(ws)} and {len(xs)}")
    return _applyn(DOT, ws + xs)


# ---- composite operations: functions of primitives, no rules of their own ---------------------


def sub(x: Operand, y: Operand) -> Operand:
    """x - y = x + (-y)"""
    return add(x, neg(y))


def div(x: Operand, y: Operand) -> Operand:
    """x / y = x * (1/y); ZeroDivisionError naming the division when y is 0."""
    if _data(y) == 0:
        raise ZeroDivisionError(f"division by zero: {_data(x)!r} / {_data(y)!r}")
    return mul(x, reciprocal(y))


def maximum(x: Operand, y: Operand) -> Operand:
    """max(x, y) = y + relu(x - y); on a tie the gradient goes to y."""
    return add(y, relu(sub(x, y)))


def minimum(x: Operand, y: Operand) -> Operand:
    """min(x, y) = x - relu(x - y); on a tie the gradient goes to x."""
    return sub(x, relu(sub(x, y)))


def clamp(x: Operand, low: float, high: float) -> Operand:
    """x limited to [low, high]; the gradient is 0 where x is clamped."""
    return minimum(maximum(x, low), high)
