"""`Module`: the base class of every model, which finds its parameters and saves them as JSON.

A module is an ordinary Python object whose attributes include `Value`s (its own parameters),
other modules, and lists of either. The one idea to understand: nothing is registered by hand.
`named_parameters()` walks the attributes in the order `__init__` created them and names each
Value by the path that leads to it, so `model.layers[0].neurons[3].w[1]` is called
`layers.0.neurons.3.w.1`. That path is the parameter's identity in `state_dict()` and in model
files, and the walk's order is the fixed order optimizers rely on.

    >>> from autodiff import Value
    >>> class Line(Module):
    ...     def __init__(self):
    ...         self.w = Value(2.0)
    ...         self.b = Value(0.5)
    ...     def forward(self, x):
    ...         return self.w * x + self.b
    >>> line = Line()
    >>> [name for name, _ in line.named_parameters()]
    ['w', 'b']
    >>> line(3.0).data
    6.5

Attributes whose names start with `_` are private and never walked. Model files are JSON (the
architecture plus every weight by name, with a format version); they never contain pickled
objects, so loading an untrusted file cannot run code.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from numbers import Real
from typing import Any

from autodiff import Value
from nn._checks import check_bool

__all__ = ["Module", "load", "FORMAT", "FORMAT_VERSION"]

#: The `format` field of every model file, and the version this code writes and reads.
FORMAT = "chainrule-model"
FORMAT_VERSION = 1

# Every Module subclass by its key (see _class_key), filled in by __init_subclass__. `load` only
# ever builds classes found here, so a model file can name an architecture but never make Python
# import anything.
_REGISTRY: dict[str, type[Module]] = {}


def _class_key(cls: type) -> str:
    """"MLP" for the classes of nn; "module.QualifiedName" for everyone else's.

    The longer key for user classes means that a class of your own called MLP never takes the
    place of nn's MLP when a file is loaded.
    """
    if cls.__module__ == "nn" or cls.__module__.startswith("nn."):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


class Module:
    """Base class for neurons, layers and whole models.

    Subclasses set their parameters (Values), sub-modules and lists of either as attributes in
    `__init__`, and define `forward`. To be saved with `save()` and rebuilt by `nn.load`, a
    subclass also defines `config()`: the keyword arguments that rebuild its architecture.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[_class_key(cls)] = cls

    # ---- calling ------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ---- finding parameters -------------------------------------------------------------------

    def named_parameters(self) -> list[tuple[str, Value]]:
        """(name, Value) for every parameter, in creation order, each Value listed once."""
        return _named(self, Value)

    def parameters(self) -> list[Value]:
        """Every parameter as a list (a fixed order, no duplicates): what optimizers take."""
        return [p for _, p in self.named_parameters()]

    def named_modules(self) -> list[tuple[str, Module]]:
        """(name, module) for this module ("") and every module inside it, outermost first."""
        return _named(self, Module)

    def num_parameters(self) -> int:
        return len(self.named_parameters())

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0.0 (gradients accumulate across backward passes)."""
        for p in self.parameters():
            p.grad = 0.0

    # ---- description --------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in `repr` (subclasses override it)."""
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()})"
        lines = [head]
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            children = value if isinstance(value, (list, tuple)) else [value]
            for i, child in enumerate(children):
                if isinstance(child, Module):
                    label = f"{name}.{i}" if isinstance(value, (list, tuple)) else name
                    child_text = repr(child).replace("\n", "\n  ")
                    lines.append(f"  ({label}): {child_text}")
        return "\n".join(lines)

    # ---- weights as data ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, float]:
        """{parameter name: its number}: a snapshot of the weights, in parameter order."""
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> Module:
        """Copy weights from `state` ({name: number}) into this module's parameters.

        Everything is checked before anything is assigned: when any name is missing or
        unexpected (`strict=True`) or any value is not a finite number, a ValueError says which,
        and the module is left exactly as it was. Returns the module.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        check_bool(owner, "strict", strict)
        if not isinstance(state, Mapping):
            raise ValueError(f"{owner}: expected a mapping of parameter names to numbers, "
                             f"got {type(state).__name__}")
        params = self.named_parameters()
        if strict:
            mismatch = _name_mismatch([name for name, _ in params], state)
            if mismatch:
                raise ValueError(f"{owner}: parameter names do not match the model: {mismatch}")
        updates: list[tuple[Value, float]] = []
        for name, p in params:
            if name not in state:
                continue
            value = state[name]
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"{owner}: parameter {name!r} must be a number, "
                                 f"got {type(value).__name__}: {value!r}")
            try:
                value = float(value)
            except OverflowError:  # an int such as 10**400 (JSON integers have no limit)
                raise ValueError(f"{owner}: parameter {name!r} is an integer too large for a "
                                 "float") from None
            if not math.isfinite(value):
                raise ValueError(f"{owner}: parameter {name!r} is {value!r}, not a finite number")
            updates.append((p, value))
        for p, value in updates:  # only now, with every check passed
            p.data = value
        return self

    # ---- model files --------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this module's architecture (for `save` and `load`)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be saved: define config() to return the keyword "
            "arguments that rebuild it"
        )

    @classmethod
    def count_parameters(cls, config: dict[str, Any]) -> int | None:
        """How many parameters `cls(**config)` has, worked out without building it.

        `load` compares it with the number of weights in the file before building anything,
        so a few bytes declaring a huge architecture are refused at once instead of after
        minutes and gigabytes. None (the default) means "unknown": the model is built, then
        its parameter names are checked against the file. Raises ValueError for a config
        that cannot be right.
        """
        return None

    @classmethod
    def parameter_names(cls, config: dict[str, Any]) -> Iterable[str] | None:
        """The names `cls(**config).named_parameters()` gives, in order, without building it.

        `load` compares them with the names in the file before building anything, so a file
        whose names or shapes do not fit is refused in the time it takes to read it. None (the
        default) means "unknown": the names are checked after building. Raises ValueError for
        a config that cannot be right.
        """
        return None

    def save(self, path: str | os.PathLike) -> None:
        """Write the architecture and every weight to `path` as JSON, atomically.

        The file is written to a temporary file in the same folder, flushed to disk and then
        renamed over `path`, so a crash part-way never leaves a half-written model: `path`
        holds either the old file or the complete new one. Temporary files that a save killed
        part-way left in that folder (our own `.NAME.XXXXXXXX.tmp` pattern, older than a few
        minutes) are removed.

        `path` must be a regular file or not exist yet: a FIFO or a device is refused with a
        ValueError, a folder with IsADirectoryError. A symbolic link is followed: the file it
        points to is replaced (the link stays a link), and a link to anything but a regular
        file (or to nothing in a missing folder) is refused.
        """
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": {"class": _class_key(type(self)), "config": self.config()},
            "parameters": self.state_dict(),
        }
        for name, value in document["parameters"].items():
            if not math.isfinite(value):
                raise ValueError(f"save: parameter {name!r} of {type(self).__name__} is {value!r};"
                                 " a model with non-finite weights cannot be saved")
        text = json.dumps(document, indent=1, allow_nan=False) + "\n"
        _atomic_write(_check_path("save", path), text.encode("utf-8"))

    def load_weights(self, path: str | os.PathLike) -> Module:
        """Load the weights in the model file `path` into this module; returns the module.

        The file's architecture must be this module's; a corrupted, truncated or mismatched
        file raises a ValueError naming the file and the problem, and the module is untouched.
        """
        cls, config, params = _read_model_file(path)
        if cls is not type(self) or _normalised(config) != _normalised(self.config()):
            raise ValueError(
                f"load_weights: {os.fspath(path)!r} holds a different architecture: "
                f"{cls.__name__}({_kwargs_text(config)}), but this model is "
                f"{type(self).__name__}({_kwargs_text(self.config())})"
            )
        try:
            return self.load_state_dict(params)
        except ValueError as err:
            raise ValueError(f"load_weights: {os.fspath(path)!r}: {err}") from None


def load(path: str | os.PathLike) -> Module:
    """Rebuild the model saved in `path` by `Module.save`: its architecture and its weights.

    Raises ValueError naming the file and the problem when the file is not a valid model file
    (truncated or corrupted JSON, missing fields, wrong types, unknown class or version, weights
    that do not fit the architecture).
    """
    cls, config, params = _read_model_file(path)
    where = os.fspath(path)
    try:
        expected = cls.count_parameters(config)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"load: {where!r} has an invalid architecture for {cls.__name__}: "
                         f"{err}") from None
    if expected is not None and expected > len(params):
        # Checked before building, so that building costs no more than the file's size (with
        # fewer parameters than weights, the model is built and the names say which are extra).
        raise ValueError(f"load: {where!r}: the architecture {cls.__name__}"
                         f"({_kwargs_text(config)}) has {expected} parameters, but the file "
                         f"holds {len(params)} weights")
    try:
        names = cls.parameter_names(config)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"load: {where!r} has an invalid architecture for {cls.__name__}: "
                         f"{err}") from None
    if names is not None:
        # Names (and so shapes) are checked before anything is built: a file declaring a huge
        # architecture under the wrong names costs the time it takes to read it, no more.
        mismatch = _name_mismatch(list(names), params)
        if mismatch:
            raise ValueError(f"load: {where!r}: parameter names do not match the architecture "
                             f"{cls.__name__}({_kwargs_text(config)}): {mismatch}")
    try:
        model = _build(cls, config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"load: {where!r} has an invalid architecture for {cls.__name__}: "
                         f"{err}") from None
    try:
        return model.load_state_dict(params)
    except ValueError as err:
        raise ValueError(f"load: {where!r}: {err}") from None


# ---- helpers -------------------------------------------------------------------------------------


def _named(root: Module, kind: type) -> list[tuple[str, Any]]:
    """(name, object) for every object of `kind` found by `_walk`, each listed once (first name)."""
    seen: set[int] = set()
    out: list[tuple[str, Any]] = []
    for name, value in _walk(root, ""):
        if isinstance(value, kind) and id(value) not in seen:
            seen.add(id(value))
            out.append((name, value))
    return out


def _walk(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Yield (path, thing) for a module, its Values, and everything below its sub-modules."""
    if isinstance(obj, Module):
        yield prefix, obj
        for name, value in vars(obj).items():
            if not name.startswith("_"):
                yield from _walk(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(obj, Value):
        yield prefix, obj
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            if isinstance(item, (Module, Value, list, tuple)):
                yield from _walk(item, f"{prefix}.{i}")


def _name_mismatch(expected: list[str], given: Mapping[str, Any]) -> str:
    """How the names `given` differ from the `expected` ones ('' when they are the same):
    "2 missing ('a', 'b'); 1 unexpected ('c')"."""
    known = set(expected)
    missing = [name for name in expected if name not in given]
    unexpected = [name for name in given if name not in known]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_some(unexpected)})")
    return "; ".join(parts)


