"""The fake's ``/cgi-bin/*`` and ``/wxa/*`` answers: the server APIs that run on the app access token.

``/cgi-bin/token`` and ``/cgi-bin/stable_token`` issue app tokens (see :mod:`.apptokens`);
``getuserphonenumber`` (mini programs), ``user/info`` and ``ticket/getticket``
(Official Accounts) take one in the query string only. Bodies are POST JSON only, as
on WeChat; every refusal is an errcode (HTTP 200). The fake routes requests here and
holds its lock around each call; nothing here knows about HTTP beyond method, query
and body bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..serverapi import (
    APP_TOKEN_PATH,
    JSAPI_TICKET_PATH,
    PHONE_NUMBER_PATH,
    STABLE_TOKEN_PATH,
    USER_INFO_PATH,
    jssdk_signature,
)
from .accounts import AppKind, FakeUser
from .apptokens import AppTokenStore
from .grants import GrantStore, SnsError
from .interfaces import Directory
from .userdata import encrypt_user_data

__all__ = [
    "API_PATHS",
    "DEFAULT_REFUSED_IP",
    "IP_ERRCODES",
    "METHODS",
    "APICall",
    "IPRefusal",
    "ServerAPIs",
    "phone_info",
]

#: Endpoint name -> path, for ``fail_next`` and friends.
API_PATHS: Final = {
    "app_token": APP_TOKEN_PATH,
    "stable_token": STABLE_TOKEN_PATH,
    "phone_number": PHONE_NUMBER_PATH,
    "user_info": USER_INFO_PATH,
    "jsapi_ticket": JSAPI_TICKET_PATH,
}
#: The one method each endpoint accepts: the other is 43001 "require GET method" / 43002 "require POST method".
METHODS: Final = {
    "app_token": "GET",
    "stable_token": "POST",
    "phone_number": "POST",
    "user_info": "GET",
    "jsapi_ticket": "GET",
}
#: A documentation address (TEST-NET-3), never a real caller.
DEFAULT_REFUSED_IP: Final = "203.0.113.7"
#: What a call from an IP off the whitelist gets: 40164 (observed) or 61004 (the newer docs).
IP_ERRCODES: Final = (40164, 61004)
_SUBSCRIBE_SCENE: Final = "ADD_SCENE_QR_CODE"


@dataclass(frozen=True)
class APICall:
    """What a handler sees of one request: the method, the query (last value wins) and the raw body."""

    method: str
    params: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class IPRefusal:
    """The token endpoints refuse the caller's IP with ``errcode`` (see :meth:`ServerAPIs.refuse_ip`)."""

    ip: str
    errcode: int

    @property
    def text(self) -> str:
        """WeChat's 40164 errmsg for this IP, before the rid (61004 gets it too: see :meth:`ServerAPIs.refuse_ip`)."""
        address = ipaddress.ip_address(self.ip)
        mapped = f" ipv6 ::ffff:{self.ip}" if address.version == 4 else ""
        return f"invalid ip {self.ip}{mapped}, not in whitelist"


def phone_info(user: FakeUser, appid: str, now: float) -> dict[str, object]:
    """The ``phone_info`` WeChat gives a mini program: all strings, ``countryCode`` too, and a watermark.

    A number outside China carries its country code in ``phoneNumber`` (``+1 2025550123``:
    the exact spacing is UNCONFIRMED); ``purePhoneNumber`` never does.
    """
    pure = user.phone_number
    full = pure if user.country_code == "86" else f"+{user.country_code} {pure}"
    return {
        "phoneNumber": full,
        "purePhoneNumber": pure,
        "countryCode": user.country_code,
        "watermark": {"timestamp": int(now), "appid": appid},
    }


def _json_object(body: bytes) -> dict[str, Any]:
    """A POST body as WeChat reads it: JSON whatever the Content-Type; anything but an object is 47001.

    An empty body reads as ``{}`` (a code sent in the query string instead then gets 40029).
    """
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SnsError(47001) from None
    if not isinstance(data, dict):
        raise SnsError(47001)
    return data


