"""Avatars: WeChat's avatar hosts are stored as https, and the fake serves the images it hands out."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import TestResponse
from werkzeug.wrappers import Response

from examples.app import create_app
from flask_wechat import protocol
from flask_wechat.testing import DEMO_APPID, DEMO_SECRET, FakeWeChat, FakeWeChatServer
from flask_wechat.testing.accounts import SNAPSHOT_AVATAR
from flask_wechat.testing.avatars import avatar_svg

from .apps import WeChatAccount, db
from .conftest import login
from .test_example import WECHAT_UA


def stored_avatar(app: Flask) -> str:
    with app.app_context():
        account = db.session.execute(db.select(WeChatAccount)).scalar_one()
        return str(account.avatar_url)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("http://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"),
        ("http://wx.qlogo.cn/mmopen/abc/0", "https://wx.qlogo.cn/mmopen/abc/0"),
        ("HTTP://WX.QLOGO.CN/mmopen/abc/46", "https://WX.QLOGO.CN/mmopen/abc/46"),
        ("https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"),
        # Not WeChat's avatar hosts: kept as sent (the fake's own http pages, a look-alike host).
        ("http://127.0.0.1:8000/mmopen/vi_32/abc/132", "http://127.0.0.1:8000/mmopen/vi_32/abc/132"),
        ("http://qlogo.cn.example.com/a/132", "http://qlogo.cn.example.com/a/132"),
        ("", ""),
    ],
)
def test_wechat_avatar_hosts_are_stored_as_https(app: Flask, fake_wechat: FakeWeChat, sent: str, stored: str) -> None:
    fake_wechat.users["bob"].headimgurl = sent
    trip = login(app.test_client(), user="bob")
    assert trip.response.status_code == 302
    assert stored_avatar(app) == stored


# -- the fake serves the avatars it hands out -----------------------------------------------------


def userinfo(http: requests.Session, base: str, fake: FakeWeChat, user: str) -> dict[str, object]:
    code = fake.issue_code(DEMO_APPID, user)
    token = http.get(f"{base}{protocol.TOKEN_PATH}", params=protocol.token_query(DEMO_APPID, DEMO_SECRET, code)).json()
    query = protocol.userinfo_query(token["access_token"], token["openid"])
    data: dict[str, object] = protocol.decode_body(http.get(f"{base}{protocol.USERINFO_PATH}", params=query).content)
    return data


def assert_is_an_image(response: requests.Response | TestResponse, size: int = 132) -> None:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    # The fake drew it, in this process or on loopback: trusted input.
    svg = ElementTree.fromstring(response.data if isinstance(response, TestResponse) else response.content)  # noqa: S314
    assert (svg.get("width"), svg.get("height")) == (str(size), str(size))


def test_the_fake_server_serves_its_users_avatars(fake_wechat_server: FakeWeChatServer) -> None:
    fake = fake_wechat_server.fake
    with requests.Session() as http:
        alice = userinfo(http, fake_wechat_server.url, fake, "alice")["headimgurl"]
        bob = userinfo(http, fake_wechat_server.url, fake, "bob")["headimgurl"]
        assert isinstance(alice, str) and isinstance(bob, str)
        assert alice == fake_wechat_server.url + fake.users["alice"].headimgurl
        assert re.fullmatch(re.escape(fake_wechat_server.url) + r"/mmopen/vi_32/[\w-]{86}/132", alice)
        assert_is_an_image(http.get(alice))
        assert http.get(alice).content != http.get(bob).content  # drawn from each user's own key
        assert http.get(alice).content == http.get(alice).content
        assert_is_an_image(http.get(alice[: -len("132")] + "0"), 640)  # WeChat's size segment
        assert_is_an_image(http.get(fake_wechat_server.url + SNAPSHOT_AVATAR))
        assert http.get(fake_wechat_server.url + "/mmopen/").status_code == 404
        assert http.post(alice).status_code == 405


def test_a_user_without_an_avatar_or_with_a_url_keeps_it(fake_wechat_server: FakeWeChatServer) -> None:
    fake = fake_wechat_server.fake
    fake.users["bob"].headimgurl = "https://thirdwx.qlogo.cn/mmopen/vi_32/x/132"
    with requests.Session() as http:
        assert userinfo(http, fake_wechat_server.url, fake, "carol")["headimgurl"] == ""
        assert userinfo(http, fake_wechat_server.url, fake, "bob")["headimgurl"] == fake.users["bob"].headimgurl


def test_public_url_says_where_browsers_reach_the_fake(fake_wechat_server: FakeWeChatServer) -> None:
    fake = fake_wechat_server.fake
    fake.public_url = "http://open.weixin.test:8000/"
    with requests.Session() as http:
        avatar = userinfo(http, fake_wechat_server.url, fake, "alice")["headimgurl"]
    assert avatar == "http://open.weixin.test:8000" + fake.users["alice"].headimgurl


def test_avatar_images_carry_no_script_and_no_user_text() -> None:
    svg = avatar_svg("vi_32/<script>alert(1)</script>")
    assert "<script" not in svg and "alert" not in svg


def in_app_login(client: FlaskClient, prefix: str = "") -> str:
    """Log in as bob through the fake mounted in the demo app; return the profile page."""
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    authorize = urlsplit(client.get(f"{prefix}/profile").location)
    assert authorize.path == f"{prefix}/_fake_wechat{protocol.OA_AUTHORIZE_PATH}"
    form = {
        key: value for key, value in parse_qsl(authorize.query) if key in ("appid", "redirect_uri", "scope", "state")
    }
    answer = client.post(f"{authorize.path}/confirm", data={**form, "user": "bob", "action": "allow"})
    callback = urlsplit(answer.location)
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    return client.get(f"{prefix}/profile").get_data(as_text=True)


@pytest.mark.parametrize("prefix", ["", "/shop"])
def test_the_in_app_fake_serves_avatars_under_the_apps_prefix(tmp_path: Path, prefix: str) -> None:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}"})
    if prefix:
        app.wsgi_app = DispatcherMiddleware(Response("not here", 404), {prefix: app.wsgi_app})  # type: ignore[method-assign]
    client = app.test_client()
    page = in_app_login(client, prefix)
    avatar = re.search(r'<img[^>]* src="([^"]+)"', page)
    assert avatar is not None, page
    fake = app.extensions["wechat_fake"]
    assert avatar.group(1) == f"http://localhost{prefix}/_fake_wechat" + fake.users["bob"].headimgurl
    assert_is_an_image(client.get(urlsplit(avatar.group(1)).path))
