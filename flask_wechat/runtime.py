"""Everything the extension builds for one Flask app, built in one place: :func:`build`.

A :class:`Runtime` is complete when it exists: the settings, the models, one
:class:`~flask_wechat.flows.WebFlow` per browser login (WeChat's ``oa`` and ``qr``, WeCom's
``wecom`` and ``wecom_web``), the mini program's API, each app's
:class:`~flask_wechat.appapi.AppAPI` on its shared app token, the state codec, this
browser's part of a login, and the shared store. The login
steps (:mod:`flask_wechat.login`) read it; nothing writes it after :func:`build`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from flask import Flask
from requests.adapters import BaseAdapter
from sqlalchemy import inspect
from sqlalchemy.orm import Mapper

from . import config, protocol
from .accounts import Accounts, Identity
from .appapi import AppAPI
from .client import WeChatOAuth, register_app, session_options
from .compliance import KeepAliveAdapter, WeChatAPI, token_from_authlib
from .config import Credentials
from .crypto import TokenCipher
from .errors import ConfigurationError
from .flows import WebFlow, WeChatFlow
from .loginstate import BrowserLogins, StateCodec
from .models import table_of
from .store import RedisStore, SharedStore, SQLStore
from .wecomflow import WeComAPI, WeComFlow
from .wecomflow import build_flows as build_wecom_flows

__all__ = ["Hooks", "Runtime", "UserFactory", "build", "check_models"]

UserFactory = Callable[[Identity], Any]

#: Where WeChat sends the browser back, per WeChat browser flow: (endpoint, path under the blueprint).
CALLBACKS: Final = {"oa": ("wechat.callback", "/callback"), "qr": ("wechat.qr_callback", "/qr/callback")}
#: For ``flask wechat check``: what each WeChat flow is called, and where its callback domain is configured.
CONSOLES: Final = {
    "oa": ("Official Account", "公众号后台 → 设置与开发 → 账号设置 → 功能设置 → 网页授权域名"),
    "qr": ("Website app (QR)", "微信开放平台 → 管理中心 → 网站应用 → 开发信息 → 授权回调域"),
}


class Hooks:
    """What the app decides with decorators on the :class:`~flask_wechat.WeChat` object (shared by its apps)."""

    def __init__(self) -> None:
        #: ``@wechat.user_creator``: turns a new identity into an unsaved user; ``None``: a bare user model.
        self.create_user: UserFactory | None = None
        #: ``@wechat.login_allowed``: whether an identity may log in (or be bound); ``None``: everyone.
        self.allow_login: Callable[[Identity], bool] | None = None


@dataclass(frozen=True)
class Runtime:
    """What the extension keeps for one Flask app."""

    settings: config.Settings
    db: Any
    user_model: type[Any]
    account_model: type[Any]
    hooks: Hooks
    #: ``accounts()``: account persistence on the current request's database session.
    accounts: Callable[[], Accounts]
    #: The browser flows by name (``oa``, ``qr``, and WeCom's), in the order they are preferred.
    web: Mapping[str, WebFlow]
    miniprogram: WeChatAPI | None
    #: The server APIs on the app access token, by app: ``oa`` (Official Account) and ``miniprogram``.
    apps: Mapping[str, AppAPI]
    states: StateCodec
    browser: BrowserLogins
    store: SharedStore
    adapter: KeepAliveAdapter

    def wechat_flows(self) -> list[WeChatFlow]:
        """WeChat's own browser flows, in-WeChat first."""
        return [flow for flow in self.web.values() if isinstance(flow, WeChatFlow)]

    @property
    def wecom(self) -> WeComAPI | None:
        """The WeCom app's server API (its corp token), when WeCom login is configured."""
        return next((flow.api for flow in self.web.values() if isinstance(flow, WeComFlow)), None)

    def web_flow_of(self, appid: str) -> WeChatFlow | None:
        """WeChat's browser flow whose AppID is ``appid``."""
        return next((flow for flow in self.wechat_flows() if flow.appid == appid), None)


#: What the extension reads and writes on the app's models: what the mixins give them.
USER_ATTRIBUTES: Final = ("id", "wechat_unionid", "wechat_reauthorization_required", "wechat_token_version", "get_id")
ACCOUNT_ATTRIBUTES: Final = (
    "id",
    "appid",
    "openid",
    "unionid",
    "nickname",
    "avatar_url",
    "scope",
    "access_token",
    "refresh_token",
    "session_key",
    "access_token_expires_at",
    "refresh_token_expires_at",
    "profile_updated_at",
    "phone_number",
    "pure_phone_number",
    "phone_country_code",
    "phone_updated_at",
    "updated_at",
    "user_id",
    "user",
    "email",
    "gender",
)


