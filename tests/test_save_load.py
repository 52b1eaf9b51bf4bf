"""Model files: JSON round trip, atomic writes, and a clear error for every kind of bad file."""

from __future__ import annotations

import json
import math
import os
import random

import pytest

import nn
import nn.module
from autodiff import Value
from nn.layers import MLP, Layer, Neuron
from nn.module import FORMAT, FORMAT_VERSION, Module


@pytest.fixture
def model():
    return MLP(2, [4, 3, 1], activation="tanh", output_activation="sigmoid", init="fan_in",
               seed=11)


def weights(m):
    return [p.data for p in m.parameters()]


# ---- round trip -------------------------------------------------------------------------------


def test_round_trip_rebuilds_architecture_and_exact_weights(model, tmp_path):
    path = tmp_path / "model.json"
    model.save(path)
    loaded = nn.load(path)
    assert type(loaded) is MLP and loaded.config() == model.config()
    assert weights(loaded) == weights(model)  # JSON keeps every float bit for bit
    x = [0.3, -0.8]
    assert loaded(x).data == model(x).data


@pytest.mark.parametrize("make", [lambda: Neuron(3, "tanh", seed=0),
                                  lambda: Layer(2, 5, "sigmoid", init="kaiming", seed=0),
                                  lambda: MLP(1, [1], seed=0)])
def test_round_trip_of_every_module_kind(make, tmp_path):
    original = make()
    original.save(tmp_path / "m.json")
    loaded = nn.load(str(tmp_path / "m.json"))
    assert type(loaded) is type(original) and weights(loaded) == weights(original)


def test_file_is_plain_json_with_version_and_named_weights(model, tmp_path):
    path = tmp_path / "model.json"
    model.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == FORMAT_VERSION == 1
    assert doc["model"] == {"class": "MLP", "config": {
        "nin": 2, "nouts": [4, 3, 1], "activation": ["tanh", "tanh", "sigmoid"],
        "init": "fan_in"}}
    assert doc["parameters"]["layers.2.neurons.0.b"] == model.layers[2].neurons[0].b.data
    assert list(doc["parameters"]) == [name for name, _ in model.named_parameters()]


def test_load_does_not_disturb_global_random(model, tmp_path):
    model.save(tmp_path / "m.json")
    random.seed(9)
    expected = random.random()
    random.seed(9)
    nn.load(tmp_path / "m.json")
    assert random.random() == expected


def test_state_dict_round_trip_and_load_weights(model, tmp_path):
    other = MLP(2, [4, 3, 1], activation="tanh", output_activation="sigmoid", init="fan_in",
                seed=12)
    assert weights(other) != weights(model)
    other.load_state_dict(model.state_dict())
    assert weights(other) == weights(model)
    model.save(tmp_path / "m.json")
    third = MLP(2, [4, 3, 1], activation="tanh", output_activation="sigmoid", init="fan_in",
                seed=13)
    assert third.load_weights(tmp_path / "m.json") is third
    assert weights(third) == weights(model)


