"""The runs of a race as text: `sgd:lr=0.1,adam:lr=0.01` <-> a list of per-run settings.

A race (`Race`) and a surface (`Surface`) both take a list of runs, each the settings of one
optimizer: its name, its learning rate, its own hyper-parameters, and for a network the other
settings that may differ per run (schedule, batch size, L2). In a URL they are written as one
`runs=` value: runs separated by commas, each the optimizer's name followed by `:key=value`
pairs. The one idea to understand: a comma inside a value (Adam's `betas=0.9,0.99`) is told
apart from a comma between runs because a new run always starts with an optimizer's name.

    >>> parse_runs("sgd:lr=0.1,adam:lr=0.01:betas=0.9,0.99")
    [{'optimizer': 'sgd', 'lr': 0.1}, {'optimizer': 'adam', 'lr': 0.01, 'betas': [0.9, 0.99]}]
    >>> runs_text([{"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}])
    'sgd:lr=0.1:momentum=0.9'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nn.optim.registry import ALIASES
from nn.optim.registry import resolve as resolve_optimizer
from nn.playground.settings import OPTIMIZERS, SETTINGS, optimizer_settings, parse_settings

__all__ = ["MAX_RUNS", "RUN_KEYS", "parse_runs", "runs_text", "check_run", "value_text"]

#: The most runs a race or a surface holds (four curves and four boundaries stay readable).
MAX_RUNS = 4
#: Settings that may differ from run to run (with each optimizer's own hyper-parameters).
RUN_KEYS = ("optimizer", "lr", "schedule", "decay_steps", "gamma", "batch_size", "l2")


def _pieces(text: str) -> list[tuple[str, list[str]]]:
    """`text` cut into runs: (name, ["key=value", ...]), commas inside values kept."""
    runs: list[tuple[str, list[str]]] = []
    for piece in text.split(","):
        head = piece.split(":", 1)[0].strip()
        if not piece.strip():  # not taken as the rest of a value: "lr=0.1," is no number
            raise ValueError(f"runs: an empty run in {text!r} (a comma at the end, or two in a "
                             "row); runs are written sgd:lr=0.1,adam:lr=0.01")
        if head in OPTIMIZERS or head in ALIASES:  # an old name (cg, es, ...) starts one too
            parts = piece.split(":")
            runs.append((head, [p for p in parts[1:]]))
        elif runs and runs[-1][1] and "=" not in piece.split(":", 1)[0]:
            # the rest of a value with commas (betas=0.9,0.99), perhaps with more pairs after
            rest = piece.split(":")
            runs[-1][1][-1] += "," + rest[0]
            runs[-1][1].extend(rest[1:])
        else:
            raise ValueError(f"runs: {head!r} is not an optimizer (in {piece.strip()!r}); a run "
                             f"starts with one of {', '.join(OPTIMIZERS)} "
                             "(runs=sgd:lr=0.1,adam:lr=0.01)")
    return runs


def parse_runs(text: str, keys: Sequence[str] = RUN_KEYS) -> list[dict[str, Any]]:
    """The runs written in `text`, each checked (an unknown key or a bad value names itself).

    `keys` are the settings a run may set besides its optimizer's own hyper-parameters.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("runs: give at least one run, such as runs=sgd:lr=0.1,adam:lr=0.01")
    runs = []
    for number, (name, pairs) in enumerate(_pieces(text), 1):
        query = {"optimizer": name}
        for pair in pairs:
            if not pair.strip():
                continue
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"runs: run {number} ({name}): {pair!r} is not key=value")
            key = key.strip()
            if key in query:
                raise ValueError(f"runs: run {number} ({name}) sets {key} twice")
            query[key] = value
        try:
            runs.append(check_run(_parsed(number, name, query), keys, number))
        except ValueError as error:
            message = str(error)
            raise ValueError(message if message.startswith("runs:") else f"runs: {message}") \
                from None
    if len(runs) > MAX_RUNS:
        raise ValueError(f"runs: at most {MAX_RUNS} runs, got {len(runs)}")
    return runs


def _parsed(number: int, name: str, query: dict[str, str]) -> dict[str, Any]:
    try:
        return parse_settings(query)
    except (ValueError, TypeError) as error:
        raise ValueError(f"runs: run {number} ({name}): {error}") from None


def check_run(run: Mapping[str, Any] | str, keys: Sequence[str] = RUN_KEYS,
              number: int = 1) -> dict[str, Any]:
    """One run's settings (a dict, or its URL text such as "adam:lr=0.01"), checked."""
    if isinstance(run, str):
        runs = parse_runs(run, keys)
        if len(runs) != 1:
            raise ValueError(f"run {number}: {run!r} is {len(runs)} runs, not one")
        return runs[0]
    if not isinstance(run, Mapping):
        raise TypeError(f"run {number} must be a dict of settings such as "
                        f"{{'optimizer': 'sgd', 'lr': 0.1}}, got {run!r}")
    asked = run.get("optimizer", SETTINGS["optimizer"].default)
    try:  # an old name is its registered name now, with the options it implies
        name, implied = resolve_optimizer(asked)
    except ValueError as error:
        raise ValueError(f"run {number}: {error}") from None
    extra = optimizer_settings(name)
    out: dict[str, Any] = {"optimizer": name}
    run = {**{k: v for k, v in implied.items() if k in keys or k in extra}, **run}
    for key, value in run.items():
        if key == "optimizer":
            continue
        if key in extra:
            spec = extra[key]
        elif key in keys:
            spec = SETTINGS[key]
        else:
            allowed = [k for k in keys if k != "optimizer"] + list(extra)
            raise ValueError(f"run {number} ({name}): {key!r} cannot be set per run; a run "
                             f"sets {', '.join(allowed)}")
        out[key] = spec.check(list(value) if isinstance(value, tuple) else value)
    return out


def value_text(value: Any) -> str:
    """A setting's value as URL text (the inverse of parse_settings)."""
    if value is None:
        return "full"
    if isinstance(value, (list, tuple)):
        return ",".join(value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def runs_text(runs: Iterable[Mapping[str, Any]]) -> str:
    """The URL text of `runs` (the inverse of `parse_runs`)."""
    return ",".join(":".join([run["optimizer"], *(f"{k}={value_text(v)}"
                                                  for k, v in run.items() if k != "optimizer")])
                    for run in runs)
