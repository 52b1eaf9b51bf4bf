"""The playground's API: one function from a request (method, path, query) to an answer.

The page asks for everything it shows through a handful of requests (`/api/sessions`,
`.../step`, `.../graph`, ...). The one idea to understand: those requests are answered here, and
only here, by `handle`, which knows nothing of HTTP. The web server (`server.py`) calls it for
every `/api/...` request; the static site's Web Worker (`export.py`) calls the very same function
inside Pyodide for every message the page posts. So a route added here works on both at once, and
the browser build cannot drift from the served one.

    >>> registry = Registry()
    >>> made = handle(registry, "POST", "/api/sessions", {"n": "40", "hidden": "3"})
    >>> made.status, sorted(made.body)
    (201, ['changes', 'frame', 'id'])
    >>> answer = handle(registry, "POST", f"/api/sessions/{made.body['id']}/step", {"count": "2"})
    >>> answer.status, answer.body["step_count"]
    (200, 2)
    >>> handle(registry, "POST", "/api/sessions", {"lr": "abc"}).body
    {'error': "lr must be a number, got 'abc'"}

A bad setting gets 400 with {"error": "..."} naming it; an unknown or expired session 404; a full
registry, or Look inside without a way to lay out graphs, 503.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from nn.playground import lab
from nn.playground.frame import json_ready
from nn.playground.race import Race, race_from_query
from nn.playground.session import Diverged, DotMissing, Session
from nn.playground.settings import options, parse_settings, resolve_settings
from nn.playground.surface import Surface, surface_from_query
from nn.playground.surface import options as surface_options

__all__ = ["Registry", "Response", "SessionsFull", "UnknownSession", "handle", "handle_text"]

MAX_STEPS_PER_REQUEST = 100
MAX_BUDGET_MS = 1000
#: No step starts after this many seconds of a request, and a single step that would run
#: longer is undone (a 400 naming the settings that make it long): a request never hangs.
MAX_REQUEST_SECONDS = 10.0
#: The step-through page is a page of its own with an inline script: the policy it needs.
STEP_THROUGH_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; "
                       "script-src 'unsafe-inline'; img-src data:")


class SessionsFull(RuntimeError):
    """Every session slot is taken."""


class UnknownSession(LookupError):
    """No session has this id (it was freed for being idle, or never existed)."""


class Response:
    """An answer: an HTTP status, and a body that is JSON-ready data or, for a page, HTML text."""

    def __init__(self, status: int, body: Any, kind: str = "application/json",
                 policy: str | None = None) -> None:
        self.status, self.body, self.kind, self.policy = status, body, kind, policy

    def text(self) -> str:
        """The body as it goes over the wire: JSON (NaN and infinities as null) or the HTML."""
        if self.kind == "application/json":
            return json.dumps(json_ready(self.body), allow_nan=False)
        return str(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.kind})"


class Registry:
    """The sessions of all visitors, each under a random id; capped, idle ones freed.

    Sessions attached from Python (`show(session)`) are pinned: their owner holds them, so
    they are never freed for being idle and do not count against the cap.
    """

    def __init__(self, max_sessions: int = 16, idle_seconds: float = 600.0) -> None:
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[Session, bool]] = {}
        self._used: dict[str, float] = {}
        self._swept = time.monotonic()

    def create(self, settings: dict[str, Any]) -> tuple[str, Session]:
        self.sweep()
        self._check_room()  # before the (slower) build, so a full server answers at once
        session = Session(**settings)  # a bad setting raises here, before a slot is taken
        return self._add(session, pinned=False), session

    def add(self, item: Any) -> str:
        """A race or a surface made for a visitor: held, capped and freed like a session."""
        self.sweep()
        self._check_room()
        return self._add(item, pinned=False)

    def attach(self, session: Session) -> str:
        with self._lock:
            for sid, (known, _) in self._sessions.items():
                if known is session:
                    return sid
        return self._add(session, pinned=True)

    def _check_room(self) -> None:
        with self._lock:
            visitors = sum(1 for _, pinned in self._sessions.values() if not pinned)
        if visitors >= self.max_sessions:
            raise SessionsFull(
                f"The playground is full: {visitors} sessions are running, the most this "
                f"server allows (--max-sessions {self.max_sessions}). A session left idle for "
                f"{self.idle_seconds / 60:g} minutes is freed; try again then.")

    def _add(self, session: Session, pinned: bool) -> str:
        sid = secrets.token_urlsafe(12)
        with self._lock:
            visitors = sum(1 for _, p in self._sessions.values() if not p)
            if not pinned and visitors >= self.max_sessions:
                room = False
            else:
                room = True
                self._sessions[sid] = (session, pinned)
                self._used[sid] = time.monotonic()
        if not room:
            self._check_room()
        return sid

    def get(self, sid: str) -> Any:
        """The session (or race, or surface) held under `sid`."""
        with self._lock:
            if sid not in self._sessions:
                raise UnknownSession(sid)
            self._used[sid] = time.monotonic()
            return self._sessions[sid][0]

    def close(self, sid: str) -> None:
        with self._lock:
            if sid in self._sessions and not self._sessions[sid][1]:
                del self._sessions[sid], self._used[sid]

    def sweep(self) -> None:
        """Free the visitors' sessions that nobody has used for `idle_seconds`."""
        now = time.monotonic()
        with self._lock:
            self._swept = now
            for sid in [s for s, (_, pinned) in self._sessions.items()
                        if not pinned and now - self._used[s] > self.idle_seconds]:
                del self._sessions[sid], self._used[sid]

    def sweep_now_and_then(self) -> None:
        """Sweep at most once a minute (called on every request, so memory is given back
        even when nobody new arrives)."""
        if time.monotonic() - self._swept > 60:
            self.sweep()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


