"""The demo command end to end, with few steps, into a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the demo draws with matplotlib (pip install .[demo])")
pytest.importorskip("tqdm", reason="the demo shows a tqdm progress bar (pip install .[demo])")

import nn  # noqa: E402
from nn import demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_outputs(out: Path) -> None:
    for name in ("decision_boundary.png", "training_curves.png", "grad_flow.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 10_000, name
    svg = ET.parse(out / "loss_graph.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(list(svg.iter())) > 50  # a real drawing, not an empty canvas
    assert isinstance(nn.load(out / "model.json"), nn.MLP)


def test_demo_command_end_to_end(tmp_path):
    # Exactly what the README's first command runs, shortened with --steps.
    out = tmp_path / "out"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-m", "nn.demo", "--steps", "3", "--samples", "30", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    check_outputs(out)
    for name in ("decision_boundary.png", "training_curves.png", "loss_graph.svg"):
        assert str(out / name) in result.stdout  # the demo says where it wrote each file
    assert "training: 100%" in result.stderr  # the progress bar ran to the end
    assert "acc=" in result.stderr and "loss=" in result.stderr


def test_demo_multiclass_with_adam(tmp_path, capsys):
    assert demo.main(["--dataset", "blobs", "--optimizer", "adam", "--steps", "2",
                      "--samples", "24", "--hidden", "8", "--out", str(tmp_path),
                      "--no-progress"]) == 0
    check_outputs(tmp_path)
    text = capsys.readouterr().out
    assert "blobs: 24 points, 3 classes" in text and "cross-entropy" in text
    assert nn.load(tmp_path / "model.json").config()["nouts"] == [8, 3]


def test_demo_falls_back_to_dot_text_without_graphviz(tmp_path, capsys, monkeypatch):
    graphviz = pytest.importorskip("graphviz")

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Digraph, "render", missing)
    assert demo.main(["--steps", "1", "--samples", "10", "--hidden", "4", "--out",
                      str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "loss_graph.dot").read_text().startswith("digraph")
    assert "Graphviz's `dot` program is missing" in capsys.readouterr().out


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        demo.parse_args(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--dataset", "--samples", "--noise", "--optimizer", "--lr", "--steps",
                   "--hidden", "--l2", "--seed", "--out", "--no-progress"):
        assert option in text
    assert "moons" in text and "adam 0.05" in text and "(default: 1337)" in text


def test_defaults_are_micrographs_set_up():
    args = demo.parse_args([])
    assert (args.dataset, args.samples, args.optimizer, args.steps, args.hidden, args.l2) == \
        ("moons", 100, "sgd", 100, [16, 16], 1e-4)
    assert args.lr is None and demo.OPTIMIZERS["sgd"][1] == 1.0


@pytest.mark.parametrize("argv", [["--hidden", "16,0"], ["--hidden", "a,b"], ["--steps", "0"],
                                  ["--dataset", "mnist"], ["--optimizer", "newton"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        demo.parse_args(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_learning_rate_follows_micrograds_schedule():
    # micrograd: lr = 1.0 - 0.9 * k / 100 at step k
    from nn.data import make_moons
    from nn.layers import MLP
    from nn.losses import hinge
    from nn.optim import SGD
    from nn.schedules import LinearLR

    X, y = make_moons(8, seed=0, labels="pm1")
    model = MLP(2, [4, 1], seed=0)
    opt = SGD(model.parameters(), lr=1.0)
    schedule = LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=100)
    history = demo.train(model, X, y, hinge, opt, schedule, steps=5, l2=1e-4, progress=False)
    assert history["lr"] == pytest.approx([1.0 - 0.9 * k / 100 for k in range(5)], abs=1e-12)
    assert len(history["loss"]) == len(history["accuracy"]) == 5
