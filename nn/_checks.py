"""Argument checks shared by every public entry of `nn`, and the one way to read a gradient.

Bad input must fail at once, with an error that names the function, the argument and the value
(`SGD: nesterov must be True or False, got str: 'no'`), never be read as something else
(`bool("no")` is True). The one idea: each kind of argument is checked by one function here, so
every layer, loss, optimizer and schedule says the same thing about the same mistake. Type
mistakes are TypeErrors; a value of the right type outside its range is a ValueError.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

from autodiff import Value
from nn import _origin

_origin.check()  # chainrule's nn, not another package of the same name (see nn/_origin.py)

__all__ = ["grad_of", "check_number", "check_non_negative", "check_int", "check_betas",
           "check_bool", "check_choice", "check_seed", "check_rng"]


def grad_of(p: Value, owner: str = "optimizer", index: int | None = None) -> float:
    """`p.grad` as a float, or a TypeError naming the parameter (`params[index]` of `owner`).

    `.grad` is an ordinary attribute anyone can set; a string there must not be read as a
    number (`float("1.0")` would), and None must fail before an update starts, not half-way.
    """
    g = p.grad
    if type(g) is float:  # nearly always: the fast path
        return g
    if isinstance(g, Value):
        return g.data
    if isinstance(g, bool) or not isinstance(g, Real):
        which = "a parameter" if index is None else f"params[{index}]"
        raise TypeError(f"{owner}: {which}.grad must be a number (or a Value), "
                        f"got {type(g).__name__}: {g!r}")
    return float(g)


def check_number(owner: str, name: str, value: Any, *, finite: bool = False) -> float:
    """`value` as a float; TypeError unless it is a real number (bools are not numbers here).

    With `finite=True`, NaN and infinities are a ValueError.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{owner}: invalid {name}={value!r}, it must be a finite number")
    return value


def check_non_negative(owner: str, name: str, value: Any) -> float:
    """A finite number >= 0 as a float (a learning rate, a decay, an epsilon, ...)."""
    value = check_number(owner, name, value)
    # `not 0 <= value < inf` also rejects NaN.
    if not 0.0 <= value < math.inf:
        raise ValueError(f"{owner}: invalid {name}={value!r}, it must be a finite number >= 0")
    return value


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """An int >= minimum; TypeError for anything that is not an int (floats and bools too)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: invalid {name}={value!r}, it must be >= {minimum}")
    return int(value)


def check_betas(owner: str, betas: Any) -> tuple[float, float]:
    """Adam's (beta1, beta2): a pair of numbers, each in [0, 1)."""
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    pair = (check_number(owner, "betas[0]", betas[0]), check_number(owner, "betas[1]", betas[1]))
    for i, beta in enumerate(pair):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{owner}: invalid betas[{i}]={beta!r}, it must be in [0, 1)")
    return pair


def check_bool(owner: str, name: str, value: Any) -> bool:
    """True or False exactly: a string such as "false" is truthy and would mean the opposite."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be True or False, "
                        f"got {type(value).__name__}: {value!r}")
    return value


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """One of the documented names; ValueError listing them otherwise."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{owner}: unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_seed(owner: str, seed: Any) -> int:
    """An int seed. `random.Random` also takes strings and floats, which would make two
    spellings of "the same" seed give different data; here a seed is an int."""
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"{owner}: seed must be an int, got {type(seed).__name__}: {seed!r}")
    return int(seed)


def check_rng(owner: str, rng: Any) -> random.Random:
    """A `random.Random` (the generator the weights are drawn from), or the `random` module
    itself (Python's global generator, micrograd's default)."""
    if not isinstance(rng, random.Random) and rng is not random:
        raise TypeError(f"{owner}: rng must be a random.Random (e.g. random.Random(42)), "
                        f"got {type(rng).__name__}: {rng!r}; for a number, pass seed= instead")
    return rng
