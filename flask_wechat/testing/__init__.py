"""The fake WeChat that ships with flask-wechat: for the demo, the test suite and your own tests.

``FakeWeChat`` is a WSGI app imitating open.weixin.qq.com and api.weixin.qq.com, and
WeCom's pages and qyapi.weixin.qq.com (its corps: ``FakeCorp``, ``FakeAgent``,
``FakeMember``, ``FakeNonMember``);
``FakeWeChatServer`` serves it on a loopback port; ``install(app)`` serves it inside a
Flask app, before ``wechat.init_app(app)``. The requests adapter lives in
:mod:`flask_wechat.testing.adapter` and the pytest fixtures in
:mod:`flask_wechat.testing.pytest_plugin`, so importing this package needs neither
requests nor pytest (nor Flask).
"""

from __future__ import annotations

from typing import Any

from .fake import (
    DEFAULT_CORPS,
    DEFAULT_USERS,
    DEMO_AGENTID,
    DEMO_APPID,
    DEMO_CORPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
    DEMO_WECOM_SECRET,
    ENDPOINT_PATHS,
    WECOM_DESKTOP_USER_AGENT,
    WECOM_USER_AGENT,
    FakeAgent,
    FakeApp,
    FakeCorp,
    FakeMember,
    FakeNonMember,
    FakeUser,
    FakeWeChat,
    RecordedRequest,
)
from .server import FakeWeChatServer, serve_forever

__all__ = [
    "DEFAULT_CORPS",
    "DEFAULT_USERS",
    "DEMO_AGENTID",
    "DEMO_APPID",
    "DEMO_CORPID",
    "DEMO_MINIPROGRAM_APPID",
    "DEMO_MINIPROGRAM_SECRET",
    "DEMO_OPEN_APPID",
    "DEMO_OPEN_SECRET",
    "DEMO_SECRET",
    "DEMO_WECOM_SECRET",
    "ENDPOINT_PATHS",
    "WECOM_DESKTOP_USER_AGENT",
    "WECOM_USER_AGENT",
    "FakeAgent",
    "FakeApp",
    "FakeCorp",
    "FakeMember",
    "FakeNonMember",
    "FakeUser",
    "FakeWeChat",
    "FakeWeChatServer",
    "RecordedRequest",
    "install",
    "serve_forever",
]


def __getattr__(name: str) -> Any:
    # install() needs requests (the in-process adapter); import it only when asked for.
    if name == "install":
        from .inapp import install

        return install
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
