"""The `Value` node: one scalar, the operation that made it, and the inputs it came from.

A Value holds its number (`data`), the gradient of the last backward pass (`grad`), the
primitive `op` that computed it and the tuple of `parents` it was computed from. It holds no
closure, so a graph of Values has no reference cycles and is freed by reference counting as
soon as it is dropped. The operators below do no maths themselves: each one applies a primitive
of the op table (`autodiff.ops`), where the forward function and its derivative rule sit side by
side. `apply` is the one place where nodes are made.

    >>> a = Value(2.0, label="a")
    >>> b = Value(-3.0, label="b")
    >>> c = a * b + 1
    >>> c.op, c.parents[0].op, c.parents[0].parents == (a, b)
    ('add', 'mul', True)
    >>> c.backward()
    >>> a.grad, b.grad
    (-3.0, 2.0)
"""

from __future__ import annotations

from numbers import Real

from autodiff import anomaly, engine
from autodiff import modes
from autodiff.modes import ANOMALY, MODE, RECORD, TRACE, enable_grad
from autodiff.primitive import PRIMITIVES, Primitive

Number = int | float


class GraphCutWarning(UserWarning):
    """float(v) on a Value while recording: the number left the graph; no gradient follows it."""


_float_warned = False  # the warning is shown once per process


def _warn_float(value: Value) -> None:
    import sys
    import warnings

    global _float_warned
    caller = sys._getframe(2).f_globals.get("__name__", "")  # who called float() (or math.*)
    if caller.partition(".")[0] in ("autodiff", "nn"):
        return
    _float_warned = True
    warnings.warn(
        f"float() of {value!r} while gradients are recorded gives a plain number: the graph "
        "stops there and no gradient flows back through it (math.exp(v) does this too). For "
        "maths, use the Value's own operations: v.exp(), not math.exp(v) (autodiff.exp works on "
        "both). To read the number on purpose, use v.data, or float(v) inside no_grad(). Shown "
        "once; to silence it: warnings.filterwarnings('ignore', "
        "category=autodiff.GraphCutWarning)", GraphCutWarning, stacklevel=3)


class Value:
    """A scalar that remembers how it was computed, so gradients can flow back through it."""

    # No __dict__ and no __weakref__: a node is as small as Python allows, and cannot grow
    # attributes that might point back at it and create a reference cycle.
    __slots__ = ("data", "grad", "label", "op", "parents")

    # Let NumPy scalars hand arithmetic with a Value back to the Value (np.float64(2) * v).
    __array_ufunc__ = None

    def __init__(self, data: Number, label: str = "") -> None:
        self.data = _number("Value()", data)
        self.grad = 0.0
        if not isinstance(label, str):
            raise TypeError(f"Value(label=...) needs a str, got {type(label).__name__}: {label!r}")
        self.label = label
        self.op = ""  # a leaf: made by the user, not by an op
        self.parents = ()
        if MODE.get() & TRACE:  # a constant made by a traced function
            modes.note_made(self)

    @property
    def is_leaf(self) -> bool:
        """True for Values made by the user (inputs, parameters, constants), not by an op."""
        return not self.parents

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        mode = MODE.get()
        if mode & TRACE:
            modes.note_read("float(v) read a traced Value")  # compile refuses it: no warning
        elif mode & RECORD and not _float_warned:
            # float(v) (and so math.exp(v)) hands back a plain number: while the graph is being
            # recorded, that silently cuts it. Say so, once, to user code (chainrule's own
            # modules read numbers on purpose).
            _warn_float(self)
        return self.data

    # ---- arithmetic: a number on either side becomes a constant leaf -------------------------
    # Each operator applies an entry of the op table (filled by autodiff.ops, which the package
    # imports before any operator can run).

    def __add__(self, other):
        return apply(PRIMITIVES["add"], self, other) if _is_operand(other) else NotImplemented

    def __radd__(self, other):
        return apply(PRIMITIVES["add"], other, self) if _is_operand(other) else NotImplemented

    def __sub__(self, other):  # x - y is x + (-y), exact in floating point: no rule of its own
        return self + (-other) if _is_operand(other) else NotImplemented

    def __rsub__(self, other):
        return other + (-self) if _is_operand(other) else NotImplemented

    def __mul__(self, other):
        return apply(PRIMITIVES["mul"], self, other) if _is_operand(other) else NotImplemented

    def __rmul__(self, other):
        return apply(PRIMITIVES["mul"], other, self) if _is_operand(other) else NotImplemented

    def __truediv__(self, other):
        return apply(PRIMITIVES["div"], self, other) if _is_operand(other) else NotImplemented

    def __rtruediv__(self, other):
        return apply(PRIMITIVES["div"], other, self) if _is_operand(other) else NotImplemented

    def __pow__(self, other):
        return apply(PRIMITIVES["pow"], self, other) if _is_operand(other) else NotImplemented

    def __rpow__(self, other):
        return apply(PRIMITIVES["pow"], other, self) if _is_operand(other) else NotImplemented

    def __neg__(self):
        return apply(PRIMITIVES["neg"], self)

    def __pos__(self):
        return self

    def __abs__(self):
        return apply(PRIMITIVES["abs"], self)

    # ---- comparisons look at the numbers and return plain bools ------------------------------
    # __eq__ and __hash__ stay the identity ones, so Values work in sets and as dict keys.
    # While tracing, each comparison and its outcome is reported: a Python `if` on one decides
    # which graph gets built.

    def __lt__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, "<", other, self.data < data_of(other))

    def __le__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, "<=", other, self.data <= data_of(other))

    def __gt__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, ">", other, self.data > data_of(other))

    def __ge__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, ">=", other, self.data >= data_of(other))

    # ---- elementary functions ---------------------------------------------------------------

    def relu(self) -> Value:
        return apply(PRIMITIVES["relu"], self)

    def tanh(self) -> Value:
        return apply(PRIMITIVES["tanh"], self)

    def sigmoid(self) -> Value:
        return apply(PRIMITIVES["sigmoid"], self)

    def exp(self) -> Value:
        return apply(PRIMITIVES["exp"], self)

    def log(self) -> Value:
        return apply(PRIMITIVES["log"], self)

    def sqrt(self) -> Value:
        return apply(PRIMITIVES["sqrt"], self)

    def sin(self) -> Value:
        return apply(PRIMITIVES["sin"], self)

    def cos(self) -> Value:
        return apply(PRIMITIVES["cos"], self)

    # ---- gradients --------------------------------------------------------------------------

    def backward(self, create_graph: bool = False) -> None:
        """Fill in `.grad` of every Value this one depends on with d(self)/d(that Value).

        Leaves accumulate (`+=`), as in PyTorch, so gradients of several losses add up until
        `zero_grad()`. Every interior node's `.grad` is *set* to its gradient from this pass, so
        a second `backward()` never corrupts anything. With `create_graph=True` the gradients
        are Values themselves and can be differentiated again.
        """
        backward(self, create_graph=create_graph)

    def detach(self) -> Value:
        """A new constant leaf with the same number and no history."""
        if MODE.get() & TRACE:
            modes.note_read("v.detach() froze a traced Value")
        return Value(self.data, label=self.label)


