"""Imports go one way: no module of `autodiff` or `nn` reaches itself through its imports.

The graph is read from the source with `ast`, so every import counts, also one inside a function
(a lazy import that closes a circle is still a circle: the two modules cannot be read, tested or
replaced apart). `from package import name` counts as an import of the submodule when `name` is
one, otherwise of the package's `__init__`. Importing a submodule also runs its parent package's
`__init__`, but that step is Python's, not the module's, so it is not an edge here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autodiff", "nn")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """{dotted module name: file} for every module of the packages, `__init__` as the package."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name a (possibly relative) `from ... import` refers to."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()  # a module's relative imports start from its package
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, source: str, modules: set[str], is_package: bool) -> set[str]:
    """The modules of `modules` that the module `name` with this source imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node.module, node.level, name, is_package)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    # `import a.b.c` names a.b.c (the deepest module we know of).
    resolved = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imports_of(name, path.read_text(encoding="utf-8"), set(files),
                             path.name == "__init__.py")
            for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each module that can reach itself, as a list [m, ..., m]."""
    out, reported = [], set()
    for start in sorted(graph):
        if start in reported:
            continue
        # breadth first from start's imports; the first path back to start is a shortest circle
        came_from: dict[str, str] = {}
        todo = [start]
        while todo and start not in came_from:
            nxt = []
            for node in todo:
                for other in sorted(graph[node]):
                    if other not in came_from:
                        came_from[other] = node
                        nxt.append(other)
            todo = nxt
        if start in came_from:
            path, node = [start], came_from[start]
            while node != start:
                path.append(node)
                node = came_from[node]
            path.append(start)
            path.reverse()
            out.append(path)
            reported.update(path)
    return out


def test_no_module_of_autodiff_or_nn_imports_itself_round_a_circle():
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_autodiff_never_imports_nn():
    graph = import_graph()
    offenders = {name: sorted(t for t in targets if t.split(".")[0] == "nn")
                 for name, targets in graph.items() if name.split(".")[0] == "autodiff"}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_graph_sees_what_the_packages_import():
    # The checker must see real edges, or the tests above would pass on an empty graph.
    graph = import_graph()
    assert "autodiff" in graph["nn.layers"]
    assert "nn.module" in graph["nn.layers"]
    assert "autodiff.viz" in graph["autodiff"]


@pytest.mark.parametrize("source, expected", [
    ("import pkg.b", {"pkg.b"}),
    ("from pkg import b", {"pkg.b"}),
    ("from pkg.b import thing", {"pkg.b"}),
    ("from pkg import thing", {"pkg"}),
    ("from . import b", {"pkg.b"}),
    ("from .b import thing", {"pkg.b"}),
    ("from .sub.c import thing", {"pkg.sub.c"}),
    ("def f():\n    from pkg.b import thing\n", {"pkg.b"}),  # a lazy import counts
    ("import os\nfrom json import dumps", set()),
])
def test_imports_are_resolved_to_modules(source, expected):
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"}
    assert imports_of("pkg.a", source, modules, is_package=False) == expected


def test_a_lazy_circle_is_found(tmp_path):
    # Two modules that import each other, one of them only inside a function, are a circle.
    package = tmp_path / "nn"
    package.mkdir()
    (tmp_path / "autodiff").mkdir()
    (tmp_path / "autodiff" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from nn.high import g\n    return g\n")
    (package / "high.py").write_text("from nn.low import f\n")
    assert circles(import_graph(tmp_path)) == [["nn.high", "nn.low", "nn.high"]]
    (package / "low.py").write_text("x = 1\n")
    assert circles(import_graph(tmp_path)) == []
