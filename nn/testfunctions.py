"""Two-dimensional test functions of optimisation, written once for every part that needs them.

Each function is plain arithmetic (and `autodiff.cos`) on its two arguments, so it runs on floats
and on Values alike: `rosenbrock(x, y)` with Values builds the graph an optimizer differentiates,
with floats it is a number for a contour plot. The one idea to understand: these are landscapes
chosen for one difficulty each (a curved valley, a saddle, bad conditioning, flat plateaus,
several minima, a sea of local minima), so racing update rules on them shows which difficulty
each rule handles.

    >>> from nn.testfunctions import FUNCTIONS, rosenbrock
    >>> rosenbrock(1.0, 1.0), rosenbrock.minima
    (0.0, ((1.0, 1.0),))
    >>> sorted(FUNCTIONS)
    ['beale', 'himmelblau', 'quadratic', 'rastrigin', 'rosenbrock', 'saddle']
    >>> quadratic(condition=10.0)(1.0, 1.0)
    5.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import autodiff

__all__ = ["TestFunction", "FUNCTIONS", "get", "rosenbrock", "saddle", "quadratic", "beale",
           "himmelblau", "rastrigin"]


class TestFunction:
    """A named function f(x, y) with the view that shows it well.

    `start` is the customary starting point, `extent` the window [x0, x1, y0, y1] to draw,
    `minima` the known global minima (empty when f is unbounded below), `log_scale` whether
    its contours read better on a logarithmic scale (steep walls around a flat valley).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, name: str, formula: str, f: Callable[[Any, Any], Any],
                 start: tuple[float, float], extent: tuple[float, float, float, float],
                 minima: tuple[tuple[float, float], ...] = (), log_scale: bool = False,
                 note: str = "") -> None:
        self.name, self.formula, self.f = name, formula, f
        self.start, self.extent, self.minima = start, extent, minima
        self.log_scale, self.note = log_scale, note

    def __call__(self, x: Any, y: Any) -> Any:
        return self.f(x, y)

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts about the function (for a page or a table)."""
        return {"name": self.name, "formula": self.formula, "start": list(self.start),
                "extent": list(self.extent), "minima": [list(m) for m in self.minima],
                "log_scale": self.log_scale, "note": self.note}

    def __repr__(self) -> str:
        return f"<test function {self.name}: {self.formula}>"


rosenbrock = TestFunction(
    "rosenbrock", "(1 - x)^2 + 100 (y - x^2)^2",
    lambda x, y: (1 - x) ** 2 + 100 * (y - x ** 2) ** 2,
    start=(-1.2, 1.0), extent=(-2.0, 2.0, -1.0, 3.0), minima=((1.0, 1.0),), log_scale=True,
    note="a narrow curved valley: easy to reach, slow to follow")

saddle = TestFunction(
    "saddle", "x^2 - y^2", lambda x, y: x ** 2 - y ** 2,
    start=(-1.5, 0.01), extent=(-2.0, 2.0, -2.0, 2.0),
    note="no minimum: a method must leave the saddle point at (0, 0) along y")


def quadratic(condition: float = 10.0, angle: float = 0.0) -> TestFunction:
    """(u^2 + condition * v^2) / 2 in axes (u, v) turned by `angle` degrees: a bowl whose
    curvatures differ by the factor `condition` (the condition number of its Hessian)."""
    if isinstance(condition, bool) or not isinstance(condition, (int, float)) \
            or not 1.0 <= condition <= 1e6:
        raise ValueError(f"quadratic: condition must be a number between 1 and 1e6, got "
                         f"{condition!r}")
    if isinstance(angle, bool) or not isinstance(angle, (int, float)) \
            or not math.isfinite(angle):
        raise ValueError(f"quadratic: angle must be a finite number of degrees, got {angle!r}")
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    k = float(condition)

    def f(x: Any, y: Any) -> Any:
        if angle == 0:
            return (x ** 2 + k * y ** 2) / 2
        u, v = c * x + s * y, -s * x + c * y
        return (u ** 2 + k * v ** 2) / 2

    formula = (f"(x^2 + {k:g} y^2) / 2" if not angle
               else f"(u^2 + {k:g} v^2) / 2, axes u, v turned {angle:g} degrees")
    return TestFunction("quadratic", formula, f,
                        start=(-4.0, 2.0), extent=(-5.0, 5.0, -3.0, 3.0),
                        minima=((0.0, 0.0),), log_scale=k >= 100,
                        note=f"curvatures 1 and {k:g}: one step size cannot suit both")


beale = TestFunction(
    "beale", "(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
    lambda x, y: ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
                  + (2.625 - x + x * y ** 3) ** 2),
    start=(1.0, 1.4), extent=(-4.5, 4.5, -4.5, 4.5), minima=((3.0, 0.5),), log_scale=True,
    note="flat plateaus and steep ridges: gradients from tiny to huge")

himmelblau = TestFunction(
    "himmelblau", "(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
    lambda x, y: (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2,
    start=(0.0, 0.0), extent=(-5.0, 5.0, -5.0, 5.0),
    minima=((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
            (3.584428, -1.848126)), log_scale=True,
    note="four minima of equal depth: which one a method finds depends on its path")

rastrigin = TestFunction(
    "rastrigin", "20 + x^2 + y^2 - 10 (cos 2 pi x + cos 2 pi y)",
    lambda x, y: (20 + x ** 2 + y ** 2 - 10 * (autodiff.cos(2 * math.pi * x)
                                               + autodiff.cos(2 * math.pi * y))),
    start=(3.3, -2.7), extent=(-5.12, 5.12, -5.12, 5.12), minima=((0.0, 0.0),),
    note="a bowl covered in local minima: gradient methods stop in the nearest one")

#: The functions by name; "quadratic" is the default-conditioned one (see `get` for others).
FUNCTIONS: dict[str, TestFunction] = {f.name: f for f in (
    rosenbrock, saddle, quadratic(), beale, himmelblau, rastrigin)}


def get(name: str, condition: float = 10.0) -> TestFunction:
    """The test function `name`; `condition` sets the quadratic's condition number."""
    if name == "quadratic":
        return quadratic(condition)
    if not isinstance(name, str) or name not in FUNCTIONS:
        raise ValueError(f"testfunctions.get: unknown test function {name!r}; choose one of "
                         f"{', '.join(FUNCTIONS)}")
    return FUNCTIONS[name]
