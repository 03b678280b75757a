"""Server APIs on the shared app token, against the fake WeChat over loopback: every errcode they can meet.

The app is wired as a site wires it (``WECHAT_*`` keys); ``WECHAT_CLOCK`` is the fake's clock,
so token lifetimes agree on both sides. Errcodes are those of the shared notes' summary
table (§9) for ``/cgi-bin/token``, ``/cgi-bin/stable_token``, ``getuserphonenumber``,
``/cgi-bin/user/info`` and ``/cgi-bin/ticket/getticket``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from flask_wechat import errors, serverapi
from flask_wechat.appapi import AppAPI
from flask_wechat.cli import wechat_cli
from flask_wechat.testing import DEMO_AGENTID, DEMO_CORPID, DEMO_WECOM_SECRET, FakeWeChat, FakeWeChatServer
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET

from . import fake_fixtures
from .apps import db, make_app
from .conftest import login

clock = fake_fixtures.clock
fake_wechat = fake_fixtures.fake_wechat

#: Where the app's pages are, as a browser has them (the test client's default host).
PAGE = "http://localhost/shop/item?id=7&from=timeline"


@pytest.fixture(params=["stable_token", "token"])
def token_endpoint(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(fake_wechat_server: FakeWeChatServer, database_uri: str, token_endpoint: str, clock: Any) -> Iterator[Flask]:
    app = make_app(
        fake_wechat_server.url,
        database_uri,
        WECHAT_MINIPROGRAM_APPID=DEMO_MINIPROGRAM_APPID,
        WECHAT_MINIPROGRAM_SECRET=DEMO_MINIPROGRAM_SECRET,
        WECHAT_APP_TOKEN_ENDPOINT=token_endpoint,
        WECHAT_CLOCK=clock,
        WECHAT_SCOPE="snsapi_base",
        WECHAT_FOLLOWER_UNIONID=True,
    )
    with app.app_context():
        yield app
        db.session.remove()


def api(app: Flask, name: str = "oa") -> AppAPI:
    return app.extensions["test_wechat"].app_api(name)


def token_calls(fake: FakeWeChat, token_endpoint: str) -> int:
    return len(fake.calls("stable_token" if token_endpoint == "stable_token" else "app_token"))


def openid(fake: FakeWeChat, user: str) -> str:
    return fake.openid_for(DEMO_APPID, user)


# -- the token ------------------------------------------------------------------------------------


def test_app_token_is_fetched_once_and_shared(app: Flask, fake_wechat: FakeWeChat, token_endpoint: str) -> None:
    wechat = app.extensions["test_wechat"]
    first = wechat.app_token("oa")
    assert first == wechat.app_token("oa")
    assert api(app).follower(openid(fake_wechat, "alice")).subscribed
    assert token_calls(fake_wechat, token_endpoint) == 1
    assert wechat.app_token("miniprogram") != first
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 1


def test_token_is_refreshed_ahead_of_expiry_and_no_call_uses_a_stale_one(
    app: Flask, fake_wechat: FakeWeChat, clock: Any, token_endpoint: str
) -> None:
    alice = openid(fake_wechat, "alice")
    for _ in range(4 * 60):  # four hours, a call a minute
        api(app).follower(alice)
        clock.advance(60)
    # 7200 s tokens refreshed 240 s early: a new token at 6960 s and at 13920 s, beside the first.
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 3
    assert fake_wechat.stale_token_calls == 0


def test_a_refused_token_is_replaced_once_and_the_call_sent_again(
    app: Flask, fake_wechat: FakeWeChat, token_endpoint: str
) -> None:
    alice = openid(fake_wechat, "alice")
    api(app).follower(alice)
    fake_wechat.revoke_app_tokens()
    assert api(app).follower(alice).subscribed
    assert token_calls(fake_wechat, token_endpoint) == 2
    assert len(fake_wechat.calls("user_info")) == 3


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
@pytest.mark.parametrize("endpoint", ["user_info", "phone_number", "jsapi_ticket"])
def test_token_errcodes_refresh_once_then_give_up(
    app: Flask, fake_wechat: FakeWeChat, endpoint: str, errcode: int, token_endpoint: str
) -> None:
    call = _calls(app, fake_wechat)[endpoint]
    fake_wechat.fail_next(endpoint, errcode)
    call()  # refused once, then the same call with a fresh token
    assert len(fake_wechat.calls(endpoint)) == 2
    fake_wechat.fail_next(endpoint, errcode, times=2)
    with pytest.raises(errors.AccessTokenError):
        call()
    # One retry, never a loop.
    assert len(fake_wechat.calls(endpoint)) == 4


def _calls(app: Flask, fake: FakeWeChat) -> dict[str, Any]:
    def phone() -> object:
        return api(app, "miniprogram").phone_number(fake.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice"))

    def ticket() -> object:
        return api(app).tickets.get(force_refresh=True)

    return {
        "user_info": lambda: api(app).follower(openid(fake, "alice")),
        "phone_number": phone,
        "jsapi_ticket": ticket,
    }


#: What each errcode at token time raises; each is raised after one call (-1: two), never retried in a loop.
TOKEN_TIME_ERRORS = [
    (40001, errors.InvalidAppSecretError),
    (40125, errors.InvalidAppSecretError),
    (40013, errors.InvalidAppIdError),
    (40002, errors.WeChatAPIError),
    (40164, errors.IPNotAllowedError),
    (61004, errors.IPNotAllowedError),
    (40243, errors.CredentialsError),
    (41002, errors.CredentialsError),
    (41004, errors.CredentialsError),
    (50004, errors.CredentialsError),
    (50007, errors.CredentialsError),
    (61024, errors.CredentialsError),
    (89501, errors.IPNotAllowedError),
    (89503, errors.IPNotAllowedError),
    (89506, errors.IPNotAllowedError),
    (89507, errors.IPNotAllowedError),
    (45009, errors.RateLimitedError),
    (45011, errors.RateLimitedError),
]


@pytest.mark.parametrize(("errcode", "kind"), TOKEN_TIME_ERRORS)
def test_token_time_errcodes_are_raised_at_once(
    app: Flask, fake_wechat: FakeWeChat, token_endpoint: str, errcode: int, kind: type[Exception]
) -> None:
    name = "stable_token" if token_endpoint == "stable_token" else "app_token"
    fake_wechat.fail_next(name, errcode, errmsg=f"errcode {errcode} from ip: 198.51.100.4, rid: 1-2-3", times=3)
    with pytest.raises(kind) as raised:
        app.extensions["test_wechat"].app_token("oa")
    assert len(fake_wechat.calls(name)) == 1
    assert type(raised.value) is kind
    if kind is errors.IPNotAllowedError:
        assert raised.value.ip == "198.51.100.4"  # type: ignore[attr-defined]


def test_busy_at_token_time_is_asked_once_more(app: Flask, fake_wechat: FakeWeChat, token_endpoint: str) -> None:
    name = "stable_token" if token_endpoint == "stable_token" else "app_token"
    fake_wechat.fail_next(name, -1)
    assert app.extensions["test_wechat"].app_token("oa")
    fake_wechat.fail_next(name, -1, times=2)
    with pytest.raises(errors.SystemBusyError):
        api(app).tokens.get(force_refresh=True)


def test_an_ip_off_the_whitelist_is_named_with_where_to_add_it(
    app: Flask, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    fake_wechat.refuse_ip("203.0.113.7")
    with pytest.raises(errors.IPNotAllowedError) as raised:
        app.extensions["test_wechat"].app_token("oa")
    assert raised.value.ip == "203.0.113.7"
    assert "203.0.113.7" in str(raised.value) and "IP白名单" in str(raised.value)
    fake_wechat.refuse_ip("203.0.113.8", errcode=61004)
    with pytest.raises(errors.IPNotAllowedError) as raised:
        app.extensions["test_wechat"].app_token("oa")
    assert raised.value.ip == "203.0.113.8" and raised.value.errcode == 61004
    fake_wechat.allow_ip()
    assert app.extensions["test_wechat"].app_token("oa")


def test_the_token_and_the_secret_never_reach_a_log_line(
    app: Flask, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = app.extensions["test_wechat"].app_token("oa")
    fake_wechat.revoke_app_tokens()
    api(app).follower(openid(fake_wechat, "alice"))
    fake_wechat.refuse_ip("203.0.113.7")
    api(app).tokens.invalidate(api(app).tokens.get())
    with pytest.raises(errors.IPNotAllowedError):
        api(app).follower(openid(fake_wechat, "alice"))
    text = caplog.text + " ".join(str(record.args) for record in caplog.records)
    assert token not in text
    assert app.config["WECHAT_SECRET"] not in text
    assert "refreshing it once" in caplog.text


# -- phone numbers, followers, tickets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [
        (-1, errors.SystemBusyError),
        (40029, errors.InvalidCodeError),
        (40163, errors.CodeUsedError),
        (45011, errors.RateLimitedError),
        (47001, errors.WeChatAPIError),
        (40013, errors.InvalidAppIdError),
    ],
)
def test_phone_number_errcodes(app: Flask, fake_wechat: FakeWeChat, errcode: int, kind: type[Exception]) -> None:
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    fake_wechat.fail_next("phone_number", errcode)
    with pytest.raises(kind):
        api(app, "miniprogram").phone_number(code)
    # A single-use code is never sent twice but for its token.
    assert len(fake_wechat.calls("phone_number")) == 1


def test_phone_number_as_wechat_gave_it(app: Flask, fake_wechat: FakeWeChat) -> None:
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    phone = api(app, "miniprogram").phone_number(code)
    assert phone.country_code == "86" and phone.phone_number == fake_wechat.users["alice"].phone_number
    assert phone.phone_number not in repr(phone)
    with pytest.raises(errors.InvalidCodeError):
        api(app, "miniprogram").phone_number(code)


def test_an_official_account_token_is_not_a_mini_programs(app: Flask, fake_wechat: FakeWeChat) -> None:
    oa = api(app)
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    with pytest.raises(errors.ScopeUnauthorizedError):
        oa.call("POST", serverapi.PHONE_NUMBER_PATH, body={"code": code})


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [
        (40003, errors.InvalidOpenIdError),
        (40013, errors.InvalidAppIdError),
        (45009, errors.RateLimitedError),
        (48001, errors.ScopeUnauthorizedError),
    ],
)
def test_user_info_errcodes(app: Flask, fake_wechat: FakeWeChat, errcode: int, kind: type[Exception]) -> None:
    fake_wechat.fail_next("user_info", errcode)
    with pytest.raises(kind):
        api(app).follower(openid(fake_wechat, "alice"))
    assert len(fake_wechat.calls("user_info")) == 1


def test_user_info_of_followers_and_others(app: Flask, fake_wechat: FakeWeChat) -> None:
    alice = api(app).follower(openid(fake_wechat, "alice"))
    assert alice.subscribed and alice.unionid == fake_wechat.users["alice"].unionid
    bob = api(app).follower(openid(fake_wechat, "bob"))
    assert not bob.subscribed and bob.unionid is None
    with pytest.raises(errors.InvalidOpenIdError):
        api(app).follower("o" + "x" * 27)


def test_ticket_errcodes(app: Flask, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail_next("jsapi_ticket", 45009)
    with pytest.raises(errors.RateLimitedError):
        api(app).jsapi_ticket()
    assert api(app).jsapi_ticket()
    assert fake_wechat.tickets_issued(DEMO_APPID) == 1


# -- follower unionid at login ---------------------------------------------------------------------


def test_a_followers_silent_login_lands_on_their_qr_users_id(
    app: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    client = app.test_client()
    login(client, user="alice")
    assert len(fake_wechat.calls("user_info")) == 1
    wechat = app.extensions["test_wechat"]
    account = wechat.runtime.accounts().find(DEMO_APPID, openid(fake_wechat, "alice"))
    assert account.unionid == fake_wechat.users["alice"].unionid
    assert account.user.wechat_unionid == fake_wechat.users["alice"].unionid
    # The empty nickname and avatar of user/info never land on the account.
    assert account.nickname == "" and account.avatar_url == ""
    # A returning follower's account knows the unionid: no second user/info call.
    client.post("/wechat/logout", data={"wechat_csrf": _csrf(client)})
    login(client, user="alice")
    assert len(fake_wechat.calls("user_info")) == 1


def test_a_non_follower_logs_in_as_before(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    trip = login(client, user="bob")
    assert trip.response.status_code == 302
    assert client.get("/profile").status_code == 200
    account = app.extensions["test_wechat"].runtime.accounts().find(DEMO_APPID, openid(fake_wechat, "bob"))
    assert account.unionid is None and account.user.wechat_unionid is None


def test_a_failing_user_info_does_not_stop_the_login(app: Flask, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail_next("user_info", 48001)
    client = app.test_client()
    login(client, user="alice")
    assert client.get("/profile").status_code == 200


def _csrf(client: FlaskClient) -> str:
    client.get("/wechat/logout")
    with client.session_transaction() as session:
        return str(session["_wechat_csrf"])


# -- JS-SDK ----------------------------------------------------------------------------------------


def test_jssdk_config_signs_the_url_with_the_ticket_wechat_issued(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    answer = client.get("/wechat/jssdk-config?url=" + quote(PAGE + "#section", safe=""))
    assert answer.status_code == 200
    config = answer.get_json()
    assert set(config) == {"appId", "timestamp", "nonceStr", "signature"}
    assert config["appId"] == DEMO_APPID
    assert fake_wechat.verify_jssdk(DEMO_APPID, config["timestamp"], config["nonceStr"], config["signature"], PAGE)
    assert answer.headers["Cache-Control"] == "no-store"
    # Warm: no WeChat call at all.
    calls = len(fake_wechat.requests)
    for _ in range(5):
        assert client.get("/wechat/jssdk-config?url=" + quote(PAGE, safe="")).status_code == 200
    assert len(fake_wechat.requests) == calls


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://evil.example/shop",
        "//localhost/shop",
        "javascript:alert(1)",
        "http://localhost.evil/x",
        "http://localhost/\nx",
        "ftp://localhost/x",
    ],
)
def test_jssdk_config_only_for_this_sites_pages(app: Flask, fake_wechat: FakeWeChat, url: str) -> None:
    answer = app.test_client().get("/wechat/jssdk-config", query_string={"url": url})
    assert answer.status_code == 400 and answer.get_json() == {"error": "invalid_url"}
    assert not fake_wechat.calls("jsapi_ticket")


def test_the_template_global_signs_the_page_as_the_browser_has_it(app: Flask, fake_wechat: FakeWeChat) -> None:
    @app.get("/shop/item")
    def item() -> str:
        return render_template_string("wx.config({{ wechat_jssdk_config(['chooseImage'], debug=True) }});")

    body = app.test_client().get("/shop/item?id=7&from=timeline").get_data(as_text=True)
    config = _config_in(body)
    assert config["jsApiList"] == ["chooseImage"] and config["debug"] is True
    assert fake_wechat.verify_jssdk(DEMO_APPID, config["timestamp"], config["nonceStr"], config["signature"], PAGE)


def test_the_template_global_keeps_a_mounted_prefix_and_the_raw_query(app: Flask, fake_wechat: FakeWeChat) -> None:
    @app.get("/shop/item")
    def item() -> str:
        return render_template_string("{{ wechat_jssdk_config() }}")

    client = app.test_client()
    body = client.get(
        "/shop/item?q=%E4%B8%AD&x=a+b", environ_overrides={"SCRIPT_NAME": "/mall", "REQUEST_URI": None, "RAW_URI": None}
    ).get_data(as_text=True)
    config = _config_in(body)
    url = "http://localhost/mall/shop/item?q=%E4%B8%AD&x=a+b"
    assert fake_wechat.verify_jssdk(DEMO_APPID, config["timestamp"], config["nonceStr"], config["signature"], url)


def _config_in(body: str) -> dict[str, Any]:
    import json

    start, end = body.index("{"), body.rindex("}") + 1
    data: dict[str, Any] = json.loads(body[start:end])
    return data


# -- the command line ------------------------------------------------------------------------------


def test_tokens_command_shows_age_and_expiry_never_the_value(app: Flask, fake_wechat: FakeWeChat, clock: Any) -> None:
    runner = app.test_cli_runner()
    before = runner.invoke(wechat_cli, ["tokens"])
    assert before.exit_code == 0, before.output
    assert before.output.count("not fetched") == 3  # oa token and ticket, mini program token
    token = app.extensions["test_wechat"].app_token("oa")
    clock.advance(125)
    after = runner.invoke(wechat_cli, ["tokens"]).output
    [row] = [line for line in after.splitlines() if line.startswith("oa") and "app token" in line]
    assert row.split()[-2:] == ["2m05s", "1h57m"]
    assert token not in after
    fetched = runner.invoke(wechat_cli, ["tokens", "--fetch"]).output
    assert "not fetched" not in fetched
    assert api(app).jsapi_ticket() not in fetched
    check = runner.invoke(wechat_cli, ["check"]).output
    assert "App token (oa)" in check and "IP whitelist" in check


def test_tokens_command_names_the_ip_to_whitelist(app: Flask, fake_wechat: FakeWeChat) -> None:
    fake_wechat.refuse_ip("203.0.113.9")
    result = app.test_cli_runner().invoke(wechat_cli, ["tokens", "--fetch"])
    assert result.exit_code == 1
    assert "203.0.113.9" in result.output


def test_the_installed_fake_ages_tokens_on_its_own_clock(tmp_path: Any) -> None:
    from examples.app import create_app
    from examples.app import wechat as demo_wechat

    demo = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}"})
    fake: FakeWeChat = demo.extensions["wechat_fake"]
    with demo.app_context():
        first = demo_wechat.app_token("oa")
        fake.advance(7200)
        assert demo_wechat.app_token("oa") != first
        demo_wechat.app_api("oa").follower(fake.openid_for(DEMO_APPID, "alice"))
    assert fake.stale_token_calls == 0
    assert fake.app_tokens_issued(DEMO_APPID) == 2


def test_the_wecom_secret_never_reaches_a_debug_log_line(
    fake_wechat_server: FakeWeChatServer, database_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs each request line at DEBUG: gettoken's ``corpsecret=`` is blanked like ``secret=``."""
    app = make_app(
        fake_wechat_server.url,
        database_uri,
        WECHAT_WECOM_CORPID=DEMO_CORPID,
        WECHAT_WECOM_AGENTID=DEMO_AGENTID,
        WECHAT_WECOM_SECRET=DEMO_WECOM_SECRET,
        WECHAT_WECOM_API_BASE_URL=fake_wechat_server.url,
    )
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        token = app.extensions["test_wechat"].app_token("wecom")
    lines = [record.getMessage() for record in caplog.records]
    assert any("/cgi-bin/gettoken" in line for line in lines), lines  # the line is logged, blanked
    assert not any(DEMO_WECOM_SECRET in line or token in line for line in lines)
