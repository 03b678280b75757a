"""The demo in a real browser: Debian's Chromium, driven by Playwright, through the in-app fake WeChat.

The other tests play the browser with a test client; this one proves the real thing
works: redirects with a ``#wechat_redirect`` fragment, the consent form, cookies
across WeChat's redirect back, and the emoji nickname rendered on the page. It drives
both browser flows: a phone with WeChat's User-Agent gets the Official Account's consent
page, a desktop browser the website QR login, full-page or embedded with wxLogin.js.

Set ``FLASK_WECHAT_SCREENSHOTS=docs/screenshots`` to refresh the docs' screenshots (each test's
``shoot(page, name)`` saves ``name.png``; the docs pages reference them by that name).
Without Chromium or Playwright the module is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from werkzeug.serving import make_server

from examples.app import create_app, db
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_OPEN_APPID

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
#: A desktop browser keeps Chromium's own User-Agent: it is not WeChat's, so it gets the QR flow.
DESKTOP_VIEWPORT = {"width": 960, "height": 720}
#: Served in place of WeChat's avatar CDN: the page may only talk to this machine.
AVATAR_HOST = "thirdwx.qlogo.cn"
AVATAR = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132"><rect width="132" height="132" rx="12" '
    b'fill="#07c160"/><circle cx="66" cy="52" r="24" fill="#fff"/><rect x="26" y="86" width="80" height="40" '
    b'rx="20" fill="#fff"/></svg>'
)

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright
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
def open_page(browser: Browser, offsite: list[str]) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser context (its own cookies), as another browser would."""
    contexts: list[BrowserContext] = []

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

    def open_(user_agent: str | None = None, viewport: dict[str, int] = VIEWPORT) -> Page:
        options: dict[str, Any] = {"viewport": viewport, "locale": "zh-CN"}
        if user_agent is not None:
            options["user_agent"] = user_agent
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        context.route("**/*", keep_local)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A phone in WeChat: WeChat's in-app browser User-Agent."""
    return open_page(WECHAT_USER_AGENT)


@pytest.fixture
def desktop(open_page: Callable[..., Page]) -> Page:
    """A desktop browser with Chromium's own User-Agent."""
    return open_page(viewport=DESKTOP_VIEWPORT)


@pytest.fixture
def shoot(tmp_path: Path) -> Iterator[Callable[[Page, str], Path]]:
    """Screenshot a page into the test's tmp dir; copy to $FLASK_WECHAT_SCREENSHOTS when set."""
    taken: list[Path] = []

    def take(page: Page, name: str) -> Path:
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
    shoot(page, "consent")
    page.click("#allow")
    page.wait_for_url(f"{demo.url}/profile")
    bob = demo.fake.users["bob"]
    assert page.locator("#nickname").inner_text() == bob.nickname == "小明✨🚀"
    appid = demo.app.extensions["wechat"].settings.appid
    assert page.locator("#openid").inner_text() == demo.fake.openid_for(appid, "bob")
    assert page.locator("#unionid").inner_text() == bob.unionid
    assert page.locator("img").get_attribute("src") == bob.headimgurl
    assert offsite == [bob.headimgurl]  # nothing but the avatar left this machine, and that was stubbed
    shoot(page, "profile")
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
    shoot(page, "denied")
    page.goto(f"{demo.url}/profile")  # still not logged in: back to WeChat
    page.wait_for_url(f"{demo.url}/_fake_wechat/connect/oauth2/authorize?**")


def test_deny_with_redirect_shows_the_apps_error_page(page: Page, demo: Demo, shoot: Any) -> None:
    demo.fake.deny_mode = "redirect"
    open_consent_page(page, demo)
    with page.expect_response(lambda response: "/wechat/callback?" in response.url) as callback:
        page.click("#deny")
    assert callback.value.status == 403
    assert "code=" not in callback.value.url
    # The page speaks the browser's language (zh-CN here); the error's class name is stable.
    assert page.locator("#wechat-error").get_attribute("data-error") == "AuthorizationDenied"
    shoot(page, "denied-error-page")