# ---- the one dispatcher ----------------------------------------------------------------------


def handle(registry: Registry, method: str, path: str, query: Mapping[str, str]) -> Response:
    """Answer one API request: `path` such as "/api/sessions/ID/step", `query` its parameters.

    Never raises for a bad request: every refusal is a Response with its status and a message
    naming what was wrong (an unexpected error is a 500 with the error's text).
    """
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["api"]:
        return _error(f"no such API call: {path}", 404)
    registry.sweep_now_and_then()
    try:
        return _route(registry, method.upper(), parts[1:], dict(query))
    except (ValueError, TypeError) as error:
        return _error(str(error), 400)
    except (SessionsFull, DotMissing) as error:
        return _error(str(error), 503)
    except UnknownSession:
        return _error("This session has expired (it was idle) or never existed; reload the "
                      "page to start a new one.", 404)
    except Exception as error:  # a bug: say so, keep serving
        traceback.print_exc()
        return _error(f"internal error: {type(error).__name__}: {error}", 500)


def handle_text(registry: Registry, method: str, path: str,
                query_json: str) -> tuple[int, str, str]:
    """`handle` for a caller that speaks text (the Web Worker): the query as a JSON object of
    strings in, (status, content type, body text) out."""
    query = json.loads(query_json)
    if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
        response = _error("the query must be an object of strings", 400)
    else:
        response = handle(registry, method, path, query)
    return response.status, response.kind, response.text()


