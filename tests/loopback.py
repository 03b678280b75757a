"""For the browser tests: an app on a loopback port, Debian's Chromium, and a page that may load from loopback only."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (a fixture's body): skipped without it or Playwright, an error in CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - depends on the machine
        reason: str | None = "the playwright package is not installed"
    else:
        reason = None if CHROMIUM.exists() else f"{CHROMIUM} is missing"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def serving(app: Any, name: str = "loopback") -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 in a thread while the block runs; yields the port."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield httpd.port
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


@contextmanager
def local_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context whose requests off 127.0.0.1 are refused."""
    context = browser.new_context(viewport={"width": 900, "height": 700})

    def keep_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", keep_local)
    try:
        yield context.new_page()
    finally:
        context.close()
