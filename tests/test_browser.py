"""Tests of the HTML step-through of backprop: the page is self-contained and safe, and in a real
headless Chromium (through Playwright) Next / Previous / Play move the highlight and fill in the
gradients that `backward()` computes.

The browser part uses the `browser` fixture of tests/conftest.py (Playwright driving the
system's Chromium; skipped without them, except in CI, where a missing browser is a failure).
"""

from __future__ import annotations

import json
import re
import shutil
import struct

import pytest

import autodiff
from autodiff import Value, backward_steps
from autodiff.viz import to_html
from autodiff.viz.html import ACCUMULATING

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed"
)


def expression():
    """c = a * b, d = c + a, e = tanh(d) * b: a and b each get two contributions."""
    a = Value(0.8, label="a")
    b = Value(-1.5, label="b")
    c = a * b
    c.label = "c"
    d = c + a
    d.label = "d"
    e = d.tanh() * b
    e.label = "e"
    return e, a, b


def node_ids(root):
    return {v: f"n{i}" for i, v in enumerate(autodiff.topological_order(root))}


def page_data(page_text: str) -> dict:
    block = re.search(
        r'<script type="application/json" id="cr-data">(.*?)</script>', page_text, re.S
    )
    return json.loads(block.group(1))


# ---- the file itself (no browser needed) --------------------------------------------------------


@needs_dot
def test_page_is_self_contained_and_holds_every_step(tmp_path):
    root, _, _ = expression()
    path = tmp_path / "backprop.html"
    text = to_html(root, path)
    assert path.read_text(encoding="utf-8") == text
    assert "<svg" in text and "<script>" in text
    # nothing is fetched at view time: no external scripts, styles, images or fonts
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert "url(" not in text and "@import" not in text
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    data = page_data(text)
    steps = backward_steps(root)
    ids = node_ids(root)
    assert [(s["from"], s["to"]) for s in data["steps"]] == [
        (ids[s.node], ids[s.input]) for s in steps
    ]
    assert root.grad == 0.0  # the page computed gradients without calling backward()


@needs_dot
def test_labels_cannot_break_out_of_the_page():
    a = Value(1.0, label="</script><script>alert(1)</script>")
    b = a * Value(2.0, label="<img src=x onerror=alert(2)>")
    b.label = '&lt;b&gt; & "quotes"'
    text = to_html(b, title="<i>title</i>")
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "<i>title</i>" not in text and "&lt;i&gt;title&lt;/i&gt;" in text
    data = page_data(text)  # the JSON block survives and decodes back to the raw label
    assert any("</script><script>alert(1)</script>" in s["text"] for s in data["steps"])


def test_big_graphs_are_refused_with_a_way_out():
    x = Value(0.5)
    for _ in range(300):
        x = x * 1.01 + 0.1
    with pytest.raises(ValueError, match="max_nodes=500"):
        to_html(x)


# ---- in a real browser --------------------------------------------------------------------------


def grad_text(page, node_id: str) -> str:
    return page.evaluate(
        """id => { const t = document.getElementById(id).querySelectorAll(':scope > text');
                   return t[t.length - 1].textContent; }""",
        node_id,
    )


def grad_fill(page, node_id: str) -> str:
    return page.evaluate(
        """id => { const t = document.getElementById(id).querySelectorAll(':scope > text');
                   return t[t.length - 1].previousElementSibling.getAttribute('fill'); }""",
        node_id,
    )


def highlighted(page, cls: str) -> list[str]:
    return page.eval_on_selector_all(f"g.{cls}", "els => els.map(e => e.id)")


