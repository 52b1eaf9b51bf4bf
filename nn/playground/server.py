"""The playground's web server: the page, its assets, and a small JSON API over Sessions.

`python -m nn.playground` (or `chainrule-playground`) serves the page on a local port and opens
the browser. The one idea to understand: the browser drives. While playing, the page asks for
"as many steps as fit in 100 ms, then a frame" again and again; when it stops asking, nothing
runs. So there is no training thread to manage, a paused or closed page costs nothing, and the
page's numbers are one Session's numbers. In a notebook, `show(session)` serves the page of a
Session made in Python from a server in the background. The server is built on `session.py`
and `settings.py`; neither knows anything of the server. The server is the standard library's
ThreadingHTTPServer: a few JSON requests per second need no framework and no dependency.

API (settings are URL query parameters with the Session's argument names, e.g. `hidden=8,8`):

    GET  /api/options                          the settings, their choices and defaults
    POST /api/sessions?SETTINGS                a new session -> {"id", "frame", "changes"}
                                               (503 when full; &link=1: opening a link)
    GET  /api/sessions/ID?run=R&since=K        the current frame (history entries from K on)
    POST /api/sessions/ID/step?count=N         N <= 100 steps (or budget_ms=T <= 1000: whole
                                               steps until T ms have passed), then a frame;
                                               no step starts after 10 s, and one that would
                                               run longer is undone (400 naming the settings)
    POST /api/sessions/ID/settings?SETTINGS    change settings (live or rebuild), a frame
    POST /api/sessions/ID/reset                back to step 0
    GET  /api/sessions/ID/graph?neuron=NAME&point=I    {"svg", "title", "point", "loss",
                                               "worst", "zero_why"}: one point's loss graph
                                               (zero_why: why its gradients are all 0)
    GET  /api/sessions/ID/backprop?point=I     the step-through page of that loss (HTML)
    POST /api/sessions/ID/close                free the session
    GET  /api/lab?expr=E&values=a=2,b=-3       the expression lab (page /lab): {"svg", "explain",
                                               ...} of E after its backward pass
    GET  /api/lab/backprop?expr=E&values=V     the step-through page of E (HTML)

Every /api/ request is answered by `nn.playground.api.handle`, which the static site's Web
Worker calls too (`--export DIR`, see nn/playground/export.py).

Settings follow the rules of `settings.resolve_settings` (a three-class dataset takes
cross_entropy, ...): a new session's answer and a settings change's frame carry "changes", what
those rules changed and why, for the page to show. A new session with link=1 is a link being
opened: a bad value in it is left out (its default stands) and named in "changes". Otherwise a
bad setting gets HTTP 400 with {"error": "..."} naming it; an unknown or expired session 404;
a full server, or Look inside without Graphviz's dot, 503. A frame's numbers are the Session's:
`train_loss` as a JSON number and `train_loss_repr` as Python's repr of the float.
"""

from __future__ import annotations

import argparse
import errno
import html
import math
import os
import socket
import sys
import threading
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from nn.playground import api
from nn.playground.api import Registry, SessionsFull, UnknownSession
from nn.playground.session import Session

__all__ = ["PageView", "PlaygroundServer", "Registry", "SessionsFull", "UnknownSession", "main",
           "serve", "shared_server", "show"]

#: Files the server hands out, and nothing else.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
    "controls.js": "text/javascript; charset=utf-8",
    "inside.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "lab.html": "text/html; charset=utf-8",
    "lab.js": "text/javascript; charset=utf-8",
}
# The page fetches only from its own server (a browser enforces it, so a test can rely on it).
PAGE_POLICY = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "frame-ancestors *")


class PlaygroundServer(ThreadingHTTPServer):
    """An HTTP server holding a Registry; each request runs in its own thread."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *, max_sessions: int = 16,
                 idle_seconds: float = 600.0) -> None:
        super().__init__((host, port), Handler)
        self.registry = Registry(max_sessions, idle_seconds)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a background daemon thread (tests and notebooks); returns the thread."""
        thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="playground",
                                  daemon=True)
        thread.start()
        return thread


class Handler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    server_version = "chainrule-playground"

    # -- routing

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            query = dict(parse_qsl(url.query, keep_blank_values=True, strict_parsing=False,
                                   max_num_fields=64))
        except ValueError as error:
            return self._json({"error": f"bad query string: {error}"}, HTTPStatus.BAD_REQUEST)
        parts = [p for p in url.path.split("/") if p]
        try:
            if method == "GET" and (not parts or parts == ["index.html"]):
                return self._asset("index.html")
            if method == "GET" and parts in (["lab"], ["lab.html"]):  # the expression lab
                return self._asset("lab.html")
            if method == "GET" and len(parts) == 2 and parts[0] == "static":
                return self._asset(parts[1])
            if parts[:1] == ["api"]:  # answered by the one dispatcher (the worker's too)
                answer = api.handle(self.server.registry, method, url.path, query)
                return self._send(answer.text().encode("utf-8"), answer.kind,
                                  HTTPStatus(answer.status), policy=answer.policy)
            self._json({"error": f"no such page: {url.path}"}, HTTPStatus.NOT_FOUND)
        except ConnectionError:
            return  # the browser went away (a closed tab, a reload) before the answer
        except Exception as error:  # a bug: say so, keep serving
            traceback.print_exc()
            try:
                self._json({"error": f"internal error: {type(error).__name__}: {error}"},
                           HTTPStatus.INTERNAL_SERVER_ERROR)
            except ConnectionError:
                pass

    # -- responses

    def _asset(self, name: str) -> None:
        if name not in ASSETS:
            return self._json({"error": f"no such file: {name}"}, HTTPStatus.NOT_FOUND)
        body = resources.files("nn.playground").joinpath("static", name).read_bytes()
        self._send(body, ASSETS[name], policy=PAGE_POLICY)

    def _json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = api.Response(status, data).text().encode("utf-8")
        self._send(body, "application/json", status)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK,
              policy: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if policy:
            self.send_header("Content-Security-Policy", policy)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # A playing page makes several requests a second: log only the failures.
        if len(args) >= 2 and str(args[1])[:1] in ("4", "5"):
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


