"""The playground page in a real headless Chromium (through Playwright), against a real server.

The page is driven only through its testing contract (data-testid attributes) and every number
it shows is checked against a `Session` with the same settings, bit for bit: the page is a view.
Every page also must log no console error and fetch nothing but from its own server.

The browser is the `browser` fixture of tests/conftest.py (Playwright driving the system's
Chromium; skipped without them, except in CI, where a missing browser is a failure).
"""

from __future__ import annotations

import shutil
from urllib.parse import parse_qsl, urlsplit

import pytest

from nn.playground import Race, Surface
from nn.playground.server import PlaygroundServer, shared_server, show
from nn.playground.session import Session
from nn.playground.settings import parse_settings, start_lr

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Look inside draws with Graphviz's dot, not installed here")

STEP_COUNT = "[data-testid=step-count]"
TRAIN_LOSS = "[data-testid=train-loss]"


def start_server(**options) -> PlaygroundServer:
    server = PlaygroundServer("127.0.0.1", 0, **options)
    server.start()
    return server


@pytest.fixture(scope="module")
def server():
    server = start_server(max_sessions=8)
    yield server
    server.shutdown()
    server.server_close()


class Visitor:
    """One browser context (a visitor of its own) with one page, watched for console errors
    and for any request that does not go to the playground's server."""

    def __init__(self, browser, server: PlaygroundServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 720})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.allowed: list[str] = []

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.server.url}/?{query}")
        self.page.wait_for_selector("[data-testid=neuron]")

    def steps(self) -> int:
        return int(self.page.inner_text(STEP_COUNT))

    def wait_steps(self, n: int) -> None:
        self.page.wait_for_function(
            f"() => document.querySelector('{STEP_COUNT}').textContent === '{n}'")

    def wait_at_least(self, n: int) -> None:
        self.page.wait_for_function(
            f"() => Number(document.querySelector('{STEP_COUNT}').textContent) >= {n}")

    def click_step(self, times: int) -> None:
        start = self.steps()
        for _ in range(times):
            self.page.click("[data-testid=step]")
        self.wait_steps(start + times)

    def loss(self) -> str:
        return self.page.get_attribute(TRAIN_LOSS, "data-value")

    def settled(self) -> None:
        """Wait until the play loop has stopped and every request has been answered."""
        self.page.evaluate("() => Promise.all([state.loop, state.queue])")

    def url_settings(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.page.url).query))

    def check(self) -> None:
        errors = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert errors == [], errors
        base = self.server.url + "/"
        assert self.requests and all(u.startswith(base) for u in self.requests), self.requests


@pytest.fixture
def visitor(browser, server):
    made: list[Visitor] = []

    def make(srv: PlaygroundServer | None = None) -> Visitor:
        made.append(Visitor(browser, srv or server))
        return made[-1]

    yield make
    for v in made:
        v.context.close()
    for v in made:
        v.check()


def session_after(steps: int, **settings) -> Session:
    s = Session(**settings)
    if steps:
        s.step(steps)
    return s


def test_five_steps_give_the_sessions_loss_bit_for_bit(visitor):
    v = visitor()
    v.open("n=100&hidden=6,4&lr=0.2&seed=2")
    assert v.steps() == 0
    names = v.page.eval_on_selector_all("[data-testid=neuron]",
                                        "els => els.map(e => e.dataset.name)")
    assert names == [f"layers.0.neurons.{i}" for i in range(6)] + \
        [f"layers.1.neurons.{i}" for i in range(4)] + ["layers.2.neurons.0"]
    assert v.page.is_visible("[data-testid=boundary]")
    assert v.page.is_visible("[data-testid=network]")
    v.click_step(5)
    s = session_after(5, n=100, hidden=[6, 4], lr=0.2, seed=2)
    assert v.loss() == repr(s.train_loss)
    assert v.page.get_attribute("[data-testid=test-loss]", "data-value") == repr(s.test_loss)
    # the network's edges carry the session's weights
    weights = v.page.eval_on_selector_all(
        "#network line[data-to='layers.1.neurons.2']",
        "ls => ls.map(l => Number(l.dataset.weight))")
    assert weights == [w.data for w in s.model.layers[1].neurons[2].w]


def test_play_then_pause(visitor):
    v = visitor()
    v.open("n=60&hidden=4&seed=1")
    v.page.click("[data-testid=play]")
    assert v.page.is_disabled("[data-testid=step]")
    v.wait_at_least(5)
    v.page.click("[data-testid=pause]")
    v.settled()
    n = v.steps()
    assert n >= 5 and v.page.is_enabled("[data-testid=play]")
    v.page.wait_for_timeout(300)
    assert v.steps() == n  # paused means paused
    assert v.loss() == repr(session_after(n, n=60, hidden=[4], seed=1).train_loss)


