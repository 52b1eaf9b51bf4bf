"""Race and Surface (nn.playground.race, nn.playground.surface) and the test functions.

The key properties: a run of a race is the Session run alone, bit for bit, from the same initial
weights; the counters count what the optimizer really evaluated; a point of a surface path is
where the optimizer's own step put the two weights.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from autodiff import Value
from nn import testfunctions
from nn.optim import GeneticAlgorithm
from nn.playground import Race, Session, Surface
from nn.playground import race as race_module
from nn.playground.race import race_from_query
from nn.playground.runs import MAX_RUNS, parse_runs, runs_text
from nn.playground.server import PlaygroundServer

COMMON = {"n": 60, "hidden": [4], "seed": 3}
RUNS = [
    {"optimizer": "sgd", "lr": 0.1},
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    {"optimizer": "adam", "lr": 0.02},
    {"optimizer": "lbfgs", "max_iter": 2, "line_search_fn": "strong_wolfe"},
]


def weights(session):
    return [p.data for p in session.model.parameters()]


def alone(steps, **settings):
    s = Session(**settings)
    if steps:
        s.step(steps)
    return s


# ---- runs as text ------------------------------------------------------------------------------


def test_runs_text_round_trips_with_commas_inside_values():
    text = "sgd:lr=0.1:momentum=0.9,adam:lr=0.01:betas=0.8,0.99,cmaes:sigma0=0.3"
    runs = parse_runs(text)
    assert runs == [{"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
                    {"optimizer": "adam", "lr": 0.01, "betas": [0.8, 0.99]},
                    {"optimizer": "cmaes", "sigma0": 0.3}]
    assert parse_runs(runs_text(runs)) == runs


def test_old_optimizer_names_in_runs_are_their_registered_names():
    """Shared links keep working: an alias starts a run and implies its options."""
    runs = parse_runs("cg:max_iter=2,momentum,es:popsize=4")
    assert runs == [{"optimizer": "conjugate_gradient", "max_iter": 2},
                    {"optimizer": "sgd", "momentum": 0.9, "lr": 0.1},
                    {"optimizer": "evolution_strategy", "popsize": 4}]
    assert parse_runs("momentum:lr=0.3")[0]["lr"] == 0.3  # what the run says wins
    race = Race("sgd,cg:max_iter=2", **COMMON)
    race.update(0, optimizer="es", popsize=4)
    assert race.settings(0)["optimizer"] == "evolution_strategy"
    assert race.settings(0)["popsize"] == 4


@pytest.mark.parametrize("text, words", [
    ("sgd:lr=abc", "lr must be a number, got 'abc'"),
    ("newton:lr=0.1", "'newton' is not an optimizer"),
    ("sgd:betas=0.9,0.99", "betas"),
    ("sgd:lr=0.1:lr=0.2", "sets lr twice"),
    ("sgd:seed=4", "seed"),
    ("sgd:lr", "is not key=value"),
    ("", "at least one run"),
    ("sgd:lr=0.1,", "an empty run"),
    ("sgd,,adam", "an empty run"),
    (",".join(["sgd"] * (MAX_RUNS + 1)), f"at most {MAX_RUNS} runs"),
])
def test_bad_runs_text_names_the_run_and_the_value(text, words):
    with pytest.raises(ValueError, match="runs") as error:
        parse_runs(text)
    assert words in str(error.value)


# ---- the race ----------------------------------------------------------------------------------


def test_every_run_is_the_session_alone_bit_for_bit():
    race = Race(RUNS, **COMMON)
    start = weights(race.runs[0])
    assert all(weights(s) == start for s in race.runs)  # the same initial weights
    race.step(4)
    for run, session in zip(RUNS, race.runs):
        lone = alone(4, **COMMON, **run)
        assert weights(session) == weights(lone)
        assert session.train_loss == lone.train_loss
        assert session.history == lone.history


def test_runs_with_minibatches_see_the_same_batches():
    """Two runs with the same batch size and lr 0 for one of them: the batches come from the
    shared seed, so each run equals its Session alone, whatever the other runs do."""
    runs = [{"optimizer": "sgd", "lr": 0.1, "batch_size": 8},
            {"optimizer": "adam", "lr": 0.01, "batch_size": 8}]
    race = Race(runs, **COMMON)
    race.step(9)  # more than one epoch of 48 training points
    for run, session in zip(runs, race.runs):
        assert weights(session) == weights(alone(9, **COMMON, **run))
    assert race.runs[0]._order == race.runs[1]._order  # where each is in the same epoch


def test_the_counters_count_what_the_optimizers_evaluated():
    race = Race(["sgd:lr=0.1", "lbfgs:max_iter=3:line_search_fn=strong_wolfe",
                 "cmaes", "evolution_strategy:popsize=4"], **COMMON)
    race.step(3)
    sgd, lbfgs, cmaes, es = race.runs
    assert (sgd.evaluations, sgd.gradients) == (3, 3)
    assert lbfgs.evaluations == lbfgs.gradients == lbfgs.optimizer.state["func_evals"] > 3
    lam = cmaes.optimizer.popsize  # 4 + floor(3 ln 17) = 12 for the 17 weights of 2-4-1
    assert (cmaes.evaluations, cmaes.gradients) == (3 * lam, 0)
    assert (es.evaluations, es.gradients) == (12, 0)
    assert [h["evaluations"] for h in cmaes.history] == [0, lam, 2 * lam, 3 * lam]
    assert all(s.seconds > 0 for s in race.runs)
    steps, losses = race.history(2, by="evaluations")
    assert steps == [0, lam, 2 * lam, 3 * lam] and losses[-1] == cmaes.train_loss


def test_by_evaluations_keeps_the_runs_level():
    race = Race(["sgd:lr=0.1", "evolution_strategy:popsize=6"], **COMMON)
    race.step(12, by="evaluations")
    sgd, es = race.runs
    assert sgd.evaluations == 12 and es.evaluations == 12
    race.step(5, by="evaluations")  # the level is 12 + 5 = 17: the ES takes one more whole step
    assert sgd.evaluations == 17 and es.evaluations == 18
    race.step(1, by="evaluations")  # level 18: the ES is there already and waits
    assert sgd.evaluations == 18 and es.evaluations == 18
    with pytest.raises(ValueError, match="by must be one of steps, evaluations, seconds"):
        race.step(1, by="epochs")


def test_by_seconds_advances_every_run():
    race = Race(["sgd:lr=0.1", "adam:lr=0.01"], **COMMON)
    race.step(0.05, by="seconds")
    assert all(s.seconds >= 0.05 and s.step_count > 0 for s in race.runs)


def test_change_mid_race_is_marked_and_the_run_carries_on():
    race = Race(["sgd:lr=0.1", "sgd:lr=0.1"], **COMMON)
    race.step(3)
    race.update(1, optimizer="adam", lr=0.01)
    race.step(2)
    assert race.marks == [{"run": race.ids[1], "step": 3, "evaluations": 3,
                           "seconds": race.marks[0]["seconds"],
                           "changes": {"optimizer": "adam", "lr": 0.01}}]
    lone = alone(3, **COMMON, lr=0.1)
    lone.update(optimizer="adam", lr=0.01)
    lone.step(2)
    assert weights(race.runs[1]) == weights(lone)
    with pytest.raises(ValueError, match="'hidden' cannot change per run"):
        race.update(0, hidden=[3])


def test_add_and_remove_runs_keep_their_ids():
    race = Race(["sgd:lr=0.1", "adam:lr=0.01"], **COMMON)
    race.step(2)
    index = race.add({"optimizer": "rmsprop", "lr": 0.01})
    assert race.runs[index].step_count == 0
    race.step(1)  # the new run catches up first; the others wait
    assert [s.step_count for s in race.runs] == [2, 2, 1]
    race.remove(0)
    assert race.ids == [1, 2]
    race.add("sgd")
    race.add("sgd")
    with pytest.raises(ValueError, match=f"at most {MAX_RUNS} runs"):
        race.add("sgd")
    with pytest.raises(ValueError, match="not a common setting"):
        Race(["sgd"], momentum=0.9)


def test_a_diverging_run_stops_and_the_others_go_on():
    race = Race(["sgd:lr=100", "sgd:lr=0.1"], **COMMON, loss="mse")
    race.step(30)
    assert race.stopped[0] and "diverged" in race.stopped[0]
    assert race.stopped[1] is None and race.runs[1].step_count == 30


def test_the_landscape_is_centred_on_the_initial_weights():
    race = Race(["sgd:lr=0.1", "adam:lr=0.05"], **COMMON)
    race.step(5)
    land = race.landscape(grid=5, span=1.0)
    assert land["alphas"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert land["loss"][2][2] == race.runs[0].history[0]["train_loss"]
    for run_id in race.ids:
        path = land["paths"][run_id]
        assert path[0] == [0.0, 0.0] and len(path) == 6


def test_a_long_race_keeps_a_bounded_path_with_its_start_and_its_end(monkeypatch):
    monkeypatch.setattr(race_module, "MAX_PATH", 8)
    race = Race(["sgd:lr=0.1"], **COMMON)
    start = [p.data for p in race.runs[0].model.parameters()]
    for _ in range(39):
        race.step(1)
        path = race.landscape(grid=3)["paths"][race.ids[0]]
        assert len(path) <= 8
        assert path[0] == [0.0, 0.0]  # the start stays
        assert race._weights[0][0] == start
        assert race._weights[0][-1] == [p.data for p in race.runs[0].model.parameters()]


def test_the_landscapes_directions_are_normalised_per_neuron():
    """Li et al. (2018): each neuron's share of a direction (its weights and bias) has the norm
    of that neuron's initial weights, so the plane's scale is the network's own."""
    race = Race(["sgd:lr=0.1"], n=60, hidden=[5, 3], seed=4)
    start = [p.data for p in race.runs[0].model.parameters()]
    land = race.landscape(grid=3)
    for d in land["directions"]:
        at = 0
        for layer in race.runs[0].model.layers:
            for neuron in layer.neurons:
                size = len(neuron.w) + 1
                norm_d = math.sqrt(sum(v * v for v in d[at:at + size]))
                norm_w = math.sqrt(sum(v * v for v in start[at:at + size]))
                assert norm_d == pytest.approx(norm_w, rel=1e-12)
                at += size
        assert at == len(d) == len(start)
    # the projection recovers a point of the plane exactly (up to rounding)
    d1, d2 = land["directions"]
    for p, s, u, v in zip(race.runs[0].model.parameters(), start, d1, d2):
        p.data = s + 0.25 * u - 0.5 * v
    race._weights[0].append([p.data for p in race.runs[0].model.parameters()])
    a, b = race.landscape(grid=3)["paths"][race.ids[0]][-1]
    assert a == pytest.approx(0.25, abs=1e-9) and b == pytest.approx(-0.5, abs=1e-9)


