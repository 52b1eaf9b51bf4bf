"""Can the playground keep a class watching? Steps per second and frames per second, measured.

`python -m benchmarks.playground [--seconds S] [--no-browser] [--static]` measures the
playground's target workload, `MLP(2, [8, 8, 1])` on 200 training points, full batch, SGD (the
issue asks for at least 10 optimizer steps per second with the views at 5 or more frames per
second):

1. `Session.step()` alone: optimizer steps per second, in CPU time, compiled (the default) and
   eager (`compiled=False`) in the same run, for SGD and for the methods that evaluate the loss
   many times per step (L-BFGS, CG, CMA-ES, the ES), with the playground's defaults;
2. `Session.frame()` alone: how long one frame of the views takes to compute (CPU time);
3. the page's play loop over real HTTP: a client asks "as many steps as fit in 25 ms, then a
   frame" again and again, as the page does; steps and frames per second in wall-clock time;
4. the same in the real page in headless Chromium (when Playwright and Chromium are there):
   frames the page actually drew per second, and steps per second, while playing; and a race
   of four runs playing in the race page, steps per second of each run.

`--static` measures the static site instead (`--export`: the same page with chainrule in
Pyodide in the browser; benchmarks/static_site.py). One run, printed as a table; the machine's
load average is in the header, since wall-clock numbers on a shared machine depend on it. Not
part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
import urllib.request

from nn.playground import objective
from nn.playground.server import PlaygroundServer
from nn.playground.session import Session

#: The target workload: 250 points of which 20% are held out leaves 200 training points.
SETTINGS = {"dataset": "moons", "n": 250, "test_fraction": 0.2, "hidden": [8, 8],
            "optimizer": "sgd", "lr": 0.1, "seed": 0}
QUERY = "dataset=moons&n=250&test_fraction=0.2&hidden=8,8&optimizer=sgd&lr=0.1&seed=0"
CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def session_steps(seconds: float, compiled: bool = True, **changes) -> dict:
    objective.cache_clear()  # measure the first compile too (reported apart)
    s = Session(**{**SETTINGS, **changes}, compiled=compiled)
    assert len(s.X_train) == 200 and s.settings["batch_size"] is None
    first = time.process_time()
    s.step()  # warm up (and compile)
    first = time.process_time() - first
    s.step()  # a compiled trace is checked against eager execution on its first reuse
    start, steps = time.process_time(), 0
    while time.process_time() - start < seconds:
        s.step()
        steps += 1
    cpu = time.process_time() - start
    return {"steps": steps, "cpu_s": cpu, "steps_per_s": steps / cpu, "first_step_s": first,
            "compiled": s.compiled and s.compile_note is None}


#: The methods that evaluate the loss many times per step, with the playground's defaults.
OPTIMIZER_ROWS = [("lbfgs", {"optimizer": "lbfgs"}),
                  ("conjugate_gradient", {"optimizer": "conjugate_gradient"}),
                  ("cmaes", {"optimizer": "cmaes"}),
                  ("evolution_strategy", {"optimizer": "evolution_strategy"})]


def browser_race(seconds: float) -> dict | None:
    """A race of four runs playing in the real page: steps per second of each run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not os.path.exists(CHROMIUM):
        return None
    server = PlaygroundServer("127.0.0.1", 0)
    server.start()
    runs = "sgd:lr=0.1,sgd:lr=0.1:momentum=0.9,adam:lr=0.01,rmsprop:lr=0.01"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"{server.url}/?{QUERY}&runs={runs}")
            page.wait_for_selector("[data-testid=run-card] [data-testid=train-loss]")
            read = ("() => [state.frames, Math.min(...[...document.querySelectorAll("
                    "'[data-testid=run-steps]')].map(e => Number(e.textContent))), "
                    "performance.now()]")
            page.click("[data-testid=play]")
            page.wait_for_timeout(3000)  # the first steps compile the shared objective
            f0, s0, t0 = page.evaluate(read)
            page.wait_for_timeout(1000 * seconds)
            f1, s1, t1 = page.evaluate(read)
            page.click("[data-testid=pause]")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    wall = (t1 - t0) / 1000
    return {"steps_per_s_per_run": (s1 - s0) / wall, "frames_per_s": (f1 - f0) / wall}


def frame_cost(seconds: float) -> dict:
    s = Session(**SETTINGS)
    s.step(3)
    run = s.run
    start, frames = time.process_time(), 0
    while time.process_time() - start < seconds:
        json.dumps(s.frame(since=len(s.history), run=run))  # what the server sends
        frames += 1
    cpu = time.process_time() - start
    return {"frames": frames, "ms_per_frame": 1000 * cpu / frames}


def http_play(seconds: float) -> dict:
    server = PlaygroundServer("127.0.0.1", 0)
    server.start()
    try:
        def post(path: str) -> dict:
            request = urllib.request.Request(server.url + path, method="POST")
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())

        made = post(f"/api/sessions?{QUERY}")
        sid, run, have = made["id"], made["frame"]["run"], len(made["frame"]["history"])
        start, frames, first = time.perf_counter(), 0, made["frame"]["step_count"]
        cpu0 = time.process_time()
        while time.perf_counter() - start < seconds:
            frame = post(f"/api/sessions/{sid}/step?budget_ms=25&run={run}&since={have}")
            have = frame["history_start"] + len(frame["history"])
            frames += 1
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0  # server and client threads of this process
        steps = frame["step_count"] - first
    finally:
        server.shutdown()
        server.server_close()
    return {"steps": steps, "frames": frames, "wall_s": wall, "steps_per_s": steps / wall,
            "frames_per_s": frames / wall, "cpu_s": cpu, "steps_per_cpu_s": steps / cpu,
            "frames_per_cpu_s": frames / cpu}


