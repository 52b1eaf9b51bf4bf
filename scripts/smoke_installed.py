"""Smoke-run chainrule as a user who installed the wheel gets it: run with that environment's
Python, from a folder outside the repository (scripts/check_release.sh does both).

    python smoke_installed.py CHECKOUT WORKDIR

Checks that `autodiff` and `nn` come from the installed wheel (not from CHECKOUT), that the
`chainrule-demo` command trains and writes its files, and that `chainrule-playground` serves its
page (shipped inside the package) and trains a session through its API. Exits non-zero with a
message on the first thing that fails. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def fail(message: str) -> None:
    print(f"smoke: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def command(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        fail(f"the console script {name} is not installed next to {sys.executable}")
    return str(path)


def check_imports(checkout: Path) -> None:
    import autodiff
    import nn

    for module in (autodiff, nn):
        where = Path(module.__file__).resolve()
        if checkout in where.parents:
            fail(f"{module.__name__} was imported from the checkout ({where}), not the wheel")
    for package in (autodiff, nn):
        if not (Path(package.__file__).parent / "py.typed").exists():
            fail(f"{package.__name__} has no py.typed marker in the installed wheel")
    a, b = autodiff.Value(2.0), autodiff.Value(-3.0)
    out = a * b + b
    out.backward()
    if (a.grad, b.grad) != (-3.0, 3.0):
        fail(f"backward of a * b + b gave ({a.grad}, {b.grad}), not (-3.0, 3.0)")
    import shutil

    if shutil.which("dot"):  # the step-through page is assembled from the package's own files
        page = autodiff.to_html(out)
        if "<svg" not in page or not hasattr(page, "_repr_html_"):
            fail("to_html from the installed wheel gave no drawing")
    print(f"smoke: imports from {Path(autodiff.__file__).parent.parent}, version "
          f"{autodiff.__version__}")


def check_demo(workdir: Path) -> None:
    out = workdir / "demo_output"
    result = subprocess.run([command("chainrule-demo"), "--steps", "3", "--samples", "20",
                             "--no-progress", "--out", str(out)], cwd=workdir,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    if result.returncode:
        fail(f"chainrule-demo exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    files = sorted(p.name for p in out.iterdir())
    wrote = re.search(r"wrote (\d+) files", result.stdout)
    if not wrote or int(wrote.group(1)) != len(files):
        fail(f"chainrule-demo says {wrote and wrote.group(0)!r} but wrote {files}")
    for name in ("decision_boundary.png", "training_curves.png", "grad_flow.png", "model.json"):
        if name not in files:
            fail(f"chainrule-demo wrote no {name}: {files}")
    if "loss_graph.svg" not in files and "loss_graph.dot" not in files:
        fail(f"chainrule-demo wrote no loss graph: {files}")
    print(f"smoke: chainrule-demo wrote {', '.join(files)}")


def check_playground(workdir: Path) -> None:
    log = workdir / "playground.log"
    with open(log, "w") as stdout:
        server = subprocess.Popen([command("chainrule-playground"), "--no-browser", "--port",
                                   "0"], cwd=workdir, stdout=stdout, stderr=subprocess.STDOUT)
    try:
        url = None
        for _ in range(200):  # up to 20 s for the server to say where it listens
            match = re.search(r"(http://127\.0\.0\.1:\d+)/", log.read_text())
            if match:
                url = match.group(1)
                break
            if server.poll() is not None:
                fail(f"chainrule-playground exited {server.returncode}:\n{log.read_text()}")
            time.sleep(0.1)
        if url is None:
            fail(f"chainrule-playground printed no URL:\n{log.read_text()}")

        def call(method: str, path: str) -> tuple[int, bytes]:
            request = urllib.request.Request(url + path, method=method, data=b"" if
                                             method == "POST" else None,
                                             headers={"Origin": url})
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()

        status, page = call("GET", "/")
        if status != 200 or b"<html" not in page.lower():
            fail(f"GET / gave {status}, not the page")
        scripts = re.findall(rb'src="(/static/[^"]+)"', page)
        for src in scripts:  # the page's own files, served from the installed package
            status, _ = call("GET", src.decode())
            if status != 200:
                fail(f"GET {src.decode()} gave {status}")
        _, created = call("POST", "/api/sessions?dataset=xor&hidden=4&n=40")
        session = json.loads(created)["id"]
        _, frame = call("POST", f"/api/sessions/{session}/step?count=3")
        steps = json.loads(frame)["step_count"]
        if steps != 3:
            fail(f"three steps through the API left step_count = {steps}")
        print(f"smoke: chainrule-playground served the page and {len(scripts)} static file(s), "
              f"and trained a session for 3 steps")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    checkout, workdir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    if checkout in workdir.parents or workdir == checkout:
        fail(f"run from outside the checkout, not {workdir}")
    check_imports(checkout)
    check_demo(workdir)
    check_playground(workdir)
    print("smoke: the installed wheel works")
    return 0


if __name__ == "__main__":
    sys.exit(main())
