"""pytest fixtures for testing code against the fake WeChat (registered as a ``pytest11`` plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake import FakeWeChat
from .server import FakeWeChatServer

__all__ = ["fake_wechat", "fake_wechat_server"]


@pytest.fixture
def fake_wechat() -> FakeWeChat:
    """A fresh fake WeChat with the demo app and the default test users."""
    return FakeWeChat()


@pytest.fixture
def fake_wechat_server(fake_wechat: FakeWeChat) -> Iterator[FakeWeChatServer]:
    """``fake_wechat`` served on a loopback port for the duration of the test."""
    with FakeWeChatServer(fake_wechat) as server:
        yield server
