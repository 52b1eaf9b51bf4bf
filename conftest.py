"""Test-suite set-up shared by every test directory.

Notebooks are run by nbmake as test items; the one that moves a model to PyTorch needs torch,
which is an optional install (CI installs it). Without torch, that notebook is skipped with the
reason and the line to run, instead of failing on its first import.
"""

import importlib.util
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("torch") is not None:
        return
    skip = pytest.mark.skip(reason="needs PyTorch: pip install torch==2.13.0 (CI installs it)")
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" and "import torch" in path.read_text(encoding="utf-8"):
            item.add_marker(skip)