def browser_play(seconds: float) -> dict | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not os.path.exists(CHROMIUM):
        return None
    server = PlaygroundServer("127.0.0.1", 0)
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{server.url}/?{QUERY}")
            page.wait_for_selector("[data-testid=neuron]")
            read = "() => [state.frames, Number(document.querySelector(" \
                   "'[data-testid=step-count]').textContent), performance.now()]"
            page.click("[data-testid=play]")
            page.wait_for_timeout(1000)  # settle into the loop
            f0, s0, t0 = page.evaluate(read)
            cpu0 = time.process_time()
            page.wait_for_timeout(1000 * seconds)
            f1, s1, t1 = page.evaluate(read)
            cpu = time.process_time() - cpu0  # the server's share (Chromium runs apart)
            page.click("[data-testid=pause]")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    wall = (t1 - t0) / 1000
    return {"steps": s1 - s0, "frames": f1 - f0, "wall_s": wall,
            "steps_per_s": (s1 - s0) / wall, "frames_per_s": (f1 - f0) / wall,
            "server_cpu_s": cpu, "server_cpu_share": cpu / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.playground",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--static", action="store_true",
                        help="measure the static site instead (--export, chainrule in Pyodide "
                             "in Chromium): see benchmarks/static_site.py")
    args = parser.parse_args(argv)
    if args.static:
        from benchmarks.static_site import main as static_main

        return static_main(["--seconds", str(args.seconds)]
                           + (["--json", args.json] if args.json else []))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"playground benchmark: MLP(2, [8, 8, 1]), 200 training points, full batch, SGD; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results = {"session": session_steps(args.seconds),
               "eager": session_steps(args.seconds, compiled=False)}
    for name, changes in OPTIMIZER_ROWS:
        results[name] = session_steps(args.seconds, **changes)
        results[name + " eager"] = session_steps(args.seconds, compiled=False, **changes)
    results.update(frame=frame_cost(args.seconds), http=http_play(args.seconds))
    if not args.no_browser:
        results["browser"] = browser_play(args.seconds)
        results["race"] = browser_race(args.seconds)
    s, f, h = results["session"], results["frame"], results["http"]
    e = results["eager"]
    print(f"{'Session.step(), steps per CPU second':<46}{'compiled':>9}{'eager':>9}{'ratio':>8}"
          f"   first step (compiles)")
    for name in ["sgd"] + [n for n, _ in OPTIMIZER_ROWS]:
        c, g = results["session" if name == "sgd" else name], \
            results["eager" if name == "sgd" else name + " eager"]
        print(f"{'  ' + name:<46}{c['steps_per_s']:>9.1f}{g['steps_per_s']:>9.1f}"
              f"{c['steps_per_s'] / g['steps_per_s']:>7.1f}x   {c['first_step_s']:.2f} s"
              + ("" if c["compiled"] else "  (ran eagerly)"))
    print()
    print(f"{'measurement':<46}{'steps/s':>9}{'frames/s':>9}")
    print(f"{'Session.step() alone, per CPU second':<46}{s['steps_per_s']:>9.1f}")
    print(f"{'Session.frame() alone, per CPU second':<46}{'':>9}{1000 / f['ms_per_frame']:>9.1f}"
          f"   ({f['ms_per_frame']:.1f} ms per frame)")
    print(f"{'play loop over HTTP, per CPU second':<46}{h['steps_per_cpu_s']:>9.1f}"
          f"{h['frames_per_cpu_s']:>9.1f}")
    print(f"{'play loop over HTTP, wall clock':<46}{h['steps_per_s']:>9.1f}"
          f"{h['frames_per_s']:>9.1f}   (server + client used {h['cpu_s'] / h['wall_s']:.0%}"
          " of a core)")
    b = results.get("browser")
    if b:
        print(f"{'the page playing in Chromium, wall clock':<46}{b['steps_per_s']:>9.1f}"
              f"{b['frames_per_s']:>9.1f}   (the server used {b['server_cpu_share']:.0%} "
              "of a core)")
    elif not args.no_browser:
        print("the page in Chromium: skipped (no playwright or no Chromium)")
    r = results.get("race")
    if r:
        print(f"{'a 4-run race playing in Chromium, per run':<46}{r['steps_per_s_per_run']:>9.1f}"
              f"{r['frames_per_s']:>9.1f}   (wall clock)")
    print(f"targets: compiled >= 5x eager: {s['steps_per_s'] / e['steps_per_s']:.1f}x; "
          f">= 100 steps/s: {s['steps_per_s']:.0f}; closure methods >= 10x: "
          + ", ".join(f"{n} {results[n]['steps_per_s'] / results[n + ' eager']['steps_per_s']:.1f}x"
                      for n, _ in OPTIMIZER_ROWS))
    ok = h["steps_per_cpu_s"] >= 10 and h["frames_per_cpu_s"] >= 5  # the first page's target
    print(f"target (>= 10 steps/s with >= 5 frames/s on one core of this machine): "
          f"{'met' if ok else 'NOT met'}; the wall-clock rows reach it only when a core is free")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"load_average": load, **results}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
