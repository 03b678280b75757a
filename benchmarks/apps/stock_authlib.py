"""Stock Authlib: its Flask client with only the WeChat fixes a login needs to work.

The fixes, each through a seam Authlib documents (see /work/shared/authlib-notes.md §3-5):

* the authorize link: ``appid`` instead of ``client_id``, WeChat's fixed parameter order and
  ``#wechat_redirect`` (a session subclass overriding ``create_authorization_url``);
* the token call: GET (``access_token_params``) with ``appid``/``secret`` in the query (a client
  auth method);
* ``errcode`` bodies, which arrive as HTTP 200 (an ``access_token_response`` compliance hook);
* ``/sns/userinfo``: the token in the query (``token_placement="uri"``), ``openid`` passed along,
  the body decoded as UTF-8 whatever its ``text/plain`` header says.

Nothing else: Authlib builds a new ``requests`` session, so a new connection, for every call.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri, url_encode
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, abort, redirect, request, session, url_for
from flask_login import login_user
from werkzeug.wrappers import Response

from .common import make_app, safe_next, save_login

__all__ = ["create_app"]

oauth = OAuth()


class WeChatSession(OAuth2Session):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's session with WeChat's authorize link."""

    def create_authorization_url(
        self, url: str, state: str | None = None, code_verifier: str | None = None, **kwargs: Any
    ) -> tuple[str, str]:
        state = state or generate_token()
        query = url_encode(
            [
                ("appid", self.client_id),
                ("redirect_uri", self.redirect_uri),
                ("response_type", "code"),
                ("scope", self.scope),
                ("state", state),
            ]
        )
        return f"{url}?{query}#wechat_redirect", state


class WeChatRemoteApp(FlaskOAuth2App):  # type: ignore[misc]
    client_cls = WeChatSession


def _wechat_json(response: requests.Response) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.content.decode("utf-8"), strict=False)
    if data.get("errcode"):
        raise OAuthError(error=f"wechat_{data['errcode']}", description="WeChat API error")
    return data


def _appid_secret_in_query(auth: Any, method: str, uri: str, headers: Any, body: Any) -> tuple[str, Any, Any]:
    return add_params_to_uri(uri, [("appid", auth.client_id), ("secret", auth.client_secret)]), headers, body


def _raise_errcode(response: requests.Response) -> requests.Response:
    _wechat_json(response)
    return response


def _wechat_compliance_fix(session: OAuth2Session) -> None:
    session.register_compliance_hook("access_token_response", _raise_errcode)


def create_app() -> Flask:
    """The stock-Authlib app."""
    app = make_app(__name__)
    oauth.init_app(app)
    wechat = oauth.register(
        "wechat",
        client_cls=WeChatRemoteApp,
        client_id=app.config["WECHAT_APPID"],
        client_secret=app.config["WECHAT_SECRET"],
        authorize_url=app.config["WECHAT_OPEN_BASE_URL"] + "/connect/oauth2/authorize",
        access_token_url=app.config["WECHAT_API_BASE_URL"] + "/sns/oauth2/access_token",
        access_token_params={"method": "GET"},
        api_base_url=app.config["WECHAT_API_BASE_URL"] + "/",
        client_auth_methods=[("wechat_query", _appid_secret_in_query)],
        compliance_fix=_wechat_compliance_fix,
        client_kwargs={
            "scope": app.config["WECHAT_SCOPE"],
            "token_endpoint_auth_method": "wechat_query",
            "token_placement": "uri",
            "default_timeout": 10,
        },
    )

    @app.get("/login")
    def login() -> Response:
        session["wechat_next"] = safe_next(request.args.get("next"))
        response: Response = wechat.authorize_redirect(url_for("callback", _external=True))
        return response

    @app.get("/callback")
    def callback() -> Response:
        if not request.args.get("code"):
            abort(403)
        try:
            token = wechat.authorize_access_token()
            profile = None
            if "snsapi_userinfo" in token.get("scope", ""):
                params = {"openid": token["openid"], "lang": "zh_CN"}
                profile = _wechat_json(wechat.get("sns/userinfo", params=params, token=token))
        except OAuthError as exc:
            app.logger.warning("WeChat login failed: %s", exc.error)
            abort(400 if exc.error == "mismatching_state" else 502)
        user = save_login(app.config["WECHAT_APPID"], token, profile)
        login_user(user)
        return redirect(session.pop("wechat_next", "/"))

    return app
