"""nn: neural networks built from autodiff Values (neurons, layers, MLPs, losses, optimizers).

A model here is ordinary Python holding `Value`s, so its loss is one `autodiff` graph and
`loss.backward()` fills every weight's `.grad`; an optimizer then moves each `p.data`. The one
idea: nothing in `nn` differentiates anything itself. It only builds expressions and reads
gradients, so a drawing, `explain` or the compiled backward shows exactly what it computed.
`nn.plots`, `nn.demo` and `nn.playground` are imported only when you import them, and torch
only when a function of `nn.torch_bridge` is called.
"""

# The mark of chainrule's `nn`: its modules check for it (nn/_origin.py), so that a package of the
# same name from another distribution fails with a message that says so.
__chainrule__ = True

# Models: `nn.MLP(2, [16, 16, 1])`, `model.save(path)`, `nn.load(path)`.
from nn.module import Module, load  # noqa: F401
from nn.layers import MLP, Layer, Neuron  # noqa: F401
from nn import data, losses  # noqa: F401

# Optimizers and learning-rate schedules: `nn.optim.SGD(...)`, `nn.schedules.StepLR(...)`.
from nn import optim, schedules  # noqa: F401
from nn.optim import SGD, Adagrad, Adam, AdamW, RMSprop, clip_grad_norm  # noqa: F401
from nn.optim import CMAES, LBFGS, ConjugateGradient, EvolutionStrategy  # noqa: F401

# Picking a learning rate: `nn.lr_range_test(opt, loss_fn)` runs the range test (nn.lr_finder).
from nn import lr_finder  # noqa: F401
from nn.lr_finder import lr_range_test  # noqa: F401

# Compiled training: `nn.compile_loss(model, loss_fn)` runs the loss as generated code.
from nn.compiled import compile_loss  # noqa: F401

# The bridge to PyTorch (`model.to_torch()`, `nn.optim.to_torch(opt, ...)`); torch itself is
# imported only when one of its functions is called.
from nn import torch_bridge  # noqa: F401
