"""Codes and tokens of the fake WeChat: their lifetimes and the errcodes they end in.

Pure bookkeeping driven by an injectable clock, so tests can expire a code or a
token without sleeping. Not thread-safe on its own: :class:`FakeWeChat` holds the lock
(except :class:`ShiftedClock`, which other threads read while the fake answers).
"""

from __future__ import annotations

import base64
import math
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .. import protocol

__all__ = [
    "JS_CODE_LIFETIME",
    "PHONE_CODE_LIFETIME",
    "Grant",
    "GrantStore",
    "ShiftedClock",
    "SnsError",
    "new_code",
    "new_phone_code",
    "new_session_key",
    "new_token",
]

_CODE_ALPHABET: Final = string.ascii_letters + string.digits
#: A ``wx.login()`` code lives 5 minutes, like an OA code.
JS_CODE_LIFETIME: Final = 300
#: A phone-number button's code lives 5 minutes and is single use.
PHONE_CODE_LIFETIME: Final = 300


class SnsError(Exception):
    """A WeChat API call fails with this errcode; ``text`` replaces WeChat's usual errmsg (a rid is added)."""

    def __init__(self, errcode: int, text: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.text = text


class ShiftedClock:
    """A time source plus an offset that only grows: :meth:`advance` moves the fake's time forward.

    Tests and demos skip hours (a token's lifetime, a fake day) without sleeping and
    without replacing the clock the fake was built with. Thread-safe.
    """

    def __init__(self, source: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._source = source
        self._offset = 0.0

    @property
    def source(self) -> Callable[[], float]:
        """The underlying time source (``time.time`` unless the fake was given another)."""
        return self._source

    @source.setter
    def source(self, source: Callable[[], float]) -> None:
        with self._lock:
            self._source = source

    def __call__(self) -> float:
        with self._lock:
            source, offset = self._source, self._offset
        return source() + offset

    def advance(self, seconds: float) -> float:
        """Move the time forward by ``seconds`` (never back) and return the new time."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise ValueError("seconds must be a finite number")
        if seconds < 0:
            raise ValueError("the fake's time only moves forward")
        with self._lock:
            self._offset += seconds
        return self()


def new_code() -> str:
    """A 32-character code like ``041jxx0w3giqR43pMV3w3Uv6vC2jxx07``."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(32))


def new_token() -> str:
    """A user token shaped like WeChat's: ``NN_`` and ~107 characters of ``[A-Za-z0-9_-]``."""
    return f"{secrets.randbelow(90) + 10}_{secrets.token_urlsafe(81)[:107]}"


def new_session_key() -> str:
    """A mini program ``session_key``: 16 random bytes in standard base64 (24 characters)."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def new_phone_code() -> str:
    """A phone-number button's code: 64 hex digits, like the documentation's example."""
    return secrets.token_hex(32)


@dataclass
class _Code:
    appid: str
    user_key: str
    openid: str
    scope: str
    expires_at: float
    used: bool = False
    snapshot: bool = False


@dataclass
class Grant:
    """One authorization: a refresh token and its current access token."""

    appid: str
    user_key: str
    openid: str
    scope: str
    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float
    access_killed: bool = False
    refresh_killed: bool = False
    #: A snapshot-page virtual identity: the token body says ``is_snapshotuser: 1``.
    snapshot: bool = False


class GrantStore:
    """Every code, access token and refresh token the fake has issued."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._codes: dict[str, _Code] = {}
        self._js_codes: dict[str, _Code] = {}
        self._by_access: dict[str, Grant] = {}
        self._by_refresh: dict[str, Grant] = {}
        self._phone_codes: dict[str, _Code] = {}
        self._session_keys: dict[tuple[str, str], str] = {}

    def clear(self) -> None:
        """Forget everything issued so far."""
        self._codes.clear()
        self._js_codes.clear()
        self._by_access.clear()
        self._by_refresh.clear()
        self._phone_codes.clear()
        self._session_keys.clear()

    def issue_session_key(self, appid: str, user_key: str) -> str:
        """A new ``session_key`` for a ``jscode2session`` answer, remembered as the user's latest one.

        WeChat may hand out a new key on each login; legacy ``encryptedData`` is sealed
        with the latest, so an app that kept an older key cannot open it.
        """
        key = new_session_key()
        self._session_keys[(appid, user_key)] = key
        return key

    def session_key(self, appid: str, user_key: str) -> str | None:
        """The last ``session_key`` given out for this user of this mini program, if any."""
        return self._session_keys.get((appid, user_key))

    def issue_phone_code(self, appid: str, user_key: str, openid: str) -> str:
        """Mint the code a phone-number button gives (single use, 300 s, only ``getuserphonenumber`` takes it)."""
        code = new_phone_code()
        self._phone_codes[code] = _Code(appid, user_key, openid, "", self.clock() + PHONE_CODE_LIFETIME)
        return code

    def redeem_phone_code(self, appid: str, code: str, openid: str | None = None) -> str:
        """The user_key behind a phone code: 40029 if unknown, another app's, expired or used.

        ``openid`` (optional in the request) must be the code's user's, else 40003 and
        the code stays usable.
        """
        entry = self._phone_codes.get(code)
        if entry is None or entry.appid != appid or entry.used or self.clock() >= entry.expires_at:
            raise SnsError(40029)
        if openid is not None and openid != entry.openid:
            raise SnsError(40003)
        entry.used = True
        return entry.user_key

    def issue_code(
        self,
        appid: str,
        user_key: str,
        openid: str,
        scope: str,
        *,
        lifetime: float = protocol.OA_CODE_LIFETIME,
        snapshot: bool = False,
    ) -> str:
        """Mint a single-use code, as WeChat does when the user consents (QR login codes live 600 s)."""
        code = new_code()
        self._codes[code] = _Code(appid, user_key, openid, scope, self.clock() + lifetime, snapshot=snapshot)
        return code

    def issue_js_code(self, appid: str, user_key: str, openid: str) -> str:
        """Mint a single-use ``wx.login()`` code; only ``/sns/jscode2session`` redeems it."""
        code = new_code()
        self._js_codes[code] = _Code(appid, user_key, openid, "", self.clock() + JS_CODE_LIFETIME)
        return code

    def redeem_js_code(self, appid: str, code: str, blocked: Callable[[str], bool]) -> tuple[str, str]:
        """``(user_key, openid)`` of a ``wx.login()`` code: 40029 unknown/expired/other app, 40163 used.

        ``blocked(user_key)`` true answers 40226 (high-risk user) and leaves the code unused.
        """
        entry = self._js_codes.get(code)
        if entry is None or entry.appid != appid:
            raise SnsError(40029)
        if entry.used:
            raise SnsError(40163)
        if self.clock() >= entry.expires_at:
            raise SnsError(40029)
        if blocked(entry.user_key):
            raise SnsError(40226)
        entry.used = True
        return entry.user_key, entry.openid

    def redeem(self, appid: str, code: str) -> Grant:
        """Exchange a code for a new grant: 40029 if unknown, expired or another app's; 40163 if used."""
        entry = self._codes.get(code)
        if entry is None or entry.appid != appid:
            raise SnsError(40029)
        if entry.used:
            raise SnsError(40163)
        now = self.clock()
        if now >= entry.expires_at:
            raise SnsError(40029)
        entry.used = True
        grant = Grant(
            appid=appid,
            user_key=entry.user_key,
            openid=entry.openid,
            scope=entry.scope,
            access_token=new_token(),
            access_expires_at=now + protocol.ACCESS_TOKEN_LIFETIME,
            refresh_token=new_token(),
            refresh_expires_at=now + protocol.REFRESH_TOKEN_LIFETIME,
            snapshot=entry.snapshot,
        )
        self._by_access[grant.access_token] = grant
        self._by_refresh[grant.refresh_token] = grant
        return grant

    def refresh(self, appid: str, refresh_token: str) -> Grant:
        """Renew the access token of a grant (40030 unknown, 42002 expired).

        WeChat: a still-valid access token comes back unchanged with a renewed
        expiry; an expired one is replaced (the old value then answers 40001).
        The refresh token itself is returned unchanged and never extended.
        """
        grant = self._by_refresh.get(refresh_token)
        if grant is None or grant.appid != appid:
            raise SnsError(40030)
        now = self.clock()
        if grant.refresh_killed or now >= grant.refresh_expires_at:
            raise SnsError(42002)
        if self._access_expired(grant, now):
            del self._by_access[grant.access_token]
            grant.access_token = new_token()
            grant.access_killed = False
            self._by_access[grant.access_token] = grant
        grant.access_expires_at = now + protocol.ACCESS_TOKEN_LIFETIME
        return grant

    def check_access(self, access_token: str, openid: str) -> Grant:
        """The grant behind a usable access token (40001 unknown, 42001 expired, 40003 other openid)."""
        grant = self._by_access.get(access_token)
        if grant is None:
            raise SnsError(40001)
        if self._access_expired(grant, self.clock()):
            raise SnsError(42001)
        if openid != grant.openid:
            raise SnsError(40003)
        return grant

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far answer 42001."""
        for grant in self._by_access.values():
            grant.access_killed = True

    def expire_refresh_tokens(self) -> None:
        """Make every refresh token issued so far answer 42002."""
        for grant in self._by_refresh.values():
            grant.refresh_killed = True

    @staticmethod
    def _access_expired(grant: Grant, now: float) -> bool:
        return grant.access_killed or now >= grant.access_expires_at
