"""Full logins over real loopback HTTP against the fake WeChat, on SQLite."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_wechat.testing.fake import DEMO_APPID, DEMO_SECRET, FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import User, WeChatAccount, db, make_app
from .conftest import login, logout, visit_wechat


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def accounts(app: Flask) -> list[WeChatAccount]:
    with app.app_context():
        return list(db.session.execute(select(WeChatAccount).order_by(WeChatAccount.id)).unique().scalars())


def test_login_required_goes_through_wechat_and_back(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer
) -> None:
    start = client.get("/profile")
    assert start.status_code == 302  # straight to WeChat, with no hop through the login view
    assert client.get("/wechat/login?next=/profile").location.split("state=")[0] == start.location.split("state=")[0]
    state = re.search(r"state=([A-Za-z0-9]+)&", start.location).group(1)
    assert re.fullmatch(r"[0-9a-f]{66,128}", state)
    assert start.location == (
        f"{fake_wechat_server.url}/connect/oauth2/authorize?appid={DEMO_APPID}"
        f"&redirect_uri={quote('http://localhost/wechat/callback', safe='')}"
        f"&response_type=code&scope=snsapi_userinfo&state={state}&connect_redirect=1#wechat_redirect"
    )
    answer = visit_wechat(start.location, "alice")
    callback = answer.headers["Location"]
    assert callback.startswith("http://localhost/wechat/callback?code=")
    done = client.get(callback.replace("http://localhost", ""))
    assert done.status_code == 302 and done.location == "/profile"
    page = client.get("/profile").get_data(as_text=True)
    openid = fake_wechat.openid_for(DEMO_APPID, "alice")
    assert f"openid={openid}" in page
    assert f"nickname={fake_wechat.users['alice'].nickname}" in page


def test_login_sends_exactly_the_documented_requests(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    trip = login(client)
    code = re.search(r"code=([A-Za-z0-9]+)", trip.callback_url).group(1)
    token_call, userinfo_call = fake_wechat.requests
    assert token_call.method == "GET"
    assert token_call.path == "/sns/oauth2/access_token"
    assert token_call.params == {
        "appid": DEMO_APPID,
        "secret": "[redacted]",  # checked by the fake on arrival, never kept in its log
        "code": code,
        "grant_type": "authorization_code",
    }
    assert userinfo_call.method == "GET" and userinfo_call.path == "/sns/userinfo"
    stored = accounts(app)[0]
    assert userinfo_call.params == {"access_token": stored.access_token, "openid": stored.openid, "lang": "zh_CN"}


def test_first_login_stores_user_account_and_tokens_byte_exact(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.users["carol"].nickname = "\x14琦娅🍭 TKA💤🙏™"
    login(client, user="carol")
    [account] = accounts(app)
    assert account.nickname.encode() == "\x14琦娅🍭 TKA💤🙏™".encode()
    assert account.appid == DEMO_APPID
    assert account.openid == fake_wechat.openid_for(DEMO_APPID, "carol")
    assert account.unionid == fake_wechat.users["carol"].unionid
    assert account.scope == "snsapi_userinfo"
    assert account.access_token and account.refresh_token
    assert account.access_token_expires_at.tzinfo is not None
    assert account.refresh_token_expires_at > account.access_token_expires_at
    assert count(app, User) == 1


def test_returning_user_is_the_same_user_with_a_fresh_profile(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_PROFILE_MAX_AGE=0)
    client = app.test_client()
    login(client, user="bob")
    logout(client)
    fake_wechat.users["bob"].nickname = "新名字🎉"
    login(client, user="bob")
    other = app.test_client()
    login(other, user="alice")
    rows = accounts(app)
    assert [a.nickname for a in rows] == ["新名字🎉", fake_wechat.users["alice"].nickname]
    assert count(app, User) == 2
    assert rows[0].user_id != rows[1].user_id


def test_base_scope_makes_one_call_and_stores_the_openid(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_SCOPE="snsapi_base")
    trip = login(app.test_client())
    assert "scope=snsapi_base" in trip.authorize_url
    assert [r.path for r in fake_wechat.requests] == ["/sns/oauth2/access_token"]
    [account] = accounts(app)
    assert account.openid == fake_wechat.openid_for(DEMO_APPID, "alice")
    assert account.nickname == "" and account.scope == "snsapi_base"


def test_user_creator_decides_how_an_identity_becomes_a_user(
    fake_wechat_server: FakeWeChatServer, database_uri: str, fake_wechat: FakeWeChat
) -> None:
    from flask_wechat import WeChat

    wechat = WeChat(user_model=User, account_model=WeChatAccount)
    seen = []

    @wechat.user_creator
    def create(identity):  # type: ignore[no-untyped-def]
        seen.append(identity)
        return User(display_name=identity.nickname)

    app = make_app(fake_wechat_server.url, database_uri, wechat=wechat)
    login(app.test_client(), user="bob")
    login(app.test_client(), user="bob")
    assert len(seen) == 1 and seen[0].openid == fake_wechat.openid_for(DEMO_APPID, "bob")
    with app.app_context():
        assert db.session.execute(select(User.display_name)).scalar_one() == fake_wechat.users["bob"].nickname


def test_logout_clears_the_login(app: Flask, client: FlaskClient) -> None:
    login(client)
    assert client.get("/profile").status_code == 200
    out = logout(client)
    assert out.status_code == 302 and out.location == "/"
    with client.session_transaction() as sess:
        assert not any(key.startswith(("_wechat", "_user_id")) for key in sess)
    assert client.get("/profile").status_code == 302


def test_login_view_when_logged_in_just_follows_next(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    login(client)
    calls = len(fake_wechat.requests)
    again = client.get("/wechat/login?next=/profile")
    assert again.status_code == 302 and again.location == "/profile"
    assert len(fake_wechat.requests) == calls


def test_login_reuses_one_keep_alive_connection(app: Flask, fake_wechat: FakeWeChat) -> None:
    for user in ("alice", "bob", "carol"):
        login(app.test_client(), user=user)
    # 3 logins = 6 API calls; the consent pages come from separate browser sessions.
    api_connections = fake_wechat.connections - 3 * 1
    assert len(fake_wechat.requests) == 6
    assert api_connections == 1


def test_two_apps_with_different_appids_live_in_one_process(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, tmp_path
) -> None:
    from flask_wechat.testing.fake import FakeApp

    other_appid, other_secret = "wx00112233445566ff", "0f0e0d0c0b0a09080706050403020100"
    fake_wechat.add_app(FakeApp(other_appid, other_secret, name="Second account"))
    first = make_app(fake_wechat_server.url, f"sqlite:///{tmp_path / 'a.db'}")
    second = make_app(
        fake_wechat_server.url, f"sqlite:///{tmp_path / 'b.db'}", WECHAT_APPID=other_appid, WECHAT_SECRET=other_secret
    )
    login(first.test_client())
    login(second.test_client())
    assert accounts(first)[0].appid == DEMO_APPID
    assert accounts(second)[0].appid == other_appid
    assert accounts(first)[0].openid != accounts(second)[0].openid


def test_json_content_type_variant_is_read_the_same(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    fake_wechat.content_type = "application/json; encoding=utf-8"
    login(client, user="bob")
    assert accounts(app)[0].nickname == fake_wechat.users["bob"].nickname


def test_userinfo_failure_after_token_still_logs_in(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail_next("userinfo", -1, times=5)
    trip = login(client)
    assert trip.response.status_code == 302
    assert client.get("/profile").status_code == 200
    assert len(fake_wechat.calls("userinfo")) == 2  # first try + WECHAT_RETRIES=1
    assert accounts(app)[0].nickname == ""


def test_full_login_logs_no_secret_code_or_token(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_wechat.fail_next("userinfo", -1)
    trip = login(client)
    fake_wechat.fail_next("access_token", 40125)
    failed = login(app.test_client(), user="bob")
    assert failed.response.status_code == 502
    account = accounts(app)[0]
    code = re.search(r"code=([A-Za-z0-9]+)", trip.callback_url).group(1)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "errcode 40125" in text
    for secret in (DEMO_SECRET, code, account.access_token, account.refresh_token):
        assert secret not in text


def test_returning_user_with_a_fresh_profile_costs_one_call(app: Flask, fake_wechat: FakeWeChat) -> None:
    login(app.test_client(), user="bob")
    original = fake_wechat.users["bob"].nickname
    fake_wechat.users["bob"].nickname = "changed"
    login(app.test_client(), user="bob")
    assert [r.path for r in fake_wechat.requests] == [
        "/sns/oauth2/access_token",
        "/sns/userinfo",
        "/sns/oauth2/access_token",
    ]
    [account] = accounts(app)
    assert account.nickname == original


def test_stale_profile_is_fetched_again(app: Flask, fake_wechat: FakeWeChat) -> None:
    from datetime import timedelta

    from flask_wechat.models import utcnow

    login(app.test_client(), user="bob")
    with app.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        account.profile_updated_at = utcnow() - timedelta(days=2)
        db.session.commit()
    fake_wechat.users["bob"].nickname = "changed"
    login(app.test_client(), user="bob")
    assert len(fake_wechat.calls("userinfo")) == 2
    assert accounts(app)[0].nickname == "changed"
