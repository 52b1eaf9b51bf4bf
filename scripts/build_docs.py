"""Build the documentation site into OUT (OUT/index.html): `bash scripts/docs.sh OUT` runs this.

The site is made with MkDocs (the Material theme) from what the repository already has: the
README is the home page, each guide under docs/ a page, each notebook of the course a page
executed at build time with its outputs and figures (mkdocs-jupyter), and the API reference is
generated from the docstrings (mkdocstrings). The one idea: nothing is written twice. This
script only assembles those files in a folder of its own, rewrites the README's absolute links
(absolute so that they work on the package index) into links between pages, writes the nav,
runs `mkdocs build --strict` (every warning is an error: a broken link between pages, a page
left out of the nav, a notebook that raises), then checks every link and image of the built
HTML that points inside the site.

    python scripts/build_docs.py OUT [--no-execute]

`--no-execute` renders the notebooks without running them (a quick look at the layout).
The notebooks are executed before MkDocs runs, two at a time (one kernel per core), and MkDocs
renders the executed copies.
"""

from __future__ import annotations

import argparse
import html.parser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
REPO = "https://github.com/chainrule/chainrule"
BLOB = REPO + "/blob/main/"
RAW = "https://raw.githubusercontent.com/chainrule/chainrule/main/"

# The guides in reading order; any other Markdown page under docs/ is added after them.
GUIDES = ["install.md", "engine.md", "drawings.md", "compile.md", "optimizers.md", "nn.md",
          "pytorch.md", "playground.md", "browser.md", "bad-input.md", "performance.md",
          "layout.md"]
# The API reference: one page per package, one section per module, from the docstrings.
API = {
    "autodiff": ["autodiff", "autodiff.viz", "autodiff.gradcheck", "autodiff.anomaly"],
    "nn": ["nn", "nn.module", "nn.layers", "nn.losses", "nn.data", "nn.optim", "nn.schedules",
           "nn.lr_finder", "nn.plots", "nn.torch_bridge", "nn.playground"],
}
PLAYGROUND_APP = "playground-app"


def title_of(text: str, fallback: str) -> str:
    """The first Markdown heading of a page."""
    match = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else fallback


