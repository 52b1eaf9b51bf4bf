"""Files and models at the edges: what save and load do with FIFOs, devices, folders, symbolic
links and the leftovers of a killed save; architectures checked before anything is built; torch
modules with hooks or without weights (the meta device) refused with the reason."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

import nn
import nn.layers
import nn.module
from nn.layers import MLP

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this OS")


@pytest.fixture
def model():
    return MLP(2, [3, 1], seed=0)


# ---- save: only regular files ---------------------------------------------------------------


@needs_fifo
def test_save_refuses_a_fifo_and_leaves_it_a_fifo(model, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"save: .*pipe' is a FIFO \(named pipe\), not a "
                                         r"regular file"):
        model.save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]  # no temporary file left behind


@pytest.fixture
def device(tmp_path):
    """A character device node like /dev/null (major 1, minor 3) inside tmp_path.

    The tests never aim at the real /dev/null: run as root against a save that does not check,
    they would replace it with a regular file for the whole machine.
    """
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (AttributeError, PermissionError, OSError) as error:
        pytest.skip(f"cannot make a device node here (needs root on Linux): {error}")
    return node


def test_save_refuses_a_device_directly_and_through_a_link(model, tmp_path, device):
    with pytest.raises(ValueError, match=r"null' is a character device, not a regular"):
        model.save(device)
    link = tmp_path / "model.json"
    link.symlink_to(device)
    with pytest.raises(ValueError, match=r"\(a symbolic link to '.*null'\) is a character "
                                         r"device"):
        model.save(link)
    assert os.path.islink(link) and stat.S_ISCHR(os.lstat(device).st_mode)


def test_save_refuses_a_folder(model, tmp_path):
    with pytest.raises(IsADirectoryError, match=r"save: .* is a folder; a model is saved to a"):
        model.save(tmp_path)


def test_save_through_a_symlink_replaces_the_file_it_points_to(model, tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    model.save(link)
    assert os.path.islink(link)  # the link stays a link
    assert json.loads(real.read_text())["format"] == nn.module.FORMAT
    assert nn.load(link).state_dict() == model.state_dict()


def test_save_through_a_link_into_a_missing_folder_is_refused(model, tmp_path):
    link = tmp_path / "model.json"
    link.symlink_to(tmp_path / "missing" / "model.json")
    with pytest.raises(ValueError, match=r"symbolic link to .* in a folder that does not exist"):
        model.save(link)


# ---- load: only regular files ---------------------------------------------------------------


@needs_fifo
def test_load_refuses_a_fifo_instead_of_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            nn.load(fifo)
        except Exception as error:  # noqa: BLE001 - the outcome is inspected below
            outcome.append(error)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(30)  # a guard against hanging the suite, not a speed check
    if thread.is_alive():  # blocked in open(): release it with a writer, then fail
        with open(fifo, "wb"):
            pass
        thread.join(30)
        pytest.fail("nn.load() blocked on a FIFO")
    assert isinstance(outcome[0], ValueError), outcome
    assert "is a FIFO (named pipe), not a regular file" in str(outcome[0])


def test_load_refuses_a_device_and_a_folder(tmp_path, device):
    with pytest.raises(ValueError, match=r"null' is a character device, not a regular file"):
        nn.load(device)
    with pytest.raises(IsADirectoryError, match=r"load: .* is a folder, not a model file"):
        nn.load(tmp_path)


# ---- stale temporary files of a killed save ------------------------------------------------


def test_the_next_save_removes_stale_temporaries_of_a_killed_save(model, tmp_path):
    model.save(tmp_path / "model.json")
    head = (tmp_path / "model.json").read_bytes()[:200]
    old = time.time() - 2 * nn.module.STALE_AFTER
    files = {
        ".model.json.k3j_9a0z.tmp": (head, old, False),    # killed half-way: removed
        ".other.json.abcdefgh.tmp": (b"", old, False),     # killed before writing: removed
        ".model.json.fresh123.tmp": (head, None, True),    # a save in progress: kept
        ".notes.txt.abcdefgh.tmp": (b"hello", old, True),  # not one of ours: kept
        "model.json.abcdefgh.tmp": (head, old, True),      # not our pattern: kept
    }
    for name, (data, mtime, _) in files.items():
        (tmp_path / name).write_bytes(data)
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))
    model.save(tmp_path / "again.json")
    left = set(os.listdir(tmp_path))
    for name, (_, _, kept) in files.items():
        assert (name in left) == kept, name
    assert {"model.json", "again.json"} <= left


# ---- architectures checked before building --------------------------------------------------


def test_an_unknown_activation_is_refused_even_without_hidden_layers():
    with pytest.raises(ValueError, match=r"MLP: unknown activation 'foo'"):
        MLP(2, [3], activation="foo")
    with pytest.raises(ValueError, match=r"MLP: unknown activation 'foo'"):
        MLP(2, [3], output_activation="foo")


@pytest.mark.parametrize("edit", [
    lambda p: {f"x{i}": v for i, v in enumerate(p.values())},          # every name wrong
    lambda p: {**{k: v for k, v in list(p.items())[:-1]}, "layers.9.neurons.0.b": 0.0},
    lambda p: {**p, "layers.0.neurons.0.w.7": 0.0},                   # a shape that does not fit
])
def test_load_checks_names_and_shapes_before_building_anything(model, tmp_path, monkeypatch,
                                                                edit):
    path = tmp_path / "model.json"
    model.save(path)
    document = json.loads(path.read_text())
    document["parameters"] = edit(document["parameters"])
    path.write_text(json.dumps(document))

    def no_building(*args, **kwargs):
        raise AssertionError("a layer was built before the names were checked")

    monkeypatch.setattr(nn.layers.Layer, "__init__", no_building)
    with pytest.raises(ValueError, match=r"parameter names do not match the architecture MLP"):
        nn.load(path)


def test_parameter_names_without_building_are_the_built_models_names():
    for make in (lambda: MLP(3, [4, 2, 1], seed=0), lambda: nn.Layer(3, 2, seed=0),
                 lambda: nn.Neuron(4, seed=0)):
        m = make()
        assert list(type(m).parameter_names(m.config())) == [n for n, _ in m.named_parameters()]


# ---- the torch bridge ------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (the test extra)")


def _sequential(torch):
    return torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                               torch.nn.Linear(3, 1)).double()


@pytest.mark.parametrize("where, register, kind", [
    (0, lambda m, hook: m.register_forward_hook(hook), "forward hook"),
    (2, lambda m, hook: m.register_forward_pre_hook(lambda mod, args: args), "forward pre-hook"),
    (None, lambda m, hook: m.register_forward_hook(hook), "forward hook"),
    (1, lambda m, hook: m.register_full_backward_hook(lambda mod, gi, go: gi), "backward hook"),
])
def test_from_torch_refuses_a_module_with_hooks_naming_the_hook(torch, where, register, kind):
    seq = _sequential(torch)

    def double_the_output(module, args, out):
        return out * 2

    handle = register(seq if where is None else seq[where], double_the_output)
    with pytest.raises(ValueError, match=rf"has a {kind} \(.*\); chainrule models have no hooks"):
        MLP.from_torch(seq)
    if kind == "forward hook":
        with pytest.raises(ValueError, match=r"double_the_output"):
            MLP.from_torch(seq)
    handle.remove()
    MLP.from_torch(seq)  # without the hook it converts


def test_from_torch_of_a_meta_device_model_says_it_has_no_weights(torch):
    with torch.device("meta"):
        seq = torch.nn.Sequential(torch.nn.Linear(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"layer 0 .* is on the meta device: it has shapes but "
                                         r"no weights"):
        MLP.from_torch(seq)
