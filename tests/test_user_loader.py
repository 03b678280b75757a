"""An app's own Flask-Login loaders keep what the extension promises, whichever is registered first.

A user whose refresh token died (``wechat_reauthorization_required``) counts as logged out, and
a mini program's bearer token still logs its user in (and is revoked by logout), when the app
loads users with its own ``user_loader`` and ``request_loader``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, request
from flask_login import LoginManager, current_user, login_required

from flask_wechat import WeChat
from flask_wechat.testing.fake import (
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_SECRET,
    FakeWeChat,
)
from flask_wechat.testing.login import login_as
from flask_wechat.testing.server import FakeWeChatServer

from .apps import User, WeChatAccount, db

ORDERS = ["loaders_before_init_app", "loaders_after_init_app"]


class OwnLoaders:
    """The app's own loaders: the user by primary key, and an API key header of its own."""

    def __init__(self) -> None:
        self.user_calls: list[str] = []
        self.request_calls = 0

    def load_user(self, user_id: str) -> Any:
        self.user_calls.append(user_id)
        return db.session.get(User, int(user_id))

    def load_request(self, incoming: Any) -> Any:
        self.request_calls += 1
        if incoming.headers.get("X-Api-Key") == "key-of-user-1":
            return db.session.get(User, 1)
        return None


@pytest.fixture
def build(
    fake_wechat_server: FakeWeChatServer, database_uri: str
) -> Iterator[Callable[[str], tuple[Flask, OwnLoaders]]]:
    made: list[Flask] = []

    def make(order: str) -> tuple[Flask, OwnLoaders]:
        app = Flask(__name__)
        app.config.update(
            SECRET_KEY="test-secret-key",
            SQLALCHEMY_DATABASE_URI=database_uri,
            WECHAT_APPID=DEMO_APPID,
            WECHAT_SECRET=DEMO_SECRET,
            WECHAT_MINIPROGRAM_APPID=DEMO_MINIPROGRAM_APPID,
            WECHAT_MINIPROGRAM_SECRET=DEMO_MINIPROGRAM_SECRET,
            WECHAT_MINIPROGRAM_AUTH="token",
            WECHAT_OPEN_BASE_URL=fake_wechat_server.url,
            WECHAT_API_BASE_URL=fake_wechat_server.url,
        )
        db.init_app(app)
        manager = LoginManager(app)
        manager.login_view = "sign_in"
        loaders = OwnLoaders()
        wechat = WeChat(user_model=User, account_model=WeChatAccount)
        if order == "loaders_before_init_app":
            manager.user_loader(loaders.load_user)
            manager.request_loader(loaders.load_request)
            wechat.init_app(app)
        else:
            wechat.init_app(app)
            manager.user_loader(loaders.load_user)
            manager.request_loader(loaders.load_request)
        with app.app_context():
            db.create_all()

        @app.get("/sign-in")
        def sign_in() -> str:
            return "password form"

        @app.get("/me")
        @login_required
        def me() -> str:
            return f"user={current_user.id} via={request.headers.get('Authorization', 'session')[:6]}"

        made.append(app)
        return app, loaders

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def require_reauthorization(app: Flask, user_id: int) -> None:
    with app.app_context():
        db.session.get(User, user_id).wechat_reauthorization_required = True
        db.session.commit()


@pytest.mark.parametrize("order", ORDERS)
def test_the_apps_own_user_loader_loads_and_a_dead_refresh_token_logs_out(
    build: Callable[[str], tuple[Flask, OwnLoaders]], order: str
) -> None:
    app, loaders = build(order)
    client = app.test_client()
    account = login_as(client, "alice")
    assert client.get("/me").get_data(as_text=True) == f"user={account.user_id} via=sessio"
    assert loaders.user_calls == [str(account.user_id)]
    require_reauthorization(app, account.user_id)
    answer = client.get("/me")
    assert answer.status_code == 302 and answer.location.startswith("/sign-in")
    assert loaders.user_calls == [str(account.user_id)] * 2  # the app's loader ran; its user was refused


@pytest.mark.parametrize("order", ORDERS)
def test_bearer_tokens_work_next_to_the_apps_own_request_loader(
    build: Callable[[str], tuple[Flask, OwnLoaders]], fake_wechat: FakeWeChat, order: str
) -> None:
    app, loaders = build(order)
    answer = app.test_client().post(
        "/wechat/miniprogram/login", json={"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "carol")}
    )
    token = answer.get_json()["token"]
    client = app.test_client()  # no session: only the headers say who is calling
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert loaders.request_calls == 0  # a valid bearer token is the extension's
    # The app's own request loader still answers what is not a bearer token of the extension's.
    assert client.get("/me", headers={"X-Api-Key": "key-of-user-1"}).get_data(as_text=True).startswith("user=1")
    assert client.get("/me", headers={"Authorization": f"Bearer {token}x"}).status_code == 302
    assert loaders.request_calls == 2
    # Logout still revokes the bearer tokens.
    assert client.post("/wechat/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 302


@pytest.mark.parametrize("order", ORDERS)
def test_a_bearer_user_due_for_reauthorization_is_refused(
    build: Callable[[str], tuple[Flask, OwnLoaders]], fake_wechat: FakeWeChat, order: str
) -> None:
    app, _ = build(order)
    answer = app.test_client().post(
        "/wechat/miniprogram/login", json={"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "carol")}
    )
    token, user_id = answer.get_json()["token"], answer.get_json()["user_id"]
    require_reauthorization(app, user_id)
    assert app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 302
