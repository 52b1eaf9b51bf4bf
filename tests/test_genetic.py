"""GeneticAlgorithm: the issue's two promises, determinism, resuming, and its errors."""

from __future__ import annotations

import json
import math
from functools import partial

import pytest

from autodiff import Value
from nn import MLP
from nn.data import make_moons
from nn.optim import SGD
from nn.optim.evolutionary import CROSSOVERS, SELECTIONS, GeneticAlgorithm
from nn.testfunctions import rastrigin


def rastrigin_at(params):
    """Rastrigin at the parameters' values: a float (the GA needs no graph)."""
    return rastrigin(params[0].data, params[1].data)


def test_defaults_train_the_moons_network_to_90_percent():
    """(a) MLP(2, [8, 1], tanh), squared error on 40 moons points, 300 generations of 50."""
    X, y = make_moons(40, noise=0.1, seed=0, labels="pm1")
    model = MLP(2, [8, 1], activation="tanh", seed=0)
    hidden, out = model.layers

    def predict(x):  # the model's forward on floats: the GA needs only the loss's value
        h = [math.tanh(n.b.data + n.w[0].data * x[0] + n.w[1].data * x[1])
             for n in hidden.neurons]
        return out.neurons[0].b.data + sum(w.data * hi for w, hi in zip(out.neurons[0].w, h))

    def loss():
        return sum((predict(x) - t) ** 2 for x, t in zip(X, y)) / len(X)

    opt = GeneticAlgorithm(model.parameters(), seed=0)
    for _ in range(300):
        opt.step(loss)
    assert opt.state["func_evals"] == 300 * 50
    assert [p.data for p in model.parameters()] == opt.state["best_x"]
    assert loss() == opt.state["best_loss"]
    accuracy = sum((predict(x) > 0) == (t > 0) for x, t in zip(X, y)) / len(X)
    assert accuracy >= 0.9
    assert model(X[0]).data == pytest.approx(predict(X[0]), abs=1e-12)  # the same network


def test_the_population_finds_rastrigins_global_minimum_where_descent_stops():
    """(b) From (3.3, -2.7): the GA reaches f < 0.1 within 200 generations of 50 in most
    seeds; gradient descent from the same start settles in a local minimum."""
    found = 0
    for seed in range(10):
        x = [Value(3.3), Value(-2.7)]
        opt = GeneticAlgorithm(x, seed=seed)
        for _ in range(200):
            opt.step(partial(rastrigin_at, x))
            if opt.state["best_loss"] < 0.1:
                found += 1
                break
    assert found >= 8

    x = [Value(3.3), Value(-2.7)]
    sgd = SGD(x, lr=0.002)
    for _ in range(2000):
        sgd.zero_grad()
        rastrigin(*x).backward()
        sgd.step()
    assert max(abs(p.grad) for p in x) < 1e-6           # stopped: a stationary point
    assert rastrigin(x[0].data, x[1].data) > 10         # ... of a local minimum, not the global
    assert round(x[0].data) == 3 and round(x[1].data) == -3


def _run(steps, saved=None, **kwargs):
    x = [Value(1.5), Value(-0.5), Value(2.0)]
    opt = GeneticAlgorithm(x, popsize=12, seed=3, **kwargs)
    if saved is not None:
        opt.load_state_dict(saved)
    for _ in range(steps):
        opt.step(lambda: sum((p - i) ** 2 for i, p in enumerate(x)))
    return [p.data for p in x], opt


@pytest.mark.parametrize("selection", list(SELECTIONS))
@pytest.mark.parametrize("crossover", list(CROSSOVERS))
def test_every_variant_is_deterministic_and_never_loses_its_best(selection, crossover):
    first, opt = _run(15, selection=selection, crossover=crossover)
    again, _ = _run(15, selection=selection, crossover=crossover)
    assert first == again
    history = []
    x = [Value(1.5), Value(-0.5), Value(2.0)]
    opt = GeneticAlgorithm(x, popsize=12, seed=3, selection=selection, crossover=crossover)
    for _ in range(15):
        opt.step(lambda: sum((p - i) ** 2 for i, p in enumerate(x)))
        history.append(opt.state["best_loss"])
    assert history == sorted(history, reverse=True)    # elitism: the best never gets worse
    assert history[-1] < history[0]


def test_resume_from_json_is_bit_for_bit():
    whole, _ = _run(20)
    half, opt = _run(8)
    saved = json.loads(json.dumps(opt.state_dict()))
    x = [Value(v) for v in half]
    resumed = GeneticAlgorithm(x, popsize=7, seed=99)   # other settings: loading restores them
    resumed.load_state_dict(saved)
    for _ in range(12):
        resumed.step(lambda: sum((p - i) ** 2 for i, p in enumerate(x)))
    assert [p.data for p in x] == whole


def test_maximize_climbs_and_a_failing_closure_changes_nothing():
    x = [Value(0.0)]
    opt = GeneticAlgorithm(x, popsize=10, seed=0, maximize=True)
    for _ in range(20):
        opt.step(lambda: -(x[0] - 2.0) ** 2)
    assert abs(x[0].data - 2.0) < 0.1
    before = (x[0].data, json.dumps(opt.state_dict()))

    def broken():
        raise RuntimeError("the data went away")
    with pytest.raises(RuntimeError, match="went away"):
        opt.step(broken)
    assert (x[0].data, json.dumps(opt.state_dict())) == before
    with pytest.raises(FloatingPointError, match="nan for every one of the 10"):
        opt.step(lambda: math.nan)
    assert (x[0].data, json.dumps(opt.state_dict())) == before


@pytest.mark.parametrize("kwargs, message", [
    ({"popsize": 1}, r"GeneticAlgorithm: invalid popsize=1"),
    ({"elite": 50}, r"GeneticAlgorithm: invalid elite=50, it must be smaller than popsize=50"),
    ({"selection": "roulette"}, r"GeneticAlgorithm: .*selection.*roulette"),
    ({"crossover": "two_point"}, r"GeneticAlgorithm: .*crossover.*two_point"),
    ({"mutation_rate": 1.5}, r"GeneticAlgorithm: invalid mutation_rate=1.5, it must be in"),
    ({"mutation_sigma": -0.1}, r"GeneticAlgorithm: invalid mutation_sigma=-0.1"),
    ({"seed": "x"}, r"GeneticAlgorithm: .*seed"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GeneticAlgorithm([Value(0.0)], **kwargs)


def test_step_needs_a_closure_and_a_saved_population_must_fit():
    opt = GeneticAlgorithm([Value(0.0)], popsize=4, seed=0)
    with pytest.raises(TypeError, match="GeneticAlgorithm.step\\(\\) needs a closure"):
        opt.step()
    opt.step(lambda: 1.0)
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="has 4 individuals, popsize is 6"):
        saved["hyperparams"]["popsize"] = 6
        GeneticAlgorithm([Value(0.0)], popsize=6).load_state_dict(saved)
