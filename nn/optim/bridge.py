"""To and from torch.optim: the doors to nn/torch_bridge.py, which imports torch only when called.

`TORCH_NAMESAKES` names the optimizers whose torch.optim namesake computes the same numbers from
the same state, per weight: these (exactly these classes, not subclasses) the bridge carries
across, settings and state. `MATRIX_NAMESAKES`, Muon and Adafactor, keep their state per
matrix: they cross with one item of `nn.optim.matrices(model)` per torch tensor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from autodiff import Value
from nn.optim.adaptive import ASGD, Adadelta, Adamax, NAdam, RAdam, Rprop
from nn.optim.base import Optimizer
from nn.optim.first_order import SGD, Adagrad, Adam, AdamW, RMSprop
from nn.optim.matrix import Adafactor, Muon
from nn.torch_bridge import (matrix_optimizer_from_torch,  # torch only when called
                             matrix_optimizer_to_torch, optimizer_from_torch, optimizer_to_torch)

__all__ = ["TORCH_NAMESAKES", "MATRIX_NAMESAKES", "to_torch", "from_torch"]

#: The optimizers with a torch.optim namesake of the same numbers: what `to_torch` and
#: `from_torch` can carry across (exactly these classes, not subclasses).
TORCH_NAMESAKES: tuple[type[Optimizer], ...] = (SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam,
                                                Adamax, Adadelta, Rprop, ASGD)
#: The matrix rules with a torch.optim namesake (their state is kept per matrix).
MATRIX_NAMESAKES: tuple[type[Optimizer], ...] = (Muon, Adafactor)


def to_torch(opt: Optimizer, torch_params: Any) -> Any:
    """The torch.optim optimizer that continues where `opt` stands: same settings and state.

        torch_opt = nn.optim.to_torch(opt, model.to_torch().parameters())

    Muon and Adafactor take one tensor per matrix: `to_torch(opt, model.to_torch().parameters())`
    for `opt = Adafactor(matrices(model))`. Details and errors:
    `nn.torch_bridge.optimizer_to_torch` and `matrix_optimizer_to_torch`.
    """
    if type(opt) in MATRIX_NAMESAKES:
        return matrix_optimizer_to_torch(opt, torch_params)
    return optimizer_to_torch(opt, torch_params, TORCH_NAMESAKES)


def from_torch(torch_opt: Any, params: Iterable[Value]) -> Optimizer:
    """The chainrule optimizer that continues where a torch.optim one stands (the way back).

        opt = nn.optim.from_torch(torch_opt, model.parameters())

    For torch's Muon and Adafactor, `params` are matrices: `nn.optim.matrices(model)`. Details
    and errors: `nn.torch_bridge.optimizer_from_torch` and `matrix_optimizer_from_torch`.
    """
    for cls in MATRIX_NAMESAKES:
        if type(torch_opt).__name__ == cls.__name__ and type(torch_opt).__module__.startswith(
                "torch.optim"):
            return matrix_optimizer_from_torch(torch_opt, params, cls)
    return optimizer_from_torch(torch_opt, params, TORCH_NAMESAKES)
