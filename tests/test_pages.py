"""The pages visitors see: their language, a phone-sized layout, and templates the app can override."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask, render_template_string, request
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader
from werkzeug.test import TestResponse

from flask_wechat.i18n import pick_language
from flask_wechat.testing.fake import DEMO_OPEN_APPID, DEMO_OPEN_SECRET, FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import make_app
from .conftest import login, visit_wechat


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("en;q=0.5, zh;q=0.8", "zh-CN"),
        ("fr-FR,fr;q=0.9", "en"),
        ("", "en"),
        (None, "en"),
        ("zh;q=abc, en", "en"),
        ("zh;q=0", "en"),
    ],
)
def test_language_comes_from_accept_language(header: str | None, expected: str) -> None:
    assert pick_language(header, "en") == expected


def test_error_page_speaks_chinese_or_english(app: Flask) -> None:
    client = app.test_client()
    chinese = client.get("/wechat/callback?state=x&code=y", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert chinese.status_code == 400
    text = chinese.get_data(as_text=True)
    assert "登录链接已过期" in text and 'lang="zh-CN"' in text and "重试" in text
    english = client.get("/wechat/callback?state=x&code=y", headers={"Accept-Language": "en-GB"})
    assert "This login link has expired" in english.get_data(as_text=True)


def test_default_language_is_configurable(fake_wechat_server: FakeWeChatServer, database_uri: str) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_DEFAULT_LANGUAGE="zh-CN")
    assert "登录链接已过期" in app.test_client().get("/wechat/callback").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/wechat/callback?state=x", "/wechat/choose", "/wechat/qr"])
def test_pages_are_sized_for_phones(fake_wechat_server: FakeWeChatServer, database_uri: str, path: str) -> None:
    app = make_app(
        fake_wechat_server.url, database_uri, WECHAT_OPEN_APPID=DEMO_OPEN_APPID, WECHAT_OPEN_SECRET=DEMO_OPEN_SECRET
    )
    page = app.test_client().get(path).get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_chooser_offers_only_configured_flows(fake_wechat_server: FakeWeChatServer, database_uri: str) -> None:
    both = make_app(
        fake_wechat_server.url, database_uri, WECHAT_OPEN_APPID=DEMO_OPEN_APPID, WECHAT_OPEN_SECRET=DEMO_OPEN_SECRET
    )
    page = both.test_client().get("/wechat/choose?next=/profile", headers={"Accept-Language": "zh-CN"})
    text = page.get_data(as_text=True)
    assert 'id="choose-qr" href="/wechat/login?flow=qr&amp;next=/profile"' in text
    assert 'id="choose-oa"' in text and "微信扫码登录" in text
    only_oa = make_app(fake_wechat_server.url, str(database_uri).replace("app.db", "oa.db"))
    assert 'id="choose-qr"' not in only_oa.test_client().get("/wechat/choose").get_data(as_text=True)


def test_the_app_can_override_a_page(app: Flask, tmp_path: Path) -> None:
    app.jinja_loader = ChoiceLoader(
        [DictLoader({"wechat/error.html": "custom {{ status }} {{ error }} {{ t[words] }}"}), app.jinja_loader]
    )
    answer = app.test_client().get("/wechat/callback?state=x&code=y", headers={"Accept-Language": "en"})
    assert (
        answer.get_data(as_text=True)
        == "custom 400 StateError This login link has expired or was not started here. Please try again."
    )


# -- error pages: retry where the person came from, titled for what failed ------------------------


def error_page(response: TestResponse) -> tuple[str, str, str]:
    """(title, heading, retry link) of an error page."""
    text = response.get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", text, re.S)
    heading = re.search(r"<h1>(.*?)</h1>", text, re.S)
    retry = re.search(r'<a class="button" id="wechat-retry" href="([^"]+)"', text)
    assert title and heading and retry, text
    return html.unescape(title.group(1).strip()), html.unescape(heading.group(1)), html.unescape(retry.group(1))


def test_a_refused_login_retries_the_login_with_its_next(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.deny_mode = "redirect"
    trip = login(client, start="/wechat/login?next=" + quote("/profile?tab=2", safe=""), action="deny")
    assert trip.response.status_code == 403
    title, heading, retry = error_page(trip.response)
    assert urlsplit(retry).path == "/wechat/login"
    assert parse_qs(urlsplit(retry).query) == {"next": ["/profile?tab=2"]}
    assert title == heading == "WeChat login failed"


def bob_binds_alices_wechat(app: Flask, fake_wechat: FakeWeChat, action: str, language: str) -> TestResponse:
    """Bob, logged in, starts binding from /settings and alice's WeChat answers (or refuses)."""
    client = app.test_client()
    login(client, user="bob")
    bind = client.get("/wechat/bind?next=/settings")
    answer = visit_wechat(bind.location, "alice", action)
    callback = urlsplit(answer.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}", headers={"Accept-Language": language})


