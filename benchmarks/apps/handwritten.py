"""The baseline: "log in with WeChat" written by hand with Flask, requests, Flask-Login and SQLAlchemy.

This is the seed's flow as an app author without a library writes it: every login calls
``/sns/oauth2/access_token`` and then (for ``snsapi_userinfo``) ``/sns/userinfo``, each with its own
``requests.get``, so each call opens a new connection to WeChat.

Config (``FLASK_``-prefixed environment variables): ``WECHAT_APPID``, ``WECHAT_SECRET``,
``WECHAT_SCOPE``, ``WECHAT_OPEN_BASE_URL``, ``WECHAT_API_BASE_URL``, ``SQLALCHEMY_DATABASE_URI``,
``SECRET_KEY``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, abort, current_app, redirect, request, session, url_for
from flask_login import login_user
from werkzeug.wrappers import Response

from .common import make_app, safe_next, save_login

__all__ = ["create_app"]


def _wechat_get(path: str, **params: str) -> dict[str, Any]:
    """One WeChat API call; WeChat answers HTTP 200 with an ``errcode`` on failure."""
    response = requests.get(current_app.config["WECHAT_API_BASE_URL"] + path, params=params, timeout=10)
    data: dict[str, Any] = json.loads(response.content.decode("utf-8"), strict=False)
    if data.get("errcode"):
        current_app.logger.warning("WeChat %s failed: errcode %s", path, data["errcode"])
        abort(502)
    return data


def create_app() -> Flask:
    """The hand-written app."""
    app = make_app(__name__)

    @app.get("/login")
    def login() -> Response:
        state = secrets.token_hex(16)
        session["wechat_state"] = state
        session["wechat_next"] = safe_next(request.args.get("next"))
        # WeChat wants exactly this parameter order and the #wechat_redirect fragment.
        query = urlencode(
            [
                ("appid", app.config["WECHAT_APPID"]),
                ("redirect_uri", url_for("callback", _external=True)),
                ("response_type", "code"),
                ("scope", app.config["WECHAT_SCOPE"]),
                ("state", state),
            ]
        )
        return redirect(f"{app.config['WECHAT_OPEN_BASE_URL']}/connect/oauth2/authorize?{query}#wechat_redirect")

    @app.get("/callback")
    def callback() -> Response:
        state = session.pop("wechat_state", None)
        if not state or request.args.get("state") != state:
            abort(400)
        code = request.args.get("code")
        if not code:
            abort(403)
        token = _wechat_get(
            "/sns/oauth2/access_token",
            appid=app.config["WECHAT_APPID"],
            secret=app.config["WECHAT_SECRET"],
            code=code,
            grant_type="authorization_code",
        )
        profile = None
        if "snsapi_userinfo" in token.get("scope", ""):
            profile = _wechat_get(
                "/sns/userinfo", access_token=token["access_token"], openid=token["openid"], lang="zh_CN"
            )
        user = save_login(app.config["WECHAT_APPID"], token, profile)
        login_user(user)
        return redirect(session.pop("wechat_next", "/"))

    return app
