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
    GET  /api/sessions/ID?run=R&since=K        the current frame (history entries from K on;
                                               &thinned=T: all of them when the history was
                                               thinned since the copy made at T)
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

    POST /api/races?runs=sgd:lr=0.1,adam:lr=0.01&SETTINGS    a race -> {"id", "frame"}
    GET  /api/races/ID?since=RUN:K,...         its frame (history entries from K on, by run id)
    POST /api/races/ID/step?count=C&by=CLOCK   advance by C steps, evaluations or seconds
                                               (budget_ms=T: again and again for T ms)
    POST /api/races/ID/runs?run=adam:lr=0.01   add a run; .../runs/RUN/remove removes one
    POST /api/races/ID/runs/RUN/settings?lr=.. change a run mid-race (marked on the curves)
    POST /api/races/ID/reset, .../close        back to step 0; free the race
    GET  /api/races/ID/landscape?grid=G&span=S the network's loss on two random directions
    GET  /api/surface-options                  the test functions
    POST /api/surfaces?surface=NAME&runs=...   a surface -> {"id", "frame"}
    POST /api/surfaces/ID/step?count=N&since=K N steps of every run, the points from K on

Every /api/ request is answered by `nn.playground.api.handle`, which the static site's Web
Worker calls too (`--export DIR`, see nn/playground/export.py). The page at / is the one-run
playground, the race (race.html) with `?runs=...`, the surface (surface.html) with `?surface=...`.

Settings follow the rules of `settings.resolve_settings` (a three-class dataset takes
cross_entropy, ...): a new session's answer and a settings change's frame carry "changes", what
those rules changed and why, for the page to show. A new session with link=1 is a link being
opened: a bad value in it is left out (its default stands) and named in "changes". Otherwise a
bad setting gets HTTP 400 with {"error": "..."} naming it; an unknown or expired session 404;
a full server, or Look inside without Graphviz's dot, 503; a request from another site's
page, or naming a host this server does not answer to, 403 (see PlaygroundServer). A
frame's numbers are the Session's: `train_loss` as a JSON number and `train_loss_repr` as
Python's repr of the float.
"""

from __future__ import annotations

import argparse
import errno
import html
import ipaddress
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
from nn.playground.export import QUERY_PAGES
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
    "race.html": "text/html; charset=utf-8",
    "race.js": "text/javascript; charset=utf-8",
    "surface.html": "text/html; charset=utf-8",
    "surface.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "transport.js": "text/javascript; charset=utf-8",
    "shared.js": "text/javascript; charset=utf-8",
    "race.css": "text/css; charset=utf-8",
}
# The page fetches only from its own server (a browser enforces it, so a test can rely on it),
# and only pages of this server may frame it (no other site can put it under a click-jacking
# overlay). show() serves notebooks, whose page is another local origin: see NOTEBOOK_FRAMERS.
PAGE_POLICY = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "frame-ancestors 'self'")
#: Who may frame the page of the server behind show(): a notebook on this machine (Jupyter on
#: any local port, VS Code's notebook view). That server listens on 127.0.0.1 only.
NOTEBOOK_FRAMERS = ("'self' http://localhost:* http://127.0.0.1:* https://localhost:* "
                    "https://127.0.0.1:* vscode-webview:")
#: Host names a browser on this machine uses for the server (any IP address is accepted too).
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
#: Seconds a connection may sit idle or half-sent before the server drops it.
CONNECTION_TIMEOUT = 20.0
#: Connections served at once (each is a thread); more get a 503 at once instead of a thread.
MAX_CONNECTIONS = 64


class PlaygroundServer(ThreadingHTTPServer):
    """An HTTP server holding a Registry; each request runs in its own thread.

    Only its own page may drive it: a request must name the server by an address it answers
    to (the Host header: an IP address, a localhost name, the --host given, this machine's
    name, or one of `allowed_hosts`), which defeats DNS rebinding; and a request that changes
    anything (every POST) must come from the server's own pages, not another site's (the
    Origin and Sec-Fetch-Site headers browsers send). Tools such as curl send neither header
    and are served. Connections time out after CONNECTION_TIMEOUT seconds, at most
    MAX_CONNECTIONS are served at once, and the listen backlog is 128.
    """

    daemon_threads = True
    request_queue_size = 128  # the listen backlog (socketserver's default of 5 drops visitors)

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *, max_sessions: int = 16,
                 idle_seconds: float = 600.0, allowed_hosts: tuple[str, ...] = (),
                 frame_ancestors: str = "'self'") -> None:
        super().__init__((host, port), Handler)
        self.registry = Registry(max_sessions, idle_seconds)
        # This machine's name (and its mDNS form) as classmates may type it; no DNS lookup here,
        # which could stall on a network without a name server.
        machine = socket.gethostname()
        names = {*LOCAL_NAMES, host, machine, f"{machine}.local", *allowed_hosts}
        self.allowed_hosts = {name.lower().rstrip(".") for name in names if name}
        self.page_policy = PAGE_POLICY.replace("frame-ancestors 'self'",
                                               f"frame-ancestors {frame_ancestors}")
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def allows_host(self, header: str | None) -> bool:
        """Whether a request's Host header names this server (see the class docstring)."""
        if not header:
            return False
        host = urlsplit(f"//{header}").hostname  # drops the port, unwraps [v6]
        if host is None:
            return False
        host = host.lower().rstrip(".")
        try:
            ipaddress.ip_address(host)
            return True  # an address is never a rebound name
        except ValueError:
            return host in self.allowed_hosts

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            try:  # too many at once: a short answer now, instead of one more thread
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\nRetry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

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
    timeout = CONNECTION_TIMEOUT  # a half-sent request no longer holds its thread for ever

    # -- routing

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _refusal(self, method: str) -> str | None:
        """Why this request is refused (another site's page, a rebound DNS name), or None."""
        if not self.server.allows_host(self.headers.get("Host")):
            return (f"this server does not answer to the host name "
                    f"{self.headers.get('Host')!r}; open it by its address (such as "
                    f"{self.server.url}) or start it with --allow-host NAME")
        if method != "GET":
            site = self.headers.get("Sec-Fetch-Site")
            if site is not None and site not in ("same-origin", "none"):
                return f"requests from other sites are refused (Sec-Fetch-Site: {site})"
            origin = self.headers.get("Origin")
            if origin is not None:
                parts = urlsplit(origin)
                if origin == "null" or parts.netloc.lower() != self.headers["Host"].lower():
                    return f"requests from other sites are refused (Origin: {origin})"
        return None

    def _route(self, method: str) -> None:
        refusal = self._refusal(method)
        if refusal is not None:
            return self._json({"error": refusal}, HTTPStatus.FORBIDDEN)
        url = urlsplit(self.path)
        try:
            query = dict(parse_qsl(url.query, keep_blank_values=True, strict_parsing=False,
                                   max_num_fields=64))
        except ValueError as error:
            return self._json({"error": f"bad query string: {error}"}, HTTPStatus.BAD_REQUEST)
        parts = [p for p in url.path.split("/") if p]
        try:
            if method == "GET" and (not parts or parts == ["index.html"]):
                # ?surface=... opens the surface view, ?runs=... a race, anything else one run
                page = next((p for key, p in QUERY_PAGES.items() if key in query), "index.html")
                return self._asset(page)
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
        self._send(body, ASSETS[name], policy=self.server.page_policy)

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
        # A playing page makes several requests a second: log only the failures. The request
        # line is the client's text: control characters (a terminal's escape sequences) are
        # written as \xNN, as the standard library does from Python 3.12 on.
        if len(args) >= 2 and str(args[1])[:1] in ("4", "5"):
            message = (format % args).translate(_CONTROL_CHARACTERS)
            sys.stderr.write(f"{self.address_string()} - {message}\n")


