"""Signed login states that a callback can verify without the session cookie.

WeChat's in-app browser sometimes comes back from authorization without the
cookie it left with, so the ``state`` itself says what the callback needs: which
flow minted it, when, the ``next`` path when it is short, and an HMAC over all of
that plus the browser's User-Agent. It stays within WeChat's rule (hex digits
only, at most 128 characters). Single use is enforced by the shared store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import StateError
from .protocol import MAX_STATE_LENGTH

__all__ = ["LoginState", "StateCodec"]

_NONCE_BYTES = 12
_TIME_BYTES = 4
_MAC_BYTES = 16
_FIXED_BYTES = 1 + _NONCE_BYTES + _TIME_BYTES + _MAC_BYTES
#: Bytes of ``next`` that still fit in 128 hex characters.
MAX_EMBEDDED_NEXT = MAX_STATE_LENGTH // 2 - _FIXED_BYTES
_NEXT_ELSEWHERE = 0x01
#: Seconds a state may be dated in the future (clocks of several workers drift).
_CLOCK_SKEW = 60


def _derive(secret_key: bytes) -> bytes:
    # A key of its own, so a state's MAC can never double as a session signature.
    return hmac.new(secret_key, b"flask-wechat login state v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class LoginState:
    """What a verified state says."""

    nonce: str
    flow: int
    issued_at: int
    #: The ``next`` path, or ``None`` when it was too long and was kept in the store.
    next_url: str | None


class StateCodec:
    """Mints and verifies states with keys derived from the app's secret key(s).

    The first key signs; the others (Flask's ``SECRET_KEY_FALLBACKS``) still verify,
    so rotating ``SECRET_KEY`` does not break logins in flight.
    """

    def __init__(self, secret_keys: Sequence[str | bytes], lifetime: int, clock: Callable[[], float] = time.time):
        if not secret_keys or not all(secret_keys):
            raise ValueError("a non-empty secret key is needed to sign login states")
        self._keys = [
            hmac.new(
                key if isinstance(key, bytes) else key.encode(), b"flask-wechat login state v1", hashlib.sha256
            ).digest()
            for key in secret_keys
        ]
        self.lifetime = lifetime
        self.clock = clock

    def _mac(self, key: bytes, body: bytes, user_agent: str) -> bytes:
        browser = hashlib.sha256(user_agent.encode("utf-8", "replace")).digest()
        return hmac.new(key, body + browser, hashlib.sha256).digest()[:_MAC_BYTES]

    def mint(self, flow: int, next_url: str, user_agent: str) -> tuple[LoginState, str]:
        """A fresh state for ``flow`` and its wire form; ``next_url`` is embedded when it fits."""
        if not 0 <= flow < 16:
            raise ValueError("flow must be 0-15")
        encoded = next_url.encode()
        embedded = len(encoded) <= MAX_EMBEDDED_NEXT
        header = bytes([(flow << 4) | (0 if embedded else _NEXT_ELSEWHERE)])
        nonce = secrets.token_bytes(_NONCE_BYTES)
        issued = int(self.clock())
        body = header + nonce + issued.to_bytes(_TIME_BYTES, "big") + (encoded if embedded else b"")
        token = (body + self._mac(self._keys[0], body, user_agent)).hex()
        return LoginState(
            nonce=nonce.hex(), flow=flow, issued_at=issued, next_url=next_url if embedded else None
        ), token

    def verify(self, state: str, user_agent: str) -> LoginState:
        """Check signature, browser and age; raise :class:`StateError` on anything else."""
        if not 2 * _FIXED_BYTES <= len(state) <= MAX_STATE_LENGTH:
            raise StateError()
        try:
            raw = bytes.fromhex(state)
        except ValueError:
            raise StateError() from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not any(hmac.compare_digest(mac, self._mac(key, body, user_agent)) for key in self._keys):
            raise StateError()
        header, nonce = body[0], body[1 : 1 + _NONCE_BYTES]
        issued = int.from_bytes(body[1 + _NONCE_BYTES : _FIXED_BYTES - _MAC_BYTES], "big")
        now = self.clock()
        if not issued - _CLOCK_SKEW <= now < issued + self.lifetime:
            raise StateError()
        embedded = body[_FIXED_BYTES - _MAC_BYTES :]
        try:
            next_url = None if header & _NEXT_ELSEWHERE else embedded.decode()
        except UnicodeDecodeError:
            raise StateError() from None
        return LoginState(nonce=nonce.hex(), flow=header >> 4, issued_at=issued, next_url=next_url)
