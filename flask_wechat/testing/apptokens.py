"""App access tokens and JS-SDK tickets of the fake WeChat: how they rotate, and the errcodes they end in.

Two token families per app, independent of each other as WeChat documents them:
``/cgi-bin/token`` mints a new token on every call and leaves the previous one five
more minutes; ``/cgi-bin/stable_token`` hands out the same token until its last five
minutes, or a new one at once on ``force_refresh`` (20 a day, 30 s apart). Pure
bookkeeping on an injectable clock; not thread-safe on its own: the fake holds the lock.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ..serverapi import DEFAULT_LIFETIME, TOKEN_OVERLAP
from . import wire
from .accounts import AppKind
from .grants import SnsError
from .interfaces import TokenFamily

__all__ = [
    "FORCE_REFRESHES_PER_DAY",
    "FORCE_REFRESH_SPACING",
    "TICKET_TYPES",
    "AppTokenStore",
    "TokenFamily",
    "fake_day",
    "new_app_token",
    "new_ticket",
]

#: ``force_refresh: true`` refreshes at most this often a day; the next one is 45009.
FORCE_REFRESHES_PER_DAY: Final = 20
#: A force refresh this soon after the previous one changes nothing ("否则不会刷新").
FORCE_REFRESH_SPACING: Final = 30
#: ``/cgi-bin/ticket/getticket`` types: the JS-SDK's and the card API's.
TICKET_TYPES: Final = ("jsapi", "wx_card")
_DAY: Final = 86400
#: WeChat's daily quotas reset at midnight Beijing time (UTC+8).
_BEIJING: Final = 8 * 3600
_STALE_TEXT: Final = wire.ERRMSGS[40001] + wire.STABLE_TOKEN_HINT
_QUOTA_TEXT: Final = wire.ERRMSGS[45009] + wire.STABLE_TOKEN_HINT


def fake_day(now: float) -> int:
    """The day number ``now`` falls in, for daily quotas (days start at midnight in Beijing)."""
    return int((now + _BEIJING) // _DAY)


def new_app_token() -> str:
    """An app access token shaped like WeChat's: ``86_`` and 140 characters of ``[A-Za-z0-9_-]``."""
    return "86_" + secrets.token_urlsafe(105)


def new_ticket() -> str:
    """A ``jsapi_ticket`` shaped like the documentation's: 86 characters of ``[A-Za-z0-9_-]``."""
    return secrets.token_urlsafe(64)


@dataclass
class _AppToken:
    value: str
    appid: str
    kind: AppKind
    family: TokenFamily
    expires_at: float
    #: From then on the token answers 40001 (superseded or force-invalidated); inf: never.
    killed_at: float = math.inf
    #: Set by the test knobs: ``"expired"`` answers 42001, ``"revoked"`` 40001 from now on.
    knocked_out: Literal["", "expired", "revoked"] = ""


@dataclass(frozen=True)
class _Ticket:
    appid: str
    ticket_type: str
    value: str
    expires_at: float


