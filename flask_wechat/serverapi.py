"""WeChat's server APIs that run on the *app* access token, framework-free.

The client-credential token (``/cgi-bin/stable_token`` or ``/cgi-bin/token``), the mini
program's phone number (``/wxa/business/getuserphonenumber`` and the legacy
``encryptedData``), a follower's ``/cgi-bin/user/info`` and the JS-SDK ``jsapi_ticket``
with its ``wx.config`` signature: paths, request bodies and typed results. Nothing
here imports Flask, Authlib or requests.

WeChat docs: https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar

from .errors import UserDataError, WeChatResponseError

__all__ = [
    "APP_TOKEN_ENDPOINTS",
    "APP_TOKEN_PATH",
    "JSAPI_TICKET_PATH",
    "PHONE_NUMBER_PATH",
    "STABLE_TOKEN_PATH",
    "TOKEN_OVERLAP",
    "USER_INFO_PATH",
    "AppToken",
    "Follower",
    "JsapiTicket",
    "PhoneNumber",
    "app_token_query",
    "decrypt_user_data",
    "jssdk_signature",
    "stable_token_body",
]

APP_TOKEN_PATH: Final = "/cgi-bin/token"
STABLE_TOKEN_PATH: Final = "/cgi-bin/stable_token"
PHONE_NUMBER_PATH: Final = "/wxa/business/getuserphonenumber"
USER_INFO_PATH: Final = "/cgi-bin/user/info"
JSAPI_TICKET_PATH: Final = "/cgi-bin/ticket/getticket"
#: ``WECHAT_APP_TOKEN_ENDPOINT`` values and the path each one calls.
APP_TOKEN_ENDPOINTS: Final = {"stable_token": STABLE_TOKEN_PATH, "token": APP_TOKEN_PATH}
#: Seconds of overlap WeChat grants: a ``/cgi-bin/token`` call leaves the previous token usable this
#: long, and ``stable_token`` hands out a new token only in the last this-many seconds of the old one.
TOKEN_OVERLAP: Final = 300
#: What WeChat says its tokens and tickets live when an answer leaves ``expires_in`` out.
DEFAULT_LIFETIME: Final = 7200
#: A lifetime outside this range is not WeChat's (a stable token always has at least 300 s left).
_LIFETIME_RANGE: Final = (1, 24 * 3600)


def app_token_query(appid: str, secret: str) -> dict[str, str]:
    """The query of ``GET /cgi-bin/token`` (each call issues a new token)."""
    return {"grant_type": "client_credential", "appid": appid, "secret": secret}


def stable_token_body(appid: str, secret: str, *, force_refresh: bool = False) -> dict[str, Any]:
    """The JSON body of ``POST /cgi-bin/stable_token``; ``force_refresh`` is limited to 20 a day."""
    return {"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force_refresh}


def _required_text(data: dict[str, Any], key: str, endpoint: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WeChatResponseError(f"WeChat {endpoint} answered without {key}")
    return value


def _lifetime(data: dict[str, Any], endpoint: str) -> int:
    value = data.get("expires_in", DEFAULT_LIFETIME)
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise WeChatResponseError(f"WeChat {endpoint} answered a malformed expires_in") from None
    low, high = _LIFETIME_RANGE
    if not low <= seconds <= high:
        raise WeChatResponseError(f"WeChat {endpoint} answered expires_in {seconds}")
    return seconds


@dataclass(frozen=True)
class AppToken:
    """An access token (WeChat's app token, WeCom's corp token) and the seconds it has left when issued."""

    value: str = field(repr=False)
    expires_in: int

    #: The body's field that holds the value.
    FIELD: ClassVar[str] = "access_token"

    @classmethod
    def from_response(cls: type[_Credential], data: dict[str, Any], endpoint: str = STABLE_TOKEN_PATH) -> _Credential:
        """From ``/cgi-bin/token`` or ``/cgi-bin/stable_token`` (whose ``expires_in`` is what is left)."""
        return cls(_required_text(data, cls.FIELD, endpoint), _lifetime(data, endpoint))


_Credential = TypeVar("_Credential", bound=AppToken)


class JsapiTicket(AppToken):
    """A JS-SDK ``jsapi_ticket`` (``/cgi-bin/ticket/getticket``): it signs ``wx.config``, never sent to a browser."""

    FIELD = "ticket"


@dataclass(frozen=True)
class PhoneNumber:
    """A mini program user's phone number, as WeChat gave it (all strings).

    ``phone_number`` carries the country code for numbers outside China; ``country_code``
    arrives as a string in real answers and as a number in the documentation's example.
    """

    phone_number: str = field(repr=False)
    pure_phone_number: str = field(repr=False)
    country_code: str

    @classmethod
    def from_response(cls, data: dict[str, Any], endpoint: str = PHONE_NUMBER_PATH) -> PhoneNumber:
        """From ``getuserphonenumber``'s ``phone_info``."""
        info = data.get("phone_info")
        if not isinstance(info, dict):
            raise WeChatResponseError(f"WeChat {endpoint} answered without phone_info")
        return cls._from_info(info, endpoint)

    @classmethod
    def from_user_data(cls, data: dict[str, Any], appid: str) -> PhoneNumber:
        """From decrypted legacy ``encryptedData``, whose watermark must name this mini program."""
        watermark = data.get("watermark")
        if not isinstance(watermark, dict) or watermark.get("appid") != appid:
            raise UserDataError("the encrypted data was made for another app")
        try:
            return cls._from_info(data, "encryptedData")
        except WeChatResponseError:
            raise UserDataError("the encrypted data holds no phone number") from None

    @classmethod
    def _from_info(cls, info: dict[str, Any], endpoint: str) -> PhoneNumber:
        country = info.get("countryCode")
        if isinstance(country, bool) or not isinstance(country, (str, int)) or str(country) == "":
            raise WeChatResponseError(f"WeChat {endpoint} answered without countryCode")
        return cls(
            _required_text(info, "phoneNumber", endpoint),
            _required_text(info, "purePhoneNumber", endpoint),
            str(country),
        )

    def as_json(self) -> dict[str, str]:
        """The answer of ``POST /wechat/miniprogram/phone``."""
        return {
            "phone_number": self.phone_number,
            "pure_phone_number": self.pure_phone_number,
            "country_code": self.country_code,
        }


