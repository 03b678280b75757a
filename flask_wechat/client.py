"""The Authlib Flask remote app for WeChat.

:class:`WeChatApp` is registered through an Authlib Flask ``OAuth`` registry
(one private registry per Flask app, so an app's own Authlib registry is left
alone). It adds what WeChat's web auth needs on top of ``FlaskOAuth2App``: the
code exchange, and typed userinfo and token validation with refresh handled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from flask import redirect
from requests.utils import get_environ_proxies
from werkzeug.wrappers import Response

from . import protocol
from .compliance import KeepAliveAdapter, RetryPolicy, WeChatOAuth2Session
from .config import Credentials, Settings
from .errors import AccessTokenError, InvalidOpenIdError

__all__ = [
    "MiniProgramClient",
    "WeChatApp",
    "WeChatOAuth",
    "WebFlow",
    "register_app",
    "token_from_authlib",
    "web_flows",
]

T = TypeVar("T")


class WeChatOAuth(OAuth):  # type: ignore[misc]  # Authlib is untyped
    """A private Authlib registry for one Flask app's WeChat apps."""

    oauth2_client_cls = None  # every registration names its class

    def init_app(self, app: Any, cache: Any = None, fetch_token: Any = None, update_token: Any = None) -> None:
        # Deliberately not super(): that would take over app.extensions[authlib's key]
        # and shadow the app's own Authlib registry, if it has one.
        self.app = app
        if cache is not None:
            self.cache = cache


class WeChatApp(FlaskOAuth2App):  # type: ignore[misc]  # Authlib is untyped
    """A WeChat web-auth remote app: ordered authorize link, GET token calls, typed results."""

    client_cls = WeChatOAuth2Session

    def __init__(self, framework: Any, name: str | None = None, *, lang: str = "zh_CN", **kwargs: Any) -> None:
        super().__init__(framework, name, **kwargs)
        self.lang = lang

    def authorize_redirect(self, redirect_uri: str | None = None, **kwargs: Any) -> Response:
        """Send the browser to WeChat's authorize page with the ``state`` the login flow minted."""
        return redirect(self.create_authorization_url(redirect_uri, **kwargs)["url"])

    def exchange_code(self, code: str) -> protocol.Token:
        """Exchange the callback's code for the user's token (once: codes are single-use)."""
        token = self.fetch_access_token(code=code)
        self.token = token
        return token_from_authlib(token)

    def _call(self, token: dict[str, Any], action: Callable[[WeChatOAuth2Session], T]) -> tuple[T, OAuth2Token]:
        """Run ``action`` on a session holding ``token``; refresh once if WeChat rejects it."""
        with self._get_oauth_client(**self.load_server_metadata()) as client:
            client.token = token
            try:
                result = action(client)
            except AccessTokenError:
                if not client.token.get("refresh_token"):
                    raise
                client.refresh_token()
                result = action(client)
            return result, client.token

    def fetch_userinfo(self, token: dict[str, Any], lang: str | None = None) -> tuple[protocol.UserInfo, OAuth2Token]:
        """The user's profile (``snsapi_userinfo`` tokens only) and the token used, maybe refreshed."""

        def userinfo(client: WeChatOAuth2Session) -> protocol.UserInfo:
            client.ensure_active_token(client.token)
            query = protocol.userinfo_query(client.token["access_token"], client.token["openid"], lang or self.lang)
            url = self.api_base_url + protocol.USERINFO_PATH
            data = client.retry.run(
                lambda: client.get_json(url, query, endpoint=protocol.USERINFO_PATH, withhold_token=True),
                protocol.USERINFO_PATH,
            )
            # The profile is the token's user; tolerate a stand-in that leaves openid out.
            data.setdefault("openid", client.token["openid"])
            return protocol.UserInfo.from_response(data)

        return self._call(token, userinfo)

    def validate_token(self, token: dict[str, Any]) -> bool:
        """Whether WeChat still accepts the access token (``/sns/auth``); invalid is ``False``."""
        query = protocol.auth_query(token["access_token"], token["openid"])
        url = self.api_base_url + protocol.AUTH_PATH
        with self._get_oauth_client(**self.load_server_metadata()) as client:
            try:
                client.retry.run(
                    lambda: client.get_json(url, query, endpoint=protocol.AUTH_PATH, withhold_token=True),
                    protocol.AUTH_PATH,
                )
            except (AccessTokenError, InvalidOpenIdError):
                return False
        return True

    def _on_update_token(self, token: Any, refresh_token: Any = None, access_token: Any = None) -> None:
        super()._on_update_token(token, refresh_token=refresh_token, access_token=access_token)
        # Authlib keeps the old token in flask.g; a second call would refresh again.
        self.token = token


