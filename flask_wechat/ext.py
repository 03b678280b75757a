"""The Flask extension: ``WeChat(app=None)`` + ``init_app``.

One :class:`WeChat` object may serve several apps (each with its own AppID); all
per-app state lives in ``app.extensions["wechat"]``, a :class:`WeChatState`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from . import config, protocol, signals
from .client import WeChatApp, WeChatOAuth, register_app, token_from_authlib
from .compliance import KeepAliveAdapter, as_authlib_token, redact_transport_logs
from .crypto import TokenCipher
from .errors import (
    ConfigurationError,
    ReauthorizationRequired,
    RefreshTokenError,
    SnapshotUserError,
    StateError,
    WeChatError,
)
from .flow import LoginFlow, Outcome
from .loginstate import StateCodec
from .models import utcnow
from .storage import AccountStore, Identity, LoginRecord
from .store import RedisStore, SharedStore, SQLStore
from .views import blueprint

__all__ = ["WeChat", "WeChatState"]

log = logging.getLogger(__name__)

UserFactory = Callable[[Identity], Any]

#: The name of the Official Account web-auth app in the private Authlib registry.
OA_CLIENT_NAME = "wechat_oa"


def _user_agent() -> str:
    return request.headers.get("User-Agent", "")


def _secret_keys(app: Flask) -> list[str | bytes]:
    """The keys that sign login states: SECRET_KEY first, then Flask's fallbacks."""
    if not app.secret_key:
        raise ConfigurationError("SECRET_KEY must be set: it signs the session and the WeChat login state")
    return [app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or [])]


def _shared_store(settings: config.Settings, db: Any) -> SharedStore:
    if settings.store_url:
        return RedisStore(settings.store_url)
    return SQLStore(lambda: db.engine)


