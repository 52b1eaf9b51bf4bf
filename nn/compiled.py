"""Compiled training: a model's loss traced once and run as straight-line Python on floats.

`compile_loss(model, loss_fn)` wraps `autodiff.compile` for the usual training loop. It traces
`loss_fn(model(x), target)` (for one sample, or for a whole batch) with the model's parameters
as inputs read at every call, so the weights an optimizer updates are the weights the next call
uses. The one idea to understand: `step.backward(X, y)` does what `loss.backward()` does after
building the loss eagerly, the same numbers bit for bit, only without building any graph; the
optimizer then reads `p.grad` as always.

    >>> from nn import MLP, SGD, compile_loss
    >>> from nn.losses import hinge
    >>> model = MLP(2, [4, 1], seed=0)
    >>> opt = SGD(model.parameters(), lr=0.1)
    >>> step = compile_loss(model, hinge)
    >>> X, y = [[0.5, -1.0], [1.0, 2.0]], [1, -1]
    >>> opt.zero_grad()
    >>> loss = step.backward(X, y)      # the batch's mean hinge loss; gradients in p.grad
    >>> opt.step()

Targets are data, not something to differentiate: they select the trace (a class label, or the
tuple of a batch's labels), so a fixed training set is traced once; each new set of targets
(shuffled minibatches, real-valued regression targets) is traced anew and kept in a small cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import autodiff
from autodiff import Value
from autodiff.compile import MAX_NODES, CompiledFunction

__all__ = ["compile_loss", "CompiledLoss"]


def _is_batch(inputs: Any) -> bool:
    """A batch is a list of samples, each a list of numbers; a sample is a list of numbers."""
    return (isinstance(inputs, (list, tuple)) and len(inputs) > 0
            and all(isinstance(x, (list, tuple)) for x in inputs))


def _hashable(targets: Any) -> Any:
    if isinstance(targets, (list, tuple)):
        return tuple(_hashable(t) for t in targets)
    if isinstance(targets, Value):
        raise TypeError("compile_loss: targets must be numbers (data), got a Value; pass "
                        "t.data")
    return targets


class CompiledLoss:
    """A model's loss, compiled; see `compile_loss`."""

    def __init__(self, model, loss_fn: Callable, penalty: Callable | None = None,
                 max_nodes: int | None = MAX_NODES, check: str = "first") -> None:
        if not hasattr(model, "named_parameters"):
            raise TypeError(f"compile_loss() needs an nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"compile_loss() needs a loss function, got {loss_fn!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.penalty = penalty
        params = dict(model.named_parameters())
        if not params:
            raise ValueError("compile_loss(): the model has no parameters")

        def loss(inputs, targets):
            if _is_batch(inputs):
                outputs = [model(x) for x in inputs]
            else:
                outputs = model(inputs)
            value = loss_fn(outputs, _lists(targets))
            if penalty is not None:
                value = value + penalty(model)
            return value

        loss.__name__ = getattr(loss_fn, "__name__", "loss")
        self.compiled: CompiledFunction = autodiff.compile(
            loss, params=params, static_argnums=(1,), max_nodes=max_nodes, check=check)
        self.parameters = list(params.values())

    def __call__(self, inputs: Sequence, targets: Any) -> tuple[float, list[float]]:
        """The loss and its gradient for each parameter (in `model.parameters()` order).

        Touches no `.grad`: the gradients are returned as a list of floats.
        """
        value, _grads, param_grads = self.compiled.evaluate(inputs, _hashable(targets))
        return value, param_grads

    def backward(self, inputs: Sequence, targets: Any) -> float:
        """As `loss = loss_fn(model(...), targets); loss.backward()`: adds each parameter's
        gradient into its `.grad` and returns the loss as a float."""
        value, _grads = self.compiled(inputs, _hashable(targets))
        return value

    @property
    def source(self) -> str:
        """The generated Python of the last trace used."""
        return self.compiled.source

    def __repr__(self) -> str:
        return f"<compiled loss {self.compiled.name} of {type(self.model).__name__}>"


def _lists(targets: Any) -> Any:
    """Targets as the loss functions take them: a tuple of a batch's labels back as a list."""
    if isinstance(targets, tuple):
        return [_lists(t) for t in targets]
    return targets


def compile_loss(model, loss_fn: Callable, *, penalty: Callable | None = None,
                 max_nodes: int | None = MAX_NODES, check: str = "first") -> CompiledLoss:
    """Compile `loss_fn(model(x), target)` (+ `penalty(model)`) for training with `nn.optim`.

    `loss_fn` is any loss of `nn.losses` (or your own function of outputs and targets). Call
    the result with one sample `x` (a list of numbers) and its target, or with a batch `X` (a
    list of samples) and a list of targets, in which case the model's outputs go to `loss_fn`
    as a list, as `hinge(scores, y)` takes them.

        step = compile_loss(model, hinge, penalty=lambda m: l2_penalty(m, 1e-4))
        opt.zero_grad()
        loss = step.backward(X, y)     # adds the gradients into p.grad, like loss.backward()
        opt.step()
        loss, grads = step(x, target)  # or: the loss and a list of gradients, no .grad touched

    The numbers are those of the eager loss and `backward()`, bit for bit. A loss that reads
    `v.data` to decide something (some of `nn.losses` do, for numerical stability) is checked
    against eager execution on the first reuse of each trace and refused if that changes the
    result; see `autodiff.compile` for `max_nodes` and `check`.
    """
    return CompiledLoss(model, loss_fn, penalty=penalty, max_nodes=max_nodes, check=check)
