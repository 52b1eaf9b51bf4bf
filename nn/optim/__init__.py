"""Optimizers: what to do with a gradient once `backward()` has computed it.

Every optimizer here answers one question: given each parameter's `.grad`, how far should its
`.data` move? The plainest answer is `p.data -= lr * p.grad` (SGD); the others keep a little
memory per parameter (a running average of past gradients, or of their squares) and use it to
choose a better step. Each one with a namesake in `torch.optim` (SGD to Adagrad, LBFGS) computes
the same numbers as it (same argument names, defaults and formulas).

The loop is always the same three lines:

    >>> from autodiff import Value
    >>> w = Value(3.0)
    >>> opt = SGD([w], lr=0.1)
    >>> for _ in range(2):
    ...     opt.zero_grad()          # forget the previous gradient
    ...     loss = w * w             # forward
    ...     loss.backward()          # w.grad = d loss / d w = 2 w
    ...     opt.step()               # w.data -= 0.1 * w.grad
    >>> round(w.data, 6)             # 3 -> 2.4 -> 1.92
    1.92

Optimizers work on plain floats: an update changes `p.data` in place and builds no graph.
Each one also takes `maximize=True`, as in torch.optim: it then starts from -g instead of g
and climbs the function. A step reads (and checks) every gradient before it moves any weight,
so a bad `.grad` stops it with nothing changed.

The package has one room per kind of method, in order of growing complexity:

    base.py            Optimizer (parameters, lr, state, state_dict), clip_grad_norm
    first_order.py     SGD, Adam, AdamW, RMSprop, Adagrad (and which have a torch namesake)
    closure.py         ClosureOptimizer, LBFGS, ConjugateGradient: `step(closure)`
    linesearch.py      the one strong-Wolfe line search that LBFGS and CG share
    gradient_free.py   CMAES, EvolutionStrategy (the loss's value only, never a gradient)
    registry.py        every optimizer under one name ("sgd", "conjugate_gradient", ...)

`to_torch` and `from_torch` carry an optimizer and its state to torch.optim and back; they
are doors to nn.torch_bridge, which builds on this package and hands their work in.

The closure methods evaluate the loss several times per step, so their `step(closure)` takes a
function that computes it, as `torch.optim.LBFGS` does; CMA-ES and the evolution strategy need
only the loss's value, never a gradient.
"""

from nn.optim.base import Optimizer, clip_grad_norm, from_torch, to_torch  # noqa: F401
from nn.optim.first_order import SGD, Adagrad, Adam, AdamW, RMSprop
from nn.optim.closure import LBFGS, ClosureOptimizer, ConjugateGradient
from nn.optim.gradient_free import CMAES, EvolutionStrategy

# Helpers that `from nn.optim import ...` finds as well (not in `*`): the conjugate-gradient
# betas, the gradient-free methods' linear algebra, the registry of names.
from nn.optim.closure import CG_BETAS, cg_beta  # noqa: F401
from nn.optim.first_order import TORCH_NAMESAKES  # noqa: F401
from nn.optim.gradient_free import centered_ranks, symmetric_eigen  # noqa: F401
from nn.optim.registry import OPTIMIZERS, register  # noqa: F401

# The classes, in order of growing complexity (registry.py gives each its one name).
__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "clip_grad_norm",
           "ClosureOptimizer", "LBFGS", "ConjugateGradient", "CMAES", "EvolutionStrategy"]

