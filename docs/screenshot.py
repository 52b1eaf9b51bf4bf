"""Take the playground's pictures: docs/playground.png (1280x720 after some training),
docs/playground-inside.png (Look inside one neuron) and docs/playground-1920.png (a projector's
1920x1080, three classes with extra input features).

Run from the repository root: `python docs/screenshot.py` (needs playwright and Chromium, as
the browser tests do). The page is served by a PlaygroundServer in this process.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from nn.playground.server import PlaygroundServer

CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
SETTINGS = "dataset=moons&n=200&noise=0.15&hidden=8,8&optimizer=adam&lr=0.03&l2=0.001&seed=1"
LARGE = ("dataset=spirals&n=300&loss=cross_entropy&features=x1,x2,sinx1,sinx2&hidden=8,8"
         "&optimizer=adam&lr=0.03&seed=2")


def main(out: str = "docs/playground.png", inside: str = "docs/playground-inside.png",
         large: str = "docs/playground-1920.png", steps: int = 80) -> None:
    from playwright.sync_api import sync_playwright

    server = PlaygroundServer("127.0.0.1", 0)
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{server.url}/?{SETTINGS}")
            page.wait_for_selector("[data-testid=neuron]")
            page.evaluate("""async (n) => { for (let i = 0; i < n; i++) await stepOnce(); }""",
                          steps)
            page.wait_for_function(f"document.querySelector('[data-testid=step-count]')"
                                   f".textContent == '{steps}'")
            page.screenshot(path=out)
            page.click("[data-testid=neuron][data-name='layers.1.neurons.2']")
            page.wait_for_selector("[data-testid=neuron-graph] svg .pg-highlight")
            page.screenshot(path=inside)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"{server.url}/?{LARGE}")
            page.wait_for_selector("[data-testid=neuron]")
            page.evaluate("async () => { for (let i = 0; i < 150; i++) await stepOnce(); }")
            page.wait_for_function("document.querySelector('[data-testid=step-count]')"
                                   ".textContent == '150'")
            page.screenshot(path=large)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    for path in (out, inside, large):
        shrink(path)
        print(f"wrote {path} ({Path(path).stat().st_size // 1024} KB)")


def shrink(path: str) -> None:
    """A palette PNG of 256 colours: a third of the size, and the page has few colours."""
    try:
        from PIL import Image  # comes with matplotlib (the demo extra)
    except ImportError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
