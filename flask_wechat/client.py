"""The Authlib Flask remote app for WeChat, and where pending logins are kept.

:class:`WeChatApp` is registered through an Authlib Flask ``OAuth`` registry
(one private registry per Flask app, so an app's own Authlib registry is left
alone). It adds what WeChat's web auth needs on top of ``FlaskOAuth2App``: the
``next`` target kept with the state, the callback's checks, and typed userinfo
and token validation with refresh handled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App, OAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from flask import redirect, request, session
from werkzeug.wrappers import Response

from . import protocol
from .compliance import KeepAliveAdapter, RetryPolicy, WeChatOAuth2Session
from .config import Settings
from .errors import AccessTokenError, AuthorizationDenied, InvalidOpenIdError, StateError

__all__ = ["PendingLogin", "WeChatApp", "WeChatOAuth", "register_app"]

T = TypeVar("T")

#: Session key of the pending logins ([state, expiry, next], oldest first); one key, bounded size.
STATE_SESSION_KEY = "_wechat_states"
#: Longest ``code`` the callback passes on; WeChat's are 32 characters.
MAX_CODE_LENGTH = 512


@dataclass(frozen=True)
class PendingLogin:
    """What the login view remembered for a state: where to go afterwards."""

    next_url: str


class WeChatFrameworkIntegration(FlaskIntegration):  # type: ignore[misc]  # Authlib is untyped
    """Keeps pending logins in the session: expiring, single-use and bounded.

    Authlib's default never checks a state's expiry, stores the whole authorize URL
    and lets abandoned attempts pile up in the cookie until it exceeds 4 KB.
    """

    max_pending = 8
    clock: Callable[[], float] = staticmethod(time.time)

    def _pending(self) -> list[list[Any]]:
        """Unexpired ``[state, expiry, next]`` entries, oldest first.

        A list, not a dict: Flask's session serializer sorts dict keys, which would
        lose which attempt is the newest.
        """
        stored = session.get(STATE_SESSION_KEY)
        if not isinstance(stored, list):
            return []
        now = self.clock()
        return [
            entry
            for entry in stored
            if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], (int, float)) and entry[1] > now
        ]

    def _store(self, pending: list[list[Any]]) -> None:
        if pending:
            session[STATE_SESSION_KEY] = pending[-self.max_pending :]
        else:
            session.pop(STATE_SESSION_KEY, None)

    def set_state_data(self, sess: Any, state: str, data: dict[str, Any]) -> None:
        self._store([*self._pending(), [state, int(self.clock()) + self.expires_in, data.get("next", "/")]])

    def get_state_data(self, sess: Any, state: str | None) -> dict[str, Any] | None:
        found = next((entry for entry in self._pending() if entry[0] == state), None)
        return None if found is None else {"next": found[2]}

    def clear_state_data(self, sess: Any, state: str | None) -> None:
        self._store([entry for entry in self._pending() if entry[0] != state])

    def clear_all(self) -> None:
        """Forget every pending login (logout)."""
        session.pop(STATE_SESSION_KEY, None)


class WeChatOAuth(OAuth):  # type: ignore[misc]  # Authlib is untyped
    """A private Authlib registry for one Flask app's WeChat apps."""

    oauth2_client_cls = None  # every registration names its class
    framework_integration_cls = WeChatFrameworkIntegration

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
        """Send the browser to WeChat, remembering ``next`` (already validated) with the state."""
        next_url = kwargs.pop("next", "/")
        rv = self.create_authorization_url(redirect_uri, **kwargs)
        self.framework.set_state_data(session, rv["state"], {"next": next_url})
        return redirect(rv["url"])

    def finish_authorization(self) -> tuple[protocol.Token, PendingLogin]:
        """Check the callback and exchange its code: the state first (CSRF), then the code.

        The state is consumed before WeChat is called, so a replayed callback fails.
        """
        state = request.args.get("state", "")
        code = request.args.get("code", "")
        if not protocol.is_valid_state(state):
            raise StateError()
        data = self.framework.get_state_data(session, state)
        if data is None:
            raise StateError()
        self.framework.clear_state_data(session, state)
        if not code:
            raise AuthorizationDenied()
        if len(code) > MAX_CODE_LENGTH:
            raise StateError()
        token = self.fetch_access_token(code=code)
        self.token = token
        return token_from_authlib(token), PendingLogin(next_url=data["next"])

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

        def auth(client: WeChatOAuth2Session) -> bool:
            query = protocol.auth_query(client.token["access_token"], client.token["openid"])
            url = self.api_base_url + protocol.AUTH_PATH
            try:
                client.retry.run(
                    lambda: client.get_json(url, query, endpoint=protocol.AUTH_PATH, withhold_token=True),
                    protocol.AUTH_PATH,
                )
            except (AccessTokenError, InvalidOpenIdError):
                return False
            return True

        with self._get_oauth_client(**self.load_server_metadata()) as client:
            client.token = token
            return auth(client)

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


def register_app(
    oauth: WeChatOAuth,
    name: str,
    settings: Settings,
    *,
    adapter: KeepAliveAdapter,
    update_token: Callable[..., None],
    mounts: dict[str, Any] | None = None,
) -> WeChatApp:
    """Register the Official Account web-auth app in ``oauth`` and return it.

    ``update_token(token, refresh_token=None, access_token=None)`` is Authlib's hook,
    called with every refreshed token so it can be persisted.
    """
    app: WeChatApp = oauth.register(
        name,
        client_cls=WeChatApp,
        update_token=update_token,
        client_id=settings.appid,
        client_secret=settings.secret,
        authorize_url=settings.open_base_url + protocol.OA_AUTHORIZE_PATH,
        access_token_url=settings.api_base_url + protocol.TOKEN_PATH,
        refresh_token_url=settings.api_base_url + protocol.REFRESH_PATH,
        api_base_url=settings.api_base_url,
        lang=settings.lang,
        client_kwargs={
            "scope": settings.scope,
            "default_timeout": (settings.connect_timeout, settings.read_timeout),
            "adapter": adapter,
            "mounts": mounts or {},
            "retry": RetryPolicy(retries=settings.retries),
            # Refresh a little before WeChat's 7200 s are up.
            "leeway": 300,
        },
    )
    app.framework.expires_in = settings.state_lifetime
    app.framework.max_pending = settings.max_pending_logins
    return app