def _some(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def _kwargs_text(config: Mapping[str, Any], limit: int = 300) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in config.items())
    return text if len(text) <= limit else text[:limit] + "..."  # a file's config may be huge


def _normalised(config: Any) -> str:
    # Tuples and lists both become JSON arrays, so compare configs as JSON text.
    return json.dumps(config, sort_keys=True)


def _build(cls: type[Module], config: dict[str, Any]) -> Module:
    kwargs = dict(config)
    if "rng" in inspect.signature(cls).parameters:
        # The weights are about to be overwritten: draw them from a private generator so that
        # loading a model never disturbs the global `random` state a user may have seeded.
        kwargs["rng"] = random.Random(0)
    return cls(**kwargs)


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _read_regular_file(who: str, where: str) -> bytes:
    """The bytes of the regular file `where`; a ValueError for a FIFO, a device or a folder.

    The file is opened without blocking and checked on the open descriptor, so a FIFO is
    refused at once (a plain open() would wait for a writer for ever) and nothing can swap the
    file between the check and the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(where, flags)  # a missing file is a FileNotFoundError, as usual
    except IsADirectoryError:
        raise IsADirectoryError(f"{who}: {where!r} is a folder, not a model file") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):  # the error open() gives, with the reason
            raise IsADirectoryError(f"{who}: {where!r} is a folder, not a model file")
        if not stat.S_ISREG(mode):
            raise ValueError(f"{who}: {where!r} is {_kind(mode)}, not a regular file; "
                             "model files are regular files")
        if getattr(os, "O_NONBLOCK", 0):  # opened without blocking (POSIX): block again to read
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as f:
            fd = -1  # the file object owns it now
            return f.read()
    finally:
        if fd >= 0:
            os.close(fd)


def _read_model_file(path: str | os.PathLike) -> tuple[type[Module], dict[str, Any], dict]:
    """Parse and check a model file's envelope; return (class, config, parameters)."""
    where = os.fspath(_check_path("load", path))
    raw = _read_regular_file("load", where)

    def bad(problem: str) -> ValueError:
        return ValueError(f"load: {where!r} is not a valid model file: {problem}")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad(f"it is not UTF-8 text ({err.reason} at byte {err.start})") from None

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not allowed (weights must be finite numbers)")

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):  # 1e400 reads as inf
            raise ValueError(f"the number {text[:30]} is too large for a float")
        return value

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) < len(pairs):  # json.loads would keep the last quietly
            seen: set[str] = set()
            twice = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise ValueError(f"the name {twice[:100]!r} is given twice in one object")
        return found

    try:
        document = json.loads(text, parse_constant=no_constants, parse_float=finite_float,
                              object_pairs_hook=unique)
    except json.JSONDecodeError as err:
        hint = " (the file looks truncated)" if err.pos >= len(text.rstrip()) else ""
        raise bad(f"broken JSON at line {err.lineno} column {err.colno}: {err.msg}{hint}") from None
    except ValueError as err:  # NaN, Infinity, 1e400, an integer of 4300 digits, a name twice
        raise bad(str(err)) from None
    except RecursionError:  # [[[[...]]]] deeper than Python's JSON parser goes
        raise bad("the JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise bad(f"expected a JSON object at the top, got {type(document).__name__}")
    if _depth(document) > _MAX_DEPTH:
        # A model file is 4 levels deep; far deeper documents would only make the recursive
        # repr and json.dumps used for messages and comparisons fail later.
        raise bad(f"the JSON is nested more than {_MAX_DEPTH} levels deep")
    for key in ("format", "version", "model", "parameters"):
        if key not in document:
            raise bad(f"the {key!r} field is missing")
    if document["format"] != FORMAT:
        raise bad(f"format is {document['format']!r}, expected {FORMAT!r}")
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise bad(f"version must be an integer, got {version!r}")
    if version != FORMAT_VERSION:
        raise bad(f"unsupported format version {version} (this chainrule reads version "
                  f"{FORMAT_VERSION})")
    model = document["model"]
    if not isinstance(model, dict) or not isinstance(model.get("class"), str) \
            or not isinstance(model.get("config"), dict):
        raise bad("'model' must be an object with a 'class' name and a 'config' object")
    cls = _REGISTRY.get(model["class"])
    if cls is None:
        known = sorted(_REGISTRY, key=lambda key: ("." in key, key))  # nn's own classes first
        raise bad(f"unknown model class {model['class']!r} (known: {_some(known, 8)})")
    if not isinstance(document["parameters"], dict):
        raise bad(f"'parameters' must be an object of name: number, got "
                  f"{type(document['parameters']).__name__}")
    return cls, model["config"], document["parameters"]


#: How deep a model file's JSON may nest (a saved model needs 4 levels: 32 leaves room for
#: user classes whose configs hold lists of lists).
_MAX_DEPTH = 32


def _depth(document: Any) -> int:
    """How many levels of lists and objects `document` nests (iteratively: no recursion)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > _MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _check_path(who: str, path: Any) -> str | os.PathLike:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{who}: path must be a str or os.PathLike (a file name), "
                        f"got {type(path).__name__}: {path!r}")
    return path


#: A temporary file of `_atomic_write` older than this (seconds) belongs to a save that died.
STALE_AFTER = 300.0
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # what mkstemp makes of our prefix and suffix


def _writable_target(who: str, path: str) -> str:
    """The file a save should replace: `path`, or the file a symbolic link there points to.

    ValueError for a FIFO, a device node, a socket or a folder (renaming over them would
    replace them with a regular file, /dev/null included), and for a link to one of those.
    """
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        if target is not path and not os.path.isdir(os.path.dirname(os.path.abspath(target))):
            raise ValueError(f"{who}: {path!r} is a symbolic link to {target!r}, in a folder "
                             "that does not exist") from None
        return target  # a new file
    via = f" (a symbolic link to {target!r})" if target is not path else ""
    if stat.S_ISDIR(mode):  # the error open() gives, with the reason
        raise IsADirectoryError(f"{who}: {path!r}{via} is a folder; a model is saved to a file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{who}: {path!r}{via} is {_kind(mode)}, not a regular file; a model "
                         "is saved only to a regular file or a new name")
    return target


def _remove_stale_temporaries(folder: str, now: float) -> None:
    """Delete what saves killed part-way (kill -9, a power cut) left in `folder`: files of our
    temporary pattern, owned by us, not modified for STALE_AFTER seconds, holding nothing or
    the start of a model file. Anything else is left alone, and errors are ignored."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    start = b'{\n "format": ' + json.dumps(FORMAT).encode()
    for entry in entries:
        if not _TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_AFTER:
                continue
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                continue
            with open(entry.path, "rb") as f:
                head = f.read(len(start))
            if start.startswith(head):  # empty, or the beginning of one of our files
                os.unlink(entry.path)
        except OSError:
            continue


def _atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` so that readers (and crashes) see the old or the new file."""
    path = _writable_target("save", os.fspath(path))
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(folder, time.time())
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        try:
            # mkstemp makes the file private (0600); give it the mode a normal write would.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, _file_mode(path))
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
            os.fsync(fd)  # the bytes are on disk before the rename makes them visible
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        except OSError:  # some file systems cannot fsync a directory; the data is safe anyway
            pass
        finally:
            os.close(dir_fd)


def _file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777  # keep an existing file's permissions
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