def test_the_race_frame_has_one_entry_per_run():
    race = Race(["sgd:lr=0.1", "adam:lr=0.01"], **COMMON)
    race.step(2)
    frame = race.frame()
    assert [r["settings"]["optimizer"] for r in frame["runs"]] == ["sgd", "adam"]
    assert [r["train_loss_repr"] for r in frame["runs"]] == [repr(s.train_loss)
                                                             for s in race.runs]
    assert len(frame["runs"][0]["history"]) == 3
    again = race.frame(since={r["id"]: 3 for r in frame["runs"]})
    assert all(r["history"] == [] for r in again["runs"])


# ---- the surface -------------------------------------------------------------------------------


def test_sgds_first_step_is_start_minus_lr_times_the_gradient():
    lr, start = 0.001, (-1.2, 1.0)
    surface = Surface("rosenbrock", [{"optimizer": "sgd", "lr": lr}], start=start)
    surface.step(1)
    x, y = Value(start[0]), Value(start[1])
    testfunctions.rosenbrock(x, y).backward()
    assert surface.paths[0] == [start, (start[0] - lr * x.grad, start[1] - lr * y.grad)]
    # and the gradient is the calculus one: d/dx = -2(1 - x) - 400 x (y - x^2), d/dy = 200 (..)
    assert x.grad == pytest.approx(-2 * (1 + 1.2) + 400 * 1.2 * (1 - 1.44))
    assert y.grad == pytest.approx(200 * (1 - 1.44))


