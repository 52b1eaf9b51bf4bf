"""The options of a drawing and its colours: what is shown, number formats, the grad scale.

`DrawOptions` checks a drawing's keyword arguments once; every later step reads them. Gradient
magnitudes span many orders of magnitude, so the one idea here is that colours follow
log10 |grad| over the range the graph actually has (`GradScale`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

NumberFormat = str | Callable[[float], str]

SHOW_FIELDS = ("label", "name", "data", "grad")
DEFAULT_SHOW = ("label", "data", "grad")
DEFAULT_MAX_NODES = 500
# With a model, past this many Values each neuron is drawn as one box: one sample through
# MLP(2, [16, 16, 1]) is 443 Values, far too tall to read node by node.
DEFAULT_MAX_NODES_MODEL = 150
COLLAPSE_MODES = ("auto", "repeats", "clusters")


class DrawOptions:
    """The validated options of one drawing, read by every step that builds it."""

    def __init__(
        self,
        rankdir: str = "LR",
        show: Iterable[str] = DEFAULT_SHOW,
        fmt: NumberFormat = ".4g",
        colour: bool = True,
        legend: bool = True,
        clusters: bool = True,
        max_nodes: int | None | str = "auto",
        collapse: str = "auto",
        title: str | None = None,
        html_ids: bool = False,
    ) -> None:
        if rankdir not in ("LR", "TB", "RL", "BT"):
            raise ValueError(f"to_dot(rankdir={rankdir!r}): use 'LR' (left to right) or 'TB'")
        show = (show,) if isinstance(show, str) else tuple(show)
        unknown = [s for s in show if s not in SHOW_FIELDS]
        if unknown:
            raise ValueError(f"to_dot(show=...) got unknown field(s) {unknown}; use {SHOW_FIELDS}")
        if max_nodes != "auto" and max_nodes is not None and (
            isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1
        ):
            raise ValueError(
                f"to_dot(max_nodes={max_nodes!r}) needs a positive int, None or 'auto'"
            )
        if collapse not in COLLAPSE_MODES:
            raise ValueError(f"to_dot(collapse={collapse!r}): use one of {COLLAPSE_MODES}")
        self.rankdir = rankdir
        self.show = show
        self.number = formatter(fmt)
        self.colour = bool(colour)
        self.legend = bool(legend)
        self.clusters = bool(clusters)
        self.max_nodes = max_nodes
        self.collapse = collapse
        self.title = title
        # to_html: no node tooltips, so that the page's script sees each cell of a box
        self.html_ids = html_ids

    def node_limit(self, has_clusters: bool) -> int | None:
        """max_nodes, with "auto" resolved: 150 for a drawing of a model's clusters, else 500."""
        if self.max_nodes != "auto":
            return self.max_nodes
        return DEFAULT_MAX_NODES_MODEL if has_clusters and self.clusters else DEFAULT_MAX_NODES

# Box fills, from light (tiny gradient) to dark red (large gradient): ColorBrewer YlOrRd without
# its two palest stops, which can hardly be told from white.
PALETTE = (
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
)
# Edges are thin lines on white, so they need more contrast than a filled box: the same hues,
# darkened where needed so that every colour of the scale has at least 3:1 contrast with white
# (the WCAG minimum for graphics). The legend shows both.
EDGE_PALETTE = (
    "#b8860b",
    "#c7700e",
    "#d9531a",
    "#e0301f",
    "#cb1420",
    "#a80026",
    "#800026",
)
ZERO_FILL = "#d9d9d9"  # an exactly-zero gradient: grey, not the palest colour of the scale
NONFINITE_FILL = "#ff00ff"  # nan or inf: impossible to miss
DEAD_FILL = "#404040"  # a ReLU whose input is <= 0 passes no gradient back
UNKNOWN_FILL = "#ffffff"

ROLE_HEADER = {  # background of a node's title row, by the role its Value plays
    "output": "#1f4e79",
    "parameter": "#cfe2ff",
    "input": "#d4edda",
    "constant": "#eeeeee",
    "value": "#ffffff",
}
ROLE_BORDER = {
    "output": "#1f4e79",
    "parameter": "#3a6fb0",
    "input": "#2e7d32",
    "constant": "#9e9e9e",
    "value": "#555555",
}