def test_a_failed_binding_is_titled_as_one_and_retries_the_binding(app: Flask, fake_wechat: FakeWeChat) -> None:
    login(app.test_client(), user="alice")  # alice's WeChat belongs to alice's user
    taken = bob_binds_alices_wechat(app, fake_wechat, "allow", "en")
    assert taken.status_code == 409
    title, heading, retry = error_page(taken)
    assert title == heading == "Could not link WeChat"
    assert retry == "/wechat/bind?next=/settings"
    assert 'id="wechat-back" href="/settings"' in taken.get_data(as_text=True)
    assert "login" not in taken.get_data(as_text=True).lower().replace("/wechat/login", "")


def test_a_refused_binding_in_chinese(app: Flask, fake_wechat: FakeWeChat) -> None:
    fake_wechat.deny_mode = "redirect"
    refused = bob_binds_alices_wechat(app, fake_wechat, "deny", "zh-CN")
    assert refused.status_code == 403
    title, heading, retry = error_page(refused)
    assert title == heading == "绑定微信失败"
    assert retry == "/wechat/bind?next=/settings"
    assert "你没有在微信中授权绑定。" in refused.get_data(as_text=True)
    assert "登录" not in refused.get_data(as_text=True)


def test_an_unreadable_state_retries_a_login_to_the_default_page(client: FlaskClient) -> None:
    page = client.get("/wechat/callback?state=nonsense&code=x", headers={"Accept-Language": "zh-CN"})
    assert error_page(page) == ("微信登录失败", "微信登录失败", "/wechat/login?next=/")


def test_wechat_being_unavailable_is_titled_so(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail_next("access_token", -1, times=5)
    trip = login(client, start="/wechat/login?next=/profile")
    assert trip.response.status_code == 503
    assert error_page(trip.response) == (
        "WeChat login is unavailable right now",
        "WeChat login is unavailable right now",
        "/wechat/login?next=/profile",
    )


# -- the embedded QR: its language and wxLogin.js's documented options -----------------------------


def widget_options(page: str) -> dict[str, object]:
    """The options the page hands ``new WxLogin(...)``."""
    found = re.search(r"new WxLogin\((\{.*?\})\);", page, re.S)
    assert found, page
    options: dict[str, object] = json.loads(found.group(1))
    return options


@pytest.fixture
def qr_app(fake_wechat_server: FakeWeChatServer, database_uri: str) -> Flask:
    app = make_app(
        fake_wechat_server.url, database_uri, WECHAT_OPEN_APPID=DEMO_OPEN_APPID, WECHAT_OPEN_SECRET=DEMO_OPEN_SECRET
    )

    @app.get("/embed")
    def embed() -> str:
        return render_template_string(request.args["template"])

    return app


@pytest.mark.parametrize(("language", "lang"), [("en-US,en;q=0.9", "en"), ("zh-CN,zh;q=0.9", "cn"), ("fr", "en")])
def test_the_embedded_qr_speaks_the_pages_language(qr_app: Flask, language: str, lang: str) -> None:
    page = qr_app.test_client().get("/wechat/qr", headers={"Accept-Language": language}).get_data(as_text=True)
    assert widget_options(page)["lang"] == lang


def test_the_embedded_qr_takes_wxlogin_options(qr_app: Flask) -> None:
    client = qr_app.test_client()
    plain = widget_options(client.get("/embed", query_string={"template": "{{ wechat_qr_login() }}"}).text)
    assert not {"stylelite", "fast_login", "href"} & set(plain)
    template = (
        "{{ wechat_qr_login(lang='en', stylelite=True, fast_login=False, style='white', "
        "href='data:text/css;base64,Ym9keXt9+/=') }}"
    )
    options = widget_options(client.get("/embed", query_string={"template": template}).text)
    assert options["lang"] == "en" and options["style"] == "white"
    # wxLogin.js tests `1 === stylelite` and `0 === fast_login`, and pastes href in as it is, like redirect_uri.
    assert options["stylelite"] == 1 and options["fast_login"] == 0
    assert options["href"] == quote("data:text/css;base64,Ym9keXt9+/=", safe="")
    chinese = client.get(
        "/embed", query_string={"template": "{{ wechat_qr_login(lang='cn') }}"}, headers={"Accept-Language": "en"}
    )
    assert widget_options(chinese.text)["lang"] == "cn"


# -- inside WeChat, in-WeChat login leads and QR is not offered --------------------------------------

IN_WECHAT = {"User-Agent": "Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI"}
DESKTOP = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}