@pytest.mark.parametrize("name", sorted(testfunctions.FUNCTIONS))
def test_every_function_starts_every_run_at_start(name):
    surface = Surface(name, "sgd:lr=0.001,adam:lr=0.05,cmaes", seed=2)
    surface.step(3)
    for path in surface.paths:
        assert path[0] == surface.function.start
    assert all(len(p) == 4 for p in surface.paths)
    assert surface.losses[0][0] == surface.function(*surface.function.start)


def test_trial_points_and_population_are_what_the_optimizer_evaluated():
    surface = Surface("rosenbrock", ["conjugate_gradient:max_iter=1",
                                      "cmaes:sigma0=0.3"], seed=1)
    surface.step(2)
    cg, cmaes = surface.trials(0), surface.trials(1)
    assert cg[1][0] == surface.paths[0][0]  # CG first evaluates where it stands
    assert len(cg[1]) == surface.evaluations[0][1] == surface.gradients[0][1]
    assert [len(t) for t in cmaes] == [0, 6, 6]  # popsize 4 + floor(3 ln 2) for two weights
    assert surface.gradients[1] == [0, 0, 0]
    ellipse = surface.frame()["runs"][1]["ellipses"][1]  # the first generation's N(m, 0.3^2 I)
    assert ellipse["centre"] == list(surface.start) and ellipse["radii"] == [0.3, 0.3]


