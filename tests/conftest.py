"""Shared fixtures: a real fake WeChat on loopback, an app on SQLite, and a login driver.

``fake_wechat`` and ``fake_wechat_server`` come from the package's own pytest plugin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_wechat.testing.server import FakeWeChatServer

from .apps import db, make_app


@pytest.fixture
def database_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def app(fake_wechat_server: FakeWeChatServer, database_uri: str) -> Iterator[Flask]:
    app = make_app(fake_wechat_server.url, database_uri)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class WeChatTrip:
    """What happened on the way through WeChat."""

    authorize_url: str
    callback_url: str
    response: TestResponse


def visit_wechat(authorize_url: str, user: str = "alice", action: str = "allow") -> requests.Response:
    """Be the browser on WeChat's side: load the consent page, then press a button."""
    with requests.Session() as browser:
        page = browser.get(authorize_url.split("#", 1)[0], timeout=5)
        assert page.status_code == 200
        assert 'name="action"' in page.text, page.text
        fields = dict(parse_qsl(urlsplit(authorize_url).query))
        form = {k: fields.get(k, "") for k in ("appid", "redirect_uri", "scope", "state")}
        base = authorize_url.split("?", 1)[0]
        return browser.post(
            base + "/confirm", data={**form, "user": user, "action": action}, allow_redirects=False, timeout=5
        )


def logout(client: FlaskClient, next_url: str = "/") -> TestResponse:
    """Log out as the logout page's button does: a POST with the session's CSRF token."""
    page = client.get("/wechat/logout").get_data(as_text=True)
    token = re.search(r'name="wechat_csrf" value="([^"]+)"', page)
    assert token is not None, page
    return client.post("/wechat/logout", data={"wechat_csrf": token.group(1), "next": next_url})


def login(client: FlaskClient, start: str = "/profile", user: str = "alice", action: str = "allow") -> WeChatTrip:
    """Drive a full login from ``start``: app -> WeChat consent page -> callback -> app."""
    first = client.get(start)
    if first.status_code == 302 and "/wechat/login" in first.location:
        first = client.get(first.location)
    assert first.status_code == 302, first.get_data(as_text=True)
    authorize_url = first.location
    answer = visit_wechat(authorize_url, user, action)
    assert answer.status_code == 302, answer.text
    callback_url = answer.headers["Location"]
    parts = urlsplit(callback_url)
    response = client.get(f"{parts.path}?{parts.query}")
    return WeChatTrip(authorize_url, callback_url, response)
