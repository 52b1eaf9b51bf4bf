"""The playground as a static site: the same page, with chainrule running in the visitor's browser.

`python -m nn.playground --export DIR` writes a folder that any static web host serves (GitHub
Pages, a university web space, `python -m http.server`): the playground page and the expression
lab, chainrule's `autodiff` and `nn` as a zip of their sources, a Web Worker that runs them in
Pyodide (CPython compiled to WebAssembly), and Graphviz compiled to WebAssembly (`@viz-js/viz`)
for the drawings. The one idea to understand: nothing is translated. The worker answers the
page's requests with `nn.playground.api.handle`, the very function the web server calls, so the
numbers a student sees in the browser are the numbers `Session` computes in Python.

Pyodide is pinned once, `PYODIDE_VERSION`, with the hash of each file it loads. By default the
page loads it from the jsDelivr CDN (the npm package's files) and the browser checks each file
against its hash (Subresource Integrity); `pyodide=DIR` copies a local copy of the npm package
into the site instead, and then the site needs no internet at all. Graphviz is always bundled:
from a local copy of the npm package, or downloaded from the npm registry once and checked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

__all__ = ["PYODIDE_VERSION", "VIZ_VERSION", "export_site", "main"]

#: The one Pyodide version the site runs (the npm package `pyodide`; Python 3.14 inside).
PYODIDE_VERSION = "314.0.8"
#: The default place the site loads Pyodide from: the npm package's files on jsDelivr.
PYODIDE_CDN = f"https://cdn.jsdelivr.net/npm/pyodide@{PYODIDE_VERSION}/"
#: The files of the pinned Pyodide that the worker loads: size and Subresource Integrity hash.
PYODIDE_FILES = {
    "pyodide.mjs": (
        17758, "sha384-VR+eYp8LZKGhhQ7Nql3TONJIMizM0VRxz87k6V7IyuQHElicjy7ULmkOuB2LFR3b"),
    "pyodide.asm.mjs": (
        1250259, "sha384-zZV4ZBUhsbFzcmaHqwfipWI/BS8YH7Duesu1Rrtyx1HRqFAyz+Mt/HRiMtNyWdwU"),
    "pyodide.asm.wasm": (
        9597892, "sha384-L3e25SSwmf8Q0I8qcgGD/PNkK1wyivO8lWFSko3xXQZ8uLNcYkZXJlX8LU3oVH/o"),
    "python_stdlib.zip": (
        2545550, "sha384-ShW1Tjb4ytDLumQGuwRa/PTLxHcN6agBzp2wIRZSJNK8tEt2QMRDnG69N58KhHqM"),
    "pyodide-lock.json": (
        119077, "sha384-o8SQQvpVlZnOl04+3dFTJipKxul9GbViVusA379wlOrfHSgxbzt0yPiqCTxOiYES"),
}
#: Graphviz in WebAssembly (the npm package `@viz-js/viz`): its one ES module with the wasm inside.
VIZ_VERSION = "3.31.0"
VIZ_FILE = ("dist/viz.js", 1188719,
            "sha384-1K1CIg5RxaUbqpwmMN9nDsPTCO5QMIP2wKBsI5ycbs8Nv74aLuM14Jqo+ayxLE21")
#: The npm tarballs, as the registry publishes them (name, version, sha512 integrity).
NPM_PACKAGES = {
    "pyodide": (PYODIDE_VERSION, "sha512-74Wq1kXOC+CCEzAfxuRAO701nAcCMLjf8NrwvWpu8S41dVMXwXmLQ0"
                                 "5dYB+F4e46AdnGo0oq7YHSVUpHsoarLQ=="),
    "@viz-js/viz": (VIZ_VERSION, "sha512-r7zlQdRvcwvIpjHGgs+KNWHeE/P5/Dq7k8ZAKaMCbZqomxCBJV78gV"
                                 "uQYaHzFVca+kB0mX0fMW9UFevCOBG50A=="),
}
NPM_REGISTRY = "https://registry.npmjs.org"

#: The static site's own files, which the server never sends: the worker and its client.
SITE_ONLY = ("worker.js", "worker-client.js")
#: Pages the served playground opens for a query parameter (as the server chooses them): the
#: static site's index.html goes to the same page itself, when that page exists.
QUERY_PAGES = {"surface": "surface.html", "runs": "race.html"}
#: What marks a folder as an exported site (so exporting again may replace it).
MARK = "static/site.json"


class ExportError(RuntimeError):
    """The site could not be written (a missing or wrong file, a folder in the way)."""


# ---- checking and finding the npm files ----------------------------------------------------------


def integrity(data: bytes, algorithm: str = "sha384") -> str:
    """The Subresource Integrity string of `data`, e.g. "sha384-...". """
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def _checked(data: bytes, expected: str, what: str) -> bytes:
    algorithm = expected.split("-", 1)[0]
    if integrity(data, algorithm) != expected:
        raise ExportError(f"{what} does not have the pinned hash {expected[:20]}...: it is not "
                          "the pinned version, or it was changed")
    return data


def cache_dir() -> Path:
    """Where downloaded npm tarballs are kept: $CHAINRULE_CACHE, else ~/.cache/chainrule."""
    return Path(os.environ.get("CHAINRULE_CACHE") or Path.home() / ".cache" / "chainrule")


def tarball_name(package: str) -> str:
    """The file name `npm pack` gives a package's tarball (@viz-js/viz -> viz-js-viz-3.31.0.tgz)."""
    version = NPM_PACKAGES[package][0]
    return f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"


