"""The WeChat web-authorization protocol, framework-free.

Endpoints, the strictly ordered authorize URL, request parameters, body decoding
and the typed results of the five web-auth operations. Nothing here imports
Flask or Authlib, so the facts can be tested (and reused) on their own.

WeChat docs: https://developers.weixin.qq.com/doc/service/api/webdev/access/api_snsaccesstoken
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from .errors import WeChatResponseError, error_for

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "AUTH_PATH",
    "DEFAULT_API_BASE_URL",
    "DEFAULT_OPEN_BASE_URL",
    "JSCODE2SESSION_PATH",
    "MAX_CODE_LENGTH",
    "MAX_STATE_LENGTH",
    "OA_AUTHORIZE_PATH",
    "OA_CODE_LIFETIME",
    "OA_SCOPES",
    "QRCONNECT_PATH",
    "QR_CODE_LIFETIME",
    "REFRESH_PATH",
    "REFRESH_TOKEN_LIFETIME",
    "SCOPE_BASE",
    "SCOPE_LOGIN",
    "SCOPE_USERINFO",
    "TOKEN_PATH",
    "USERINFO_LANGS",
    "USERINFO_PATH",
    "MiniProgramSession",
    "Token",
    "UserInfo",
    "auth_query",
    "build_authorize_url",
    "decode_body",
    "is_valid_state",
    "is_wechat_browser",
    "is_wecom_browser",
    "jscode2session_query",
    "refresh_query",
    "token_query",
    "userinfo_query",
]

DEFAULT_OPEN_BASE_URL: Final = "https://open.weixin.qq.com"
DEFAULT_API_BASE_URL: Final = "https://api.weixin.qq.com"

OA_AUTHORIZE_PATH: Final = "/connect/oauth2/authorize"
QRCONNECT_PATH: Final = "/connect/qrconnect"
TOKEN_PATH: Final = "/sns/oauth2/access_token"
REFRESH_PATH: Final = "/sns/oauth2/refresh_token"
USERINFO_PATH: Final = "/sns/userinfo"
AUTH_PATH: Final = "/sns/auth"
JSCODE2SESSION_PATH: Final = "/sns/jscode2session"

SCOPE_BASE: Final = "snsapi_base"
SCOPE_USERINFO: Final = "snsapi_userinfo"
SCOPE_LOGIN: Final = "snsapi_login"
OA_SCOPES: Final = frozenset({SCOPE_BASE, SCOPE_USERINFO})
USERINFO_LANGS: Final = frozenset({"zh_CN", "zh_TW", "en"})

ACCESS_TOKEN_LIFETIME: Final = 7200
REFRESH_TOKEN_LIFETIME: Final = 30 * 24 * 3600
OA_CODE_LIFETIME: Final = 300
#: Longest ``code`` passed on to WeChat (WeChat's are 32 characters): anything longer is not one.
MAX_CODE_LENGTH: Final = 512
QR_CODE_LIFETIME: Final = 600

# Bounds that WeChat's numbers are clamped into. WeChat documents expires_in 7200; more than a day is
# its bug, not a longer-lived token.
_EXPIRES_IN_RANGE: Final = (0, 24 * 3600)
_SEX_RANGE: Final = (0, 2)  # unknown, male, female
_FLAG_RANGE: Final = (0, 1)

# JSON "\ud800" gives a lone surrogate that no database driver can encode.
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")

# WeChat: "a-zA-Z0-9, at most 128 bytes"; anything else is mangled or refused.
MAX_STATE_LENGTH: Final = 128
_STATE_PATTERN: Final = re.compile(r"[A-Za-z0-9]{1,128}")


def is_valid_state(state: str) -> bool:
    """Whether ``state`` is something WeChat echoes back unchanged."""
    return _STATE_PATTERN.fullmatch(state) is not None


def build_authorize_url(
    base_url: str,
    appid: str,
    redirect_uri: str,
    scope: str,
    state: str,
    *,
    path: str = OA_AUTHORIZE_PATH,
    extra: tuple[tuple[str, str], ...] = (),
) -> str:
    """Build the authorize link WeChat accepts.

    WeChat matches the query against a strict pattern: the keys must come in the order
    ``appid, redirect_uri, response_type, scope, state``, ``redirect_uri`` must be
    percent-encoded whole, and ``#wechat_redirect`` must end the link. ``extra`` pairs
    (e.g. ``forcePopup``) go after ``state``, never into the fragment.
    """
    if not is_valid_state(state):
        raise ValueError("state must be 1-128 characters of [A-Za-z0-9]")
    pairs = (
        ("appid", appid),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", scope),
        ("state", state),
        *extra,
    )
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs)
    return f"{base_url.rstrip('/')}{path}?{query}#wechat_redirect"


def token_query(appid: str, secret: str, code: str) -> dict[str, str]:
    """Query of ``GET /sns/oauth2/access_token``: the code -> token exchange."""
    return {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"}


def refresh_query(appid: str, refresh_token: str) -> dict[str, str]:
    """Query of ``GET /sns/oauth2/refresh_token``: note that WeChat wants no secret here."""
    return {"appid": appid, "grant_type": "refresh_token", "refresh_token": refresh_token}


def userinfo_query(access_token: str, openid: str, lang: str = "zh_CN") -> dict[str, str]:
    """Query of ``GET /sns/userinfo``."""
    return {"access_token": access_token, "openid": openid, "lang": lang}


def auth_query(access_token: str, openid: str) -> dict[str, str]:
    """Query of ``GET /sns/auth``: is this access token still valid for this openid?"""
    return {"access_token": access_token, "openid": openid}


def jscode2session_query(appid: str, secret: str, js_code: str) -> dict[str, str]:
    """Query of ``GET /sns/jscode2session``: a mini program's ``wx.login()`` code -> session."""
    return {"appid": appid, "secret": secret, "js_code": js_code, "grant_type": "authorization_code"}