# Largest number of decades the colour scale spans; smaller gradients get the palest colour.
MAX_DECADES = 6


# ---- numbers ------------------------------------------------------------------------------------


def formatter(fmt: NumberFormat) -> Callable[[float], str]:
    """Turn a format spec (".4g") or a callable into a function float -> str."""
    if callable(fmt):
        return fmt
    if not isinstance(fmt, str):
        raise TypeError(
            f"to_dot(fmt=...) needs a format spec like '.4g' or a callable, got {fmt!r}"
        )
    try:
        format(1.5, fmt)
    except ValueError:
        raise ValueError(f"to_dot(fmt={fmt!r}) is not a valid float format spec") from None
    return lambda x: format(x + 0.0, fmt)  # + 0.0 turns -0.0 into 0.0: no "grad -0"


# ---- the gradient colour scale ------------------------------------------------------------------


@dataclass(frozen=True)
class GradScale:
    """Maps |grad| to a colour: log10 |grad| between decades `low` and `high` spans the palette."""

    low: int
    high: int

    @classmethod
    def fit(cls, magnitudes: Iterable[float]) -> GradScale:
        """The decades covering the nonzero finite magnitudes (at most MAX_DECADES of them)."""
        smallest, largest = math.inf, 0.0
        for m in magnitudes:
            if m > 0 and math.isfinite(m):
                smallest = min(smallest, m)
                largest = max(largest, m)
        if largest == 0.0:
            return cls(-1, 0)
        high = math.ceil(math.log10(largest))
        low = max(math.floor(math.log10(smallest)), high - MAX_DECADES)
        if low >= high:
            low = high - 1
        return cls(low, high)

    def position(self, magnitude: float) -> float:
        """Where a magnitude falls on the scale, from 0 (palest) to 1 (darkest)."""
        t = (math.log10(magnitude) - self.low) / (self.high - self.low)
        return min(1.0, max(0.0, t))

    def colour(self, grad: float) -> str:
        """Fill colour for a gradient: palette by log |grad|, grey for 0, magenta for nan/inf."""
        if not math.isfinite(grad):
            return NONFINITE_FILL
        if grad == 0.0:
            return ZERO_FILL
        return interpolate(self.position(abs(grad)))

    def edge_colour(self, grad: float) -> str:
        """Line colour for a gradient flowing along an edge: `colour`'s scale, darker at the low
        end so that even the smallest gradient's edge reads on white."""
        if not math.isfinite(grad):
            return NONFINITE_FILL
        if grad == 0.0:
            return ZERO_FILL
        return interpolate(self.position(abs(grad)), EDGE_PALETTE)

    def pen_width(self, grad: float) -> float:
        """Edge thickness: 1 for tiny or zero gradients, up to 3.5 for the largest."""
        if grad == 0.0 or not math.isfinite(grad):
            return 1.0
        return round(1.0 + 2.5 * self.position(abs(grad)), 2)

    def ticks(self) -> list[tuple[str, float]]:
        """(text, magnitude) for the legend: one swatch per decade boundary."""
        step = max(1, (self.high - self.low + 5) // 6)  # at most about six swatches
        exps = list(range(self.low, self.high + 1, step))
        if exps[-1] != self.high:
            exps.append(self.high)
        return [(f"1e{e}", 10.0**e) for e in exps]


def interpolate(t: float, palette: tuple[str, ...] = PALETTE) -> str:
    """The palette colour at position t in [0, 1], linearly interpolated between stops."""
    return _interpolate(round(t * 1000), palette)  # a thousand shades: more than eyes can tell


@functools.lru_cache(maxsize=2048)
def _interpolate(step: int, palette: tuple[str, ...]) -> str:
    t = step / 1000
    x = t * (len(palette) - 1)
    i = min(int(x), len(palette) - 2)
    frac = x - i
    a, b = _rgb(palette[i]), _rgb(palette[i + 1])
    r, g, bl = (round(a[k] + (b[k] - a[k]) * frac) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def text_colour(fill: str) -> str:
    """Black or white, whichever reads better on `fill` (by relative luminance)."""
    r, g, b = _rgb(fill)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 140 else "#ffffff"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