def npm_tarball(package: str) -> bytes:
    """The pinned tarball of `package`, checked against its pinned integrity: from the cache
    (or a checkout's .cache/npm, where scripts/setup.sh puts it), else downloaded from the npm
    registry and cached."""
    version, expected = NPM_PACKAGES[package]
    name = tarball_name(package)
    for folder in (cache_dir() / "npm", Path(__file__).resolve().parents[2] / ".cache" / "npm"):
        if (folder / name).is_file():
            return _checked((folder / name).read_bytes(), expected, str(folder / name))
    url = f"{NPM_REGISTRY}/{package}/-/{package.split('/')[-1]}-{version}.tgz"
    import urllib.request  # here: the browser build imports this module and never downloads

    print(f"downloading {package}@{version} from the npm registry", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=120) as response:
        data = _checked(response.read(), expected, url)
    (cache_dir() / "npm").mkdir(parents=True, exist_ok=True)
    (cache_dir() / "npm" / name).write_bytes(data)
    return data


def _package_file(source: Path | bytes, inside: str) -> bytes:
    """File `inside` of an npm package: a folder (the package's files), a .tgz, or tarball bytes."""
    if isinstance(source, Path) and source.is_dir():
        path = source / inside
        if not path.is_file():
            raise ExportError(f"{source} has no {inside} (is it the npm package's folder?)")
        return path.read_bytes()
    import tarfile  # here, as urllib above

    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile(f"package/{inside}")
            if member is None:
                raise KeyError(inside)
            return member.read()
    except (tarfile.TarError, KeyError) as error:
        raise ExportError(f"{source if isinstance(source, Path) else 'the tarball'} has no "
                          f"package/{inside}: {error}") from None


def _source(path: str | None, package: str) -> Path | bytes:
    if path is None:
        return npm_tarball(package)
    found = Path(path).expanduser()
    if not found.exists():
        raise ExportError(f"{path}: no such file or folder (give the npm package {package}'s "
                          "folder or its .tgz)")
    return found


# ---- the site ------------------------------------------------------------------------------------


def sources_zip() -> bytes:
    """chainrule's `autodiff` and `nn` packages as a zip: their sources and package data (the
    step-through page's template, ...), byte-identical for the same files (fixed dates and
    order, so the site's hash changes only with the code)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in ("autodiff", "nn"):
            base = Path(resources.files(package))  # type: ignore[arg-type]
            for path in sorted(p for p in base.rglob("*") if p.is_file()
                               and "__pycache__" not in p.parts and p.suffix != ".pyc"):
                name = path.relative_to(base.parent).as_posix()
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return out.getvalue()


def static_files() -> list[str]:
    """The names of the page's files (static/ of the package)."""
    folder = resources.files("nn.playground").joinpath("static")
    return sorted(f.name for f in folder.iterdir() if f.is_file())


def page(name: str) -> str:
    """The served page `name` made static: addresses relative to the site, the worker's
    transport loaded before the page's own scripts (everything else unchanged)."""
    text = resources.files("nn.playground").joinpath("static", name).read_text("utf-8")
    text = re.sub(r'(href|src)="/static/', r'\1="static/', text)
    script = re.search(r'<script[^>]*src="static/[^"]+\.js"', text)
    if script is None:
        raise ExportError(f"{name} has no <script src=\"/static/....js\"> to run")
    head = '<script src="static/worker-client.js"></script>\n'
    pages = {k: v for k, v in QUERY_PAGES.items() if v in static_files()}
    if name == "index.html" and pages:  # ?runs=... opens the race page, as on the server
        head = ("<script>(function () { const q = new URLSearchParams(location.search); "
                f"const pages = {json.dumps(pages)}; for (const k in pages) if (q.has(k)) "
                "{ location.replace(pages[k] + location.search); return; } })();</script>\n"
                + head)
    return text[:script.start()] + head + text[script.start():]


