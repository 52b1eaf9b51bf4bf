"""Tracing: run the function once on Values, in the engine's TRACE mode, and keep what it saw.

A trace is the graph the function built plus what the graph does not show: each comparison of a
Value and its outcome (a Python `if` on one chose this graph), each forward that raised (the
function may have caught it and built another graph), and which Values were made during the
call (the others existed before and are read at every call, not recomputed). The engine reports
all of this itself while `tracing()` is on, in this thread only; nothing is hooked or swapped,
so profilers, coverage and debuggers change nothing.

The one idea: a trace may only be reused while the decisions it saw still come out the same,
so the written code checks each one (a guard) before using the graph, as TorchDynamo does.
What the engine cannot report is a number read from `v.data`; reads by `float(v)`,
`v.detach()` and `no_grad()` it does report, and those are refused.
"""

from __future__ import annotations

from collections.abc import Callable

from autodiff.compile.errors import CompileError
from autodiff.modes import TraceRecord, enable_grad, is_grad_enabled, tracing
from autodiff.value import Value


def record(func: Callable, call_args: list, name: str) -> tuple[Value, TraceRecord]:
    """Run `func(*call_args)` in TRACE mode: its output Value and what the run reported."""
    if not is_grad_enabled():
        with enable_grad():  # a trace records the graph, whatever the caller's mode
            return record(func, call_args, name)
    seen = TraceRecord()
    with tracing(seen):
        out = func(*call_args)
    if seen.reads:
        raise CompileError(
            f"compiled {name}: while tracing, {seen.reads[0]}. A trace records operations on "
            "Values; a number taken out of one would be frozen into the generated code and be "
            "wrong on the next call. Compute with autodiff operations (autodiff.exp(v), not "
            "math.exp(v)), and print or log numbers outside the compiled function.")
    return returned_value(out, name), seen


def returned_value(out, name: str) -> Value:
    """`out`, checked to be what a compiled function must return: a Value."""
    if not isinstance(out, Value):
        raise TypeError(f"compile({name}): the function must return a Value (the output to "
                        f"differentiate), got {type(out).__name__}: {out!r}")
    return out


def raises(forward: Callable, error: type, *inputs) -> bool:
    """Does `forward(*inputs)` raise `error`, as it did while tracing? (A guard's question.)"""
    try:
        forward(*inputs)
    except error:
        return True
    except Exception:  # noqa: BLE001 - another error: the traced path does not hold
        return False
    return False
