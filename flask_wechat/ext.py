"""The Flask extension: ``WeChat(app=None)`` + ``init_app``.

One :class:`WeChat` object may serve several apps (each with its own AppID); all
per-app state lives in ``app.extensions["wechat"]``, a :class:`WeChatState`.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from flask import Flask, current_app
from flask_login import LoginManager

from . import config, protocol
from .client import MiniProgramClient, WeChatApp, WeChatOAuth, register_app, session_options, web_flows
from .compliance import KeepAliveAdapter, redact_transport_logs
from .errors import ConfigurationError, ReauthorizationRequired, RefreshTokenError
from .flow import LoginFlow
from .loginstate import StateCodec
from .miniprogram import load_bearer_user
from .runtime import UserFactory, WeChatState
from .storage import AccountStore
from .store import RedisStore, SharedStore, SQLStore
from .views import blueprint, send_to_wechat

__all__ = ["WeChat", "WeChatState"]

log = logging.getLogger(__name__)


def _secret_keys(app: Flask) -> list[str | bytes]:
    """The keys that sign login states: SECRET_KEY first, then Flask's fallbacks."""
    if not app.secret_key:
        raise ConfigurationError("SECRET_KEY must be set: it signs the session and the WeChat login state")
    return [app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or [])]


def _shared_store(settings: config.Settings, db: Any) -> SharedStore:
    if settings.store_url:
        return RedisStore(settings.store_url)
    return SQLStore(lambda: db.engine)


