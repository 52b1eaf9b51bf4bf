"""Can one playground server take a classroom? A bounded load test over loopback.

`python -m benchmarks.server_load [--clients 30] [--seconds 20] [--think 1.0]` starts a
playground server in a child process on 127.0.0.1 (loopback only: the test never leaves this
machine), then `clients` threads act as visitors: each creates a session of the default
network (MLP(2, [8, 8, 1]) on the default data), then asks for one step (count=1) and waits
`think` seconds (plus jitter) again and again, reading the frames it gets back as the page
does, and closes its session at the end. Everything is bounded: the duration, the number of
clients (at most 100) and the request timeouts.

Printed: session creation latency (p50, p99), step latency (p50, p99, max), errors (anything
but a 2xx answer, and failed connections), and the server's resident memory after the
sessions were made and at the end (flat memory: the end is not far above the start). The
machine's load average is in the header: latencies on a shared machine depend on it. Not
part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"  # loopback only
SERVER = """
import sys
from nn.playground.server import PlaygroundServer
from nn.playground.session import Session
server = PlaygroundServer("127.0.0.1", 0, max_sessions=int(sys.argv[1]))
Session().step(2)  # as serve() (python -m nn.playground) does before it opens
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    """The resident memory of process `pid` in MB (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Client(threading.Thread):
    def __init__(self, base: str, until: float, think: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.base, self.until, self.think = base, until, think
        self.rng = random.Random(seed)
        self.create_s: list[float] = []
        self.step_s: list[float] = []
        self.errors: list[str] = []

    def post(self, path: str) -> dict:
        request = urllib.request.Request(self.base + path, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def run(self) -> None:
        try:
            start = time.perf_counter()
            made = self.post("/api/sessions")
            self.create_s.append(time.perf_counter() - start)
        except (OSError, urllib.error.URLError) as error:
            self.errors.append(f"create: {error}")
            return
        sid, run = made["id"], made["frame"]["run"]
        have, thinned = len(made["frame"]["history"]), made["frame"]["history_thinned"]
        while time.perf_counter() < self.until:
            try:
                start = time.perf_counter()
                frame = self.post(f"/api/sessions/{sid}/step?count=1&run={run}&since={have}"
                                  f"&thinned={thinned}")
                self.step_s.append(time.perf_counter() - start)
                have = frame["history_start"] + len(frame["history"])
                thinned = frame["history_thinned"]
            except (OSError, urllib.error.URLError) as error:
                self.errors.append(f"step: {error}")
            time.sleep(self.think * self.rng.uniform(0.5, 1.5))
        try:
            self.post(f"/api/sessions/{sid}/close")
        except (OSError, urllib.error.URLError) as error:
            self.errors.append(f"close: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_load",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a client waits between two steps (with +-50%% jitter)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 100 or not 0 < args.seconds <= 300 or args.think < 0:
        parser.error("--clients 1..100, --seconds in (0, 300], --think >= 0")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", SERVER, str(args.clients + 2)],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(child.stdout.readline())
        base = f"http://{HOST}:{port}"
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        print(f"playground load test: {args.clients} clients over loopback, {args.seconds:g} s, "
              f"one step of the default network every ~{args.think:g} s each; Python "
              f"{platform.python_version()}, {os.cpu_count()} CPUs, load average "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        until = time.perf_counter() + args.seconds
        clients = [Client(base, until, args.think, seed) for seed in range(args.clients)]
        for c in clients:
            c.start()
        time.sleep(min(5.0, args.seconds / 4))
        rss_start = rss_mb(child.pid)
        for c in clients:
            c.join(args.seconds + 120)
        rss_end = rss_mb(child.pid)
    finally:
        child.terminate()
        child.wait(30)
    create = [t for c in clients for t in c.create_s]
    steps = [t for c in clients for t in c.step_s]
    errors = [e for c in clients for e in c.errors]
    results = {
        "clients": args.clients, "seconds": args.seconds, "think_s": args.think,
        "sessions": len(create), "steps": len(steps), "errors": len(errors),
        "create_p50_s": percentile(create, 0.5), "create_p99_s": percentile(create, 0.99),
        "step_p50_s": percentile(steps, 0.5), "step_p99_s": percentile(steps, 0.99),
        "step_max_s": max(steps, default=float("nan")),
        "rss_after_warmup_mb": rss_start, "rss_end_mb": rss_end,
    }
    for key, value in results.items():
        print(f"  {key:22} {value:.3f}" if isinstance(value, float) else f"  {key:22} {value}")
    for error in errors[:5]:
        print(f"  error: {error}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
