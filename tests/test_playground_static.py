"""The playground as a static site (`--export`): chainrule in Pyodide in the browser, no server.

The site is exported with a local Pyodide, served by the standard library's plain static file
server (no chainrule process anywhere), and driven in headless Chromium through the page's
testing contract (data-testid), as tests/test_playground_browser.py drives the served page. Every
request the pages make is intercepted: anything not for the static server fails the test.

Needs the pinned npm packages `pyodide` and `@viz-js/viz` as tarballs in .cache/npm/ (what
`CHAINRULE_WITH_BROWSER=1 scripts/setup.sh` fetches); without them the browser tests skip (fail
in CI). Loading Python in a page takes seconds, so one page is opened once and reused.
"""

from __future__ import annotations

import functools
import glob
import http.server
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from autodiff.viz.render import can_render
from nn.playground import export, lab
from nn.playground.server import PlaygroundServer
from nn.playground.session import Session
from nn.playground.settings import parse_settings
from tests.conftest import require_browser_part

ROOT = Path(__file__).resolve().parents[1]
NPM = ROOT / ".cache" / "npm"
PYODIDE_TGZ = NPM / export.tarball_name("pyodide")
VIZ_TGZ = NPM / export.tarball_name("@viz-js/viz")
STEP_COUNT = "[data-testid=step-count]"
TRAIN_LOSS = "[data-testid=train-loss]"
SETTINGS = dict(n=100, hidden=[6, 4], lr=0.2, seed=2)  # relu, hinge, SGD: the defaults
QUERY = "n=100&hidden=6,4&lr=0.2&seed=2"


# ---- without a browser -------------------------------------------------------------------------


def test_the_static_page_keeps_the_served_pages_contract():
    served = (ROOT / "nn/playground/static/index.html").read_text()
    static = export.page("index.html")
    testids = lambda text: sorted(re.findall(r'data-testid="([^"]+)"', text))  # noqa: E731
    assert testids(static) == testids(served) and testids(served)
    assert "/static/" not in static  # relative: the site may live in a subfolder of its host
    assert static.index("static/worker-client.js") < static.index("static/playground.js")


def test_the_sources_zip_holds_both_packages_and_is_the_same_each_time():
    first = export.sources_zip()
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "autodiff/__init__.py" in names and "nn/playground/api.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert export.sources_zip() == first  # so its hash changes only when the code does


def test_export_refuses_a_folder_that_is_not_a_site_and_writes_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(export.ExportError, match="not an exported site"):
        export.export_site(tmp_path, pyodide="https://example.org/pyodide/", viz=str(VIZ_TGZ))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.skipif(not VIZ_TGZ.exists(), reason="no @viz-js/viz tarball in .cache/npm")
def test_the_command_line_writes_the_site(tmp_path, capsys):
    from nn.playground.server import main

    site = tmp_path / "site"
    mirror = "https://mirror.example.org/pyodide"
    assert main(["--export", str(site), "--pyodide", mirror, "--viz", str(VIZ_TGZ)]) == 0
    assert f"python -m http.server -d {site}" in capsys.readouterr().out
    listed = json.loads((site / export.MARK).read_text())["files"]
    assert {f["url"] for f in listed if f["name"] in export.PYODIDE_FILES} == \
        {f"{mirror}/{name}" for name in export.PYODIDE_FILES}
    assert (site / "index.html").is_file() and (site / "lab.html").is_file()
    assert main(["--export", str(site), "--pyodide", "/no/such/folder", "--viz",
                 str(VIZ_TGZ)]) == 2  # the earlier site stays as it was
    assert "no such file or folder" in capsys.readouterr().err
    assert (site / "index.html").is_file()
    with pytest.raises(SystemExit):
        main(["--pyodide", mirror])  # only with --export
    assert "go with --export" in capsys.readouterr().err


@pytest.mark.skipif(not (PYODIDE_TGZ.exists() and VIZ_TGZ.exists()),
                    reason="the pinned npm tarballs are not in .cache/npm (scripts/setup.sh with "
                           "CHAINRULE_WITH_BROWSER=1 fetches them)")
