"""scripts/setup.sh, run in a copy of the checkout's metadata: what it refuses to do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("dot") is None,
    reason="needs bash, and Graphviz's dot (without it the script would install it first)")


def test_setup_refuses_to_repoint_an_environment_linked_from_elsewhere(tmp_path):
    other = tmp_path / "other-checkout" / ".venv"
    (other / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    python = other / "bin" / "python"  # a stand-in that records how it was called
    python.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    python.chmod(0o755)
    (other / ".chainrule-installed").write_text("an older set-up\n")
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "setup.cfg", "pyproject.toml"):
        shutil.copy(ROOT / name, clone / name)
    (clone / ".venv").symlink_to(other)
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=clone, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "is a link to" in done.stdout and "rm .venv" in done.stdout
    assert not calls.exists()  # nothing was installed into the other checkout's environment
    assert (other / ".chainrule-installed").read_text() == "an older set-up\n"