def test_next_previous_and_play_walk_through_backprop(browser, tmp_path):
    root, a, b = expression()
    path = tmp_path / "backprop.html"
    to_html(root, path, fmt=".4g")
    steps = backward_steps(root)
    ids = node_ids(root)

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())

    n = len(steps)
    assert page.inner_text("#cr-counter") == f"Step 0 of {n}"
    assert highlighted(page, "cr-to") == []
    assert grad_text(page, ids[a]) == "grad ?"
    assert grad_text(page, ids[root]) == "grad 1"
    assert page.is_disabled("#cr-prev")

    # Next: the first step's input is outlined and its gradient appears
    page.click("#cr-next")
    first = steps[0]
    assert highlighted(page, "cr-to") == [ids[first.input]]
    assert highlighted(page, "cr-from") == [ids[root]]
    assert highlighted(page, "cr-edge") == [f"{ids[root]}_op_in{first.position}"]
    assert grad_text(page, ids[first.input]) == f"grad {first.total:.4g}"
    assert first.input is root.parents[0] and first.total == b.data  # de/d tanh(d) = b

    page.click("#cr-next")
    second = steps[1]
    assert ids[second.input] != ids[first.input]
    assert highlighted(page, "cr-to") == [ids[second.input]]
    assert page.inner_text("#cr-counter") == f"Step 2 of {n}"
    assert "+= " in page.inner_text("#cr-now")

    page.click("#cr-prev")
    assert highlighted(page, "cr-to") == [ids[first.input]]
    assert grad_text(page, ids[second.input]) == "grad ?"

    # a gradient that is still adding up is drawn as such, then takes its final colour
    partial = next(i for i, s in enumerate(steps) if s.input is a and not s.final)
    page.keyboard.press("ArrowLeft")
    for _ in range(partial + 1):
        page.keyboard.press("ArrowRight")
    assert grad_text(page, ids[a]) == f"grad {steps[partial].total:.4g}"
    assert grad_fill(page, ids[a]) == ACCUMULATING
    page.screenshot(path=str(tmp_path / "step.png"), full_page=True)

    # Play runs to the end; every gradient then equals what backward() computes
    page.select_option("#cr-speed", "60")
    page.click("#cr-play")
    assert page.inner_text("#cr-play") == "Pause"
    page.wait_for_function(f"document.body.dataset.step == '{n}'", timeout=10_000)
    page.wait_for_function("document.getElementById('cr-play').textContent == 'Play'")
    root.backward()
    for v in autodiff.topological_order(root):
        assert grad_text(page, ids[v]) == f"grad {'0' if v.grad == 0 else format(v.grad, '.4g')}"
    assert grad_fill(page, ids[a]) != ACCUMULATING
    assert page.is_disabled("#cr-next")
    assert highlighted(page, "cr-to") == [ids[steps[-1].input]]

    shot = tmp_path / "final.png"
    page.screenshot(path=str(shot), full_page=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1280 and height >= 400 and len(png) > 10_000

    assert errors == []
    assert requests and all(url.startswith("file://") for url in requests), requests
    page.close()


# ---- a network's page ---------------------------------------------------------------------------


def model_loss(kind: str):
    """The hinge loss of one sample through a model of `kind`, and the model."""
    import nn
    from nn.losses import hinge

    X, y = nn.data.make_moons(10, noise=0.1, seed=0, labels="pm1")
    if kind == "neuron":
        model = nn.Neuron(2, activation="tanh", seed=0)
    elif kind == "layer":
        model = nn.Layer(2, 3, seed=0)
    else:
        model = nn.MLP(2, [int(n) for n in kind.split("x")], seed=0)
    out = model(X[0])
    score = autodiff.sum(out) if isinstance(out, list) else out
    return hinge([score], y[:1]), model


@needs_dot
@pytest.mark.parametrize("kind", ["neuron", "layer", "3x1", "4x4x1", "16x16x1"])
def test_every_models_page_names_its_parameters_as_named_parameters_does(kind):
    loss, model = model_loss(kind)
    text = to_html(loss, model=model)  # an MLP's page raised KeyError 'layers.N.neurons.0'
    data = page_data(text)
    ids = node_ids(loss)
    named = list(model.named_parameters())
    assert named
    for name, p in named:
        # the jump-to list holds it, and it leads to the step that completes its gradient
        assert f'<option value="{name}">' in text
        step = data["steps"][data["finals"][name]]
        assert step["to"] == ids[p] and step["final"] and name in step["text"]
    # one group per node passing its gradient back; each group's steps come from that node
    groups = data["groups"]
    assert sum(g["last"] - g["first"] + 1 for g in groups) == len(data["steps"])
    for g in groups:
        assert len({s["from"] for s in data["steps"][g["first"] : g["last"] + 1]}) == 1
    assert "passes dL/dL = 1.0 back to" in groups[0]["text"]  # the unnamed output is L
    assert "<title>Backpropagation through L</title>" in text


NETWORK_VIEWPORT = {"width": 1280, "height": 720}


def in_view(page, selector: str, panel: str) -> bool:
    """Whether the element is entirely inside the visible part of `panel` and of the window."""
    return page.evaluate(
        """([sel, panel]) => {
             const r = document.querySelector(sel).getBoundingClientRect();
             const p = document.querySelector(panel).getBoundingClientRect();
             return r.top >= p.top - 1 && r.bottom <= p.bottom + 1 && r.left >= p.left - 1
                    && r.right <= p.right + 1 && r.bottom <= window.innerHeight; }""",
        [selector, panel],
    )


@pytest.fixture(scope="module")
def network_page(tmp_path_factory):
    loss, model = model_loss("16x16x1")
    path = tmp_path_factory.mktemp("network") / "network.html"
    to_html(loss, path, model=model)
    loss.backward()
    return path, loss, model


def test_a_networks_page_is_usable_on_a_projector(browser, network_page):
    path, loss, model = network_page
    ids = node_ids(loss)
    steps = backward_steps(loss, model=model)
    page = browser.new_page(viewport=NETWORK_VIEWPORT)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())

    # Readable from the back of a room: large type, and a big drawing starts at actual size.
    for selector in ("#cr-next", "#cr-now", "#cr-steps"):
        size = page.evaluate(
            "s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)", selector
        )
        assert size >= 16, selector
    assert page.evaluate("document.getElementById('cr-graph').classList.contains('cr-actual')")

    # The list and the drawing follow the current step.
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    assert page.inner_text("#cr-counter") == f"Step 40 of {len(steps)}"
    assert in_view(page, "#cr-steps li.cr-current", "#cr-steps")
    assert highlighted(page, "cr-to") == [ids[steps[39].input]]
    assert in_view(page, "g.cr-to", "#cr-graph")

    # Space plays and pauses, even right after a click on Next (it must not click it again).
    page.click("#cr-next")
    page.keyboard.press(" ")
    assert page.inner_text("#cr-play") == "Pause"
    page.keyboard.press(" ")
    assert page.inner_text("#cr-play") == "Play"

    # While playing, the controls stay on screen and Pause can be clicked.
    page.select_option("#cr-speed", "60")
    page.click("#cr-play")
    page.wait_for_function("+document.body.dataset.step > 60")
    assert in_view(page, "#cr-play", "header")
    assert page.evaluate("window.scrollY") == 0
    page.click("#cr-play")  # Pause
    assert page.inner_text("#cr-play") == "Play"
    stopped = page.evaluate("document.body.dataset.step")
    page.wait_for_timeout(300)
    assert page.evaluate("document.body.dataset.step") == stopped
    assert in_view(page, "g.cr-to", "#cr-graph")  # actual size follows the step
    assert in_view(page, "#cr-steps li.cr-current", "#cr-steps")

    # Jump to a parameter by name: the step that completes its gradient.
    name = "layers.1.neurons.3.w.7"
    w = dict(model.named_parameters())[name]
    page.fill("#cr-find", name)
    page.keyboard.press("Enter")
    assert highlighted(page, "cr-to") == [ids[w]]
    assert grad_text(page, ids[w]) == f"grad {w.grad:.4g}"
    assert name in page.inner_text("#cr-now") and "final" in page.inner_text("#cr-now")
    assert in_view(page, "g.cr-to", "#cr-graph")
    page.fill("#cr-find", "no.such.name")
    page.keyboard.press("Enter")
    assert "no gradient for" in page.inner_text("#cr-found")
    assert highlighted(page, "cr-to") == [ids[w]]  # nothing moved

    # Fit shows the whole drawing; the step stays where it was.
    page.click("#cr-zoom")
    assert page.inner_text("#cr-zoom") == "Actual size"
    assert in_view(page, "#cr-graph svg", "#cr-graph")
    assert errors == []
    page.close()


