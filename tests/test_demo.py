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
from nn.optim.registry import OPTIMIZERS, build  # noqa: E402

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


def test_demo_without_dot_writes_dot_text_and_counts_its_files(tmp_path):
    # A machine without Graphviz's `dot` (a pip install, say): PATH leads to no program.
    pytest.importorskip("graphviz")
    bin_dir = tmp_path / "empty-bin"
    bin_dir.mkdir()
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "nn.demo", "--steps", "1", "--samples", "10",
         "--hidden", "4", "--no-progress", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": str(bin_dir), "MPLBACKEND": "Agg",
             "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.iterdir())
    # The DOT text instead of the picture, and nothing else: no extensionless source file.
    assert files == ["decision_boundary.png", "grad_flow.png", "loss_graph.dot", "model.json",
                     "training_curves.png"]
    assert (out / "loss_graph.dot").read_text().startswith("digraph")
    assert f"wrote {len(files)} files" in result.stdout
    # The hint speaks to someone who installed a wheel: no script of the repository.
    assert "Graphviz's `dot` program is not installed" in result.stdout
    assert "apt-get install graphviz" in result.stdout and "setup.sh" not in result.stdout


def test_demo_batch_size_is_sgd_and_says_so(tmp_path, capsys):
    assert demo.main(["--steps", "4", "--samples", "20", "--hidden", "4", "--batch-size", "5",
                      "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "mini-batches of 5, 4 steps per pass" in text
    assert "(stochastic gradient descent, SGD)" in text
    assert demo.main(["--steps", "1", "--samples", "20", "--hidden", "4",
                      "--out", str(tmp_path), "--no-progress"]) == 0
    assert "full batch" in capsys.readouterr().out


def test_train_with_mini_batches_steps_on_each_batch_in_turn():
    # With batch_size, step k uses the k-th batch of the seeded shuffle: the same weights as a
    # loop written by hand over nn.data.batches.
    X, y = nn.data.make_moons(12, seed=1, labels="pm1")
    model, twin = nn.MLP(2, [4, 1], seed=2), nn.MLP(2, [4, 1], seed=2)
    opt, twin_opt = nn.SGD(model.parameters(), lr=0.1), nn.SGD(twin.parameters(), lr=0.1)
    history = demo.train(model, X, y, demo.hinge, opt, _NoSchedule(), steps=5, l2=0.0,
                         progress=False, batch_size=5, seed=3)
    loader = nn.data.batches(X, y, 5, seed=3)
    done, sizes = 0, []
    while done < 5:
        for Xb, yb in loader:
            if done == 5:
                break
            loss = demo.hinge([twin(x) for x in Xb], yb)
            twin_opt.zero_grad()
            loss.backward()
            twin_opt.step()
            sizes.append(len(Xb))
            done += 1
    assert sizes == [5, 5, 2, 5, 5]  # 12 points: 3 batches per epoch, then a new epoch
    assert [p.data for p in model.parameters()] == [p.data for p in twin.parameters()]
    assert len(history["loss"]) == 5


class _NoSchedule:
    def step(self) -> None:
        pass


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
    assert args.lr is None and OPTIMIZERS["sgd"].lr == 1.0


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


# ---- without the demo extra, bad numbers, the console script ----------------------------------


def test_no_progress_needs_no_tqdm(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)   # `import tqdm` now fails
    assert demo.main(["--steps", "2", "--samples", "10", "--hidden", "4", "--out",
                      str(tmp_path), "--no-progress"]) == 0
    check_outputs(tmp_path)


def test_without_tqdm_the_demo_says_what_to_install(tmp_path):
    # The real command, in a fresh interpreter whose `import tqdm` fails.
    code = ("import runpy, sys; sys.modules['tqdm'] = None; "
            f"sys.argv = ['nn.demo', '--steps', '1', '--out', {str(tmp_path / 'out')!r}]; "
            "runpy.run_module('nn.demo', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "python -m nn.demo needs tqdm (for the progress bar; --no-progress runs without it)" \
        in result.stderr
    assert demo.INSTALL_DEMO in result.stderr and 'pip install -e ".[demo]"' in result.stderr
    assert not (tmp_path / "out").exists()          # it stopped before training


def test_without_matplotlib_the_demo_says_so_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert demo.main(["--no-progress", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "needs matplotlib (for the charts)" in err and "chainrule[demo]" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["--lr", "-1"], ["--lr", "nan"], ["--noise", "-0.1"],
                                  ["--l2", "inf"], ["--lr", "fast"]])
def test_bad_numbers_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as info:
        demo.parse_args(argv)
    assert info.value.code == 2
    assert "must be a finite number >= 0" in capsys.readouterr().err


def test_too_few_samples_for_the_classes_is_an_error_not_a_traceback(tmp_path, capsys):
    assert demo.main(["--dataset", "spirals", "--samples", "2", "--no-progress",
                      "--out", str(tmp_path)]) == 2
    assert "error: make_spirals: n=2 is fewer points than classes (3)" in capsys.readouterr().err


def test_the_console_script_is_the_demo(monkeypatch, capsys):
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = dict(line.split(" = ") for line in
                   config["options.entry_points"]["console_scripts"].strip().splitlines()
                   if not line.lstrip().startswith("#"))
    module, function = scripts["chainrule-demo"].split(":")
    assert (module, function) == ("nn.demo", "cli") and demo.cli is getattr(demo, function)
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/chainrule-demo", "--help"])
    with pytest.raises(SystemExit) as info:
        demo.cli()
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: chainrule-demo")


def test_version_is_written_once_and_matches_the_installed_metadata():
    import configparser
    from importlib import metadata

    import autodiff

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: autodiff.__version__"
    assert autodiff.__version__ == metadata.version("chainrule")


def test_the_license_file_is_mit_and_packaged():
    import configparser

    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the chainrule authors" in text
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["license_expression"] == "MIT"  # SPDX (PEP 639)
    assert config["metadata"]["license_files"] == "LICENSE"


def test_train_checks_its_flags():
    from nn.data import make_moons
    from nn.layers import MLP
    from nn.optim import SGD
    from nn.schedules import LinearLR

    X, y = make_moons(4, seed=0, labels="pm1")
    model = MLP(2, [2, 1], seed=0)
    opt = SGD(model.parameters(), lr=0.1)
    schedule = LinearLR(opt)
    with pytest.raises(TypeError, match="train: progress must be True or False, got str"):
        demo.train(model, X, y, demo.hinge, opt, schedule, steps=1, l2=0.0, progress="no")
    with pytest.raises(TypeError, match="train: steps must be an int, got float"):
        demo.train(model, X, y, demo.hinge, opt, schedule, steps=2.0, l2=0.0, progress=False)



@pytest.mark.parametrize("name", ["lbfgs", "cg", "cmaes", "es", "ga"])
def test_closure_optimizers_record_the_loss_of_the_models_own_weights(name):
    # CMA-ES and the ES evaluate perturbed candidates; the history (and the "loss a -> b" line)
    # must be the loss at the model's weights before each step, as for SGD, not a candidate's.
    from autodiff import no_grad
    from nn.data import make_moons
    from nn.layers import MLP
    from nn.losses import accuracy, hinge, l2_penalty

    X, y = make_moons(12, seed=0, labels="pm1")
    model = MLP(2, [3, 1], seed=0)
    opt = build(name, model.parameters())  # as the demo starts it; cg and es are old names
    with no_grad():
        scores = [model(x) for x in X]
        before = (hinge(scores, y) + l2_penalty(model, 1e-4)).data
    history = demo.train(model, X, y, hinge, opt, None, steps=2, l2=1e-4, progress=False)
    assert history["loss"][0] == pytest.approx(before, rel=1e-12)
    assert history["accuracy"][0] == accuracy(scores, y)
    assert len(history["loss"]) == 2 and history["loss"][1] != history["loss"][0]
    # CMA-ES has no learning rate: its chart must not show a rate of 0
    assert ("lr" in history) == (name not in ("cmaes", "ga"))  # they have no lr


def test_an_output_folder_that_cannot_be_made_is_an_error_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert demo.main(["--steps", "1", "--no-progress", "--out", str(blocker / "out")]) == 2
    captured = capsys.readouterr()
    assert "--out" in captured.err and str(blocker / "out") in captured.err
    assert "loss" not in captured.out  # refused before any training


@pytest.mark.parametrize("name", sorted(demo.OPTIMIZERS))
def test_every_optimizer_of_the_demo_lowers_the_loss(name):
    from nn.data import make_moons
    from nn.layers import MLP
    from nn.losses import hinge
    from nn.optim import MatrixOptimizer, matrices

    X, y = make_moons(20, seed=0, labels="pm1")
    model = MLP(2, [4, 1], seed=0)
    cls = demo.OPTIMIZERS[name].cls
    opt = build(name, matrices(model) if issubclass(cls, MatrixOptimizer) else model.parameters())
    history = demo.train(model, X, y, hinge, opt, None, steps=8, l2=0.0, progress=False)
    assert min(history["loss"][1:]) < history["loss"][0]