def _mapper(model: type[Any], role: str) -> Mapper[Any]:
    mapper = inspect(model, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise ConfigurationError(
            f"{role} {getattr(model, '__name__', model)!r} is not a mapped SQLAlchemy model: pass your db.Model class"
        )
    return mapper


def check_models(user_model: type[Any], account_model: type[Any]) -> None:
    """Refuse models that lack what the extension relies on, naming the missing piece and the fix."""
    users, accounts = _mapper(user_model, "user_model"), _mapper(account_model, "account_model")
    for model, names, mixin in (
        (user_model, USER_ATTRIBUTES, "WeChatUserMixin"),
        (account_model, ACCOUNT_ATTRIBUTES, "WeChatAccountMixin"),
    ):
        missing = [name for name in names if not hasattr(model, name)]
        if missing:
            raise ConfigurationError(
                f"{model.__name__} lacks {', '.join(missing)}: add {mixin} to its bases, before db.Model"
            )
    table = table_of(users)
    referred = {fk.target_fullname.rpartition(".")[0] for fk in table_of(accounts).c.user_id.foreign_keys}
    if referred != {table.fullname}:
        raise ConfigurationError(
            f"{account_model.__name__}.user_id refers to the table {', '.join(sorted(referred)) or 'nothing'!r}, "
            f"but the user model {user_model.__name__} is the table {table.fullname!r}: "
            "set wechat_user_table and wechat_user_class on the account model"
        )


def _secret_keys(app: Flask) -> list[str | bytes]:
    """The keys that sign login states: SECRET_KEY first, then Flask's fallbacks."""
    if not app.secret_key:
        raise ConfigurationError("SECRET_KEY must be set: it signs the session and the WeChat login state")
    return [app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or [])]


def build(
    app: Flask,
    settings: config.Settings,
    *,
    db: Any,
    user_model: type[Any],
    account_model: type[Any],
    hooks: Hooks,
    mounts: Mapping[str, BaseAdapter],
) -> Runtime:
    """Build the complete runtime of ``app``: clients, codec, store and models."""
    check_models(user_model, account_model)
    cipher = TokenCipher(settings.token_keys) if settings.token_keys else None
    accounts = partial(Accounts, db.session, user_model, account_model, cipher)
    adapter = KeepAliveAdapter(pool_connections=4, pool_maxsize=32)
    options = session_options(settings, adapter, mounts)
    oauth = WeChatOAuth()
    oauth.init_app(app)
    # The SQL store asks Flask-SQLAlchemy for the current app's engine on each use.
    store: SharedStore = (
        RedisStore(settings.store_url) if settings.store_url else SQLStore(partial(getattr, db, "engine"))
    )
    apps = {
        name: AppAPI(
            credentials.appid,
            credentials.secret,
            settings.api_base_url,
            store,
            token_endpoint=settings.app_token_endpoint,
            session_options=options,
            lock_timeout=settings.token_lock_timeout,
            clock=settings.clock,
            cipher=cipher,
        )
        for name, credentials in (("oa", settings.official_account), ("miniprogram", settings.miniprogram))
        if credentials is not None
    }

    def save_refreshed_token(
        appid: str, token: dict[str, Any], refresh_token: Any = None, access_token: Any = None
    ) -> None:
        """Authlib's ``update_token`` hook (bound to one AppID): persist a refreshed token on its account."""
        stored = accounts()
        account = stored.find(appid, token["openid"])
        if account is not None:
            stored.save_token(account, token_from_authlib(token))

    web: dict[str, WebFlow] = {}
    specs: tuple[tuple[str, int, Credentials | None, str, str, dict[str, str]], ...] = (
        ("oa", 0, settings.official_account, protocol.OA_AUTHORIZE_PATH, settings.scope, {"connect_redirect": "1"}),
        ("qr", 1, settings.website, protocol.QRCONNECT_PATH, protocol.SCOPE_LOGIN, {}),
    )
    for name, number, credentials, authorize_path, scope, authorize_params in specs:
        if credentials is None:
            continue
        remote = register_app(
            oauth,
            name,
            credentials,
            authorize_path,
            scope,
            settings,
            options=options,
            update_token=partial(save_refreshed_token, credentials.appid),
            # WeChat's own clients ask for this inside WeChat: it suppresses a second callback.
            authorize_params=authorize_params,
        )
        api = WeChatAPI(
            credentials.appid,
            credentials.secret,
            settings.api_base_url,
            lang=settings.lang,
            session_options=options,
            update_token=partial(save_refreshed_token, credentials.appid),
        )
        endpoint, path = CALLBACKS[name]
        label, console = CONSOLES[name]
        web[name] = WeChatFlow(
            name,
            number,
            credentials.appid,
            scope,
            endpoint,
            path,
            label,
            console,
            remote,
            api,
            profile_max_age=settings.profile_max_age,
            followers=apps.get("oa") if name == "oa" and settings.follower_unionid else None,
        )
    miniprogram = (
        WeChatAPI(
            settings.miniprogram.appid, settings.miniprogram.secret, settings.api_base_url, session_options=options
        )
        if settings.miniprogram
        else None
    )
    # WeCom's flows after WeChat's: a desktop browser that fits both is offered them in this order.
    web.update(build_wecom_flows(settings, store, options, cipher))
    return Runtime(
        settings=settings,
        db=db,
        user_model=user_model,
        account_model=account_model,
        hooks=hooks,
        accounts=accounts,
        web=web,
        miniprogram=miniprogram,
        apps=apps,
        states=StateCodec(_secret_keys(app), settings.state_lifetime),
        browser=BrowserLogins(settings.max_pending_logins),
        store=store,
        adapter=adapter,
    )
