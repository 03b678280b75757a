"""Serve the fake WeChat inside a Flask app: ``install(app)``, before ``wechat.init_app(app)``.

The fake lets anyone log in as anyone, so it is never switched on by accident: it
refuses an app that has WeChat credentials of its own, and an app that is neither in
debug nor testing mode unless that app set ``WECHAT_FAKE = True`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from flask import has_request_context, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ..errors import ConfigurationError
from .accounts import (
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
)
from .adapter import WSGIAdapter
from .fake import PUBLIC_URL_KEY, FakeWeChat
from .wecom import DEMO_AGENTID, DEMO_CORPID, DEMO_WECOM_SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

__all__ = ["DEFAULT_PATH", "IN_APP_API_BASE_URL", "install"]

#: Where the fake's pages are mounted in the app (the browser is sent there).
DEFAULT_PATH: Final = "/_fake_wechat"
#: The server's API calls go here and are answered in-process; the host never resolves.
IN_APP_API_BASE_URL: Final = "http://fake-wechat.invalid"
#: The extension key the fake is left under (``flask_wechat.ext`` checks for it).
EXTENSION_KEY: Final = "wechat_fake"
_CREDENTIAL_KEYS: Final = (
    *(f"{prefix}_{part}" for prefix in ("WECHAT", "WECHAT_OPEN", "WECHAT_MINIPROGRAM") for part in ("APPID", "SECRET")),
    "WECHAT_WECOM_CORPID",
    "WECHAT_WECOM_SECRET",
)


def install(app: Flask, *, path: str = DEFAULT_PATH, fake: FakeWeChat | None = None) -> FakeWeChat:
    """Mount ``fake`` (a new :class:`FakeWeChat` by default) at ``path`` and point the extension at it.

    Fills in the fake's three demo apps and its demo WeCom corp, sets ``WECHAT_FAKE`` and measures app token lifetimes
    on the fake's clock (``WECHAT_CLOCK``). Call it before
    ``wechat.init_app(app)``; the fake is then ``app.extensions["wechat_fake"]``.
    """
    if "wechat" in app.extensions:
        raise RuntimeError("call flask_wechat.testing.install(app) before wechat.init_app(app)")
    configured = [key for key in _CREDENTIAL_KEYS if app.config.get(key)]
    if configured:
        raise ConfigurationError(
            f"the fake WeChat never runs next to real credentials: unset {', '.join(configured)} or do not install it"
        )
    opted_in = app.config.get("WECHAT_FAKE")
    if opted_in not in (None, True, False):
        raise ConfigurationError(f"WECHAT_FAKE must be True or False, got {opted_in!r}")
    if not (app.debug or app.testing or opted_in is True):
        raise ConfigurationError(
            "the fake WeChat lets anyone log in as anyone: it serves apps in debug or testing mode only, "
            "unless the app sets WECHAT_FAKE = True itself"
        )
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"path must start with a single '/', got {path!r}")
    fake = fake or FakeWeChat()
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {path.rstrip("/"): fake})  # type: ignore[method-assign]
    app.config.update(
        WECHAT_FAKE=True,
        WECHAT_APPID=DEMO_APPID,
        WECHAT_SECRET=DEMO_SECRET,
        WECHAT_OPEN_APPID=DEMO_OPEN_APPID,
        WECHAT_OPEN_SECRET=DEMO_OPEN_SECRET,
        WECHAT_MINIPROGRAM_APPID=DEMO_MINIPROGRAM_APPID,
        WECHAT_MINIPROGRAM_SECRET=DEMO_MINIPROGRAM_SECRET,
        WECHAT_WECOM_CORPID=DEMO_CORPID,
        WECHAT_WECOM_AGENTID=DEMO_AGENTID,
        WECHAT_WECOM_SECRET=DEMO_WECOM_SECRET,
        WECHAT_OPEN_BASE_URL=path.rstrip("/"),
        WECHAT_WECOM_LOGIN_BASE_URL=path.rstrip("/"),
        WECHAT_WECOM_API_BASE_URL=IN_APP_API_BASE_URL,
        WECHAT_API_BASE_URL=IN_APP_API_BASE_URL,
        WECHAT_HTTP_ADAPTERS={IN_APP_API_BASE_URL: WSGIAdapter(_seen_from_browsers(fake, path.rstrip("/")))},
        # App tokens and tickets age on the fake's clock, which tests can move (fake.advance).
        WECHAT_CLOCK=fake.now,
    )
    app.extensions[EXTENSION_KEY] = fake
    return fake


def _seen_from_browsers(fake: FakeWeChat, path: str) -> WSGIApplication:
    """``fake`` for the app's own API calls, told where browsers reach it: this app's origin, prefix and ``path``.

    The calls are made while the app answers a browser, so the avatar URLs the fake
    hands out (``headimgurl``) load in that browser, under any ``SCRIPT_NAME`` prefix.
    """

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        origin = request.host_url.rstrip("/") + request.script_root if has_request_context() else ""
        return fake({**environ, PUBLIC_URL_KEY: origin + path}, start_response)

    return app
