"""pytest fixtures for testing code against the fake WeChat (registered as a ``pytest11`` plugin).

Installing flask-wechat makes them available in every test suite of the environment:

* ``fake_wechat``: a fresh :class:`~flask_wechat.testing.FakeWeChat` (script users, mint
  codes, inject errcodes on it);
* ``fake_wechat_server``: that fake on a loopback port, for apps that call it over HTTP;
* ``wechat_login``: ``wechat_login(client, "bob")`` logs a Flask test client in as a fake
  user in one call, with no WeChat round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from .fake import FakeWeChat
from .server import FakeWeChatServer

if TYPE_CHECKING:
    from flask.testing import FlaskClient

__all__ = ["WeChatLogin", "fake_wechat", "fake_wechat_server", "wechat_login"]


class WeChatLogin(Protocol):
    """The callable the ``wechat_login`` fixture returns."""

    def __call__(
        self, client: FlaskClient, user_key: str = "alice", *, fake: FakeWeChat | None = None, flow: str | None = None
    ) -> Any: ...


@pytest.fixture
def fake_wechat() -> FakeWeChat:
    """A fresh fake WeChat with the demo app and the default test users."""
    return FakeWeChat()


@pytest.fixture
def fake_wechat_server(fake_wechat: FakeWeChat) -> Iterator[FakeWeChatServer]:
    """``fake_wechat`` served on a loopback port for the duration of the test."""
    with FakeWeChatServer(fake_wechat) as server:
        yield server


@pytest.fixture
def wechat_login(fake_wechat: FakeWeChat) -> WeChatLogin:
    """Log a test client in as a fake WeChat user: ``account = wechat_login(client, "bob")``.

    ``flow="qr"`` logs in through the website app instead of the Official Account.

    The users come from ``fake`` if given, else from the app's in-app fake
    (:func:`flask_wechat.testing.install`), else from this test's ``fake_wechat`` (so edits to its users show).
    """
    # Imported here: the plugin loads in every pytest run, and this pulls in Flask.
    from .login import login_as

    def login(
        client: FlaskClient, user_key: str = "alice", *, fake: FakeWeChat | None = None, flow: str | None = None
    ) -> Any:
        if fake is None:
            in_app = client.application.extensions.get("wechat_fake")
            fake = in_app if in_app is not None else fake_wechat
        return login_as(client, user_key, fake=fake, flow=flow)

    return login