def test_on_rastrigin_the_genetic_algorithms_population_finds_the_global_minimum():
    # From (3.3, -2.7) gradient descent settles in the local minimum near (3, -3); the genetic
    # algorithm's population, drawn as its trial points, reaches the global one at (0, 0).
    surface = Surface("rastrigin", "ga,sgd:lr=0.002", start=(3.3, -2.7), seed=0)
    surface.step(60)
    ga, sgd = surface.frame(contours=False)["runs"]
    assert (ga["trial_kind"], sgd["trial_kind"]) == ("population", None)
    assert ga["losses"][-1] < 0.1 and math.dist(ga["path"][-1], (0.0, 0.0)) < 0.05
    assert sgd["losses"][-1] > 10 and math.dist(sgd["path"][-1], (3.0, -3.0)) < 0.1
    assert sgd["gradient"][-1] == pytest.approx([0.0, 0.0], abs=1e-6)  # stuck: a stationary point
    # Each step's trial points are one whole generation, none of them with a gradient ...
    trials = surface.trials(0)
    assert trials[0] == [] and all(len(t) == 50 for t in trials[1:])
    assert surface.evaluations[0][-1] == 60 * 50 and surface.gradients[0][-1] == 0
    # ... the first generation holds the start, and the path is the best individual so far.
    assert trials[1][0] == surface.start
    for k in range(1, 61):
        seen = [p for t in trials[1:k + 1] for p in t]
        assert surface.paths[0][k] in seen
        assert surface.losses[0][k] == min(surface.function(*p) for p in seen)


