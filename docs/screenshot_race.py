"""Take docs/race.png (a race of four optimizers at 1920x1080) and docs/surface.png (the same
update rules on Rosenbrock's valley).

Run from the repository root: `python docs/screenshot_race.py` (needs playwright and Chromium,
as the browser tests do). The pages are served by a PlaygroundServer in this process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshot import ARGS, CHROMIUM, shrink  # noqa: E402

from nn.playground.server import PlaygroundServer  # noqa: E402

RACE = ("n=200&noise=0.15&hidden=8,8&seed=1&runs=sgd:lr=0.1,sgd:lr=0.1:momentum=0.9,"
        "adam:lr=0.03,lbfgs:max_iter=2:line_search_fn=strong_wolfe")
SURFACE = ("surface=rosenbrock&runs=sgd:lr=0.001:momentum=0.9,adam:lr=0.05,"
           "lbfgs:max_iter=4:line_search_fn=strong_wolfe,cmaes:sigma0=0.3")


def main(race: str = "docs/race.png", surface: str = "docs/surface.png") -> None:
    from playwright.sync_api import sync_playwright

    server = PlaygroundServer("127.0.0.1", 0)
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"{server.url}/?{RACE}")
            page.wait_for_selector("[data-testid=run-card] [data-testid=train-loss]")
            page.evaluate("async (n) => { for (let i = 0; i < n; i++) await stepOnce(); }", 40)
            page.evaluate("() => changeRun(state.runs[0].id, { lr: '0.3' })")
            page.evaluate("async (n) => { for (let i = 0; i < n; i++) await stepOnce(); }", 40)
            page.wait_for_function("() => [...document.querySelectorAll("
                                   "'[data-testid=run-steps]')].every(e => e.textContent == '80')")
            page.screenshot(path=race)
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(f"{server.url}/?{SURFACE}")
            page.wait_for_selector("[data-testid=path]", state="attached")
            page.evaluate("async (n) => { for (let i = 0; i < n; i++) await stepOnce(); }", 60)
            page.fill("[data-testid=slider]", "12")  # back to step 12: trial points in view
            page.screenshot(path=surface)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    for path in (race, surface):
        shrink(path)
        print(f"wrote {path} ({Path(path).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
