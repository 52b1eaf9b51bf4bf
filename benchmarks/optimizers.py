"""W6: optimizers on the Rosenbrock valley and a small network, next to scipy's and cma's.

`python -m benchmarks.optimizers [--quick]` runs every chainrule optimizer on two problems and
prints, for each, what it cost: evaluations of the loss, evaluations of its gradient, CPU time,
and the loss it reached. The one idea: an optimizer's cost is counted in evaluations, not in
steps, since one step of L-BFGS or CMA-ES may evaluate the loss dozens of times. When scipy or
the cma package is installed (the `bench` extra), their CG, L-BFGS-B and CMA-ES run on the very
same loss (the network's loss and gradient computed by chainrule), so the evaluation counts
compare the algorithms and the times include the same evaluation cost. `--quick` shrinks the
budgets and the network's data so that the run takes seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: CPU time of this process (robust on a shared machine, as in the other workloads).
clock = time.process_time

ROSENBROCK_START = (-1.2, 1.0)
ROSENBROCK_TARGET = 1e-8


@dataclass
class Row:
    """One optimizer's run: what it cost and where it got."""

    method: str
    f_evals: int = 0
    grad_evals: int = 0
    seconds: float = 0.0
    final: float = float("nan")
    note: str = ""
    extra: dict = field(default_factory=dict)


# ---- the problems: a loss with a counter, on chainrule Values ---------------------------------


class Problem:
    """A loss of a list of parameters, evaluated with or without its gradient, and counted."""

    def __init__(self, name: str, make_params: Callable[[], list], loss: Callable[[list], object],
                 budget_grads: int, budget_values: int, target: float | None,
                 matrices: Callable[[list], list] | None = None) -> None:
        self.name, self.make_params, self.loss = name, make_params, loss
        self.budget_grads, self.budget_values, self.target = budget_grads, budget_values, target
        # The parameters as weight matrices (for Muon and Adafactor), if they form any.
        self.matrices = matrices

    def value(self, params: list) -> float:
        """The loss at the parameters' current data, without a graph (not counted)."""
        from autodiff import no_grad

        with no_grad():
            out = self.loss(params)
        return float(out.data if hasattr(out, "data") else out)


def rosenbrock_problem(quick: bool) -> Problem:
    from autodiff import Value

    def loss(p):
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] * p[0]) ** 2

    return Problem("Rosenbrock 2-d from (-1.2, 1), to f < 1e-8",
                   lambda: [Value(v) for v in ROSENBROCK_START], loss,
                   budget_grads=500 if quick else 5000, budget_values=2000 if quick else 5000,
                   target=ROSENBROCK_TARGET)


def network_problem(quick: bool) -> Problem:
    from nn import MLP
    from nn.data import make_moons
    from nn.losses import mse

    X, y = make_moons(12 if quick else 40, noise=0.1, seed=0, labels="pm1")
    holder: dict = {}

    def make_params():
        holder["model"] = MLP(2, [8, 1], activation="tanh", seed=0)
        return holder["model"].parameters()

    def loss(params):
        model = holder["model"]
        return mse([model(x) for x in X], y)

    def as_matrices(params):
        from nn.optim import matrices

        return matrices(holder["model"])

    points = len(X)
    return Problem(f"MLP(2, [8, 1], tanh), 33 weights, MSE on {points} moons points",
                   make_params, loss, budget_grads=30 if quick else 300,
                   budget_values=300 if quick else 3000, target=None, matrices=as_matrices)


# ---- chainrule's optimizers --------------------------------------------------------------------


