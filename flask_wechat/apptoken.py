"""One app access token (or JS-SDK ticket) per WeChat app for every worker: shared and single-flight.

Each new ``/cgi-bin/token`` invalidates the previous one five minutes later, so workers that
each fetch their own break each other's calls with 40001. A :class:`SharedCredential`
keeps the one current value in the shared store (the app's SQL database or Redis) and lets
exactly one worker refresh it, across processes and machines:

1. A worker serves the value it read within the last minute from memory (WeChat's own
   advice); never past the refresh point.
2. Otherwise it reads the store. A value with more than :data:`REFRESH_AHEAD` seconds left is used.
3. A value due for refresh (or none) sends the worker for the store's lock (``add`` with a
   time to live: a holder that dies frees it after ``lock_timeout``). The holder reads the
   store again (someone may just have refreshed), fetches, writes, and releases the lock
   with a compare-and-delete. The others go on with the old value while it is still valid,
   and only wait (polling the store) when there is none.
4. A call refused with 40001/42001/40014 discards the stored value only if it is still the
   one that failed (:meth:`SharedCredential.invalidate`), so a burst of failures costs one refresh.

Values are kept sealed when ``WECHAT_TOKEN_KEYS`` is set. Nothing here logs a value.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .crypto import TokenCipher
from .errors import ServiceUnavailableError
from .store import SharedStore, store_key

__all__ = ["MEMORY_SECONDS", "REFRESH_AHEAD", "Credential", "SharedCredential"]

log = logging.getLogger(__name__)

#: Refresh when this few seconds are left: inside the last five minutes, when ``stable_token`` hands
#: out a new token (the margin covers the network time that makes our expiry a little late).
REFRESH_AHEAD: Final = 240
#: A value this close to its expiry is not used at all: a call may take this long to reach WeChat.
SAFETY: Final = 30
#: How long a worker trusts the value it read without asking the store again.
MEMORY_SECONDS: Final = 60
#: How long a worker that saw a refresh in progress keeps using the old value before it looks again.
_BUSY_RECHECK: Final = 1.0
#: The longest pause of a worker waiting for a value: it notices a dead holder's lock ending within this.
_POLL_CAP: Final = 0.05
#: The shortest pause: right before a lock lapses (stores keep time to the millisecond, or the second).
_POLL_FLOOR: Final = 0.001


@dataclass(frozen=True)
class Credential:
    """A token or ticket with its absolute expiry (the manager's clock) and when it was fetched."""

    value: str = field(repr=False)
    expires_at: float
    fetched_at: float

    def due(self, now: float) -> bool:
        """Whether it is time to refresh (it may still be used until :meth:`usable` says no)."""
        return now >= self.expires_at - REFRESH_AHEAD

    def usable(self, now: float) -> bool:
        """Whether a call made now still reaches WeChat before the value expires."""
        return now < self.expires_at - SAFETY


class SharedCredential:
    """The shared, single-flight cache of one credential: an app's access token, or its JS-SDK ticket.

    ``fetch(force)`` asks WeChat for a new value (``force``: a ``force_refresh`` the caller
    asked for) and returns ``(value, expires_in)``. ``clock`` is the time lifetimes are
    measured in; waits and the lock use real time.
    """

    def __init__(
        self,
        kind: str,
        appid: str,
        fetch: Callable[[bool], tuple[str, int]],
        store: SharedStore,
        *,
        lock_timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        cipher: TokenCipher | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kind = kind
        self.appid = appid
        self._fetch = fetch
        self._store = store
        self.lock_timeout = lock_timeout
        self._clock = clock
        self._cipher = cipher
        self._sleep = sleep
        self.key = store_key(kind, appid)
        self._lock_key = store_key(f"{kind}-lock", appid)
        # One thread of this process goes to the store at a time; the others then find it in memory.
        self._thread_lock = threading.Lock()
        self._memory: Credential | None = None
        self._memory_until = 0.0

    def __repr__(self) -> str:
        return f"<SharedCredential {self.kind} appid={self.appid}>"

    # -- reading ------------------------------------------------------------------------------

    def get(self, *, force_refresh: bool = False) -> str:
        """The current value, refreshed first when due; ``force_refresh`` only when WeChat must issue a new one."""
        if not force_refresh:
            remembered = self._remembered()
            if remembered is not None:
                return remembered.value
        with self._thread_lock:
            if not force_refresh:
                remembered = self._remembered()
                if remembered is not None:
                    return remembered.value
            credential = self._obtain(force_refresh)
            self._remember(credential)
            return credential.value

    def stored(self) -> Credential | None:
        """What the store holds now (for ``flask wechat tokens``); never refreshes."""
        raw = self._store.get(self.key)
        return None if raw is None else self._decode(raw)

    def _remembered(self) -> Credential | None:
        memory, now = self._memory, self._clock()
        if memory is not None and now < self._memory_until and memory.usable(now):
            return memory
        return None

    def _remember(self, credential: Credential, seconds: float = MEMORY_SECONDS) -> None:
        now = self._clock()
        until = now + seconds
        if not credential.due(now):
            until = min(until, credential.expires_at - REFRESH_AHEAD)
        self._memory, self._memory_until = credential, until

    def _obtain(self, force: bool) -> Credential:
        current = self.stored()
        if current is not None and not force and not current.due(self._clock()):
            return current
        return self._refresh(current, force)

    # -- refreshing ---------------------------------------------------------------------------

    def _refresh(self, stale: Credential | None, force: bool) -> Credential:
        """Refresh under the store's lock, or use what another worker is refreshing."""
        ttl = math.ceil(self.lock_timeout)
        # A dead holder frees the lock after lock_timeout; the new holder's fetch is bounded by its timeouts.
        deadline = time.monotonic() + 2 * self.lock_timeout + 5
        delay = 0.02
        while True:
            # The lock says until when it holds, so that waiters take over as soon as it lapses.
            owner = f"{secrets.token_hex(8)} {time.time() + ttl:.3f}"
            if self._store.add(self._lock_key, owner, ttl):
                try:
                    return self._refresh_holding_lock(stale, force, owner)
                finally:
                    self._release(owner)
            if stale is not None and stale.usable(self._clock()) and not force:
                # Another worker is refreshing; the old value is still good meanwhile.
                self._remember(stale, _BUSY_RECHECK)
                return stale
            if time.monotonic() >= deadline:
                raise ServiceUnavailableError("wechat", f"the {self.kind} refresh lock is held too long")
            self._sleep(self._pause(delay))
            delay = min(delay * 2, _POLL_CAP)
            current = self.stored()
            if current is not None and current.usable(self._clock()) and (stale is None or current != stale):
                return current

    def _pause(self, delay: float) -> float:
        """The usual pause between looks at the store, cut short to wake when the holder's lock lapses."""
        _, _, until = (self._store.get(self._lock_key) or "").partition(" ")
        try:
            left = float(until) - time.time()
        except ValueError:
            return delay
        return min(delay, max(left, _POLL_FLOOR))

    def _refresh_holding_lock(self, stale: Credential | None, force: bool, owner: str) -> Credential:
        current = self.stored()
        # Re-check after acquiring: another worker may have refreshed between our read and the lock.
        if current is not None and not current.due(self._clock()) and (not force or current != stale):
            return current
        started = self._clock()
        value, expires_in = self._fetch(force)
        fresh = Credential(value, started + expires_in, started)
        if self._store.get(self._lock_key) == owner or self.stored() in (None, current):
            # Still the holder (or nobody wrote meanwhile): never let an older value overwrite a newer one.
            self._store.set(self.key, self._encode(fresh), max(1, math.ceil(expires_in)))
            log.info("WeChat %s of %s refreshed; it expires in %d s", self.kind, self.appid, expires_in)
        return fresh

    def _release(self, owner: str) -> None:
        try:
            self._store.discard(self._lock_key, owner)
        except ServiceUnavailableError:
            log.warning("the %s refresh lock of %s could not be released; it expires by itself", self.kind, self.appid)

    def invalidate(self, failed: str) -> None:
        """WeChat refused ``failed``: forget it here and in the store, unless it was replaced already."""
        with self._thread_lock:
            if self._memory is not None and self._memory.value == failed:
                self._memory = None
        raw = self._store.get(self.key)
        if raw is not None and (held := self._decode(raw)) is not None and held.value == failed:
            self._store.discard(self.key, raw)

    # -- the stored form ----------------------------------------------------------------------

    def _encode(self, credential: Credential) -> str:
        value = self._cipher.seal(credential.value) if self._cipher else credential.value
        return json.dumps({"value": value, "expires_at": credential.expires_at, "fetched_at": credential.fetched_at})

    def _decode(self, raw: str) -> Credential | None:
        try:
            data = json.loads(raw)
            value = self._cipher.open(data["value"]) if self._cipher else data["value"]
            expires_at, fetched_at = float(data["expires_at"]), float(data["fetched_at"])
        except (ValueError, KeyError, TypeError):
            return None  # written by another version
        if not isinstance(value, str) or not value:
            return None  # sealed with a key no longer configured
        return Credential(value, expires_at, fetched_at)