def _route(registry: Registry, method: str, parts: list[str], query: dict[str, str]) -> Response:
    if parts == ["options"] and method == "GET":
        return Response(200, options())
    if parts == ["sessions"] and method == "POST":
        # link=1: the settings of a link being opened; a bad value drops only itself.
        problems: list[dict[str, Any]] | None = [] if query.pop("link", "") == "1" else None
        parsed = parse_settings(query, problems=problems)
        settings, changes = resolve_settings(parsed, None if problems is None else [])
        sid, session = registry.create(settings)
        changes = (problems or []) + changes
        return Response(201, {"id": sid, "frame": session.frame(), "changes": changes})
    if parts == ["lab"] and method == "GET":  # the expression lab: a graph, its backward pass
        return Response(200, lab.lab(query.get("expr", ""), query.get("values", "")))
    if parts == ["lab", "backprop"] and method == "GET":
        return _page(lambda: lab.step_through(query.get("expr", ""), query.get("values", "")))
    if parts[:1] in (["races"], ["surfaces"]) or parts == ["surface-options"]:
        return _race_route(registry, method, parts, query)
    if len(parts) < 2 or parts[0] != "sessions":
        return _error("no such API call", 404)
    session = registry.get(parts[1])
    if not isinstance(session, Session):  # the id of a race or a surface
        raise UnknownSession(parts[1])
    action = parts[2] if len(parts) > 2 else ""
    since = _int(query.pop("since", "0"), "since")
    run = _int(query.pop("run", "-1"), "run")
    # thinned: the history_thinned of the caller's copy; when the session has thinned its
    # history since, the frame sends the whole history again (see Session.max_history).
    thinned_text = query.pop("thinned", None)
    thinned = None if thinned_text is None else _int(thinned_text, "thinned")
    if (method, action) == ("GET", ""):
        known = query.get("version")
        if known is not None and known == f"{session.run}.{session.version}":
            return Response(200, {"unchanged": True})
        return Response(200, session.frame(since, run, thinned=thinned))
    if (method, action) == ("POST", "step"):
        stopped = _steps(session, query)
        frame = session.frame(since, run, thinned=thinned)
        frame["stopped"] = stopped
        return Response(200, frame)
    if (method, action) == ("POST", "settings"):
        rebuilt = session.update(**parse_settings(query, session.settings["optimizer"]))
        frame = session.frame(since, run, thinned=thinned)
        frame["rebuilt"] = rebuilt
        frame["changes"] = session.adjusted
        return Response(200, frame)
    if (method, action) == ("POST", "reset"):
        session.reset()
        return Response(200, session.frame(since, run, thinned=thinned))
    if (method, action) == ("GET", "graph"):
        point = query.get("point", "")
        return Response(200, session.neuron_graph(query.get("neuron", ""),
                                                  _int(point, "point") if point else None))
    if (method, action) == ("GET", "backprop"):
        return _page(lambda: session.step_through(_int(query.get("point", "0"), "point")))
    if (method, action) == ("POST", "close"):
        registry.close(parts[1])
        return Response(200, {"closed": True})
    return _error(f"no such API call: {method} {action}", 404)


def _race_route(registry: Registry, method: str, parts: list[str],
                query: dict[str, str]) -> Response:
    """Races and surfaces: each held in the registry like a session (one slot each)."""
    if parts == ["surface-options"] and method == "GET":
        return Response(200, surface_options())
    if parts == ["races"] and method == "POST":
        race = race_from_query(query)
        return Response(201, {"id": registry.add(race), "frame": race.frame()})
    if parts == ["surfaces"] and method == "POST":
        surface = surface_from_query(query)
        return Response(201, {"id": registry.add(surface), "frame": surface.frame()})
    if len(parts) < 2:
        return _error("no such API call", 404)
    kind = Race if parts[0] == "races" else Surface
    item = registry.get(parts[1])
    if not isinstance(item, kind):
        raise UnknownSession(parts[1])
    action = "/".join(parts[2:])
    if (method, action) == ("POST", "close"):
        registry.close(parts[1])
        return Response(200, {"closed": True})
    if kind is Surface:
        since = _int(query.pop("since", "0"), "since")
        if (method, action) == ("GET", ""):
            return Response(200, item.frame(since, contours=since == 0))
        if (method, action) == ("POST", "step"):
            item.step(_count(query), time_limit=MAX_REQUEST_SECONDS)
            return Response(200, item.frame(since, contours=False))
        return _error(f"no such API call: {method} {action}", 404)
    since = _since(query.pop("since", ""))
    if (method, action) == ("GET", ""):
        return Response(200, item.frame(since))
    if (method, action) == ("POST", "step"):
        by = query.get("by", "steps")
        count = (_count(query) if by == "steps"
                 else _number_in(query.get("count", "1"), "count", 1e-3, 10_000))
        budget = _budget(query)
        if budget is None:
            item.step(count, by, time_limit=MAX_REQUEST_SECONDS)
        else:
            item.play(budget, count, by, time_limit=MAX_REQUEST_SECONDS)
        # while playing the page may ask for coarser small multiples (full ones on pause)
        grid = _int(query.get("grid", "40"), "grid")
        if not 10 <= grid <= 40:
            raise ValueError(f"grid must be between 10 and 40, got {grid}")
        return Response(200, item.frame(since, grid))
    if (method, action) == ("POST", "reset"):
        item.reset()
        return Response(200, item.frame())
    if (method, action) == ("POST", "runs"):
        item.add(query.get("run", ""))
        return Response(200, item.frame(since))
    if method == "POST" and len(parts) == 5 and parts[2] == "runs":
        index = item.index_of(_int(parts[3], "run"))
        if parts[4] == "remove":
            item.remove(index)
            return Response(200, item.frame(since))
        if parts[4] == "settings":
            item.update(index, **item.parse_changes(index, query))
            return Response(200, item.frame(since))
    if (method, action) == ("GET", "landscape"):
        return Response(200, item.landscape(grid=_int(query.get("grid", "21"), "grid"),
                                            span=_number_in(query.get("span", "1"), "span",
                                                            1e-3, 100)))
    return _error(f"no such API call: {method} {action}", 404)


