"""What a release promises besides the maths: the README's figure and links, the guides, the
packaging files, the pytest set-up, student copies of the course, the graph-cut warning, pages
shown in Jupyter, and a clear error when the `nn` Python finds is not chainrule's."""

from __future__ import annotations

import configparser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import autodiff
from autodiff import Value, no_grad

ROOT = Path(__file__).resolve().parent.parent
REPO = "https://github.com/chainrule/chainrule"
RAW = "https://raw.githubusercontent.com/chainrule/chainrule/main/"
README = (ROOT / "README.md").read_text(encoding="utf-8")

sys.path.insert(0, str(ROOT / "scripts"))
import student_copy  # noqa: E402


# ---- the README and the guides ---------------------------------------------------------------


def test_readme_images_are_absolute_and_exist_in_the_repository():
    # The package index shows the README away from the repository: relative paths break there.
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", README)
    assert images, "the README shows the update rule's figure"
    for url in images:
        assert url.startswith(RAW), f"README image {url} is not an absolute URL"
        assert (ROOT / url[len(RAW):]).is_file(), f"README image {url} is not in the repository"


def test_readme_links_into_the_repository_name_existing_files():
    links = re.findall(r"\]\((" + re.escape(REPO) + r"/blob/main/[^)\s#]+)", README)
    assert any("/docs/" in link for link in links)
    for link in links:
        path = link.split("/blob/main/", 1)[1]
        assert (ROOT / path).is_file(), f"the README links to {path}, which does not exist"
    assert not re.search(r"\]\((?!https?://|#)[^)]+\)", README), \
        "a relative link in the README breaks on the package index"


def test_readme_is_a_five_minute_read_and_answers_the_question_first():
    words = len(README.split())
    assert words < 2000, f"the README has {words} words"
    question = README.index("how do we change the weight?")
    assert question < README.index("## Two commands") < README.index("## The training loop")
    for rule in ("Adding", "Multiplying", "Subtracting a small multiple", "lr < 2 / curvature"):
        assert rule in README
    for mode in ("Full batch", "Mini-batches", "batches("):
        assert mode in README


def test_every_guide_is_reachable_from_the_readme_or_the_site_nav():
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_docs

    for name in build_docs.GUIDES:
        assert (ROOT / "docs" / name).is_file(), f"the site lists docs/{name}, which is missing"


# ---- packaging --------------------------------------------------------------------------------


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    return config


def test_metadata_names_license_author_urls_and_python_versions():
    meta = setup_cfg()["metadata"]
    assert meta["license_expression"] == "MIT"
    assert "License ::" not in meta["classifiers"]  # PEP 639: the expression replaces them
    assert meta["author"]
    urls = dict(line.split(" = ", 1) for line in meta["project_urls"].strip().splitlines())
    assert {"Documentation", "Source", "Changelog", "Issues"} <= set(urls)
    python = setup_cfg()["options"]["python_requires"]
    assert python == ">=3.10"
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in meta["classifiers"]
    assert "Typing :: Typed" in meta["classifiers"]


def test_both_packages_ship_a_py_typed_marker():
    data = setup_cfg()["options.package_data"]
    for package in ("autodiff", "nn"):
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in data[package]


def test_manifest_ships_what_the_sdist_tests_need():
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "conftest.py" in manifest and "recursive-include tests *.py" in manifest
    for needed in ("tests/conftest.py", "tests/examples.py", "conftest.py"):
        assert (ROOT / needed).is_file()
    for doc in ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "LICENSE"):
        assert doc in manifest and (ROOT / doc).is_file()


def test_pytest_without_nbmake_names_the_missing_plugin():
    # Instead of "unrecognized arguments: --nbmake": which plugin, at which version.
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:nbmake", "--co", "-q",
                             "README.md"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Missing required plugins: nbmake" in output
    assert "unrecognized arguments" not in output


# ---- student copies -------------------------------------------------------------------------


def notebook(name: str) -> dict:
    return json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))


