"""What a primitive operation is: a name, a float function and its derivative rule.

The op table itself (every primitive, declared once) is `autodiff.ops`; this module only says
what an entry looks like, so that `Value`, the ops and the engine can all refer to it without
importing each other in a circle. A primitive *is* its name (a `str`), so `node.op == "mul"`
reads naturally, prints as `mul` and is a key of `PRIMITIVES`, and it carries the rest as
attributes: `forward` (floats in, float out), `vjp` (the derivative rule) and `symbol`.
"""

from __future__ import annotations

from collections.abc import Callable


class Primitive(str):
    """One entry of the op table: a name (the str itself), a float forward and a rule.

    - `forward(*floats) -> float` computes the op on numbers and raises a clear error outside
      its domain.
    - `vjp(g, out, *inputs) -> tuple` maps the gradient `g` of the op's output `out` to one
      gradient share per input. It is written with arithmetic and `autodiff.ops` functions only,
      so it runs on floats (an ordinary backward pass) and on Values (`create_graph=True`).
    - `symbol` is how drawings and explanations write it ("+", "*", "**"); "" reads as name(x).
    """

    def __new__(
        cls,
        name: str,
        forward: Callable[..., float],
        vjp: Callable[..., tuple],
        symbol: str = "",
    ) -> Primitive:
        prim = super().__new__(cls, name)
        prim.forward = forward
        prim.vjp = vjp
        prim.symbol = symbol
        return prim

    @property
    def name(self) -> str:
        """The primitive's name as a plain str."""
        return str.__str__(self)

    def __copy__(self) -> Primitive:
        return self  # one object per op: copying a graph shares its ops

    def __deepcopy__(self, memo) -> Primitive:
        return self


#: Every primitive by name, in declaration order (filled by `autodiff.ops`). Tests are
#: parametrised over this table, so a primitive cannot ship without a gradient check.
PRIMITIVES: dict[str, Primitive] = {}


def primitive(name: str, forward: Callable[..., float], symbol: str = ""):
    """Declare a primitive: decorate its derivative rule, give its forward function."""

    def declare(vjp: Callable[..., tuple]) -> Primitive:
        prim = PRIMITIVES[name] = Primitive(name, forward, vjp, symbol)
        return prim

    return declare