# ---- running it ----------------------------------------------------------------------------------

_shared: PlaygroundServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PlaygroundServer:
    """One server per process on a free local port, serving in the background (for show())."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PlaygroundServer("127.0.0.1", 0)
            _shared.start()
        return _shared


def show(session: Session, width: str | int = "100%", height: int = 760) -> PageView:
    """The live playground page for `session`, for a notebook cell (an IFrame).

        view = nn.playground.show(s)    # the last line of a cell: the page appears

    Starts the playground server once per process, in a background thread on a free local
    port, and returns at once: nothing blocks and no browser is needed to run the cell.
    Stepping the session from Python shows on the page within a second, and the page's buttons
    step this very session. It is a function of the server, not a `Session` method, because
    the server is built on the session, never the other way round.
    """
    if not isinstance(session, Session):
        raise TypeError(f"show() needs an nn.playground.Session, got {type(session).__name__}")
    server = shared_server()
    sid = server.registry.attach(session)
    return PageView(f"{server.url}/?session={sid}", width, height)


class PageView:
    """What `show(session)` returns: shows the page in an iframe in Jupyter, a URL elsewhere."""

    def __init__(self, url: str, width: str | int, height: int) -> None:
        self.url, self.width, self.height = url, width, height

    def _repr_html_(self) -> str:
        return (f'<iframe src="{html.escape(self.url)}" width="{html.escape(str(self.width))}" '
                f'height="{int(self.height)}" style="border:1px solid #ccc"></iframe>')

    def __repr__(self) -> str:
        return f"playground page: {self.url}"


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = True,
          max_sessions: int = 16, idle_minutes: float = 10.0) -> None:
    """Serve the playground until Ctrl-C."""
    server = PlaygroundServer(host, port, max_sessions=max_sessions,
                              idle_seconds=idle_minutes * 60)
    print(f"chainrule playground: {server.url}/", flush=True)
    if host in ("0.0.0.0", "::", ""):
        print("  (listening on every network interface: others open this machine's address "
              f"with port {server.server_address[1]})", flush=True)
    print("  Ctrl-C stops it.", flush=True)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(f"{server.url}/",)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chainrule-playground" if os.path.basename(sys.argv[0]).startswith("chainrule")
        else "python -m nn.playground",
        description="Watch a network learn in the browser: a local web page that trains an "
                    "MLP with chainrule, live, and opens any neuron's computation graph.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 shares it with a classroom network)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--max-sessions", type=int, default=16,
                        help="visitors served at once, one session each (default 16)")
    parser.add_argument("--idle-minutes", type=float, default=10.0,
                        help="free a session unused for this long (default 10)")
    site = parser.add_argument_group(
        "a static site instead of a server", "--export DIR writes the playground as files any "
        "web host serves; it runs chainrule in each visitor's browser (Pyodide)")
    site.add_argument("--export", metavar="DIR", help="write the static site into DIR and stop")
    site.add_argument("--pyodide", metavar="DIR_OR_URL",
                      help="with --export: a local copy of the npm package pyodide (a folder or "
                           "its .tgz), copied into the site so it needs no internet; or a URL "
                           "to load it from (default: the jsDelivr CDN, files checked by hash)")
    site.add_argument("--viz", metavar="PATH",
                      help="with --export: the npm package @viz-js/viz (a folder or its .tgz); "
                           "default: the pinned version from the npm registry, checked")
    args = parser.parse_args(argv)
    if args.export is not None:
        from nn.playground.export import main as export_main

        return export_main(args.export, pyodide=args.pyodide, viz=args.viz)
    if args.pyodide is not None or args.viz is not None:
        parser.error("--pyodide and --viz go with --export DIR")
    if args.max_sessions < 1 or not 0 < args.idle_minutes < math.inf:
        parser.error("--max-sessions must be >= 1 and --idle-minutes > 0")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    try:
        serve(args.host, args.port, open_browser=not args.no_browser,
              max_sessions=args.max_sessions, idle_minutes=args.idle_minutes)
    except OSError as error:
        wrong_host = isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL
        advice = ("check --host (127.0.0.1: this machine only; 0.0.0.0: every network)"
                  if wrong_host else "choose another --port (0 picks a free one)")
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}; {advice}",
              file=sys.stderr)
        return 2
    return 0
