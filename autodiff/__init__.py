"""autodiff: a scalar reverse-mode automatic differentiation engine.

Build expressions from `Value`s, call `.backward()`, read `.grad`. Every primitive and its
derivative rule live in `autodiff.ops`; the backward pass lives in `autodiff.engine`.

The modules import each other in one direction only, bottom to top: `modes` (grad mode, anomaly
mode, tracing) and `primitive` (what an op is), `anomaly`, `engine` (the sort and the backward
walk), `value` (the node, and `apply`, where nodes are made), `ops` (the op table), `functional`
(`grad`, `gradients`), `gradcheck`, the drawings in `viz`, and the package `compile` (the
backward pass written out as Python).
"""

__version__ = "0.1.0"  # the one place it is written: setup.cfg reads it from here

from autodiff.anomaly import AnomalyError
from autodiff.engine import local_grads, topological_order
from autodiff.modes import (
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
)
from autodiff.value import GraphCutWarning, Value, backward
from autodiff.ops import (
    PRIMITIVES,
    abs,
    add,
    clamp,
    cos,
    div,
    dot,
    exp,
    log,
    log1p,
    logsumexp,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    reciprocal,
    relu,
    sigmoid,
    sin,
    softplus,
    sqrt,
    sub,
    sum,
    tanh,
)
from autodiff.functional import gradients, grad
from autodiff.gradcheck import GradcheckError, gradcheck
from autodiff.viz import backward_steps, draw_dot, explain, to_dot, to_html
from autodiff.compile import compile  # noqa: A004 - autodiff.compile(f), as the issue names it

__all__ = [
    "__version__",
    "Value",
    "GraphCutWarning",
    "backward",
    "gradients",
    "grad",
    "is_grad_enabled",
    "enable_grad",
    "no_grad",
    "detect_anomaly",
    "is_anomaly_enabled",
    "AnomalyError",
    "local_grads",
    "topological_order",
    "GradcheckError",
    "gradcheck",
    "PRIMITIVES",
    "abs",
    "add",
    "clamp",
    "cos",
    "div",
    "dot",
    "exp",
    "log",
    "log1p",
    "logsumexp",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "reciprocal",
    "relu",
    "sigmoid",
    "sin",
    "softplus",
    "sqrt",
    "sub",
    "sum",
    "tanh",
    "backward_steps",
    "draw_dot",
    "explain",
    "to_dot",
    "to_html",
    "compile",
]
