"""The pages visitors see: their language, a phone-sized layout, and templates the app can override."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from jinja2 import ChoiceLoader, DictLoader

from flask_wechat.i18n import pick_language
from flask_wechat.testing.fake import DEMO_OPEN_APPID, DEMO_OPEN_SECRET
from flask_wechat.testing.server import FakeWeChatServer

from .apps import make_app


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