@dataclass(frozen=True)
class Follower:
    """What ``/cgi-bin/user/info`` says of an openid: following or not, and the unionid when it knows it.

    Since 2021-12-27 its nickname and avatar are always empty: they are not read.
    """

    openid: str
    subscribed: bool
    unionid: str | None = None

    @classmethod
    def from_response(cls, data: dict[str, Any], endpoint: str = USER_INFO_PATH) -> Follower:
        """From a decoded success body (no errcode in it)."""
        unionid = data.get("unionid")
        return cls(
            openid=_required_text(data, "openid", endpoint),
            subscribed=data.get("subscribe") in (1, "1"),
            # The documentation's example starts its unionid with a space.
            unionid=unionid.strip() or None if isinstance(unionid, str) else None,
        )


def jssdk_signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """``wx.config``'s signature: SHA-1 of the four fields in ASCII order, unescaped.

    ``url`` is the page's address without ``#`` and what follows, exactly as the browser has it.
    """
    fields = {"jsapi_ticket": ticket, "noncestr": noncestr, "timestamp": str(timestamp), "url": url}
    plain = "&".join(f"{key}={fields[key]}" for key in sorted(fields))
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's algorithm, not ours


_BLOCK: Final = 16


def decrypt_user_data(session_key: str, encrypted_data: str, iv: str) -> dict[str, Any]:
    """Open a mini program's legacy ``encryptedData``: AES-128-CBC with the ``session_key``, PKCS#7.

    Any malformed input or a key that does not fit (``wx.login`` since) is a
    :class:`~flask_wechat.errors.UserDataError`, never a crash.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        key = base64.b64decode(session_key, validate=True)
        vector = base64.b64decode(iv, validate=True)
        sealed = base64.b64decode(encrypted_data, validate=True)
    except (binascii.Error, ValueError):
        raise UserDataError("encryptedData, iv or the session key is not base64") from None
    if len(key) != _BLOCK or len(vector) != _BLOCK or not sealed or len(sealed) % _BLOCK:
        raise UserDataError("encryptedData or iv has the wrong length")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(vector)).decryptor()
    plain = decryptor.update(sealed) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise UserDataError("the data does not open with this session key (log in again with wx.login)")
    try:
        data = json.loads(plain[:-pad].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UserDataError("the data does not open with this session key (log in again with wx.login)") from None
    if not isinstance(data, dict):
        raise UserDataError("the encrypted data is not a JSON object")
    return data
