"""Input features: what the network sees of a point (x1, x2) of the plane.

By default the network's inputs are the point's two coordinates. As in TensorFlow Playground,
a session can give it more: x1^2, x2^2, x1*x2, sin x1, sin x2. With x1^2 and x2^2 a single
linear neuron can draw a circle, which is the lesson: a good representation can replace depth.
The features are computed here, in Python, once per point; the page only shows them.

    >>> features_of(["x1", "x2", "x1x2"], [2.0, -3.0])
    [2.0, -3.0, -6.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

__all__ = ["FEATURES", "features_of", "feature_columns"]

#: Every feature by its URL name: (its label on the page, its value at the point (x1, x2)).
FEATURES: dict[str, tuple[str, Callable[[float, float], float]]] = {
    "x1": ("x1", lambda x1, x2: x1),
    "x2": ("x2", lambda x1, x2: x2),
    "x1sq": ("x1²", lambda x1, x2: x1 * x1),
    "x2sq": ("x2²", lambda x1, x2: x2 * x2),
    "x1x2": ("x1·x2", lambda x1, x2: x1 * x2),
    "sinx1": ("sin x1", lambda x1, x2: math.sin(x1)),
    "sinx2": ("sin x2", lambda x1, x2: math.sin(x2)),
}


def features_of(names: Sequence[str], point: Sequence[float]) -> list[float]:
    """The network's inputs for one point of the plane: one number per feature in `names`."""
    x1, x2 = point
    return [FEATURES[name][1](x1, x2) for name in names]


def feature_columns(names: Sequence[str], xs: Sequence[float],
                    ys: Sequence[float]) -> list[list[float]]:
    """The features over many points at once, one column per feature (the frame's pictures)."""
    return [[FEATURES[name][1](x1, x2) for x1, x2 in zip(xs, ys)] for name in names]