#: Control characters (C0, DEL, C1) and the backslash, escaped for a log line.
_CONTROL_CHARACTERS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_CONTROL_CHARACTERS[ord("\\")] = "\\\\"


# ---- running it ----------------------------------------------------------------------------------

_shared: PlaygroundServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PlaygroundServer:
    """One server per process on a free local port, serving in the background (for show())."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PlaygroundServer("127.0.0.1", 0, frame_ancestors=NOTEBOOK_FRAMERS)
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
          max_sessions: int = 16, idle_minutes: float = 10.0,
          allowed_hosts: tuple[str, ...] = ()) -> None:
    """Serve the playground until Ctrl-C."""
    server = PlaygroundServer(host, port, max_sessions=max_sessions,
                              idle_seconds=idle_minutes * 60, allowed_hosts=allowed_hosts)
    # Two steps of the default page's session compile its objective (the trace, then its
    # check against eager execution), so a class opening the page together finds it made.
    Session().step(2)
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
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name visitors may use for this server, besides its IP "
                             "addresses, localhost and this machine's name (repeatable)")
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
              max_sessions=args.max_sessions, idle_minutes=args.idle_minutes,
              allowed_hosts=tuple(args.allow_host))
    except OSError as error:
        wrong_host = isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL
        advice = ("check --host (127.0.0.1: this machine only; 0.0.0.0: every network)"
                  if wrong_host else "choose another --port (0 picks a free one)")
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}; {advice}",
              file=sys.stderr)
        return 2
    return 0
