"""nn: neural networks built from autodiff Values (neurons, layers, MLPs, losses, optimizers)."""

# Optimizers and learning-rate schedules: `nn.optim.SGD(...)`, `nn.schedules.StepLR(...)`.
from nn import optim, schedules  # noqa: F401
from nn.optim import SGD, Adagrad, Adam, AdamW, RMSprop, clip_grad_norm  # noqa: F401
