"""Session hygiene: renewal on login, a clean logout, re-authorization, and a Redis-backed store."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from flask import Flask, session
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_wechat import ReauthorizationRequired
from flask_wechat.store import RedisStore
from flask_wechat.testing.fake import FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import WeChatAccount, db, make_app
from .conftest import login, logout


def test_login_renews_the_session(app: Flask, client: FlaskClient) -> None:
    with client.session_transaction() as sess:
        sess["planted"] = "by someone else"
    login(client)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"]


def test_session_renewal_can_be_turned_off(
    fake_wechat_server: FakeWeChatServer, database_uri: str, fake_wechat: FakeWeChat
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_RENEW_SESSION=False)
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["cart"] = [1, 2]
    login(client)
    with client.session_transaction() as sess:
        assert sess["cart"] == [1, 2]


def test_logout_leaves_nothing_of_the_extension(app: Flask, client: FlaskClient) -> None:
    login(client)
    client.get("/wechat/login?next=/elsewhere")  # logged in: no new pending login
    logout(client)
    with client.session_transaction() as sess:
        assert not [key for key in sess if key.startswith(("_wechat", "_user_id", "_fresh", "_id"))]


def test_dead_refresh_token_sends_the_user_through_wechat_again(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    login(client)
    assert client.get("/profile").status_code == 200
    fake_wechat.expire_access_tokens()
    fake_wechat.expire_refresh_tokens()
    with app.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        with pytest.raises(ReauthorizationRequired):
            app.extensions["test_wechat"].fetch_userinfo(account)
    again = client.get("/profile")
    assert again.status_code == 302 and "/connect/oauth2/authorize?" in again.location
    trip = login(client)
    assert trip.response.status_code == 302
    assert client.get("/profile").status_code == 200
    with app.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        assert not account.user.wechat_reauthorization_required and account.refresh_token


def test_redis_store_serves_the_flow(fake_wechat_server: FakeWeChatServer, database_uri: str) -> None:
    url = os.environ.get("FLASK_WECHAT_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("FLASK_WECHAT_TEST_REDIS_URL must be set in CI")
        pytest.skip("FLASK_WECHAT_TEST_REDIS_URL is not set")
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_STORE_URL=url)
    with app.app_context():
        assert isinstance(app.extensions["wechat"].runtime.store, RedisStore)
    client = app.test_client()
    trip = login(client)
    parts = urlsplit(trip.callback_url)
    assert client.get(f"{parts.path}?{parts.query}").location == "/profile"
    with app.app_context():
        assert not db.inspect(db.engine).has_table("wechat_store")


def test_session_is_not_touched_by_anonymous_public_pages(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    with client.application.test_request_context("/"):
        assert "_wechat_pending" not in session
