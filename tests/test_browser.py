"""The demo in a real browser: Debian's Chromium, driven by Playwright, with WeChat on another site.

The other tests play the browser with a test client; this one proves the real thing
works: redirects with a ``#wechat_redirect`` fragment, the consent form, the session
cookie across WeChat's redirect back, and the emoji nickname rendered on the page. It
drives both browser flows: a phone with WeChat's User-Agent gets the Official Account's
consent page, a desktop browser the website QR login, full-page or embedded with wxLogin.js;
with WeCom configured too (:data:`WECOM_DEMOS`), WeCom's client gets the corp's in-client login and a
desktop WeCom's web login page, full-page or as the panel ``wechat_wecom_login`` embeds.

The app and the fake WeChat are different *sites*, as in production: the fake runs on its
own loopback server (:class:`~flask_wechat.testing.server.FakeWeChatServer`) and Chromium
reaches the two as ``http://shop.test:PORT`` and ``http://open.weixin.test:PORT`` (its
``--host-resolver-rules`` map both names to 127.0.0.1; the app's own calls to the sns API go
to 127.0.0.1 directly). So SameSite rules apply to every trip: the suite runs once with
Flask's default session cookie (no SameSite attribute: Chromium treats it as Lax) and once
with ``SESSION_COOKIE_SAMESITE="Lax"``, and each completed login asserts that the callback
request carried the session cookie the app set before sending the browser to WeChat.

Both sites are secure contexts, as WeChat and a production app (both on https) are: each test
launches Chromium once its two servers listen, with ``--unsafely-treat-insecure-origin-as-secure``
naming their two origins. Chromium sends the ``Sec-Fetch-*`` request headers to such origins
only, and the app relies on them to tell WeChat's QR frame (``self_redirect``) from the top window.

Each page of the demo is checked as a visitor would see it, on a 390 px phone in WeChat and on a
desktop, in Chinese and in English: every image loaded, nothing wider than the screen, and one
language per page, the browser's (:func:`check_demo_page`).

Set ``WECHAT_TEST_SCREENSHOTS=docs/screenshots`` to refresh the docs' screenshots (each test's
``shoot(page, name)`` saves ``name.png``; the docs pages reference them by that name). The name has
no ``FLASK_`` prefix: the demo reads ``FLASK_*`` variables into its config, which warns about unknown keys.
Without Chromium or Playwright the module is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask, render_template_string, request

from examples.app import create_app, db
from flask_wechat.protocol import OA_AUTHORIZE_PATH, QRCONNECT_PATH
from flask_wechat.testing import DEMO_AGENTID, DEMO_CORPID, DEMO_WECOM_SECRET, WECOM_USER_AGENT
from flask_wechat.testing.accounts import (
    DEFAULT_USERS,
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
)
from flask_wechat.testing.server import FakeWeChatServer

from .loopback import serving

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CHROMIUM = Path("/usr/bin/chromium")
#: The app's and the fake WeChat's names in the browser: two sites (neither is under the other).
SHOP_HOST = "shop.test"
WECHAT_HOST = "open.weixin.test"
#: As root, without a sandbox, and quiet on a machine with no outside network; both test
#: hostnames resolve to loopback (the port stays the URL's).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {SHOP_HOST} 127.0.0.1,MAP {WECHAT_HOST} 127.0.0.1",
]
#: A phone-sized window with the User-Agent of WeChat's in-app browser: the Official Account
#: flow is the one for WeChat's browser (a desktop browser is offered the QR flow instead).
VIEWPORT = {"width": 390, "height": 844}
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
)
#: A desktop browser keeps Chromium's own User-Agent: it is not WeChat's, so it gets the QR flow.
DESKTOP_VIEWPORT = {"width": 1280, "height": 800}
#: Where WeChat (or WeCom) sends the browser back: in-WeChat authorization, the QR login, and WeCom's two.
CALLBACK_PATHS = ("/wechat/callback", "/wechat/qr/callback", "/wechat/wecom/callback", "/wechat/wecom/web/callback")
#: A page of the app that embeds the QR login with the options of the query (self_redirect=1).
EMBED_TEMPLATE = (
    "<!doctype html><title>embedded QR</title>{{ wechat_qr_login(next='/profile', self_redirect=self_redirect) }}"
)
#: A page of the app that embeds WeCom's login panel, with the query's redirect_type ("top" by default).
WECOM_EMBED_TEMPLATE = (
    "<!doctype html><title>embedded WeCom login</title>"
    "{{ wechat_wecom_login(next='/profile', redirect_type=redirect_type) }}"
)

try:
    from playwright.sync_api import Browser, BrowserContext, Frame, Page, Playwright, Request, Route, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def _missing() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def launch_chromium(playwright: Playwright, secure_origins: Iterable[str]) -> Browser:
    """Debian's Chromium with the shared arguments (never a downloaded browser).

    ``secure_origins`` (``http://HOST:PORT``) count as secure contexts: Chromium sends them
    ``Sec-Fetch-*`` headers, which it sends to potentially trustworthy origins only.
    """
    secure = f"--unsafely-treat-insecure-origin-as-secure={','.join(secure_origins)}"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, secure])


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser(playwright: Playwright, demo: Demo) -> Iterator[Browser]:
    """Chromium for this test's servers: the ports are known only once they listen."""
    chromium = launch_chromium(playwright, [demo.url, demo.wechat_url])
    yield chromium
    chromium.close()


@dataclass(frozen=True)
class Arrival:
    """A callback request as the app received it, and the app's answer."""

    #: The session cookie it carried (None: none).
    session: str | None
    #: Its ``Sec-Fetch-Dest`` and ``Sec-Fetch-Site`` headers (None: not sent).
    fetch: tuple[str | None, str | None]
    #: The answer's status code and body.
    status: int
    body: str


@dataclass
class Demo:
    """The example app on one site and the fake WeChat on another, each on a loopback port."""

    app: Flask
    #: ``http://shop.test:PORT``: the app, as the browser reaches it.
    url: str
    #: ``http://open.weixin.test:PORT``: the fake WeChat, as the browser reaches it.
    wechat_url: str
    wechat: FakeWeChatServer
    #: Each callback request, as the app received it.
    received: list[Arrival] = field(default_factory=list)

    @property
    def fake(self) -> Any:
        return self.wechat.fake

    @property
    def cookie_name(self) -> str:
        return str(self.app.config["SESSION_COOKIE_NAME"])


def _cookie(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` request header."""
    pairs = (part.partition("=") for part in (header or "").split(";"))
    return next((value for key, _, value in pairs if key.strip() == name), None)


def _recording_callbacks(wsgi_app: WSGIApplication, demo: Demo) -> WSGIApplication:
    """Note every callback request (session cookie, fetch metadata) and the app's answer to it."""

    def record(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in CALLBACK_PATHS:
            return wsgi_app(environ, start_response)
        statuses: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        answer = wsgi_app(environ, start)
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        session = _cookie(environ.get("HTTP_COOKIE"), demo.cookie_name)
        fetch = (environ.get("HTTP_SEC_FETCH_DEST"), environ.get("HTTP_SEC_FETCH_SITE"))
        demo.received.append(Arrival(session, fetch, int(statuses[-1].split()[0]), body.decode()))
        return [body]

    return record


def _embed() -> str:
    return render_template_string(EMBED_TEMPLATE, self_redirect=request.args.get("self_redirect") == "1")


def _wecom_embed() -> str:
    return render_template_string(WECOM_EMBED_TEMPLATE, redirect_type=request.args.get("redirect_type", "top"))


@pytest.fixture
def wechat() -> Iterator[FakeWeChatServer]:
    """The fake WeChat on its own loopback server: another site than the app."""
    with FakeWeChatServer() as server:
        # The avatars it hands out point where the browser reaches it.
        server.fake.public_url = f"http://{WECHAT_HOST}:{urlsplit(server.url).port}"
        yield server


#: The demo with the fake's WeCom corp configured too: ``(SameSite, "wecom")`` params of ``demo``.
WECOM_DEMOS = pytest.mark.parametrize(
    "demo", [(None, "wecom"), ("Lax", "wecom")], indirect=True, ids=["wecom-samesite-unset", "wecom-samesite-lax"]
)


@pytest.fixture(params=[None, "Lax"], ids=["samesite-unset", "samesite-lax"])
def demo(request: pytest.FixtureRequest, tmp_path: Path, wechat: FakeWeChatServer) -> Iterator[Demo]:
    """The example app configured with the fake's demo apps; its session cookie's SameSite is the param.

    A ``(SameSite, "wecom")`` param (:data:`WECOM_DEMOS`) adds the fake's WeCom corp, its pages on the fake's site.
    """
    samesite, variant = request.param if isinstance(request.param, tuple) else (request.param, None)
    wechat_url = f"http://{WECHAT_HOST}:{urlsplit(wechat.url).port}"
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}",
        # Real apps (not WECHAT_FAKE), even if FLASK_WECHAT_* is set in the environment.
        "WECHAT_FAKE": False,
        "WECHAT_APPID": DEMO_APPID,
        "WECHAT_SECRET": DEMO_SECRET,
        "WECHAT_OPEN_APPID": DEMO_OPEN_APPID,
        "WECHAT_OPEN_SECRET": DEMO_OPEN_SECRET,
        "WECHAT_MINIPROGRAM_APPID": DEMO_MINIPROGRAM_APPID,
        "WECHAT_MINIPROGRAM_SECRET": DEMO_MINIPROGRAM_SECRET,
        # The browser goes to the test hostname; Python does not use Chromium's resolver.
        "WECHAT_OPEN_BASE_URL": wechat_url,
        "WECHAT_API_BASE_URL": wechat.url,
    }
    if samesite is not None:
        config["SESSION_COOKIE_SAMESITE"] = samesite
    if variant == "wecom":
        config.update(
            WECHAT_WECOM_CORPID=DEMO_CORPID,
            WECHAT_WECOM_AGENTID=DEMO_AGENTID,
            WECHAT_WECOM_SECRET=DEMO_WECOM_SECRET,
            WECHAT_WECOM_LOGIN_BASE_URL=wechat_url,
            WECHAT_WECOM_API_BASE_URL=wechat.url,
        )
    app = create_app(config)
    app.add_url_rule("/embed", view_func=_embed)
    if variant == "wecom":
        app.add_url_rule("/wecom-embed", view_func=_wecom_embed)
    try:
        with serving(app, "demo-server") as port:
            demo = Demo(app, f"http://{SHOP_HOST}:{port}", wechat_url, wechat)
            app.wsgi_app = _recording_callbacks(app.wsgi_app, demo)  # type: ignore[method-assign,assignment]
            yield demo
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def offsite() -> list[str]:
    """URLs the page asked for off the two test sites (refused: the fake serves even the avatars)."""
    return []


@pytest.fixture
def open_page(browser: Browser, offsite: list[str]) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser context (its own cookies), as another browser would."""
    contexts: list[BrowserContext] = []

    def keep_local(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.hostname in (SHOP_HOST, WECHAT_HOST):
            route.continue_()
            return
        offsite.append(route.request.url)
        route.abort()

    def open_(user_agent: str | None = None, viewport: dict[str, int] = VIEWPORT, locale: str = "zh-CN") -> Page:
        # The locale is also the Accept-Language Chromium sends.
        options: dict[str, Any] = {"viewport": viewport, "locale": locale}
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
    """Screenshot a page into the test's tmp dir; copy to $WECHAT_TEST_SCREENSHOTS when set."""
    taken: list[Path] = []

    def take(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    yield take
    target = os.environ.get("WECHAT_TEST_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copy(path, Path(target) / path.name)


class Callbacks:
    """The requests a page (iframes included) makes to the app's WeChat callbacks, in order."""

    def __init__(self, page: Page, demo: Demo) -> None:
        self.demo = demo
        self.requests: list[Request] = []
        page.on("request", self._note)

    def _note(self, request: Request) -> None:
        url = urlsplit(request.url)
        if url.hostname == SHOP_HOST and url.path in CALLBACK_PATHS:
            self.requests.append(request)

    def sessions(self) -> list[str | None]:
        """The session cookie each callback request carried (None: none), as Chromium sent it."""
        return [_cookie(request.all_headers().get("cookie"), self.demo.cookie_name) for request in self.requests]

    def received(self) -> list[Arrival]:
        """The app's view of these callback requests (the last ones it received)."""
        return self.demo.received[len(self.demo.received) - len(self.requests) :]

    def assert_carried(self, *expected: str | None) -> None:
        """Each callback so far carried ``expected``'s session cookie, and the app received just that."""
        sent = self.sessions()
        assert sent == list(expected)
        assert [arrival.session for arrival in self.received()] == sent

    def assert_fetched(self, *expected: tuple[str, str]) -> None:
        """The app received each callback so far with ``expected``'s (Sec-Fetch-Dest, Sec-Fetch-Site).

        Read where the app reads them: Playwright's copy of a navigation that another frame
        started can lack the headers the network stack added.
        """
        received = [arrival.fetch for arrival in self.received()]
        assert received == list(expected), "Chromium sends Sec-Fetch-* to secure contexts only"


def session_cookie(page: Page, demo: Demo) -> str | None:
    """The app's session cookie as this page's browser holds it now."""
    cookies = page.context.cookies(demo.url)
    return next((cookie["value"] for cookie in cookies if cookie["name"] == demo.cookie_name), None)


def session_sent_to_wechat(page: Page, demo: Demo) -> str:
    """The session cookie the app set before sending the browser to WeChat (the fake's page is showing)."""
    session = session_cookie(page, demo)
    assert session is not None, "the app sent the browser to WeChat without setting its session cookie"
    return session


def state_of(url: str) -> str | None:
    return dict(parse_qsl(urlsplit(url).query)).get("state")


def consent(page: Page, user: str) -> None:
    """Pick a test user and press 允许 on whichever page the fake shows (consent or QR scan)."""
    page.check(f'input[name="user"][value="{user}"]')
    page.click("#allow")


def open_consent_page(page: Page, demo: Demo) -> str:
    """From the protected page to the fake WeChat's consent page; return the session cookie set on the way."""
    page.goto(f"{demo.url}/profile")
    page.wait_for_url(f"{demo.wechat_url}{OA_AUTHORIZE_PATH}?**")
    assert "#wechat_redirect" in page.url  # the browser kept the fragment through both redirects
    assert page.locator("#scope").inner_text() == "获得你的公开信息（昵称、头像）"
    return session_sent_to_wechat(page, demo)


def open_scan_page(desktop: Page, demo: Demo) -> str:
    """From the protected page, in a desktop browser, to the fake's website QR page; return the session cookie."""
    assert "MicroMessenger" not in desktop.evaluate("navigator.userAgent")
    desktop.goto(f"{demo.url}/profile")
    desktop.wait_for_url(f"{demo.wechat_url}{QRCONNECT_PATH}?**")
    query = dict(parse_qsl(urlsplit(desktop.url).query))
    assert query["appid"] == DEMO_OPEN_APPID and query["scope"] == "snsapi_login"
    assert query["redirect_uri"] == f"{demo.url}/wechat/qr/callback"
    assert desktop.locator("#qrcode").is_visible()
    assert desktop.locator("#hint").inner_text() == "使用微信扫一扫登录"
    return session_sent_to_wechat(desktop, demo)


def test_session_cookie_samesite_is_the_configured_one(page: Page, demo: Demo) -> None:
    with page.expect_response(f"{demo.url}/profile") as sent:
        open_consent_page(page, demo)
    set_cookie = next(
        line for line in sent.value.header_values("set-cookie") if line.startswith(f"{demo.cookie_name}=")
    )
    samesite = [part.strip() for part in set_cookie.split(";")[1:] if part.strip().lower().startswith("samesite")]
    # Unset (Flask's default): Chromium applies Lax to it all the same.
    expected = demo.app.config["SESSION_COOKIE_SAMESITE"]
    assert samesite == ([] if expected is None else [f"SameSite={expected}"])


def test_login_with_a_chosen_user_lands_on_the_profile(page: Page, demo: Demo, shoot: Any, offsite: list[str]) -> None:
    callbacks = Callbacks(page, demo)
    session = open_consent_page(page, demo)
    page.check('input[name="user"][value="bob"]')
    shoot(page, "consent")
    page.click("#allow")
    page.wait_for_url(f"{demo.url}/profile")
    callbacks.assert_carried(session)
    bob = demo.fake.users["bob"]
    assert page.locator("#nickname").inner_text() == bob.nickname == "小明✨🚀"
    assert page.locator("#openid").inner_text() == demo.fake.openid_for(DEMO_APPID, "bob")
    assert page.locator("#unionid").inner_text() == bob.unionid
    assert page.locator("img").get_attribute("src") == demo.wechat_url + bob.headimgurl  # served by the fake
    assert offsite == []  # nothing left the two sites
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
    page.wait_for_url(f"{demo.wechat_url}{OA_AUTHORIZE_PATH}/confirm")
    assert page.locator("#denied").inner_text() == "你已拒绝授权"
    shoot(page, "denied")
    page.goto(f"{demo.url}/profile")  # still not logged in: back to WeChat
    page.wait_for_url(f"{demo.wechat_url}{OA_AUTHORIZE_PATH}?**")


def test_deny_with_redirect_shows_the_apps_error_page(page: Page, demo: Demo, shoot: Any) -> None:
    demo.fake.deny_mode = "redirect"
    callbacks = Callbacks(page, demo)
    session = open_consent_page(page, demo)
    with page.expect_response(lambda response: "/wechat/callback?" in response.url) as callback:
        page.click("#deny")
    assert callback.value.status == 403
    assert "code=" not in callback.value.url
    callbacks.assert_carried(session)
    # The page speaks the browser's language (zh-CN here); the error's class name is stable.
    assert page.locator("#wechat-error").get_attribute("data-error") == "AuthorizationDenied"
    shoot(page, "denied-error-page")


def test_desktop_logs_in_by_qr_code(desktop: Page, demo: Demo, shoot: Any, offsite: list[str]) -> None:
    callbacks = Callbacks(desktop, demo)
    session = open_scan_page(desktop, demo)
    desktop.check('input[name="user"][value="bob"]')
    shoot(desktop, "qr-scan")
    with desktop.expect_response(lambda response: "/wechat/qr/callback?" in response.url) as callback:
        desktop.click("#allow")
    assert callback.value.status == 302
    desktop.wait_for_url(f"{demo.url}/profile")
    callbacks.assert_fetched(("document", "cross-site"))
    callbacks.assert_carried(session)
    bob = demo.fake.users["bob"]
    assert desktop.locator("#nickname").inner_text() == bob.nickname == "小明✨🚀"
    assert desktop.locator("#openid").inner_text() == demo.fake.openid_for(DEMO_OPEN_APPID, "bob")
    assert desktop.locator("#unionid").inner_text() == bob.unionid
    assert offsite == []


def test_one_person_by_qr_and_in_wechat_is_one_user(
    desktop: Page, open_page: Callable[..., Page], demo: Demo, shoot: Any
) -> None:
    on_desktop = Callbacks(desktop, demo)
    session = open_scan_page(desktop, demo)
    consent(desktop, "alice")
    desktop.wait_for_url(f"{demo.url}/profile")
    on_desktop.assert_carried(session)
    user_id = desktop.locator("#user-id").inner_text()

    phone = open_page(WECHAT_USER_AGENT)  # another browser: no cookie in common with the desktop
    on_phone = Callbacks(phone, demo)
    session = open_consent_page(phone, demo)
    consent(phone, "alice")
    phone.wait_for_url(f"{demo.url}/profile")
    on_phone.assert_carried(session)
    assert phone.locator("#user-id").inner_text() == user_id
    assert phone.locator("#unionid").inner_text() == demo.fake.users["alice"].unionid
    appids = [item.get_attribute("data-appid") for item in phone.locator("#accounts [data-appid]").all()]
    assert sorted(appids) == sorted([DEMO_APPID, DEMO_OPEN_APPID])  # one user, an account per WeChat app
    shoot(phone, "one-user-two-apps")


def open_embedded_qr(desktop: Page, demo: Demo, path: str, self_redirect: bool) -> str:
    """Load an app page that embeds the QR login; check script and iframe are the fake's; return the session."""
    desktop.goto(f"{demo.url}{path}")
    script = desktop.locator("script[src]").get_attribute("src")
    assert script == f"{demo.wechat_url}/connect/zh_CN/htmledition/js/wxLogin.js"
    src = urlsplit(desktop.locator("#wechat-qr iframe").get_attribute("src") or "")
    # wxLogin.js points the iframe at the origin it was loaded from: the fake, on its own site.
    assert f"{src.scheme}://{src.netloc}{src.path}" == f"{demo.wechat_url}{QRCONNECT_PATH}"
    query = dict(parse_qsl(src.query))
    assert query["appid"] == DEMO_OPEN_APPID and query["login_type"] == "jssdk"
    assert query["self_redirect"] == str(self_redirect).lower()
    assert query["redirect_uri"] == f"{demo.url}/wechat/qr/callback"
    assert desktop.frame_locator("#wechat-qr iframe").locator("#hint").inner_text() == "使用微信扫一扫登录"
    # The widget minted the state, and with it the session cookie, while rendering the page.
    return session_sent_to_wechat(desktop, demo)


def test_embedded_qr_page_logs_the_top_window_in(desktop: Page, demo: Demo, shoot: Any) -> None:
    callbacks = Callbacks(desktop, demo)
    session = open_embedded_qr(desktop, demo, "/wechat/qr?next=/profile", self_redirect=False)
    frame = desktop.frame_locator("#wechat-qr iframe")
    frame.locator("#user-carol").check()
    shoot(desktop, "qr-embedded")
    frame.locator("#allow").click()
    desktop.wait_for_url(f"{demo.url}/profile")  # the top window, not the iframe, went to the callback
    callbacks.assert_fetched(("document", "cross-site"))
    callbacks.assert_carried(session)
    assert desktop.locator("#nickname").inner_text() == demo.fake.users["carol"].nickname == "\x14琦娅🍭"
    assert desktop.locator("#openid").inner_text() == demo.fake.openid_for(DEMO_OPEN_APPID, "carol")


def test_embedded_qr_with_self_redirect_reloads_the_callback_and_logs_the_top_window_in(
    desktop: Page, demo: Demo
) -> None:
    callbacks = Callbacks(desktop, demo)
    session = open_embedded_qr(desktop, demo, "/embed?self_redirect=1", self_redirect=True)
    iframe = desktop.locator("#wechat-qr iframe").element_handle().content_frame()
    assert iframe is not None
    iframe.locator("#user-carol").check()
    iframe.locator("#allow").click()
    desktop.wait_for_url(f"{demo.url}/profile")
    # WeChat's page (another site) sent the iframe to the callback, and Chromium sends a Lax cookie on
    # a cross-site navigation of the top window only: the first request came without it. The app
    # answered a page that loads the same URL again from the app's own document, in the same frame:
    # a same-origin request, which carried the cookie set before the trip to WeChat.
    assert [request.frame for request in callbacks.requests] == [iframe, iframe]
    assert callbacks.requests[1].url == callbacks.requests[0].url
    callbacks.assert_fetched(("iframe", "cross-site"), ("iframe", "same-origin"))
    callbacks.assert_carried(None, session)
    reload, finish = demo.received  # and nothing else reached the callback
    assert reload.status == 200 and 'id="wechat-reload"' in reload.body
    # The reloaded callback logged the browser in, then sent the top window, not the frame, to next.
    assert finish.status == 200 and 'id="wechat-continue"' in finish.body
    assert session_cookie(desktop, demo) not in (None, session)
    assert desktop.locator("#nickname").inner_text() == demo.fake.users["carol"].nickname == "\x14琦娅🍭"
    assert desktop.locator("#openid").inner_text() == demo.fake.openid_for(DEMO_OPEN_APPID, "carol")


@pytest.mark.parametrize("flow", ["oa", "qr"])
def test_a_callback_without_its_session_starts_the_login_again(
    flow: str, open_page: Callable[..., Page], demo: Demo
) -> None:
    phone = flow == "oa"
    page = open_page(WECHAT_USER_AGENT, VIEWPORT) if phone else open_page(None, DESKTOP_VIEWPORT)
    callbacks = Callbacks(page, demo)
    (open_consent_page if phone else open_scan_page)(page, demo)
    on_wechat = page.url
    page.context.clear_cookies(domain=SHOP_HOST)  # lost while the person was on WeChat
    assert session_cookie(page, demo) is None
    consent(page, "bob")
    page.wait_for_url(lambda url: url != on_wechat)
    assert page.url.startswith(f"{demo.wechat_url}/") or page.url == f"{demo.url}/profile", page.url
    second: str | None = None
    if page.url.startswith(f"{demo.wechat_url}/"):  # WeChat asks again: the app started a fresh login
        assert urlsplit(page.url).path == urlsplit(on_wechat).path
        assert state_of(page.url) not in (None, state_of(on_wechat))
        second = session_sent_to_wechat(page, demo)
        consent(page, "bob")
    page.wait_for_url(f"{demo.url}/profile")  # the original next
    sent = callbacks.sessions()
    assert sent[0] is None  # the first callback came back without the session, as staged
    assert len(sent) == 2, "the app accepted a callback without the session that started it, instead of starting again"
    assert sent[1] is not None
    callbacks.assert_carried(None, second or sent[1])
    assert page.locator("#nickname").inner_text() == demo.fake.users["bob"].nickname


# -- WeCom (企业微信): inside its client, on its web login page, and its panel embedded in a page --------


def wecom_accounts(page: Page) -> list[str | None]:
    return [item.get_attribute("data-appid") for item in page.locator("#accounts [data-appid]").all()]


@WECOM_DEMOS
def test_a_member_inside_wecom_logs_in_with_the_corps_app(
    open_page: Callable[..., Page], demo: Demo, offsite: list[str]
) -> None:
    phone = open_page(WECOM_USER_AGENT)
    callbacks = Callbacks(phone, demo)
    phone.goto(f"{demo.url}/profile")  # the WeCom client says MicroMessenger too: WeCom's flow all the same
    phone.wait_for_url(f"{demo.wechat_url}{OA_AUTHORIZE_PATH}?**")
    assert "#wechat_redirect" in phone.url
    query = dict(parse_qsl(urlsplit(phone.url).query))
    assert (query["appid"], query["agentid"], query["scope"]) == (DEMO_CORPID, str(DEMO_AGENTID), "snsapi_base")
    assert query["redirect_uri"] == f"{demo.url}/wechat/wecom/callback"
    session = session_sent_to_wechat(phone, demo)
    phone.click("#pick-zhangsan")  # in real WeCom this is silent: the client knows who opened the link
    phone.wait_for_url(f"{demo.url}/profile")
    callbacks.assert_fetched(("document", "cross-site"))
    callbacks.assert_carried(session)
    assert phone.locator("#openid").inner_text() == "zhangsan"
    assert phone.locator("#nickname").inner_text() == "张三"
    assert wecom_accounts(phone) == [DEMO_CORPID]
    assert len(demo.fake.calls("wecom_getuserinfo")) == len(demo.fake.calls("wecom_gettoken")) == 1
    assert offsite == []


@WECOM_DEMOS
def test_a_desktop_chooses_wecom_and_logs_in_on_its_web_login_page(
    desktop: Page, demo: Demo, offsite: list[str]
) -> None:
    callbacks = Callbacks(desktop, demo)
    desktop.goto(f"{demo.url}/profile")
    desktop.wait_for_url(f"{demo.url}/wechat/choose?next=/profile")  # WeChat's QR code, or WeCom's login
    choices = [link.get_attribute("id") for link in desktop.locator("a[id^=choose-]").all()]
    assert choices[:2] == ["choose-qr", "choose-wecom_web"]
    desktop.click("#choose-wecom_web")
    desktop.wait_for_url(f"{demo.wechat_url}/wwlogin/sso/login?**")
    query = dict(parse_qsl(urlsplit(desktop.url).query))
    assert (query["login_type"], query["appid"], query["agentid"]) == ("CorpApp", DEMO_CORPID, str(DEMO_AGENTID))
    assert query["redirect_uri"] == f"{demo.url}/wechat/wecom/web/callback"
    assert query["state"]
    session = session_sent_to_wechat(desktop, demo)
    consent(desktop, "lisi")
    desktop.wait_for_url(f"{demo.url}/profile")
    callbacks.assert_fetched(("document", "cross-site"))
    callbacks.assert_carried(session)
    assert desktop.locator("#openid").inner_text() == "lisi"
    assert desktop.locator("#nickname").inner_text() == "李四"
    assert wecom_accounts(desktop) == [DEMO_CORPID]
    assert offsite == []


def open_wecom_panel(desktop: Page, demo: Demo, redirect_type: str) -> dict[str, str]:
    """Load an app page that embeds WeCom's panel; check script and iframe are the fake's; the iframe's query."""
    desktop.goto(f"{demo.url}/wecom-embed?redirect_type={redirect_type}")
    assert desktop.locator("script[src]").get_attribute("src") == f"{demo.wechat_url}/wwlogin/sso/panel.js"
    src = urlsplit(desktop.locator("#wecom-login iframe").get_attribute("src") or "")
    assert f"{src.scheme}://{src.netloc}{src.path}" == f"{demo.wechat_url}/wwlogin/sso/login"
    query = dict(parse_qsl(src.query))
    assert (query["appid"], query["panel"], query["redirect_type"]) == (DEMO_CORPID, "1", redirect_type)
    assert query["redirect_uri"] == f"{demo.url}/wechat/wecom/web/callback"
    return query


@WECOM_DEMOS
def test_the_embedded_wecom_panel_logs_the_top_window_in(desktop: Page, demo: Demo) -> None:
    callbacks = Callbacks(desktop, demo)
    desktop.goto(f"{demo.url}/wecom-embed")
    assert desktop.locator("script[src]").get_attribute("src") == f"{demo.wechat_url}/wwlogin/sso/panel.js"
    src = urlsplit(desktop.locator("#wecom-login iframe").get_attribute("src") or "")
    assert f"{src.scheme}://{src.netloc}{src.path}" == f"{demo.wechat_url}/wwlogin/sso/login"
    query = dict(parse_qsl(src.query))
    assert (query["appid"], query["panel"], query["redirect_type"]) == (DEMO_CORPID, "1", "top")
    assert query["redirect_uri"] == f"{demo.url}/wechat/wecom/web/callback"
    # The page minted the state, and with it the session cookie, while rendering.
    session = session_sent_to_wechat(desktop, demo)
    frame = desktop.frame_locator("#wecom-login iframe")
    frame.locator("#user-zhangsan").check()
    frame.locator("#allow").click()
    desktop.wait_for_url(f"{demo.url}/profile")  # the top window, not the panel, went to the callback
    callbacks.assert_fetched(("document", "cross-site"))
    callbacks.assert_carried(session)
    assert desktop.locator("#openid").inner_text() == "zhangsan"
    assert state_of(callbacks.requests[0].url) == query["state"]


@pytest.mark.parametrize("demo", [(None, "wecom")], indirect=True, ids=["wecom-samesite-unset"])
def test_the_embedded_wecom_panel_with_redirect_type_callback_hands_the_page_the_code(
    desktop: Page, demo: Demo
) -> None:
    callbacks = Callbacks(desktop, demo)
    query = open_wecom_panel(desktop, demo, "callback")
    assert query["origin"] == demo.url  # the panel posts the code to this page's origin only
    session = session_sent_to_wechat(desktop, demo)
    frame = desktop.frame_locator("#wecom-login iframe")
    frame.locator("#user-lisi").check()
    frame.locator("#allow").click()
    desktop.wait_for_url(f"{demo.url}/profile")
    # The page itself went to the callback: a navigation of this site's own, the cookie with it.
    callbacks.assert_fetched(("document", "same-origin"))
    callbacks.assert_carried(session)
    assert desktop.locator("#openid").inner_text() == "lisi"


@pytest.mark.parametrize("demo", [(None, "wecom")], indirect=True, ids=["wecom-samesite-unset"])
def test_the_embedded_wecom_panel_with_redirect_type_self_reloads_the_callback_and_logs_the_top_window_in(
    desktop: Page, demo: Demo
) -> None:
    callbacks = Callbacks(desktop, demo)
    open_wecom_panel(desktop, demo, "self")
    session = session_sent_to_wechat(desktop, demo)
    iframe = desktop.locator("#wecom-login iframe").element_handle().content_frame()
    assert iframe is not None
    iframe.locator("#user-zhangsan").check()
    iframe.locator("#allow").click()
    desktop.wait_for_url(f"{demo.url}/profile")
    # WeCom's panel (another site) sent the iframe to the callback without the Lax cookie; the app had
    # the frame load it again from its own document, then sent the top window on.
    assert [request.frame for request in callbacks.requests] == [iframe, iframe]
    callbacks.assert_fetched(("iframe", "cross-site"), ("iframe", "same-origin"))
    callbacks.assert_carried(None, session)
    assert desktop.locator("#openid").inner_text() == "zhangsan"


# -- the demo as visitors see it: their language, their screen ----------------------------------

#: Letters a page in either language may hold: CJK ideographs and punctuation, full-width forms.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
#: Words a Chinese page may show in Latin letters: WeChat's own terms and the project's name.
LATIN_TERMS = {"ID", "AppID", "openid", "unionid", "flask", "wechat", "Cookie", "JS", "SDK", "wx", "config"}
#: What a page shows people, in one string: its text and image descriptions, leaving out data
#: (``translate="no"``: nicknames, ids), scripts and styles.
UI_TEXT = """() => {
  const words = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { words.push(node.textContent); return; }
    if (node.nodeType !== Node.ELEMENT_NODE || node.getAttribute("translate") === "no") return;
    if (["SCRIPT", "STYLE", "NOSCRIPT"].includes(node.tagName)) return;
    if (node.tagName === "IMG") words.push(node.alt);
    node.childNodes.forEach(walk);
  };
  walk(document.documentElement);
  return {lang: document.documentElement.lang, text: words.join(" ").replace(/\\s+/g, " ").trim()};
}"""
#: What could be wrong with how a page looks: images that did not load, anything wider than the
#: screen, anything sticking out of the page's card (``main``).
LAYOUT = """() => {
  const main = document.querySelector("main");
  const edge = main ? main.getBoundingClientRect().right + 0.5 : Infinity;
  return {
    broken: [...document.images].filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.src),
    images: document.images.length,
    width: document.documentElement.scrollWidth,
    screen: window.innerWidth,
    outside: main ? [...main.querySelectorAll("*")].filter((el) => el.getBoundingClientRect().right > edge)
      .map((el) => el.outerHTML.slice(0, 80)) : [],
  };
}"""


def assert_speaks(frame: Frame, language: str) -> None:
    """The frame is in ``language`` only: no Chinese on an English page, no English words on a Chinese one."""
    shown = frame.evaluate(UI_TEXT)
    assert shown["lang"] == language, frame.url
    if language == "en":
        assert not CJK.search(shown["text"]), shown["text"]
    else:
        assert CJK.search(shown["text"]), shown["text"]
        assert set(re.findall(r"[A-Za-z]{2,}", shown["text"])) <= LATIN_TERMS, shown["text"]


def check_demo_page(page: Page, language: str) -> None:
    """A page of the demo (and the frames in it) as the visitor sees it: loaded, fitting, in one language."""
    page.wait_for_load_state("load")
    layout = page.evaluate(LAYOUT)
    assert layout["broken"] == [], f"broken images on {page.url}"
    assert layout["width"] <= layout["screen"], f"{page.url} is wider than the screen"
    assert layout["outside"] == [], f"{page.url}: these stick out of the page"
    for frame in page.frames:
        assert_speaks(frame, language)


def wechat_user_agent(language: str) -> str:
    """WeChat's in-app browser as set to ``language`` (it says so in its User-Agent and its Accept-Language)."""
    return WECHAT_USER_AGENT.replace("Language/zh_CN", "Language/" + ("en" if language == "en" else "zh_CN"))


@pytest.mark.parametrize("demo", [None], indirect=True, ids=["samesite-unset"])
@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("device", ["wechat", "desktop"])
def test_the_demo_looks_finished_in_each_language_on_a_phone_and_a_desktop(
    open_page: Callable[..., Page], demo: Demo, shoot: Any, offsite: list[str], device: str, language: str
) -> None:
    in_wechat = device == "wechat"
    page = open_page(
        wechat_user_agent(language) if in_wechat else None, VIEWPORT if in_wechat else DESKTOP_VIEWPORT, language
    )
    name = f"demo-{device}-{'zh' if language == 'zh-CN' else 'en'}"

    page.goto(f"{demo.url}/")
    check_demo_page(page, language)
    assert page.locator("#qr-link").count() == (0 if in_wechat else 1)  # no QR code a phone would have to scan
    shoot(page, f"{name}-home")

    page.click("#choose-link")
    check_demo_page(page, language)
    choices = [link.get_attribute("id") for link in page.locator("a[id^=choose-]").all()]
    assert choices == (["choose-oa"] if in_wechat else ["choose-qr", "choose-oa"])
    shoot(page, f"{name}-choose")

    if in_wechat:
        page.click("#choose-oa")
        page.wait_for_url(f"{demo.wechat_url}{OA_AUTHORIZE_PATH}?**")
        consent(page, "bob")
    else:
        page.goto(f"{demo.url}/")
        page.click("#qr-link")
        qr = page.frame_locator("#wechat-qr iframe")
        hint = {"en": "Scan with WeChat to log in", "zh-CN": "使用微信扫一扫登录"}[language]
        assert qr.locator("#hint").inner_text() == hint  # the embedded QR speaks the page's language
        check_demo_page(page, language)
        shoot(page, f"{name}-qr")
        qr.locator("#user-bob").check()
        qr.locator("#allow").click()
    page.wait_for_url(f"{demo.url}/profile")
    check_demo_page(page, language)
    bob = demo.fake.users["bob"]
    assert page.locator("#nickname").inner_text() == bob.nickname
    assert page.locator("#avatar").get_attribute("src") == demo.wechat_url + bob.headimgurl
    assert page.locator("#avatar").evaluate("img => img.naturalWidth") > 0
    shoot(page, f"{name}-profile")

    # A refused binding: the page says a binding failed, tries the binding again, and leads back.
    demo.fake.deny_mode = "redirect"
    page.click("#bind")
    page.wait_for_url(f"{demo.wechat_url}/**")
    page.click("#deny")
    page.wait_for_url(f"{demo.url}/wechat/**callback?**")
    check_demo_page(page, language)
    title = {"en": "Could not link WeChat", "zh-CN": "绑定微信失败"}[language]
    assert page.title() == page.locator("h1").inner_text() == title
    assert page.locator("#wechat-retry").get_attribute("href") == "/wechat/bind?next=/profile"
    shoot(page, f"{name}-bind-refused")
    page.click("#wechat-back")
    page.wait_for_url(f"{demo.url}/profile")
    assert offsite == []


def test_a_page_inside_wechat_passes_wx_config(page: Page, demo: Demo, offsite: list[str]) -> None:
    """The demo's JS-SDK page: signed on the server for its own URL; the fake's wx stand-in checks it."""
    page.goto(f"{demo.url}/jssdk?from=timeline&q=%E4%B8%AD#top")
    status = page.locator('#jssdk-status[data-status="ready"]')
    status.wait_for()
    assert "wx.config" in status.inner_text()
    assert demo.fake.tickets_issued(DEMO_APPID) == 1
    assert offsite == []


@pytest.fixture
def in_app_demo(tmp_path: Path) -> Iterator[str]:
    """The demo as ``make demo`` runs it: the fake WeChat installed inside the app, on one site."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}"})
    try:
        with serving(app, "in-app-demo") as port:
            yield f"http://{SHOP_HOST}:{port}"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_simulated_mini_program_shares_the_phone_number_shown_on_the_profile(
    playwright: Playwright, in_app_demo: str
) -> None:
    chromium = launch_chromium(playwright, [in_app_demo])
    try:
        context = chromium.new_context(viewport=VIEWPORT, locale="en")
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(in_app_demo + "/")
        page.click("#miniprogram-demo")
        page.check("#user-carol")
        page.click("#login")
        page.locator('#login-result[data-status="200"]').wait_for()
        page.click("#phone")
        page.locator('#phone-result[data-status="200"]').wait_for()
        page.goto(in_app_demo + "/profile")
        carol = next(user for user in DEFAULT_USERS if user.key == "carol")
        assert page.locator("#phone").inner_text() == carol.phone_number
    finally:
        chromium.close()
