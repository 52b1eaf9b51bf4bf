"""Tests of nn.playground without a browser: the Session's numbers, its settings whitelist, and
the HTTP API (a real server on a free local port, spoken to with urllib).

The key property: a Session step is exactly one step of the ordinary training loop, so its
numbers equal a hand-written loop's bit for bit; the page only shows those numbers (the
browser tests in test_playground_browser.py check that part).
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import random
import shutil
import socket
import urllib.error
import urllib.request
from configparser import ConfigParser
from fnmatch import fnmatch
from pathlib import Path

import pytest

from autodiff import Value, no_grad
from nn import data, losses, optim, schedules
from nn.layers import MLP
from nn.playground import api as api_module
from nn.playground import session as session_module
from nn.playground import settings as settings_module
from nn.playground import Race
from nn.playground.export import SITE_ONLY
from nn.playground.frame import picture_boundary
from nn.playground.server import ASSETS, PlaygroundServer, main, show
from nn.playground.session import Diverged, Session
from nn.playground.settings import (
    OPTIMIZERS,
    SETTINGS,
    optimizer_settings,
    options,
    parse_settings,
    start_lr,
)

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "nn" / "playground" / "static"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed")


def manual_run(n=60, noise=0.1, seed=0, test_fraction=0.2, hidden=(8, 8), make_opt=None,
               steps=5, loss=losses.hinge, l2=0.0, matrix=False):
    """The plain training loop the Session promises to be, written out by hand (`matrix`: the
    optimizer takes the model's weight matrices, as Muon and Adafactor do)."""
    X, classes = data.make_moons(n, noise=noise, seed=seed)
    y = [2 * c - 1 for c in classes] if loss is not losses.bce_with_logits else classes
    n_train = n - round(n * test_fraction)
    X, y = X[:n_train], y[:n_train]
    model = MLP(2, [*hidden, 1], seed=seed)
    params = optim.matrices(model) if matrix else model.parameters()
    opt = (make_opt or (lambda p: optim.SGD(p, lr=0.1)))(params)

    def closure():
        opt.zero_grad()
        objective = loss([model(x) for x in X], y)
        if l2:
            objective = objective + losses.l2_penalty(model, l2)
        objective.backward()
        return objective

    for _ in range(steps):
        if "closure" in inspect.signature(opt.step).parameters:
            opt.step(closure)  # L-BFGS, CG, CMA-ES, ...: the optimizer evaluates as it needs
        else:
            closure()
            opt.step()
    # Schedule-Free: the model is evaluated at the averaged point x (eval()), then y put back
    trained = weights(model)
    if hasattr(opt, "eval"):
        opt.eval()
    with no_grad():
        train_loss = loss([model(x) for x in X], y).data
    if hasattr(opt, "train"):
        opt.train()
        for p, w in zip(model.parameters(), trained):
            p.data = w
    return model, train_loss


def weights(model):
    return [p.data for p in model.parameters()]


# ---- the Session is the ordinary loop ------------------------------------------------------------


def test_a_step_is_one_step_of_the_plain_loop_bit_for_bit():
    s = Session(n=60, hidden=[8, 8], lr=0.1, seed=0)
    model, _ = manual_run(steps=0)
    assert weights(s.model) == weights(model)
    s.step(5)
    model, train_loss = manual_run(steps=5)
    assert s.step_count == 5
    assert weights(s.model) == weights(model)
    assert s.train_loss == train_loss
    assert [h["step"] for h in s.history] == [0, 1, 2, 3, 4, 5]
    assert s.history[-1]["train_loss"] == s.train_loss
    assert s.train_loss < s.history[0]["train_loss"]


def test_l2_and_bce_enter_the_objective_as_written():
    s = Session(n=60, loss="bce", l2=0.01, lr=0.2, seed=0)
    s.step(4)
    model, train_loss = manual_run(loss=losses.bce_with_logits, l2=0.01, steps=4,
                                   make_opt=lambda p: optim.SGD(p, lr=0.2))
    assert weights(s.model) == weights(model)
    assert s.train_loss == train_loss  # the data loss, without the L2 term


def test_l1_adds_lambda_times_the_sum_of_absolute_weights():
    s = Session(n=60, hidden=[4], l1=0.05, l2=0.01, lr=0.2, seed=1)
    batch = list(range(len(s.X_train)))
    objective = s._objective(batch).data
    with no_grad():
        data_loss = losses.hinge([s.model(x) for x in s.X_train], s.y_train).data
    params = [p.data for p in s.model.parameters()]
    l2_term = 0.01 * sum(p * p for p in params)
    assert objective == pytest.approx(data_loss + l2_term + 0.05 * sum(abs(p) for p in params),
                                      rel=1e-12)
    # each step is SGD on that objective: the L1 gradient is lambda * sign(w) on every weight
    model = MLP(2, [4, 1], seed=1)
    opt = optim.SGD(model.parameters(), lr=0.2)
    for _ in range(3):
        opt.zero_grad()
        loss = losses.hinge([model(x) for x in s.X_train], s.y_train)
        loss = loss + (losses.l2_penalty(model, 0.01) + losses.l1_penalty(model, 0.05))
        loss.backward()
        opt.step()
    s.step(3)
    assert weights(s.model) == weights(model)
    assert s.train_loss == s.history[-1]["train_loss"]  # the data loss, without the penalties


@pytest.mark.parametrize("optimizer", ["sgd", "cmaes"])
def test_features_and_l1_compiled_are_the_eager_numbers_bit_for_bit(optimizer):
    settings = dict(n=60, hidden=[4], features=["x1", "x2sq", "sinx1"], l1=0.02, l2=0.01,
                    optimizer=optimizer, lr=0.2, seed=3)
    compiled, eager = Session(**settings), Session(**settings, compiled=False)
    compiled.step(3)
    eager.step(3)
    assert compiled.compile_note is None
    assert weights(compiled.model) == weights(eager.model)
    assert compiled.train_loss == eager.train_loss


def test_l1_penalty_gradient_is_lambda_times_sign():
    ws = [Value(2.0), Value(-0.5), Value(0.0)]
    penalty = losses.l1_penalty(ws, 0.3)
    assert penalty.data == pytest.approx(0.3 * 2.5)
    penalty.backward()
    assert [w.grad for w in ws] == [0.3, -0.3, 0.0]
    with pytest.raises(ValueError, match="l1_penalty"):
        losses.l1_penalty(ws, -1.0)


def test_input_features_are_what_the_network_sees():
    s = Session(n=60, hidden=[3], features=["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1",
                                             "sinx2"], seed=2)
    assert len(s.model.layers[0].neurons[0].w) == 7
    for x, (a, b) in zip(s.X_train, s.points_train):
        assert x == [a, b, a * a, b * b, a * b, math.sin(a), math.sin(b)]
    only = Session(n=60, hidden=[3], features=["x1sq"], seed=2)
    assert only.X_train == [[a * a] for a, _ in only.points_train]
    # the default is the point itself: the same numbers as before features existed
    plain = Session(n=60, hidden=[3], seed=2)
    assert plain.X_train == plain.points_train
    # circles are one neuron's work with x1^2 and x2^2 (the lesson of TensorFlow Playground)
    circle = Session(dataset="circles", n=100, hidden=[], features=["x1sq", "x2sq"],
                     optimizer="adam", lr=0.1, seed=0)
    circle.step(60)
    assert circle.accuracy > 0.9
    frame = circle.frame(grid=8)
    assert [i["name"] for i in frame["network"]["inputs"]] == ["x1sq", "x2sq"]
    assert frame["network"]["inputs"][0]["label"] == "x1²"
    assert frame["points"]["train"][0][:2] == circle.points_train[0]


def made_as_the_session_does(cls, params, lr, seed):
    """An optimizer with the session's lr (when it has one) and seed (when it takes one)."""
    wants = inspect.signature(cls.__init__).parameters
    return cls(params, **{k: v for k, v in (("lr", lr), ("seed", seed)) if k in wants})


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_of_nn_optim_trains_exactly_as_by_hand(name):
    cls = OPTIMIZERS[name].cls
    s = Session(n=40, hidden=[4], optimizer=name, lr=0.05, seed=1)
    s.step(3)
    model, train_loss = manual_run(n=40, hidden=[4], seed=1, steps=3,
                                   make_opt=lambda p: made_as_the_session_does(cls, p, 0.05, 1),
                                   matrix=issubclass(cls, optim.MatrixOptimizer))
    assert type(s.optimizer) is cls
    assert weights(s.model) == weights(model)
    assert s.train_loss == train_loss


@pytest.mark.parametrize("name", ["sgd_schedule_free", "adamw_schedule_free"])
def test_schedule_free_is_evaluated_and_drawn_at_the_averaged_point(name):
    s = Session(n=40, hidden=[4], optimizer=name, lr=0.05, seed=1)
    s.step(4)
    y = weights(s.model)  # the training point, where the gradients are taken
    s.optimizer.eval()
    x = weights(s.model)  # the averaged point
    with no_grad():
        loss_at_x = s.loss_fn([s.model(p) for p in s.X_train], s.y_train).data
    boundary_at_x = picture_boundary(s.model, s.extent, 12)
    s.optimizer.train()
    for p, w in zip(s.model.parameters(), y):
        p.data = w
    assert x != y
    assert s.train_loss == pytest.approx(loss_at_x, rel=1e-12)
    assert s.history[-1]["train_loss"] == s.train_loss
    frame = s.frame(grid=12)
    assert frame["boundary"] == boundary_at_x
    assert weights(s.model) == y  # evaluating and drawing put y back, to the last bit
    assert s.optimizer.train_mode
    # and the race draws its run at x too
    race = Race([{"optimizer": name, "lr": 0.05}], n=40, hidden=[4], seed=1)
    race.step(4)
    assert race.frame(grid=12)["runs"][0]["boundary"] == boundary_at_x


def test_the_optimizers_are_nn_optims_registry():
    assert OPTIMIZERS is optim.registry.OPTIMIZERS
    assert set(OPTIMIZERS) >= {"sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs",
                               "conjugate_gradient", "cmaes", "evolution_strategy"}
    assert all(issubclass(e.cls, optim.Optimizer) for e in OPTIMIZERS.values())
    assert tuple(SETTINGS["optimizer"].choices) == tuple(OPTIMIZERS)
    # every optimizer class nn.optim exports that needs nothing but parameters is registered
    registered = {e.cls for e in OPTIMIZERS.values()}
    for name in optim.__all__:
        cls = getattr(optim, name)
        if isinstance(cls, type) and issubclass(cls, optim.Optimizer) and cls not in (
                optim.Optimizer, optim.ClosureOptimizer, optim.MatrixOptimizer):  # bases
            assert cls in registered, f"{name} is in nn.optim but not in its registry"
    sgd = optimizer_settings("sgd")
    assert list(sgd) == ["momentum", "dampening", "weight_decay", "nesterov"]
    assert optimizer_settings("adam")["betas"].default == [0.9, 0.999]
    assert optimizer_settings("lbfgs")["line_search_fn"].choices == ("none", "strong_wolfe")
    assert set(optimizer_settings("conjugate_gradient")["beta"].choices) == set(optim.CG_BETAS)
    assert "seed" not in optimizer_settings("cmaes")  # the session's seed is used


def test_word_hyper_parameters_are_whitelisted_choices():
    s = Session(n=40, hidden=[3], optimizer="lbfgs", line_search_fn="strong_wolfe", max_iter=2)
    assert s.optimizer.line_search_fn == "strong_wolfe"
    s.update(line_search_fn="none")
    assert s.optimizer.line_search_fn is None and s.settings["line_search_fn"] == "none"
    s.update(optimizer="conjugate_gradient", beta="FR")
    assert s.optimizer.beta == "FR"
    with pytest.raises(ValueError, match="beta: unknown choice 'os.system'"):
        parse_settings({"optimizer": "conjugate_gradient", "beta": "os.system"})


def test_optimizer_hyper_parameters_reach_the_optimizer():
    s = Session(n=40, optimizer="sgd", momentum=0.9, nesterov=True, seed=2)
    assert (s.optimizer.momentum, s.optimizer.nesterov) == (0.9, True)
    s = Session(n=40, optimizer="adam", betas=(0.8, 0.99), amsgrad=True)
    assert s.optimizer.betas == (0.8, 0.99) and s.optimizer.amsgrad


def test_an_optimizer_that_needs_a_closure_gets_one(monkeypatch):
    """L-BFGS-style optimizers (step(closure)) are driven through a closure that recomputes the
    loss; here one that evaluates twice and keeps the better of two step sizes."""
    calls = []

    class TwoTrials(optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, lr)

        def step(self, closure=None):  # as torch.optim.LBFGS spells it
            start = [p.data for p in self.params]
            loss = closure()
            calls.append(loss.data)
            grads = [p.grad for p in self.params]
            best = None
            for scale in (1.0, 0.5):
                for p, x, g in zip(self.params, start, grads):
                    p.data = x - scale * self.lr * g
                trial = closure().data
                calls.append(trial)
                if best is None or trial < best[0]:
                    best = (trial, scale)
            for p, x, g in zip(self.params, start, grads):
                p.data = x - best[1] * self.lr * g
            return loss

    monkeypatch.setitem(OPTIMIZERS, "twotrials", optim.registry.Entry("twotrials", TwoTrials))
    s = Session(n=40, hidden=[4], optimizer="twotrials", lr=0.5, seed=0)
    first = s.train_loss
    s.step(3)
    assert len(calls) == 9 and s.step_count == 3
    assert s.last_step_loss == calls[-3]  # the loss the closure gave before the update
    assert s.train_loss < first


def test_an_optimizer_without_lr_gets_the_sessions_seed(monkeypatch):
    """A random search (CMA-ES style): no learning rate, a step size and a seed of its own."""

    class RandomSearch(optim.Optimizer):
        def __init__(self, params, sigma=0.1, tries=4, seed=None):
            self.params, self.state, self.initial_lr = list(params), {}, None
            self.sigma, self.tries, self.seed = sigma, tries, seed
            self.rng = random.Random(seed)

        def step(self, closure=None):
            start = [p.data for p in self.params]
            with no_grad():
                best = closure().data
                for _ in range(self.tries):
                    trial = [x + self.rng.gauss(0.0, self.sigma) for x in start]
                    for p, x in zip(self.params, trial):
                        p.data = x
                    loss = closure().data
                    if loss < best:
                        best, start = loss, trial
            for p, x in zip(self.params, start):
                p.data = x
            return best

    monkeypatch.setitem(OPTIMIZERS, "randomsearch",
                        optim.registry.Entry("randomsearch", RandomSearch))
    assert list(optimizer_settings("randomsearch")) == ["sigma", "tries"]
    assert options()["optimizers"]["randomsearch"]["lr"] is False
    a = Session(n=40, hidden=[3], optimizer="randomsearch", sigma=0.2, seed=4)
    b = Session(n=40, hidden=[3], optimizer="randomsearch", sigma=0.2, seed=4)
    assert a.optimizer.seed == 4
    a.step(3)
    b.step(3)
    assert a.history == b.history and a.history[-1]["lr"] is None
    assert a.train_loss <= a.history[0]["train_loss"]
    # no learning rate, so no schedule: the rule turns it off and says so
    s = Session(optimizer="randomsearch", schedule="cosine")
    assert s.settings["schedule"] == "none"
    assert s.adjusted[0]["setting"] == "schedule"
    assert "RandomSearch has no learning rate" in s.adjusted[0]["message"]
    with pytest.raises(ValueError, match="tries must be between 0 and 1000"):
        Session(optimizer="randomsearch", tries=10**6)  # a step must end


def test_batches_are_seeded_and_cover_the_training_set():
    a = Session(n=50, batch_size=8, seed=3)
    b = Session(n=50, batch_size=8, seed=3)
    a.step(6)
    b.step(6)
    assert a.history == b.history
    c = Session(n=50, batch_size=8, seed=4)
    c.step(6)
    assert c.history != a.history
    # one epoch: every training point once before any repeats
    s = Session(n=50, batch_size=10, seed=0)
    seen = []
    for _ in range(4):
        s.step()
        seen.append(s.last_batch)
    assert all(len(b) == 10 for b in seen)
    assert sorted(i for b in seen for i in b) == list(range(40))


@pytest.mark.parametrize("kind, cls, extra", [
    ("step", schedules.StepLR, {"step_size": 2, "gamma": 0.5}),
    ("exponential", schedules.ExponentialLR, {"gamma": 0.5}),
    ("cosine", schedules.CosineAnnealingLR, {"T_max": 2}),
    ("linear", schedules.LinearLR, {"start_factor": 1.0, "end_factor": 0.5, "total_iters": 2}),
])
def test_schedules_set_the_lr_as_nn_schedules_do(kind, cls, extra):
    s = Session(n=30, hidden=[2], lr=0.2, schedule=kind, decay_steps=2, gamma=0.5)
    s.step(4)
    opt = optim.SGD(MLP(2, [1]).parameters(), lr=0.2)
    sched = cls(opt, **extra)
    expected = [opt.lr]
    for _ in range(4):
        sched.step()
        expected.append(opt.lr)
    assert [h["lr"] for h in s.history] == expected


@pytest.mark.parametrize("dataset", sorted(data.DATASETS))
def test_every_dataset_trains(dataset):
    classes = settings_module.dataset_classes(dataset)
    loss = "hinge" if classes == 2 else "cross_entropy"
    s = Session(dataset=dataset, n=60, hidden=[6], loss=loss, lr=0.1, seed=0)
    s.step(2)
    assert len(s.X_train) == 48 and len(s.X_test) == 12
    assert math.isfinite(s.train_loss) and math.isfinite(s.test_loss)
    assert s.model.nouts[-1] == (1 if classes == 2 else classes)
    assert 0 <= s.accuracy <= 1 and 0 <= s.test_accuracy <= 1


def test_cross_entropy_on_two_classes_gives_two_outputs():
    s = Session(n=40, loss="cross_entropy", hidden=[4])
    assert s.model.nouts == [4, 2]
    s.step()
    assert s.frame()["boundary"]["kind"] == "classes"


# ---- changing settings ---------------------------------------------------------------------------


def test_changing_the_optimizer_and_lr_mid_run_keeps_the_weights():
    s = Session(n=40, hidden=[4], lr=0.1, seed=5)
    s.step(3)
    assert s.update(optimizer="adam") is False
    assert s.update(lr=0.01) is False
    s.step(2)
    assert s.step_count == 5 and type(s.optimizer) is optim.Adam and s.optimizer.lr == 0.01
    # by hand: 3 SGD steps, then a fresh Adam at lr 0.01 on the same weights
    model, _ = manual_run(n=40, hidden=[4], seed=5, steps=3)
    X, classes = data.make_moons(40, noise=0.1, seed=5)
    X, y = X[:32], [2 * c - 1 for c in classes[:32]]
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        losses.hinge([model(x) for x in X], y).backward()
        opt.step()
    assert weights(s.model) == weights(model)


def test_model_and_data_changes_start_a_fresh_run():
    s = Session(n=40, hidden=[4], seed=0)
    s.step(2)
    run = s.run
    assert s.update(hidden=[3, 3]) is True
    assert s.step_count == 0 and s.run == run + 1 and s.model.nouts == [3, 3, 1]
    assert s.update(dataset="circles") is True
    assert s.settings["noise"] == settings_module.dataset_noise("circles")
    assert s.update() is False


def test_a_bad_update_changes_nothing():
    s = Session(n=40, hidden=[4])
    s.step(2)
    before = (dict(s.settings), weights(s.model), s.step_count)
    with pytest.raises(ValueError, match="lr"):
        s.update(lr=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        s.update(momentum=-0.5)
    assert (dict(s.settings), weights(s.model), s.step_count) == before


def test_switching_optimizer_drops_the_old_ones_hyper_parameters():
    s = Session(n=40, optimizer="sgd", momentum=0.9)
    s.update(optimizer="adam")
    assert "momentum" not in s.settings and s.settings["betas"] == [0.9, 0.999]


@pytest.mark.parametrize("kwargs, error, words", [
    ({"dataset": "mnist"}, ValueError, "dataset"),
    ({"n": 0}, ValueError, "n must be between"),
    ({"n": 10**6}, ValueError, "n must be between"),
    ({"n": 2.5}, TypeError, "n must be a whole number"),
    ({"lr": float("nan")}, ValueError, "lr must be a finite"),
    ({"lr": "0.1"}, TypeError, "lr must be a number"),
    ({"hidden": [8, 0]}, ValueError, "hidden must be between"),
    ({"hidden": [8] * 7}, ValueError, "at most 6 hidden layers"),
    ({"hidden": "8,8"}, TypeError, "hidden must be a list"),
    ({"activation": "gelu"}, ValueError, "activation"),
    ({"optimizer": "lbfgs2"}, ValueError, "optimizer"),
    ({"optimizer": "adam", "momentum": 0.9}, ValueError, "unknown setting 'momentum'"),
    ({"momentum": -1.0}, ValueError, "momentum"),
    ({"nesterov": True}, ValueError, "nesterov"),
    ({"test_fraction": 0.95}, ValueError, "test_fraction"),
    ({"n": 4, "test_fraction": 0.9}, ValueError, "fewer than 2 training points"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"wobble": 1}, ValueError, "unknown setting 'wobble'"),
])
def test_bad_settings_are_refused_by_name(kwargs, error, words):
    with pytest.raises(error, match=words):
        Session(**kwargs)


# ---- the settings' rules, decided in Python ------------------------------------------------------


def test_a_three_class_dataset_takes_cross_entropy_and_says_so():
    s = Session(n=60, dataset="spirals", loss="hinge", hidden=[3])
    assert s.settings["loss"] == "cross_entropy" and s.model.nouts == [3, 3]
    assert [(a["setting"], a["was"], a["now"]) for a in s.adjusted] == [
        ("loss", "hinge", "cross_entropy")]
    assert "spirals has 3 classes" in s.adjusted[0]["message"]
    # the same rule when the dataset changes later, as the page's dropdown does it
    s = Session(n=60, hidden=[3])
    assert s.adjusted == [] and s.settings["loss"] == "hinge"
    assert s.update(dataset="blobs") is True
    assert s.settings["loss"] == "cross_entropy"
    assert [a["setting"] for a in s.adjusted] == ["loss"]


def test_an_optimizer_without_lr_turns_the_schedule_off_and_greys_it():
    s = Session(n=40, hidden=[3], schedule="cosine")
    s.update(optimizer="cmaes")
    assert s.settings["schedule"] == "none" and [a["setting"] for a in s.adjusted] == ["schedule"]
    assert set(s.frame()["inactive"]) == {"lr", "schedule", "decay_steps", "gamma"}
    s.update(optimizer="sgd", schedule="exponential")
    assert set(s.frame()["inactive"]) == {"decay_steps"}


@pytest.mark.parametrize("old, name, implied", [
    ("cg", "conjugate_gradient", {}), ("conjugategradient", "conjugate_gradient", {}),
    ("es", "evolution_strategy", {}), ("evolutionstrategy", "evolution_strategy", {}),
    ("momentum", "sgd", {"momentum": 0.9})])
def test_old_optimizer_names_still_work(old, name, implied):
    settings = parse_settings({"optimizer": old, "n": "40", "hidden": "3"})
    s = Session(**settings)
    assert s.settings["optimizer"] == name and type(s.optimizer) is OPTIMIZERS[name].cls
    assert all(s.settings[k] == v for k, v in implied.items())
    assert s.adjusted[0]["setting"] == "optimizer" and repr(old) in s.adjusted[0]["message"]
    s.step()
    if not implied:  # the old name of the optimizer running now changes nothing
        s.update(lr=0.05)
        assert s.update(optimizer=old) is False and s.step_count == 1
        assert s.settings["lr"] == 0.05


def test_a_link_with_a_bad_value_drops_only_that_value():
    problems = []
    given = parse_settings({"lr": "abc", "hidden": "4", "optimizer": "adam", "betas": "1,2,3",
                            "wobble": "1"}, problems=problems)
    assert given == {"hidden": [4], "optimizer": "adam"}
    assert [p["setting"] for p in problems] == ["lr", "betas", "wobble"]
    assert "lr must be a number, got 'abc'" in problems[0]["message"]
    settings, changes = settings_module.resolve_settings(
        {"momentum": -1.0, "optimizer": "sgd", "seed": 3}, problems=[])
    assert settings["momentum"] == 0.0 and settings["seed"] == 3
    assert [c["setting"] for c in changes] == ["momentum"]


def test_a_diverging_step_raises_and_updates_nothing():
    s = Session(n=40, hidden=[8, 8], activation="linear", loss="mse", lr=50.0, seed=0)
    for _ in range(60):
        before = weights(s.model), s.step_count
        try:
            s.step()
        except Diverged as error:
            assert "diverged" in str(error) and "lr=50" in str(error)
            assert (weights(s.model), s.step_count) == before
            frame = s.frame(grid=4)
            assert frame["diverged"] == str(error)  # every panel of the page can say so
            break
    else:
        pytest.fail("lr=50 with mse did not diverge in 60 steps")
    assert Session(n=40, hidden=[2]).frame(grid=4)["diverged"] is None


def test_a_new_optimizer_starts_at_its_own_lr_and_leaves_a_mark():
    s = Session(n=40, hidden=[4], lr=0.3, seed=5)
    s.step(2)
    s.update(optimizer="adam")
    assert s.settings["lr"] == start_lr("adam") and s.optimizer.lr == start_lr("adam")
    s.step(1)
    s.update(lr=0.02)
    s.update(optimizer="rmsprop", lr=0.005)  # an lr given with it is kept
    assert s.settings["lr"] == 0.005
    s.update(optimizer="cmaes")  # no learning rate: its mark names only the optimizer
    assert start_lr("adam") == OPTIMIZERS["adam"].lr  # the registry's starting lr
    assert s.marks == [{"step": 2, "text": f"adam lr {start_lr('adam'):g}"},
                       {"step": 3, "text": "lr 0.02"},
                       {"step": 3, "text": "rmsprop lr 0.005"}, {"step": 3, "text": "cmaes"}]
    assert s.frame(grid=4)["marks"] == s.marks
    s.reset()
    assert s.marks == []


# ---- settings as URL text ------------------------------------------------------------------------


def url_text(value):
    if value is None:
        return "full"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_settings_round_trip_through_url_text():
    s = Session(dataset="xor", n=80, hidden=[5, 3], activation="tanh", init="fan_in",
                loss="bce", optimizer="adam", lr=0.02, betas=(0.8, 0.95), amsgrad=True,
                schedule="cosine", decay_steps=50, batch_size=16, l2=1e-4, l1=1e-3, seed=7,
                features=["sinx2", "x1", "x1x2"])
    text = {k: url_text(v) for k, v in s.settings.items()}
    again = Session(**parse_settings(text))
    assert again.settings == s.settings
    assert s.settings["features"] == ["x1", "x1x2", "sinx2"]  # one order: the table's
    assert list(s.settings)[:7] == ["dataset", "n", "noise", "test_fraction", "seed", "features",
                                    "hidden"]


@pytest.mark.parametrize("query, words", [
    ({"hidden": "8,x"}, "hidden must be a whole number"),
    ({"lr": "abc"}, "lr must be a number"),
    ({"lr": "inf"}, "lr must be a finite"),
    ({"amsgrad": "yes", "optimizer": "adam"}, "amsgrad must be true or false"),
    ({"betas": "0.9", "optimizer": "adam"}, "betas must be 2 numbers"),
    ({"betas": "0.9,0.99"}, "belongs to another optimizer"),
    ({"__class__": "x"}, "unknown setting"),
    ({"n": "1" + "0" * 400}, "n must be between"),
    ({"seed": "9" * 5000}, "seed must be a whole number"),
    ({"features": "x1,x3"}, "features: unknown feature 'x3'"),
    ({"features": ""}, "at least one input feature"),
    ({"l1": "-1"}, "l1 must be between"),
])
def test_bad_url_text_is_refused_by_name(query, words):
    with pytest.raises((ValueError, TypeError), match=words):
        parse_settings(query)


def test_the_settings_are_the_sessions_argument_names_and_defaults():
    params = inspect.signature(Session).parameters
    # `compiled` (keyword-only) chooses how the numbers are computed, not what they are
    named = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert params["compiled"].kind is params["compiled"].KEYWORD_ONLY
    assert [p.name for p in named] == list(SETTINGS)
    for p in named:
        default = list(p.default) if isinstance(p.default, tuple) else p.default
        assert SETTINGS[p.name].default == default, p.name


def test_options_describe_every_choice():
    opts = options()
    assert set(opts["optimizers"]) == set(OPTIMIZERS)
    assert set(opts["datasets"]) == set(data.DATASETS)
    assert opts["datasets"]["spirals"]["classes"] == 3
    assert [s["name"] for s in opts["settings"]] == list(SETTINGS)
    assert opts["aliases"]["cg"] == "conjugate_gradient" and opts["aliases"]["momentum"] == "sgd"
    json.dumps(opts, allow_nan=False)


# ---- what the page draws -------------------------------------------------------------------------


def test_frame_is_json_and_its_pictures_are_the_models_outputs():
    s = Session(n=60, hidden=[3], activation="tanh", seed=0)
    s.step(2)
    frame = s.frame(grid=8)
    json.dumps(frame, allow_nan=False)
    assert frame["train_loss_repr"] == repr(s.train_loss) and frame["step_count"] == 2
    assert len(frame["history"]) == 3 and "points" in frame
    # the boundary raster: tanh of the model's score at each cell centre, one byte per cell
    x0, x1, y0, y1 = frame["points"]["extent"]
    values = base64.b64decode(frame["boundary"]["values"])
    assert len(values) == 64
    with no_grad():
        for j, i in [(0, 0), (3, 5), (7, 7)]:
            x, y = x0 + (x1 - x0) * (i + 0.5) / 8, y1 - (y1 - y0) * (j + 0.5) / 8
            expected = round(127.5 + 127.5 * math.tanh(s.model([x, y]).data))
            assert values[j * 8 + i] == expected
    # each neuron's picture (half resolution), scaled by its largest |output|
    neuron = frame["network"]["layers"][0]["neurons"][1]
    assert neuron["name"] == "layers.0.neurons.1"
    pic = base64.b64decode(neuron["picture"])
    assert len(pic) == 16
    with no_grad():
        out = s.model.layers[0].neurons[1]([x0 + (x1 - x0) * 0.5 / 8, y1 - (y1 - y0) * 0.5 / 8])
    assert pic[0] == round(127.5 + 127.5 * out.data / neuron["scale"])
    assert neuron["w"] == [w.data for w in s.model.layers[0].neurons[1].w]
    assert neuron["gw"] == [w.grad for w in s.model.layers[0].neurons[1].w]


def test_an_activation_added_to_the_table_is_drawn_as_the_model_computes_it(monkeypatch):
    # The pictures come from the model's own float evaluation, so a new entry of the one
    # activation table is drawn right (a copy of the forward pass once drew softplus as linear).
    import autodiff
    import nn.layers

    monkeypatch.setitem(nn.layers.ACTIVATIONS, "softplus",
                        nn.layers.Activation(autodiff.softplus, None, "Softplus"))
    s = Session(n=40, hidden=[3], activation="softplus", seed=0)
    s.step(2)
    frame = s.frame(grid=4)
    x0, x1, y0, y1 = frame["points"]["extent"]
    centres = [(x0 + (x1 - x0) * (i + 0.5) / 4, y1 - (y1 - y0) * (j + 0.5) / 4)
               for j in range(4) for i in range(4)]
    values = base64.b64decode(frame["boundary"]["values"])
    with no_grad():
        assert list(values) == [round(127.5 + 127.5 * math.tanh(s.model(list(c)).data))
                                for c in centres]
        neuron = s.model.layers[0].neurons[2]
        outs = [neuron(list(centres[k])).data for k in (0, 2, 8, 10)]  # the half-resolution cells
    drawn = frame["network"]["layers"][0]["neurons"][2]
    assert all(v > 0 for v in outs)  # softplus is positive: drawn as linear, some would not be
    assert list(base64.b64decode(drawn["picture"])) == [
        round(127.5 + 127.5 * v / drawn["scale"]) for v in outs]


def test_three_class_output_neurons_carry_their_class_probability():
    s = Session(dataset="spirals", loss="cross_entropy", n=60, hidden=[4], seed=1)
    s.step(3)
    frame = s.frame(grid=4)
    outputs = frame["network"]["layers"][-1]["neurons"]
    assert len(outputs) == 3 and "probability" not in frame["network"]["layers"][0]["neurons"][0]
    x0, x1, y0, y1 = frame["points"]["extent"]
    x, y = x0 + (x1 - x0) * 0.5 / 4, y1 - (y1 - y0) * 0.5 / 4  # the first thumbnail cell
    with no_grad():
        scores = [v.data for v in s.model([x, y])]
    exps = [math.exp(v - max(scores)) for v in scores]
    for k, neuron in enumerate(outputs):
        first = base64.b64decode(neuron["probability"])[0]
        assert first == round(255 * exps[k] / sum(exps))
    assert "probability" not in Session(n=40, hidden=[2]).frame(grid=4)["network"]["layers"][-1][
        "neurons"][0]


def test_frame_sends_only_new_history_in_the_same_run():
    s = Session(n=40, hidden=[2])
    first = s.frame()
    s.step(3)
    more = s.frame(since=len(first["history"]), run=first["run"])
    assert "points" not in more and more["history_start"] == 1
    assert [h["step"] for h in more["history"]] == [1, 2, 3]
    s.update(seed=9)
    fresh = s.frame(since=4, run=first["run"])
    assert "points" in fresh and fresh["history_start"] == 0 and fresh["step_count"] == 0


def test_dead_relus_are_marked_as_grad_flow_stats_finds_them():
    s = Session(n=60, hidden=[8, 8], lr=0.5, seed=0)
    s.step(10)
    frame = s.frame(grid=4)
    from nn.plots import grad_flow_stats

    dead = {n for st in grad_flow_stats(s.model, s.X_train) for n in st["dead"]}
    marked = {n["name"] for layer in frame["network"]["layers"] for n in layer["neurons"]
              if n["dead"]}
    assert marked == dead
    assert [g["name"] for g in frame["grad_flow"]] == ["layers.0", "layers.1", "layers.2"]


@needs_dot
def test_a_point_with_zero_loss_says_why_its_gradients_are_zero():
    s = Session(n=60, hidden=[4], seed=0)
    s.step(30)
    zero = next(i for i in range(len(s.X_train)) if s.point_loss(i).data == 0.0)
    graph = s.neuron_graph("layers.0.neurons.0", zero)
    assert graph["loss"] == 0.0 and "y*s" in graph["zero_why"] and ">= 1" in graph["zero_why"]
    assert s.point_loss(graph["worst"]).data > 0  # the page offers this one instead
    assert s.neuron_graph("layers.0.neurons.0", graph["worst"])["zero_why"] is None


@needs_dot
def test_neuron_graph_draws_one_point_and_keeps_the_training_gradients():
    s = Session(n=60, hidden=[8, 8], seed=0)
    s.step(3)
    grads = [p.grad for p in s.model.parameters()]
    graph = s.neuron_graph("layers.1.neurons.4", 5)
    assert graph["svg"].startswith("<svg") and ">layers.1.neurons.4<" in graph["svg"]
    assert graph["point"] == 5 and "training point 5" in graph["title"]
    assert [p.grad for p in s.model.parameters()] == grads
    assert s.neuron_graph("layers.0.neurons.0")["point"] == s.worst_point()
    assert graph["worst"] == s.worst_point()
    assert graph["loss"] == s.point_loss(5).data and graph["loss_repr"] == repr(graph["loss"])
    with pytest.raises(ValueError, match="no neuron 'layers.9.neurons.0'"):
        s.neuron_graph("layers.9.neurons.0", 0)
    with pytest.raises(ValueError, match="point"):
        s.neuron_graph("layers.0.neurons.0", 60)


@needs_dot
def test_neuron_graph_draws_that_points_gradients_not_the_training_ones_added(monkeypatch):
    # backward() adds onto a leaf's .grad: the drawing must start from zero, or a neuron whose
    # ReLU is off for the point shows the batch gradient of the last training step.
    import autodiff

    s = Session(n=60, hidden=[8, 8], seed=0)
    s.step(3)
    assert any(p.grad != 0 for p in s.model.parameters())
    params = s.model.parameters()
    expected = autodiff.gradients(s.point_loss(5), params)
    drawn = []
    real = autodiff.to_dot

    def spy(loss, **kwargs):
        drawn.append([p.grad for p in params])
        return real(loss, **kwargs)

    monkeypatch.setattr(autodiff, "to_dot", spy)
    s.neuron_graph("layers.0.neurons.0", 5)
    assert drawn == [list(expected)]


@needs_dot
def test_step_through_page_of_one_point():
    s = Session(n=40, hidden=[3], seed=0)
    page = s.step_through(33)  # a test point
    assert page.startswith("<!") and "<svg" in page and "test point 1" in page
    big = Session(n=20, hidden=[16, 16, 16])
    with pytest.raises(ValueError, match="too many to step through"):
        big.step_through(0)


# ---- the HTTP API --------------------------------------------------------------------------------


@pytest.fixture
def server():
    srv = PlaygroundServer("127.0.0.1", 0, max_sessions=2)
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, method, path, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    request = urllib.request.Request(f"{server.url}{path}{'?' + query if query else ''}",
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            status, kind = response.status, response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        body, status, kind = error.read(), error.code, error.headers["Content-Type"]
    return status, (json.loads(body) if kind == "application/json" else body.decode())


def test_api_steps_a_session_to_the_sessions_numbers(server):
    status, made = call(server, "POST", "/api/sessions", n=60, hidden="4,4", lr="0.2", seed=3)
    assert status == 201
    sid = made["id"]
    status, frame = call(server, "POST", f"/api/sessions/{sid}/step", count=5,
                         run=made["frame"]["run"], since=1)
    assert status == 200 and frame["step_count"] == 5 and frame["stopped"] is None
    s = Session(n=60, hidden=[4, 4], lr=0.2, seed=3)
    s.step(5)
    assert frame["train_loss_repr"] == repr(s.train_loss)
    assert frame["train_loss"] == s.train_loss and frame["test_loss"] == s.test_loss
    assert [h["step"] for h in frame["history"]] == [1, 2, 3, 4, 5]
    status, frame = call(server, "POST", f"/api/sessions/{sid}/step", budget_ms=50)
    assert status == 200 and frame["step_count"] >= 6


def test_api_settings_live_and_rebuild(server):
    _, made = call(server, "POST", "/api/sessions", n=40, hidden="3")
    sid = made["id"]
    call(server, "POST", f"/api/sessions/{sid}/step", count=2)
    status, frame = call(server, "POST", f"/api/sessions/{sid}/settings", optimizer="adam")
    assert status == 200 and frame["rebuilt"] is False and frame["step_count"] == 2
    status, frame = call(server, "POST", f"/api/sessions/{sid}/settings", betas="0.8,0.9")
    assert status == 200 and frame["settings"]["betas"] == [0.8, 0.9]
    status, frame = call(server, "POST", f"/api/sessions/{sid}/settings", hidden="2,2")
    assert frame["rebuilt"] is True and frame["step_count"] == 0
    status, frame = call(server, "POST", f"/api/sessions/{sid}/reset")
    assert status == 200 and frame["step_count"] == 0


@pytest.mark.parametrize("params, words", [
    ({"lr": "abc"}, "lr must be a number"),
    ({"hidden": "8,99"}, "hidden must be between 1 and 16"),
    ({"optimizer": "__import__"}, "optimizer: unknown choice"),
    ({"evil": "1"}, "unknown setting 'evil'"),
])
def test_api_bad_settings_get_400_naming_them(server, params, words):
    status, body = call(server, "POST", "/api/sessions", **params)
    assert status == 400 and words in body["error"]
    assert len(server.registry) == 0  # nothing was kept
    _, made = call(server, "POST", "/api/sessions")
    status, body = call(server, "POST", f"/api/sessions/{made['id']}/settings", **params)
    assert status == 400 and words in body["error"]
    status, body = call(server, "POST", f"/api/sessions/{made['id']}/step", count="x")
    assert status == 400 and "count" in body["error"]


def test_api_opens_a_link_dropping_only_its_bad_values(server):
    status, made = call(server, "POST", "/api/sessions", link="1", lr="abc", hidden="4",
                        dataset="spirals", loss="hinge", optimizer="cg")
    assert status == 201
    settings = made["frame"]["settings"]
    assert settings["hidden"] == [4] and settings["lr"] == SETTINGS["lr"].default
    assert settings["loss"] == "cross_entropy" and settings["optimizer"] == "conjugate_gradient"
    assert [c["setting"] for c in made["changes"]] == ["lr", "optimizer", "loss"]
    assert all(c["message"] for c in made["changes"])
    status, frame = call(server, "POST", f"/api/sessions/{made['id']}/settings", dataset="moons")
    assert status == 200 and frame["changes"] == [] and frame["settings"]["loss"] == "cross_entropy"
    call(server, "POST", f"/api/sessions/{made['id']}/close")


def test_api_caps_sessions_and_frees_idle_ones(server):
    ids = [call(server, "POST", "/api/sessions", n=20, hidden="2")[1]["id"] for _ in range(2)]
    status, body = call(server, "POST", "/api/sessions")
    assert status == 503 and "full" in body["error"] and "--max-sessions 2" in body["error"]
    call(server, "POST", f"/api/sessions/{ids[0]}/close")
    status, _ = call(server, "POST", "/api/sessions", n=20, hidden="2")
    assert status == 201
    server.registry.idle_seconds = 0.0
    server.registry.sweep()
    status, body = call(server, "GET", f"/api/sessions/{ids[1]}")
    assert status == 404 and "expired" in body["error"]


def test_api_serves_only_its_own_files(server):
    status, page = call(server, "GET", "/")
    assert status == 200 and 'data-testid="play"' in page
    for name in ASSETS:
        assert call(server, "GET", f"/static/{name}")[0] == 200
    for path in ["/static/session.py", "/static/..%2Fsession.py", "/static/../server.py",
                 "/etc/passwd", "/api/nothing"]:
        assert call(server, "GET", path)[0] == 404, path


@needs_dot
def test_api_graph_and_step_through(server):
    _, made = call(server, "POST", "/api/sessions", n=40, hidden="3")
    sid = made["id"]
    status, graph = call(server, "GET", f"/api/sessions/{sid}/graph",
                         neuron="layers.0.neurons.2", point=3)
    assert status == 200 and graph["svg"].startswith("<svg") and graph["point"] == 3
    status, body = call(server, "GET", f"/api/sessions/{sid}/graph", neuron="os.system", point=3)
    assert status == 400 and "no neuron" in body["error"]
    status, page = call(server, "GET", f"/api/sessions/{sid}/backprop", point=3)
    assert status == 200 and "<svg" in page
    _, big = call(server, "POST", "/api/sessions", n=20, hidden="16,16,16")
    status, page = call(server, "GET", f"/api/sessions/{big['id']}/backprop", point=0)
    assert status == 400 and page.startswith("<!doctype html>") and "too many" in page


def test_the_lab_checks_for_dot_through_the_sessions_public_check(monkeypatch):
    from nn.playground import lab
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(session_module.DotMissing, match="apt-get install graphviz"):
        session_module.need_dot()
    for page in (lab.lab, lab.step_through):
        with pytest.raises(session_module.DotMissing, match="Graphviz's dot"):
            page("x * y", "x=2, y=3")


def test_without_dot_looking_inside_says_what_to_install(server, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    s = Session(n=20, hidden=[2])
    with pytest.raises(session_module.DotMissing, match="apt-get install graphviz"):
        s.neuron_graph("layers.0.neurons.0", 0)
    with pytest.raises(session_module.DotMissing, match="Graphviz's dot"):
        s.step_through(0)
    _, made = call(server, "POST", "/api/sessions", n=20, hidden="2")
    status, body = call(server, "GET", f"/api/sessions/{made['id']}/graph",
                        neuron="layers.0.neurons.0", point=0)
    assert status == 503 and "Graphviz's dot" in body["error"]
    status, frame = call(server, "POST", f"/api/sessions/{made['id']}/step", count=2)
    assert status == 200 and frame["step_count"] == 2  # training needs no dot


def test_show_gives_a_page_for_the_same_session_without_blocking():
    s = Session(n=40, hidden=[3])
    view = show(s, height=500)
    assert "<iframe" in view._repr_html_() and 'height="500"' in view._repr_html_()
    assert show(s).url == view.url  # the same session, attached once
    with pytest.raises(TypeError, match="show.. needs an nn.playground.Session, got dict"):
        show({"n": 40})
    base, sid = view.url.split("/?session=")
    with urllib.request.urlopen(f"{base}/api/sessions/{sid}", timeout=30) as response:
        frame = json.loads(response.read())
    assert frame["step_count"] == 0
    s.step(2)
    with urllib.request.urlopen(f"{base}/api/sessions/{sid}", timeout=30) as response:
        assert json.loads(response.read())["step_count"] == 2


def test_main_says_when_the_port_is_taken(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--no-browser", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another --port" in err


def test_main_says_when_the_host_is_wrong(capsys):
    # a name that does not resolve is a mistake in --host, not in --port
    assert main(["--no-browser", "--host", "no-such-host.invalid", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot listen on no-such-host.invalid:0" in err and "check --host" in err
    assert "--port" not in err.split(";", 1)[1]


def test_every_page_asset_ships_as_package_data():
    config = ConfigParser()
    config.read(ROOT / "setup.cfg")
    globs = config["options.package_data"]["nn.playground"].split()
    shipped = {p.name for p in STATIC.iterdir()}
    # the server serves every file but the static site's worker and its client (--export)
    assert shipped == set(ASSETS) | set(SITE_ONLY)
    assert all(any(fnmatch(f"static/{name}", g) for g in globs) for name in shipped)
    scripts = config["options.entry_points"]["console_scripts"]
    assert "chainrule-playground = nn.playground.server:main" in scripts
    page = (STATIC / "index.html").read_text()
    # the page loads nothing from elsewhere: every src/href is one of its own files
    import re

    refs = [r for r in re.findall(r'(?:src|href)="([^"]+)"', page) if r != "lab.html"]  # a link
    assert refs and all(r.startswith("/static/") and r[8:] in ASSETS for r in refs), refs
    assert "http://" not in page and "https://" not in page


def test_idle_sessions_are_freed_even_when_nobody_new_arrives(server):
    _, made = call(server, "POST", "/api/sessions", n=20, hidden="2")
    pinned = Session(n=20, hidden=[2])
    pinned_id = server.registry.attach(pinned)
    server.registry.idle_seconds = 0.0
    call(server, "GET", "/api/options")  # swept less than a minute ago: nothing happens
    assert len(server.registry) == 2
    server.registry._swept -= 61
    call(server, "GET", "/api/options")
    assert call(server, "GET", f"/api/sessions/{made['id']}")[0] == 404
    assert call(server, "GET", f"/api/sessions/{pinned_id}")[0] == 200  # its owner holds it


@pytest.mark.parametrize("name, free", [("sgd", False), ("lbfgs", False), ("cmaes", True),
                                        ("evolution_strategy", True)])
def test_frame_says_when_the_optimizer_computes_no_gradients(name, free):
    # The page explains empty gradient views: a gradient-free method computed none, which is not
    # the same as a loss of 0 with no point inside the margin.
    s = Session(n=30, hidden=[3], optimizer=name, seed=0)
    assert s.frame()["gradient_free"] is False  # nothing ran yet
    s.step()
    assert s.frame()["gradient_free"] is free
    if free:
        assert all(p.grad == 0 for p in s.model.parameters())


@pytest.mark.parametrize("optimizer", ["lbfgs", "conjugate_gradient", "cmaes",
                                       "evolution_strategy"])
def test_a_step_past_its_time_limit_is_undone_and_named(optimizer):
    # One L-BFGS step with max_iter=1000 on 800 points of a 6x16 network takes about half an
    # hour, and a request for 100 of them held the session (and a server thread) for days.
    # A step that outlasts its time limit now stops, changes nothing, and says which settings
    # make it long.
    s = Session(n=40, hidden=[3], optimizer=optimizer, seed=1)
    weights = [p.data for p in s.model.parameters()]
    state = json.dumps(s.optimizer.state_dict())
    with pytest.raises(ValueError, match=rf"one {optimizer} step takes more than 0 s.*n=40"):
        s.step(1, time_limit=0.0)
    assert [p.data for p in s.model.parameters()] == weights
    assert json.dumps(s.optimizer.state_dict()) == state and s.step_count == 0
    s.step(2)  # without a limit it steps as before
    assert s.step_count == 2


def test_steps_stop_at_the_time_limit_between_steps():
    s = Session(n=40, hidden=[3], seed=1)
    s.step(5, time_limit=0.0)  # at least one step, then the limit
    assert s.step_count == 1
    s.step(3, time_limit=60.0)
    assert s.step_count == 4


def test_api_a_request_runs_no_longer_than_its_time_limit(server, monkeypatch):
    monkeypatch.setattr(api_module, "MAX_REQUEST_SECONDS", 0.0)
    _, made = call(server, "POST", "/api/sessions", n=40, hidden="3")
    status, frame = call(server, "POST", f"/api/sessions/{made['id']}/step", count=5)
    assert status == 200 and frame["step_count"] == 1
    assert "1 of 5 steps" in frame["stopped"]
    _, made = call(server, "POST", "/api/sessions", n=40, hidden="3", optimizer="lbfgs",
                   max_iter="1000")
    status, answer = call(server, "POST", f"/api/sessions/{made['id']}/step", count=1)
    assert status == 400 and "max_iter=1000" in answer["error"]
    status, answer = call(server, "POST", f"/api/sessions/{made['id']}/step", budget_ms=50)
    assert status == 400 and "max_iter=1000" in answer["error"]


def test_the_new_rules_take_their_settings_in_the_playground():
    s = Session(n=30, hidden=[3], optimizer="genetic_algorithm", selection="truncation",
                crossover="blend", popsize=10, seed=0)
    assert optimizer_settings("genetic_algorithm")["crossover"].choices == (
        "uniform", "one_point", "blend")
    s.step(2)
    assert (s.optimizer.selection, s.optimizer.crossover, s.optimizer.popsize) == \
        ("truncation", "blend", 10)
    assert s.optimizer.state["func_evals"] == 20
    s = Session(n=30, hidden=[3], optimizer="muon", adjust_lr_fn="match_rms_adamw", lr=0.02)
    s.step(2)
    assert s.optimizer.adjust_lr_fn == "match_rms_adamw"
    assert s.optimizer.shapes == [(3, 2), (3,), (1, 3), (1,)]   # the model's own matrices
    s = Session(n=30, hidden=[3], optimizer="rprop", etas=(0.4, 1.5), lr=0.01)
    s.step(2)
    assert s.optimizer.etas == (0.4, 1.5)
    with pytest.raises(ValueError, match="selection: unknown choice 'roulette'"):
        parse_settings({"optimizer": "genetic_algorithm", "selection": "roulette"})