def test_change_optimizer_and_lr_mid_run(visitor):
    v = visitor()
    v.open("n=80&hidden=5&seed=4")
    v.click_step(3)
    v.page.select_option("[data-testid=setting-optimizer]", "adam")
    v.page.wait_for_selector("[data-testid=setting-betas]")
    v.page.fill("[data-testid=setting-lr]", "0.01")
    v.page.press("[data-testid=setting-lr]", "Tab")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('lr') === '0.01'")
    assert v.url_settings()["optimizer"] == "adam" and v.steps() == 3
    v.click_step(2)
    s = session_after(3, n=80, hidden=[5], seed=4)
    s.update(optimizer="adam")
    s.update(lr=0.01)
    s.step(2)
    assert v.loss() == repr(s.train_loss)

    # while playing, a new lr applies at once and training goes on
    v.page.click("[data-testid=play]")
    v.wait_at_least(8)
    v.page.fill("[data-testid=setting-lr]", "0.02")
    v.page.press("[data-testid=setting-lr]", "Tab")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('lr') === '0.02'")
    at_change = v.steps()
    v.wait_at_least(at_change + 3)
    v.page.click("[data-testid=pause]")
    v.settled()
    assert v.page.inner_text("#lr-now") == "0.02"


def test_closure_optimizers_in_the_page(visitor):
    """L-BFGS (a closure, a line search chosen from a list) and CMA-ES (no learning rate,
    seeded by the session): the page's numbers are still the Session's."""
    v = visitor()
    v.open("n=60&hidden=4&seed=3&optimizer=lbfgs&max_iter=2&line_search_fn=strong_wolfe")
    assert v.page.input_value("[data-testid=setting-line_search_fn]") == "strong_wolfe"
    v.click_step(2)
    s = session_after(2, n=60, hidden=[4], seed=3, optimizer="lbfgs", max_iter=2,
                      line_search_fn="strong_wolfe")
    assert v.loss() == repr(s.train_loss)
    v.page.select_option("[data-testid=setting-optimizer]", "cmaes")
    v.page.wait_for_selector("[data-testid=setting-sigma0]")
    assert not v.page.is_visible("[data-testid=setting-lr]")  # CMA-ES has a step size instead
    v.click_step(2)
    s.update(optimizer="cmaes")
    s.step(2)
    assert v.loss() == repr(s.train_loss)


def test_choosing_cma_es_with_a_schedule_turns_the_schedule_off(visitor):
    """CMA-ES has no learning rate to schedule: picking it drops the schedule instead of
    refusing the choice (as picking spirals switches a two-class loss to cross_entropy)."""
    v = visitor()
    v.open("n=60&hidden=4&schedule=cosine")
    v.page.select_option("[data-testid=setting-optimizer]", "cmaes")
    v.page.wait_for_selector("[data-testid=setting-sigma0]")
    v.settled()
    assert not v.page.is_visible("[data-testid=error]")
    assert v.url_settings()["optimizer"] == "cmaes" and v.url_settings()["schedule"] == "none"
    v.click_step(1)


def test_the_url_holds_the_settings(visitor):
    query = ("dataset=xor&n=80&hidden=4,3&activation=tanh&optimizer=rmsprop&lr=0.02"
             "&momentum=0.5&batch_size=16&seed=3&schedule=step&decay_steps=10&gamma=0.5")
    v = visitor()
    v.open(query)
    expected = Session(**parse_settings(dict(parse_qsl(query)))).settings
    url = v.url_settings()
    assert set(url) == set(expected)
    assert Session(**parse_settings(url)).settings == expected
    assert v.page.input_value("[data-testid=setting-hidden]") == "4,3"
    assert v.page.input_value("[data-testid=setting-momentum]") == "0.5"
    assert v.page.locator("[data-testid=neuron]").count() == 4 + 3 + 1
    v.page.select_option("[data-testid=setting-activation]", "sigmoid")
    v.page.wait_for_function(
        "() => new URLSearchParams(location.search).get('activation') === 'sigmoid'")
    v.page.reload()
    v.page.wait_for_selector("[data-testid=neuron]")
    assert v.page.input_value("[data-testid=setting-activation]") == "sigmoid"
    assert v.page.input_value("[data-testid=setting-dataset]") == "xor"
    assert Session(**parse_settings(v.url_settings())).settings == {**expected,
                                                                    "activation": "sigmoid"}


def test_a_neurons_graph_and_its_step_through(visitor):
    v = visitor()
    v.open("n=60&hidden=4,4&seed=0&l2=0.001")
    v.click_step(2)
    v.page.click("[data-testid=neuron][data-name='layers.0.neurons.1']")
    graph = "[data-testid=neuron-graph]"
    v.page.wait_for_selector(f"{graph} svg .pg-highlight")
    highlighted = v.page.eval_on_selector(f"{graph} .pg-highlight", "g => g.textContent")
    assert "layers.0.neurons.1" in highlighted
    s = session_after(2, n=60, hidden=[4, 4], seed=0, l2=0.001)
    assert v.page.get_attribute(graph, "data-point") == str(s.worst_point())

    # clicking a data point chooses it, and the graph is drawn again for it
    x0, x1, y0, y1 = s.extent
    x, y = s.X_train[7]
    box = v.page.locator("[data-testid=boundary]").bounding_box()
    v.page.mouse.click(box["x"] + (x - x0) / (x1 - x0) * box["width"],
                       box["y"] + (y1 - y) / (y1 - y0) * box["height"])
    v.page.wait_for_function(f"() => document.querySelector('{graph}').dataset.point === '7'")
    v.page.wait_for_selector(f"{graph} svg .pg-highlight")
    assert "training point 7" in v.page.inner_text("#inside-caption")

    href = v.page.get_attribute("[data-testid=step-through]", "href")
    assert href.endswith("/backprop?point=7")
    steps = v.context.new_page()
    steps.on("pageerror", lambda e: v.errors.append(str(e)))
    steps.goto(v.server.url + href)
    assert steps.inner_text("#cr-counter").startswith("Step 0 of ")
    steps.close()


