"""DOT text to SVG: Graphviz's `dot` program by default, or a renderer set with `use_renderer`.

Every drawing that needs a layout (`to_html`, the playground's Look inside) goes through
`render_svg`, so a place without the `dot` program can lay graphs out another way. The one idea
to understand: a renderer is just a function from DOT text to SVG text. The browser build of the
playground installs Graphviz compiled to WebAssembly (the npm package `@viz-js/viz`) this way,
inside Pyodide, where no program can be started.

    >>> from autodiff.viz.render import use_renderer, render_svg
    >>> use_renderer(lambda dot: '<?xml version="1.0"?><svg>' + str(len(dot)) + '</svg>')
    >>> render_svg("digraph g { a -> b }")
    '<svg>20</svg>'
    >>> use_renderer(None)  # back to the dot program
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

__all__ = ["can_render", "render_svg", "use_renderer"]

_renderer: Callable[[str], str] | None = None


def use_renderer(render: Callable[[str], str] | None) -> None:
    """Lay out DOT text with `render` (DOT text -> SVG text) from now on; None: `dot` again."""
    global _renderer
    if render is not None and not callable(render):
        raise TypeError(f"use_renderer() needs a function or None, got {type(render).__name__}")
    _renderer = render


def can_render() -> bool:
    """Whether `render_svg` can work here: a renderer is installed or `dot` is on the PATH."""
    return _renderer is not None or shutil.which("dot") is not None


def render_svg(dot_text: str) -> str:
    """Lay out DOT text and return the <svg> element (no XML prolog)."""
    if _renderer is not None:
        svg = str(_renderer(dot_text))
    else:
        exe = shutil.which("dot")
        if exe is None:
            raise RuntimeError(
                "laying out a graph needs Graphviz's `dot` program; install Graphviz "
                "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
                "Windows: winget install Graphviz.Graphviz)"
            )
        result = subprocess.run(
            [exe, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"dot failed: {result.stderr.decode('utf-8', 'replace').strip()}")
        svg = result.stdout.decode("utf-8")
    start = svg.find("<svg")
    if start < 0:
        raise RuntimeError(f"the renderer returned no <svg> element: {svg[:80]!r}")
    return svg[start:]