def _text(data: Mapping[str, Any], key: str) -> str:
    """A string field of a JSON body; absent or null reads as ``""``, another type is 47001."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SnsError(47001)
    return value


def _subscribe_time(appid: str, user_key: str) -> int:
    # When the user followed: fixed per person and account, somewhere in 2017-2020.
    digest = hashlib.sha256(f"subscribe\x00{appid}\x00{user_key}".encode()).digest()
    return 1_500_000_000 + int.from_bytes(digest[:4], "big") % 100_000_000


class ServerAPIs:
    """The state and handlers behind the app-token APIs; not thread-safe on its own (the fake holds the lock)."""

    def __init__(self, directory: Directory, grants: GrantStore, tokens: AppTokenStore) -> None:
        self.directory = directory
        self.grants = grants
        self.tokens = tokens
        #: Set by :meth:`refuse_ip`: the token endpoints then refuse every call.
        self.refusal: IPRefusal | None = None

    def clear(self) -> None:
        """Forget tokens, tickets, counters and the IP refusal."""
        self.tokens.clear()
        self.refusal = None

    def refuse_ip(self, ip: str = DEFAULT_REFUSED_IP, errcode: int = 40164) -> None:
        """Make both token endpoints refuse the caller as ``ip``, off the whitelist, until :meth:`allow_ip`.

        Both errcodes carry 40164's errmsg (``invalid ip <ip> ipv6 ::ffff:<ip>, not in
        whitelist``), so a client's IP parsing is tested the same way; the 61004 text
        seen in the wild (``access clientip is not registered requestIP: <ip>``) is what
        ``fail_next(endpoint, 61004)`` sends.
        """
        if errcode not in IP_ERRCODES:
            raise ValueError(f"errcode must be one of {', '.join(map(str, IP_ERRCODES))}")
        ipaddress.ip_address(ip)  # ValueError for anything but an address
        self.refusal = IPRefusal(ip, errcode)

    def answer(self, endpoint: str, call: APICall) -> dict[str, object]:
        """The success body of ``endpoint`` for ``call``, or :class:`SnsError` with WeChat's errcode."""
        method = METHODS[endpoint]
        if call.method != method:
            raise SnsError(43001 if method == "GET" else 43002)
        return self._HANDLERS[endpoint](self, call)

    # -- app tokens ---------------------------------------------------------------------------

    def _check_ip(self) -> None:
        if self.refusal is not None:
            raise SnsError(self.refusal.errcode, self.refusal.text)

    def _app_token(self, call: APICall) -> dict[str, object]:
        """``GET /cgi-bin/token``: secret, appid, the pair, then grant_type; a new token each call."""
        self._check_ip()
        params = call.params
        secret, appid = params.get("secret", ""), params.get("appid", "")
        if not secret:
            raise SnsError(41004)
        if not appid:
            raise SnsError(41002)
        app = self.directory.apps.get(appid)
        if app is None:
            raise SnsError(40013)
        if secret != app.secret:
            raise SnsError(40001)  # this endpoint's code for a wrong AppSecret
        if params.get("grant_type") != "client_credential":
            raise SnsError(40002)
        token, expires_in = self.tokens.issue(app.appid, app.kind)
        return {"access_token": token, "expires_in": expires_in}

    def _stable_token(self, call: APICall) -> dict[str, object]:
        """``POST /cgi-bin/stable_token`` with a JSON body: appid, then secret, then grant_type."""
        self._check_ip()
        data = _json_object(call.body)
        appid, secret, grant_type = _text(data, "appid"), _text(data, "secret"), _text(data, "grant_type")
        force = data.get("force_refresh", False)
        if not isinstance(force, bool):
            raise SnsError(47001)
        if not appid:
            raise SnsError(41002)
        app = self.directory.apps.get(appid)
        if app is None:
            raise SnsError(40013)
        if not secret:
            raise SnsError(41004)
        if secret != app.secret:
            raise SnsError(40125)
        if grant_type != "client_credential":
            raise SnsError(40002)
        token, expires_in = self.tokens.stable(app.appid, app.kind, force=force)
        return {"access_token": token, "expires_in": expires_in}

    def _token_app(self, call: APICall, kind: AppKind) -> str:
        return self.tokens.check(call.params.get("access_token", ""), kind)

    # -- APIs on the token --------------------------------------------------------------------

    def _phone_number(self, call: APICall) -> dict[str, object]:
        """``POST /wxa/business/getuserphonenumber``: a mini program token, a single-use code in the body."""
        appid = self._token_app(call, "miniprogram")
        data = _json_object(call.body)
        code = _text(data, "code")
        if not code:
            raise SnsError(40029)
        openid = data.get("openid")
        user_key = self.grants.redeem_phone_code(appid, code, openid if isinstance(openid, str) and openid else None)
        info = phone_info(self.directory.users[user_key], appid, self.tokens.clock())
        return {"errcode": 0, "errmsg": "ok", "phone_info": info}

    def _find_user(self, appid: str, openid: str) -> tuple[FakeUser, bool]:
        """The user behind ``openid`` under ``appid``, and whether it is a snapshot-page virtual openid."""
        for user in self.directory.users.values():
            if openid == self.directory.openid_for(appid, user.key):
                return user, user.snapshot
            if openid == self.directory.openid_for(appid, user.key, snapshot=True):
                return user, True
        raise SnsError(40003)

    def _user_info(self, call: APICall) -> dict[str, object]:
        """``GET /cgi-bin/user/info``: an Official Account token and one of its openids.

        A follower gets the post-2021-12-27 shape (profile fields present but empty,
        unionid when the account is bound); anyone else ``{"subscribe": 0, "openid": ...}``
        only (no unionid: UNCONFIRMED).
        """
        appid = self._token_app(call, "official_account")
        openid = call.params.get("openid", "")
        if not openid:
            raise SnsError(40003)
        user, virtual = self._find_user(appid, openid)
        if virtual or not user.follows:
            return {"subscribe": 0, "openid": openid}
        body: dict[str, object] = {
            "subscribe": 1,
            "openid": openid,
            "nickname": "",
            "sex": 0,
            "language": "zh_CN",
            "city": "",
            "province": "",
            "country": "",
            "headimgurl": "",
            "subscribe_time": _subscribe_time(appid, user.key),
        }
        unionid = self.directory.unionid_for(appid, user.key)
        if unionid is not None:
            body["unionid"] = unionid
        body |= {
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": _SUBSCRIBE_SCENE,
            "qr_scene": 0,
            "qr_scene_str": "",
        }
        return body

    def _jsapi_ticket(self, call: APICall) -> dict[str, object]:
        """``GET /cgi-bin/ticket/getticket``: an Official Account token, ``type=jsapi`` (or ``wx_card``).

        Each call issues a new ticket and earlier ones stay valid until their own
        expiry (UNCONFIRMED: WeChat's documentation does not say).
        """
        appid = self._token_app(call, "official_account")
        ticket, expires_in = self.tokens.issue_ticket(appid, call.params.get("type", ""))
        return {"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": expires_in}

    _HANDLERS: Final[dict[str, Callable[[ServerAPIs, APICall], dict[str, object]]]] = {
        "app_token": _app_token,
        "stable_token": _stable_token,
        "phone_number": _phone_number,
        "user_info": _user_info,
        "jsapi_ticket": _jsapi_ticket,
    }

    # -- helpers the fake exposes -------------------------------------------------------------

    def encrypted_phone(self, appid: str, user_key: str) -> tuple[str, str]:
        """``(encryptedData, iv)`` of the user's phone number, sealed with their latest ``session_key``."""
        session_key = self.grants.session_key(appid, user_key)
        if session_key is None:
            raise ValueError(
                f"{user_key!r} has no session with {appid} yet: log in with a wx.login() code (jscode2session) first"
            )
        info = phone_info(self.directory.users[user_key], appid, self.tokens.clock())
        return encrypt_user_data(session_key, info)

    def verify_jssdk(self, appid: str, timestamp: int | str, noncestr: str, signature: str, url: str) -> bool:
        """Whether ``signature`` signs these fields with any unexpired jsapi_ticket issued to ``appid``."""
        if isinstance(timestamp, bool):
            return False
        if isinstance(timestamp, str):
            if not (timestamp.isascii() and timestamp.isdigit()) or str(int(timestamp)) != timestamp:
                return False
            timestamp = int(timestamp)
        sent = signature.encode("utf-8")
        return any(
            hmac.compare_digest(jssdk_signature(ticket, noncestr, timestamp, url).encode("ascii"), sent)
            for ticket in self.tokens.tickets(appid, "jsapi")
        )
