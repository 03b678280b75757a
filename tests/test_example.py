"""The demo app in examples/ is real code: log in through it, in fake mode and against a server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from examples.app import User, WeChatAccount, create_app, db
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_SECRET
from flask_wechat.testing.server import FakeWeChatServer

from .conftest import login


def example(tmp_path: Path, **config: object) -> Flask:
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", **config})


WECHAT_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 MicroMessenger/8.0.50(0x1800323c)"


def in_app_login(client: FlaskClient, user: str) -> str:
    """Log in through the fake WeChat mounted inside the demo app itself, as WeChat's browser."""
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    to_wechat = client.get("/profile")  # @login_required sends a stranger straight to WeChat
    authorize = urlsplit(to_wechat.location)
    assert authorize.path == "/_fake_wechat/connect/oauth2/authorize"
    page = client.get(f"{authorize.path}?{authorize.query}")
    assert page.status_code == 200 and 'name="action"' in page.get_data(as_text=True)
    fields = dict(parse_qsl(authorize.query))
    form = {k: fields[k] for k in ("appid", "redirect_uri", "scope", "state")}
    answer = client.post(authorize.path + "/confirm", data={**form, "user": user, "action": "allow"})
    callback = urlsplit(answer.location)
    done = client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 302 and done.location == "/profile"
    return client.get("/profile").get_data(as_text=True)


def test_demo_logs_in_against_its_built_in_fake(tmp_path: Path) -> None:
    app = example(tmp_path)
    fake = app.extensions["wechat_fake"]
    page = in_app_login(app.test_client(), "alice")
    assert fake.users["alice"].nickname in page
    assert fake.openid_for(DEMO_APPID, "alice") in page


def test_demo_keeps_one_user_per_wechat_user(tmp_path: Path) -> None:
    app = example(tmp_path)
    for _ in range(3):
        in_app_login(app.test_client(), "bob")
    in_app_login(app.test_client(), "alice")
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 2
        assert db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one() == 2


def test_demo_against_a_wechat_on_loopback(tmp_path: Path, fake_wechat_server: FakeWeChatServer) -> None:
    app = example(
        tmp_path,
        WECHAT_APPID=DEMO_APPID,
        WECHAT_SECRET=DEMO_SECRET,
        WECHAT_OPEN_BASE_URL=fake_wechat_server.url,
        WECHAT_API_BASE_URL=fake_wechat_server.url,
    )
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    trip = login(client, user="carol")
    assert trip.authorize_url.startswith(fake_wechat_server.url + "/connect/oauth2/authorize?")
    page = client.get("/profile").get_data(as_text=True)
    assert "琦娅🍭" in page
    assert client.get("/").status_code == 200
