"""WeCom (企业微信) login as two :class:`~flask_wechat.flows.WebFlow` s: inside the client, and on the web.

``wecom`` sends a browser inside the WeCom client through the in-client authorization
(silent with ``snsapi_base``); ``wecom_web`` sends any other browser to WeCom's web login
page (a QR code, or the desktop client's one-click login). Both come back with a code that
:class:`WeComAPI` turns into the member's ``userid`` on the corp's access token, which one
worker refreshes for all (:class:`~flask_wechat.apptoken.SharedCredential`). A member is an
account row keyed by (CorpID, userid) on the same user model as WeChat's identities.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from flask import url_for

from . import protocol, serverapi, wecom
from .accounts import Accounts, Contact, Grant, Identity
from .appapi import TokenAPI
from .config import Settings, WeComSettings
from .crypto import TokenCipher
from .errors import (
    InvalidAccessTokenError,
    InvalidAppSecretError,
    NotAMemberError,
    UntrustedDomainError,
    WeChatAPIError,
    WeChatError,
)
from .store import SharedStore

__all__ = ["WeComAPI", "WeComFlow", "build_flows"]

log = logging.getLogger(__name__)

#: WeCom's errcode for a code that came back to a domain the app does not trust.
REDIRECT_UNTRUSTED: Final = 50001
#: (callback endpoint, path under the blueprint) of each WeCom flow.
CALLBACKS: Final = {
    "wecom": ("wechat.wecom_callback", "/wecom/callback"),
    "wecom_web": ("wechat.wecom_web_callback", "/wecom/web/callback"),
}
_CONSOLE: Final = (
    "企业微信管理后台 → 应用管理 → the app → 网页授权及JS-SDK → 可信域名 (and 企业可信IP: this server's outbound IP)"
)


class WeComAPI(TokenAPI):
    """A WeCom self-built app's server calls, on the corp access token of its Secret."""

    token_kind = "wecom_token"

    def __init__(self, settings: WeComSettings, store: SharedStore, **options: Any) -> None:
        self.corpid = settings.corpid
        self.agentid = settings.agentid
        self._secret = settings.secret
        # One token per app Secret: the key names the corp and (a digest of) the Secret, never the Secret.
        digest = hashlib.sha256(settings.secret.encode()).hexdigest()[:16]
        super().__init__(f"{settings.corpid}/{digest}", settings.api_base_url, store, **options)

    def __repr__(self) -> str:
        return f"<WeComAPI corpid={self.corpid} agentid={self.agentid}>"

    def _fetch_token(self, force: bool) -> tuple[str, int]:
        """``/cgi-bin/gettoken``; a wrong Secret (40001 here) is raised at once."""
        try:
            data = self._send("GET", wecom.GETTOKEN_PATH, wecom.gettoken_query(self.corpid, self._secret))
        except InvalidAccessTokenError as exc:
            raise InvalidAppSecretError(exc.errcode, exc.errmsg, wecom.GETTOKEN_PATH) from None
        token = serverapi.AppToken.from_response(data, wecom.GETTOKEN_PATH)
        return token.value, token.expires_in

    def visitor(self, code: str, redirect_uri: str) -> wecom.Visitor:
        """Who the login's code names; ``redirect_uri`` names the domain in a 50001 (untrusted domain)."""
        try:
            data = self.call("GET", wecom.GETUSERINFO_PATH, {"code": code})
        except WeChatAPIError as exc:
            if exc.errcode == REDIRECT_UNTRUSTED:
                domain = urlsplit(redirect_uri).netloc
                raise UntrustedDomainError(exc.errcode, exc.errmsg, exc.endpoint, domain) from None
            raise
        return wecom.Visitor.from_response(data)

    def consented(self, user_ticket: str) -> wecom.Member:
        """What a member agreed to share on the ``snsapi_privateinfo`` page (``getuserdetail``)."""
        data = self.call("POST", wecom.GETUSERDETAIL_PATH, body={"user_ticket": user_ticket})
        return wecom.Member.from_response(data, wecom.GETUSERDETAIL_PATH)

    def member(self, userid: str) -> wecom.Member:
        """What the app may read of a member (``user/get``): name and departments, more for older apps."""
        data = self.call("GET", wecom.USER_GET_PATH, {"userid": userid})
        return wecom.Member.from_response(data, wecom.USER_GET_PATH)


