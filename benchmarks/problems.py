"""The benchmark problems, defined once and free of any engine: data, weights, sizes, repeats.

Every engine is handed exactly the same numbers from here: the same moons points, the same
starting weights, the same chain and the same wide-graph inputs. That is what makes the results
comparable, and what lets the runner check that all engines computed the same loss and gradients.
Nothing here imports an autograd engine.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: micrograd's demo network: 2 inputs, two hidden ReLU layers of 16, one linear output.
SIZES = (2, 16, 16, 1)
#: The demo's L2 penalty on the weights.
ALPHA = 1e-4
#: The deep chain is `x = x * CHAIN_SCALE + CHAIN_SHIFT`, repeated; its fixed point is 1.
CHAIN_SCALE, CHAIN_SHIFT = 0.999, 0.001
#: Chain lengths tried for "the largest N that works under the default recursion limit".
CHAIN_PROBES = (1_000, 10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Config:
    """Sizes and repeat counts: the full run, or a quick one that only shows the suite works."""

    quick: bool = False

    @property
    def points(self) -> int:
        """Moons points in the demo step (micrograd's demo uses 100)."""
        return 8 if self.quick else 100

    @property
    def chain_n(self) -> int:
        """Chain length at which time per node is measured."""
        return 1_000 if self.quick else 100_000

    @property
    def chain_probes(self) -> tuple[int, ...]:
        return CHAIN_PROBES[:2] if self.quick else CHAIN_PROBES

    @property
    def wide_n(self) -> int:
        """Number of products in the wide graph."""
        return 1_000 if self.quick else 100_000

    @property
    def draw_sizes(self) -> tuple[int, ...]:
        """Moons points per drawn graph: about 1k, 10k and 65k nodes with the demo's model."""
        return (1,) if self.quick else (1, 15, 100)

    def repeats(self, workload: str, engine: str) -> int:
        """How many timed repetitions; the slow engines get fewer in the full run."""
        if self.quick:
            return 2
        slow = engine in ("micrograd", "torch")
        return {"w1": 5 if slow else 10, "w2": 3, "w3": 5}.get(workload, 3)


def moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[list[list[float]], list[int]]:
    """Two interleaving half circles with Gaussian noise, labels -1 (upper) and +1 (lower).

    The same shape as scikit-learn's `make_moons`, generated here with a seeded `random.Random`
    so that the suite needs no scikit-learn and every engine sees identical points.
    """
    rng = random.Random(seed)
    upper = n // 2
    points, labels = [], []
    for i in range(n):
        if i < upper:
            t = math.pi * i / max(upper - 1, 1)
            x, y, label = math.cos(t), math.sin(t), -1
        else:
            t = math.pi * (i - upper) / max(n - upper - 1, 1)
            x, y, label = 1.0 - math.cos(t), 0.5 - math.sin(t), 1
        points.append([x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise)])
        labels.append(label)
    return points, labels


def initial_weights(seed: int = 1337) -> list[list[list[float]]]:
    """Starting weights for the demo MLP: `weights[layer][neuron]` is that neuron's inputs'
    weights followed by its bias.

    As in micrograd: weights uniform in [-1, 1], biases 0, and the flat parameter order
    (layer by layer, neuron by neuron, weights then bias) is the order of `flat(weights)`.
    """
    rng = random.Random(seed)
    return [
        [[rng.uniform(-1.0, 1.0) for _ in range(nin)] + [0.0] for _ in range(nout)]
        for nin, nout in zip(SIZES[:-1], SIZES[1:])
    ]


def flat(weights: list[list[list[float]]]) -> list[float]:
    """The parameters of `initial_weights()` in micrograd's order."""
    return [w for layer in weights for neuron in layer for w in neuron]


def learning_rate(step: int) -> float:
    """micrograd's demo schedule: 1.0 decaying linearly to 0.1 over 100 steps."""
    return 1.0 - 0.9 * step / 100


def wide_inputs(n: int, seed: int = 2) -> tuple[list[float], list[float]]:
    """The two factor lists of the wide graph `sum_i a_i * b_i`."""
    rng = random.Random(seed)
    return [rng.uniform(-1.0, 1.0) for _ in range(n)], [rng.uniform(-1.0, 1.0) for _ in range(n)]


def pairwise_sum(xs: list):
    """Add neighbours until one value is left: a balanced tree of depth log2(n), not a chain.

    Works on anything with `+`, so every engine builds exactly the same additions.
    """
    while len(xs) > 1:
        pairs = [xs[i] + xs[i + 1] for i in range(0, len(xs) - 1, 2)]
        if len(xs) % 2:
            pairs.append(xs[-1])
        xs = pairs
    return xs[0]


def sample(values: list, count: int = 50) -> list:
    """About `count` evenly spaced items: what the runner compares when a list is too long."""
    step = max(1, len(values) // count)
    return values[::step]
