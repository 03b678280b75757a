"""The login ``state``: what it says (signed), and this browser's part in it (the session).

A state names the flow that minted it, whether it binds or logs in, whether it is
already a second start, when it was issued and the ``next`` path when that is short,
under an HMAC keyed from the app's secret key. It stays within WeChat's rule (hex
digits only, at most 128 characters).

The signature says the state is ours; only the session says this browser started it.
:class:`BrowserLogins` keeps, in the session, the nonces of logins this browser started
(pending) and of those it completed (done), and a callback is accepted only for one of
them: a state planted in another browser, or a used callback URL loaded elsewhere, is
never enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flask import session

from .errors import StateError
from .protocol import MAX_STATE_LENGTH

__all__ = ["BrowserLogins", "SignedState", "StateCodec"]

_NONCE_BYTES: Final = 12
_TIME_BYTES: Final = 4
_MAC_BYTES: Final = 16
_FIXED_BYTES: Final = 1 + _NONCE_BYTES + _TIME_BYTES + _MAC_BYTES
#: Bytes of ``next`` that still fit in 128 hex characters.
MAX_EMBEDDED_NEXT: Final = MAX_STATE_LENGTH // 2 - _FIXED_BYTES
# Low bits of the header byte; the high four bits are the flow's number.
_NEXT_ELSEWHERE: Final = 0x01
_BIND: Final = 0x02
_RESTARTED: Final = 0x04
#: Seconds a state may be dated in the future (clocks of several workers drift).
_CLOCK_SKEW: Final = 60
#: v2: the browser's session, not its User-Agent, binds a state to a browser.
_KEY_LABEL: Final = b"flask-wechat login state v2"

#: Session keys: this browser's started and completed logins, ``[[nonce, expiry], ...]``, oldest first.
PENDING_KEY: Final = "_wechat_pending"
DONE_KEY: Final = "_wechat_done"
#: Completed logins remembered per session, to answer WeChat's second callback of one login.
MAX_DONE: Final = 4


@dataclass(frozen=True)
class SignedState:
    """What a verified state says."""

    nonce: str
    flow: int
    bind: bool
    #: This login is already the one fresh start a callback without its session gets.
    restarted: bool
    issued_at: int
    #: The ``next`` path, or ``None`` when it was too long and was kept in the shared store.
    next_url: str | None
    #: When the login stops being accepted (``issued_at`` + the codec's lifetime).
    expires_at: int


class StateCodec:
    """Mints and verifies states with keys derived from the app's secret key(s).

    The first key signs; the others (Flask's ``SECRET_KEY_FALLBACKS``) still verify,
    so rotating ``SECRET_KEY`` does not break logins in flight.
    """

    def __init__(self, secret_keys: Sequence[str | bytes], lifetime: int, clock: Callable[[], float] = time.time):
        if not secret_keys or not all(secret_keys):
            raise ValueError("a non-empty secret key is needed to sign login states")
        self._keys = [
            hmac.new(key if isinstance(key, bytes) else key.encode(), _KEY_LABEL, hashlib.sha256).digest()
            for key in secret_keys
        ]
        self.lifetime = lifetime
        self.clock = clock

    @staticmethod
    def _mac(key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def mint(self, flow: int, next_url: str, *, bind: bool = False, restarted: bool = False) -> tuple[SignedState, str]:
        """A fresh state for ``flow`` and its wire form; ``next_url`` is embedded when it fits."""
        if not 0 <= flow < 16:
            raise ValueError("flow must be 0-15")
        encoded = next_url.encode()
        embedded = len(encoded) <= MAX_EMBEDDED_NEXT
        flags = (0 if embedded else _NEXT_ELSEWHERE) | (_BIND if bind else 0) | (_RESTARTED if restarted else 0)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        issued = int(self.clock())
        body = bytes([(flow << 4) | flags]) + nonce + issued.to_bytes(_TIME_BYTES, "big")
        body += encoded if embedded else b""
        signed = SignedState(
            nonce.hex(), flow, bind, restarted, issued, next_url if embedded else None, issued + self.lifetime
        )
        return signed, (body + self._mac(self._keys[0], body)).hex()

    def verify(self, state: str) -> SignedState:
        """Check signature and age; raise :class:`StateError` on anything else."""
        if not 2 * _FIXED_BYTES <= len(state) <= MAX_STATE_LENGTH:
            raise StateError()
        try:
            raw = bytes.fromhex(state)
        except ValueError:
            raise StateError() from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not any(hmac.compare_digest(mac, self._mac(key, body)) for key in self._keys):
            raise StateError()
        header, nonce = body[0], body[1 : 1 + _NONCE_BYTES]
        issued = int.from_bytes(body[1 + _NONCE_BYTES : _FIXED_BYTES - _MAC_BYTES], "big")
        if not issued - _CLOCK_SKEW <= self.clock() < issued + self.lifetime:
            raise StateError()
        try:
            next_url = None if header & _NEXT_ELSEWHERE else body[_FIXED_BYTES - _MAC_BYTES :].decode()
        except UnicodeDecodeError:
            raise StateError() from None
        flags = (bool(header & _BIND), bool(header & _RESTARTED))
        return SignedState(nonce.hex(), header >> 4, *flags, issued, next_url, issued + self.lifetime)


class BrowserLogins:
    """This browser's logins, kept in its session: the ones it started and the ones it completed."""

    def __init__(self, max_pending: int, clock: Callable[[], float] = time.time) -> None:
        self.max_pending = max_pending
        self.clock = clock

    def _entries(self, key: str) -> list[list[Any]]:
        stored = session.get(key)
        if not isinstance(stored, list):
            return []
        now = self.clock()
        return [e for e in stored if isinstance(e, list) and len(e) == 2 and isinstance(e[1], int) and e[1] > now]

    def _save(self, key: str, entries: list[list[Any]], limit: int) -> None:
        if entries:
            session[key] = entries[-limit:]
        else:
            session.pop(key, None)

    def started(self, login: SignedState) -> None:
        """Remember a login this browser is starting (the oldest ones go past ``max_pending``)."""
        self._save(PENDING_KEY, [*self._entries(PENDING_KEY), [login.nonce, login.expires_at]], self.max_pending)

    def is_pending(self, nonce: str) -> bool:
        """Whether this browser started the login and has not completed it."""
        return any(entry[0] == nonce for entry in self._entries(PENDING_KEY))

    def is_done(self, nonce: str) -> bool:
        """Whether this browser completed the login (a second callback of it may follow)."""
        return any(entry[0] == nonce for entry in self._entries(DONE_KEY))

    def completed(self, login: SignedState) -> None:
        """Move a login from pending to done (call after any session renewal, which clears both)."""
        self._save(PENDING_KEY, [e for e in self._entries(PENDING_KEY) if e[0] != login.nonce], self.max_pending)
        done = [e for e in self._entries(DONE_KEY) if e[0] != login.nonce]
        self._save(DONE_KEY, [*done, [login.nonce, login.expires_at]], MAX_DONE)

    @staticmethod
    def forget() -> None:
        """Drop every login this browser started or completed (logout)."""
        session.pop(PENDING_KEY, None)
        session.pop(DONE_KEY, None)
