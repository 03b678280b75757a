"""A small key-value store every worker process shares, with expiry.

Single-use markers for login states and the cached outcome of a callback must be
seen by all workers: two hits of one WeChat redirect may land on two processes.
The app's SQL database serves by default; Redis when ``WECHAT_STORE_URL`` names it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, scoped_session

__all__ = ["RedisStore", "SQLStore", "SharedStore", "store_key", "store_table"]

#: The table the SQL store uses; include ``store_table.metadata`` in your migrations if you manage them.
store_table = Table(
    "wechat_store",
    MetaData(),
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

#: How many writes between two sweeps of expired SQL rows.
_SWEEP_EVERY = 200


def store_key(kind: str, *parts: str) -> str:
    """A fixed-length key: codes and states never reach the store (or its logs) in clear."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{kind}:{digest}"[:80]


class SharedStore(Protocol):
    """What the login flow needs from a store shared by all workers."""

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Store ``value`` unless a live value exists; ``True`` if this call stored it."""

    def get(self, key: str) -> str | None:
        """The live value, or ``None``."""

    def set(self, key: str, value: str, ttl: int) -> None:
        """Store ``value``, replacing any other."""


class SQLStore:
    """The shared store in the app's SQL database (the table is created on first use)."""

    def __init__(self, engine: Callable[[], Engine], clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._ready = False
        self._writes = 0
        self._lock = threading.Lock()

    def _begin(self) -> Any:
        engine = self._engine()
        if not self._ready:
            with self._lock:
                if not self._ready:
                    try:
                        store_table.create(engine, checkfirst=True)
                    except DBAPIError:
                        # Another worker created it between the check and the CREATE.
                        store_table.create(engine, checkfirst=True)
                    self._ready = True
        return engine.begin()

    def _expiry(self, ttl: int) -> int:
        return int(self._clock()) + ttl

    def add(self, key: str, value: str, ttl: int) -> bool:
        self._sweep()
        try:
            with self._begin() as connection:
                connection.execute(insert(store_table).values(key=key, value=value, expires_at=self._expiry(ttl)))
            return True
        except IntegrityError:
            pass
        # The key exists: take it over only if it has expired.
        with self._begin() as connection:
            taken = connection.execute(
                update(store_table)
                .where(store_table.c.key == key, store_table.c.expires_at <= int(self._clock()))
                .values(value=value, expires_at=self._expiry(ttl))
            )
            return bool(taken.rowcount == 1)

    def get(self, key: str) -> str | None:
        with self._begin() as connection:
            row = connection.execute(
                select(store_table.c.value).where(
                    store_table.c.key == key, store_table.c.expires_at > int(self._clock())
                )
            ).first()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str, ttl: int) -> None:
        values = {"value": value, "expires_at": self._expiry(ttl)}
        # Keys are nearly always new (outcomes, long next paths): try the INSERT first.
        for _ in range(2):
            try:
                with self._begin() as connection:
                    connection.execute(insert(store_table).values(key=key, **values))
                return
            except IntegrityError:
                pass
            with self._begin() as connection:
                changed = connection.execute(update(store_table).where(store_table.c.key == key).values(**values))
                if changed.rowcount == 1:
                    return
            # The row vanished between the two statements (a sweep); insert again.

    def shares(self, session: Session | scoped_session[Session]) -> bool:
        """Whether ``session`` talks to this store's database (so it can write in its transaction)."""
        return session.get_bind() is self._engine()

    def insert_in(self, session: Session | scoped_session[Session], key: str, value: str, ttl: int) -> None:
        """Insert a new key as part of ``session``'s transaction (committed with it)."""
        session.execute(insert(store_table).values(key=key, value=value, expires_at=self._expiry(ttl)))

    def _sweep(self) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            with self._begin() as connection:
                connection.execute(delete(store_table).where(store_table.c.expires_at <= int(self._clock())))


class RedisStore:
    """The shared store in Redis (``SET NX EX``); needs the ``redis`` package."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def add(self, key: str, value: str, ttl: int) -> bool:
        return bool(self._redis.set(key, value, nx=True, ex=ttl))

    def get(self, key: str) -> str | None:
        value = self._redis.get(key)
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, value: str, ttl: int) -> None:
        self._redis.set(key, value, ex=ttl)
