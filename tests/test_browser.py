"""The demo in a real browser: Debian's Chromium, driven by Playwright, through the in-app fake WeChat.

The other tests play the browser with a test client; this one proves the real thing
works: redirects with a ``#wechat_redirect`` fragment, the consent form, cookies
across WeChat's redirect back, and the emoji nickname rendered on the page.

Set ``FLASK_WECHAT_SCREENSHOTS=docs/screenshots`` to refresh the docs' screenshots.
Without Chromium or Playwright the module is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.serving import make_server

from examples.app import create_app, db

CHROMIUM = Path("/usr/bin/chromium")
#: As root, without a sandbox, and quiet on a machine with no outside network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A phone-sized window with the User-Agent of WeChat's in-app browser: the Official Account
#: flow is the one for WeChat's browser (a desktop browser is offered the QR flow instead).
VIEWPORT = {"width": 420, "height": 760}
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
)
#: Served in place of WeChat's avatar CDN: the page may only talk to this machine.
AVATAR_HOST = "thirdwx.qlogo.cn"
AVATAR = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132"><rect width="132" height="132" rx="12" '
    b'fill="#07c160"/><circle cx="66" cy="52" r="24" fill="#fff"/><rect x="26" y="86" width="80" height="40" '
    b'rx="20" fill="#fff"/></svg>'
)

try:
    from playwright.sync_api import Browser, Page, Route, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def _missing() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Demo:
    """The example app served on a loopback port."""

    app: Flask
    url: str

    @property
    def fake(self) -> Any:
        return self.app.extensions["wechat"].fake


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    # WECHAT_APPID None forces fake mode even if FLASK_WECHAT_APPID is set in the environment.
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", "WECHAT_APPID": None})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
    thread.start()
    try:
        yield Demo(app, f"http://127.0.0.1:{server.port}")
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def offsite() -> list[str]:
    """URLs the page asked for off this machine (avatars are stubbed, the rest refused)."""
    return []


@pytest.fixture
def page(browser: Browser, offsite: list[str]) -> Iterator[Page]:
    context = browser.new_context(
        viewport=VIEWPORT,  # type: ignore[arg-type]
        locale="zh-CN",
        user_agent=WECHAT_USER_AGENT,
    )
    context.set_default_timeout(10_000)

    def keep_local(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.hostname == "127.0.0.1":
            route.continue_()
            return
        offsite.append(route.request.url)
        if url.hostname == AVATAR_HOST:
            route.fulfill(status=200, content_type="image/svg+xml", body=AVATAR)
        else:
            route.abort()

    context.route("**/*", keep_local)
    yield context.new_page()
    context.close()


@pytest.fixture
def shoot(tmp_path: Path, page: Page) -> Iterator[Any]:
    """Screenshot the page into the test's tmp dir; copy to $FLASK_WECHAT_SCREENSHOTS when set."""
    taken: list[Path] = []

    def take(name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    yield take
    target = os.environ.get("FLASK_WECHAT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copy(path, Path(target) / path.name)


def open_consent_page(page: Page, demo: Demo) -> None:
    """From the protected page to the fake WeChat's consent page, as a visitor's browser goes."""
    page.goto(f"{demo.url}/profile")
    page.wait_for_url(f"{demo.url}/_fake_wechat/connect/oauth2/authorize?**")
    assert "#wechat_redirect" in page.url  # the browser kept the fragment through both redirects
    assert page.locator("#scope").inner_text() == "获得你的公开信息（昵称、头像）"


def test_login_with_a_chosen_user_lands_on_the_profile(page: Page, demo: Demo, shoot: Any, offsite: list[str]) -> None:
    open_consent_page(page, demo)
    page.check('input[name="user"][value="bob"]')
    shoot("consent")
    page.click("#allow")
    page.wait_for_url(f"{demo.url}/profile")
    bob = demo.fake.users["bob"]
    assert page.locator("#nickname").inner_text() == bob.nickname == "小明✨🚀"
    appid = demo.app.extensions["wechat"].settings.appid
    assert page.locator("#openid").inner_text() == demo.fake.openid_for(appid, "bob")
    assert page.locator("#unionid").inner_text() == bob.unionid
    assert page.locator("img").get_attribute("src") == bob.headimgurl
    assert offsite == [bob.headimgurl]  # nothing but the avatar left this machine, and that was stubbed
    shoot("profile")
    # The session cookie carries the login: a fresh load stays logged in, and logging out ends it.
    page.goto(f"{demo.url}/profile")
    assert page.locator("#nickname").inner_text() == bob.nickname
    page.click("#logout")
    page.wait_for_url(f"{demo.url}/")
    assert page.locator("#profile-link").is_visible()


def test_deny_shows_the_fakes_refusal_page(page: Page, demo: Demo, shoot: Any) -> None:
    open_consent_page(page, demo)
    page.click("#deny")
    page.wait_for_url(f"{demo.url}/_fake_wechat/connect/oauth2/authorize/confirm")
    assert page.locator("#denied").inner_text() == "你已拒绝授权"
    shoot("denied")
    page.goto(f"{demo.url}/profile")  # still not logged in: back to WeChat
    page.wait_for_url(f"{demo.url}/_fake_wechat/connect/oauth2/authorize?**")


def test_deny_with_redirect_shows_the_apps_error_page(page: Page, demo: Demo, shoot: Any) -> None:
    demo.fake.deny_mode = "redirect"
    open_consent_page(page, demo)
    with page.expect_response(lambda response: "/wechat/callback?" in response.url) as callback:
        page.click("#deny")
    assert callback.value.status == 403
    assert "code=" not in callback.value.url
    assert "did not authorize" in page.locator("body").inner_text()
    shoot("denied-error-page")