def test_the_trial_points_of_the_genetic_algorithm_are_where_it_evaluated():
    surface = Surface("rastrigin", [{"optimizer": "genetic_algorithm", "popsize": 8}], seed=3)
    surface.step(4)
    # the same optimizer by hand, recording where its closure finds the weights
    x, y = Value(surface.start[0]), Value(surface.start[1])
    optimizer = GeneticAlgorithm([x, y], popsize=8, seed=3)
    evaluated = []
    for _ in range(4):
        evaluated.append([])
        optimizer.step(lambda: evaluated[-1].append((x.data, y.data))
                       or testfunctions.rastrigin(x, y))
    assert surface.trials(0)[1:] == evaluated
    assert surface.paths[0][-1] == (x.data, y.data)


def test_a_diverging_surface_run_stops_alone():
    surface = Surface("rosenbrock", "sgd:lr=0.1,sgd:lr=0.0001")
    surface.step(20)
    assert surface.stopped[0] and "diverged" in surface.stopped[0]
    assert surface.stopped[1] is None and len(surface.paths[1]) == 21


def test_testfunctions_get_names_itself_and_the_value():
    for bad in ("bowl", ["rosenbrock"], None):
        with pytest.raises(ValueError, match=rf"testfunctions.get: unknown test function "
                                             rf"{re.escape(repr(bad))}; choose one of"):
            testfunctions.get(bad)


def test_rastrigin_starts_where_the_genetic_algorithm_issue_puts_it():
    # (3.3, -2.7): gradient descent stops in the local minimum near (3, -3), the population
    # finds the global one (tests/test_genetic.py); the surface starts there by default.
    assert testfunctions.rastrigin.start == (3.3, -2.7)
    assert Surface("rastrigin", "sgd").paths[0] == [(3.3, -2.7)]


def test_surface_errors_name_the_value():
    with pytest.raises(ValueError, match="unknown test function 'bowl'"):
        Surface("bowl")
    with pytest.raises(ValueError, match="start must be two finite numbers"):
        Surface("saddle", "sgd", start=(1.0, math.nan))
    with pytest.raises(ValueError, match="'batch_size' cannot be set per run"):
        Surface("saddle", [{"optimizer": "sgd", "batch_size": 4}])
    with pytest.raises(ValueError, match="condition must be a number between 1 and 1e6"):
        Surface("quadratic", "sgd", condition=0.5)


# ---- the test functions ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(testfunctions.FUNCTIONS))
def test_the_minima_are_stationary_and_lowest(name):
    f = testfunctions.FUNCTIONS[name]
    for mx, my in f.minima:
        x, y = Value(mx), Value(my)
        value = f(x, y)
        value.backward()
        assert abs(x.grad) < 1e-4 and abs(y.grad) < 1e-4
        for dx, dy in ((1e-2, 0), (0, 1e-2), (-1e-2, 0), (0, -1e-2)):
            assert f(mx + dx, my + dy) > value.data
    x0, x1, y0, y1 = f.extent
    assert x0 < f.start[0] < x1 and y0 < f.start[1] < y1


def test_the_quadratics_condition_number_is_the_ratio_of_its_curvatures():
    f = testfunctions.quadratic(condition=50.0)
    assert f(1.0, 0.0) == 0.5 and f(0.0, 1.0) == 25.0
    turned = testfunctions.quadratic(condition=50.0, angle=90.0)
    assert turned(1.0, 0.0) == pytest.approx(25.0) and turned(0.0, 1.0) == pytest.approx(0.5)


# ---- the API (a real server on a free local port) ----------------------------------------------


