"""Compiled backward: trace a function once, write its forward and backward pass out as Python.

`compile(f)` runs `f` on Values once, reads the graph it built and emits straight-line Python
source: one local variable per node, the forward pass with each primitive's float forward, then
the backward pass with each primitive's derivative rule written inline, node by node in exactly
the order `backward()` visits them. Later calls run that code on plain floats. The one idea to
understand: the code is the backward pass itself, written out, so it gives the very numbers
`backward()` gives (same rules, same order of additions), and reading it shows what backprop does.

    >>> from autodiff import compile
    >>> step = compile(lambda a, b: a * b + a)
    >>> step(2.0, -3.0)                  # the value, and (d/da, d/db)
    (-4.0, (-2.0, 2.0))

Python decisions made during tracing are handled as TorchDynamo does: every comparison of a
Value (`if x > 0:`) and every error of an operation the function catches is recorded as a guard,
checked in the generated code; a call for which one comes out differently is traced again (or
served by the trace that matches). Branches inside derivative rules (relu, abs) stay branches in
the generated code. Tracing is a mode of the engine (`autodiff.modes.tracing`): the operations
themselves report what they did, so profilers and debuggers change nothing. A number read out
of a Value cannot be followed: `float(v)`, `v.detach()` and `no_grad()` during tracing are
refused; `v.data` and Python globals cannot be noticed, so the first reuse of each trace is
checked against eager execution, and `check="always"` checks every call (see `compile`).

The package, in the order data flows through it: `trace` (run `f` in TRACE mode), `rules`
(each primitive's forward and rule as text), `emit` (one trace written out as Python),
`arguments` (numbers in, gradients out in the same shape) and `function` (the callable).
"""

from autodiff.compile.emit import MAX_NODES, Trace
from autodiff.compile.errors import CompileError
from autodiff.compile.function import MAX_TRACES, CompiledFunction, compile  # noqa: A004

__all__ = ["compile", "CompiledFunction", "CompileError", "Trace", "MAX_NODES", "MAX_TRACES"]