def test_two_visitors_have_sessions_of_their_own(visitor):
    a, b = visitor(), visitor()
    a.open("n=50&hidden=3&seed=1")
    b.open("n=70&hidden=5&seed=2&optimizer=adam&lr=0.01")
    a.click_step(2)
    b.click_step(1)
    a.click_step(1)
    assert (a.steps(), b.steps()) == (3, 1)
    assert a.loss() == repr(session_after(3, n=50, hidden=[3], seed=1).train_loss)
    assert b.loss() == repr(session_after(1, n=70, hidden=[5], seed=2, optimizer="adam",
                                          lr=0.01).train_loss)


def test_show_attaches_the_page_to_a_python_session(visitor):
    s = Session(n=40, hidden=[3], seed=6)
    view = show(s)
    v = visitor(shared_server())
    v.page.goto(view.url)
    v.page.wait_for_selector("[data-testid=neuron]")
    assert v.steps() == 0 and "session=" in v.page.url
    s.step(4)  # in Python: the page follows within about a second
    v.wait_steps(4)
    assert v.loss() == repr(s.train_loss)
    v.click_step(1)  # and the page drives the very same session
    assert s.step_count == 5


def test_a_bad_setting_says_which_and_the_page_still_works(visitor):
    v = visitor()
    v.allowed = ["status of 400"]  # Chromium logs the refused request itself
    v.open("lr=abc&hidden=4")
    # the link's bad value is left out alone (hidden=4 stands), named until dismissed
    changes = v.page.locator("[data-testid=changes]")
    assert changes.is_visible()
    assert "lr must be a number, got 'abc'" in changes.inner_text()
    assert "default" in changes.inner_text()
    assert v.page.locator("[data-testid=neuron]").count() == 4 + 1
    error = v.page.locator("[data-testid=error]")
    assert not error.is_visible()
    v.click_step(1)
    # a bad value typed into the form: named, the session unchanged
    v.page.fill("[data-testid=setting-n]", "-5")
    v.page.press("[data-testid=setting-n]", "Tab")
    v.page.wait_for_function(
        "() => document.querySelector('[data-testid=error]').textContent"
        ".includes('n must be between')")
    assert v.steps() == 1 and v.url_settings()["n"] == "200"
    v.click_step(1)
    # the form shows n = 200 again, so the message about -5 goes once the next step succeeds
    assert not error.is_visible()
    assert changes.is_visible()  # what the link lost stays said until dismissed
    v.page.click("[data-testid=changes-dismiss]")
    assert not changes.is_visible()


def test_a_link_applies_the_rules_the_dropdowns_do_and_keeps_neuron_and_point(visitor):
    v = visitor()
    v.open("dataset=spirals&loss=hinge&n=60&hidden=3&optimizer=cg&point=5"
           "&neuron=layers.0.neurons.1")
    assert v.page.input_value("[data-testid=setting-loss]") == "cross_entropy"
    assert v.page.input_value("[data-testid=setting-optimizer]") == "conjugate_gradient"
    text = v.page.inner_text("[data-testid=changes]")
    assert "spirals has 3 classes" in text and "'cg' is the old name" in text
    assert v.page.locator("[data-testid=neuron]").count() == 3 + 3
    url = v.url_settings()
    assert url["loss"] == "cross_entropy" and url["neuron"] == "layers.0.neurons.1"
    assert url["point"] == "5"
    assert v.page.get_attribute("[data-testid=boundary]", "data-point") == "5"
    if shutil.which("dot"):  # Look inside opens on that neuron and point
        graph = "[data-testid=neuron-graph]"
        v.page.wait_for_function(
            f"() => document.querySelector('{graph}').dataset.point === '5'")
        assert v.page.get_attribute(graph, "data-neuron") == "layers.0.neurons.1"
    v.settled()


def test_a_full_server_says_so(browser, visitor):
    small = start_server(max_sessions=1)
    try:
        first, second = visitor(small), visitor(small)
        second.allowed = ["status of 503"]
        first.open("n=30&hidden=2")
        second.page.goto(f"{small.url}/?n=30&hidden=2")
        second.page.wait_for_selector("[data-testid=error]:not([hidden])")
        assert "The playground is full" in second.page.inner_text("[data-testid=error]")
        first.click_step(1)
    finally:
        small.shutdown()
        small.server_close()