@pytest.fixture
def server():
    srv = PlaygroundServer("127.0.0.1", 0, max_sessions=3)
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, method, path, **params):
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{server.url}{path}{'?' + query if query else ''}",
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_api_races_step_add_change_and_remove(server):
    status, made = call(server, "POST", "/api/races", runs="sgd:lr=0.1,adam:lr=0.01", n=60,
                        hidden="4", seed=3)
    assert status == 201
    rid = made["id"]
    ids = [r["id"] for r in made["frame"]["runs"]]
    status, frame = call(server, "POST", f"/api/races/{rid}/step", count=3,
                         since=",".join(f"{i}:1" for i in ids))
    race = Race(["sgd:lr=0.1", "adam:lr=0.01"], **COMMON)
    race.step(3)
    assert status == 200
    assert [r["train_loss_repr"] for r in frame["runs"]] == [repr(s.train_loss)
                                                             for s in race.runs]
    assert [h["step"] for h in frame["runs"][0]["history"]] == [1, 2, 3]
    status, frame = call(server, "POST", f"/api/races/{rid}/runs/{ids[1]}/settings", lr="0.05")
    assert status == 200 and frame["marks"][0]["changes"] == {"lr": 0.05}
    status, frame = call(server, "POST", f"/api/races/{rid}/runs", run="cmaes:sigma0=0.2")
    assert [r["settings"]["optimizer"] for r in frame["runs"]] == ["sgd", "adam", "cmaes"]
    status, frame = call(server, "POST", f"/api/races/{rid}/step", count=20, by="evaluations")
    assert status == 200 and min(r["evaluations"] for r in frame["runs"]) >= 20
    status, frame = call(server, "POST", f"/api/races/{rid}/runs/{ids[0]}/remove")
    assert [r["id"] for r in frame["runs"]] == [ids[1], ids[1] + 1]
    status, land = call(server, "GET", f"/api/races/{rid}/landscape", grid=5)
    assert status == 200 and len(land["loss"]) == 5
    status, frame = call(server, "POST", f"/api/races/{rid}/step", budget_ms=50, by="seconds",
                         count="0.01")
    assert status == 200


def test_a_race_link_keeps_every_value_set_even_a_default():
    # sgd's lr default is 0.1 and seed's 0: a link written as sgd:lr=0.1 and seed=0 must say
    # so, or its meaning would change with the defaults.
    race = race_from_query({"runs": "sgd:lr=0.1:momentum=0.0,adam", "seed": "0", "n": "40",
                            "hidden": "3"})
    link = race.frame()["link"]
    assert link == {"seed": "0", "n": "40", "hidden": "3",
                    "runs": "sgd:lr=0.1:momentum=0.0,adam"}
    race.update(1, lr=0.001)            # set now, though it is adam's default
    race.update(0, optimizer="adam")    # sgd's momentum no longer holds; the switch sets an lr
    assert race.link()["runs"] == f"adam:lr={race.settings(0)['lr']},adam:lr=0.001"
    again = race_from_query(race.link())
    assert [again.settings(i) for i in range(2)] == [race.settings(i) for i in range(2)]


def test_api_a_race_or_surface_request_stops_at_the_time_limit(server, monkeypatch):
    # A race of slow runs held one request for 94 s while a session's stops at the limit:
    # no step of any run starts once the limit has passed (the first always does).
    from nn.playground import api as api_module
    monkeypatch.setattr(api_module, "MAX_REQUEST_SECONDS", 0.0)
    _, made = call(server, "POST", "/api/races", runs="sgd,adam", n=40, hidden="3", seed=1)
    status, frame = call(server, "POST", f"/api/races/{made['id']}/step", count=5)
    assert status == 200 and [r["step_count"] for r in frame["runs"]] == [1, 0]
    status, frame = call(server, "POST", f"/api/races/{made['id']}/step", count=5,
                         budget_ms=500)
    assert status == 200 and [r["step_count"] for r in frame["runs"]] == [1, 1]  # level again
    _, made = call(server, "POST", "/api/surfaces", surface="rosenbrock", runs="sgd:lr=0.001")
    status, frame = call(server, "POST", f"/api/surfaces/{made['id']}/step", count=5)
    assert status == 200 and frame["step_count"] == 1