def choices(page: str) -> list[tuple[str, str]]:
    """(id, class) of each way to log in the chooser offers, in order."""
    return [(id_, klass) for klass, id_ in re.findall(r'<a class="([^"]+)" id="(choose-\w+)"', page)]


def test_the_chooser_leads_with_qr_on_a_desktop(qr_app: Flask) -> None:
    page = qr_app.test_client().get("/wechat/choose?next=/profile", headers=DESKTOP).text
    assert choices(page) == [("choose-qr", "button"), ("choose-oa", "button secondary")]


def test_the_chooser_in_wechat_leads_with_wechat_and_hides_qr(qr_app: Flask) -> None:
    page = qr_app.test_client().get("/wechat/choose?next=/profile", headers={**IN_WECHAT, "Accept-Language": "en"}).text
    assert choices(page) == [("choose-oa", "button")]
    assert 'href="/wechat/login?flow=oa&amp;next=/profile"' in page


@pytest.fixture
def qr_only(fake_wechat_server: FakeWeChatServer, tmp_path: Path) -> Flask:
    return make_app(
        fake_wechat_server.url,
        f"sqlite:///{tmp_path / 'qr.db'}",
        WECHAT_APPID=None,
        WECHAT_SECRET=None,
        WECHAT_OPEN_APPID=DEMO_OPEN_APPID,
        WECHAT_OPEN_SECRET=DEMO_OPEN_SECRET,
    )


def test_the_chooser_in_wechat_explains_when_only_qr_exists(qr_only: Flask) -> None:
    page = qr_only.test_client().get("/wechat/choose", headers={**IN_WECHAT, "Accept-Language": "zh-CN"}).text
    assert choices(page) == []
    assert 'id="choose-none"' in page and "电脑" in page
    assert choices(qr_only.test_client().get("/wechat/choose", headers=DESKTOP).text) == [("choose-qr", "button")]


def test_the_qr_page_in_wechat_sends_the_visitor_to_the_in_wechat_login(qr_app: Flask) -> None:
    answer = qr_app.test_client().get("/wechat/qr?next=/profile", headers=IN_WECHAT)
    assert answer.status_code == 302
    assert answer.location == "/wechat/login?flow=oa&next=/profile"


def test_the_qr_page_in_wechat_explains_without_an_official_account(qr_only: Flask) -> None:
    answer = qr_only.test_client().get("/wechat/qr?next=/profile", headers={**IN_WECHAT, "Accept-Language": "en"})
    assert answer.status_code == 200
    assert "WxLogin" not in answer.text and 'id="qr-in-wechat"' in answer.text
    assert "computer" in answer.text
    assert "WxLogin" in qr_only.test_client().get("/wechat/qr", headers=DESKTOP).text