def test_a_stopped_server_is_said_so(visitor):
    gone = start_server()
    v = visitor(gone)
    # Chromium logs the failed request itself: refused, or reset when a kept-alive connection
    # to the old server was still open.
    v.allowed = ["ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET"]
    v.open("n=30&hidden=2")
    gone.shutdown()
    gone.server_close()
    v.page.click("[data-testid=step]")
    v.page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "does not answer" in v.page.inner_text("[data-testid=error]")
    assert v.steps() == 0


# ---- a page for a room: sizes, presentation, Look inside, divergence, the controls -------------


def box(page, selector):
    return page.locator(selector).first.bounding_box()


def sized_visitor(browser, server, width, height, scale=1.0) -> Visitor:
    v = Visitor(browser, server)
    v.context.close()
    v.context = browser.new_context(viewport={"width": width, "height": height},
                                    device_scale_factor=scale)
    v.page = v.context.new_page()
    v.page.set_default_timeout(15_000)
    v.page.on("console", lambda m: v.errors.append(m.text) if m.type == "error" else None)
    v.page.on("pageerror", lambda e: v.errors.append(str(e)))
    v.context.on("request", lambda r: v.requests.append(r.url))
    return v


@pytest.fixture
def sized(browser, server):
    made: list[Visitor] = []

    def make(width, height, scale=1.0) -> Visitor:
        made.append(sized_visitor(browser, server, width, height, scale))
        return made[-1]

    yield make
    for v in made:
        v.context.close()
    for v in made:
        v.check()


def font_px(page) -> float:
    return page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")


def test_at_1920x1080_the_boundary_and_the_type_grow(sized):
    small, large = sized(1280, 720), sized(1920, 1080)
    for v in (small, large):
        v.open("n=60&hidden=6,6&seed=1")
    assert box(large.page, "[data-testid=boundary]")["width"] >= 480
    assert font_px(large.page) > font_px(small.page) >= 14
    neuron = "[data-testid=neuron]"
    assert box(large.page, neuron)["width"] > box(small.page, neuron)["width"]
    for v in (small, large):  # one screen: nothing below the window
        assert v.page.evaluate("() => document.documentElement.scrollHeight") <= \
            v.page.viewport_size["height"] + 1


def test_at_800x600_nothing_is_cut_off_and_the_page_scrolls(sized):
    v = sized(800, 600)
    v.open("n=60&hidden=4&seed=1")
    page = v.page
    assert page.evaluate("() => getComputedStyle(document.body).overflowY") != "hidden"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 800
    assert page.evaluate("() => document.documentElement.scrollHeight") > 600  # it scrolls
    for testid in ["play", "step", "reset", "lr-slider", "network", "boundary", "curves",
                   "grad-flow", "setting-dataset", "setting-l1", "keys"]:
        locator = page.locator(f"[data-testid={testid}]")
        locator.scroll_into_view_if_needed()
        b = locator.bounding_box()
        assert b and b["x"] >= 0 and b["x"] + b["width"] <= 800 + 0.5, (testid, b)
        assert b["width"] > 0 and b["height"] > 0, testid
        assert b["y"] >= -0.5 and b["y"] < 600, (testid, b)  # scrolled to, it is in view
    v.click_step(1)


def test_on_a_phone_the_panels_stack(sized):
    v = sized(390, 844)
    v.open("n=60&hidden=4&seed=1")
    assert v.page.evaluate("() => document.documentElement.scrollWidth") <= 390
    boundary, network = box(v.page, "[data-testid=boundary]"), box(v.page, "[data-testid=network]")
    assert boundary["y"] + boundary["height"] <= network["y"]  # one column: boundary first
    assert boundary["width"] >= 300


def test_at_125_percent_zoom_no_neuron_covers_the_legend(sized):
    v = sized(1024, 576, scale=1.25)  # 1280x720 at 125%: the CSS viewport shrinks so
    v.open("n=60&hidden=8,8&seed=1")
    legend = box(v.page, "#legend")
    bottoms = v.page.eval_on_selector_all(
        "[data-testid=neuron], [data-testid=input]",
        "els => els.map(e => e.getBoundingClientRect().bottom)")
    assert max(bottoms) <= legend["y"] + 0.5


def test_presentation_mode_keeps_play_step_reset_and_lr(visitor):
    v = visitor()
    v.open("n=60&hidden=4&seed=1")
    before, neuron = font_px(v.page), box(v.page, "[data-testid=neuron]")["width"]
    v.page.keyboard.press("p")
    v.page.wait_for_function("() => document.body.classList.contains('presenting')")
    assert font_px(v.page) > before
    # the network's box grew (no settings column): it is laid out again, larger
    v.page.wait_for_function(
        f"() => document.querySelector('[data-testid=neuron]').offsetWidth > {neuron + 1}")
    for testid in ["play", "step", "reset", "lr-slider", "boundary", "network", "curves"]:
        assert v.page.is_visible(f"[data-testid={testid}]"), testid
    for testid in ["setting-dataset", "grad-flow", "edge-mode", "add-layer"]:
        assert not v.page.is_visible(f"[data-testid={testid}]"), testid
    v.click_step(1)
    v.page.click("[data-testid=present]")
    assert v.page.is_visible("[data-testid=setting-dataset]")