def token_from_authlib(token: dict[str, Any]) -> protocol.Token:
    """The typed token back from Authlib's dict."""
    return protocol.Token(
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token") or "",
        openid=token["openid"],
        scope=token.get("scope") or "",
        expires_at=int(token.get("expires_at") or 0),
        unionid=token.get("unionid"),
        is_snapshot_user=token.get("is_snapshotuser") == 1,
    )


@dataclass(frozen=True)
class WebFlow:
    """A browser login flow: which WeChat app, which authorize page, which scope."""

    name: str
    #: Goes into the login state, so a callback refuses states minted for another flow.
    flow_id: int
    credentials: Credentials
    authorize_path: str
    scope: str


def web_flows(settings: Settings) -> dict[str, WebFlow]:
    """The browser flows the settings configure: ``oa`` (inside WeChat) and ``qr`` (desktop)."""
    flows: dict[str, WebFlow] = {}
    if settings.official_account:
        flows["oa"] = WebFlow("oa", 0, settings.official_account, protocol.OA_AUTHORIZE_PATH, settings.scope)
    if settings.website:
        flows["qr"] = WebFlow("qr", 1, settings.website, protocol.QRCONNECT_PATH, protocol.SCOPE_LOGIN)
    return flows


def register_app(
    oauth: WeChatOAuth,
    flow: WebFlow,
    settings: Settings,
    *,
    adapter: KeepAliveAdapter,
    update_token: Callable[..., None],
    mounts: dict[str, Any] | None = None,
) -> WeChatApp:
    """Register ``flow``'s remote app in ``oauth`` (as ``wechat_<flow>``) and return it.

    ``update_token(token, refresh_token=None, access_token=None)`` is Authlib's hook,
    called with every refreshed token so it can be persisted.
    """
    app: WeChatApp = oauth.register(
        f"wechat_{flow.name}",
        client_cls=WeChatApp,
        update_token=update_token,
        client_id=flow.credentials.appid,
        client_secret=flow.credentials.secret,
        authorize_url=settings.open_base_url + flow.authorize_path,
        access_token_url=settings.api_base_url + protocol.TOKEN_PATH,
        refresh_token_url=settings.api_base_url + protocol.REFRESH_PATH,
        api_base_url=settings.api_base_url,
        lang=settings.lang,
        client_kwargs={
            "scope": flow.scope,
            **session_options(settings, adapter, mounts),
            # Refresh a little before WeChat's 7200 s are up.
            "leeway": 300,
        },
    )
    return app


def session_options(settings: Settings, adapter: KeepAliveAdapter, mounts: dict[str, Any] | None) -> dict[str, Any]:
    """What every WeChat session gets: the shared pool, timeouts, the retry policy and the environment.

    requests reads proxy and CA-bundle variables from the environment on every call;
    they are read once here instead (``trust_env`` off), with the same outcome.
    """
    return {
        "default_timeout": (settings.connect_timeout, settings.read_timeout),
        "adapter": adapter,
        "mounts": mounts or {},
        "retry": RetryPolicy(retries=settings.retries),
        "trust_env": False,
        "proxies": get_environ_proxies(settings.api_base_url),
        "verify": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
    }


class MiniProgramClient:
    """``/sns/jscode2session`` for a mini program: not OAuth, but the same pool and rules."""

    def __init__(self, credentials: Credentials, api_base_url: str, options: dict[str, Any]) -> None:
        self.credentials = credentials
        self.url = api_base_url + protocol.JSCODE2SESSION_PATH
        self._options = options

    def code_to_session(self, js_code: str) -> protocol.MiniProgramSession:
        """Exchange a ``wx.login()`` code; never retried (the code is single-use)."""
        query = protocol.jscode2session_query(self.credentials.appid, self.credentials.secret, js_code)
        with WeChatOAuth2Session(**self._options) as session:
            data = session.get_json(self.url, query, endpoint=protocol.JSCODE2SESSION_PATH, withhold_token=True)
        return protocol.MiniProgramSession.from_response(data)
