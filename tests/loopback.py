"""A WSGI app on a loopback port, and a Chromium page that may load from loopback only: for the browser tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.serving import make_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route


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
