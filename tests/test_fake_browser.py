"""The fake's embedded QR login in a real browser: a site's page, wxLogin.js, the iframe, the callback.

Chromium (driven by Playwright) loads a host page that includes the fake's wxLogin.js
exactly as a site includes WeChat's, then "scans" in the iframe's developer panel.
The site runs on its own loopback port (another origin than the fake's, as in real life)
and nothing leaves the machine.
Skipped without Chromium or Playwright, except under CI, where it fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from werkzeug.wrappers import Request, Response

from flask_wechat import protocol
from flask_wechat.testing import FakeWeChat, FakeWeChatServer
from flask_wechat.testing.fake import DEMO_OPEN_APPID, DEMO_OPEN_SECRET

from .loopback import chromium, local_page, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def server() -> Iterator[FakeWeChatServer]:
    with FakeWeChatServer(FakeWeChat()) as running:
        yield running


@dataclass
class Site:
    """A site on its own loopback port (another origin than the fake's) whose login page uses wxLogin.js."""

    fake_url: str
    url: str = ""
    #: What the login page passes to ``new WxLogin(...)``; each test fills it in.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def callback(self) -> str:
        return self.url + "/wechat/callback"

    def login_page(self) -> str:
        # Wired the way WeChat's docs tell sites to: the script, a container, encodeURIComponent(redirect_uri).
        return (
            '<!doctype html><html><head><meta charset="utf-8">'
            f'<script src="{self.fake_url}/connect/zh_CN/htmledition/js/wxLogin.js"></script></head>'
            '<body><h1 id="site">Site login</h1><div id="login_container"></div>'
            f"<script>var options = {json.dumps(self.options)};"
            f"options.redirect_uri = encodeURIComponent({json.dumps(self.callback)});"
            "new WxLogin(options);</script></body></html>"
        )

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        text = self.login_page() if request.path == "/login" else '<h1 id="callback">callback</h1>'
        return Response(text, content_type="text/html; charset=utf-8")(environ, start_response)


@pytest.fixture
def site(server: FakeWeChatServer) -> Iterator[Site]:
    app = Site(server.url, options={"id": "login_container", "appid": DEMO_OPEN_APPID, "scope": "snsapi_login"})
    with serving(app, "site") as port:
        app.url = f"http://127.0.0.1:{port}"
        yield app


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with local_page(browser) as opened:
        yield opened


def exchange(server: FakeWeChatServer, url: str) -> dict[str, Any]:
    query = dict(parse_qsl(urlsplit(url).query))
    params = protocol.token_query(DEMO_OPEN_APPID, DEMO_OPEN_SECRET, query["code"])
    data: dict[str, Any] = json.loads(requests.get(server.url + protocol.TOKEN_PATH, params=params).content)
    return {**data, "state": query.get("state")}


def test_embedded_qr_navigates_the_top_window(page: Page, site: Site, server: FakeWeChatServer) -> None:
    site.options.update(self_redirect=False, state="top1")
    page.goto(site.url + "/login")
    iframe = page.locator("#login_container iframe")
    assert iframe.get_attribute("width") == "300px" and iframe.get_attribute("height") == "400px"
    src = iframe.get_attribute("src") or ""
    assert src.startswith(f"{server.url}/connect/qrconnect?appid={DEMO_OPEN_APPID}&scope=snsapi_login&redirect_uri=")
    assert f"&redirect_uri={quote(site.callback, safe='')}&state=top1&login_type=jssdk&self_redirect=false" in src
    frame = page.frame_locator("#login_container iframe")
    # The iframe does not scroll: the whole developer panel must fit in its 300x400.
    outer, allow = iframe.bounding_box(), frame.locator("#allow").bounding_box()
    assert outer is not None and allow is not None
    assert allow["y"] + allow["height"] <= outer["y"] + 400 and allow["x"] + allow["width"] <= outer["x"] + 300
    frame.locator("#user-bob").check()
    frame.locator("#allow").click()
    page.wait_for_url(site.callback + "?*")
    token = exchange(server, page.url)
    assert token["state"] == "top1" and token["scope"] == "snsapi_login"
    assert token["openid"] == server.fake.openid_for(DEMO_OPEN_APPID, "bob")


def test_embedded_qr_with_self_redirect_stays_in_the_iframe(page: Page, site: Site, server: FakeWeChatServer) -> None:
    site.options.update(self_redirect=True, state="in1", lang="en")
    page.goto(site.url + "/login")
    frame = page.frame_locator("#login_container iframe")
    assert "Scan with WeChat" in frame.locator("#hint").inner_text()
    frame.locator("#allow").click()
    page.locator("#login_container iframe").wait_for()
    child = page.frames[1]
    child.wait_for_url(site.callback + "?*")
    assert page.url == site.url + "/login"
    token = exchange(server, child.url)
    assert token["state"] == "in1" and token["openid"] == server.fake.openid_for(DEMO_OPEN_APPID, "alice")
