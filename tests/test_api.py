"""Calling WeChat later for a stored account: userinfo, validation, refresh, re-authorization."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_wechat import ReauthorizationRequired
from flask_wechat.models import utcnow
from flask_wechat.testing.fake import DEMO_APPID, FakeWeChat

from .apps import User, WeChatAccount, db
from .conftest import login


@pytest.fixture
def logged_in(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> FakeWeChat:
    login(client, user="alice")
    fake_wechat.requests.clear()
    return fake_wechat


def stored(app: Flask) -> WeChatAccount:
    return db.session.execute(select(WeChatAccount)).unique().scalar_one()


def test_fetch_userinfo_updates_the_stored_profile(app: Flask, logged_in: FakeWeChat) -> None:
    logged_in.users["alice"].nickname = "Alice 改名了 🌸"
    with app.app_context():
        account = stored(app)
        info = app.extensions["test_wechat"].fetch_userinfo(account)
        assert info.nickname == "Alice 改名了 🌸"
        db.session.expire_all()
        assert stored(app).nickname == "Alice 改名了 🌸"
    assert [r.path for r in logged_in.requests] == ["/sns/userinfo"]


def test_expired_token_is_refreshed_with_get_and_no_secret_then_persisted(app: Flask, logged_in: FakeWeChat) -> None:
    with app.app_context():
        account = stored(app)
        old_token = account.access_token
        refresh_token = account.refresh_token
        logged_in.expire_access_tokens()
        app.extensions["test_wechat"].fetch_userinfo(account)
        db.session.expire_all()
        fresh = stored(app)
        assert fresh.access_token != old_token
        assert fresh.refresh_token == refresh_token
        assert fresh.access_token_expires_at > utcnow() + timedelta(seconds=7000)
    userinfo_1, refresh, userinfo_2 = logged_in.requests
    assert userinfo_1.params["access_token"] == old_token
    assert refresh.method == "GET" and refresh.path == "/sns/oauth2/refresh_token"
    assert refresh.params == {"appid": DEMO_APPID, "grant_type": "refresh_token", "refresh_token": refresh_token}
    assert userinfo_2.params["access_token"] == fresh.access_token


def test_token_past_its_expiry_time_is_refreshed_before_the_call(app: Flask, logged_in: FakeWeChat) -> None:
    with app.app_context():
        account = stored(app)
        account.access_token_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        app.extensions["test_wechat"].fetch_userinfo(account)
    assert [r.path for r in logged_in.requests] == ["/sns/oauth2/refresh_token", "/sns/userinfo"]


def test_dead_refresh_token_asks_for_reauthorization_and_forgets_tokens(app: Flask, logged_in: FakeWeChat) -> None:
    logged_in.expire_access_tokens()
    logged_in.expire_refresh_tokens()
    with app.app_context():
        account = stored(app)
        with pytest.raises(ReauthorizationRequired):
            app.extensions["test_wechat"].fetch_userinfo(account)
        db.session.expire_all()
        account = stored(app)
        assert account.access_token is None and account.refresh_token is None
        with pytest.raises(ReauthorizationRequired):
            app.extensions["test_wechat"].fetch_userinfo(account)
    assert [r.path for r in logged_in.requests] == ["/sns/userinfo", "/sns/oauth2/refresh_token"]


def test_validate_is_true_for_a_live_token_and_false_otherwise(app: Flask, logged_in: FakeWeChat) -> None:
    wechat = app.extensions["test_wechat"]
    with app.app_context():
        account = stored(app)
        assert wechat.validate(account) is True
        logged_in.expire_access_tokens()
        assert wechat.validate(account) is False
        account.openid = "o" + "x" * 27
        assert wechat.validate(account) is False
        db.session.rollback()
    auth_calls = logged_in.calls("auth")
    assert len(auth_calls) == 3
    assert set(auth_calls[0].params) == {"access_token", "openid"}


def test_busy_wechat_is_retried_for_idempotent_calls(app: Flask, logged_in: FakeWeChat) -> None:
    logged_in.fail_next("userinfo", -1)
    with app.app_context():
        app.extensions["test_wechat"].fetch_userinfo(stored(app))
    assert len(logged_in.calls("userinfo")) == 2


def test_accounts_of_a_user(app: Flask, logged_in: FakeWeChat) -> None:
    wechat = app.extensions["test_wechat"]
    with app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        assert [a.openid for a in wechat.accounts(user)] == [logged_in.openid_for(DEMO_APPID, "alice")]
        assert wechat.account(user).openid == logged_in.openid_for(DEMO_APPID, "alice")
        account = wechat.account(user)
        assert account.access_token not in repr(account) and account.refresh_token not in repr(account)


def test_refresh_inside_an_own_authlib_call_is_persisted(app: Flask, logged_in: FakeWeChat) -> None:

    wechat = app.extensions["test_wechat"]
    with app.app_context():
        account = stored(app)
        old = account.access_token
        logged_in.expire_access_tokens()
        account.access_token_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        response = wechat.client.get(
            "sns/userinfo", token=app.extensions["wechat"].runtime.accounts().authlib_token(account)
        )
        assert response.status_code == 200
        db.session.expire_all()
        fresh = stored(app)
        assert fresh.access_token != old
    refresh, userinfo = logged_in.requests
    assert refresh.path == "/sns/oauth2/refresh_token"
    # Authlib placed the token in the query and the compliance hook added the openid.
    assert userinfo.params["access_token"] == fresh.access_token
    assert userinfo.params["openid"] == fresh.openid
