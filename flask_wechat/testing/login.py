"""Log a Flask test client in as a fake WeChat user, with no WeChat round trip.

Tests of an app's own pages need a logged-in user far more often than they need the
WeChat dance. :func:`login_as` stores the account the way a real login through the
fake would (same openid, unionid, nickname and avatar, a fresh token) and then logs
the user in with Flask-Login. No pytest here: the pytest plugin wraps this as the
``wechat_login`` fixture, and any other test runner can call it directly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from flask import session
from flask_login import login_user

from .. import protocol
from ..storage import Identity
from .fake import FakeWeChat
from .grants import new_token

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from ..ext import WeChatState

__all__ = ["identity_for", "login_as"]

#: The session keys Flask-Login's ``login_user`` writes for a non-"remember me" login.
_LOGIN_KEYS: Final = ("_user_id", "_fresh", "_id")


def _state(client: FlaskClient) -> WeChatState:
    try:
        state: WeChatState = client.application.extensions["wechat"]
    except KeyError:
        raise RuntimeError("WeChat is not initialised on the client's app: call wechat.init_app(app)") from None
    return state


def identity_for(
    fake: FakeWeChat, appid: str, user_key: str, scope: str = protocol.SCOPE_USERINFO
) -> tuple[Identity, protocol.Token]:
    """What a completed login of ``user_key`` through ``fake`` yields: the identity and a fresh token.

    Mirrors the fake's own answers: the profile only for ``snsapi_userinfo``, and
    ``unionid`` only then and only when the app is bound (unknown apps count as bound).
    """
    try:
        user = fake.users[user_key]
    except KeyError:
        raise ValueError(f"unknown fake WeChat user {user_key!r}; known: {', '.join(fake.users)}") from None
    if user.snapshot:
        raise ValueError(f"{user_key!r} is a snapshot-page virtual user: WeChat logins never log them in")
    openid = fake.openid_for(appid, user_key)
    app = fake.apps.get(appid)
    with_profile = scope == protocol.SCOPE_USERINFO
    unionid = user.unionid if with_profile and (app is None or app.bound) else None
    userinfo = (
        protocol.UserInfo(openid=openid, nickname=user.nickname, headimgurl=user.headimgurl, unionid=unionid)
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


def login_as(client: FlaskClient, user_key: str = "alice", *, fake: FakeWeChat | None = None) -> Any:
    """Log ``client`` in as the fake WeChat user ``user_key`` and return their account row.

    The account is created or updated and the user created (through the app's
    ``@wechat.user_creator``) exactly as a real login would, then Flask-Login's own
    ``login_user`` fills the client's session. ``fake`` supplies the users; by default
    the app's in-app fake (``WECHAT_FAKE``) or else the default cast of a new
    :class:`FakeWeChat`. The tokens are WeChat-shaped but no WeChat knows them: a page
    that calls WeChat with them gets errcode 40001. Returns the account, detached
    from its database session but with every column (and ``account.user``) loaded.
    """
    state = _state(client)
    app = client.application
    if fake is None:
        fake = state.fake if state.fake is not None else FakeWeChat()
    identity, token = identity_for(fake, state.settings.appid, user_key, state.settings.scope)
    # The client's own environ, so Flask-Login's session identifier (_id) matches its requests.
    with app.test_request_context(environ_base=client.environ_base):
        record = state.store().record_login(identity, token, state.extension.create_user_for(state))
        state.db.session.refresh(record.account)
        if not login_user(record.user, remember=False, fresh=True):
            raise RuntimeError(f"Flask-Login refused to log in user {record.user!r} (is_active is false)")
        keys = {key: session[key] for key in _LOGIN_KEYS if key in session}
    with client.session_transaction() as client_session:
        client_session.update(keys)
    return record.account
