"""The Authlib Flask remote app for WeChat: the authorize link and the app's own API calls.

:class:`WeChatApp` is registered through an Authlib Flask ``OAuth`` registry (one
private registry per Flask app, so an app's own Authlib registry is left alone). The
login path uses it for the authorize redirect; the server-side calls of a login go
through :class:`~flask_wechat.compliance.WeChatAPI`, which needs no Flask.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import redirect, request
from requests.adapters import BaseAdapter
from requests.utils import get_environ_proxies
from werkzeug.wrappers import Response

from . import protocol
from .compliance import KeepAliveAdapter, RetryPolicy, WeChatOAuth2Session
from .config import Credentials, Settings

__all__ = ["WeChatApp", "WeChatOAuth", "register_app", "session_options"]


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
    """A WeChat web-auth remote app: WeChat's ordered authorize link, and GET token calls for the app's own use."""

    client_cls = WeChatOAuth2Session

    def authorize_redirect(self, redirect_uri: str | None = None, **kwargs: Any) -> Response:
        """Send the browser to WeChat's authorize page with the ``state`` the login minted."""
        url: str = self.create_authorization_url(redirect_uri, **kwargs)["url"]
        if url.startswith("/"):
            # A stand-in served inside this app (the fake) is a path: keep the app's own prefix.
            url = request.script_root + url
        return redirect(url)


def register_app(
    oauth: WeChatOAuth,
    name: str,
    credentials: Credentials,
    authorize_path: str,
    scope: str,
    settings: Settings,
    *,
    options: Mapping[str, Any],
    update_token: Callable[..., None],
    authorize_params: Mapping[str, str] | None = None,
) -> WeChatApp:
    """Register one WeChat app's remote app in ``oauth`` (as ``wechat_<name>``) and return it.

    ``update_token(token, refresh_token=None, access_token=None)`` is Authlib's hook,
    called with every refreshed token so it can be persisted.
    """
    app: WeChatApp = oauth.register(
        f"wechat_{name}",
        client_cls=WeChatApp,
        update_token=update_token,
        client_id=credentials.appid,
        client_secret=credentials.secret,
        authorize_url=settings.open_base_url + authorize_path,
        authorize_params=dict(authorize_params or {}),
        access_token_url=settings.api_base_url + protocol.TOKEN_PATH,
        refresh_token_url=settings.api_base_url + protocol.REFRESH_PATH,
        api_base_url=settings.api_base_url,
        client_kwargs={
            "scope": scope,
            **options,
            # Refresh a little before WeChat's 7200 s are up.
            "leeway": 300,
        },
    )
    return app


def session_options(settings: Settings, adapter: KeepAliveAdapter, mounts: Mapping[str, BaseAdapter]) -> dict[str, Any]:
    """What every WeChat session gets: the shared pool, timeouts, the retry policy and the environment.

    requests reads proxy and CA-bundle variables from the environment on every call;
    they are read once here instead (``trust_env`` off), with the same outcome.
    """
    return {
        "default_timeout": (settings.connect_timeout, settings.read_timeout),
        "adapter": adapter,
        "mounts": dict(mounts),
        "retry": RetryPolicy(retries=settings.retries),
        "trust_env": False,
        "proxies": get_environ_proxies(settings.api_base_url),
        "verify": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
    }
