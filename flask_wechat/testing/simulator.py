"""The fake's mini program simulator: ``GET /_fake/miniprogram?login=URL[&phone=URL][&auth=cookie|token]``.

Nobody runs a real mini program against a local app, so this page plays one: it
logs a test user in through the app's login URL with a ``wx.login()`` code and
shares their phone number (a phone code, or legacy ``encryptedData``) with the
app's phone URL. The URLs are the app's: same-origin paths when the fake is
installed in the app (``/wechat/miniprogram/login``), absolute http(s) URLs when the
fake runs on its own port (the app must then allow the fake's origin, with credentials).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from . import pages
from .accounts import FakeApp
from .interfaces import Directory

__all__ = ["AUTH_MODES", "PAGE_PATH", "show"]

PAGE_PATH: Final = "/_fake/miniprogram"
#: ``cookie``: never send the bearer token; ``token``: send it when the login answer had one.
AUTH_MODES: Final = ("cookie", "token")
_HTML: Final = "text/html; charset=utf-8"


def _url_problem(name: str, url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    if not parts.scheme and not parts.netloc and url.startswith("/"):
        return None
    return f"{name} must be a path on this site (/wechat/miniprogram/login) or an absolute http(s) URL"


def _error(detail: str) -> Response:
    html = pages.error_page(None, "参数错误 / Bad parameters", detail)
    return Response(html, 400, content_type=_HTML)


def _app(fake: Directory, appid: str | None) -> FakeApp | str:
    programs = [app for app in fake.apps.values() if app.kind == "miniprogram"]
    if appid is None:
        return programs[0] if programs else "this fake has no mini program app"
    app = fake.apps.get(appid)
    if app is None or app.kind != "miniprogram":
        return f"appid {appid} is not a mini program of this fake"
    return app


def show(fake: Directory, request: Request) -> Response:
    """The simulator page, or an error page naming the parameter that is wrong."""
    if request.method not in ("GET", "HEAD"):
        return Response("use GET", 405, content_type="text/plain; charset=utf-8")
    login = request.args.get("login", "")
    phone = request.args.get("phone") or None
    auth = request.args.get("auth") or None
    if not login:
        return _error(f"open {PAGE_PATH}?login=<the app's mini program login URL>[&phone=<its phone URL>]")
    for name, url in (("login", login), ("phone", phone)):
        problem = None if url is None else _url_problem(name, url)
        if problem is not None:
            return _error(problem)
    if auth is not None and auth not in AUTH_MODES:
        return _error("auth must be cookie or token")
    app = _app(fake, request.args.get("appid"))
    if isinstance(app, str):
        return _error(app)
    users = [user for user in fake.users.values() if not user.snapshot]
    html = pages.miniprogram_page(app, users, control=request.script_root, login=login, phone=phone, auth=auth)
    return Response(html, 200, content_type=_HTML)
