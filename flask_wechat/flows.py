"""The ways to log in in a browser: where each sends the browser, and whom the code it brings back names.

A :class:`WebFlow` is all :class:`~flask_wechat.login.Logins` knows of a login kind:
``authorize_url`` at the start, ``identify`` at the callback, ``fits`` to pick one for a
browser. Everything else (the state, the browser binding, the single claim, the account
and user rows, the session) is the same for every kind. WeChat's two flows are here:
``oa`` inside WeChat and ``qr`` on a desktop; WeCom's are in :mod:`flask_wechat.wecomflow`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from flask import current_app

from . import protocol, serverapi, signals
from .accounts import Accounts, Grant, Identity
from .appapi import AppAPI
from .client import WeChatApp
from .compliance import WeChatAPI, as_authlib_token
from .errors import SnapshotUserError, WeChatError
from .models import utcnow

__all__ = ["PROFILE_SCOPES", "WeChatFlow", "WebFlow"]

log = logging.getLogger(__name__)

#: Scopes whose token may fetch the profile.
PROFILE_SCOPES: Final = frozenset({protocol.SCOPE_USERINFO, protocol.SCOPE_LOGIN})


class WebFlow(Protocol):
    """One way to log in in a browser."""

    @property
    def name(self) -> str:
        """What ``?flow=`` calls it (``oa``, ``qr``, ``wecom``, ...)."""

    @property
    def family(self) -> str:
        """Its kind (``wechat``, ``wecom``): a request for the family picks the member that fits the browser."""

    @property
    def number(self) -> int:
        """Goes into the login state, so a callback refuses states minted for another flow."""

    @property
    def appid(self) -> str:
        """The app (or corp) its identities belong to: their account rows' ``appid``."""

    @property
    def callback_endpoint(self) -> str:
        """The endpoint (``wechat.callback``) the browser comes back to."""

    @property
    def callback_path(self) -> str:
        """That endpoint's path under the blueprint."""

    @property
    def in_client(self) -> bool:
        """Whether it works only inside its own client (WeChat, WeCom); the others suit any browser."""

    @property
    def label(self) -> str:
        """What ``flask wechat check`` calls it."""

    @property
    def console(self) -> str:
        """Where in the platform's console its callback domain is configured."""

    def fits(self, user_agent: str) -> bool:
        """Whether a browser with this User-Agent can complete this flow."""

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the browser (a path when a stand-in is served inside the app)."""

    def identify(self, code: str, accounts: Accounts) -> tuple[Identity, Grant | None]:
        """Who the callback's code names, and what to keep of the grant; no transaction stays open."""


@dataclass(frozen=True)
class WeChatFlow:
    """WeChat's web login: ``oa`` (Official Account, inside WeChat) or ``qr`` (website app, by QR code)."""

    name: str
    number: int
    appid: str
    scope: str
    callback_endpoint: str
    callback_path: str
    label: str
    console: str
    #: Authlib's Flask remote app: the authorize link, and the app's own API calls.
    remote: WeChatApp
    #: The server-side calls of a login (code exchange, userinfo).
    api: WeChatAPI
    #: Seconds a stored profile counts as fresh (``WECHAT_PROFILE_MAX_AGE``).
    profile_max_age: int = 86400
    #: The Official Account's app API when a silent login should ask ``user/info`` for a follower's unionid.
    followers: AppAPI | None = None
    family: str = "wechat"

    @property
    def in_client(self) -> bool:
        return self.name == "oa"

    def fits(self, user_agent: str) -> bool:
        # A phone cannot scan a code on its own screen; the in-WeChat page needs WeChat.
        return protocol.is_wechat_browser(user_agent) == self.in_client

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        url: str = self.remote.create_authorization_url(redirect_uri, state=state)["url"]
        return url

    def identify(self, code: str, accounts: Accounts) -> tuple[Identity, Grant | None]:
        """Exchange the code, then fetch what the identity still lacks: the profile, a follower's unionid."""
        accounts.release()
        grant = self.api.exchange_code(code)
        if grant.is_snapshot_user:
            # Virtual identity of WeChat's snapshot page: never stored, never logged in.
            signals.snapshot_user.send(current_app._get_current_object(), flow=self.name)  # type: ignore[attr-defined]
            raise SnapshotUserError()
        wants_profile = bool(grant.scopes & PROFILE_SCOPES)
        followers = self.followers if not grant.unionid else None
        account = accounts.find(self.appid, grant.openid) if wants_profile or followers else None
        userinfo = None
        if wants_profile and self._profile_is_stale(account):
            accounts.release()
            userinfo = self._profile(grant)
        unionid = grant.unionid or (userinfo.unionid if userinfo else None)
        follower = None
        if followers is not None and unionid is None and (account is None or not account.unionid):
            accounts.release()
            follower = _follower(followers, grant.openid)
            unionid = follower.unionid if follower is not None and follower.subscribed else None
        identity = Identity(
            appid=self.appid,
            openid=grant.openid,
            unionid=unionid,
            nickname=userinfo.nickname if userinfo else "",
            avatar_url=userinfo.headimgurl if userinfo else "",
            userinfo=userinfo,
            subscribed=follower.subscribed if follower is not None else None,
        )
        return identity, grant

    def _profile_is_stale(self, account: Any) -> bool:
        """Whether this login should fetch the profile (a returning user's may still be fresh)."""
        if account is None or account.profile_updated_at is None:
            return True
        age: float = (utcnow() - account.profile_updated_at).total_seconds()
        return age >= self.profile_max_age

    def _profile(self, token: protocol.Token) -> protocol.UserInfo | None:
        """The profile; a failure here does not undo the login."""
        try:
            userinfo, _ = self.api.fetch_userinfo(as_authlib_token(token))
        except WeChatError as exc:
            log.warning("WeChat userinfo failed after login (%s); keeping the stored profile", type(exc).__name__)
            return None
        return userinfo


def _follower(api: AppAPI, openid: str) -> serverapi.Follower | None:
    """What ``/cgi-bin/user/info`` knows of the visitor; a failure logs them in without it, as before."""
    try:
        return api.follower(openid)
    except WeChatError as exc:
        log.warning("WeChat user/info failed at login (%s); logging in without the unionid", exc)
        return None
