"""autodiff: a scalar reverse-mode automatic differentiation engine.

Build expressions from `Value`s, call `.backward()`, read `.grad`. Every primitive and its
derivative rule live in `autodiff.ops`; the backward pass lives in `autodiff.engine`.
"""

__version__ = "0.1.0"  # the one place it is written: setup.cfg reads it from here

from autodiff.value import Value
from autodiff.engine import (
    backward,
    gradients,
    grad,
    is_grad_enabled,
    local_grads,
    no_grad,
    topological_order,
)
from autodiff.gradcheck import GradcheckError, gradcheck
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
    maximum,
    minimum,
    mul,
    neg,
    pow,
    reciprocal,
    relu,
    sigmoid,
    sin,
    sqrt,
    sub,
    sum,
    tanh,
)
from autodiff.viz import backward_steps, draw_dot, explain, to_dot, to_html

__all__ = [
    "__version__",
    "Value",
    "backward",
    "gradients",
    "grad",
    "is_grad_enabled",
    "local_grads",
    "no_grad",
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
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "reciprocal",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "sub",
    "sum",
    "tanh",
    "backward_steps",
    "draw_dot",
    "explain",
    "to_dot",
    "to_html",
]
