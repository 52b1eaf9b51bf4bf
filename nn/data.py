"""Small 2-D toy datasets for classification, in pure Python and always seeded.

Each `make_*` function returns `(X, y)`: `X` a list of `[x1, x2]` points (plain floats) and `y`
a list of integer class labels, ready to feed to a model point by point. The one idea to
understand: every function draws from its own `random.Random(seed)`, so the same arguments give
the same points on every machine and run, and the global `random` state is never touched.

    >>> X, y = make_moons(100, noise=0.1, seed=0)
    >>> len(X), X[0] == make_moons(100, noise=0.1, seed=0)[0][0]
    (100, True)
    >>> sorted(set(y)), sorted(set(make_moons(10, labels="pm1")[1]))
    ([0, 1], [-1, 1])

Binary datasets label their classes 0 and 1 by default; `labels="pm1"` gives -1 and +1 instead
(what `nn.losses.hinge` expects). Points are shuffled, so any prefix of the data is a fair mix.

`batches(X, y, batch_size, seed=...)` cuts a dataset into shuffled mini-batches, a new order
each epoch from its own seeded generator; `batch_size=None` gives the whole set as one batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from numbers import Real
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from nn._checks import check_bool, check_int, check_number, check_seed

__all__ = ["make_moons", "make_circles", "make_spirals", "make_xor", "make_blobs", "DATASETS",
           "batches", "Batches"]

Points = list[list[float]]


def make_moons(n: int = 100, noise: float = 0.1, seed: int = 0, *,
               labels: str = "01") -> tuple[Points, list[int]]:
    """Two interleaving half circles: the upper one (class 0) and the lower one (class 1).

    The upper arc is the unit half circle above the origin; the lower one is the same arc
    flipped upside down and moved by (1, 0.5), so that each reaches into the other's bay. `noise` is
    the standard deviation of Gaussian noise added to each coordinate.
    """
    _check_common("make_moons", n, noise, labels)
    rng = random.Random(check_seed("make_moons", seed))
    n_upper = n // 2
    points: list[tuple[list[float], int]] = []
    for t in _spaced(0.0, math.pi, n_upper):
        points.append(([math.cos(t), math.sin(t)], 0))
    for t in _spaced(0.0, math.pi, n - n_upper):
        points.append(([1.0 - math.cos(t), 0.5 - math.sin(t)], 1))
    return _finish(points, rng, noise, labels, binary=True)


def make_circles(n: int = 100, noise: float = 0.05, seed: int = 0, *, factor: float = 0.5,
                 labels: str = "01") -> tuple[Points, list[int]]:
    """A circle of radius 1 (class 0) around a smaller one of radius `factor` (class 1)."""
    _check_common("make_circles", n, noise, labels)
    if isinstance(factor, bool) or not isinstance(factor, Real) or not 0 < factor < 1:
        raise ValueError(f"make_circles: factor must be between 0 and 1, got {factor!r}")
    rng = random.Random(check_seed("make_circles", seed))
    n_outer = n // 2
    points = []
    for radius, count, label in ((1.0, n_outer, 0), (float(factor), n - n_outer, 1)):
        for i in range(count):
            t = 2 * math.pi * i / count
            points.append(([radius * math.cos(t), radius * math.sin(t)], label))
    return _finish(points, rng, noise, labels, binary=True)


def make_spirals(n: int = 150, classes: int = 3, noise: float = 0.2, seed: int = 0, *,
                 labels: str = "01") -> tuple[Points, list[int]]:
    """`classes` spiral arms winding out from the origin, one class per arm.

    Arm k starts at the origin and turns 4 radians (about 230 degrees) while its radius grows
    from 0 to 1, rotated by k/classes of a full turn. `noise` is the standard deviation of the
    Gaussian noise added to each point's angle, so the arms blur into each other as it grows.
    The `n` points are split as evenly as possible between the arms.
    """
    _check_common("make_spirals", n, noise, labels)
    _check_classes("make_spirals", classes, n)
    rng = random.Random(check_seed("make_spirals", seed))
    points = []
    for k in range(classes):
        count = n // classes + (k < n % classes)
        for t in _spaced(0.0, 1.0, count):
            angle = 2 * math.pi * k / classes + 4.0 * t + noise * rng.gauss(0.0, 1.0)
            points.append(([t * math.cos(angle), t * math.sin(angle)], k))
    return _finish(points, rng, 0.0, labels, binary=classes == 2)


def make_xor(n: int = 100, noise: float = 0.0, seed: int = 0, *,
             labels: str = "01") -> tuple[Points, list[int]]:
    """Points uniform in the square [-1, 1]^2, class 1 where exactly one coordinate is positive.

    No straight line separates the classes (a single neuron cannot learn it; one hidden layer
    can). `noise` is added to the points after labelling, so some cross the axes.
    """
    _check_common("make_xor", n, noise, labels)
    rng = random.Random(check_seed("make_xor", seed))
    points = []
    for _ in range(n):
        x1, x2 = rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)
        points.append(([x1, x2], int((x1 > 0) != (x2 > 0))))
    return _finish(points, rng, noise, labels, binary=True)


def make_blobs(n: int = 100, centers: int | Sequence[Sequence[float]] = 3, std: float = 0.4,
               seed: int = 0, *, labels: str = "01") -> tuple[Points, list[int]]:
    """Gaussian clusters, one class per center.

    `centers` is a number of clusters, placed evenly on a circle of radius 2, or a list of
    center points (of any dimension). `std` is each cluster's standard deviation.
    """
    _check_common("make_blobs", n, std, labels, noise_name="std")
    seed = check_seed("make_blobs", seed)
    if isinstance(centers, int) and not isinstance(centers, bool):
        _check_classes("make_blobs", centers, n)
        where = [[2.0 * math.cos(2 * math.pi * k / centers),
                  2.0 * math.sin(2 * math.pi * k / centers)] for k in range(centers)]
    else:
        if isinstance(centers, (str, bytes)) or not isinstance(centers, Sequence) or \
                any(isinstance(c, (str, bytes)) or not isinstance(c, Sequence) for c in centers):
            raise ValueError("make_blobs: centers must be a number of clusters or a list of "
                             f"points, got {centers!r}")
        where = [[check_number("make_blobs", f"centers[{k}][{j}]", c, finite=True)
                  for j, c in enumerate(center)] for k, center in enumerate(centers)]
        if not where or len({len(c) for c in where}) != 1 or not where[0]:
            raise ValueError("make_blobs: centers must be non-empty points of one dimension, "
                             f"got {centers!r}")
        _check_classes("make_blobs", len(where), n)
    rng = random.Random(seed)
    points = []
    for k, center in enumerate(where):
        count = n // len(where) + (k < n % len(where))
        points.extend(([c for c in center], k) for _ in range(count))
    return _finish(points, rng, std, labels, binary=len(where) == 2)


#: Every dataset by name (what the demo's --dataset option offers).
DATASETS = {
    "moons": make_moons,
    "circles": make_circles,
    "spirals": make_spirals,
    "xor": make_xor,
    "blobs": make_blobs,
}


# ---- mini-batches --------------------------------------------------------------------------------

XT = TypeVar("XT")
YT = TypeVar("YT")


class Batches(Generic[XT, YT]):
    """The mini-batches of one dataset: iterate once per epoch, get `(X_batch, y_batch)` pairs.

    Each pass over it is one epoch: every point exactly once, in a new order drawn from the
    object's own `random.Random(seed)`, so a run repeats exactly and the global `random` is never
    touched. With `batch_size=None` (or one at least as big as the dataset) there is one batch,
    the whole set in its own order: the loop is then plain (full-batch) gradient descent, and
    with smaller batches it is stochastic gradient descent (SGD). Make it with `batches(...)`.

        >>> X, y = [[0.0], [1.0], [2.0], [3.0], [4.0]], [0, 1, 0, 1, 0]
        >>> loader = batches(X, y, batch_size=2, seed=0)
        >>> len(loader), loader.kind        # 3 batches per epoch: 2 + 2 + 1 points
        (3, 'SGD')
        >>> epoch = list(loader)
        >>> sorted(x for xb, _ in epoch for x in xb) == X   # every point once
        True
        >>> batches(X, y).kind, len(batches(X, y))
        ('GD', 1)
    """

    def __init__(self, X: Sequence[XT], y: Sequence[YT], batch_size: int | None = None, *,
                 seed: int = 0, shuffle: bool = True, drop_last: bool = False) -> None:
        if len(X) != len(y):
            raise ValueError(f"batches: X has {len(X)} points but y has {len(y)} labels")
        if len(X) == 0:
            raise ValueError("batches: the dataset is empty")
        if batch_size is not None:
            batch_size = check_int("batches", "batch_size", batch_size, 1)
        self.X, self.y = list(X), list(y)
        self.full = batch_size is None or batch_size >= len(self.X)
        self.batch_size = len(self.X) if self.full else int(batch_size)  # type: ignore[arg-type]
        self.shuffle = check_bool("batches", "shuffle", shuffle)
        self.drop_last = check_bool("batches", "drop_last", drop_last)
        self.seed = check_seed("batches", seed)
        self._rng = random.Random(self.seed)

    @property
    def kind(self) -> str:
        """'GD' when every step sees the whole dataset (full batch), else 'SGD'."""
        return "GD" if self.full else "SGD"

    def __len__(self) -> int:
        """Batches per epoch, that is optimizer steps per pass over the data."""
        whole, rest = divmod(len(self.X), self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[list[XT], list[YT]]]:
        order = list(range(len(self.X)))
        if self.shuffle and not self.full:
            self._rng.shuffle(order)        # a new order every epoch, from the seed
        for batch in range(len(self)):
            chosen = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            yield [self.X[i] for i in chosen], [self.y[i] for i in chosen]

    def __repr__(self) -> str:
        size = "full" if self.full else self.batch_size
        return (f"batches({len(self.X)} points, batch_size={size}: {len(self)} per epoch, "
                f"{self.kind})")


def batches(X: Sequence[XT], y: Sequence[YT], batch_size: int | None = None, *, seed: int = 0,
            shuffle: bool = True, drop_last: bool = False) -> Batches[XT, YT]:
    """Shuffled, seeded mini-batches of `(X, y)`: `for Xb, yb in loader:` is one epoch.

    `batch_size=None` is the full batch (gradient descent); a smaller one gives SGD, each epoch
    in a new order from `seed`. `drop_last=True` skips a last batch smaller than the others.
    The same idea as `torch.utils.data.DataLoader(..., shuffle=True)`, for lists.
    """
    return Batches(X, y, batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last)


# ---- helpers -------------------------------------------------------------------------------------


def _spaced(start: float, stop: float, count: int) -> list[float]:
    """`count` evenly spaced numbers from start to stop, both ends included."""
    if count == 1:
        return [start]
    return [start + (stop - start) * i / (count - 1) for i in range(count)]


def _finish(points: list[tuple[list[float], int]], rng: random.Random, noise: float,
            labels: str, binary: bool) -> tuple[Points, list[int]]:
    """Add Gaussian noise, shuffle, and write the labels in the requested style."""
    if noise:
        for x, _ in points:
            for j in range(len(x)):
                x[j] += rng.gauss(0.0, noise)
    rng.shuffle(points)
    X = [x for x, _ in points]
    y = [label for _, label in points]
    if labels == "pm1":
        if not binary:
            raise ValueError(f"labels='pm1' needs two classes, this dataset has {len(set(y))}")
        y = [2 * label - 1 for label in y]
    return X, y


def _check_common(who: str, n: Any, noise: Any, labels: Any, noise_name: str = "noise") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{who}: n must be a positive integer, got {n!r}")
    if isinstance(noise, bool) or not isinstance(noise, Real) or not 0 <= noise < math.inf:
        raise ValueError(f"{who}: {noise_name} must be a non-negative number, got {noise!r}")
    if labels not in ("01", "pm1"):
        raise ValueError(f"{who}: labels must be '01' (classes 0, 1, ...) or 'pm1' (-1 and +1), "
                         f"got {labels!r}")


def _check_classes(who: str, classes: Any, n: int) -> None:
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ValueError(f"{who}: needs at least 2 classes, got {classes!r}")
    if n < classes:
        raise ValueError(f"{who}: n={n} is fewer points than classes ({classes})")