@pytest.mark.parametrize("count, words", [
    ("0.5", "count must be between 1 and 100, got '0.5'"),
    ("2.5", "count must be a whole number of steps, got '2.5'"),
    ("101", "count must be between 1 and 100, got '101'"),
])
@pytest.mark.parametrize("kind", ["races", "surfaces", "sessions"])
def test_api_every_step_request_checks_its_count_alike(server, kind, count, words):
    params = {"races": {"runs": "sgd", "n": 40, "hidden": "3"}, "sessions": {"n": 40},
              "surfaces": {"runs": "sgd", "surface": "rosenbrock"}}[kind]
    _, made = call(server, "POST", f"/api/{kind}", **params)
    status, body = call(server, "POST", f"/api/{kind}/{made['id']}/step", count=count)
    assert status == 400 and words in body["error"]
    if kind == "surfaces":
        return  # a surface steps by count only
    status, body = call(server, "POST", f"/api/{kind}/{made['id']}/step", budget_ms="5000")
    assert status == 400 and "budget_ms must be between 0 and 1000" in body["error"]


@pytest.mark.parametrize("params, words", [
    ({"runs": "sgd:lr=abc"}, "run 1 (sgd): lr must be a number, got 'abc'"),
    ({"runs": "sgd", "hidden": "99"}, "hidden must be between 1 and 16"),
    ({"runs": "sgd,sgd,sgd,sgd,sgd"}, "at most 4 runs"),
])
def test_api_a_bad_race_is_refused_with_its_reason(server, params, words):
    status, body = call(server, "POST", "/api/races", **params)
    assert status == 400 and words in body["error"]


def test_api_surfaces(server):
    status, made = call(server, "POST", "/api/surfaces", surface="rosenbrock",
                        runs="sgd:lr=0.001,cmaes", start="-1,1.5")
    assert status == 201 and made["frame"]["contours"]["grid"] == 90
    sid = made["id"]
    status, frame = call(server, "POST", f"/api/surfaces/{sid}/step", count=3, since=1)
    assert status == 200 and "contours" not in frame
    surface = Surface("rosenbrock", "sgd:lr=0.001,cmaes", start=(-1.0, 1.5))
    surface.step(3)
    assert frame["runs"][0]["path"] == [list(p) for p in surface.paths[0][1:]]
    status, body = call(server, "POST", "/api/surfaces", surface="bowl")
    assert status == 400 and "unknown test function 'bowl'" in body["error"]
    status, body = call(server, "GET", f"/api/races/{sid}")  # a surface is not a race
    assert status == 404
    status, options = call(server, "GET", "/api/surface-options")
    assert set(options["functions"]) == set(testfunctions.FUNCTIONS)


def test_the_race_and_surface_pages_are_served(server):
    for query, title in (("runs=sgd", "chainrule race"), ("surface=saddle", "chainrule surface"),
                         ("", "chainrule playground")):
        with urllib.request.urlopen(f"{server.url}/?{query}", timeout=30) as response:
            assert f"<title>{title}</title>" in response.read().decode()


def test_a_long_race_thins_each_runs_history_with_its_clock(monkeypatch):
    monkeypatch.setattr(Session, "max_history", 20)
    race = Race("sgd:lr=0.1,adam:lr=0.01", **COMMON)
    race.step(10)
    page = race.frame()
    have = {run["id"]: (len(run["history"]), run["history_thinned"]) for run in page["runs"]}
    race.step(35)
    for index, session in enumerate(race.runs):
        assert session.history_thinned > 0 and len(session.history) <= 20
        assert len(session.times) == len(session.history)  # the clock thinned alongside
        steps, losses = race.history(index, by="seconds")
        assert len(steps) == len(losses) and steps == sorted(steps)
    again = race.frame(since=have)  # the page's copy predates the thinning: all of it again
    for run, session in zip(again["runs"], race.runs):
        assert run["history_start"] == 0 and len(run["history"]) == len(session.history)
        assert [h["step"] for h in run["history"]][-1] == 45
    assert [len(r["history"]) for r in race.frame(since={
        r["id"]: (len(r["history"]), r["history_thinned"]) for r in again["runs"]})["runs"]] \
        == [0, 0]