def graph_step(v) -> str:
    return v.page.get_attribute("[data-testid=neuron-graph]", "data-step")


@needs_dot
def test_look_inside_is_a_side_panel_redrawn_on_step_and_pause(visitor):
    v = visitor()
    v.open("n=60&hidden=4,4&seed=0")
    v.click_step(1)
    v.page.click("[data-testid=neuron][data-name='layers.1.neurons.2']")
    v.page.wait_for_selector("[data-testid=neuron-graph] svg .pg-highlight")
    panel = box(v.page, "[data-testid=inside]")
    # the network stays in view beside the panel, and the neuron's name is in view
    for b in v.page.eval_on_selector_all("[data-testid=neuron]", """els => els.map(e => {
            const r = e.getBoundingClientRect(); return [r.left, r.right, r.top]; })"""):
        assert b[1] <= panel["x"] + 0.5 and b[0] >= 0 and b[2] >= 0
    assert "layers.1.neurons.2" in v.page.inner_text("#inside-title")
    name = v.page.locator("[data-testid=neuron-graph] .pg-highlight text",
                          has_text="layers.1.neurons.2").first.bounding_box()
    graph = box(v.page, "[data-testid=neuron-graph]")
    assert graph["x"] <= name["x"] and name["x"] + name["width"] <= graph["x"] + graph["width"]
    assert graph["y"] <= name["y"] and name["y"] + name["height"] <= graph["y"] + graph["height"]
    assert graph_step(v) == "1"
    v.click_step(1)  # a step draws it again: the caption names the new step
    v.page.wait_for_function(
        "() => document.querySelector('[data-testid=neuron-graph]').dataset.step === '2'")
    v.page.wait_for_selector("[data-testid=neuron-graph] svg .pg-highlight")
    assert "after 2 steps" in v.page.inner_text("[data-testid=inside-caption]")
    v.page.click("[data-testid=play]")
    v.wait_at_least(5)
    v.page.click("[data-testid=pause]")
    v.settled()
    n = v.steps()
    v.page.wait_for_function(
        f"() => document.querySelector('[data-testid=neuron-graph]').dataset.step === '{n}'")
    v.page.wait_for_function(
        f"() => document.querySelector('[data-testid=inside-caption]').textContent"
        f".includes('after {n} steps')")
    v.page.keyboard.press("Escape")
    assert not v.page.is_visible("[data-testid=inside]")


@needs_dot
def test_a_point_with_zero_loss_says_why_and_offers_the_worst(visitor):
    s = session_after(30, n=60, hidden=[4], seed=0)
    zero = next(i for i in range(len(s.X_train)) if s.point_loss(i).data == 0.0)
    v = visitor()
    v.open("n=60&hidden=4&seed=0")
    v.page.evaluate("async () => { for (let i = 0; i < 30; i++) await stepOnce(); }")
    v.wait_steps(30)
    v.page.click("[data-testid=neuron][data-name='layers.0.neurons.1']")
    v.page.wait_for_selector("[data-testid=neuron-graph] svg .pg-highlight")
    v.page.evaluate(f"() => {{ state.chosenPoint = {zero}; return showInside(); }}")
    why = v.page.locator("[data-testid=zero-why]")
    why.wait_for()
    assert "is 0, so every gradient here is 0" in why.inner_text()
    v.page.click("[data-testid=worst-point]")
    v.page.wait_for_function(
        f"() => document.querySelector('[data-testid=neuron-graph]').dataset.point"
        f" === '{s.worst_point()}'")
    assert not why.is_visible()


def test_divergence_is_said_in_every_panel_and_the_loss_axis_can_be_log(visitor):
    v = visitor()
    v.open("n=40&hidden=8,8&activation=linear&loss=mse&lr=50&seed=0")
    for _ in range(60):
        v.page.click("[data-testid=step]")
        v.settled()
        if v.page.is_visible("[data-testid=notice]"):
            break
    assert "diverged" in v.page.inner_text("[data-testid=notice]")
    said = v.page.locator("[data-testid=diverged]")
    assert said.count() >= 4  # boundary, network, gradient flow, curves
    for i in range(said.count()):
        assert said.nth(i).is_visible()
    assert "loss was 0" not in v.page.text_content("[data-testid=grad-flow]")
    v.page.check("[data-testid=log-loss]")
    assert v.page.get_attribute("[data-testid=curves]", "data-scale") == "log"
    assert "1e" in v.page.text_content("[data-testid=curves]")


def test_plus_minus_buttons_change_the_layers_and_neurons(visitor):
    v = visitor()
    v.open("n=60&hidden=3&seed=1")
    v.page.click("[data-testid=add-neuron][data-layer='0']")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('hidden') === '4'")
    v.page.click("[data-testid=add-layer]")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('hidden') === '4,4'")
    v.page.click("[data-testid=remove-neuron][data-layer='1']")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('hidden') === '4,3'")
    assert v.page.locator("[data-testid=neuron]").count() == 4 + 3 + 1
    v.page.click("[data-testid=remove-layer]")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('hidden') === '4'")
    v.click_step(2)
    assert v.loss() == repr(session_after(2, n=60, hidden=[4], seed=1).train_loss)