def test_save_replaces_an_existing_file_and_keeps_its_permissions(model, tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    model.save(path)
    assert nn.load(path).config() == model.config()
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["m.json"]  # no temporary file left behind


# ---- atomic writes ----------------------------------------------------------------------------


def test_a_write_failing_midway_leaves_the_old_file_intact(model, tmp_path, monkeypatch):
    path = tmp_path / "model.json"
    model.save(path)
    before, saved = path.read_bytes(), weights(model)
    for p in model.parameters():
        p.data += 1.0
    real_write = os.write

    def write_half_then_fail(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))  # some bytes reach the disk...
        raise OSError(28, "No space left on device")  # ...then the disk fills up

    monkeypatch.setattr(nn.module.os, "write", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.json"]
    assert weights(nn.load(path)) == saved


def test_a_failed_rename_leaves_the_old_file_and_no_temp_file(model, tmp_path, monkeypatch):
    path = tmp_path / "model.json"
    model.save(path)
    before = path.read_bytes()

    def fail(*args):
        raise OSError("rename failed")

    monkeypatch.setattr(nn.module.os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.json"]


def test_non_finite_weights_are_refused_before_touching_the_file(model, tmp_path):
    path = tmp_path / "model.json"
    model.save(path)
    before = path.read_bytes()
    model.parameters()[3].data = math.nan
    with pytest.raises(ValueError, match=r"parameter 'layers\.0\.neurons\.1\.w\.0' of MLP is nan"):
        model.save(path)
    assert path.read_bytes() == before


def test_modules_without_config_cannot_be_saved(tmp_path):
    class Custom(Module):
        def __init__(self):
            self.w = Value(1.0)

    with pytest.raises(NotImplementedError, match="Custom cannot be saved: define config"):
        Custom().save(tmp_path / "c.json")


def test_custom_modules_with_config_round_trip(tmp_path):
    class Affine(Module):
        def __init__(self, scale: float = 1.0):
            self.scale = scale
            self.w = Value(scale)
            self.b = Value(0.0)

        def forward(self, x):
            return self.w * x + self.b

        def config(self):
            return {"scale": self.scale}

    m = Affine(2.0)
    m.b.data = 0.5
    m.save(tmp_path / "a.json")
    loaded = nn.load(tmp_path / "a.json")
    assert type(loaded) is Affine and loaded(3.0).data == 6.5
    saved_as = json.loads((tmp_path / "a.json").read_text())["model"]["class"]
    assert saved_as.endswith("test_custom_modules_with_config_round_trip.<locals>.Affine")


def test_a_user_class_named_mlp_does_not_replace_nns(model, tmp_path):
    class MLP(Module):  # noqa: F811 - the clash is the point
        def config(self):
            return {}

    model.save(tmp_path / "m.json")
    assert type(nn.load(tmp_path / "m.json")) is nn.MLP


# ---- every kind of bad file: a clear ValueError naming the file, and the model untouched -------


def _edit(doc, change):
    doc = json.loads(json.dumps(doc))
    change(doc)
    return json.dumps(doc)


def _set(path_keys, value):
    def change(doc):
        target = doc
        for key in path_keys[:-1]:
            target = target[key]
        target[path_keys[-1]] = value
    return change


def _delete(path_keys):
    def change(doc):
        target = doc
        for key in path_keys[:-1]:
            target = target[key]
        del target[path_keys[-1]]
    return change


W = "layers.0.neurons.0.w.0"
BAD_FILES = {
    "truncated": (lambda text, doc: text[: len(text) // 2], "looks truncated"),
    "empty": (lambda text, doc: "", "broken JSON"),
    "not JSON": (lambda text, doc: "model: yes\n", "broken JSON at line 1 column 1"),
    "binary junk": (lambda text, doc: "\udcff", "not UTF-8 text"),
    "top-level list": (lambda text, doc: "[1, 2]", "expected a JSON object at the top, got list"),
    "missing parameters": (lambda text, doc: _edit(doc, _delete(["parameters"])),
                           "the 'parameters' field is missing"),
    "missing version": (lambda text, doc: _edit(doc, _delete(["version"])),
                        "the 'version' field is missing"),
    "other format": (lambda text, doc: _edit(doc, _set(["format"], "keras")),
                     "format is 'keras', expected 'chainrule-model'"),
    "unknown version": (lambda text, doc: _edit(doc, _set(["version"], 2)),
                        "unsupported format version 2 (this chainrule reads version 1)"),
    "version as text": (lambda text, doc: _edit(doc, _set(["version"], "1")),
                        "version must be an integer, got '1'"),
    "unknown class": (lambda text, doc: _edit(doc, _set(["model", "class"], "os.system")),
                      "unknown model class 'os.system'"),
    "model not an object": (lambda text, doc: _edit(doc, _set(["model"], "MLP")),
                            "'model' must be an object"),
    "parameters as list": (lambda text, doc: _edit(doc, _set(["parameters"], [1.0, 2.0])),
                           "'parameters' must be an object of name: number, got list"),
    "weight as text": (lambda text, doc: _edit(doc, _set(["parameters", W], "0.5")),
                       f"parameter '{W}' must be a number, got str: '0.5'"),
    "weight as null": (lambda text, doc: _edit(doc, _set(["parameters", W], None)),
                       f"parameter '{W}' must be a number, got NoneType"),
    "weight as bool": (lambda text, doc: _edit(doc, _set(["parameters", W], True)),
                       f"parameter '{W}' must be a number, got bool"),
    "NaN weight": (lambda text, doc: text.replace(
        f'"{W}": {json.dumps(doc["parameters"][W])}', f'"{W}": NaN'), "NaN is not allowed"),
    "infinite weight": (lambda text, doc: _edit(doc, _set(["parameters", W], 1e400)),
                        "Infinity is not allowed"),
    "missing weight": (lambda text, doc: _edit(doc, _delete(["parameters", W])),
                       "has 31 parameters, but the file holds 30 weights"),
    "renamed weight": (lambda text, doc: _edit(doc, lambda d: d["parameters"].update(
        {"layers.0.neurons.0.w.9": d["parameters"].pop(W)})),
        f"1 missing ('{W}'); 1 unexpected ('layers.0.neurons.0.w.9')"),
    "extra weight": (lambda text, doc: _edit(doc, _set(["parameters", "layers.0.neurons.0.w.9"],
                                                       1.0)),
                     "1 unexpected ('layers.0.neurons.0.w.9')"),
    # the architecture says 3 inputs but the weights were saved for 2: wrong shapes
    "wrong shape": (lambda text, doc: _edit(doc, _set(["model", "config", "nin"], 3)),
                    "the architecture MLP(nin=3, nouts=[4, 3, 1], activation=['tanh', 'tanh', "
                    "'sigmoid'], init='fan_in') has 35 parameters, but the file holds 31 weights"),
    "fewer inputs": (lambda text, doc: _edit(doc, _set(["model", "config", "nin"], 1)),
                     "4 unexpected ('layers.0.neurons.0.w.1', 'layers.0.neurons.1.w.1', "
                     "'layers.0.neurons.2.w.1', ...)"),
    "bad architecture": (lambda text, doc: _edit(doc, _set(["model", "config", "nouts"], [])),
                         "invalid architecture for MLP: MLP: nouts must be a non-empty list"),
    "unknown config key": (lambda text, doc: _edit(doc, _set(["model", "config", "bias"], 1)),
                           "invalid architecture for MLP"),
    # numbers a float cannot hold: an integer of 401 digits, and 1e400 (which float() reads as
    # inf); neither may escape as a bare OverflowError
    "huge integer weight": (lambda text, doc: _edit(doc, _set(["parameters", W], 10 ** 400)),
                            f"parameter '{W}' is an integer too large for a float"),
    "1e400 weight": (lambda text, doc: text.replace(
        f'"{W}": {json.dumps(doc["parameters"][W])}', f'"{W}": 1e400'),
        "the number 1e400 is too large for a float"),
    # nesting: deeper than Python's JSON parser goes (RecursionError inside json.loads), and
    # parsable but far deeper than any model file
    "deeply nested": (lambda text, doc: '{"format": ' + "[" * 100_000 + "]" * 100_000 + "}",
                      "the JSON is nested too deeply"),
    "nested config": (lambda text, doc: _edit(doc, _set(["model", "config", "nin"],
                                                        json.loads("[" * 40 + "]" * 40))),
                      "the JSON is nested more than 32 levels deep"),
    "nin as float": (lambda text, doc: _edit(doc, _set(["model", "config", "nin"], 2.0)),
                     "invalid architecture for MLP: MLP: nin must be a positive integer, got 2.0"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_value_error_naming_file_and_problem(case, model, tmp_path):
    good = tmp_path / "good.json"
    model.save(good)
    text = good.read_text()
    corrupt, message = BAD_FILES[case]
    bad = tmp_path / "bad.json"
    bad.write_bytes(corrupt(text, json.loads(text)).encode("utf-8", "surrogateescape"))

    with pytest.raises(ValueError) as info:
        nn.load(bad)
    assert str(bad) in str(info.value)
    assert message in str(info.value)

    # loading the same file into an existing model fails the same way and changes nothing
    target = MLP(2, [4, 3, 1], activation="tanh", output_activation="sigmoid", init="fan_in",
                 seed=5)
    before = weights(target)
    with pytest.raises(ValueError) as info:
        target.load_weights(bad)
    assert str(bad) in str(info.value)
    assert weights(target) == before


def test_load_weights_refuses_another_architecture(model, tmp_path):
    path = tmp_path / "m.json"
    model.save(path)
    other = MLP(2, [4, 1], seed=0)
    before = weights(other)
    with pytest.raises(ValueError, match="holds a different architecture: MLP") as info:
        other.load_weights(path)
    assert str(path) in str(info.value) and "nouts=[4, 3, 1]" in str(info.value)
    assert weights(other) == before


def test_load_state_dict_checks_everything_before_assigning(model):
    state = model.state_dict()
    before = weights(model)
    names = list(state)
    state[names[0]] = 123.0                # a good value early on...
    state[names[-1]] = math.inf            # ...and a bad one at the end
    with pytest.raises(ValueError, match=f"parameter '{names[-1]}' is inf, not a finite"):
        model.load_state_dict(state)
    assert weights(model) == before        # the good value was not written either
    with pytest.raises(ValueError, match="expected a mapping"):
        model.load_state_dict([1.0, 2.0])


def test_load_state_dict_non_strict_loads_the_names_it_has(model):
    name, p = model.named_parameters()[0]
    model.load_state_dict({name: 0.125, "not.a.parameter": 1.0}, strict=False)
    assert p.data == 0.125


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "nothing.json")



# ---- files that would be expensive to build, bad paths, failed saves ---------------------------


def test_a_tiny_file_declaring_a_huge_model_is_refused_before_building_it(tmp_path, monkeypatch):
    # 141 bytes that declare MLP(2000, [2000, 1]): 4,004,001 parameters, ~1.4 GB if built.
    path = tmp_path / "huge.json"
    path.write_text('{"format": "chainrule-model", "version": 1, "model": {"class": "MLP", '
                    '"config": {"nin": 2000, "nouts": [2000, 1]}}, "parameters": {"w": 1.0}}')
    assert len(path.read_bytes()) < 150
    built = []
    real_init = Neuron.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Neuron, "__init__", counting_init)
    with pytest.raises(ValueError) as info:
        nn.load(path)
    assert str(path) in str(info.value)
    assert "has 4004001 parameters, but the file holds 1 weights" in str(info.value)
    assert built == []                      # not a single neuron was made
    with pytest.raises(ValueError, match="holds a different architecture"):
        MLP(2, [1], seed=0).load_weights(path)
    assert built == [1]                     # only the target model itself, above


@pytest.mark.parametrize("cls, config, count", [
    (Neuron, {"nin": 3}, 4), (Layer, {"nin": 3, "nout": 2}, 8),
    (MLP, {"nin": 2, "nouts": [16, 16, 1]}, 337), (MLP, {"nin": 5, "nouts": [3, 2]}, 26)])
def test_count_parameters_is_the_built_models_count(cls, config, count):
    assert cls.count_parameters(config) == cls(**config, seed=0).num_parameters() == count


def test_a_class_without_a_count_is_built_then_checked_by_name(tmp_path):
    class Pair(Module):
        def __init__(self, scale=1.0):
            self.a, self.b = Value(scale), Value(-scale)

        def config(self):
            return {"scale": self.a.data}

    assert Pair.count_parameters({"scale": 1.0}) is None
    path = tmp_path / "pair.json"
    Pair(2.0).save(path)
    doc = json.loads(path.read_text())
    del doc["parameters"]["b"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"1 missing \('b'\)"):
        nn.load(path)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.save(42), r"save: path must be a str or os.PathLike \(a file name\), got int"),
    (lambda m: nn.load(None), r"load: path must be a str or os.PathLike"),
    (lambda m: m.load_weights(3.5), r"load: path must be a str"),
    (lambda m: m.load_state_dict(m.state_dict(), strict="no"),
     r"MLP.load_state_dict: strict must be True or False, got str: 'no'"),
])
def test_bad_arguments_are_type_errors_naming_them(model, call, message):
    before = weights(model)
    with pytest.raises(TypeError, match=message):
        call(model)
    assert weights(model) == before


@pytest.mark.parametrize("where", ["fchmod", "write", "fsync", "close", "replace"])
@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), KeyboardInterrupt()])
def test_a_save_failing_at_any_step_leaves_no_temp_file(model, tmp_path, monkeypatch, where,
                                                       error):
    path = tmp_path / "model.json"
    model.save(path)
    before = path.read_bytes()
    for p in model.parameters():
        p.data += 1.0
    real = getattr(os, where)

    def fail(*args):
        if where == "close":
            real(*args)  # really close it, then report a failure (as NFS may)
        raise error

    monkeypatch.setattr(nn.module.os, where, fail)
    with pytest.raises(type(error)):
        model.save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["model.json"]   # no .model.json.*.tmp left
    assert path.read_bytes() == before


def test_a_failed_save_into_a_missing_folder_leaves_nothing(model, tmp_path):
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "no" / "such" / "folder" / "m.json")
    assert os.listdir(tmp_path) == []


def test_a_save_onto_a_folder_fails_and_leaves_no_temp_file(model, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path / "taken")
    assert os.listdir(tmp_path) == ["taken"] and os.listdir(tmp_path / "taken") == []


def test_a_name_given_twice_in_a_file_is_refused(model, tmp_path):
    # JSON parsers keep the last of two equal names, so a weight written twice (a bad merge, a
    # hand edit) loaded one of its two numbers without a word.
    path = tmp_path / "model.json"
    model.save(path)
    text = path.read_text()
    first = next(iter(model.state_dict()))
    doubled = text.replace('"parameters": {', f'"parameters": {{\n  "{first}": 5.0,', 1)
    assert doubled != text
    path.write_text(doubled)
    before = weights(model)
    with pytest.raises(ValueError, match=rf"model.json.*{first}.*twice"):
        nn.load(path)
    with pytest.raises(ValueError, match=rf"model.json.*{first}.*twice"):
        model.load_weights(path)
    assert weights(model) == before
