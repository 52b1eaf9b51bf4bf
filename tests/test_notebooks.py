"""Checks on the teaching notebooks as files: committed clean, and wired into the test run.

The notebooks themselves are executed by nbmake (one test item per notebook, see setup.cfg);
their `assert`s carry the checks. This module checks what nbmake cannot: that a committed
notebook holds no outputs or execution counts (so diffs stay readable and nothing stale is
shown), that it opens by saying what the reader will learn, that it ends with exercises whose
answers are asserted, that the course is numbered without gaps, that the kernel it names runs in
this environment, and that the README's tour lists every notebook.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the test extra")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        f"cell {i}: {'outputs' if cell.get('outputs') else 'execution_count'}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name} was saved with outputs; clear them (JupyterLab: Edit > Clear Outputs of "
        f"All Cells, then save) before committing: {', '.join(dirty)}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_valid_and_opens_with_what_you_will_learn(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        f"{path.name} must open with a markdown title"
    )
    assert "what you will learn" in first.source.lower(), (
        f"{path.name}: the first cell must say what the reader will learn"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checks_its_claims(path: Path):
    """Running a notebook is a test only if its cells assert something."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert len(re.findall(r"^\s*assert ", code, flags=re.M)) >= 3, path.name


def test_kernel_runs_this_python():
    """nbmake starts the kernel the notebooks name, "python3": it must be this interpreter."""
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    # jupyter_client runs a bare "python"/"python3" as sys.executable of the caller.
    major, minor = sys.version_info[:2]
    bare = {"python", f"python{major}", f"python{major}.{minor}"}
    assert exe in bare or os.path.realpath(exe) == os.path.realpath(sys.executable), (
        f"the python3 kernel ({spec.resource_dir}) runs {exe}, not {sys.executable}"
    )


def test_pytest_runs_the_notebooks(pytestconfig):
    assert "notebooks" in pytestconfig.getini("testpaths")
    assert pytestconfig.getoption("nbmake"), "setup.cfg's addopts must pass --nbmake"


def test_readme_tour_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if p.stem not in readme]
    assert not missing, f"README.md's notebook tour does not mention {missing}"


def test_notebooks_are_numbered_in_order():
    """The course is read in order: 01, 02, ... with no gap and no number used twice. A notebook
    that goes deeper into the one before it takes that number and a letter (02b after 02, then
    02c), so the numbers the notebooks use for each other stay right."""
    parts = {p.name: re.match(r"(\d\d)([b-z]?)_", p.name) for p in NOTEBOOKS}
    assert all(parts.values()), [name for name, m in parts.items() if not m]
    numbered = [(int(m.group(1)), m.group(2)) for m in parts.values()]
    plain = [n for n, letter in numbered if not letter]
    assert plain == list(range(1, len(plain) + 1)), plain
    for n, letter in numbered:
        if letter:
            before = chr(ord(letter) - 1) if letter > "b" else ""
            assert (n, before) in numbered, f"{n:02d}{letter} needs {n:02d}{before} before it"
    titles = {name: nbformat.read(ROOT / "notebooks" / name, as_version=4).cells[0].source
              .split(".", 1)[0] for name in parts}
    wrong = {name: title for name, title in titles.items()
             if title != f"# {int(parts[name].group(1))}{parts[name].group(2)}"}
    assert not wrong, f"a notebook's title must carry its own number: {wrong}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_exercises(path: Path):
    """Each notebook ends with 2-4 exercises: a hidden answer cell the test run executes, a cell
    of asserts it must pass, and the solution hidden in <details>."""
    nb = nbformat.read(path, as_version=4)
    starts = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
              and re.search(r"^## Exercises", cell.source, flags=re.M)]
    assert starts, f"{path.name} has no '## Exercises' section"
    rest = nb.cells[starts[-1]:]
    solutions = sum(cell.source.count("<details>") for cell in rest if cell.cell_type == "markdown")
    assert 2 <= solutions <= 4, f"{path.name}: {solutions} hidden solutions, expected 2-4"
    checks = [cell for cell in rest if cell.cell_type == "code"
              and re.search(r"^\s*assert ", cell.source, flags=re.M)]
    assert checks, f"{path.name}: no exercise checks its answer with an assert"
    # Each exercise's answer is a code cell the test run executes (tagged "solution", its input
    # collapsed), followed by the cell of asserts it must pass.
    answers = [i for i, cell in enumerate(rest) if cell.cell_type == "code"
               and "solution" in cell.metadata.get("tags", [])]
    assert len(answers) == solutions, (
        f"{path.name}: {solutions} solutions but {len(answers)} answer cells tagged 'solution'")
    for i in answers:
        assert rest[i].metadata.get("jupyter", {}).get("source_hidden"), (
            f"{path.name}: an answer cell must have its input collapsed (jupyter.source_hidden)")
        after = rest[i + 1] if i + 1 < len(rest) else None
        assert after is not None and after.cell_type == "code" and re.search(
            r"^\s*assert ", after.source, flags=re.M), (
            f"{path.name}: the answer cell {rest[i].get('id')} is not followed by its asserts")
