"""The playground as a static site (`--export`), measured in headless Chromium.

`python -m benchmarks.playground --static` (or `python -m benchmarks.static_site`) exports the
site with a local Pyodide, serves it with the standard library's static file server and measures,
in one run:

1. the site's size, and the time from opening the page to the first numbers on screen (the
   train loss of step 0) and to Python being ready;
2. steps and frames per second while the page plays the playground's target workload
   (`MLP(2, [8, 8, 1])`, 200 training points, full batch, SGD), next to the same page served by
   `python -m nn.playground` in the same Chromium (the ratio is what to read on a loaded machine);
3. how far the browser's numbers are from a native CPython's: the train loss after 20 steps for
   relu / tanh / sigmoid networks and the hinge / bce / cross-entropy losses (exp and log), as
   the largest relative difference. The native side runs in a CPython >= 3.12 (Pyodide's Python
   is 3.14, and 3.12 changed how the built-in sum() adds floats).

Not part of the test run. Needs Playwright, Chromium and the npm tarballs in .cache/npm/.
"""

from __future__ import annotations

import argparse
import functools
import glob
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from nn.playground import export

ROOT = Path(__file__).resolve().parents[1]
QUERY = "dataset=moons&n=250&test_fraction=0.2&hidden=8,8&optimizer=sgd&lr=0.1&seed=0"
CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
#: Settings whose numbers go through tanh, sigmoid, exp and log (libm), 20 steps each.
NUMBER_CASES = [
    {"activation": "relu", "loss": "hinge"},
    {"activation": "tanh", "loss": "hinge"},
    {"activation": "sigmoid", "loss": "mse"},
    {"activation": "tanh", "loss": "bce"},
    {"activation": "relu", "loss": "bce", "optimizer": "adam", "lr": 0.01},
    {"dataset": "spirals", "activation": "tanh", "loss": "cross_entropy"},
]
BASE = {"n": 100, "hidden": [8, 8], "seed": 1}
STEPS = 20


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def reference_python() -> str | None:
    """A CPython >= 3.12 (the site's float sum()); this one if it is."""
    if sys.version_info >= (3, 12):
        return sys.executable
    found = [shutil.which(f"python3.{m}") or "" for m in (14, 13, 12)]
    found += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[234]*/bin/python")))
    for exe in filter(None, [os.environ.get("CHAINRULE_PYTHON312", ""), *found]):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return exe
    return None


def native_losses(cases: list[dict]) -> list[float] | None:
    exe = reference_python()
    if exe is None:
        return None
    code = ("import json, sys\nfrom nn.playground.session import Session\nout = []\n"
            "for c in json.loads(sys.argv[1]):\n"
            f"    s = Session(**c); s.step({STEPS}); out.append(s.train_loss)\n"
            "print(json.dumps(out))")
    done = subprocess.run([exe, "-c", code, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, timeout=600,
                          check=True)
    return json.loads(done.stdout)


def measure(seconds: float, pyodide: str, viz: str) -> dict:
    from playwright.sync_api import sync_playwright

    from nn.playground.server import PlaygroundServer

    folder = Path(tempfile.mkdtemp(prefix="chainrule-site-"))
    served = PlaygroundServer("127.0.0.1", 0)
    served.start()
    static = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder / "site")))
    threading.Thread(target=static.serve_forever, daemon=True).start()
    try:
        written = export.export_site(folder / "site", pyodide=pyodide, viz=viz)
        base = f"http://127.0.0.1:{static.server_address[1]}/"
        cases = [{**BASE, **c} for c in NUMBER_CASES]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{base}?{QUERY}")
            page.wait_for_function("() => document.querySelector("
                                   "'[data-testid=train-loss]').dataset.value", timeout=120_000)
            # times since the page began to load (the browser's own clock)
            first = page.evaluate("() => performance.now()") / 1000
            ready = page.evaluate("() => window.chainruleReadyMs") / 1000
            timeline = [(what, ms / 1000) for what, ms in
                        page.evaluate("() => window.chainruleTimeline")]
            static_play = _play(page, seconds)
            request = ("async (c) => { const t = window.chainruleTransport; "
                       "const made = JSON.parse("
                       "(await t.request('POST', '/api/sessions', c)).body);"
                       # one step a request: a request stops after 10 s (a loaded machine's
                       # first steps, which compile, would otherwise end it early)
                       f" let f; for (let k = 0; k < {STEPS}; k++) f = await t.request('POST', "
                       "`/api/sessions/${made.id}/step`, {count: 1}); "
                       "return JSON.parse(f.body).train_loss; }")
            browser_losses = [page.evaluate(request, _query(c)) for c in cases]
            page.goto(f"{served.url}/?{QUERY}")
            page.wait_for_selector("[data-testid=neuron]")
            server_play = _play(page, seconds)
            browser.close()
    finally:
        served.shutdown()
        served.server_close()
        static.shutdown()
        static.server_close()
        shutil.rmtree(folder, ignore_errors=True)
    native = native_losses(cases)
    numbers = None
    if native is not None:
        numbers = [{"case": c, "browser": b, "native": n,
                    "relative": abs(b - n) / abs(n) if n else abs(b - n)}
                   for c, b, n in zip(NUMBER_CASES, browser_losses, native)]
    return {"site_bytes": written["bytes"], "site_files": len(written["files"]),
            "first_numbers_s": first, "python_ready_s": ready, "timeline": timeline,
            "static": static_play,
            "served": server_play, "numbers": numbers}


