"""Configuration: defaults in one place, and a clear error naming the bad key at init_app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_wechat import ConfigurationError, WeChat
from flask_wechat.config import BOOLEAN_KEYS, DEFAULTS, UnknownSettingWarning, load_settings
from flask_wechat.testing import accounts as demo
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_SECRET

from .apps import User, WeChatAccount, make_app

GOOD = {"WECHAT_APPID": "wx1234567890abcdef", "WECHAT_SECRET": "0123456789abcdef0123456789abcdef"}
#: Made up, but shaped like an AppSecret.
SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


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
    with app.app_context():
        assert app.extensions["wechat"].runtime.settings.retries == 1
    assert app.login_manager.login_view == "wechat.login"


@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize("value", ["false", "true", "0", 0, 1, None, "True"])
def test_boolean_keys_take_real_booleans_only(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=key):
        load_settings({**DEFAULTS, "WECHAT_APPID": DEMO_APPID, "WECHAT_SECRET": DEMO_SECRET, key: value})


def test_string_false_never_turns_the_fake_on_next_to_a_real_appid(tmp_path: Path) -> None:
    from examples.app import create_app

    # What FLASK_WECHAT_FAKE='"false"' gives through from_prefixed_env: a string.
    with pytest.raises(ConfigurationError, match="WECHAT_FAKE"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}",
                "WECHAT_APPID": "wx0123456789abcdef",
                "WECHAT_SECRET": SECRET,
                "WECHAT_FAKE": "false",
            }
        )


def test_the_fake_never_runs_next_to_real_credentials(tmp_path: Path) -> None:
    from examples.app import create_app

    with pytest.raises(ConfigurationError, match="WECHAT_APPID"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}",
                "WECHAT_APPID": "wx0123456789abcdef",
                "WECHAT_SECRET": SECRET,
                "WECHAT_FAKE": True,
            }
        )


def test_the_fake_serves_only_debug_testing_or_opted_in_apps() -> None:
    from flask import Flask

    from flask_wechat.testing import install

    with pytest.raises(ConfigurationError, match="debug or testing"):
        install(Flask("plain"))
    for app in (Flask("debug"), Flask("testing"), Flask("opted_in")):
        app.debug = app.name == "debug"
        app.testing = app.name == "testing"
        if app.name == "opted_in":
            app.config["WECHAT_FAKE"] = True
        fake = install(app)
        assert app.extensions["wechat_fake"] is fake and app.config["WECHAT_FAKE"] is True
        assert app.config["WECHAT_OPEN_BASE_URL"] == "/_fake_wechat"


def test_setting_wechat_fake_without_installing_the_fake_refuses_to_start(database_uri: str) -> None:
    with pytest.raises(ConfigurationError, match="install"):
        make_app(None, database_uri, WECHAT_FAKE=True)


def test_proxy_and_ca_bundle_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_wechat.client import session_options
    from flask_wechat.compliance import KeepAliveAdapter

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    options = session_options(settings_for(), KeepAliveAdapter(), {})
    assert options["trust_env"] is False
    assert options["proxies"]["https"] == "http://proxy.example:3128"
    assert options["verify"] == "/etc/company-ca.pem"


# -- AppIDs and AppSecrets look like WeChat's ---------------------------------------------------

CREDENTIAL_PREFIXES = ("WECHAT", "WECHAT_OPEN", "WECHAT_MINIPROGRAM")


@pytest.mark.parametrize("prefix", CREDENTIAL_PREFIXES)
@pytest.mark.parametrize(
    "appid",
    [
        "wx123",
        "WX0123456789ABCDEF",
        "0123456789abcdef01",
        "wx0123456789ABCDEF",
        "wx0123456789abcdeg",
        "wx0123456789abcdef0",
    ],
)
def test_malformed_appid_fails_at_init_app_naming_the_key(database_uri: str, prefix: str, appid: str) -> None:
    config = {f"{prefix}_APPID": appid, f"{prefix}_SECRET": SECRET}
    with pytest.raises(ConfigurationError, match=f"{prefix}_APPID") as caught:
        make_app(None, database_uri, **config)
    assert "16 lowercase hex" in str(caught.value)


@pytest.mark.parametrize("prefix", CREDENTIAL_PREFIXES)
@pytest.mark.parametrize(
    "secret",
    ["not-a-real-secret", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0", "g" * 32],
)
def test_malformed_secret_fails_naming_the_key_and_never_showing_it(prefix: str, secret: str) -> None:
    config = {"WECHAT_APPID": None, "WECHAT_SECRET": None}
    config.update({f"{prefix}_APPID": "wx0123456789abcdef", f"{prefix}_SECRET": secret})
    with pytest.raises(ConfigurationError, match=f"{prefix}_SECRET") as caught:
        settings_for(**config)
    assert secret not in str(caught.value)


def test_well_formed_credentials_of_all_three_apps_are_accepted() -> None:
    settings = settings_for(
        WECHAT_OPEN_APPID="wxabcdef0123456789",
        WECHAT_OPEN_SECRET=SECRET,
        WECHAT_MINIPROGRAM_APPID="wx00000000000000ff",
        WECHAT_MINIPROGRAM_SECRET=" " + SECRET + "\n",  # pasted with blanks: they are not part of it
    )
    assert settings.website is not None and settings.website.appid == "wxabcdef0123456789"
    assert settings.miniprogram is not None and settings.miniprogram.secret == SECRET


def test_the_fakes_demo_apps_are_shaped_like_real_ones() -> None:
    settings = settings_for(
        WECHAT_APPID=demo.DEMO_APPID,
        WECHAT_SECRET=demo.DEMO_SECRET,
        WECHAT_OPEN_APPID=demo.DEMO_OPEN_APPID,
        WECHAT_OPEN_SECRET=demo.DEMO_OPEN_SECRET,
        WECHAT_MINIPROGRAM_APPID=demo.DEMO_MINIPROGRAM_APPID,
        WECHAT_MINIPROGRAM_SECRET=demo.DEMO_MINIPROGRAM_SECRET,
    )
    assert settings.official_account and settings.website and settings.miniprogram


# -- unknown keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("WECHAT_APP_ID", "WECHAT_APPID"),
        ("WECHAT_APP_SECRET", "WECHAT_SECRET"),
        ("WECHAT_OPEN_APP_ID", "WECHAT_OPEN_APPID"),
        ("WECHAT_MINI_PROGRAM_APPID", "WECHAT_MINIPROGRAM_APPID"),
        ("WECHAT_STATE_LIFETIM", "WECHAT_STATE_LIFETIME"),
    ],
)
def test_a_misspelt_key_is_warned_about_with_a_suggestion(database_uri: str, key: str, suggestion: str) -> None:
    with pytest.warns(UnknownSettingWarning, match=f"{key} is not a flask-wechat setting; did you mean {suggestion}"):
        make_app(None, database_uri, **{key: "x"})


def test_an_unknown_key_without_a_near_one_is_warned_about_plainly(database_uri: str) -> None:
    with pytest.warns(UnknownSettingWarning) as caught:
        make_app(None, database_uri, WECHAT_PAY_MCHID="1230000109")
    [warning] = caught
    assert "WECHAT_PAY_MCHID is not a flask-wechat setting" in str(warning.message)
    assert "did you mean" not in str(warning.message)


def test_keys_of_other_extensions_are_not_warned_about(database_uri: str) -> None:
    # filterwarnings = error: any warning fails this test.
    make_app(None, database_uri, SQLALCHEMY_ECHO=False, WECHATPAY_KEY="x", MY_WECHAT_APPID="x")
