"""Seeing backpropagation: graph drawings coloured by gradient flow, and backward step by step.

`to_dot` / `draw_dot` draw a computation graph with each Value's data and grad; `backward_steps`
and `explain` replay the backward pass one chain-rule product at a time; `to_html` writes a
self-contained page that animates those steps on the drawing. Nothing here changes a graph.
"""

from autodiff.viz.dot import draw_dot, to_dot
from autodiff.viz.html import to_html
from autodiff.viz.steps import BackwardStep, backward_steps, explain

__all__ = ["BackwardStep", "backward_steps", "draw_dot", "explain", "to_dot", "to_html"]
