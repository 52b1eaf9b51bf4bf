"""A genetic algorithm: selection, crossover and mutation on a population of weight vectors.

The founding answer to "how do I update the weights?" names evolutionary methods, "genetic
algorithm, for example", next to gradient descent. A genetic algorithm needs no gradient and
no step size: it keeps a population of candidate weight vectors, lets the better ones have
children (each child mixes two parents' genes, then a few genes mutate), and repeats. A
population spread over several valleys can find a deeper one that a gradient step, which
only sees the slope where it stands, never reaches.

    >>> from autodiff import Value
    >>> x = [Value(3.0), Value(-2.0)]
    >>> opt = GeneticAlgorithm(x, seed=0)
    >>> for _ in range(30):
    ...     _ = opt.step(lambda: x[0] ** 2 + x[1] ** 2)   # one generation: 50 evaluations
    >>> opt.state["best_loss"] < 1e-3
    True
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from autodiff import Value
from nn._checks import check_choice, check_int, check_number
from nn.optim.closure import ClosureOptimizer, _check_seed_or_none, _rng_state, _set_rng_state
from nn.optim.gradient_free import _all_nan, _evaluate_value, _rank

__all__ = ["GeneticAlgorithm", "SELECTIONS", "CROSSOVERS"]

#: How parents are chosen from a generation ranked by loss.
SELECTIONS = {
    "tournament": "the best of `tournament_size` individuals drawn at random",
    "truncation": "any of the best fifth of the population, drawn at random",
}
#: How a child's genes come from its two parents a and b.
CROSSOVERS = {
    "uniform": "each gene from a or b, with probability 1/2 each",
    "one_point": "the genes of a up to a random cut, those of b after it",
    "blend": "each gene uniform in [lo - d/2, hi + d/2], lo and hi the parents' genes, d = hi - lo",
}


class GeneticAlgorithm(ClosureOptimizer):
    """A genetic algorithm: a population bred by selection, crossover and mutation.

        opt = GeneticAlgorithm(model.parameters(), popsize=50, seed=0)
        def closure():
            return loss_fn(model)        # only the value is used: no backward needed
        opt.step(closure)                # one generation; the parameters hold the best so far

    The population starts as the current parameters and popsize - 1 copies of them with
    Gaussian noise of standard deviation `init_sigma` on every gene. One `step` is one
    generation, popsize evaluations of the loss:

        evaluate every individual                           (under no_grad: values only)
        keep the `elite` best unchanged                     (elitism: the best never gets lost)
        until the population is full again:
            pick two parents by `selection`                 (see SELECTIONS)
            child = crossover(parent_a, parent_b)           (see CROSSOVERS)
            each gene, with probability mutation_rate:  gene += mutation_sigma * N(0, 1)

    The parameters then hold the best individual seen in any generation (`state["best_x"]`,
    with its loss in `state["best_loss"]`); `state["population"]` is the next generation, the
    one the next step evaluates. Only the order of the losses counts, so the loss may be any
    number to minimise, without a gradient (an accuracy, a step function). Deterministic for a
    `seed`; `state_dict()` resumes a run bit for bit.
    """

    hyperparams = ("popsize", "elite", "selection", "crossover", "mutation_sigma",
                   "mutation_rate", "init_sigma", "tournament_size", "seed", "maximize")
    state_keys = ("generation", "func_evals", "population", "rng", "best_loss", "best_x")
    _whole_state = True
    _state_kinds = {"generation": "count", "func_evals": "count", "population": "vectors",
                    "rng": "rng", "best_loss": "loss?", "best_x": "vector?"}

    def __init__(self, params: Iterable[Value], popsize: int = 50, elite: int = 2,
                 selection: str = "tournament", crossover: str = "uniform",
                 mutation_sigma: float = 0.5, mutation_rate: float = 0.2,
                 init_sigma: float = 1.0, tournament_size: int = 3, seed: int | None = None,
                 maximize: bool = False) -> None:
        super().__init__(params, None, maximize)
        name = self.name
        self.popsize = check_int(name, "popsize", popsize, 2)
        self.elite = check_int(name, "elite", elite, 0)
        if self.elite >= self.popsize:
            raise ValueError(f"{name}: invalid elite={elite!r}, it must be smaller than "
                             f"popsize={self.popsize} (or no child would ever be born)")
        self.selection = check_choice(name, "selection", selection, SELECTIONS)
        self.crossover = check_choice(name, "crossover", crossover, CROSSOVERS)
        self.mutation_sigma = _check_fraction(name, "mutation_sigma", mutation_sigma, None)
        self.mutation_rate = _check_fraction(name, "mutation_rate", mutation_rate, 1.0)
        self.init_sigma = _check_fraction(name, "init_sigma", init_sigma, None)
        self.tournament_size = check_int(name, "tournament_size", tournament_size, 1)
        self.seed = _check_seed_or_none(name, seed)
        self._rng = random.Random(self.seed)

    @property
    def lr(self) -> float:  # type: ignore[override]
        raise AttributeError("GeneticAlgorithm has no learning rate: mutation_sigma sets how "
                             "far a child strays from its parents")

    def _check_state(self, where: str, state: dict[str, Any]) -> None:
        super()._check_state(where, state)
        if state and len(state["population"]) != self.popsize:
            raise ValueError(f"{where}: state['population'] has {len(state['population'])} "
                             f"individuals, popsize is {self.popsize}")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One generation: evaluate the population, then breed the next one."""
        closure = self._closure(closure)
        evaluate = _evaluate_value(self, closure)
        n, rng = len(self.params), self._rng
        current = self._get_x()
        # The state changes only once the whole generation has been evaluated.
        if self.state:
            state = dict(self.state)
            _set_rng_state(rng, state["rng"])
        else:
            rng.seed(self.seed)
            population = [current] + [[xi + self.init_sigma * rng.gauss(0.0, 1.0)
                                       for xi in current] for _ in range(self.popsize - 1)]
            state = dict(generation=0, func_evals=0, population=population, best_loss=None,
                         best_x=None)

        # Evaluate every individual (the parameters hold each in turn).
        losses, first = [], None
        try:
            for x in state["population"]:
                self._set_x(x)
                result, f = evaluate()
                first = result if first is None else first
                losses.append(f)
        except BaseException:
            self._set_x(current)  # a failing closure leaves the parameters as they were
            raise
        if all(f != f for f in losses):
            self._set_x(current)
            raise _all_nan(self.name, self.popsize)
        ranked = sorted(range(self.popsize), key=lambda i: _rank(losses[i]))  # best first
        best = ranked[0]
        if state["best_loss"] is None or _rank(losses[best]) < _rank(state["best_loss"]):
            state["best_loss"], state["best_x"] = losses[best], list(state["population"][best])
        self._set_x(state["best_x"])

        # Breed the next generation: the elite as they are, then children.
        parents = [state["population"][i] for i in ranked]  # best first
        children = [list(x) for x in parents[:self.elite]]
        while len(children) < self.popsize:
            a, b = self._select(parents, rng), self._select(parents, rng)
            child = self._cross(a, b, rng, n)
            for j in range(n):
                if rng.random() < self.mutation_rate:
                    child[j] += self.mutation_sigma * rng.gauss(0.0, 1.0)
            children.append(child)
        state.update(generation=state["generation"] + 1,
                     func_evals=state["func_evals"] + self.popsize, population=children,
                     rng=_rng_state(rng))
        self.state = state
        return first

    def _select(self, ranked: list[list[float]], rng: random.Random) -> list[float]:
        """One parent from the population sorted best first (see SELECTIONS)."""
        if self.selection == "tournament":
            # The smallest of k random ranks: the best of k random individuals.
            return ranked[min(rng.randrange(len(ranked)) for _ in range(self.tournament_size))]
        return ranked[rng.randrange(max(2, len(ranked) // 5))]  # truncation: the best fifth

    def _cross(self, a: list[float], b: list[float], rng: random.Random,
               n: int) -> list[float]:
        """A child of parents a and b (see CROSSOVERS)."""
        if self.crossover == "uniform":
            return [ai if rng.random() < 0.5 else bi for ai, bi in zip(a, b)]
        if self.crossover == "one_point":
            cut = rng.randint(0, n)
            return a[:cut] + b[cut:]
        child = []
        for ai, bi in zip(a, b):  # blend (BLX-0.5)
            lo, hi = min(ai, bi), max(ai, bi)
            child.append(lo - 0.5 * (hi - lo) + rng.random() * 2.0 * (hi - lo))
        return child


def _check_fraction(owner: str, name: str, value: Any, top: float | None) -> float:
    """A finite number >= 0, and <= top when top is given."""
    value = check_number(owner, name, value, finite=True)
    if value < 0 or top is not None and value > top:
        limit = f"in [0, {top}]" if top is not None else ">= 0"
        raise ValueError(f"{owner}: invalid {name}={value!r}, it must be {limit}")
    return value