@dataclass(frozen=True)
class WeComFlow:
    """WeCom login for one self-built app: ``wecom`` (inside the client) or ``wecom_web`` (any browser)."""

    name: str
    number: int
    settings: WeComSettings
    api: WeComAPI
    open_base_url: str
    lang: str
    family: str = "wecom"

    @property
    def appid(self) -> str:
        return self.settings.corpid

    @property
    def callback_endpoint(self) -> str:
        return CALLBACKS[self.name][0]

    @property
    def callback_path(self) -> str:
        return CALLBACKS[self.name][1]

    @property
    def in_client(self) -> bool:
        return self.name == "wecom"

    @property
    def label(self) -> str:
        return "WeCom, in the client" if self.in_client else "WeCom, web login (QR)"

    @property
    def console(self) -> str:
        return _CONSOLE

    def fits(self, user_agent: str) -> bool:
        if self.in_client:
            return protocol.is_wecom_browser(user_agent)
        # WeChat's browser cannot show a WeCom login, nor can a phone scan its own screen.
        return not protocol.is_wecom_browser(user_agent) and not protocol.is_wechat_browser(user_agent)

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        corpid, agentid = self.settings.corpid, self.settings.agentid
        if self.in_client:
            return wecom.authorize_url(self.open_base_url, corpid, agentid, redirect_uri, self.settings.scope, state)
        return wecom.web_login_url(self.settings.login_base_url, corpid, agentid, redirect_uri, state, self.lang)

    def identify(self, code: str, accounts: Accounts) -> tuple[Identity, Grant | None]:
        """The member (or, if admitted, the non-member) behind the code, with what WeCom shares of them."""
        accounts.release()
        visitor = self.api.visitor(code, self._redirect_uri())
        if visitor.userid is None:
            if not self.settings.admit_non_members:
                raise NotAMemberError()
            openid = visitor.openid or ""
            return Identity(appid=self.appid, openid=openid, unionid=None, nickname="", avatar_url=""), None
        member = wecom.Member(visitor.userid)
        if visitor.user_ticket:
            member = member.merged(self._or_known(self.api.consented, visitor.user_ticket, member))
        # At every login, not only when the stored profile is stale: the departments a
        # @wechat.login_allowed check reads are stored nowhere, and a member may have moved.
        member = member.merged(self._or_known(self.api.member, visitor.userid, member))
        identity = Identity(
            appid=self.appid,
            openid=visitor.userid,
            unionid=None,
            nickname=member.name,
            avatar_url=member.avatar,
            contact=Contact(mobile=member.mobile, email=member.email, gender=member.gender),
            departments=member.departments,
        )
        return identity, None

    def _redirect_uri(self) -> str:
        return url_for(self.callback_endpoint, _external=True)

    @staticmethod
    def _or_known(fetch: Callable[[str], wecom.Member], key: str, member: wecom.Member) -> wecom.Member:
        """What ``fetch`` says of the member (consented fields, or ``user/get``'s); on failure, what is known.

        An app without the right to read members (60011) or an expired ticket (84014) does
        not stop the login: the member logs in with what WeCom did share.
        """
        try:
            return fetch(key)
        except WeChatError as exc:
            log.warning("WeCom %s failed at login (%s); going on without it", fetch.__name__, exc)
            return member


def build_flows(
    settings: Settings, store: SharedStore, session_options: Mapping[str, Any], cipher: TokenCipher | None
) -> dict[str, WeComFlow]:
    """WeCom's two flows for the configured app (none without ``WECHAT_WECOM_CORPID``)."""
    if settings.wecom is None:
        return {}
    api = WeComAPI(
        settings.wecom,
        store,
        session_options=session_options,
        lock_timeout=settings.token_lock_timeout,
        clock=settings.clock,
        cipher=cipher,
    )
    lang = "en" if settings.default_language == "en" else "zh"
    return {
        name: WeComFlow(name, number, settings.wecom, api, settings.open_base_url, lang)
        for name, number in (("wecom", 2), ("wecom_web", 3))
    }