def _page(write: Callable[[], str]) -> Response:
    """A step-through page; it opens in a tab of its own, so a refusal is a page there too."""
    try:
        page, status = write(), 200
    except ValueError as error:
        page = ("<!doctype html><meta charset='utf-8'><title>No step-through</title>"
                f"<p style='font:18px sans-serif'>{html.escape(str(error))}</p>")
        status = 400
    return Response(status, page, "text/html; charset=utf-8", STEP_THROUGH_POLICY)


def _error(message: str, status: int) -> Response:
    return Response(status, {"error": message})


def _steps(session: Session, query: dict[str, str]) -> str | None:
    """Step as asked (count=N, or budget_ms=T: whole steps until T ms have passed, at least
    one); returns why training stopped early (it diverged), or None."""
    count = _count(query)
    budget_s = _budget(query)
    limit = MAX_REQUEST_SECONDS
    try:
        if budget_s is None:
            before = session.step_count
            session.step(count, time_limit=limit)
            done = session.step_count - before
            if done < count:
                return (f"stopped after {done} of {count} steps: a request runs for at most "
                        f"{limit:g} s")
            return None
        start = time.perf_counter()
        for _ in range(MAX_STEPS_PER_REQUEST):
            session.step(time_limit=limit)
            if time.perf_counter() - start >= budget_s:
                break
    except Diverged as error:
        return str(error)
    return None


def _count(query: Mapping[str, str]) -> int:
    """A request's `count` of steps: a whole number from 1 to MAX_STEPS_PER_REQUEST."""
    text = query.get("count", "1")
    count = _number_in(text, "count", 1, MAX_STEPS_PER_REQUEST)
    if count != int(count):
        raise ValueError(f"count must be a whole number of steps, got {text!r}")
    return int(count)


def _budget(query: Mapping[str, str]) -> float | None:
    """A request's `budget_ms` in seconds (None when not given): 0 to MAX_BUDGET_MS."""
    text = query.get("budget_ms")
    return None if text is None else _number_in(text, "budget_ms", 0, MAX_BUDGET_MS) / 1000


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None


def _since(text: str) -> dict[int, Any]:
    """`since=0:12,3:40`: how many history entries the page has of each run (by run id); a
    third number (`0:12:1`) is the run's history_thinned when the page's copy was made."""
    out: dict[int, Any] = {}
    for item in filter(None, text.split(",")):
        run, _, rest = item.partition(":")
        count, _, thinned = rest.partition(":")
        out[_int(run, "since")] = ((_int(count, "since"), _int(thinned, "since")) if thinned
                                   else _int(count, "since"))
    return out


def _number_in(text: str, name: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {text!r}")
    return value
