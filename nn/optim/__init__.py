"""Optimizers: what to do with a gradient once `backward()` has computed it.

Every optimizer here answers one question: given each parameter's `.grad`, how far should its
`.data` move? The plainest answer is `p.data -= lr * p.grad` (SGD); the others keep a little
memory per parameter (a running average of past gradients, or of their squares) and use it to
choose a better step. Each one with a namesake in `torch.optim` (SGD to Adafactor and Muon,
LBFGS) computes the same numbers as it (same argument names, defaults and formulas); Lion and
the Schedule-Free pair compute those of the `lion-pytorch` and `schedulefree` packages.

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
    first_order.py     SGD, Adam, AdamW, RMSprop, Adagrad
    adaptive.py        NAdam, RAdam, Adamax, Adadelta, Rprop, ASGD (torch.optim's), Lion
    schedule_free.py   SGDScheduleFree, AdamWScheduleFree: averaging instead of a schedule
    matrix.py          Muon, Adafactor: whole weight matrices at once; matrices(model)
    closure.py         ClosureOptimizer, LBFGS, ConjugateGradient: `step(closure)`
    linesearch.py      the one strong-Wolfe line search that LBFGS and CG share
    gradient_free.py   CMAES, EvolutionStrategy (the loss's value only, never a gradient)
    evolutionary.py    GeneticAlgorithm: selection, crossover and mutation of a population
    registry.py        every optimizer under one name ("sgd", "conjugate_gradient", ...)

docs/optimizers.md has every rule's update in one line, side by side. `to_torch` and
`from_torch` carry an optimizer and its state to torch.optim and back (the classes in
TORCH_NAMESAKES, and Muon and Adafactor per matrix); they are doors to nn.torch_bridge, which
builds on this package and hands their work in.

The closure methods evaluate the loss several times per step, so their `step(closure)` takes a
function that computes it, as `torch.optim.LBFGS` does; CMA-ES and the evolution strategy need
only the loss's value, never a gradient.
"""

from nn.optim.base import Optimizer, clip_grad_norm, from_torch, to_torch  # noqa: F401
from nn.optim.first_order import SGD, Adagrad, Adam, AdamW, RMSprop
from nn.optim.first_order import TORCH_NAMESAKES as _FIRST_ORDER_NAMESAKES
from nn.optim.closure import LBFGS, ClosureOptimizer, ConjugateGradient
from nn.optim.adaptive import ASGD, Adadelta, Adamax, Lion, NAdam, RAdam, Rprop
from nn.optim.adaptive import TORCH_NAMESAKES as _ADAPTIVE_NAMESAKES
from nn.optim.schedule_free import AdamWScheduleFree, SGDScheduleFree
from nn.optim.matrix import Adafactor, MatrixOptimizer, Muon, matrices
from nn.optim.gradient_free import CMAES, EvolutionStrategy
from nn.optim.evolutionary import GeneticAlgorithm

# Helpers that `from nn.optim import ...` finds as well (not in `*`): the conjugate-gradient
# betas, the gradient-free methods' linear algebra, the registry of names.
from nn.optim.closure import CG_BETAS, cg_beta  # noqa: F401
from nn.optim.gradient_free import centered_ranks, symmetric_eigen  # noqa: F401
from nn.optim.registry import OPTIMIZERS, register  # noqa: F401

# The classes, in order of growing complexity (registry.py gives each its one name).
__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "NAdam", "RAdam", "Adamax", "Adadelta", "Rprop", "ASGD", "Lion",
           "SGDScheduleFree", "AdamWScheduleFree", "MatrixOptimizer", "Muon", "Adafactor",
           "matrices", "clip_grad_norm",
           "ClosureOptimizer", "LBFGS", "ConjugateGradient", "CMAES", "EvolutionStrategy",
           "GeneticAlgorithm"]

#: The optimizers whose torch.optim namesake computes the same numbers from the same state per
#: weight: what `to_torch` and `from_torch` carry across (exactly these classes, not subclasses).
TORCH_NAMESAKES = _FIRST_ORDER_NAMESAKES + _ADAPTIVE_NAMESAKES
#: The matrix rules with a torch.optim namesake: they cross with one matrix per torch tensor.
MATRIX_NAMESAKES = (Muon, Adafactor)

