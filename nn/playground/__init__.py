"""nn.playground: watch a network learn, live, in the browser, and open any neuron's backprop.

`python -m nn.playground` serves a page (standard library only, every asset shipped with the
package) where a class picks a dataset, a network and an optimizer, presses Play and watches
the decision boundary, the neurons, the weights and the gradients change; clicking a neuron
draws the computation graph of one point's loss. The one idea to understand: the page is only
a view. Training is a `Session` running chainrule in Python, and the page draws the numbers
the Session computes, so a notebook driving `Session` directly gets the very same numbers,
and `show(session)` puts the live page of that very session in a notebook cell. A `Race` runs
several optimizers on one network from the same start (the page's `?runs=` view), a `Surface`
runs them on a 2-D test function you can see (`?surface=`); see docs/race.md.

    >>> from nn.playground import Session
    >>> s = Session(dataset="xor", n=60, hidden=[4], activation="tanh", lr=0.3, seed=1)
    >>> s.step(5)
    >>> s.step_count, len(s.history)
    (5, 6)
"""

from nn.playground.session import Session  # noqa: F401
from nn.playground.settings import OPTIMIZERS, SETTINGS, parse_settings  # noqa: F401
from nn.playground.race import Race  # noqa: F401
from nn.playground.surface import Surface  # noqa: F401
from nn.playground.export import PYODIDE_VERSION, export_site  # noqa: F401

#: The server's names, imported when first asked for: the static site's Web Worker runs this
#: package in the browser, never starts a server, and http.server costs it start-up time.
_FROM_SERVER = ("PlaygroundServer", "main", "serve", "show")


def __getattr__(name: str):
    if name in _FROM_SERVER:
        from nn.playground import server

        return getattr(server, name)
    raise AttributeError(f"module 'nn.playground' has no attribute {name!r}")


__all__ = ["Session", "Race", "Surface", "SETTINGS", "OPTIMIZERS", "parse_settings",
           "PlaygroundServer", "serve", "main", "show", "PYODIDE_VERSION", "export_site"]