def _query(case: dict) -> dict:
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in case.items()}


def _play(page, seconds: float) -> dict:
    read = ("() => [state.frames, Number(document.querySelector("
            "'[data-testid=step-count]').textContent), performance.now()]")
    page.click("[data-testid=play]")
    page.wait_for_timeout(1000)  # settle into the loop
    f0, s0, t0 = page.evaluate(read)
    page.wait_for_timeout(1000 * seconds)
    f1, s1, t1 = page.evaluate(read)
    page.click("[data-testid=pause]")
    page.evaluate("() => Promise.all([state.loop, state.queue])")
    wall = (t1 - t0) / 1000
    return {"steps_per_s": (s1 - s0) / wall, "frames_per_s": (f1 - f0) / wall}


def report(r: dict) -> None:
    s, v = r["static"], r["served"]
    print(f"static site: {r['site_files']} files, {r['site_bytes'] / 1e6:.1f} MB (Pyodide in the "
          f"site); first numbers {r['first_numbers_s']:.1f} s after opening the page "
          f"(Python ready at {r['python_ready_s']:.1f} s)")
    print("  loading: " + ", ".join(f"{what} at {s:.1f} s" for what, s in r["timeline"]))
    print(f"{'playing, wall clock':<46}{'steps/s':>9}{'frames/s':>9}")
    print(f"{'static site (Pyodide in a Web Worker)':<46}{s['steps_per_s']:>9.1f}"
          f"{s['frames_per_s']:>9.1f}")
    print(f"{'served page (python -m nn.playground)':<46}{v['steps_per_s']:>9.1f}"
          f"{v['frames_per_s']:>9.1f}")
    print(f"browser / served steps per second: {s['steps_per_s'] / v['steps_per_s']:.2f}; "
          f"target >= 20 steps/s in the browser: {'met' if s['steps_per_s'] >= 20 else 'NOT met'}"
          " (on this machine, now)")
    if r["numbers"] is None:
        print("numbers: no CPython >= 3.12 found to compare with (set CHAINRULE_PYTHON312)")
        return
    print(f"train loss after {STEPS} steps, browser vs native CPython >= 3.12:")
    for row in r["numbers"]:
        case = ", ".join(f"{k}={v}" for k, v in row["case"].items())
        same = "identical" if row["browser"] == row["native"] else \
            f"relative difference {row['relative']:.2e}"
        print(f"  {case:<52} {same}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.static_site",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pyodide", default=str(ROOT / ".cache" / "npm" /
                                                 export.tarball_name("pyodide")))
    parser.add_argument("--viz", default=str(ROOT / ".cache" / "npm" /
                                             export.tarball_name("@viz-js/viz")))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"static-site benchmark: Pyodide {export.PYODIDE_VERSION}, Chromium, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results = measure(args.seconds, args.pyodide, args.viz)
    report(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"load_average": load, **results}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
