"""Run one workload on one engine and print the result as JSON on stdout.

The runner starts one worker process per (workload, engine), so a crash, a RecursionError deep
inside an engine or a memory blow-up stays inside that process and only empties one cell of the
table; each engine also starts with a clean heap, which matters for garbage-collector costs.

    python -m benchmarks.worker w1 chainrule-nn --quick
    python -m benchmarks.worker w2-probe micrograd --n 10000
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks import engines, floor, workloads
from benchmarks.problems import Config

WORKLOADS = ("w1", "w2", "w2-probe", "w3", "w4", "w5")
ENGINES = ("chainrule", "chainrule-nn", "chainrule-sum", "chainrule-compiled", "micrograd", "torch",
           "floor")
#: The compiled variant of each workload that has one.
COMPILED = {"w1": workloads.w1_compiled, "w2": workloads.w2_compiled, "w3": workloads.w3_compiled}


def run(workload: str, engine_name: str, cfg: Config, n: int | None = None) -> dict:
    if engine_name == "floor":
        return {"w1": floor.w1, "w3": floor.w3}[workload](cfg)
    adapter = "chainrule" if engine_name.startswith("chainrule") else engine_name
    engine = engines.load(adapter)
    if engine_name == "chainrule-compiled":
        result = COMPILED[workload](engine, cfg)
    elif workload == "w1":
        result = workloads.w1(engine, cfg, engine_name)
    elif workload == "w2-probe":
        result = workloads.w2_probe(engine, n)
    elif workload == "w2":
        result = workloads.w2(engine, cfg, engine_name)
    elif workload == "w3":
        result = workloads.w3(engine, cfg, engine_name)
    elif workload == "w4":
        result = workloads.w4(engine, cfg, engine_name)
    elif workload == "w5":
        result = workloads.w5(engine, cfg, engine_name)
    else:
        raise ValueError(f"unknown workload {workload!r}")
    result["version"] = engine.version()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__)
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("--quick", action="store_true", help="small sizes, two repetitions")
    parser.add_argument("--n", type=int, help="chain length for w2-probe")
    args = parser.parse_args(argv)
    result = run(args.workload, args.engine, Config(quick=args.quick), args.n)
    result.update(workload=args.workload, engine=args.engine, python=engines.python_version())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
