"""To and from torch.optim: the doors to nn/torch_bridge.py, which imports torch only when called.

`TORCH_NAMESAKES` names the optimizers whose torch.optim namesake computes the same numbers from
the same state, per weight: these (exactly these classes, not subclasses) the bridge carries
across, settings and state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from autodiff import Value
from nn.optim.adaptive import ASGD, Adadelta, Adamax, NAdam, RAdam, Rprop
from nn.optim.base import Optimizer
from nn.optim.first_order import SGD, Adagrad, Adam, AdamW, RMSprop
from nn.torch_bridge import optimizer_from_torch, optimizer_to_torch  # torch only when called

__all__ = ["TORCH_NAMESAKES", "to_torch", "from_torch"]

#: The optimizers with a torch.optim namesake of the same numbers: what `to_torch` and
#: `from_torch` can carry across (exactly these classes, not subclasses).
TORCH_NAMESAKES: tuple[type[Optimizer], ...] = (SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam,
                                                Adamax, Adadelta, Rprop, ASGD)


def to_torch(opt: Optimizer, torch_params: Any) -> Any:
    """The torch.optim optimizer that continues where `opt` stands: same settings and state.

        torch_opt = nn.optim.to_torch(opt, model.to_torch().parameters())

    Details and errors: `nn.torch_bridge.optimizer_to_torch`.
    """
    return optimizer_to_torch(opt, torch_params, TORCH_NAMESAKES)


def from_torch(torch_opt: Any, params: Iterable[Value]) -> Optimizer:
    """The chainrule optimizer that continues where a torch.optim one stands (the way back).

        opt = nn.optim.from_torch(torch_opt, model.parameters())

    Details and errors: `nn.torch_bridge.optimizer_from_torch`.
    """
    return optimizer_from_torch(torch_opt, params, TORCH_NAMESAKES)