def export_site(directory: str | Path, *, pyodide: str | None = None,
                viz: str | None = None) -> dict:
    """Write the static site into `directory` (made, or replaced when it holds an earlier export);
    returns what was written: {"files", "bytes", "pyodide"}.

    `pyodide`: None loads the pinned Pyodide from its CDN (with hashes); a folder (or a .tgz)
    of the npm package `pyodide` copies it into the site; an http(s) URL loads it from there
    (with the same hashes). `viz`: the npm package `@viz-js/viz` as a folder or .tgz; None
    takes the pinned one from the cache or the npm registry. Nothing is half-written: the site
    is built in a temporary folder and moved into place at the end.
    """
    target = Path(directory).expanduser().resolve()
    if target.exists() and (not target.is_dir() or (any(target.iterdir())
                                                     and not (target / MARK).is_file())):
        raise ExportError(f"{target} exists and is not an exported site; give a new or empty "
                          "folder")
    files: list[dict] = []
    written: dict[str, bytes] = {}

    def add(path: str, data: bytes, listed: str | None = None) -> None:
        written[path] = data
        if listed:
            files.append({"name": listed, "url": "../" + path, "size": len(data),
                          "integrity": integrity(data)})

    for name in static_files():  # the pages at the top, their scripts and styles in static/
        if name.endswith(".html"):
            add(name, page(name).encode("utf-8"))
        else:
            add(f"static/{name}",
                resources.files("nn.playground").joinpath("static", name).read_bytes())
    add("chainrule.zip", sources_zip(), "chainrule.zip")
    add("vendor/viz.js", _checked(_package_file(_source(viz, "@viz-js/viz"), VIZ_FILE[0]),
                                  VIZ_FILE[2], f"@viz-js/viz's {VIZ_FILE[0]}"), "viz.js")
    if pyodide is None or re.match(r"https?://", pyodide):
        base = PYODIDE_CDN if pyodide is None else pyodide.rstrip("/") + "/"
        for name, (size, sri) in PYODIDE_FILES.items():
            files.append({"name": name, "url": base + name, "size": size, "integrity": sri})
        where = base
    else:
        source = _source(pyodide, "pyodide")
        for name, (_, sri) in PYODIDE_FILES.items():
            data = _checked(_package_file(source, name), sri,
                            f"{name} of {pyodide} (Pyodide {PYODIDE_VERSION} is pinned)")
            add(f"pyodide/{name}", data, name)
        where = "pyodide/ (in the site)"
    site = {"pyodide_version": PYODIDE_VERSION, "viz_version": VIZ_VERSION, "files": files}
    add(MARK, json.dumps(site, indent=1).encode("utf-8"))
    add(".nojekyll", b"")  # GitHub Pages: serve every file as it is

    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        for path, data in written.items():
            (building / path).parent.mkdir(parents=True, exist_ok=True)
            (building / path).write_bytes(data)
        if target.exists():
            shutil.rmtree(target)
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return {"files": sorted(written), "bytes": sum(len(d) for d in written.values()),
            "pyodide": where}


def main(directory: str, pyodide: str | None = None, viz: str | None = None) -> int:
    """The --export command line: write the site, say what to do next."""
    try:
        done = export_site(directory, pyodide=pyodide, viz=viz)
    except (ExportError, OSError) as error:
        print(f"--export: {error}", file=sys.stderr)
        return 2
    print(f"wrote the playground as a static site to {directory} "
          f"({len(done['files'])} files, {done['bytes'] / 1e6:.1f} MB); Pyodide "
          f"{PYODIDE_VERSION} from {done['pyodide']}")
    print(f"  try it: python -m http.server -d {directory} 8000   then open "
          "http://localhost:8000/")
    return 0


def npm_tool(argv: list[str]) -> int:
    """`--npm-packages` / `--check-npm DIR`, for scripts/setup.sh: what it fetches with `npm pack`
    ("NAME@VERSION FILE" lines), and the check of what it fetched (a tarball with another hash
    is deleted, so the next run fetches it again)."""
    if argv == ["--npm-packages"]:
        for package, (version, _) in NPM_PACKAGES.items():
            print(f"{package}@{version} {tarball_name(package)}")
        return 0
    if len(argv) == 2 and argv[0] == "--check-npm":
        bad = 0
        for package, (version, expected) in NPM_PACKAGES.items():
            path = Path(argv[1]) / tarball_name(package)
            try:
                _checked(path.read_bytes(), expected, str(path))
                print(f"{package}@{version}: {path} has the pinned hash")
            except (OSError, ExportError) as error:
                print(f"{package}@{version}: {error}", file=sys.stderr)
                path.unlink(missing_ok=True)
                bad += 1
        return 1 if bad else 0
    print("usage: npm_tool(['--npm-packages']) or npm_tool(['--check-npm', DIR])",
          file=sys.stderr)
    return 2