def test_the_pinned_hashes_are_those_of_the_pinned_packages(tmp_path):
    # The CDN's files are the npm package's: the hashes the page checks come from it.
    with tarfile.open(PYODIDE_TGZ) as tar:
        for name, (size, sri) in export.PYODIDE_FILES.items():
            data = tar.extractfile(f"package/{name}").read()
            assert (len(data), export.integrity(data)) == (size, sri), name
    site = tmp_path / "cdn"
    export.export_site(site, viz=str(VIZ_TGZ))  # Pyodide from the CDN, with its hashes
    listed = json.loads((site / export.MARK).read_text())["files"]
    cdn = {f["name"]: f for f in listed if f["url"].startswith(export.PYODIDE_CDN)}
    assert {n: (f["size"], f["integrity"]) for n, f in cdn.items()} == export.PYODIDE_FILES
    assert not (site / "pyodide").exists()
    # a changed file is refused at export, before any browser sees it
    bad = tmp_path / "bad"
    with tarfile.open(PYODIDE_TGZ) as tar:
        tar.extractall(bad, filter="data")
    (bad / "package" / "python_stdlib.zip").write_bytes(b"changed")
    with pytest.raises(export.ExportError, match="python_stdlib.zip.*pinned hash"):
        export.export_site(tmp_path / "site", pyodide=str(bad / "package"), viz=str(VIZ_TGZ))
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("expression, words", [
    ("__import__('os').system('x')", "may be called"),
    ("a.__class__", "is not allowed here"),
    ("[a for a in b]", "is not allowed here"),
    ("q + 1", "unknown name 'q'"),
    ("tanh(a, b)", "may be called"),
    ("9**9**9", "expression:"),  # floats only: overflows at once instead of a huge integer
    ("a +", "not a Python expression"),
    ("a" + " + a" * 200, "at most"),
])
def test_the_lab_builds_only_arithmetic_over_its_values(expression, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        lab.build(expression, "a=2, b=-3")


def test_the_lab_gives_the_gradients_backward_gives():
    out, (a, b) = lab.build("relu(a*b) + b.tanh() - 2**a / b", "a=2, b=-0.5")
    out.backward()
    # by hand: relu is off (a*b < 0); d/da (-2^a/b) = -ln2 2^a / b, d/db = 1 - tanh^2 b + 2^a/b^2
    assert a.grad == pytest.approx(-math.log(2) * 4 / -0.5)
    assert b.grad == pytest.approx(1 - math.tanh(-0.5) ** 2 + 4 / 0.25)
    for bad, words in [("a=1, a=2", "given twice"), ("a=x", "must be a number"),
                       ("tanh=1", "not name=number"), ("a=inf", "finite")]:
        with pytest.raises(ValueError, match=words):
            lab.build("a", bad)


def test_the_lab_never_renames_an_input_when_f_is_that_input():
    out, (a, b) = lab.build("(a)", "a=1.5, b=2")
    assert out is a and a.label == "a" and b.label == "b"
    assert [g["name"] for g in lab.lab("a", "a=1.5, b=2")["grads"]] == ["a", "b"]


@pytest.mark.skipif(not can_render(), reason="Graphviz's dot is not installed")
def test_the_served_lab_answers_through_the_same_api():
    server = PlaygroundServer("127.0.0.1", 0)
    server.start()
    try:
        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(server.url + path, timeout=30) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        status, html = get("/lab")
        assert status == 200 and 'data-testid="lab-graph"' in html
        status, body = get("/api/lab?expr=a*b&values=a%3D2,b%3D-3")
        answer = json.loads(body)
        assert status == 200 and answer["svg"].startswith("<svg") and answer["data"] == -6.0
        assert [g["grad"] for g in answer["grads"]] == [-3.0, 2.0]
        assert answer["explain"].startswith("Backward pass from f")
        status, body = get("/api/lab?expr=open(1)&values=a%3D1")
        assert status == 400 and "may be called" in json.loads(body)["error"]
        status, page = get("/api/lab/backprop?expr=a*b&values=a%3D2,b%3D-3")
        assert status == 200 and "<svg" in page and "cr-counter" in page
    finally:
        server.shutdown()
        server.server_close()


# ---- in the browser ------------------------------------------------------------------------------


def reference_python() -> str | None:
    """A CPython whose float sum() is the site's: 3.12+ sums floats with compensation (Pyodide
    runs 3.14), so a 3.11 Session differs in the last bits wherever a sum node has 3+ terms."""
    if sys.version_info >= (3, 12):
        return sys.executable
    candidates = [os.environ.get("CHAINRULE_PYTHON312", "")]
    candidates += [shutil.which(f"python3.{m}") or "" for m in (14, 13, 12)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[234]*/bin/python")))
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return exe
    return None


def assert_native(shown: str, steps: int, **settings) -> None:
    """The page's train loss (its repr) is a native Session's after `steps` steps, bit for bit,
    computed in a CPython that adds floats as the site's does. Without one (only CPython 3.10
    or 3.11 here) the numbers can differ in the last bits only, and that is what is checked."""
    if reference_python() is not None:
        assert shown == native_loss(steps, **settings)
        return
    warnings.warn("no CPython >= 3.12 here (set CHAINRULE_PYTHON312): the site's numbers are "
                  "checked to 1e-12, not bit for bit", stacklevel=2)
    s = Session(**settings)
    if steps:
        s.step(steps)
    assert float(shown) == pytest.approx(s.train_loss, rel=1e-12, abs=1e-15)


def native_loss(steps: int, **settings) -> str:
    """repr of a native Session's train loss after `steps` steps (in a Python like the site's)."""
    exe = reference_python()
    assert exe is not None
    if exe == sys.executable:
        s = Session(**settings)
        if steps:
            s.step(steps)
        return repr(s.train_loss)
    code = ("import json, sys; from nn.playground.session import Session; "
            "s = Session(**json.loads(sys.argv[1])); "
            "int(sys.argv[2]) and s.step(int(sys.argv[2])); "
            "print(repr(s.train_loss))")
    out = subprocess.run([exe, "-c", code, json.dumps(settings), str(steps)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.strip()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    # like an older web server that does not know WebAssembly's type: the site copes
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/octet-stream"}

    def log_message(self, format, *args):  # noqa: A002
        pass


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """A plain static file server for `folder`, in a thread (no chainrule code in it)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def need_tarballs() -> None:
    require_browser_part(PYODIDE_TGZ.exists() and VIZ_TGZ.exists(),
                         f"no {PYODIDE_TGZ.name} / {VIZ_TGZ.name} in .cache/npm "
                         "(CHAINRULE_WITH_BROWSER=1 scripts/setup.sh fetches them)")


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser):
    need_tarballs()
    folder = tmp_path_factory.mktemp("site")
    export.export_site(folder, pyodide=str(PYODIDE_TGZ), viz=str(VIZ_TGZ))
    server = serve(folder)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class Visit:
    """A browser context on the static site: every request to any other host is refused and
    recorded (unless `fake` answers it: {url: (bytes, content type)}), and console errors are
    collected."""

    def __init__(self, browser, base: str, fake: dict | None = None) -> None:
        self.base = base
        self.fake = fake or {}
        self.context = browser.new_context(viewport={"width": 1280, "height": 720})
        self.outside: list[str] = []
        self.errors: list[str] = []
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
        self.context.route("**/*", lambda route: self._route(route, origin))
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else 0)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route, origin: str) -> None:
        url = route.request.url
        if url.startswith(self.base) or url.startswith(f"blob:{origin}/"):
            route.continue_()
        elif url in self.fake:
            body, kind = self.fake[url]
            route.fulfill(status=200, body=body, content_type=kind,
                          headers={"Access-Control-Allow-Origin": "*"})
        else:
            self.outside.append(url)
            route.abort()

    def check(self) -> None:
        assert self.outside == [], self.outside
        assert self.errors == [], self.errors


@pytest.fixture(scope="module")
def playground(browser, site):
    visit = Visit(browser, site)
    visit.page.goto(f"{site}?{QUERY}")
    visit.page.wait_for_selector("[data-testid=neuron]")
    yield visit
    visit.context.close()
    visit.check()


def steps(page) -> int:
    return int(page.inner_text(STEP_COUNT))


def test_the_sites_numbers_are_the_native_sessions_bit_for_bit(playground):
    page = playground.page
    page.wait_for_selector("[data-testid=loading]", state="detached")  # Python is running
    assert steps(page) == 0
    assert_native(page.get_attribute(TRAIN_LOSS, "data-value"), 0, **SETTINGS)
    for _ in range(5):
        page.click("[data-testid=step]")
    page.wait_for_function(f"() => document.querySelector('{STEP_COUNT}').textContent === '5'")
    assert_native(page.get_attribute(TRAIN_LOSS, "data-value"), 5, **SETTINGS)
    # the settings in the URL mean the same here as in Python
    url = dict(parse_qsl(urlsplit(page.url).query))
    assert Session(**parse_settings(url)).settings == Session(**SETTINGS).settings


def test_play_runs_and_pause_stops(playground):
    page = playground.page
    start = steps(page)
    page.click("[data-testid=play]")
    page.wait_for_function(
        f"() => Number(document.querySelector('{STEP_COUNT}').textContent) >= {start + 5}")
    page.click("[data-testid=pause]")
    page.evaluate("() => Promise.all([state.loop, state.queue])")
    stopped = steps(page)
    page.wait_for_timeout(300)
    assert steps(page) == stopped and page.is_enabled("[data-testid=play]")
    assert_native(page.get_attribute(TRAIN_LOSS, "data-value"), stopped, **SETTINGS)


def test_a_neurons_graph_draws_and_its_step_through_opens(playground):
    page = playground.page
    page.click("[data-testid=neuron][data-name='layers.0.neurons.1']")
    page.wait_for_selector("[data-testid=neuron-graph] svg .pg-highlight")
    assert "layers.0.neurons.1" in page.eval_on_selector(
        "[data-testid=neuron-graph] .pg-highlight", "g => g.textContent")
    with playground.context.expect_page() as opened:
        page.click("[data-testid=step-through]")
    tab = opened.value
    tab.wait_for_selector("#cr-counter")
    assert tab.inner_text("#cr-counter").startswith("Step 0 of ")
    tab.close()


@pytest.mark.skipif("race.html" not in export.static_files(),
                    reason="no race page in this build yet (nn/playground/static/race.html): a "
                           "?runs= link has nothing to open")
def test_a_race_link_opens_its_runs(browser, site):
    visit = Visit(browser, site)
    try:
        page = visit.page
        page.goto(f"{site}?runs=sgd:lr=0.1,adam:lr=0.01&n=60&hidden=3&seed=1")
        page.wait_for_function("() => document.querySelectorAll("
                               "'[data-testid=run-card]').length === 2")
        assert urlsplit(page.url).path.endswith("/race.html") and "runs=" in page.url
    finally:
        visit.context.close()
    visit.check()


def test_the_expression_lab_draws_a_graph(browser, site):
    visit = Visit(browser, site)
    try:
        page = visit.page
        page.goto(f"{site}lab.html?expr=relu(a*b)%2Bb&values=a%3D2,b%3D-0.5")
        page.wait_for_selector("[data-testid=lab-graph] svg")
        result = page.inner_text("[data-testid=lab-result]")
        assert "df/da = 0" in result and "df/db = 1" in result  # relu is off: only +b flows
        assert page.inner_text("[data-testid=lab-explain]").startswith("Backward pass from f")
        page.fill("[data-testid=lab-expr]", "__import__('os')")
        page.click("[data-testid=lab-go]")
        page.wait_for_selector("[data-testid=error]:not([hidden])")
        assert "may be called" in page.inner_text("[data-testid=error]")
    finally:
        visit.context.close()
    visit.check()


def test_pyodide_from_the_cdn_is_checked_against_its_pinned_hashes(browser, tmp_path):
    """The default site loads Pyodide from the CDN. Here the CDN's answers come from the npm
    tarball (the files jsDelivr serves), once as they are and once with one file changed."""
    need_tarballs()
    export.export_site(tmp_path / "site", viz=str(VIZ_TGZ))
    kinds = {".mjs": "text/javascript", ".wasm": "application/wasm", ".zip": "application/zip",
             ".json": "application/json"}
    with tarfile.open(PYODIDE_TGZ) as tar:
        files = {name: tar.extractfile(f"package/{name}").read() for name in export.PYODIDE_FILES}
    server = serve(tmp_path / "site")
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        for changed in (None, "python_stdlib.zip"):
            fake = {export.PYODIDE_CDN + name: (data + b"!" if name == changed else data,
                                                kinds[Path(name).suffix])
                    for name, data in files.items()}
            visit = Visit(browser, base, fake)
            try:
                visit.page.goto(f"{base}?n=40&hidden=3")
                if changed is None:
                    visit.page.wait_for_selector("[data-testid=neuron]")
                    assert_native(visit.page.get_attribute(TRAIN_LOSS, "data-value"), 0,
                                  n=40, hidden=[3])
                else:
                    visit.page.wait_for_function(
                        "() => document.querySelector('[data-testid=loading]')"
                        ".textContent.includes('could not start')")
                    assert visit.page.get_attribute(TRAIN_LOSS, "data-value") == ""
                    # the browser refuses the changed file (a worker sees "Failed to fetch")
                    assert any("Failed to fetch" in e for e in visit.errors), visit.errors
                    visit.errors = []
            finally:
                visit.context.close()
            visit.check()
    finally:
        server.shutdown()
        server.server_close()


NODE_SCRIPT = r"""
import { loadPyodide } from "./pyodide.mjs";
import { readFileSync } from "node:fs";
const py = await loadPyodide({ indexURL: process.cwd() + "/" });
py.unpackArchive(new Uint8Array(readFileSync("chainrule.zip")), "zip",
                 { extractDir: "/home/pyodide/chainrule" });
console.log(py.runPython(readFileSync("check.py", "utf8")));
"""
COMPILE_CHECK = """
import json, sys
sys.path.insert(0, "/home/pyodide/chainrule")
import autodiff
from nn import losses
from nn.data import DATASETS
from nn.layers import MLP

X, y = DATASETS["moons"](20, seed=0)
model = MLP(2, [4, 4, 1], activation="tanh")
targets = [1.0 if t else -1.0 for t in y]
loss_fn = lambda X: losses.hinge([model(x) for x in X], targets)
step = autodiff.compile(loss_fn, params=model.parameters())
value, _ = step(X)
compiled = [p.grad for p in model.parameters()]
model.zero_grad()
eager = loss_fn(X)
eager.backward()
json.dumps({"python": sys.version.split()[0], "compiled": [value, *compiled],
            "eager": [eager.data, *[p.grad for p in model.parameters()]]})
"""


def test_autodiff_compile_runs_in_pyodide(tmp_path):
    """Compiled sessions run in the browser too: in the pinned Pyodide (under Node.js, which
    CI installs with npm), autodiff.compile gives the eager engine's numbers, bit for bit."""
    need_tarballs()
    node = shutil.which("node")
    require_browser_part(node is not None, "Node.js is not installed (apt-get install nodejs)")
    with tarfile.open(PYODIDE_TGZ) as tar:
        for name in export.PYODIDE_FILES:
            (tmp_path / name).write_bytes(tar.extractfile(f"package/{name}").read())
    (tmp_path / "chainrule.zip").write_bytes(export.sources_zip())
    (tmp_path / "run.mjs").write_text(NODE_SCRIPT)
    (tmp_path / "check.py").write_text(COMPILE_CHECK)
    done = subprocess.run([node, "run.mjs"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["python"].startswith("3.")
    assert result["compiled"] == result["eager"]


def test_the_docs_name_the_pinned_versions():
    text = (ROOT / "docs" / "browser.md").read_text()
    assert f"pyodide@{export.PYODIDE_VERSION}" in text
    assert f"@viz-js/viz@{export.VIZ_VERSION}" in text