class WeChat:
    """Log in with WeChat: Authlib for the protocol, Flask-Login for the session.

    ``WeChat(app, user_model=User, account_model=WeChatAccount)`` or, with an
    app factory, ``wechat = WeChat(user_model=..., account_model=...)`` and later
    ``wechat.init_app(app)``. Flask-SQLAlchemy must be initialised on the app first.
    """

    def __init__(
        self, app: Flask | None = None, *, user_model: type[Any] | None = None, account_model: type[Any] | None = None
    ) -> None:
        self.user_model = user_model
        self.account_model = account_model
        self._user_factory: UserFactory | None = None
        if app is not None:
            self.init_app(app)

    def init_app(
        self, app: Flask, *, user_model: type[Any] | None = None, account_model: type[Any] | None = None
    ) -> None:
        """Validate the ``WECHAT_*`` config and wire the blueprint, Authlib and Flask-Login."""
        if "wechat" in app.extensions:
            raise RuntimeError(
                "WeChat is already initialised on this app; call init_app once per app "
                "(create one WeChat() and call init_app in your app factory)."
            )
        user_model = user_model or self.user_model
        account_model = account_model or self.account_model
        if user_model is None or account_model is None:
            raise TypeError(
                "WeChat needs user_model= and account_model= (your WeChatUserMixin and WeChatAccountMixin models)"
            )
        db = app.extensions.get("sqlalchemy")
        if db is None:
            raise RuntimeError(
                "Flask-SQLAlchemy is not initialised on this app: call db.init_app(app) before wechat.init_app(app)"
            )
        config.apply_defaults(app.config)
        settings = config.load_settings(app.config)

        redact_transport_logs()
        adapter = KeepAliveAdapter(pool_connections=4, pool_maxsize=32)
        fake, mounts = self._wire_fake(app, settings)
        state = WeChatState(settings, db, user_model, account_model, self.create_user_for, adapter, fake)
        oauth = WeChatOAuth()
        oauth.init_app(app)
        state.web_flows = web_flows(settings)
        for name, flow in state.web_flows.items():
            state.clients[name] = register_app(
                oauth,
                flow,
                settings,
                adapter=adapter,
                update_token=partial(state.save_refreshed_token, flow.credentials.appid),
                mounts=mounts,
            )
        if settings.miniprogram:
            options = session_options(settings, adapter, mounts)
            state.miniprogram = MiniProgramClient(settings.miniprogram, settings.api_base_url, options)
        state.flow = LoginFlow(
            StateCodec(_secret_keys(app), settings.state_lifetime),
            _shared_store(settings, db),
            max_pending=settings.max_pending_logins,
            default_next=settings.default_next,
        )
        app.extensions["wechat"] = state
        app.register_blueprint(blueprint, url_prefix=settings.url_prefix)
        self._wire_login_manager(app)

    @staticmethod
    def _wire_fake(app: Flask, settings: config.Settings) -> tuple[Any, dict[str, Any]]:
        if not settings.fake:
            return None, {}
        from werkzeug.middleware.dispatcher import DispatcherMiddleware

        from .testing.adapter import WSGIAdapter
        from .testing.fake import FakeWeChat

        log.warning("WECHAT_FAKE is on: logins use the built-in fake WeChat at %s", settings.fake_path)
        fake = FakeWeChat()
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {settings.fake_path: fake})  # type: ignore[method-assign]
        mounts = (
            {config.FAKE_API_BASE_URL: WSGIAdapter(fake)} if settings.api_base_url == config.FAKE_API_BASE_URL else {}
        )
        return fake, mounts

    @staticmethod
    def _wire_login_manager(app: Flask) -> None:
        manager: LoginManager | None = getattr(app, "login_manager", None)
        if manager is None:
            manager = LoginManager()
            manager.init_app(app)
        if manager.login_view is None:
            manager.login_view = "wechat.login"
            if manager.unauthorized_callback is None:
                # Straight to WeChat: one browser round trip less than a hop through the login view.
                manager.unauthorized_handler(send_to_wechat)
        if manager._user_callback is None:

            def load_user(user_id: str) -> Any:
                state: WeChatState = current_app.extensions["wechat"]
                return state.store().load_user(user_id)

            manager.user_loader(load_user)
        if manager._request_callback is None:
            # Mini programs in token mode send "Authorization: Bearer <token>".
            manager.request_loader(load_bearer_user)

    def user_creator(self, factory: UserFactory) -> UserFactory:
        """Decorate the function that turns a new WeChat :class:`Identity` into a local user.

        It returns an unsaved user object; the extension adds and commits it. By
        default a bare ``user_model()`` is created.
        """
        self._user_factory = factory
        return factory

    def create_user_for(self, state: WeChatState) -> UserFactory:
        """The user factory in force for ``state``'s app."""
        return self._user_factory or (lambda identity: state.user_model())

    @staticmethod
    def _state() -> WeChatState:
        try:
            state: WeChatState = current_app.extensions["wechat"]
        except KeyError:
            raise RuntimeError("WeChat is not initialised on the current app: call wechat.init_app(app)") from None
        return state

    @property
    def client(self) -> WeChatApp:
        """The current app's Authlib remote app, for calls of your own."""
        return self._state().client

    def accounts(self, user: Any, appid: str | None = None) -> list[Any]:
        """The user's WeChat accounts (one per WeChat app they used), oldest first."""
        return self._state().store().accounts_of(user, appid)

    def account(self, user: Any) -> Any | None:
        """The user's most recently used WeChat account, or ``None``."""
        found = self.accounts(user)
        return max(found, key=lambda account: account.updated_at) if found else None

    def fetch_userinfo(self, account: Any) -> protocol.UserInfo:
        """Fetch and store a fresh profile for a stored account, refreshing its token if needed.

        Raises :class:`ReauthorizationRequired` when the refresh token is dead (or the
        account has no web token at all, like a mini program's).
        """
        state = self._state()
        store = state.store()
        client = state.client_for(account.appid)
        token = self._usable_token(store, account)
        if client is None:
            raise ReauthorizationRequired()
        try:
            userinfo, _ = client.fetch_userinfo(token)
        except RefreshTokenError:
            store.forget_tokens(account)
            raise ReauthorizationRequired() from None
        store.save_profile(account, userinfo)
        return userinfo

    def rotate_token_keys(self) -> int:
        """Re-encrypt every stored token with the first of ``WECHAT_TOKEN_KEYS``; return the count.

        Run it after putting a new key first; drop the old key once it returns.
        """
        return self._state().store().rotate_token_keys()

    def validate(self, account: Any) -> bool:
        """Whether WeChat still accepts the account's access token (``/sns/auth``)."""
        state = self._state()
        token = state.store().authlib_token(account)
        client = state.client_for(account.appid)
        return token is not None and client is not None and client.validate_token(token)

    @staticmethod
    def _usable_token(store: AccountStore, account: Any) -> dict[str, Any]:
        token = store.authlib_token(account)
        if token is None or (token["expires_at"] <= time.time() and not store.refresh_window_open(account)):
            raise ReauthorizationRequired()
        return token
