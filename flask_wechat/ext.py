"""The Flask extension: ``WeChat(app=None)`` + ``init_app``.

Like Flask-SQLAlchemy, ``app.extensions["wechat"]`` is the :class:`WeChat` object
itself; one object may serve several apps (each with its own AppIDs), and what it
built for each app is kept per app, not on the object's attributes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask, Request, current_app
from flask_login import LoginManager, user_accessed

from . import config, protocol, serverapi
from .accounts import Accounts, Grant, Identity, LoginRecord
from .appapi import AppAPI
from .client import WeChatApp
from .compliance import redact_transport_logs
from .errors import ConfigurationError, ReauthorizationRequired, RefreshTokenError
from .login import Logins
from .models import render_item
from .phone import phone_number_of
from .runtime import Hooks, Runtime, UserFactory, build
from .views import LoginViews

__all__ = ["WeChat"]

log = logging.getLogger(__name__)

#: The Flask extension key under which :func:`flask_wechat.testing.install` leaves its fake WeChat.
FAKE_EXTENSION_KEY = "wechat_fake"


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
        self._hooks = Hooks()
        self._logins: WeakKeyDictionary[Flask, Logins] = WeakKeyDictionary()
        self._loaders: WeakKeyDictionary[Flask, _GuardedLoaders] = WeakKeyDictionary()
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
        config.warn_about_unknown_keys(app.config, stacklevel=2)
        config.apply_defaults(app.config)
        settings = config.load_settings(app.config)
        if settings.fake and FAKE_EXTENSION_KEY not in app.extensions:
            raise ConfigurationError(
                "WECHAT_FAKE is set by flask_wechat.testing.install(app), which serves the fake WeChat: "
                "call it before wechat.init_app(app) instead of setting the key"
            )
        if settings.fake:
            log.warning("WECHAT_FAKE is on: logins use the built-in fake WeChat, not WeChat")
        redact_transport_logs()
        runtime = build(
            app,
            settings,
            db=db,
            user_model=user_model,
            account_model=account_model,
            hooks=self._hooks,
            mounts=settings.http_adapters,
        )
        logins = Logins(runtime)
        views = LoginViews(logins)
        self._logins[app] = logins
        app.extensions["wechat"] = self
        app.register_blueprint(views.blueprint(), url_prefix=settings.url_prefix)
        self._wire_login_manager(app, logins, views)
        _wire_migrate(app)

    def _wire_login_manager(self, app: Flask, logins: Logins, views: LoginViews) -> None:
        manager: LoginManager | None = getattr(app, "login_manager", None)
        if manager is None:
            manager = LoginManager()
            manager.init_app(app)
        if manager.login_view is None:
            manager.login_view = "wechat.login"
            if manager.unauthorized_callback is None:
                # Straight to WeChat: one browser round trip less than a hop through the login view.
                manager.unauthorized_handler(views.send_to_wechat)
        loaders = self._loaders[app] = _GuardedLoaders(manager, logins)
        loaders.install()
        # The app may register its own loaders after init_app: guard them before their first use.
        user_accessed.connect(loaders.on_first_use, app)

    def user_creator(self, factory: UserFactory) -> UserFactory:
        """Decorate the function that turns a new WeChat :class:`Identity` into a local user.

        It returns an unsaved user object; the extension adds and commits it. By
        default a bare ``user_model()`` is created.
        """
        self._hooks.create_user = factory
        return factory

    def login_allowed(self, check: Callable[[Identity], bool]) -> Callable[[Identity], bool]:
        """Decorate the function that decides whether an identity may log in (or be bound to a user).

        It gets the :class:`Identity` (a WeCom member's ``departments`` included) before any
        user is created or logged in; ``False`` refuses the login with a 403 page.
        """
        self._hooks.allow_login = check
        return check

    def _current(self) -> Logins:
        try:
            return self._logins[current_app._get_current_object()]  # type: ignore[attr-defined]
        except KeyError:
            raise RuntimeError("WeChat is not initialised on the current app: call wechat.init_app(app)") from None

    @property
    def runtime(self) -> Runtime:
        """What the extension built for the current app: settings, clients, store, models."""
        return self._current().runtime

    @property
    def client(self) -> WeChatApp:
        """The current app's Authlib remote app (in-WeChat if configured, else QR), for calls of your own."""
        flows = self.runtime.wechat_flows()
        if not flows:
            raise RuntimeError("wechat.client needs a WeChat browser login (WECHAT_APPID or WECHAT_OPEN_APPID)")
        return flows[0].remote

    def app_api(self, app: str = "oa") -> AppAPI:
        """The server API of one configured app, ``"oa"`` (Official Account) or ``"miniprogram"``."""
        apps = self.runtime.apps
        if app not in apps:
            configured = ", ".join(repr(name) for name in apps) or "none"
            raise ValueError(f"no WeChat app {app!r} is configured (configured: {configured})")
        return apps[app]

    def app_token(self, app: str = "oa", *, force_refresh: bool = False) -> str:
        """The access token of ``"oa"`` or ``"miniprogram"`` (app tokens), or ``"wecom"`` (the corp token).

        For the WeChat (or WeCom) APIs you call yourself.

        Every worker shares it (one refreshes it for all). If WeChat refuses it with
        40001/42001/40014, call ``wechat.app_api(app).tokens.invalidate(token)`` (WeCom:
        ``wechat.runtime.wecom.tokens.invalidate(token)``) and ask again.
        ``force_refresh=True`` makes WeChat issue a new one: ``stable_token`` allows 20 a day.
        """
        if app == "wecom":
            wecom = self.runtime.wecom
            if wecom is None:
                raise ValueError("no WeCom app is configured (WECHAT_WECOM_CORPID)")
            return wecom.access_token(force_refresh=force_refresh)
        return self.app_api(app).access_token(force_refresh=force_refresh)

    def log_in(self, identity: Identity, grant: Grant, *, bind_to: Any = None) -> LoginRecord:
        """Store a completed WeChat login and log the current request's browser in.

        The seam for login kinds of your own (and for tests): the account and user are
        found or created exactly as after a callback, the session renewed, Flask-Login's
        ``login_user`` called and the signals sent. Run it in a request context.
        """
        logins = self._current()
        record = logins.record(identity, grant, bind_to=bind_to)
        logins.log_in(record.user, record)
        return record

    def accounts(self, user: Any, appid: str | None = None) -> list[Any]:
        """The user's WeChat accounts (one per WeChat app they used), oldest first."""
        return self.runtime.accounts().accounts_of(user, appid)

    def account(self, user: Any) -> Any | None:
        """The user's most recently used WeChat account, or ``None``."""
        found = self.accounts(user)
        return max(found, key=lambda account: account.updated_at) if found else None

    def fetch_userinfo(self, account: Any) -> protocol.UserInfo:
        """Fetch and store a fresh profile for a stored account, refreshing its token if needed.

        Raises :class:`ReauthorizationRequired` when the refresh token is dead (or the
        account has no web token at all, like a mini program's).
        """
        runtime = self.runtime
        accounts = runtime.accounts()
        flow = runtime.web_flow_of(account.appid)
        token = self._usable_token(accounts, account)
        if flow is None:
            raise ReauthorizationRequired()
        try:
            userinfo, _ = flow.api.fetch_userinfo(token)
        except RefreshTokenError:
            accounts.forget_tokens(account)
            raise ReauthorizationRequired() from None
        accounts.save_profile(account, userinfo)
        return userinfo

    def phone_number(self, user: Any, accounts: Sequence[Any] | None = None) -> serverapi.PhoneNumber | None:
        """The phone number ``user`` shared through the mini program (decrypted), or ``None``.

        The mini program sends it to ``POST /wechat/miniprogram/phone``; ``phone_number``
        includes the country code for numbers outside China, ``pure_phone_number`` does not.
        Pass ``accounts`` (from :meth:`accounts`) when you have them: that spares a query.
        """
        return phone_number_of(self.runtime, user, accounts)

    def rotate_token_keys(self) -> int:
        """Re-encrypt every stored token with the first of ``WECHAT_TOKEN_KEYS``; return the count.

        Run it after putting a new key first; drop the old key once it returns.
        """
        return self.runtime.accounts().rotate_token_keys()

    def validate(self, account: Any) -> bool:
        """Whether WeChat still accepts the account's access token (``/sns/auth``)."""
        runtime = self.runtime
        token = runtime.accounts().authlib_token(account)
        flow = runtime.web_flow_of(account.appid)
        return token is not None and flow is not None and flow.api.validate_token(token)

    @staticmethod
    def _usable_token(accounts: Accounts, account: Any) -> dict[str, Any]:
        token = accounts.authlib_token(account)
        if token is None or (token["expires_at"] <= time.time() and not accounts.refresh_window_open(account)):
            raise ReauthorizationRequired()
        return token


class _GuardedLoaders:
    """Flask-Login's loaders of one app, the app's own kept, with what the extension promises around them.

    A user due for re-authorization (their refresh token died) is treated as logged out, whoever's
    ``user_loader`` loaded them; a mini program's bearer token is tried before the app's own
    ``request_loader``. Without loaders of the app's, the extension's own load the user.
    """

    def __init__(self, manager: LoginManager, logins: Logins) -> None:
        self.manager = manager
        self.logins = logins
        self.user_loader: Callable[[str], Any] | None = None
        self.request_loader: Callable[[Request], Any] | None = None

    def install(self) -> None:
        """Wrap whatever loaders are registered now (the wrappers themselves are left alone)."""
        if self.manager.user_callback is None:
            self.manager.user_loader(self.logins.load_user)
        elif self.manager.user_callback not in (self.load_user, self.logins.load_user):
            self.user_loader = self.manager.user_callback
            self.manager.user_loader(self.load_user)
        if self.manager.request_callback is None:
            # Mini programs in token mode send "Authorization: Bearer <token>".
            self.manager.request_loader(self.logins.load_request_user)
        elif self.manager.request_callback not in (self.load_request, self.logins.load_request_user):
            self.request_loader = self.manager.request_callback
            self.manager.request_loader(self.load_request)

    def on_first_use(self, sender: Flask, **extra: Any) -> None:
        """Flask-Login's ``user_accessed`` signal, sent before it calls a loader: the app is set up by now."""
        user_accessed.disconnect(self.on_first_use, sender)
        self.install()

    def load_user(self, user_id: str) -> Any:
        assert self.user_loader is not None  # noqa: S101 - set before this wrapper is registered
        return _unless_due_for_reauthorization(self.user_loader(user_id))

    def load_request(self, request: Request) -> Any:
        user = self.logins.load_request_user(request)
        if user is None and self.request_loader is not None:
            user = _unless_due_for_reauthorization(self.request_loader(request))
        return user


def _unless_due_for_reauthorization(user: Any) -> Any:
    return None if user is not None and getattr(user, "wechat_reauthorization_required", False) else user


def _migrate_options(app: Flask) -> dict[str, Any] | None:
    """The options Flask-Migrate's ``env.py`` passes to Alembic, when Flask-Migrate is set up."""
    options = getattr(app.extensions.get("migrate"), "configure_args", None)
    return options if isinstance(options, dict) else None


def _wire_migrate(app: Flask) -> None:
    """Have Flask-Migrate's autogenerate write UTCDateTime columns as plain ``sa.DateTime(timezone=True)``.

    Its ``env.py`` passes ``Migrate(..., **kwargs)`` to Alembic's ``context.configure``; an app's own
    ``render_item`` is kept and asked about everything else. Flask-Migrate set up after
    ``wechat.init_app`` does not get it (``flask wechat check`` says so): pass
    ``render_item=flask_wechat.models.render_item`` to it then.
    """
    options = _migrate_options(app)
    if options is None or migrate_renders_plain_types(app):
        return
    own = options.get("render_item")
    if own is None:
        options["render_item"] = render_item
        return

    def both(type_: str, obj: Any, autogen_context: Any) -> Any:
        rendered = render_item(type_, obj, autogen_context)
        return own(type_, obj, autogen_context) if rendered is False else rendered

    both._wechat_render_item = True  # type: ignore[attr-defined]
    options["render_item"] = both


def migrate_renders_plain_types(app: Flask) -> bool | None:
    """Whether Flask-Migrate writes UTCDateTime as a plain SQLAlchemy type; ``None`` without Flask-Migrate."""
    options = _migrate_options(app)
    if options is None:
        return None
    hook = options.get("render_item")
    return hook is render_item or bool(getattr(hook, "_wechat_render_item", False))
