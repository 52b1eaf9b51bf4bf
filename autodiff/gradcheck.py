"""Check analytic derivatives against finite differences, to first and second order.

The one idea: if a derivative rule is right, nudging an input by a tiny `eps` either way changes
the output by almost exactly `2 * eps * derivative` (a central difference). `gradcheck` compares
both for every input and, for `order=2`, every pair of inputs (each second derivative against a
central difference of the analytic first derivative), and raises an error that names the input,
the order and both numbers at the first disagreement.

    >>> from autodiff import gradcheck
    >>> gradcheck(lambda x, y: (x * y).tanh(), 0.3, -0.7)
    True
    >>> gradcheck(lambda x: x * x.data, 1.5)   # .data cuts the graph: half the derivative is lost
    Traceback (most recent call last):
        ...
    autodiff.gradcheck.GradcheckError: gradcheck: order-1 derivative d f / d x0 at x0=1.5 is wrong:
    analytic 1.5, numeric 2.99... (atol=1e-05, rtol=0.001)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

from autodiff.functional import grad
from autodiff.modes import no_grad
from autodiff.value import Value


class GradcheckError(AssertionError):
    """An analytic derivative disagrees with its finite-difference estimate."""


def gradcheck(
    f: Callable,
    *inputs,
    order: int = 2,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Return True when every derivative of `f` up to `order` (1 or 2) matches; raise otherwise.

    `f` takes the inputs as Values and returns a Value. Inputs may be floats or Values (only
    their numbers are used; a Value's label names it in the error).
    """
    if not callable(f):
        raise TypeError(f"gradcheck(f) needs a function, got {type(f).__name__}: {f!r}")
    if type(order) is not int or order not in (1, 2):
        raise ValueError(f"gradcheck() supports order 1 or 2, got {order!r}")
    if not inputs:
        raise ValueError("gradcheck() needs at least one input")
    for i, x in enumerate(inputs):
        if not isinstance(x, Value) and (isinstance(x, bool) or not isinstance(x, Real)):
            raise TypeError(
                f"gradcheck(): input {i} needs a number or a Value, got {type(x).__name__}: {x!r}"
            )
    for name, tol, smallest in (("eps", eps, "positive"), ("atol", atol, "non-negative"),
                                ("rtol", rtol, "non-negative")):
        if isinstance(tol, bool) or not isinstance(tol, Real):
            raise TypeError(f"gradcheck({name}=...) needs a real number, got {tol!r}")
        if not math.isfinite(tol) or tol < 0 or (smallest == "positive" and tol == 0):
            raise ValueError(f"gradcheck({name}=...) needs a finite {smallest} number, got {tol!r}")
    point = [float(x.data if isinstance(x, Value) else x) for x in inputs]
    # f is written for Values: inputs that grad() leaves as plain floats become constants.
    f_on_values = lambda *xs: f(*[x if isinstance(x, Value) else Value(x) for x in xs])  # noqa: E731
    names = [x.label if isinstance(x, Value) and x.label else f"x{i}" for i, x in enumerate(inputs)]
    where = ", ".join(f"{n}={p!r}" for n, p in zip(names, point))
    everything = tuple(range(len(point)))

    def nudged(fn, i, step):
        shifted = list(point)
        shifted[i] += step
        return fn(shifted)

    def central(fn, i):
        return (nudged(fn, i, eps) - nudged(fn, i, -eps)) / (2 * eps)

    def check(analytic, numeric, what):
        if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
            raise GradcheckError(
                f"gradcheck: {what} at {where} is wrong: analytic {analytic!r}, "
                f"numeric {numeric!r} (atol={atol!r}, rtol={rtol!r})"
            )

    def value_of(p):
        with no_grad():
            out = f_on_values(*p)
        return float(out.data if isinstance(out, Value) else out)

    first = grad(f_on_values, argnums=everything)
    for i, analytic in enumerate(first(*point)):
        check(analytic, central(value_of, i), f"order-1 derivative d f / d {names[i]}")

    if order == 2:
        for i in everything:
            df_i = grad(f_on_values, argnums=i)
            hessian_row = grad(df_i, argnums=everything)(*point)
            for j, analytic in enumerate(hessian_row):
                numeric = central(lambda p, df=df_i: df(*p), j)
                check(analytic, numeric, f"order-2 derivative d2 f / d {names[i]} d {names[j]}")
    return True
