"""WeCom (企业微信) login for a company's self-built app, framework-free.

Inside the WeCom client a member is sent through ``/connect/oauth2/authorize`` with the
CorpID as ``appid`` and the app's ``agentid``; elsewhere through the web login page
``/wwlogin/sso/login?login_type=CorpApp``. Either way the code comes back to the site,
which asks ``/cgi-bin/auth/getuserinfo`` (with the corp's access token) who it is:
a member's ``userid``, or a non-member's ``openid``. Endpoints, the ordered links and the
typed answers live here; nothing imports Flask, Authlib or requests.

WeCom docs: https://developer.work.weixin.qq.com/document/path/96441 (web authorization in the client),
https://developer.work.weixin.qq.com/document/path/98171 (web login), .../96442 (getuserinfo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from . import protocol
from .errors import WeChatResponseError

__all__ = [
    "DEFAULT_API_BASE_URL",
    "DEFAULT_LOGIN_BASE_URL",
    "GETTOKEN_PATH",
    "GETUSERDETAIL_PATH",
    "GETUSERINFO_PATH",
    "LEGACY_GETUSERINFO_PATH",
    "PANEL_SCRIPT_PATH",
    "SCOPES",
    "SCOPE_PRIVATEINFO",
    "USER_GET_PATH",
    "WEB_LOGIN_PATH",
    "Member",
    "Visitor",
    "authorize_url",
    "gettoken_query",
    "web_login_url",
]

DEFAULT_LOGIN_BASE_URL: Final = "https://login.work.weixin.qq.com"
DEFAULT_API_BASE_URL: Final = "https://qyapi.weixin.qq.com"
WEB_LOGIN_PATH: Final = "/wwlogin/sso/login"
#: Where a stand-in for WeCom's login host serves ``ww.createWWLoginPanel`` (the real one comes from
#: ``@wecom/jssdk``, which sites bundle themselves).
PANEL_SCRIPT_PATH: Final = "/wwlogin/sso/panel.js"
GETTOKEN_PATH: Final = "/cgi-bin/gettoken"
GETUSERINFO_PATH: Final = "/cgi-bin/auth/getuserinfo"
#: The older endpoint, which answers ``UserId``/``OpenId``/``DeviceId`` with capitals.
LEGACY_GETUSERINFO_PATH: Final = "/cgi-bin/user/getuserinfo"
GETUSERDETAIL_PATH: Final = "/cgi-bin/auth/getuserdetail"
USER_GET_PATH: Final = "/cgi-bin/user/get"
#: Silent (the member's userid) and with consent (mobile, email, avatar, gender through a user_ticket).
SCOPE_PRIVATEINFO: Final = "snsapi_privateinfo"
SCOPES: Final = frozenset({protocol.SCOPE_BASE, SCOPE_PRIVATEINFO})


def authorize_url(open_base_url: str, corpid: str, agentid: int, redirect_uri: str, scope: str, state: str) -> str:
    """The in-client link: WeChat's authorize page with the CorpID, then ``agentid`` and ``#wechat_redirect``.

    ``snsapi_privateinfo`` needs the ``agentid`` (without it WeCom falls back to ``snsapi_base``).
    """
    return protocol.build_authorize_url(
        open_base_url, corpid, redirect_uri, scope, state, extra=(("agentid", str(agentid)),)
    )


def web_login_url(login_base_url: str, corpid: str, agentid: int, redirect_uri: str, state: str, lang: str) -> str:
    """The web login page (QR code, or the desktop client's one-click login) for a self-built app."""
    pairs = (
        ("login_type", "CorpApp"),
        ("appid", corpid),
        ("agentid", str(agentid)),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("lang", lang),
    )
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs)
    return f"{login_base_url}{WEB_LOGIN_PATH}?{query}"


def gettoken_query(corpid: str, secret: str) -> dict[str, str]:
    """The query of ``/cgi-bin/gettoken``: one token per app secret, the same while it lives."""
    return {"corpid": corpid, "corpsecret": secret}


def _text(data: dict[str, Any], *keys: str) -> str:
    """The first non-empty string among ``keys``; WeCom spells some fields two ways."""
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return protocol._storable(value.strip())
    return ""


@dataclass(frozen=True)
class Visitor:
    """Who ``getuserinfo`` says the code belongs to: a member (``userid``) or a non-member (``openid``).

    ``user_ticket`` (valid 1800 s) comes only for ``snsapi_privateinfo`` consents of members
    in the app's visible range; it fetches what they consented to share.
    """

    userid: str | None
    openid: str | None = None
    external_userid: str | None = None
    user_ticket: str | None = field(default=None, repr=False)

    @property
    def is_member(self) -> bool:
        return self.userid is not None

    @classmethod
    def from_response(cls, data: dict[str, Any], endpoint: str = GETUSERINFO_PATH) -> Visitor:
        """From either endpoint: ``userid``/``openid`` (new) or ``UserId``/``OpenId`` (legacy)."""
        userid = _text(data, "userid", "UserId")
        openid = _text(data, "openid", "OpenId")
        if not userid and not openid:
            raise WeChatResponseError(f"WeCom {endpoint} answered neither userid nor openid")
        return cls(
            userid=userid or None,
            openid=openid or None,
            external_userid=_text(data, "external_userid") or None,
            user_ticket=_text(data, "user_ticket") or None,
        )


@dataclass(frozen=True)
class Member:
    """What WeCom shares of a member: consented fields (``getuserdetail``), and ``user/get``'s name.

    Every field may be empty: apps created after 2022-06-20 no longer get mobile, email,
    avatar or gender from ``user/get``, and ``getuserdetail`` has only what the member consented to.
    ``gender`` is WeCom's string: ``"0"`` unknown, ``"1"`` male, ``"2"`` female.
    """

    userid: str
    name: str = ""
    mobile: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    avatar: str = ""
    gender: str = ""
    departments: tuple[int, ...] = ()

    @classmethod
    def from_response(cls, data: dict[str, Any], endpoint: str = GETUSERDETAIL_PATH) -> Member:
        """From ``getuserdetail`` or ``user/get`` (whose ``department`` lists the member's departments)."""
        userid = _text(data, "userid", "UserId")
        if not userid:
            raise WeChatResponseError(f"WeCom {endpoint} answered without userid")
        departments = data.get("department")
        gender = data.get("gender")
        return cls(
            userid=userid,
            name=_text(data, "name"),
            mobile=_text(data, "mobile"),
            email=_text(data, "email", "biz_mail"),
            avatar=_text(data, "avatar"),
            gender=str(gender) if isinstance(gender, (str, int)) and not isinstance(gender, bool) else "",
            departments=tuple(d for d in departments if isinstance(d, int) and not isinstance(d, bool))
            if isinstance(departments, list)
            else (),
        )

    def merged(self, other: Member) -> Member:
        """This member with ``other``'s non-empty fields filled in where this one has none."""
        return Member(
            userid=self.userid,
            name=self.name or other.name,
            mobile=self.mobile or other.mobile,
            email=self.email or other.email,
            avatar=self.avatar or other.avatar,
            gender=self.gender if self.gender not in ("", "0") else other.gender or self.gender,
            departments=self.departments or other.departments,
        )