class AppTokenStore:
    """Every app access token and ticket issued, and the counters tests and benchmarks read."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        #: ``/cgi-bin/token`` successes allowed per app per fake day; None: unlimited.
        self.token_quota: int | None = None
        #: API calls refused with 40001/42001 because their token was superseded, expired or revoked.
        self.stale_calls = 0
        self._tokens: dict[str, _AppToken] = {}
        self._latest: dict[tuple[str, TokenFamily], _AppToken] = {}
        self._issued: Counter[tuple[str, TokenFamily]] = Counter()
        self._daily_tokens: Counter[tuple[str, int]] = Counter()
        self._forces: Counter[str] = Counter()
        self._daily_forces: Counter[tuple[str, int]] = Counter()
        self._last_force: dict[str, float] = {}
        self._tickets: list[_Ticket] = []

    def clear(self) -> None:
        """Forget every token, ticket and count (the quota setting stays)."""
        self.stale_calls = 0
        for table in (self._tokens, self._latest, self._last_force):
            table.clear()
        for counter in (self._issued, self._daily_tokens, self._forces, self._daily_forces):
            counter.clear()
        self._tickets.clear()

    # -- issuing ------------------------------------------------------------------------------

    def _mint(self, appid: str, kind: AppKind, family: TokenFamily, now: float) -> _AppToken:
        token = _AppToken(new_app_token(), appid, kind, family, now + DEFAULT_LIFETIME)
        self._tokens[token.value] = self._latest[(appid, family)] = token
        self._issued[(appid, family)] += 1
        return token

    @staticmethod
    def _answer(token: _AppToken, now: float) -> tuple[str, int]:
        return token.value, max(0, int(token.expires_at - now))

    def issue(self, appid: str, kind: AppKind) -> tuple[str, int]:
        """``/cgi-bin/token``: a new token; the previous one lives on for at most five minutes.

        45009 once :attr:`token_quota` tokens were issued to the app on this fake day.
        """
        now = self.clock()
        day = fake_day(now)
        if self.token_quota is not None and self._daily_tokens[(appid, day)] >= self.token_quota:
            raise SnsError(45009, _QUOTA_TEXT)
        self._daily_tokens[(appid, day)] += 1
        previous = self._latest.get((appid, "token"))
        if previous is not None:
            previous.killed_at = min(previous.killed_at, now + TOKEN_OVERLAP)
        return self._answer(self._mint(appid, kind, "token", now), now)

    def stable(self, appid: str, kind: AppKind, *, force: bool = False) -> tuple[str, int]:
        """``/cgi-bin/stable_token``: ``(token, expires_in)`` with ``expires_in`` the seconds left.

        Normal mode returns the current token while it has more than five minutes
        left, else a new one (the old lives out its time). ``force`` replaces it at
        once and kills the old one (no grace: UNCONFIRMED); a force within 30 s of the
        previous force changes nothing, and the 21st force of a fake day is 45009.
        """
        now = self.clock()
        current = self._latest.get((appid, "stable"))
        if force:
            last = self._last_force.get(appid)
            if current is not None and last is not None and now - last < FORCE_REFRESH_SPACING:
                return self._answer(current, now)
            day = fake_day(now)
            if self._daily_forces[(appid, day)] >= FORCE_REFRESHES_PER_DAY:
                raise SnsError(45009)
            self._daily_forces[(appid, day)] += 1
            self._forces[appid] += 1
            self._last_force[appid] = now
            if current is not None:
                current.killed_at = min(current.killed_at, now)
            return self._answer(self._mint(appid, kind, "stable", now), now)
        if current is not None and self._usable(current, now) and current.expires_at - now > TOKEN_OVERLAP:
            return self._answer(current, now)
        return self._answer(self._mint(appid, kind, "stable", now), now)

    # -- checking -----------------------------------------------------------------------------

    @staticmethod
    def _usable(token: _AppToken, now: float) -> bool:
        return not token.knocked_out and now < token.killed_at and now < token.expires_at

    def check(self, value: str, kind: AppKind) -> str:
        """The appid of a usable token for an API that needs an app of ``kind``.

        41001 missing; 40001 unknown, superseded after its overlap, force-replaced or
        revoked; 42001 past its natural expiry (or expired by the knob); 48001 a token
        of another kind of app. Refusals of a token that once worked are counted in
        :attr:`stale_calls`.
        """
        if not value:
            raise SnsError(41001)
        token = self._tokens.get(value)
        if token is None:
            raise SnsError(40001, _STALE_TEXT)
        now = self.clock()
        if token.knocked_out == "revoked" or (now >= token.killed_at and token.killed_at < token.expires_at):
            self.stale_calls += 1
            raise SnsError(40001, _STALE_TEXT)
        if token.knocked_out == "expired" or now >= token.expires_at:
            self.stale_calls += 1
            raise SnsError(42001)
        if token.kind != kind:
            raise SnsError(48001)
        return token.appid

    def expire_all(self) -> None:
        """Every app token issued so far answers 42001; the next call of either endpoint mints a new one."""
        for token in self._tokens.values():
            token.knocked_out = "expired"

    def revoke_all(self) -> None:
        """Every app token issued so far answers 40001; the next call of either endpoint mints a new one."""
        for token in self._tokens.values():
            token.knocked_out = "revoked"

    def issued(self, appid: str, family: TokenFamily | None = None) -> int:
        """How many distinct tokens were minted for ``appid`` (one family, or both)."""
        if family is None:
            return self._issued[(appid, "token")] + self._issued[(appid, "stable")]
        if family not in ("token", "stable"):
            raise ValueError("family must be 'token', 'stable' or None")
        return self._issued[(appid, family)]

    def force_refreshes(self, appid: str) -> int:
        """How many ``force_refresh`` calls actually replaced the app's stable token."""
        return self._forces[appid]

    # -- tickets ------------------------------------------------------------------------------

    def issue_ticket(self, appid: str, ticket_type: str) -> tuple[str, int]:
        """A new ticket on every call; earlier ones stay valid until their own expiry (UNCONFIRMED)."""
        if ticket_type not in TICKET_TYPES:
            raise SnsError(40097)
        ticket = _Ticket(appid, ticket_type, new_ticket(), self.clock() + DEFAULT_LIFETIME)
        self._tickets.append(ticket)
        return ticket.value, DEFAULT_LIFETIME

    def tickets(self, appid: str, ticket_type: str = "jsapi") -> list[str]:
        """The app's unexpired tickets of this type, oldest first."""
        now = self.clock()
        return [
            t.value for t in self._tickets if t.appid == appid and t.ticket_type == ticket_type and now < t.expires_at
        ]

    def tickets_issued(self, appid: str, ticket_type: str = "jsapi") -> int:
        """How many tickets of this type were issued to ``appid``."""
        return sum(1 for t in self._tickets if t.appid == appid and t.ticket_type == ticket_type)