def notebook_title(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            return title_of("".join(cell["source"]), path.stem)
    return path.stem


def site_links(text: str) -> str:
    """The README's absolute links to the repository, as links between pages of the site."""
    text = re.sub(re.escape(RAW) + r"docs/([\w.-]+)", r"\1", text)
    text = re.sub(re.escape(BLOB) + r"docs/([\w.-]+\.md)", r"\1", text)
    text = text.replace(BLOB + "CONTRIBUTING.md", "contributing.md")
    text = text.replace(BLOB + "CHANGELOG.md", "changelog.md")
    return text


def _execute(path: str) -> str:
    """Run one notebook in place in a fresh kernel; returns an error message or ''."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(Path(path).parent)}})
    try:
        client.execute()
    except Exception as error:  # a failing cell: the site must not show a broken course
        return f"{Path(path).name}: {type(error).__name__}: {error}"
    nbformat.write(notebook, path)
    return ""


def execute_notebooks(paths: list[Path]) -> list[str]:
    """Execute the notebooks, as many at a time as there are cores (at most 4)."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = max(1, min(4, os.cpu_count() or 1, len(paths)))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [error for error in pool.map(_execute, map(str, paths)) if error]


def export_playground(src: Path) -> bool:
    """The browser playground, when this version has its static export (nn/playground/export.py:
    `python -m nn.playground --export DIR`). Returns whether it was exported."""
    if not (ROOT / "nn" / "playground" / "export.py").exists():
        return False
    subprocess.run([sys.executable, "-m", "nn.playground", "--export", str(src / PLAYGROUND_APP)],
                   check=True, cwd=ROOT)
    return True


def playground_page(exported: bool) -> str:
    if exported:
        return (
            "# The playground in your browser\n\n"
            "The playground below runs chainrule itself in your browser (Pyodide in a Web "
            "Worker): no server, nothing installed. [Open it on its own page]"
            f"({PLAYGROUND_APP}/index.html).\n\n"
            f'<iframe src="{PLAYGROUND_APP}/index.html" title="chainrule playground" '
            'style="width: 100%; height: 760px; border: 1px solid #ccc"></iframe>\n\n'
            "The [playground guide](playground.md) explains every setting.\n")
    # The hook: once `python -m nn.playground --export DIR` exists, the page above replaces this.
    return (
        "# The playground in your browser\n\n"
        "!!! note \"Not in this build\"\n"
        "    This version of chainrule has no static export of the playground yet "
        "(`python -m nn.playground --export DIR`, built by `nn/playground/export.py`). "
        "When it does, this page embeds it, running in the browser. Until then, run it "
        "locally with `python -m nn.playground`: see the [playground guide](playground.md).\n")


def assemble(src: Path, execute: bool = True) -> list:
    """Fill `src` with every page (the notebooks executed, unless not `execute`); returns the
    nav."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (src / "index.md").write_text(site_links(readme), encoding="utf-8")
    for path in sorted((ROOT / "docs").iterdir()):
        if path.suffix in {".md", ".png", ".svg", ".jpg", ".gif"}:
            shutil.copy(path, src / path.name)
    for name, target in (("CONTRIBUTING.md", "contributing.md"),
                         ("CHANGELOG.md", "changelog.md")):
        text = (ROOT / name).read_text(encoding="utf-8")
        text = re.sub(r"\]\(docs/([\w.-]+)\)", r"](\1)", text)
        text = text.replace("](README.md)", "](index.md)")
        (src / target).write_text(site_links(text), encoding="utf-8")

    course = src / "course"
    course.mkdir()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for nb in notebooks:
        shutil.copy(nb, course / nb.name)
    if execute:
        start = time.perf_counter()
        runnable = [course / nb.name for nb in notebooks]
        if importlib.util.find_spec("torch") is None:
            # As in the test suite (conftest.py): a notebook that needs the optional torch is
            # shown without outputs, and says so, unless torch was asked for (CI).
            if os.environ.get("CHAINRULE_WITH_TORCH") == "1":
                raise SystemExit("docs: CHAINRULE_WITH_TORCH=1 but torch is not installed")
            needs = [p for p in runnable if "import torch" in p.read_text(encoding="utf-8")]
            for path in needs:
                print(f"docs: torch is not installed, so {path.name} is shown without its "
                      "outputs (pip install torch==2.13.0 to run it)")
            runnable = [p for p in runnable if p not in needs]
        errors = execute_notebooks(runnable)
        if errors:
            raise SystemExit("docs: a notebook of the course failed:\n" + "\n".join(errors))
        print(f"docs: executed {len(runnable)} notebooks in "
              f"{time.perf_counter() - start:.0f} s")

    (src / "api").mkdir()
    for package, modules in API.items():
        lines = [f"# `{package}` API reference\n",
                 "Generated from the docstrings of this version.\n"]
        lines += [f"::: {module}\n" for module in modules]
        (src / "api" / f"{package}.md").write_text("\n".join(lines), encoding="utf-8")

    exported = export_playground(src)
    (src / "playground-live.md").write_text(playground_page(exported), encoding="utf-8")

    guides = [g for g in GUIDES if (src / g).exists()]
    guides += sorted(p.name for p in src.glob("*.md")
                     if p.name not in guides and p.name not in
                     {"index.md", "course.md", "contributing.md", "changelog.md",
                      "playground-live.md"})

    def page(name: str) -> dict:
        return {title_of((src / name).read_text(encoding="utf-8"), name): name}

    course_nav = [page("course.md")] if (src / "course.md").exists() else []
    course_nav += [{notebook_title(nb): f"course/{nb.name}"} for nb in notebooks]
    return [
        {"Home": "index.md"},
        {"The course": course_nav},
        {"Guides": [page(g) for g in guides]},
        {"Playground in the browser": "playground-live.md"},
        {"API reference": [{package: f"api/{package}.md"} for package in API]},
        {"Contributing": "contributing.md"},
        {"Changelog": "changelog.md"},
    ]


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if value and ((name == "href" and tag in {"a", "link"})
                          or (name == "src" and tag in {"img", "script", "iframe"})):
                self.links.append(value)


def check_links(out: Path) -> list[str]:
    """Every link and image of the built pages that points inside the site must resolve: the
    file must exist and an anchor must name an element of its page. Links that leave the site
    (the repository, PyPI, papers) are not fetched: the build runs without network."""
    pages: dict[Path, _Links] = {}
    for path in out.rglob("*.html"):
        parser = _Links()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        pages[path.resolve()] = parser
    broken = []
    for path, parser in sorted(pages.items()):
        if PLAYGROUND_APP in path.parts:
            continue  # the exported app is checked by its own tests
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:")):
                continue
            if not parts.path:
                target = path
            elif parts.path.startswith("/"):  # 404.html links from the site's root
                target = (out / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(out.resolve())}: {link}"
            if not target.exists():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no element with that id)")
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the site into (OUT/index.html)")
    parser.add_argument("--no-execute", action="store_true",
                        help="render the notebooks without running them")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chainrule-docs-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        env = dict(os.environ, CHAINRULE_ROOT=str(ROOT),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")])),
                   # The notebooks' figures go into the page (Agg would drop every plt.show()).
                   MPLBACKEND="module://matplotlib_inline.backend_inline",
                   # MkDocs renders the notebooks executed above, as they are.
                   CHAINRULE_DOCS_EXECUTE="false")
        os.environ.update(env)  # the kernels started by assemble() inherit it
        nav = assemble(src, execute=not args.no_execute)
        config = Path(tmp) / "mkdocs.yml"
        # JSON is YAML: inherit the committed settings, add where the pages are and the nav.
        config.write_text(f"INHERIT: {json.dumps(str(ROOT / 'mkdocs.yml'))}\n"
                          f"docs_dir: {json.dumps(str(src))}\n"
                          f"hooks: {json.dumps([str(ROOT / 'scripts' / 'docs_hooks.py')])}\n"
                          f"nav: {json.dumps(nav)}\n", encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                                 "--clean", "-f", str(config), "-d", str(out)], env=env,
                                cwd=tmp)  # mkdocs-jupyter's .cache/ goes there, not here
        if result.returncode:
            print(f"docs: mkdocs build failed (exit {result.returncode})", file=sys.stderr)
            return result.returncode
    broken = check_links(out)
    if broken:
        print(f"docs: {len(broken)} broken link(s) in the built site:", file=sys.stderr)
        for line in broken:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"docs: {out / 'index.html'} ({len(list(out.rglob('*.html')))} pages, links checked) "
          f"in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