def test_steps_grouped_by_node_list_a_dot_products_shares_as_one_step(browser, network_page):
    path, loss, model = network_page
    ids = node_ids(loss)
    steps = backward_steps(loss, model=model)
    nodes = list(dict.fromkeys(s.node for s in steps))  # in the order backward() visits them
    page = browser.new_page(viewport=NETWORK_VIEWPORT)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.check("#cr-group")
    assert page.inner_text("#cr-counter") == f"Node 0 of {len(nodes)}"
    page.keyboard.press("ArrowRight")  # the arrow keys still work with the checkbox focused
    assert page.inner_text("#cr-counter") == f"Node 1 of {len(nodes)}"
    assert sorted(highlighted(page, "cr-to")) == sorted({ids[p] for p in loss.parents})
    page.click("#cr-next")
    assert highlighted(page, "cr-from") == [ids[nodes[1]]]
    page.click("#cr-prev")
    assert highlighted(page, "cr-from") == [ids[nodes[0]]]

    # A neuron's dot product: 2n shares (n weights, n inputs), one step, each share listed.
    first_dot = next(i for i, v in enumerate(nodes) if v.op == "dot")
    dot = nodes[first_dot]
    page.click(f"#cr-groups li:nth-child({first_dot + 1})")
    assert page.inner_text("#cr-counter") == f"Node {first_dot + 1} of {len(nodes)}"
    edges = highlighted(page, "cr-edge")
    assert len(edges) == len(dot.parents) == 2 * 16
    assert sorted(highlighted(page, "cr-to")) == sorted({ids[p] for p in dot.parents})
    shares = page.inner_text("#cr-groups li.cr-current").splitlines()[1:]
    assert len(shares) == len(dot.parents) and all("+=" in line for line in shares)
    assert in_view(page, "#cr-groups li.cr-current", "#cr-groups") or len(shares) > 8

    # Back to one share per step: the position is kept.
    page.uncheck("#cr-group")
    last = max(i for i, s in enumerate(steps) if s.node is dot)
    assert page.inner_text("#cr-counter") == f"Step {last + 1} of {len(steps)}"
    # `to_html(group=True)` starts grouped.
    assert 'id="cr-group" checked' in to_html(loss, model=model, group=True)
    assert errors == []
    page.close()
