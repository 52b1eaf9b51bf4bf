"""Plan the runs, start one worker process per (workload, engine), check and tabulate results.

Workers run one after another, never in parallel, so they do not compete for the CPU, and time
themselves in CPU time (W5 in wall-clock time). Each prints JSON; the runner checks that every
engine computed the same losses and gradients as chainrule (relative tolerance 1e-9), then
prints one table per workload with medians and ratios, and a summary of the targets of the
performance issue. Progress goes to stderr, tables to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.problems import Config

ROOT = Path(__file__).resolve().parent.parent

#: Engines per workload, in table order. chainrule-nn is the W1 model built with nn.MLP;
#: chainrule-sum is W3 with one n-ary autodiff.sum instead of the pairwise additions;
#: chainrule-compiled runs each through autodiff.compile (W1: nn.compile_loss of chainrule-nn).
PLAN = {
    "w1": ["chainrule-nn", "chainrule", "chainrule-compiled", "micrograd", "torch", "floor"],
    "w2": ["chainrule", "chainrule-compiled", "micrograd", "torch"],
    "w3": ["chainrule", "chainrule-sum", "chainrule-compiled", "micrograd", "torch", "floor"],
    "w4": ["chainrule", "micrograd", "torch"],
    "w5": ["chainrule"],
}
ALL_ENGINES = ("chainrule", "chainrule-nn", "chainrule-sum", "chainrule-compiled", "micrograd",
               "torch", "floor")
RTOL, ATOL_SCALE = 1e-9, 1e-12


# ---- running workers ----------------------------------------------------------------------------


def installed(engine: str) -> bool:
    module = {"micrograd": "micrograd", "torch": "torch", "chainrule-nn": "nn"}.get(engine)
    return module is None or importlib.util.find_spec(module) is not None


def run_worker(workload: str, engine: str, cfg: Config, timeout: float, n: int | None = None,
               log=sys.stderr) -> dict:
    """One worker process; its JSON result, or {"error": ...} when it failed or timed out."""
    cmd = [sys.executable, "-m", "benchmarks.worker", workload, engine]
    if cfg.quick:
        cmd.append("--quick")
    if n is not None:
        cmd += ["--n", str(n)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    label = f"{workload} {engine}" + (f" n={n:,}" if n is not None else "")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        print(f"[bench] {label}: timed out after {timeout:.0f} s", file=log, flush=True)
        return {"error": f"timed out after {timeout:.0f} s"}
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"[bench] {label}: failed ({last})", file=log, flush=True)
        return {"error": last}
    print(f"[bench] {label}: {elapsed:.1f} s", file=log, flush=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_all(cfg: Config, workloads: list[str], engines: list[str], timeout: float) -> dict:
    """{workload: {engine: result}}; W2 also gets {"probe": {engine: [probe results]}}."""
    results: dict = {}
    for workload in workloads:
        results[workload] = {}
        for engine in PLAN[workload]:
            if engine not in engines:
                continue
            if not installed(engine):
                results[workload][engine] = {"error": "not installed"}
                continue
            if workload == "w2" and engine != "chainrule-compiled":  # one compile per length
                probes = []
                for n in cfg.chain_probes:  # stop at the first length that fails
                    probe = run_worker("w2-probe", engine, cfg, timeout, n=n)
                    probes.append(probe if "error" not in probe else {"n": n, "ok": False,
                                                                      **probe})
                    if not probes[-1].get("ok"):
                        break
                results.setdefault("w2-probe", {})[engine] = probes
            results[workload][engine] = run_worker(workload, engine, cfg, timeout)
    return results


# ---- checking that the engines agree ------------------------------------------------------------


def _close(a: float, b: float, atol: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b)) + atol


def compare(reference: dict, other: dict) -> list[str]:
    """Differences between two `check` dicts beyond the tolerance, as readable lines."""
    problems = []
    for key, ref in reference.items():
        got = other.get(key)
        if key == "losses" and isinstance(got, list):
            # One loss per training step; engines run different numbers of steps, so compare
            # the steps they all ran (the same weights and the same updates, step after step).
            ref, got = ref[:len(got)], got[:len(ref)]
        if isinstance(ref, list):
            if not isinstance(got, list) or len(got) != len(ref):
                problems.append(f"{key}: {len(ref)} numbers expected, got {got!r:.60}")
                continue
            atol = ATOL_SCALE * max((abs(x) for x in ref), default=0.0)
            bad = [i for i, (a, b) in enumerate(zip(ref, got)) if not _close(a, b, atol)]
            if bad:
                i = bad[0]
                problems.append(f"{key}[{i}]: {got[i]!r} instead of {ref[i]!r} "
                                f"({len(bad)} of {len(ref)} differ)")
        elif got is None or not _close(ref, got, 0.0):
            problems.append(f"{key}: {got!r} instead of {ref!r}")
    return problems


def agreement(results: dict) -> list[str]:
    """Every engine's numbers against chainrule's (the first engine that ran), per workload."""
    lines = []
    for workload in ("w1", "w2", "w3"):
        rows = {e: r for e, r in results.get(workload, {}).items() if "check" in r}
        if len(rows) < 2:
            continue
        ref_name, ref = next(iter(rows.items()))
        for engine, result in rows.items():
            if engine != ref_name:
                for problem in compare(ref["check"], result["check"]):
                    lines.append(f"{workload} {engine} vs {ref_name}: {problem}")
    return lines


# ---- tables -------------------------------------------------------------------------------------


def median(result: dict, *keys: str) -> float | None:
    """Median over repetitions of the per-repetition sum of the given time lists."""
    times = result.get("times")
    if not times:
        return None
    return statistics.median(sum(parts) for parts in zip(*(times[k] for k in keys)))


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def fmt_us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.3f}"


def ratio(slow: float | None, fast: float | None) -> str:
    """How many times faster `fast` is than `slow`."""
    if not slow or not fast:
        return "-"
    return f"{slow / fast:.1f}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    # Text columns (the first, and a trailing note) align left, numbers right.
    left = {0} | ({len(headers) - 1} if headers[-1] == "note" else set())

    def line(cells):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def error_row(engine: str, result: dict, width: int) -> list[str]:
    return [engine, f"({result['error']})"] + [""] * (width - 2)


def w1_table(results: dict, cfg: Config) -> str:
    res = results["w1"]
    step = {e: median(r, "forward", "backward", "update") for e, r in res.items() if "times" in r}
    headers = ["engine", "nodes", "forward", "backward", "update", "step", "vs micrograd",
               "vs torch", "x floor"]
    rows = []
    for engine, r in res.items():
        if "error" in r:
            rows.append(error_row(engine, r, len(headers)))
            continue
        fused = r.get("fused")
        rows.append([
            engine, f"{r['nodes']:,}" if r.get("nodes") else "-",
            fmt_time(median(r, "forward")) + (" (fwd+bwd)" if fused else ""),
            "-" if fused else fmt_time(median(r, "backward")),
            fmt_time(median(r, "update")), fmt_time(step[engine]),
            ratio(step.get("micrograd"), step[engine]), ratio(step.get("torch"), step[engine]),
            ratio(step[engine], step.get("floor")),
        ])
    title = (f"W1 demo step: MLP 2-16-16-1, {cfg.points} moons points, hinge + L2, backward, SGD "
             "(median per step; 'vs X' = times faster than X, 'x floor' = times slower than floor)")
    return title + "\n" + table(headers, rows)


def w2_table(results: dict, cfg: Config) -> str:
    res, probes = results["w2"], results.get("w2-probe", {})
    total = {e: median(r, "forward", "backward") for e, r in res.items() if "times" in r}
    headers = ["engine", "largest N, default recursion limit", "forward us/node",
               "backward us/node", "total us/node", "vs micrograd", "note"]
    rows = []
    for engine, r in res.items():
        tried = probes.get(engine, [])
        ok = [p["n"] for p in tried if p.get("ok")]
        failed = [p for p in tried if not p.get("ok")]
        largest = f"{max(ok):,}" if ok else "none" if tried else "-"
        if failed:
            largest += f" ({failed[0]['error'].split(':')[0]} at {failed[0]['n']:,})"
        if "error" in r:
            rows.append([engine, largest, f"({r['error']})", "", "", "", ""])
            continue
        ops = r["ops"]
        note = "recursion limit raised for timing" if r.get("limit_raised") else ""
        if r.get("fused"):
            note = "forward and backward in one call"
        fused = r.get("fused")  # one call does both: only the total is measured
        rows.append([engine, largest, "-" if fused else fmt_us(median(r, "forward") / ops),
                     "-" if fused else fmt_us(median(r, "backward") / ops),
                     fmt_us(total[engine] / ops),
                     ratio(total.get("micrograd"), total[engine]), note])
    title = (f"W2 deep chain: x = x * 0.999 + 0.001, N steps, then backward; time per node at "
             f"N = {cfg.chain_n:,} (2 nodes per step)")
    return title + "\n" + table(headers, rows)


def w3_table(results: dict, cfg: Config) -> str:
    res = results["w3"]
    per_op = {e: median(r, "forward", "backward") / r["ops"] for e, r in res.items()
              if "times" in r}
    headers = ["engine", "ops", "forward us/op", "backward us/op", "total us/op",
               "vs micrograd", "vs torch", "x floor"]
    rows = []
    for engine, r in res.items():
        if "error" in r:
            rows.append(error_row(engine, r, len(headers)))
            continue
        fused = r.get("fused")  # one call does both: only the total is measured
        rows.append([engine, f"{r['ops']:,}",
                     "-" if fused else fmt_us(median(r, "forward") / r["ops"]),
                     "-" if fused else fmt_us(median(r, "backward") / r["ops"]),
                     fmt_us(per_op[engine]),
                     ratio(per_op.get("micrograd"), per_op[engine]),
                     ratio(per_op.get("torch"), per_op[engine]),
                     ratio(per_op[engine], per_op.get("floor"))])
    title = (f"W3 wide graph: {cfg.wide_n:,} products a_i * b_i summed pairwise, then backward "
             "(chainrule-sum: one n-ary autodiff.sum)")
    return title + "\n" + table(headers, rows)


def w4_table(results: dict, cfg: Config) -> str:
    headers = ["engine", "nodes", "bytes/node (tracemalloc)", "bytes/node (RSS)",
               "objects left for the cyclic GC"]
    rows = []
    for engine, r in results["w4"].items():
        if "error" in r:
            rows.append(error_row(engine, r, len(headers)))
            continue
        rows.append([engine, f"{r['nodes']:,}", f"{r['bytes_tracemalloc']:.0f}",
                     f"{r['bytes_rss']:.0f}", f"{r['gc_objects']:,}"])
    title = ("W4 memory: the W3 graph after backward (leaves included); tracemalloc sees only "
             "Python's allocator, so torch's tensors show in RSS")
    return title + "\n" + table(headers, rows)


def w5_table(results: dict, cfg: Config) -> str:
    r = results["w5"].get("chainrule", {})
    if "error" in r:
        return f"W5 drawing: ({r['error']})"
    headers = ["nodes", "to_dot, every node", "lines", "to_dot, default", "lines",
               "SVG of default (dot -Tsvg)"]
    rows = []
    for row in r.get("rows", []):
        if "svg_default" not in row:
            svg = "not run" if cfg.quick or row is r["rows"][0] else "not run (see above)"
        elif row["svg_default"] is None:
            svg = f"> {row['svg_timeout']:.0f} s (gave up)"
        else:
            svg = fmt_time(row["svg_default"])
        rows.append([f"{row['nodes']:,}", fmt_time(row["dot_full"]), f"{row['lines_full']:,}",
                     fmt_time(row["dot_default"]), f"{row['lines_default']:,}", svg])
    points = ", ".join(str(p) for p in cfg.draw_sizes)
    title = (f"W5 drawing: the W1 expression graph for {points} moons point(s); the default "
             "to_dot summarises big graphs")
    return title + "\n" + table(headers, rows)


def compile_table(results: dict, cfg: Config) -> str | None:
    """The one-time costs of the compiled rows: trace + code generation + compile(), and the
    first reuse, which autodiff.compile checks once against eager execution."""
    rows = []
    for workload in ("w1", "w2", "w3"):
        r = results.get(workload, {}).get("chainrule-compiled", {})
        if "compile" not in r:
            continue
        step = median(r, *[k for k in ("forward", "backward", "update") if k in r["times"]])
        rows.append([workload, f"{r.get('operations') or r.get('ops'):,}", f"{r['lines']:,}",
                     fmt_time(r["compile"]), fmt_time(r["first_check"]), fmt_time(step),
                     f"{r['compile'] / step:.0f}" if step else "-"])
    if not rows:
        return None
    headers = ["workload", "operations", "lines of code", "compile (once)",
               "first reuse, checked", "each call after", "compile / call"]
    return ("chainrule-compiled, one-time costs: trace, generate and compile() the code; the "
            "first reuse is also run eagerly to check it\n" + table(headers, rows))


TABLES = {"w1": w1_table, "w2": w2_table, "w3": w3_table, "w4": w4_table, "w5": w5_table}


# ---- targets ------------------------------------------------------------------------------------


def targets(results: dict) -> list[str]:
    """The issue's targets, each with what this run measured and whether it is met."""
    lines = []

    def check(name: str, value: float | None, goal: str, met: bool | None) -> None:
        status = "n/a " if met is None else ("met " if met else "MISS")
        if value is None:
            shown = "-"
        else:
            shown = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
        lines.append(f"  [{status}] {name}: {shown} ({goal})")

    def speedup(workload, slow, fast, keys):
        res = results.get(workload, {})
        a, b = res.get(slow, {}), res.get(fast, {})
        if "times" not in a or "times" not in b:
            return None
        return median(a, *keys) / median(b, *keys)

    step = ("forward", "backward", "update")
    w1 = results.get("w1", {})
    if w1:
        s = speedup("w1", "micrograd", "chainrule-nn", step)
        check("W1 nn.MLP vs micrograd", s, "at least 10x", None if s is None else s >= 10)
        s = speedup("w1", "torch", "chainrule-nn", step)
        check("W1 nn.MLP vs torch", s, "at least 5x", None if s is None else s >= 5)
        s = speedup("w1", "micrograd", "chainrule", step)
        check("W1 expression graph vs micrograd", s, "at least 5x", None if s is None else s >= 5)
        s = speedup("w1", "chainrule-nn", "floor", step)
        check("W1 nn.MLP / floor", s, "aim: at most 5x", None if s is None else s <= 5)
        s = speedup("w1", "chainrule-compiled", "floor", step)
        check("W1 compiled / floor", s, "at most 2x", None if s is None else s <= 2)
    if results.get("w2"):
        probes = results.get("w2-probe", {}).get("chainrule", [])
        ok = max((p["n"] for p in probes if p.get("ok")), default=None)
        check("W2 chainrule largest N", ok, "1,000,000 under the default limit",
              None if not probes else ok == 1_000_000)
        s = speedup("w2", "micrograd", "chainrule", ("forward", "backward"))
        check("W2 per node vs micrograd", s, "at least 10x", None if s is None else s >= 10)
    w3 = results.get("w3", {}).get("chainrule", {})
    if "times" in w3:
        us = median(w3, "forward", "backward") / w3["ops"] * 1e6
        s = speedup("w3", "micrograd", "chainrule", ("forward", "backward"))
        met = us <= 1.0 or (s is not None and s >= 10)
        check("W3 us/op", us, "at most 1 us/op", us <= 1.0)
        check("W3 vs micrograd", s, "at least 10x (either W3 target suffices)", met)
    w3c, w3f = results.get("w3", {}).get("chainrule-compiled", {}), results.get("w3", {}).get(
        "floor", {})
    if "times" in w3c and "times" in w3f:
        s = (median(w3c, "forward", "backward") / w3c["ops"]) / (
            median(w3f, "forward", "backward") / w3f["ops"])
        check("W3 compiled / floor per op", s, "at most 3x", s <= 3)
    w4 = results.get("w4", {}).get("chainrule", {})
    if "nodes" in w4:
        check("W4 bytes/node (tracemalloc)", w4["bytes_tracemalloc"], "at most 200",
              w4["bytes_tracemalloc"] <= 200)
        check("W4 objects left for the cyclic GC", w4["gc_objects"], "zero",
              w4["gc_objects"] == 0)
    return lines