def open_scan_page(desktop: Page, demo: Demo) -> None:
    """From the protected page, in a desktop browser, to the fake WeChat's website QR page."""
    assert "MicroMessenger" not in desktop.evaluate("navigator.userAgent")
    desktop.goto(f"{demo.url}/profile")
    desktop.wait_for_url(f"{demo.url}/_fake_wechat/connect/qrconnect?**")
    query = dict(parse_qsl(urlsplit(desktop.url).query))
    assert query["appid"] == DEMO_OPEN_APPID and query["scope"] == "snsapi_login"
    assert query["redirect_uri"] == f"{demo.url}/wechat/qr/callback"
    assert desktop.locator("#qrcode").is_visible()
    assert desktop.locator("#hint").inner_text() == "使用微信扫一扫登录"


def test_desktop_logs_in_by_qr_code(desktop: Page, demo: Demo, shoot: Any, offsite: list[str]) -> None:
    open_scan_page(desktop, demo)
    desktop.check('input[name="user"][value="bob"]')
    shoot(desktop, "qr-scan")
    with desktop.expect_response(lambda response: "/wechat/qr/callback?" in response.url) as callback:
        desktop.click("#allow")
    assert callback.value.status == 302
    desktop.wait_for_url(f"{demo.url}/profile")
    bob = demo.fake.users["bob"]
    assert desktop.locator("#nickname").inner_text() == bob.nickname == "小明✨🚀"
    assert desktop.locator("#openid").inner_text() == demo.fake.openid_for(DEMO_OPEN_APPID, "bob")
    assert desktop.locator("#unionid").inner_text() == bob.unionid
    assert offsite == [bob.headimgurl]


def test_one_person_by_qr_and_in_wechat_is_one_user(
    desktop: Page, open_page: Callable[..., Page], demo: Demo, shoot: Any
) -> None:
    open_scan_page(desktop, demo)
    desktop.check('input[name="user"][value="alice"]')
    desktop.click("#allow")
    desktop.wait_for_url(f"{demo.url}/profile")
    on_desktop = desktop.locator("#user-id").inner_text()

    phone = open_page(WECHAT_USER_AGENT)  # another browser: no cookie in common with the desktop
    open_consent_page(phone, demo)
    phone.check('input[name="user"][value="alice"]')
    phone.click("#allow")
    phone.wait_for_url(f"{demo.url}/profile")
    assert phone.locator("#user-id").inner_text() == on_desktop
    assert phone.locator("#unionid").inner_text() == demo.fake.users["alice"].unionid
    appids = phone.locator("#accounts tr td:first-child").all_inner_texts()
    assert sorted(appids) == sorted([DEMO_APPID, DEMO_OPEN_APPID])  # one user, an account per WeChat app
    shoot(phone, "one-user-two-apps")


def test_embedded_qr_page_logs_the_top_window_in(desktop: Page, demo: Demo, shoot: Any) -> None:
    desktop.goto(f"{demo.url}/wechat/qr?next=/profile")
    iframe = desktop.locator("#wechat-qr iframe")
    src = urlsplit(iframe.get_attribute("src") or "")
    # The fake's wxLogin.js, served from the app's own mount of the fake, points the iframe there too.
    assert f"{src.scheme}://{src.netloc}{src.path}" == f"{demo.url}/_fake_wechat/connect/qrconnect"
    query = dict(parse_qsl(src.query))
    assert query["appid"] == DEMO_OPEN_APPID and query["login_type"] == "jssdk"
    assert query["self_redirect"] == "false"
    assert query["redirect_uri"] == f"{demo.url}/wechat/qr/callback"
    frame = desktop.frame_locator("#wechat-qr iframe")
    assert frame.locator("#hint").inner_text() == "使用微信扫一扫登录"
    frame.locator("#user-carol").check()
    shoot(desktop, "qr-embedded")
    frame.locator("#allow").click()
    desktop.wait_for_url(f"{demo.url}/profile")  # the top window, not the iframe, went to the callback
    assert desktop.locator("#nickname").inner_text() == demo.fake.users["carol"].nickname == "\x14琦娅🍭"
    assert desktop.locator("#openid").inner_text() == demo.fake.openid_for(DEMO_OPEN_APPID, "carol")