class WeChatState:
    """Everything the extension keeps for one Flask app."""

    def __init__(
        self,
        extension: WeChat,
        settings: config.Settings,
        db: Any,
        user_model: type[Any],
        account_model: type[Any],
        adapter: KeepAliveAdapter,
        fake: Any = None,
    ) -> None:
        self.extension = extension
        self.settings = settings
        #: The Authlib remote app and the login flow; set by ``init_app`` right after this state exists.
        self.client: WeChatApp
        self.flow: LoginFlow
        self.db = db
        self.user_model = user_model
        self.account_model = account_model
        self.adapter = adapter
        #: The in-app fake WeChat when ``WECHAT_FAKE`` is on, else ``None``.
        self.fake = fake
        self.cipher = TokenCipher(settings.token_keys) if settings.token_keys else None

    def store(self) -> AccountStore:
        """Account persistence bound to the current database session."""
        return AccountStore(self.db.session, self.user_model, self.account_model, self.cipher)

    def save_refreshed_token(self, token: dict[str, Any], refresh_token: Any = None, access_token: Any = None) -> None:
        """Authlib's ``update_token`` hook: persist a refreshed token on its account."""
        store = self.store()
        account = store.find(self.settings.appid, token["openid"])
        if account is not None:
            store.save_token(account, token_from_authlib(token))

    def begin_login(self, next_url: str) -> Response:
        """Redirect to WeChat's authorize page; ``next_url`` must already be validated."""
        state = self.flow.begin(next_url, _user_agent())
        response: Response = self.client.authorize_redirect(url_for("wechat.callback", _external=True), state=state)
        return response

    def complete_login(self) -> str:
        """Finish the login the callback request carries; return where to send the user."""
        outcome = self.flow.complete(
            request.args.get("state", ""), request.args.get("code", ""), _user_agent(), self._exchange
        )
        user = self.store().load_user(outcome.user_id, self.settings.appid)
        if user is None:
            raise StateError()  # deleted, or marked for re-authorization, since the first hit
        record: LoginRecord | None = g.pop("_wechat_login_record", None)
        if self.settings.renew_session:
            # A login must not inherit a session someone else may have planted (fixation).
            session.clear()
        login_user(user, remember=self.settings.remember)
        signals.logged_in.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            account=record.account if record else None,
            new_user=bool(record and record.new_user),
            new_account=bool(record and record.new_account),
        )
        return outcome.next_url

    def _exchange(self, code: str, next_url: str) -> Outcome:
        """The first hit's work: code -> token -> profile -> stored account and user."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            token = self.client.exchange_code(code)
            if token.is_snapshot_user:
                # Virtual identity of WeChat's snapshot page: never stored, never logged in.
                raise SnapshotUserError()
            userinfo = self._profile(token) if self._profile_is_stale(token) else None
            identity = Identity(
                appid=self.settings.appid,
                openid=token.openid,
                unionid=token.unionid or (userinfo.unionid if userinfo else None),
                nickname=userinfo.nickname if userinfo else "",
                avatar_url=userinfo.headimgurl if userinfo else "",
                userinfo=userinfo,
            )
            record = self.store().record_login(identity, token, self.extension.create_user_for(self))
        except WeChatError as exc:
            signals.login_failed.send(app, error=exc)
            raise
        if record.new_account:
            signals.account_created.send(app, user=record.user, account=record.account, new_user=record.new_user)
        g._wechat_login_record = record
        return Outcome(user_id=str(record.user.id), next_url=next_url)

    def _profile_is_stale(self, token: protocol.Token) -> bool:
        """Whether this login should fetch the profile (a returning user's may still be fresh)."""
        account = self.store().find(self.settings.appid, token.openid)
        if account is None or account.profile_updated_at is None:
            return True
        age: float = (utcnow() - account.profile_updated_at).total_seconds()
        return age >= self.settings.profile_max_age

    def _profile(self, token: protocol.Token) -> protocol.UserInfo | None:
        """The profile, when the scope allows it; a failure here does not undo the login."""
        if not token.scopes & {protocol.SCOPE_USERINFO, protocol.SCOPE_LOGIN}:
            return None
        try:
            userinfo, _ = self.client.fetch_userinfo(as_authlib_token(token))
        except WeChatError as exc:
            log.warning("WeChat userinfo failed after login (%s); keeping the stored profile", type(exc).__name__)
            return None
        return userinfo

    def logout(self) -> None:
        """Log the user out and drop the extension's session keys."""
        user = current_user._get_current_object() if current_user.is_authenticated else None
        logout_user()
        self.flow.forget_pending()
        if user is not None:
            signals.logged_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]


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
        oauth = WeChatOAuth()
        oauth.init_app(app)
        state = WeChatState(self, settings, db, user_model, account_model, adapter, fake)
        state.client = register_app(
            oauth, OA_CLIENT_NAME, settings, adapter=adapter, update_token=state.save_refreshed_token, mounts=mounts
        )
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
        if manager._user_callback is None:

            def load_user(user_id: str) -> Any:
                state: WeChatState = current_app.extensions["wechat"]
                return state.store().load_user(user_id, state.settings.appid)

            manager.user_loader(load_user)

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

    def accounts(self, user: Any) -> list[Any]:
        """The user's WeChat accounts in this app's AppID, oldest first."""
        state = self._state()
        return state.store().accounts_of(user, state.settings.appid)

    def account(self, user: Any) -> Any | None:
        """The user's WeChat account in this app's AppID, or ``None``."""
        found = self.accounts(user)
        return found[0] if found else None

    def fetch_userinfo(self, account: Any) -> protocol.UserInfo:
        """Fetch and store a fresh profile for a stored account, refreshing its token if needed.

        Raises :class:`ReauthorizationRequired` when the refresh token is dead.
        """
        state = self._state()
        store = state.store()
        token = self._usable_token(store, account)
        try:
            userinfo, _ = state.client.fetch_userinfo(token)
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
        return token is not None and state.client.validate_token(token)

    @staticmethod
    def _usable_token(store: AccountStore, account: Any) -> dict[str, Any]:
        token = store.authlib_token(account)
        if token is None or (token["expires_at"] <= time.time() and not store.refresh_window_open(account)):
            raise ReauthorizationRequired()
        return token
