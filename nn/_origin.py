"""Is the `nn` package Python imported chainrule's? A clear error when it is not.

`nn` is a short name that other distributions use too: installing one of them into chainrule's
environment (on PyPI, the unrelated `nn` 0.1.1, a TensorFlow wrapper) writes its own
`nn/__init__.py` over chainrule's, and uninstalling it deletes that file again, leaving an empty
namespace package; a folder called `nn` earlier on `sys.path` hides chainrule's in the same way.
chainrule's own modules then still import, and the first thing they need from `nn` fails with a
message that names neither chainrule nor the cause. So chainrule's `nn/__init__.py` marks its
package (`__chainrule__ = True`), and `nn._checks`, which nearly every module of `nn` imports
first, calls `check()`: when the package is not marked, the import stops here with an
ImportError that says what happened and how to fix it.
"""

from __future__ import annotations

import sys
from types import ModuleType


def where(package: ModuleType) -> str:
    """Where the package Python imported as `nn` lives."""
    if getattr(package, "__file__", None):
        return str(package.__file__)
    paths = list(getattr(package, "__path__", []))
    return (f"a namespace package with no __init__.py, in {', '.join(map(str, paths))}"
            if paths else repr(package))


def owners() -> list[str]:
    """The installed distributions that declare a top-level package called `nn`."""
    try:
        from importlib.metadata import packages_distributions

        return sorted(set(packages_distributions().get("nn", [])))
    except Exception:  # metadata is a courtesy here: never hide the real message behind it
        return []


def message(package: ModuleType) -> str:
    dists = [d for d in owners() if d.lower() != "chainrule"]
    by = (f" It was installed by the distribution(s) {', '.join(dists)}, which also install a "
          "package called `nn`." if dists else "")
    return (
        f"the `nn` package Python imported ({where(package)}) is not chainrule's `nn`.{by} "
        "Two distributions that install the same top-level name overwrite each other's files "
        "(on PyPI, the unrelated `nn` distribution does this to chainrule), and a folder or "
        "file called `nn` in the current directory hides chainrule's. The fix: one virtual "
        "environment per project. Install chainrule into an environment of its own "
        "(python -m venv chainrule-env), or repair this one with `pip uninstall nn` and then "
        "`pip install --force-reinstall chainrule` (`pip install -e .` in a clone).")


def check() -> None:
    """Raise ImportError unless `sys.modules["nn"]` is chainrule's package."""
    package = sys.modules.get("nn")
    if package is not None and not getattr(package, "__chainrule__", False):
        raise ImportError("chainrule: " + message(package), name="nn")