def decode_body(body: bytes, endpoint: str = "") -> dict[str, Any]:
    """Parse a WeChat answer and raise its errcode as a typed exception.

    The bytes are UTF-8 whatever the Content-Type says (``text/plain`` without a
    charset is normal, and trusting it gives mojibake), and nicknames may carry raw
    control characters, so JSON is parsed with ``strict=False``. An errcode that is
    no integer (``1e400``, ``NaN``, ``true``, ``"x"``) is a malformed answer, never a crash.
    """
    try:
        data = json.loads(body.decode("utf-8", errors="replace"), strict=False)
    except ValueError:
        raise WeChatResponseError(f"{endpoint or 'WeChat'} answered with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise WeChatResponseError(f"{endpoint or 'WeChat'} answered with JSON that is not an object")
    errcode = data.get("errcode")
    if errcode is None:
        return data
    code = _errcode(errcode)
    if code is None:
        raise WeChatResponseError(f"{endpoint or 'WeChat'} answered with a malformed errcode")
    if code != 0:
        raise error_for(code, _storable(str(data.get("errmsg", ""))), endpoint)
    return data


def _errcode(value: object) -> int | None:
    """Read an errcode as WeChat means it (``40029``, ``40029.0``, ``"40029"``); None if it is no integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _storable(value: str) -> str:
    """Make a WeChat string storable: lone surrogates become U+FFFD and NULs (PostgreSQL refuses them) go.

    The UTF-16 round trip keeps a pair that arrived split into two code points as its one character.
    """
    value = value.replace("\x00", "")
    if _SURROGATE.search(value) is None:
        return value
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _text(data: dict[str, Any], key: str) -> str:
    """A string field, storable; a missing or non-string value is empty."""
    value = data.get(key)
    return _storable(value) if isinstance(value, str) else ""


def _integer(data: dict[str, Any], key: str, bounds: tuple[int, int], default: int = 0) -> int:
    """A number field clamped into ``bounds``; ``default`` if it is missing, non-finite or no number.

    Old bodies carry numbers as strings ("sex": "1"), and JSON allows 1e400 (inf), NaN and
    10**30: none of that may break a login.
    """
    value = data.get(key)
    if isinstance(value, float):
        if not math.isfinite(value):
            return default
        number = int(value)
    elif isinstance(value, (int, str)):
        try:
            number = int(value)
        except ValueError:
            return default
    else:
        return default
    low, high = bounds
    return min(max(number, low), high)


def _required(data: dict[str, Any], key: str, endpoint: str) -> str:
    """A string field the answer is useless without; missing, non-string or empty is a malformed answer."""
    value = _text(data, key)
    if not value:
        raise WeChatResponseError(f"{endpoint} answered without {key}")
    return value


@dataclass(frozen=True)
class Token:
    """A user access token from ``/sns/oauth2/access_token`` or ``/sns/oauth2/refresh_token``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    openid: str
    scope: str
    expires_at: int
    unionid: str | None = None
    is_snapshot_user: bool = False

    @classmethod
    def from_response(cls, data: dict[str, Any], now: float | None = None, endpoint: str = TOKEN_PATH) -> Token:
        """Build a token from a decoded success body; ``now`` anchors ``expires_in``."""
        issued = int(time.time() if now is None else now)
        return cls(
            access_token=_required(data, "access_token", endpoint),
            refresh_token=_text(data, "refresh_token"),
            openid=_required(data, "openid", endpoint),
            # A 2017 capture shows "snsapi_userinfo," with a trailing comma.
            scope=",".join(part for part in _text(data, "scope").split(",") if part),
            expires_at=issued + _integer(data, "expires_in", _EXPIRES_IN_RANGE, ACCESS_TOKEN_LIFETIME),
            unionid=_text(data, "unionid") or None,
            is_snapshot_user=_integer(data, "is_snapshotuser", _FLAG_RANGE) == 1,
        )

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes as a set."""
        return frozenset(self.scope.split(",")) - {""}


@dataclass(frozen=True)
class UserInfo:
    """A profile from ``/sns/userinfo``.

    Since 2021-10-20 WeChat sends ``sex`` 0 and empty region fields for everyone;
    ``headimgurl`` is empty without an avatar and dies when the user changes it.
    """

    openid: str
    nickname: str
    headimgurl: str
    unionid: str | None = None
    sex: int = 0
    province: str = ""
    city: str = ""
    country: str = ""
    language: str = ""
    privilege: tuple[str, ...] = ()

    @classmethod
    def from_response(cls, data: dict[str, Any], endpoint: str = USERINFO_PATH) -> UserInfo:
        """Build a profile from a decoded success body."""
        privilege = data.get("privilege")
        return cls(
            openid=_required(data, "openid", endpoint),
            nickname=_text(data, "nickname"),
            headimgurl=_text(data, "headimgurl"),
            unionid=_text(data, "unionid") or None,
            sex=_integer(data, "sex", _SEX_RANGE),
            province=_text(data, "province"),
            city=_text(data, "city"),
            country=_text(data, "country"),
            language=_text(data, "language"),
            privilege=tuple(_storable(str(item)) for item in privilege) if isinstance(privilege, list) else (),
        )


@dataclass(frozen=True)
class MiniProgramSession:
    """A mini program user's session from ``/sns/jscode2session``.

    ``session_key`` decrypts the user's encrypted data; it must stay on the server.
    """

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None

    @classmethod
    def from_response(cls, data: dict[str, Any], endpoint: str = JSCODE2SESSION_PATH) -> MiniProgramSession:
        """Build a session from a decoded success body."""
        return cls(
            openid=_required(data, "openid", endpoint),
            session_key=_required(data, "session_key", endpoint),
            unionid=_text(data, "unionid") or None,
        )


_WECHAT_UA: Final = re.compile(r"MicroMessenger/", re.IGNORECASE)
_WECOM_UA: Final = re.compile(r"wxwork/", re.IGNORECASE)


def is_wecom_browser(user_agent: str) -> bool:
    """Whether the User-Agent is the WeCom (企业微信) client's, which also says MicroMessenger."""
    return bool(_WECOM_UA.search(user_agent))


def is_wechat_browser(user_agent: str) -> bool:
    """Whether the User-Agent is WeChat's in-app browser (WeCom's, which also says MicroMessenger, is not)."""
    return bool(_WECHAT_UA.search(user_agent)) and not _WECOM_UA.search(user_agent)
