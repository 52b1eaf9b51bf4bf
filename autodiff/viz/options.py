"""The options of a drawing, checked once: what each box shows, number formats, the node limit.

`DrawOptions` takes the keyword arguments of `to_dot` (and of `to_html`) and rejects bad ones with
a message naming the argument; every later step of a drawing reads them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

NumberFormat = str | Callable[[float], str]

SHOW_FIELDS = ("label", "name", "data", "grad")
DEFAULT_SHOW = ("label", "data", "grad")
DEFAULT_MAX_NODES = 500
# With a model, past this many Values each neuron is drawn as one box: one sample through
# MLP(2, [16, 16, 1]) is about 450 Values, far too tall to read node by node.
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
