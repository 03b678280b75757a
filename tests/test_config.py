"""Configuration: defaults in one place, and a clear error naming the bad key at init_app."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_wechat import ConfigurationError, WeChat
from flask_wechat.config import DEFAULTS, load_settings

from .apps import User, WeChatAccount, make_app

GOOD = {"WECHAT_APPID": "wx1234567890abcdef", "WECHAT_SECRET": "not-a-real-secret"}


def settings_for(**config: Any):  # type: ignore[no-untyped-def]
    return load_settings({**DEFAULTS, **GOOD, **config})


def test_defaults_are_documented_values() -> None:
    settings = settings_for()
    assert settings.scope == "snsapi_userinfo"
    assert settings.lang == "zh_CN"
    assert settings.open_base_url == "https://open.weixin.qq.com"
    assert settings.api_base_url == "https://api.weixin.qq.com"
    assert settings.url_prefix == "/wechat"
    assert not settings.fake


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("WECHAT_APPID", None),
        ("WECHAT_APPID", ""),
        ("WECHAT_APPID", "wx 123"),
        ("WECHAT_SECRET", None),
        ("WECHAT_SECRET", "   "),
        ("WECHAT_SCOPE", "snsapi_login"),
        ("WECHAT_LANG", "fr"),
        ("WECHAT_OPEN_BASE_URL", "open.weixin.qq.com"),
        ("WECHAT_API_BASE_URL", "ftp://api.weixin.qq.com"),
        ("WECHAT_API_BASE_URL", "https://api.weixin.qq.com/?x=1"),
        ("WECHAT_READ_TIMEOUT", 0),
        ("WECHAT_CONNECT_TIMEOUT", "3"),
        ("WECHAT_RETRIES", -1),
        ("WECHAT_STATE_LIFETIME", True),
        ("WECHAT_URL_PREFIX", "wechat"),
        ("WECHAT_DEFAULT_NEXT", "//evil.example"),
    ],
)
def test_bad_setting_fails_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key):
        settings_for(**{key: value})


def test_init_app_fails_at_start_up_for_a_missing_appid(database_uri: str) -> None:
    with pytest.raises(ConfigurationError, match="WECHAT_APPID"):
        make_app(None, database_uri, WECHAT_APPID=None)


def test_init_app_twice_on_one_app_says_what_to_do(database_uri: str) -> None:
    app = make_app(None, database_uri)
    with pytest.raises(RuntimeError, match="already initialised"):
        app.extensions["test_wechat"].init_app(app)


def test_init_app_needs_flask_sqlalchemy_first() -> None:
    app = Flask(__name__)
    app.config.update(GOOD)
    with pytest.raises(RuntimeError, match=r"db\.init_app"):
        WeChat(app, user_model=User, account_model=WeChatAccount)


def test_init_app_needs_the_models() -> None:
    app = Flask(__name__)
    with pytest.raises(TypeError, match="user_model"):
        WeChat(app)


def test_settings_repr_hides_the_secret() -> None:
    assert GOOD["WECHAT_SECRET"] not in repr(settings_for())


def test_defaults_are_applied_to_the_app_config(database_uri: str) -> None:
    app = make_app(None, database_uri)
    for key, value in DEFAULTS.items():
        if key not in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_RETRIES"):
            assert app.config[key] == value
    assert app.extensions["wechat"].settings.retries == 1
    assert app.login_manager.login_view == "wechat.login"


def test_fake_mode_needs_no_credentials() -> None:
    settings = load_settings({**DEFAULTS, "WECHAT_FAKE": True})
    for app in (settings.official_account, settings.website, settings.miniprogram):
        assert app is not None and app.appid.startswith("wx") and app.secret
    assert settings.open_base_url == "/_fake_wechat"
    assert settings.api_base_url == "http://fake-wechat.invalid"
    pointed = load_settings({**DEFAULTS, "WECHAT_FAKE": True, "WECHAT_API_BASE_URL": "http://127.0.0.1:9"})
    assert pointed.api_base_url == "http://127.0.0.1:9"


def test_proxy_and_ca_bundle_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_wechat.client import session_options
    from flask_wechat.compliance import KeepAliveAdapter

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    options = session_options(settings_for(), KeepAliveAdapter(), None)
    assert options["trust_env"] is False
    assert options["proxies"]["https"] == "http://proxy.example:3128"
    assert options["verify"] == "/etc/company-ca.pem"