def test_input_features_and_l1_are_settings_of_the_session(visitor):
    v = visitor()
    v.open("n=60&hidden=4&seed=2")
    v.page.check("[data-testid=feature-x1sq]")
    v.page.wait_for_function(
        "() => new URLSearchParams(location.search).get('features') === 'x1,x2,x1sq'")
    v.page.uncheck("[data-testid=feature-x2]")
    v.page.wait_for_function(
        "() => new URLSearchParams(location.search).get('features') === 'x1,x1sq'")
    labels = v.page.eval_on_selector_all("#network .input-label",
                                         "els => els.map(e => e.textContent)")
    assert labels == ["x1", "x1²"]
    v.page.fill("[data-testid=setting-l1]", "0.01")
    v.page.press("[data-testid=setting-l1]", "Tab")
    v.page.wait_for_function("() => new URLSearchParams(location.search).get('l1') === '0.01'")
    v.click_step(3)
    s = session_after(3, n=60, hidden=[4], seed=2, features=["x1", "x1sq"], l1=0.01)
    assert v.loss() == repr(s.train_loss)


def test_sliders_toggles_marks_classes_hover_and_keys(visitor):
    v = visitor()
    v.open("dataset=spirals&loss=cross_entropy&n=90&hidden=5&seed=3")
    page = v.page
    assert page.eval_on_selector_all("[data-testid=class-label]",
                                     "els => els.map(e => e.textContent)") == \
        ["class 0", "class 1", "class 2"]
    assert "space" in page.inner_text("[data-testid=keys]")  # the keys are in view
    page.hover("[data-testid=neuron][data-name='layers.1.neurons.2']")
    assert page.is_visible("[data-testid=neuron-zoom]")
    assert "class 2" in page.inner_text("[data-testid=neuron-zoom]")
    # the lr slider sends the lr; hide-test draws the training points only
    page.locator("[data-testid=slider-lr]").fill("6")  # LR_STEPS[6] = 0.03
    page.wait_for_function("() => new URLSearchParams(location.search).get('lr') === '0.03'")
    page.check("[data-testid=hide-test]")
    assert page.get_attribute("[data-testid=boundary]", "data-drawn") == str(90 - 18)
    page.check("[data-testid=discretize]")
    assert page.get_attribute("[data-testid=boundary]", "data-discretized") == "1"
    # a new optimizer mid-run starts at its own lr and leaves a mark on the curves
    v.click_step(2)
    page.select_option("[data-testid=setting-optimizer]", "adam")
    page.wait_for_selector("[data-testid=mark][data-step='2']")
    assert v.url_settings()["lr"] == str(start_lr("adam"))
    v.click_step(1)
    s = session_after(2, dataset="spirals", loss="cross_entropy", n=90, hidden=[5], seed=3,
                      lr=0.03)
    s.update(optimizer="adam")
    s.step(1)
    assert v.loss() == repr(s.train_loss)


@pytest.mark.parametrize("bad", ["../../api/options", "..%2F..%2Fapi%2Foptions", "a b"])
def test_a_session_in_the_url_that_is_no_session_id_starts_a_new_one(visitor, server, bad):
    # ?session=../../api/options once fetched /api/options as a frame: a TypeError in the page.
    v = visitor()
    before = len(server.registry)
    v.open(f"session={bad}&hidden=3")
    assert "no valid session" in v.page.inner_text("[data-testid=notice]")
    assert "session=" not in v.page.url
    assert v.steps() == 0 and len(server.registry) == before + 1
    v.click_step(1)


def test_a_long_run_thins_its_history_and_the_page_keeps_up(visitor, server, monkeypatch):
    monkeypatch.setattr(Session, "max_history", 20)
    v = visitor()
    v.open("n=30&hidden=2&seed=4")
    v.click_step(45)
    v.settled()
    history = v.page.evaluate("() => state.history.map((h) => h.step)")
    assert history[0] == 0 and history[-1] == 45 and len(history) <= 20
    assert history == sorted(history)


# ---- the race and the surface (?runs=, ?surface=) ---------------------------------------------

CARDS = "[data-testid=run-card]"


def open_race(v: Visitor, query: str, size: tuple[int, int] = (1280, 720)) -> None:
    v.page.set_viewport_size({"width": size[0], "height": size[1]})
    v.page.goto(f"{v.server.url}/?{query}")
    v.page.wait_for_selector(f"{CARDS} [data-testid=train-loss]")


def race_steps(v: Visitor) -> list[int]:
    return [int(t) for t in v.page.eval_on_selector_all(
        f"{CARDS} [data-testid=run-steps]", "els => els.map(e => e.textContent)")]


def race_losses(v: Visitor) -> list[str]:
    return v.page.eval_on_selector_all(f"{CARDS} [data-testid=train-loss]",
                                       "els => els.map(e => e.dataset.value)")


