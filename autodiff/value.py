"""The `Value` node: one scalar, the operation that made it, and the inputs it came from.

A Value holds its number (`data`), the gradient of the last backward pass (`grad`) and the tuple
of `parents` it was computed from. It holds no closure, so a graph of Values has no reference
cycles and is freed by reference counting as soon as it is dropped. The operators below do no
maths themselves: each one hands off to a primitive of the op table in `autodiff.ops`, where the
forward function and its derivative rule sit side by side.

    >>> a = Value(2.0, label="a")
    >>> b = Value(-3.0, label="b")
    >>> c = a * b + 1
    >>> c.backward()
    >>> a.grad, b.grad
    (-3.0, 2.0)
"""

from __future__ import annotations

from numbers import Real

Number = int | float


class Value:
    """A scalar that remembers how it was computed, so gradients can flow back through it."""

    # No __dict__ and no __weakref__: a node is as small as Python allows, and cannot grow
    # attributes that might point back at it and create a reference cycle.
    #
    # The inputs live in two slots, not in a tuple: `_x` and `_y` hold the inputs of a one- or
    # two-input op (`_y` is None for one input), and an op with more inputs (sum, dot) keeps
    # them all as a tuple in `_y`, with `_x` None. That makes a node ONE object for Python's
    # cyclic garbage collector instead of two (node + tuple). Its collections run while a graph
    # is being built and cost time per tracked object: without the tuple, the forward pass of
    # micrograd's demo takes half the time (see benchmarks/). `parents` below gives the inputs
    # as a tuple, whichever way they are kept.
    __slots__ = ("data", "grad", "label", "_op", "_x", "_y")

    # Let NumPy scalars hand arithmetic with a Value back to the Value (np.float64(2) * v).
    __array_ufunc__ = None

    def __init__(self, data: Number, label: str = "") -> None:
        if type(data) is not float:
            if not isinstance(data, Real):
                raise TypeError(
                    f"Value() needs an int or float, got {type(data).__name__}: {data!r}"
                )
            data = float(data)
        self.data = data
        self.grad = 0.0
        self.label = label
        self._op = None
        self._x = None
        self._y = None

    @property
    def op(self) -> str:
        """Name of the primitive that produced this Value ("" for a leaf)."""
        return self._op.name if self._op is not None else ""

    @property
    def parents(self) -> tuple[Value, ...]:
        """The Values this one was computed from, in the op's argument order; () for a leaf."""
        x, y = self._x, self._y
        if y is None:
            return () if x is None else (x,)
        return (x, y) if x is not None else y  # two inputs, or the tuple of many

    @property
    def is_leaf(self) -> bool:
        """True for Values made by the user (inputs, parameters, constants), not by an op."""
        return self._op is None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    # ---- arithmetic: a number on either side is lifted to a constant leaf -------------------

    def __add__(self, other):
        return _ops.add(self, other) if _is_operand(other) else NotImplemented

    def __radd__(self, other):
        return _ops.add(other, self) if _is_operand(other) else NotImplemented

    def __mul__(self, other):
        return _ops.mul(self, other) if _is_operand(other) else NotImplemented

    def __rmul__(self, other):
        return _ops.mul(other, self) if _is_operand(other) else NotImplemented

    def __sub__(self, other):
        return _ops.sub(self, other) if _is_operand(other) else NotImplemented

    def __rsub__(self, other):
        return _ops.sub(other, self) if _is_operand(other) else NotImplemented

    def __truediv__(self, other):
        return _ops.div(self, other) if _is_operand(other) else NotImplemented

    def __rtruediv__(self, other):
        return _ops.div(other, self) if _is_operand(other) else NotImplemented

    def __pow__(self, other):
        return _ops.pow(self, other) if _is_operand(other) else NotImplemented

    def __rpow__(self, other):
        return _ops.pow(other, self) if _is_operand(other) else NotImplemented

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    # ---- comparisons look at the numbers and return plain bools ------------------------------
    # __eq__ and __hash__ stay the identity ones, so Values work in sets and as dict keys.
    # A tracer (autodiff.compile) may set `compare_hook` to see each comparison and its outcome,
    # since a Python `if` on one decides which graph gets built.

    def __lt__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, "<", other, self.data < _number(other))

    def __le__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, "<=", other, self.data <= _number(other))

    def __gt__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, ">", other, self.data > _number(other))

    def __ge__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return _compared(self, ">=", other, self.data >= _number(other))

    # ---- elementary functions ---------------------------------------------------------------

    def relu(self) -> Value:
        return _ops.relu(self)

    def tanh(self) -> Value:
        return _ops.tanh(self)

    def sigmoid(self) -> Value:
        return _ops.sigmoid(self)

    def exp(self) -> Value:
        return _ops.exp(self)

    def log(self) -> Value:
        return _ops.log(self)

    def sqrt(self) -> Value:
        return _ops.sqrt(self)

    def sin(self) -> Value:
        return _ops.sin(self)

    def cos(self) -> Value:
        return _ops.cos(self)

    # ---- gradients --------------------------------------------------------------------------

    def backward(self, create_graph: bool = False) -> None:
        """Fill in `.grad` of every Value this one depends on with d(self)/d(that Value).

        Leaves accumulate (`+=`), as in PyTorch, so gradients of several losses add up until
        `zero_grad()`. Every interior node's `.grad` is *set* to its gradient from this pass, so
        a second `backward()` never corrupts anything. With `create_graph=True` the gradients
        are Values themselves and can be differentiated again.
        """
        _engine.backward(self, create_graph=create_graph)

    def detach(self) -> Value:
        """A new constant leaf with the same number and no history."""
        return Value(self.data, label=self.label)


def _is_operand(x) -> bool:
    return type(x) is Value or type(x) is float or isinstance(x, Real)


def _number(x) -> float:
    return x.data if type(x) is Value else x


#: Called as compare_hook(value, op, other, outcome) after every comparison, when set.
compare_hook = None


def _compared(value: Value, op: str, other, outcome: bool) -> bool:
    if compare_hook is not None:
        compare_hook(value, op, other, outcome)
    return outcome


# Imported last: both modules use Value, and Value's methods only need them at call time.
from autodiff import engine as _engine  # noqa: E402
from autodiff import ops as _ops  # noqa: E402
