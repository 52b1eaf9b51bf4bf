"""Arguments of a compiled step: nested lists of numbers in, gradients in the same shape out.

A compiled step runs on floats, so its arguments are flattened into one list of numbers, and
their shape (which lists, how long, which arguments are static) is the key that selects a
trace. `leaves` makes the Values a trace runs on, one per number, labelled by where it sits
(`xs[2]`); `rebuild` puts the flat gradients back into the shape of the arguments.
"""

from __future__ import annotations

import keyword
import re
import struct
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

from autodiff.value import Value, number_text


def flatten(arg, path: str, flat: list, name: str):
    """The structure of `arg` (hashable) and its numbers appended to `flat`, checked.

    A number is 0; a list or tuple of numbers only is (is_tuple, count), the common case, taken
    in one step; any other list or tuple is (is_tuple, (structure of each item, ...)).
    """
    kind = type(arg)
    if kind is float:
        flat.append(arg)
        return 0
    if kind is list or kind is tuple:
        types = set(map(type, arg))
        if types == _FLOATS or types <= _PLAIN_NUMBERS and all(
                -_BIG < x < _BIG for x in arg if type(x) is int):
            flat.extend(arg if types == _FLOATS else map(float, arg))
            return (kind is tuple, len(arg))
        parts = tuple(flatten(a, f"{path}[{i}]", flat, name) for i, a in enumerate(arg))
        if all(p == 0 for p in parts):  # numbers of other types (NumPy's): the same structure
            return (kind is tuple, len(parts))
        return (kind is tuple, parts)
    if isinstance(arg, Value):
        raise TypeError(f"compiled {name}: argument {path} is a Value; a compiled step runs on "
                        f"numbers: pass {path}.data, or call the function itself to build a graph")
    if isinstance(arg, (list, tuple)):  # subclasses: taken as the plain list or tuple
        return flatten(tuple(arg) if isinstance(arg, tuple) else list(arg), path, flat, name)
    if isinstance(arg, bool) or not isinstance(arg, Real):
        raise TypeError(f"compiled {name}: argument {path} must be a number or a (nested) list "
                        f"or tuple of numbers, got {type(arg).__name__}: {arg!r}"
                        + (" (flags and other data go in static_argnums)"
                           if isinstance(arg, (bool, str)) else ""))
    try:
        flat.append(float(arg))
    except OverflowError:
        raise OverflowError(f"compiled {name}: argument {path} is too large for a float, got "
                            f"{number_text(arg)}") from None
    return 0


def static_key(arg):
    """A static argument as a cache key that tells apart what == does not: -0.0 from 0.0 (which
    give different numbers), True from 1 inside a tuple, and NaN from nothing (NaN != NaN would
    miss the cache every time)."""
    kind = type(arg)
    if kind is float:
        return (float, struct.pack("<d", arg))
    if kind is tuple or kind is list:
        return (kind, tuple(static_key(a) for a in arg))
    return (kind, arg)  # True == 1 == 1.0: the type tells them apart


_BIG = 2**1023  # ints at least this large in size may not fit a float: each is checked
_FLOATS = {float}
_PLAIN_NUMBERS = {float, int}


def rebuild(structure, values: Sequence, pos: int = 0):
    """Nested lists/tuples of the given shape filled from `values[pos:]`; returns (it, pos)."""
    if structure == 0:
        return values[pos], pos + 1
    is_tuple, parts = structure
    if type(parts) is int:
        items = values[pos:pos + parts]
        return (tuple(items) if is_tuple else list(items)), pos + parts
    items = []
    for part in parts:
        item, pos = rebuild(part, values, pos)
        items.append(item)
    return (tuple(items) if is_tuple else items), pos


def paths(structure, path: str) -> list[str]:
    if structure == 0:
        return [path]
    if type(structure[1]) is int:
        return [f"{path}[{i}]" for i in range(structure[1])]
    return [p for i, s in enumerate(structure[1]) for p in paths(s, f"{path}[{i}]")]



def values_in(structure) -> Iterable[Value]:
    if isinstance(structure, Value):
        yield structure
    elif isinstance(structure, (list, tuple)):
        for item in structure:
            yield from values_in(item)



def leaves(args: tuple, key, name: str, arg_name) -> tuple[list, dict]:
    """The arguments as Values labelled by where they sit, and {id: (position, name)}.

    `key` is the arguments' structure (from `flatten`, or ("static", ...) for a static
    argument, passed on as it is); `arg_name(i)` names argument i.
    """
    namer = Namer()
    inputs: dict[int, tuple[int, str]] = {}
    call_args = []
    count = 0
    for i, (arg, part) in enumerate(zip(args, key)):
        if is_static(part):
            call_args.append(arg)
            continue
        flat: list[float] = []
        flatten(arg, "", flat, name)
        made = []
        for path, x in zip(paths(part, arg_name(i)), flat):
            leaf = Value(x, label=path)
            inputs[id(leaf)] = (count, namer(path, f"a{count}"))
            count += 1
            made.append(leaf)
        call_args.append(rebuild(part, made)[0])
    return call_args, inputs


def is_static(part) -> bool:
    """Is this part of a key a static argument's?"""
    return isinstance(part, tuple) and bool(part) and part[0] == "static"


def structured(key, arg_grads: Sequence[float]) -> tuple:
    """The flat gradients in the structure of the arguments (None for a static one)."""
    grads = []
    pos = 0
    for part in key:
        if is_static(part):
            grads.append(None)
        else:
            grad, pos = rebuild(part, arg_grads, pos)
            grads.append(grad)
    return tuple(grads)


_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


class Namer:
    """Python names for Values: from the label when it makes one, else the fallback; unique."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, wish: Any, fallback: str) -> str:
        if wish and not isinstance(wish, str):  # .label is a plain attribute: anything goes
            wish = str(wish)
        name = _IDENT.sub("_", wish).strip("_") if wish else ""
        if not name or name[0].isdigit() or keyword.iskeyword(name) or name.startswith("g_"):
            name = fallback if not name else f"v_{name}"
        base, k = name, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

