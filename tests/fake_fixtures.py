"""Fixtures the fake WeChat's own tests share: the fake on a hand-driven clock, on loopback.

Not a plugin: registered globally, ``fake_wechat`` here would replace the package
plugin's for every test of the suite. A test module takes these by assigning them to
module attributes (pytest finds fixtures there). An import by name would not do: ruff
reads a test's ``clock`` parameter as a redefinition of the imported ``clock`` (F811).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from flask_wechat.testing import FakeWeChat, FakeWeChatServer


class Clock:
    """A hand-driven clock for code and token lifetimes."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake_wechat(clock: Clock) -> FakeWeChat:
    """The plugin's fixture, on a hand-driven clock."""
    return FakeWeChat(clock=clock)


@pytest.fixture
def base(fake_wechat_server: FakeWeChatServer) -> str:
    """The URL of the plugin's ``fake_wechat_server``, which serves the ``fake_wechat`` above."""
    return fake_wechat_server.url


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
