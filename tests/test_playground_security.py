"""The playground server: only its own page may drive it, and no request can hold it.

A request must name the server by an address it answers to (DNS rebinding), a POST must not
come from another site's page (Origin / Sec-Fetch-Site), the page may be framed only by itself,
a half-sent request is dropped, the request log escapes what a client sends, every optimizer
step respects the request's time limit (CMA-ES's n^3 work included), and the history of a long
run stays bounded with the same curves.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time

import pytest

from nn.playground import server as server_module
from nn.playground.server import PlaygroundServer, shared_server
from nn.playground.session import Session


@pytest.fixture
def server():
    srv = PlaygroundServer("127.0.0.1", 0, max_sessions=4)
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, method, path, headers=None, host=None):
    """(status, JSON or text) of one request with exactly these headers."""
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not False:
        conn.putheader("Host", host or f"127.0.0.1:{port}")
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    kind = response.getheader("Content-Type") or ""
    return response.status, (json.loads(body) if "json" in kind else body.decode()), response


# ---- the Host header (DNS rebinding) --------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example"])
def test_a_request_naming_another_host_is_refused(server, host):
    port = server.server_address[1]
    status, body, _ = request(server, "GET", "/api/options", host=host.format(port=port))
    assert status == 403 and "does not answer to the host name" in body["error"]
    status, body, _ = request(server, "POST", "/api/sessions", host=host.format(port=port))
    assert status == 403 and len(server.registry) == 0


def test_a_request_without_a_host_is_refused(server):
    status, body, _ = request(server, "GET", "/api/options", host=False)
    assert status == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST",
                                  "[::1]:{port}", "192.168.1.20:{port}"])
def test_addresses_and_local_names_are_served(server, host):
    port = server.server_address[1]
    status, _, _ = request(server, "GET", "/api/options", host=host.format(port=port))
    assert status == 200


def test_allow_host_adds_a_name():
    srv = PlaygroundServer("127.0.0.1", 0, allowed_hosts=("classroom.lan",))
    try:
        assert srv.allows_host("classroom.lan:8000") and srv.allows_host("Classroom.LAN.")
        assert not srv.allows_host("evil.lan:8000")
    finally:
        srv.server_close()


# ---- state-changing requests from another site ---------------------------------------------


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
])
def test_another_sites_page_cannot_create_sessions(server, headers):
    # fetch(url, {mode: "no-cors", method: "POST"}) from another site sends these headers
    for _ in range(3):
        status, body, _ = request(server, "POST", "/api/sessions?hidden=2", headers)
        assert status == 403 and "other sites are refused" in body["error"]
    assert len(server.registry) == 0


def test_the_own_page_and_tools_without_those_headers_are_served(server):
    port = server.server_address[1]
    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    status, body, _ = request(server, "POST", "/api/sessions?hidden=2", own)
    assert status == 201
    sid = body["id"]
    status, _, _ = request(server, "POST", f"/api/sessions/{sid}/step?count=1", own)
    assert status == 200
    status, _, _ = request(server, "POST", "/api/sessions?hidden=2")  # curl sends neither
    assert status == 201
    # Reading is not refused for a cross-site header (a GET changes nothing) ...
    status, _, _ = request(server, "GET", "/api/options", {"Sec-Fetch-Site": "cross-site"})
    assert status == 200
    # ... but stepping a session from another site is.
    status, _, _ = request(server, "POST", f"/api/sessions/{sid}/step?count=1",
                           {"Origin": "https://evil.example"})
    assert status == 403


# ---- framing ---------------------------------------------------------------------------------


def test_only_the_server_itself_may_frame_the_page(server):
    _, _, response = request(server, "GET", "/")
    policy = response.getheader("Content-Security-Policy")
    assert "frame-ancestors 'self'" in policy and "frame-ancestors *" not in policy


def test_the_notebook_server_may_be_framed_by_a_local_notebook():
    _, _, response = request(shared_server(), "GET", "/")
    policy = response.getheader("Content-Security-Policy")
    ancestors = policy.split("frame-ancestors ")[1].split(";")[0].split()
    assert "'self'" in ancestors and "http://localhost:*" in ancestors and "*" not in ancestors


# ---- connections -----------------------------------------------------------------------------


def test_a_real_backlog_and_a_connection_timeout():
    assert PlaygroundServer.request_queue_size >= 128
    assert 0 < server_module.Handler.timeout <= 60


def test_a_half_sent_request_is_dropped(server, monkeypatch):
    monkeypatch.setattr(server_module.Handler, "timeout", 0.5)
    with socket.create_connection(server.server_address[:2], timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        # The server closes the connection (recv gives b""); the 30 s are a guard, not a bound.
        assert sock.recv(1024) == b""


def test_the_request_log_escapes_control_characters(server, capsys):
    with socket.create_connection(server.server_address[:2], timeout=30) as sock:
        sock.sendall(b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
        while sock.recv(4096):
            pass
    time.sleep(0.2)  # let the handler thread finish writing its log line
    logged = capsys.readouterr().err
    assert "\x1b" not in logged and "\x07" not in logged
    assert "\\x1b[2J\\x1b]0;owned\\x07" in logged


# ---- every step within the time limit ---------------------------------------------------------


def test_cmaes_gives_up_inside_its_long_loops_and_changes_nothing():
    from autodiff import Value
    from nn.optim import CMAES

    params = [Value(0.1 * i) for i in range(30)]
    opt = CMAES(params, seed=0)

    def closure():
        return sum((p - 1) ** 2 for p in params)

    opt.step(closure)
    before = ([p.data for p in params], json.dumps(opt.state_dict()))
    opt.deadline = time.monotonic() - 1  # passed; the closure does not look at it
    with pytest.raises(TimeoutError, match=r"CMAES: the step ran past its deadline"):
        opt.step(closure)
    assert ([p.data for p in params], json.dumps(opt.state_dict())) == before
    opt.deadline = None
    opt.step(closure)  # and it goes on from there


def test_a_session_reports_a_cmaes_step_past_the_limit_and_undoes_it(monkeypatch):
    from nn.optim import gradient_free

    s = Session(n=20, hidden=[3], optimizer="cmaes", seed=1)
    s.step(1)
    loss, count = s.train_loss, s.step_count

    class Late:  # the optimizer's clock says the deadline passed; the session's does not
        @staticmethod
        def monotonic():
            return float("inf")

    monkeypatch.setattr(gradient_free, "time", Late)
    with pytest.raises(ValueError, match=r"one cmaes step takes more than 10 s with these "
                                         r"settings \(n=20, hidden=3"):
        s.step(1, time_limit=10)
    assert (s.train_loss, s.step_count) == (loss, count)


# ---- history ----------------------------------------------------------------------------------


def curve(history, steps):
    """train_loss at each of `steps`, interpolated linearly between history entries."""
    out, j = [], 0
    for t in steps:
        while history[j + 1]["step"] < t:
            j += 1
        a, b = history[j], history[j + 1]
        f = (t - a["step"]) / (b["step"] - a["step"])
        out.append(a["train_loss"] + f * (b["train_loss"] - a["train_loss"]))
    return out


def test_history_stays_bounded_and_draws_the_same_curve(monkeypatch):
    default = Session.max_history
    settings = dict(n=30, hidden=[4], optimizer="adam", lr=0.02, seed=3)
    full = Session(**settings)
    full.step(600)
    monkeypatch.setattr(Session, "max_history", 100)
    thin = Session(**settings)
    frames = [thin.frame()]
    for _ in range(60):
        thin.step(10)
        old = frames[-1]
        frames.append(thin.frame(len(old["history"]) + old["history_start"], old["run"],
                                 thinned=old["history_thinned"]))
        assert len(thin.history) <= 100
    assert thin.history_thinned >= 3
    # Evenly spaced in steps (every stride-th step, and the newest), the very same numbers.
    steps = [h["step"] for h in thin.history]
    stride = steps[1]
    assert steps == list(range(0, 601, stride)) + ([600] if 600 % stride else [])
    assert 50 <= len(thin.history) <= 100
    assert all(h == full.history[h["step"]] for h in thin.history)
    # The page draws about 300 points: the default keeps at least twice as many.
    assert default >= 2 * 300
    # To the eye: the curve through the kept steps stays within 2% of the loss's range of
    # the full curve on average (the early drop is the steepest part).
    truth = [h["train_loss"] for h in full.history]
    kept = curve(thin.history, range(601))
    spread = max(truth) - min(truth)
    assert sum(abs(a - b) for a, b in zip(truth, kept)) / len(truth) < 0.02 * spread
    # A page whose copy predates a thinning gets the whole history again.
    assert any(f["history_start"] == 0 and len(f["history"]) > 10 for f in frames[1:])


def test_frame_without_thinned_keeps_the_old_meaning():
    s = Session(n=20, hidden=[2], seed=0)
    s.step(3)
    frame = s.frame(2, s.run)
    assert frame["history_start"] == 2 and len(frame["history"]) == 2


def test_the_api_sends_the_whole_history_again_after_a_thinning(monkeypatch):
    # The one dispatcher answers the server and the static site's worker alike: both pass
    # `thinned` on, so a page whose copy predates a thinning is sent the whole history again.
    from nn.playground import api

    monkeypatch.setattr(Session, "max_history", 10)
    registry = api.Registry()
    made = api.handle(registry, "POST", "/api/sessions", {"n": "20", "hidden": "2"})
    sid, run = made.body["id"], str(made.body["frame"]["run"])
    path = f"/api/sessions/{sid}"
    first = api.handle(registry, "POST", path + "/step",
                       {"count": "5", "run": run, "since": "1", "thinned": "0"}).body
    assert first["history_start"] == 1 and first["history_thinned"] == 0
    later = api.handle(registry, "POST", path + "/step",
                       {"count": "20", "run": run, "since": "6", "thinned": "0"}).body
    assert later["history_thinned"] >= 1 and later["history_start"] == 0
    assert [h["step"] for h in later["history"]][-1] == 25
    bad = api.handle(registry, "GET", path, {"run": run, "thinned": "x"})
    assert bad.status == 400 and "thinned" in bad.body["error"]


if sys.platform == "win32":  # pragma: no cover - the socket tests above assume POSIX behaviour
    pytestmark = pytest.mark.skip(reason="socket behaviour differs on Windows")
