"""Compiled sessions: the same numbers as the eager engine, bit for bit, or eager with a reason.

A Session runs its full-batch steps on `autodiff.compile` by default; `compiled=False` keeps the
eager engine. Nothing about the numbers may change: weights, losses and every history entry
are compared with `==`, for every optimizer and loss the playground offers.
"""

from __future__ import annotations

import pytest

from autodiff import no_grad
from nn.playground import Session
from nn.playground import objective as objective_module
from nn.playground.settings import OPTIMIZERS
from nn.plots import grad_flow_stats

SMALL = {"n": 50, "hidden": [5, 4], "seed": 4}


def weights(session):
    return [p.data for p in session.model.parameters()]


def twins(steps, **settings):
    fast = Session(**SMALL, **settings)
    slow = Session(**SMALL, **settings, compiled=False)
    fast.step(steps)
    slow.step(steps)
    return fast, slow


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_compiled_is_eager_bit_for_bit(name):
    fast, slow = twins(3, optimizer=name, lr=0.02)
    assert weights(fast) == weights(slow)
    assert fast.history == slow.history
    assert (fast.evaluations, fast.gradients) == (slow.evaluations, slow.gradients)
    assert fast.compile_note is None


@pytest.mark.parametrize("settings", [
    {"loss": "bce"}, {"loss": "mse", "l2": 0.01}, {"activation": "tanh"},
    {"activation": "sigmoid", "optimizer": "adam", "lr": 0.05},
    {"dataset": "spirals", "loss": "cross_entropy"},
])
def test_every_loss_and_activation_compiled_is_eager_bit_for_bit(settings):
    fast, slow = twins(4, **settings)
    assert weights(fast) == weights(slow) and fast.history == slow.history


def test_a_live_change_of_l2_or_optimizer_stays_exact():
    fast, slow = twins(2)
    for s in (fast, slow):
        s.update(l2=0.05)
        s.step(2)
        s.update(optimizer="lbfgs", line_search_fn="strong_wolfe", max_iter=2)
        s.step(2)
    assert weights(fast) == weights(slow) and fast.history == slow.history


def test_minibatches_run_eagerly_and_say_so():
    fast, slow = twins(3, batch_size=8)
    assert weights(fast) == weights(slow)
    assert "minibatches run eagerly" in fast.compile_note
    assert fast.frame()["compiled"] is False and "minibatches" in fast.frame()["compile_note"]


def test_an_objective_that_cannot_compile_runs_eagerly_and_says_why(monkeypatch):
    def refuse(*args, **kwargs):
        raise objective_module.CompileError("the graph has 200,000 operations")

    monkeypatch.setattr("nn.playground.session.shared_objective", refuse)
    fast, slow = twins(2)
    assert weights(fast) == weights(slow)
    assert fast.compile_note == ("runs eagerly: the objective cannot be compiled (the graph has "
                                 "200,000 operations)")


def test_twins_share_one_trace_and_keep_their_own_weights():
    objective_module.cache_clear()
    a = Session(**SMALL, lr=0.1)
    b = Session(**SMALL, lr=0.01)
    a.step(1)
    b.step(1)
    assert len(objective_module._cache) == 1
    assert weights(a) != weights(b)
    lone = Session(**SMALL, lr=0.01, compiled=False)
    lone.step(1)
    assert weights(b) == weights(lone)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
def test_the_sessions_losses_come_from_the_models_float_evaluation(activation):
    s = Session(**SMALL, activation=activation)
    s.step(2)
    X = s.X_train
    with no_grad():
        scores = [s.model(x) for x in X]
        eager_loss = s.loss_fn(scores, s.y_train).data
    assert s.model.layer_outputs(X)[-1][0] == [v.data for v in scores]
    assert s.train_loss == eager_loss


def test_compiled_must_be_a_bool():
    with pytest.raises(TypeError, match="compiled must be True or False, got 'yes'"):
        Session(**SMALL, compiled="yes")


@pytest.mark.parametrize("seed", range(4))
def test_the_frames_dead_neurons_are_grad_flow_stats(seed):
    s = Session(n=100, hidden=[8, 8], seed=seed, lr=1.0)
    s.step(5)
    stats = grad_flow_stats(s.model, s.X_train)
    frame = s.frame()
    assert [g["dead"] for g in frame["grad_flow"]] == [g["dead"] for g in stats]
    drawn = {n["name"] for layer in frame["network"]["layers"] for n in layer["neurons"]
             if n["dead"]}
    assert drawn == {name for g in stats for name in g["dead"]}