def test_student_copy_empties_answers_and_drops_solutions_but_keeps_the_checks():
    original = notebook("01_update_rule.ipynb")
    copy, emptied = student_copy.student_notebook(original)
    solutions = [c for c in original["cells"] if "solution" in c["metadata"].get("tags", [])]
    assert emptied == len(solutions) >= 2
    text = json.dumps(copy)
    assert "<summary>Solution" not in text and '"solution"' not in text
    answers = [c for c in copy["cells"] if "answer" in c["metadata"].get("tags", [])]
    assert len(answers) == emptied
    for answer in answers:  # only a comment: nothing the checks could pass with
        assert all(line.startswith("#") for line in "".join(answer["source"]).splitlines())
    assert "`lr_one_step`" in "".join(answers[0]["source"])
    checks = ["".join(c["source"]) for c in original["cells"]
              if "".join(c["source"]).startswith("# Checks your answer")]
    kept = ["".join(c["source"]) for c in copy["cells"]]
    assert checks and all(check in kept for check in checks)
    # Every other cell is unchanged, in order.
    rest = [c for c in original["cells"] if "solution" not in c["metadata"].get("tags", [])
            and "<summary>Solution" not in "".join(c["source"])]
    assert [c["source"] for c in rest] == \
        [c["source"] for c in copy["cells"] if "answer" not in c["metadata"].get("tags", [])]


def test_student_copy_command_writes_every_notebook(tmp_path):
    assert student_copy.main([str(tmp_path)]) == 0
    names = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for name in names:
        copy = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        assert "<summary>Solution" not in json.dumps(copy), name


def test_a_student_copy_fails_at_the_first_check_until_answered(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    copy, _ = student_copy.student_notebook(notebook("01_update_rule.ipynb"))
    nb = nbformat.reads(json.dumps(copy), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError) as info:
        client.execute()
    assert "NameError" in str(info.value) and "lr_one_step" in str(info.value)


# ---- the engine's small courtesies --------------------------------------------------------------


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(autodiff.value, "_float_warned", False)


def test_float_of_a_value_while_recording_warns_once_with_the_fix(fresh_warning):
    x = Value(2.0)
    with pytest.warns(autodiff.GraphCutWarning, match=r"v\.exp\(\), not math\.exp\(v\)") as got:
        y = math.exp(x)
    assert y == math.exp(2.0)  # the number is still right; only the graph is cut
    assert got[0].filename == __file__  # it points at the line that called math.exp
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        float(x)  # once per process: no second warning
        math.exp(x * 2)


def test_float_warning_stays_quiet_under_no_grad_and_can_be_silenced(fresh_warning):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with no_grad():
            assert float(Value(3.0)) == 3.0
        warnings.filterwarnings("ignore", category=autodiff.GraphCutWarning)
        assert float(Value(3.0)) == 3.0


def test_chainrule_reading_numbers_itself_does_not_warn(fresh_warning):
    import nn

    model = nn.MLP(2, [3, 1], seed=0)
    loss = (model([1.0, 2.0]) - 1) ** 2
    loss.backward(create_graph=True)  # gradients are Values: drawings read them with float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        autodiff.to_dot(loss)
        autodiff.backward_steps(loss)
        nn.losses.accuracy([model([1.0, 2.0])], [1])


def test_to_html_pages_show_inline_in_jupyter():
    if shutil.which("dot") is None:
        pytest.skip("to_html needs Graphviz's dot program, which is not installed here")
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    page = autodiff.to_html(a * b + a)
    assert isinstance(page, str) and page.lstrip().lower().startswith("<!doctype html>")
    inline = page._repr_html_()
    assert inline.startswith("<iframe srcdoc=") and "&lt;svg" in inline
    assert "<svg" not in inline  # the page is quoted inside the frame, not spilled into the cell


# ---- a foreign `nn` ---------------------------------------------------------------------------


@pytest.mark.parametrize("foreign_init", ['"""Another project\'s nn."""\n', None],
                         ids=["overwritten __init__", "deleted __init__"])
def test_chainrule_modules_refuse_a_foreign_nn_with_a_clear_message(tmp_path, foreign_init):
    # What installing (or then uninstalling) the unrelated `nn` distribution leaves behind:
    # chainrule's modules under someone else's nn/__init__.py, or under none at all.
    site = tmp_path / "site"
    shutil.copytree(ROOT / "nn", site / "nn", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "autodiff").symlink_to(ROOT / "autodiff")
    (site / "nn" / "__init__.py").unlink()
    if foreign_init is not None:
        (site / "nn" / "__init__.py").write_text(foreign_init)
    result = subprocess.run([sys.executable, "-m", "nn.demo", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode != 0
    assert "ImportError: chainrule: the `nn` package Python imported" in result.stderr
    assert str(site / "nn") in result.stderr
    assert "one virtual environment per project" in result.stderr
    assert "pip install --force-reinstall chainrule" in result.stderr
