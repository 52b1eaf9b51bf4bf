"""A session's training objective, compiled once and shared by every session that has the same.

A full-batch step evaluates `loss(model(X), y) + l2 * sum(w^2) + l1 * sum(|w|)` and its
gradient. Built eagerly,
that is a graph of thousands of Values per step; `nn.compiled.compile_loss` writes the same
forward and backward out as straight-line Python on floats, bit for bit the same numbers many
times faster. The one idea to understand: a trace depends on the data, the targets and the
shape of the network, not on the weights (they are read at every call), so one trace serves
every session with the same data and architecture: the runs of a race, a Reset, two visitors
with the same settings. A session hands its weights to the shared trace, gets the gradients
back, and adds them into its own `.grad`, as `loss.backward()` would.

Minibatches are not compiled: each batch has its own targets, and a trace per batch would cost
more than it saves. A network too large to trace (`autodiff.compile`'s MAX_NODES) is not either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import autodiff
from autodiff import Value
from autodiff.compile import CompileError
from nn import losses
from nn.compiled import CompiledLoss, compile_loss
from nn.layers import MLP

__all__ = ["SharedObjective", "shared_objective", "loss_of_scores", "cache_clear",
           "CompileError", "penalty_of"]

#: How many traces are kept (each is a few megabytes of generated code).
MAX_SHARED = 8
_cache: OrderedDict[tuple, SharedObjective] = OrderedDict()
_cache_lock = threading.Lock()


class SharedObjective:
    """One compiled objective on a stand-in model of the right shape; thread-safe."""

    def __init__(self, hidden: Sequence[int], outputs: int, activation: str,
                 loss_fn: Callable, l2: float, nin: int = 2, l1: float = 0.0) -> None:
        self.model = MLP(nin, [*hidden, outputs], activation=activation, seed=0)
        self.params = self.model.parameters()
        penalty = (lambda m: penalty_of(m, l2, l1)) if l2 or l1 else None
        self.compiled: CompiledLoss = compile_loss(self.model, loss_fn, penalty=penalty)
        self._lock = threading.Lock()

    def backward(self, params: Sequence[Value], X: Sequence, y: Sequence) -> float:
        """The objective at the weights `params`, adding its gradient into their `.grad` (as
        `loss.backward()` does); returns the objective's value."""
        with self._lock:
            for mine, theirs in zip(self.params, params):
                mine.data = theirs.data
            value, grads = self.compiled(X, y)
        for p, g in zip(params, grads):
            p.grad += g
        return value


def penalty_of(model: Any, l2: float, l1: float) -> Value:
    """The penalties of a session's objective, `l2 * sum(w^2) + l1 * sum(|w|)` (each term only
    when its strength is > 0; call it when one is): added to the data loss as one term, eager
    and compiled alike, so both sum the same floats in the same order."""
    if l2 and l1:
        return losses.l2_penalty(model, l2) + losses.l1_penalty(model, l1)
    return losses.l2_penalty(model, l2) if l2 else losses.l1_penalty(model, l1)


def shared_objective(key: tuple, hidden: Sequence[int], outputs: int, activation: str,
                     loss_fn: Callable, l2: float, nin: int = 2,
                     l1: float = 0.0) -> SharedObjective:
    """The shared objective for `key` (data and model settings), compiled on first use.

    Raises CompileError when the objective cannot be compiled (the caller runs eagerly).
    """
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    made = SharedObjective(hidden, outputs, activation, loss_fn, l2, nin, l1)
    with _cache_lock:
        _cache[key] = made
        while len(_cache) > MAX_SHARED:
            _cache.popitem(last=False)
    return made


def cache_clear() -> None:
    """Forget every trace (tests use it to measure a first compile)."""
    with _cache_lock:
        _cache.clear()
        _loss_cache.clear()


_loss_cache: OrderedDict[tuple, Any] = OrderedDict()


def loss_of_scores(name: str, loss_fn: Callable, scores: list, targets: Sequence) -> float:
    """`loss_fn(scores, targets)` for a list of scores that are plain floats (one per point,
    or one list of class scores per point), through a compiled trace of the loss alone.

    The network's part comes from the model's float evaluation of all points at once
    (`MLP.layer_outputs`); this is the rest of an evaluation, the same operations in the same
    order as on Values, without making a Value per operation. Traces are kept per (loss,
    targets): a training set and a test set.
    """
    key = (name, tuple(targets))
    with _cache_lock:
        found = _loss_cache.get(key)
        if found is not None:
            _loss_cache.move_to_end(key)
    if found is None:
        def loss(s: list, t: tuple) -> Value:
            return loss_fn(s, list(t))

        loss.__name__ = name
        found = (autodiff.compile(loss, static_argnums=(1,)), threading.Lock())
        with _cache_lock:
            _loss_cache[key] = found
            while len(_loss_cache) > 4 * MAX_SHARED:
                _loss_cache.popitem(last=False)
    compiled, lock = found
    with lock:  # one caller at a time per trace (the server answers in several threads)
        value, _ = compiled(scores, key[1])
    return value