def click_race_step(v: Visitor, times: int) -> None:
    start = race_steps(v)
    for _ in range(times):
        v.page.click("[data-testid=step]")
    want = [s + times for s in start]
    v.page.wait_for_function(
        "want => JSON.stringify([...document.querySelectorAll("
        "'[data-testid=run-card] [data-testid=run-steps]')].map(e => Number(e.textContent)))"
        " === JSON.stringify(want)", arg=want)


def no_sideways_scroll(v: Visitor) -> bool:
    return v.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_a_shared_race_link_opens_the_race_at_1920x1080(visitor):
    query = "runs=sgd:lr=0.1,sgd:lr=0.1:momentum=0.9,adam:lr=0.01&n=80&hidden=4&seed=2"
    v = visitor()
    open_race(v, query, (1920, 1080))
    cards = v.page.locator(CARDS)
    assert cards.count() == 3
    assert [cards.nth(i).get_attribute("data-optimizer") for i in range(3)] == [
        "sgd", "sgd", "adam"]
    click_race_step(v, 3)
    race = Race("sgd:lr=0.1,sgd:lr=0.1:momentum=0.9,adam:lr=0.01", n=80, hidden=[4], seed=2)
    race.step(3)
    assert race_losses(v) == [repr(s.train_loss) for s in race.runs]
    # one curve and one boundary per run, each in its run's colour
    assert v.page.locator("[data-testid=race-curve]").count() == 3
    assert v.page.locator("[data-testid=run-boundary]").count() == 3
    colours = v.page.eval_on_selector_all(
        "[data-testid=race-curve]", "ls => ls.map(l => l.getAttribute('stroke'))")
    assert len(set(colours)) == 3
    # the link keeps the runs as written, defaults included (lr=0.1 is sgd's): opened again,
    # it is the same race even if a default changes
    url = v.url_settings()
    assert url["runs"] == "sgd:lr=0.1,sgd:lr=0.1:momentum=0.9,adam:lr=0.01"
    assert (url["n"], url["hidden"], url["seed"]) == ("80", "4", "2")
    assert no_sideways_scroll(v)
    box = v.page.locator("[data-testid=run-boundary]").first.bounding_box()
    assert box["width"] >= 240


def test_the_race_text_scales_with_the_window_as_the_single_run_page_does(visitor):
    # At 1920x1080 the curves' axis text stayed 15-16 px while the page's type had grown: every
    # text of the race (cards, curves, captions) is at least 0.9 of the page's root size, the
    # size the single-run page scales with the window.
    v = visitor()
    sizes = {}
    for width, height in ((1280, 720), (1920, 1080)):
        open_race(v, "runs=sgd:lr=0.1,adam:lr=0.01&n=40&hidden=3&seed=1", (width, height))
        click_race_step(v, 1)
        sizes[width] = v.page.evaluate("""() => {
            const px = (e) => parseFloat(getComputedStyle(e).fontSize);
            const texts = [...document.querySelectorAll(
                '.card label, .card [data-testid=run-options], #race-curves text, '
                + '.small-multiple span, .clock')];
            return {root: px(document.documentElement), smallest: Math.min(...texts.map(px))};
        }""")
    v.open()
    single = v.page.evaluate("() => parseFloat(getComputedStyle(document.documentElement)"
                             ".fontSize)")
    assert sizes[1920]["root"] == single > sizes[1280]["root"]
    for width in sizes:
        assert sizes[width]["smallest"] >= 0.9 * sizes[width]["root"], (width, sizes[width])
    # the pause button looks idle until Play is pressed
    pause = v.page.evaluate("() => getComputedStyle(document.querySelector('#pause'))"
                            ".backgroundColor")
    assert pause != "rgb(245, 158, 11)"


def test_the_race_at_800x600_scrolls_and_nothing_is_cut_off(visitor):
    v = visitor()
    open_race(v, "runs=sgd:lr=0.1,adam:lr=0.01&n=60&hidden=3&seed=1", (800, 600))
    assert no_sideways_scroll(v)
    # at step 0 the clock's axis ends at a round number, not at 1.00e-9
    assert "e-" not in v.page.text_content("[data-testid=race-curves]")
    click_race_step(v, 2)
    last = v.page.locator("[data-testid=run-boundary]").last
    last.scroll_into_view_if_needed()
    assert last.is_visible()
    race = Race(["sgd:lr=0.1", "adam:lr=0.01"], n=60, hidden=[3], seed=1)
    race.step(2)
    assert race_losses(v) == [repr(s.train_loss) for s in race.runs]


def test_add_change_and_remove_runs_mid_race(visitor):
    v = visitor()
    open_race(v, "runs=sgd:lr=0.1,sgd:lr=0.1&n=60&hidden=3&seed=5")
    click_race_step(v, 2)
    lr = v.page.locator(f"{CARDS} [data-testid=run-lr]").nth(1)
    lr.fill("0.02")
    lr.press("Tab")
    v.page.wait_for_selector("[data-testid=change-mark]", state="attached")
    click_race_step(v, 2)
    race = Race(["sgd:lr=0.1", "sgd:lr=0.1"], n=60, hidden=[3], seed=5)
    race.step(2)
    race.update(1, lr=0.02)
    race.step(2)
    assert race_losses(v) == [repr(s.train_loss) for s in race.runs]
    v.page.select_option(f"{CARDS} >> nth=0 >> [data-testid=run-optimizer]", "adam")
    v.page.wait_for_function("() => document.querySelectorAll('[data-testid=change-mark]')"
                             ".length === 2")
    v.page.click("[data-testid=add-run]")
    v.page.wait_for_function(f"() => document.querySelectorAll('{CARDS}').length === 3")
    v.page.click(f"{CARDS} >> nth=1 >> [data-testid=remove-run]")
    v.page.wait_for_function(f"() => document.querySelectorAll('{CARDS}').length === 2")
    assert v.page.locator(CARDS).first.get_attribute("data-optimizer") == "adam"
    assert "runs=adam" in v.page.url


