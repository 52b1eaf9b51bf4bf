"""Seeing backpropagation: graph drawings coloured by gradient flow, and backward step by step.

`to_dot` / `draw_dot` draw a computation graph with each Value's data and grad; `backward_steps`
and `explain` replay the backward pass one chain-rule product at a time; `to_html` writes a
self-contained page that animates those steps on the drawing; `is_dead_relu` is the one test of
a dead ReLU that drawings and plots share. Nothing here changes a graph, and everything here
reads it only through the engine's public API (`parents`, `op`, `topological_order`,
`local_grads`, `ops.PRIMITIVES`).
"""

from autodiff.viz.dot import draw_dot, to_dot
from autodiff.viz.graph import is_dead_relu
from autodiff.viz.html import to_html
from autodiff.viz.steps import BackwardStep, backward_steps, explain

__all__ = [
    "BackwardStep",
    "backward_steps",
    "draw_dot",
    "explain",
    "is_dead_relu",
    "to_dot",
    "to_html",
]