def run_chainrule(problem: Problem, method: str, make_opt: Callable, kind: str) -> Row:
    """kind: "gradient" (zero_grad/backward/step), "closure" or "value" (step(closure))."""
    params = problem.make_params()
    opt = make_opt(params)
    row = Row(method)
    # Where the model is evaluated: the Schedule-Free rules' average x (their training point y
    # comes back bit for bit afterwards); the parameters themselves for every other rule.
    evaluated = getattr(opt, "evaluating", contextlib.nullcontext)

    def loss_and_gradient():
        row.f_evals += 1
        row.grad_evals += 1
        opt.zero_grad()
        loss = problem.loss(params)
        loss.backward()
        return loss

    def loss_only():
        row.f_evals += 1
        return problem.loss(params)

    def done() -> bool:
        if row.grad_evals >= problem.budget_grads or row.f_evals >= problem.budget_values:
            return True
        # The referee's check is not counted: a real run would not make it.
        if problem.target is None:
            return False
        with evaluated():
            return problem.value(params) < problem.target

    start = clock()
    while not done():
        if kind == "gradient":
            loss_and_gradient()
            opt.step()
        else:
            opt.step(loss_and_gradient if kind == "closure" else loss_only)
    row.seconds = clock() - start
    with evaluated():
        row.final = problem.value(params)
    return row


def chainrule_methods(problem: Problem) -> list[tuple[str, Callable, str]]:
    from nn.optim import (ASGD, CMAES, LBFGS, SGD, Adadelta, Adafactor, Adam, Adamax,
                          AdamWScheduleFree, ConjugateGradient, EvolutionStrategy,
                          GeneticAlgorithm, Lion, Muon, NAdam, RAdam, Rprop, SGDScheduleFree)

    network = problem.target is None
    matrix_rules = []
    if problem.matrices is not None:  # Muon and Adafactor see the network's weight matrices
        matrix_rules = [
            ("Muon (biases: AdamW)", lambda p: Muon(problem.matrices(p), lr=0.02), "gradient"),
            ("Adafactor", lambda p: Adafactor(problem.matrices(p), lr=0.05), "gradient"),
        ]
    return [
        ("SGD + momentum 0.9", lambda p: SGD(p, lr=0.05 if network else 1e-3, momentum=0.9),
         "gradient"),
        ("Adam", lambda p: Adam(p, lr=0.05), "gradient"),
        ("NAdam", lambda p: NAdam(p, lr=0.05), "gradient"),
        # RAdam's first steps are momentum SGD steps of lr * m: lr 0.05 diverges on Rosenbrock.
        ("RAdam", lambda p: RAdam(p, lr=0.05 if network else 2e-3), "gradient"),
        ("Adamax", lambda p: Adamax(p, lr=0.05), "gradient"),
        ("Adadelta", lambda p: Adadelta(p, lr=1.0), "gradient"),
        ("Rprop", lambda p: Rprop(p, lr=0.01), "gradient"),
        ("ASGD", lambda p: ASGD(p, lr=0.05 if network else 1e-3), "gradient"),
        ("Lion", lambda p: Lion(p, lr=0.01 if network else 0.002), "gradient"),
        ("SGDScheduleFree", lambda p: SGDScheduleFree(p, lr=0.5 if network else 2e-3),
         "gradient"),
        ("AdamWScheduleFree", lambda p: AdamWScheduleFree(p, lr=0.05), "gradient"),
        *matrix_rules,
        ("LBFGS (strong Wolfe)", lambda p: LBFGS(p, line_search_fn="strong_wolfe"), "closure"),
        ("ConjugateGradient (PR+)", lambda p: ConjugateGradient(p), "closure"),
        ("CMAES", lambda p: CMAES(p, sigma0=0.5, seed=0), "value"),
        ("EvolutionStrategy", lambda p: EvolutionStrategy(p, sigma=0.1 if network else 0.05,
                                                          popsize=20, lr=0.05 if network
                                                          else 0.02, seed=0), "value"),
        ("GeneticAlgorithm", lambda p: GeneticAlgorithm(p, seed=0), "value"),
    ]


# ---- the references: scipy and cma on the same loss --------------------------------------------


