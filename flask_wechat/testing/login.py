"""Log a Flask test client in as a fake WeChat user, with no WeChat round trip.

Tests of an app's own pages need a logged-in user far more often than they need the
WeChat dance. :func:`login_as` hands the extension what a real callback through the
fake would (same openid, unionid, nickname and avatar, a fresh token) and lets it
store and log in the user as usual. No pytest here: the pytest plugin wraps this as the
``wechat_login`` fixture, and any other test runner can call it directly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from flask import session
from flask_login import current_user

from .. import protocol
from ..accounts import Identity
from .fake import FakeWeChat
from .grants import new_token
from .inapp import EXTENSION_KEY

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from ..ext import WeChat

__all__ = ["identity_for", "login_as"]

#: The session keys Flask-Login's ``login_user`` writes for a non-"remember me" login.
_LOGIN_KEYS: Final = ("_user_id", "_fresh", "_id")
#: Scopes whose token comes with a profile (and, for bound apps, a unionid).
_PROFILE_SCOPES: Final = frozenset({protocol.SCOPE_USERINFO, protocol.SCOPE_LOGIN})


def _wechat(client: FlaskClient) -> WeChat:
    try:
        wechat: WeChat = client.application.extensions["wechat"]
    except KeyError:
        raise RuntimeError("WeChat is not initialised on the client's app: call wechat.init_app(app)") from None
    return wechat


def identity_for(
    fake: FakeWeChat, appid: str, user_key: str, scope: str = protocol.SCOPE_USERINFO, *, public_base: str = ""
) -> tuple[Identity, protocol.Token]:
    """What a completed login of ``user_key`` through ``fake`` yields: the identity and a fresh token.

    Mirrors the fake's own answers: the profile and ``unionid`` only for
    ``snsapi_userinfo`` and ``snsapi_login``, and ``unionid`` only for a bound app. An avatar
    the fake serves itself (a path) is put under ``public_base``, where browsers reach the fake.
    """
    try:
        user = fake.users[user_key]
    except KeyError:
        raise ValueError(f"unknown fake WeChat user {user_key!r}; known: {', '.join(fake.users)}") from None
    if user.snapshot:
        raise ValueError(f"{user_key!r} is a snapshot-page virtual user: WeChat logins never log them in")
    openid = fake.openid_for(appid, user_key)
    with_profile = scope in _PROFILE_SCOPES
    unionid = fake.unionid_for(appid, user_key) if with_profile else None
    avatar = public_base.rstrip("/") + user.headimgurl if user.headimgurl.startswith("/") else user.headimgurl
    userinfo = (
        protocol.UserInfo(openid=openid, nickname=user.nickname, headimgurl=avatar, unionid=unionid)
        if with_profile
        else None
    )
    token = protocol.Token(
        access_token=new_token(),
        refresh_token=new_token(),
        openid=openid,
        scope=scope,
        expires_at=int(time.time()) + protocol.ACCESS_TOKEN_LIFETIME,
        unionid=unionid,
    )
    identity = Identity(
        appid=appid,
        openid=openid,
        unionid=unionid,
        nickname=userinfo.nickname if userinfo else "",
        avatar_url=userinfo.headimgurl if userinfo else "",
        userinfo=userinfo,
    )
    return identity, token


def login_as(
    client: FlaskClient, user_key: str = "alice", *, fake: FakeWeChat | None = None, flow: str | None = None
) -> Any:
    """Log ``client`` in as the fake WeChat user ``user_key`` and return their account row.

    The login is stored and completed by the extension's own code, as after a real
    callback: the account is created or updated, the user created through the app's
    ``@wechat.user_creator``, the session renewed (``WECHAT_RENEW_SESSION``), Flask-Login's
    ``login_user`` called and the ``account_created`` / ``logged_in`` signals sent, through
    the extension's public seam :meth:`~flask_wechat.WeChat.log_in`. Only WeChat is skipped.
    ``flow`` picks the app: ``"oa"`` (Official Account) or ``"qr"`` (website), by default the
    Official Account's when configured. ``fake`` supplies the users; by default the app's
    in-app fake (:func:`~flask_wechat.testing.install`) or else the default cast of a new
    :class:`FakeWeChat`. The tokens are WeChat-shaped but no WeChat knows them: a page
    that calls WeChat with them gets errcode 40001. Returns the account, detached from its
    database session but with every column (and ``account.user``) loaded.
    """
    wechat = _wechat(client)
    app = client.application
    with app.app_context():
        runtime = wechat.runtime
    name = flow or ("oa" if "oa" in runtime.web else "qr")
    web = next((flow for flow in runtime.wechat_flows() if flow.name == name), None)
    if web is None:
        configured = [flow.name for flow in runtime.wechat_flows()]
        raise ValueError(f"WeChat flow {name!r} is not configured on this app; configured: {configured}")
    if fake is None:
        fake = app.extensions.get(EXTENSION_KEY) or FakeWeChat()
    # Where browsers reach the fake: its own setting, else the app's authorize base (a path when installed).
    public_base = fake.public_url or runtime.settings.open_base_url
    identity, token = identity_for(fake, web.appid, user_key, web.scope, public_base=public_base)
    # The client's own environ, so Flask-Login's session identifier (_id) matches its requests.
    with app.test_request_context(environ_base=client.environ_base):
        record = wechat.log_in(identity, token)
        if not current_user.is_authenticated:
            raise RuntimeError(f"Flask-Login refused to log in user {record.user!r} (is_active is false)")
        runtime.db.session.refresh(record.account)
        keys = {key: session[key] for key in _LOGIN_KEYS if key in session}
    with client.session_transaction() as client_session:
        if runtime.settings.renew_session:
            client_session.clear()
        client_session.update(keys)
    return record.account
