"""Fixtures shared by the test files: a real headless Chromium for the page tests.

The browser tests (the step-through page, the playground) need the `playwright` package and a
Chromium binary (Debian's /usr/bin/chromium, or $CHAINRULE_CHROMIUM); Playwright's own browser
download is never used. Without them those tests skip, except when CHAINRULE_WITH_BROWSER=1 (as
in CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

BROWSER_REQUIRED = os.environ.get("CHAINRULE_WITH_BROWSER") == "1"
CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",  # this machine's network is closed: no calls home
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]


def require_browser_part(ok: bool, reason: str) -> None:
    """Skip when a part the browser tests need is missing, or fail when CI says they must run."""
    if ok:
        return
    if BROWSER_REQUIRED:
        pytest.fail(f"{reason}; CHAINRULE_WITH_BROWSER=1 says the browser test must run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run (each test opens its own page or context)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require_browser_part(sync_playwright is not None,
                         "the playwright package is not installed (pip install playwright)")
    require_browser_part(os.path.exists(CHROMIUM),
                         f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    require_browser_part(shutil.which("dot") is not None, "Graphviz's dot is not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