# ---- the report ---------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at the end"
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()}, "
            f"Python {platform.python_version()}{load}")


def versions(results: dict) -> str:
    seen = {}
    for workload in results.values():
        for engine, r in workload.items():
            if isinstance(r, dict) and r.get("version"):
                seen.setdefault(engine.split("-")[0], r["version"])
    return ", ".join(f"{k} {v}" for k, v in seen.items())


def report(results: dict, cfg: Config, argv: list[str]) -> str:
    quick = " (--quick: sizes too small for the numbers to mean much)" if cfg.quick else ""
    parts = ["\n".join([
        f"chainrule benchmarks, {datetime.date.today()}{quick}",
        f"machine: {machine()}",
        f"engines: {versions(results)}",
        f"command: python -m benchmarks {' '.join(argv)}".rstrip(),
    ])]
    for workload in ("w1", "w2", "w3", "w4", "w5"):
        if workload in results:
            parts.append(TABLES[workload](results, cfg))
    compiled = compile_table(results, cfg)
    if compiled:
        parts.append(compiled)
    problems = agreement(results)
    if problems:
        parts.append("DISAGREEMENT between engines:\n" + "\n".join("  " + p for p in problems))
    else:
        parts.append(f"agreement: every engine's losses and gradients match chainrule's "
                     f"(relative tolerance {RTOL:g})")
    lines = targets(results)
    if lines and cfg.quick:
        parts.append("targets: judged only in a full run (without --quick)")
    elif lines:
        parts.append("targets:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed and memory of chainrule against micrograd, PyTorch and plain floats.")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and two repetitions: checks the suite runs (seconds)")
    parser.add_argument("--engines", default=",".join(ALL_ENGINES),
                        help=f"comma-separated subset of {', '.join(ALL_ENGINES)}")
    parser.add_argument("--workloads", default="w1,w2,w3,w4,w5",
                        help="comma-separated subset of w1,w2,w3,w4,w5")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before one worker is given up (default 900)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results here")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for name, given, allowed in (("engine", engines, ALL_ENGINES), ("workload", workloads, PLAN)):
        unknown = [g for g in given if g not in allowed]
        if unknown:
            parser.error(f"unknown {name} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    cfg = Config(quick=args.quick)
    results = run_all(cfg, workloads, engines, args.timeout)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(report(results, cfg, argv))
    return 1 if agreement(results) else 0