def test_playing_a_race_by_evaluations(visitor):
    v = visitor()
    open_race(v, "runs=sgd:lr=0.1,cmaes&n=60&hidden=3&by=evaluations")
    assert v.page.input_value("[data-testid=clock]") == "evaluations"
    v.page.click("[data-testid=play]")
    v.page.wait_for_function(
        "() => Math.min(...[...document.querySelectorAll('[data-testid=run-evaluations]')]"
        ".map(e => Number(e.textContent))) >= 40")
    v.page.click("[data-testid=pause]")
    v.page.evaluate("() => state.loop")
    evaluations = [int(t) for t in v.page.eval_on_selector_all(
        "[data-testid=run-evaluations]", "els => els.map(e => e.textContent)")]
    steps = race_steps(v)
    assert steps[0] == evaluations[0] and steps[1] < steps[0]  # CMA-ES: many per step
    v.page.click("[data-testid=show-landscape]")
    v.page.wait_for_selector("[data-testid=landscape][data-ready='1']")


def test_the_surface_page_draws_every_runs_path(visitor):
    v = visitor()
    v.page.set_viewport_size({"width": 1280, "height": 800})
    runs = "sgd:lr=0.001,lbfgs:max_iter=2:line_search_fn=strong_wolfe,cmaes:sigma0=0.3"
    v.page.goto(f"{v.server.url}/?surface=rosenbrock&runs={runs}")
    v.page.wait_for_selector("[data-testid=surface] [data-testid=path]", state="attached")
    paths = v.page.locator("[data-testid=path]")
    assert [paths.nth(i).get_attribute("data-optimizer") for i in range(3)] == [
        "sgd", "lbfgs", "cmaes"]
    for _ in range(3):
        v.page.click("[data-testid=step]")
    v.page.wait_for_function("() => document.querySelector('[data-testid=step-count]')"
                             ".textContent === '3'")
    assert [paths.nth(i).get_attribute("data-points") for i in range(3)] == ["4"] * 3
    surface = Surface("rosenbrock", runs)
    surface.step(3)
    shown = v.page.eval_on_selector_all("[data-testid=surface-loss]",
                                        "els => els.map(e => Number(e.dataset.value))")
    assert shown == [losses[-1] for losses in surface.losses]
    assert v.page.locator("[data-testid=ellipse]").count() == 1  # CMA-ES's distribution
    assert v.page.locator("[data-testid=trial]").count() == (
        len(surface.trials(1)[3]) + len(surface.trials(2)[3]))
    assert v.page.locator("[data-testid=gradient-arrow]").count() == 3
    # back through the steps with the slider
    v.page.fill("[data-testid=slider]", "1")
    assert [paths.nth(i).get_attribute("data-points") for i in range(3)] == ["2"] * 3
    assert "runs=sgd:lr=0.001" in v.page.url


def test_the_surface_page_draws_the_genetic_algorithms_population_on_rastrigin(visitor):
    # Gradient descent stops in the local minimum near (3, -3); the population finds (0, 0).
    v = visitor()
    runs = "genetic_algorithm,sgd:lr=0.002"
    v.page.goto(f"{v.server.url}/?surface=rastrigin&runs={runs}&start=3.3,-2.7")
    v.page.wait_for_selector("[data-testid=surface] [data-testid=path]", state="attached")
    v.page.click("[data-testid=play]")
    v.page.wait_for_function("() => Number(document.querySelector('[data-testid=step-count]')"
                             ".textContent) >= 40", timeout=60_000)
    v.page.click("[data-testid=pause]")
    v.page.evaluate("() => state.loop")
    steps = int(v.page.text_content("[data-testid=step-count]"))
    surface = Surface("rastrigin", runs, start=(3.3, -2.7))
    surface.step(steps)
    shown = v.page.eval_on_selector_all("[data-testid=surface-loss]",
                                        "els => els.map(e => Number(e.dataset.value))")
    assert shown == [losses[-1] for losses in surface.losses]
    assert shown[0] < 0.1 < 10 < shown[1]
    population = v.page.locator("[data-testid=trial][data-kind=population]")
    assert population.count() == len(surface.trials(0)[steps]) == 50
    assert v.page.locator("[data-testid=trial][data-kind=line-search]").count() == 0
    # the slider goes back to the first generation, all of it drawn
    v.page.fill("[data-testid=slider]", "1")
    assert population.count() == 50
