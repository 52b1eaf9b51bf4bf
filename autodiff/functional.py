"""Derivatives as values and as functions: `gradients(root, wrt)` and `grad(f)`, JAX style.

Both run the engine's one backward loop (`autodiff.engine.backward_pass`) and hand its numbers
back instead of writing them into `.grad`, so they touch no Value's state. The one idea: called
on Values, or inside another `grad`, the loop runs its rules on Values, so a derivative is an
expression like any other and can be differentiated again: `grad(grad(f))` is f''.

    >>> from autodiff import grad, sin
    >>> grad(sin)(0.0)
    1.0
    >>> grad(grad(lambda x: x ** 3))(2.0)
    12.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from numbers import Real

from autodiff import engine
from autodiff.modes import enable_grad
from autodiff.ops import identity
from autodiff.value import Value

# How many grad() calls are being evaluated right now (nested derivatives must build graphs).
_GRAD_DEPTH: ContextVar[int] = ContextVar("autodiff_grad_depth", default=0)


def gradients(root, wrt: Sequence[Value], create_graph: bool = False) -> list:
    """d root / d w for each w in `wrt`, without touching any `.grad` attribute.

    The walk stops at the `wrt` nodes, as if they were leaves. Returns floats, or Values when
    `create_graph` is true; 0.0 for a node that `root` does not depend on (and for every node
    when `root` is a plain number).
    """
    if not isinstance(wrt, Sequence) or isinstance(wrt, (str, bytes)):
        raise TypeError(
            f"gradients(wrt=...) needs a list or tuple of Values, got {type(wrt).__name__}: "
            f"{wrt!r}"
        )
    for i, w in enumerate(wrt):
        if not isinstance(w, Value):
            raise TypeError(f"gradients(wrt=...): wrt[{i}] is a {type(w).__name__}, not a Value")
    if type(create_graph) is not bool:
        raise TypeError(
            f"gradients(create_graph=...) needs True or False, got {create_graph!r}"
        )
    if not isinstance(root, Value):
        if isinstance(root, bool) or not isinstance(root, Real):
            raise TypeError(
                f"gradients(root) needs a Value or a number, got {type(root).__name__}: {root!r}"
            )
        return [0.0] * len(wrt)  # a constant depends on nothing
    if create_graph:
        with enable_grad():  # the gradient graph is wanted even under no_grad()
            _, grads = engine.backward_pass(root, Value(1.0), frozenset(wrt))
    else:
        _, grads = engine.backward_pass(root, 1.0, frozenset(wrt))
    return [grads.get(w, 0.0) for w in wrt]


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The derivative of `f` as a function, JAX style: `grad(f)(x)` is df/dx at x.

    Accepts floats or Values. Called on floats at top level it returns floats; called on Values,
    or inside another `grad`, it returns Values that can be differentiated again, so
    `grad(grad(f))` is the second derivative. With a tuple `argnums` it returns a tuple.

        >>> grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0)
        (5.0, 2.0)
    """
    if not callable(f):
        raise TypeError(f"grad(f) needs a function, got {type(f).__name__}: {f!r}")
    single = _is_index(argnums)
    if single:
        positions = (argnums,)
    elif isinstance(argnums, (tuple, list)) and argnums and all(map(_is_index, argnums)):
        positions = tuple(argnums)
    else:
        raise TypeError(
            f"grad(argnums=...) needs an int or a non-empty tuple of ints, got {argnums!r}"
        )

    @functools.wraps(f)
    def derivative(*args):
        traced = _GRAD_DEPTH.get() > 0 or any(isinstance(a, Value) for a in args)
        args = list(args)
        where = []
        for i in positions:
            if not -len(args) <= i < len(args):
                raise TypeError(
                    f"grad(f, argnums={argnums!r}): f was called with {len(args)} arguments"
                )
            where.append(i % len(args))
        if len(set(where)) != len(where):
            raise ValueError(f"grad(argnums={argnums!r}) names an argument twice")
        for i in where:
            x = args[i]
            if not isinstance(x, Value) and (isinstance(x, bool) or not isinstance(x, Real)):
                raise TypeError(
                    f"grad(f): argument {i} needs a number or a Value, got {type(x).__name__}: "
                    f"{x!r}"
                )
        token = _GRAD_DEPTH.set(_GRAD_DEPTH.get() + 1)
        try:
            with enable_grad():  # f's graph is needed even when grad() is called under no_grad()
                for i in where:
                    # A fresh node per call: even when the argument is an outer variable, this
                    # call's derivative is taken with respect to its own copy (no "perturbation
                    # confusion").
                    x = args[i]
                    args[i] = identity(x) if isinstance(x, Value) else Value(x)
                out = f(*args)
        finally:
            _GRAD_DEPTH.reset(token)
        wrt = [args[i] for i in where]
        if isinstance(out, bool) or not isinstance(out, (Value, Real)):
            raise TypeError(f"grad(f): f must return a Value or a number, got {type(out).__name__}")
        result = gradients(out, wrt, create_graph=traced)
        if not traced:
            result = [g.data if isinstance(g, Value) else float(g) for g in result]
        return result[0] if single else tuple(result)

    return derivative


def _is_index(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)
