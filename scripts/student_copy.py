"""Write the student copies of the course: the notebooks without the exercise solutions.

    python scripts/student_copy.py OUT [NOTEBOOK ...]

In the repository each exercise has an answer cell tagged `solution`, filled with the reference
answer (so the test suite can run the notebook top to bottom), then a cell of `assert`s that
checks the answer, then the solution explained in a `<details><summary>Solution</summary>` block.
A student copy keeps the exercise and its checks, empties each answer cell (leaving a comment
that names what to define) and drops the explained solutions, so "Run All" stops at the first
check until the student has written that answer. Nothing else changes, and the repository's
notebooks are only read. Without NOTEBOOK arguments, every notebook in notebooks/ is copied.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"
# A whole <details> block whose summary is "Solution" (the explained answer).
SOLUTION_BLOCK = re.compile(r"<details>\s*<summary>\s*Solution\b.*?</details>\s*",
                            re.DOTALL | re.IGNORECASE)


def defined_names(source: str) -> list[str]:
    """The names an answer defines at top level (assignments, functions, classes), in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []

    def add(target: ast.AST) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and node.id not in names:
                names.append(node.id)

    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in getattr(stmt, "targets", None) or [stmt.target]:
                add(target)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if stmt.name not in names:
                names.append(stmt.name)
    return names


def answer_cell(cell: dict) -> dict:
    """The empty answer cell that replaces a solution cell."""
    names = defined_names("".join(cell["source"]))
    what = ", ".join(f"`{n}`" for n in names) if names else "your answer"
    metadata = {k: v for k, v in cell.get("metadata", {}).items() if k not in ("jupyter", "tags")}
    tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != SOLUTION_TAG]
    metadata["tags"] = [*tags, ANSWER_TAG]
    return {"cell_type": "code", "execution_count": None, "id": cell.get("id"),
            "metadata": metadata, "outputs": [],
            "source": [f"# Your answer: define {what}, then run the check below.\n"]}


def student_notebook(notebook: dict) -> tuple[dict, int]:
    """The notebook without its solutions; also returns how many answer cells were emptied."""
    cells, emptied = [], 0
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and SOLUTION_TAG in tags:
            cells.append(answer_cell(cell))
            emptied += 1
            continue
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            stripped = SOLUTION_BLOCK.sub("", text)
            if stripped != text:
                if not stripped.strip():
                    continue  # the cell was only the explained solution
                cell = {**cell, "source": stripped.splitlines(keepends=True)}
        if cell["cell_type"] == "code":
            cell = {**cell, "outputs": [], "execution_count": None}
        cells.append({k: v for k, v in cell.items() if not (k == "id" and v is None)})
    for cell in cells:
        if cell.get("id") is None:
            cell.pop("id", None)
    return {**notebook, "cells": cells}, emptied


def write_copies(out: Path, notebooks: list[Path]) -> list[tuple[Path, int]]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        copy, emptied = student_notebook(notebook)
        target = out / path.name
        if target.resolve() == path.resolve():
            raise SystemExit(f"student_copy: refusing to overwrite the original {path}")
        target.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        written.append((target, emptied))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the student copies into")
    parser.add_argument("notebooks", type=Path, nargs="*",
                        help="notebooks to copy (default: every notebook in notebooks/)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        print(f"student_copy: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for target, emptied in write_copies(args.out, notebooks):
        print(f"{target}: {emptied} answer cell(s) to fill in")
    return 0


if __name__ == "__main__":
    sys.exit(main())