def backward(root: Value, create_graph: bool = False) -> None:
    """Fill `.grad` of `root` and of everything it depends on (see `Value.backward`)."""
    if not isinstance(root, Value):
        raise TypeError(f"backward(root) needs a Value, got {type(root).__name__}: {root!r}")
    if type(create_graph) is not bool:
        raise TypeError(
            f"backward(create_graph=...) needs True or False, got "
            f"{type(create_graph).__name__}: {create_graph!r}"
        )
    if not create_graph:
        _, grads = engine.backward_pass(root, 1.0)
        engine.store_grads(grads)
        return
    with enable_grad():  # the gradient graph is wanted even under no_grad()
        _, grads = engine.backward_pass(root, Value(1.0))
        engine.store_grads(grads)


# ---- making nodes ------------------------------------------------------------------------------


def apply(op: Primitive, *inputs) -> Value | float:
    """Apply the primitive `op` to floats or Values: the one place where nodes are made.

    On plain numbers it is just `op.forward`. With a Value among the inputs, numbers become
    constant leaves and the result is a new node whose `parents` are the inputs, unless grad mode
    is off (`no_grad()`), where the result is a leaf with no history.
    """
    parents = inputs
    for x in inputs:
        if type(x) is not Value:  # a number among the inputs (rare in a model): lift it
            if not any(isinstance(x, Value) for x in inputs):  # no Value: a float function
                return op.forward(*[_number(f"{op}()", x) for x in inputs])
            parents = tuple([_constant(op, x) for x in inputs])
            break
    try:
        if len(parents) == 2:  # the common arities, without building a list
            data = op.forward(parents[0].data, parents[1].data)
        elif len(parents) == 1:
            data = op.forward(parents[0].data)
        else:
            data = op.forward(*[p.data for p in parents])
    except Exception as error:
        if MODE.get() & TRACE:  # the function may catch it and build another graph
            modes.note_raised(op, parents, error)
        raise
    out = Value.__new__(Value)  # data is already a float: Value.__init__'s checks are not needed
    out.data = data
    out.grad = 0.0
    out.label = ""
    mode = MODE.get()
    if mode & RECORD:  # grad mode: remember how `out` was made
        out.op = op
        out.parents = parents
    else:  # inside no_grad(): a leaf with no history
        out.op = ""
        out.parents = ()
    if mode > RECORD:  # anomaly mode or tracing (rare): one test on the common path
        if mode & ANOMALY:
            anomaly.check_forward(op, parents, data)
        if mode & TRACE:
            modes.note_made(out)
    return out


def _constant(op: Primitive, x) -> Value:
    """A number met by an op (the 2 of `x * 2`) as a constant leaf; a Value stays itself."""
    if isinstance(x, Value):
        return x
    if type(x) is not float:  # only other numbers need the check (and its message)
        x = _number(f"{op}()", x)
    return Value(x)


def _number(where: str, x) -> float:
    """`x` as a float, or a TypeError naming where it was given: numbers must be real numbers.

    A bool is refused although Python counts it as an int: `Value(x > 0)` is a slip, not a number.
    """
    if type(x) is float:
        return x
    if isinstance(x, bool) or not isinstance(x, Real):
        what = "an int or float" if where == "Value()" else "a number or a Value"
        raise TypeError(f"{where} needs {what}, got {type(x).__name__}: {x!r}")
    try:
        return float(x)
    except OverflowError:  # float() names nothing, and a huge int may be too long to print
        raise OverflowError(f"{where}: {number_text(x)} is too large for a float") from None


def number_text(x) -> str:
    """A number for a message: shown, or past 100 digits described (a float's overflow)."""
    if isinstance(x, int) and x.bit_length() > 332:  # more than 100 decimal digits
        return f"an int of {x.bit_length()} bits"
    return repr(x)


def _is_operand(x) -> bool:
    return type(x) is Value or type(x) is float or (isinstance(x, Real) and not isinstance(x, bool))


def data_of(x):
    """The number of a Value, or `x` itself when it is not one."""
    return x.data if isinstance(x, Value) else x


def _compared(value: Value, op: str, other, outcome: bool) -> bool:
    if MODE.get() & TRACE:
        modes.note_compared(value, op, other, outcome)
    return outcome