def _flat_loss(problem: Problem):
    """f(x) and (f(x), grad(x)) on plain lists for scipy and cma, through chainrule, counted."""
    params = problem.make_params()
    counts = {"f": 0, "grad": 0}

    def set_x(x):
        for p, xi in zip(params, x):
            p.data = float(xi)

    def f_and_grad(x):
        counts["f"] += 1
        counts["grad"] += 1
        set_x(x)
        for p in params:
            p.grad = 0.0
        loss = problem.loss(params)
        loss.backward()
        return loss.data, [p.grad for p in params]

    def f_only(x):
        counts["f"] += 1
        set_x(x)
        return problem.value(params)

    return [p.data for p in params], f_and_grad, f_only, counts


def run_scipy(problem: Problem, method: str) -> Row:
    import numpy as np
    from scipy.optimize import minimize

    x0, f_and_grad, _, counts = _flat_loss(problem)

    def fun(x):
        f, g = f_and_grad(x)
        return f, np.array(g)

    options = {"maxiter": problem.budget_grads}
    if problem.target is not None:  # to f < 1e-8 on Rosenbrock: scipy's gtol=1e-5 gets there
        options["gtol"] = 1e-5
    start = clock()
    result = minimize(fun, np.array(x0), jac=True, method=method, options=options)
    row = Row(f"scipy {method}", counts["f"], counts["grad"], clock() - start, float(result.fun))
    return row


def run_cma(problem: Problem) -> Row:
    import cma

    x0, _, f_only, counts = _flat_loss(problem)
    options = {"seed": 1, "verbose": -9, "maxfevals": problem.budget_values}
    if problem.target is not None:
        options["ftarget"] = problem.target
    start = clock()
    es = cma.CMAEvolutionStrategy(x0, 0.5, options)
    es.optimize(f_only)
    seconds = clock() - start
    return Row(f"cma {cma.__version__} CMA-ES", counts["f"], 0, seconds, float(es.result.fbest),
               note="best sample")


# ---- the report --------------------------------------------------------------------------------


def table(problem: Problem, rows: list[Row]) -> str:
    lines = [problem.name,
             f"budget: {problem.budget_grads} gradient or {problem.budget_values} function "
             "evaluations",
             f"  {'method':28} {'f evals':>8} {'grad evals':>10} {'CPU s':>8} {'ms/eval':>8}"
             f"  {'final loss':>10}"]
    for r in rows:
        per = 1000 * r.seconds / r.f_evals if r.f_evals else float("nan")
        lines.append(f"  {r.method:28} {r.f_evals:8d} {r.grad_evals:10d} {r.seconds:8.3f} "
                     f"{per:8.3f}  {r.final:10.3g}" + (f"  ({r.note})" if r.note else ""))
    return "\n".join(lines)


def run(quick: bool) -> str:
    have_scipy = importlib.util.find_spec("scipy") is not None
    have_cma = importlib.util.find_spec("cma") is not None
    references = [name for name, ok in (("scipy", have_scipy), ("cma", have_cma)) if ok]
    parts = ["\n".join([
        f"chainrule optimizers (W6), {datetime.date.today()}"
        + (" (--quick: small budgets)" if quick else ""),
        f"Python {platform.python_version()}; references: "
        + (", ".join(references) or "none installed (pip install .[bench])"),
        "A step call is never interrupted, so LBFGS and CG may pass the gradient budget by up "
        "to one call (25 evaluations)."])]
    for problem in (rosenbrock_problem(quick), network_problem(quick)):
        rows = [run_chainrule(problem, *spec) for spec in chainrule_methods(problem)]
        if have_scipy:
            rows += [run_scipy(problem, "CG"), run_scipy(problem, "L-BFGS-B")]
        if have_cma:
            rows.append(run_cma(problem))
        parts.append(table(problem, rows))
    parts.append("f evals count every evaluation of the loss; grad evals those that also ran "
                 "backward. CMAES, EvolutionStrategy, GeneticAlgorithm and cma evaluate the loss "
                 "only (no graph). The Schedule-Free rules are evaluated at their average x "
                 "(where a model of theirs is evaluated), not at the point y they train at.")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizers",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets and data (seconds)")
    args = parser.parse_args(argv)
    print(run(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
