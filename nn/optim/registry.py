"""The optimizer registry: every optimizer under one name, with its old names and a start.

The demo's `--optimizer`, the playground's choices and links, and the tests all read this one
table, so an optimizer registered here appears everywhere under the same name. A name is the
lower-case class name with words joined by "_" ("conjugate_gradient"). Older spellings stay as
aliases, so scripts and shared links keep working; an alias may also imply hyper-parameters
("momentum" is SGD with momentum 0.9).

    >>> OPTIMIZERS["adam"].cls.__name__, OPTIMIZERS["adam"].lr
    ('Adam', 0.05)
    >>> resolve("cg")                                  # an old name
    ('conjugate_gradient', {})
    >>> resolve("momentum")
    ('sgd', {'momentum': 0.9, 'lr': 0.1})

Adding an optimizer is one line at the end of this file, once its class is in `nn.optim`:

    register("nadam", NAdam, lr=0.05)

`lr` is a starting learning rate that trains the demo's network (`python -m nn.demo`), `demo`
the keywords the demo adds (the closure methods' budget per step), `lr_keyword` the keyword
that `--lr` sets when the class has no `lr` (CMA-ES: "sigma0"; None: nothing), and `aliases`
maps old names to the hyper-parameters they imply.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

from nn.optim.adaptive import ASGD, Adadelta, Adamax, Lion, NAdam, RAdam, Rprop
from nn.optim.base import Optimizer
from nn.optim.closure import LBFGS, ConjugateGradient
from nn.optim.evolutionary import GeneticAlgorithm
from nn.optim.first_order import SGD, Adagrad, Adam, AdamW, RMSprop
from nn.optim.gradient_free import CMAES, EvolutionStrategy
from nn.optim.matrix import Adafactor, Muon
from nn.optim.schedule_free import AdamWScheduleFree, SGDScheduleFree

__all__ = ["Entry", "OPTIMIZERS", "ALIASES", "register", "resolve", "build"]


class Entry(NamedTuple):
    """One registered optimizer (see the module's docstring for the fields)."""

    name: str
    cls: type[Optimizer]
    lr: float = 0.1
    lr_keyword: str | None = "lr"
    demo: Mapping[str, Any] = {}

    @property
    def needs_closure(self) -> bool:
        """Whether its `step` takes a closure that recomputes the loss (L-BFGS, CMA-ES)."""
        return "closure" in inspect.signature(self.cls.step).parameters

    @property
    def has_lr(self) -> bool:
        """Whether the class has a learning rate (CMA-ES has a step size sigma0 instead)."""
        return "lr" in inspect.signature(self.cls.__init__).parameters


#: Every optimizer by its one name, in order of growing complexity.
OPTIMIZERS: dict[str, Entry] = {}
#: Old name -> (its name now, the hyper-parameters it implies).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register(name: str, cls: type[Optimizer], *, lr: float = 0.1,
             lr_keyword: str | None = "lr", demo: Mapping[str, Any] | None = None,
             aliases: Mapping[str, Mapping[str, Any]] | None = None) -> Entry:
    """Add optimizer `cls` under `name` (and its `aliases`); returns its Entry."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"register: {name!r} must be an nn.optim.Optimizer class, got {cls!r}")
    for word in [name, *(aliases or {})]:
        if not isinstance(word, str) or not word or word != word.lower():
            raise ValueError(f"register: optimizer names are lower case, got {word!r}")
        if word in OPTIMIZERS or word in ALIASES:
            raise ValueError(f"register: the name {word!r} is taken")
    entry = OPTIMIZERS[name] = Entry(name, cls, lr, lr_keyword, dict(demo or {}))
    for alias, implied in (aliases or {}).items():
        ALIASES[alias] = (name, dict(implied))
    return entry


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """(the registered name, the hyper-parameters an alias implies) for `name`, or a
    ValueError naming the choices."""
    if name in OPTIMIZERS:
        return name, {}
    if isinstance(name, str) and name in ALIASES:
        target, implied = ALIASES[name]
        return target, dict(implied)
    raise ValueError(f"optimizer: unknown choice {name!r}; choose one of "
                     f"{', '.join(OPTIMIZERS)}")


def build(name: str, params: Any, lr: float | None = None) -> Optimizer:
    """The optimizer `name` (or an alias) on `params` as the demo starts it: the registered
    starting lr unless `lr` is given, the alias's hyper-parameters, the demo's keywords."""
    name, implied = resolve(name)
    entry = OPTIMIZERS[name]
    start = implied.pop("lr", entry.lr) if lr is None else lr
    implied.pop("lr", None)
    kwargs = {**entry.demo, **implied}
    if entry.lr_keyword is not None:
        kwargs[entry.lr_keyword] = start
    return entry.cls(params, **kwargs)


# ---- the registered optimizers: one line each ----------------------------------------------------

register("sgd", SGD, lr=1.0, aliases={"momentum": {"momentum": 0.9, "lr": 0.1}})
register("adam", Adam, lr=0.05)
register("adamw", AdamW, lr=0.05)
register("rmsprop", RMSprop, lr=0.01)
register("adagrad", Adagrad, lr=0.3)
# The closure methods evaluate the loss several times per step: the demo gives them a budget.
register("lbfgs", LBFGS, lr=1.0,
         demo={"max_iter": 1, "max_eval": 5, "line_search_fn": "strong_wolfe"})
register("conjugate_gradient", ConjugateGradient, lr=1.0, demo={"max_iter": 1, "max_eval": 5},
         aliases={"cg": {}, "conjugategradient": {}})
# Gradient-free: --lr is CMA-ES's starting step size sigma0, and the ES's Adam lr.
register("cmaes", CMAES, lr=0.5, lr_keyword="sigma0", demo={"seed": 0})
register("evolution_strategy", EvolutionStrategy, lr=0.05, demo={"popsize": 20, "seed": 0},
         aliases={"es": {}, "evolutionstrategy": {}})
# The rest of torch.optim's element-wise rules, and Lion (its lr is a distance: small).
register("nadam", NAdam, lr=0.05)
register("radam", RAdam, lr=0.1)
register("adamax", Adamax, lr=0.05)
register("adadelta", Adadelta, lr=1.0)
register("rprop", Rprop, lr=0.01)
register("asgd", ASGD, lr=0.5)
register("lion", Lion, lr=0.01)
# Schedule-Free: no schedule needed (the demo runs them without one and evaluates at x).
register("sgd_schedule_free", SGDScheduleFree, lr=0.5)
register("adamw_schedule_free", AdamWScheduleFree, lr=0.05)
# Whole weight matrices: the demo and the playground give them the model's matrices.
register("muon", Muon, lr=0.02)
register("adafactor", Adafactor, lr=0.1)
# The genetic algorithm: --lr sets its mutation_sigma.
register("genetic_algorithm", GeneticAlgorithm, lr=0.5, lr_keyword="mutation_sigma",
         demo={"seed": 0}, aliases={"ga": {}})
