"""A small key-value store every worker process shares, with expiry.

Single-use markers for login states and the cached outcome of a callback must be
seen by all workers: two hits of one WeChat redirect may land on two processes.
The app's SQL database serves by default; Redis when ``WECHAT_STORE_URL`` names it.

Both stores are bounded by construction (SQL rows are swept on a timer by every
kind of write; Redis expires its keys itself) and report an unreachable backend as
:class:`~flask_wechat.errors.ServiceUnavailableError`, whose message names the
exception type only: never a key or a value.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, Delete, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, scoped_session

from .errors import ServiceUnavailableError

__all__ = ["RedisStore", "SQLStore", "SharedStore", "store_key", "store_table"]

#: The table the SQL store uses; include ``store_table.metadata`` in your migrations if you manage them.
store_table = Table(
    "wechat_store",
    MetaData(),
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


def store_key(kind: str, *parts: str) -> str:
    """A fixed-length key: codes and states never reach the store (or its logs) in clear."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{kind}:{digest}"[:80]


class SharedStore(Protocol):
    """What the login flow needs from a store shared by all workers.

    Every operation raises :class:`~flask_wechat.errors.ServiceUnavailableError` when the
    backend cannot be reached, so that the views can answer "try again later".
    """

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Store ``value`` unless a live value exists; ``True`` if this call stored it."""

    def get(self, key: str) -> str | None:
        """The live value, or ``None``."""

    def set(self, key: str, value: str, ttl: int) -> None:
        """Store ``value``, replacing any other."""

    def discard(self, key: str, value: str) -> bool:
        """Delete ``key`` only while it still holds ``value`` (a lock's owner, a token that failed)."""


@contextmanager
def _outages_reported(
    errors: type[Exception] | tuple[type[Exception], ...], is_outage: Callable[[Exception], bool]
) -> Iterator[None]:
    """Turn the backend's outage errors into :class:`ServiceUnavailableError`.

    Only the exception's type name survives: driver messages quote the statement's
    parameters (keys and values), so the original is not chained either.
    """
    try:
        yield
    except errors as exc:
        if not is_outage(exc):
            raise
        raise ServiceUnavailableError("store", _type_name(exc)) from None


def _type_name(exc: BaseException) -> str:
    """The driver's exception class (``AdminShutdown``, ``OperationalError``) rather than SQLAlchemy's wrapper."""
    orig = getattr(exc, "orig", None)
    return type(orig if isinstance(orig, BaseException) else exc).__name__


#: What SQLAlchemy raises for a failed statement or connection, and for an exhausted pool.
_SQL_ERRORS = (DBAPIError, PoolTimeoutError)


def _is_sql_outage(exc: Exception) -> bool:
    """Whether the database is down, unreachable, locked or overloaded (not: the statement was wrong).

    ``IntegrityError`` is never one: :meth:`SQLStore.add` and :meth:`SQLStore.set` use it as
    their "the key exists" signal.
    """
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class SQLStore:
    """The shared store in the app's SQL database (the table is created on first use).

    Expired rows are deleted by the writes themselves, at most once per ``sweep_interval``
    seconds per store object: a timer, not a write counter, so a burst of anonymous login
    starts cannot outrun it and a quiet site does not keep its rows for ever.
    """

    def __init__(
        self,
        engine: Callable[[], Engine],
        clock: Callable[[], float] = time.time,
        *,
        sweep_interval: float = 60.0,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._last_sweep: float | None = None
        self._ready = False
        self._lock = threading.Lock()
        self._sweep_lock = threading.Lock()

    def _begin(self) -> Any:
        engine = self._engine()
        if not self._ready:
            with self._lock:
                if not self._ready:
                    try:
                        store_table.create(engine, checkfirst=True)
                    except DBAPIError:
                        # Another worker created it between the check and the CREATE (or the
                        # database is down, and this fails too: the next call tries again).
                        store_table.create(engine, checkfirst=True)
                    self._ready = True
        return engine.begin()

    def _expiry(self, ttl: int) -> int:
        return int(self._clock()) + ttl

    def add(self, key: str, value: str, ttl: int) -> bool:
        with _outages_reported(_SQL_ERRORS, _is_sql_outage):
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
        with _outages_reported(_SQL_ERRORS, _is_sql_outage):
            with self._begin() as connection:
                row = connection.execute(
                    select(store_table.c.value).where(
                        store_table.c.key == key, store_table.c.expires_at > int(self._clock())
                    )
                ).first()
            return None if row is None else str(row[0])

    def set(self, key: str, value: str, ttl: int) -> None:
        with _outages_reported(_SQL_ERRORS, _is_sql_outage):
            self._sweep()
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

    def discard(self, key: str, value: str) -> bool:
        with _outages_reported(_SQL_ERRORS, _is_sql_outage):
            with self._begin() as connection:
                deleted = connection.execute(
                    delete(store_table).where(store_table.c.key == key, store_table.c.value == value)
                )
            return bool(deleted.rowcount == 1)

    def shares(self, session: Session | scoped_session[Session]) -> bool:
        """Whether ``session`` talks to this store's database (so it can write in its transaction)."""
        return session.get_bind() is self._engine()

    def row(self, key: str, ttl: int) -> dict[str, Any]:
        """A new row for ``key`` without its value, for a transaction of the caller's to insert."""
        return {"key": key, "expires_at": self._expiry(ttl)}

    def _sweep_due(self) -> bool:
        """Whether this write should sweep; claims the sweep so that concurrent writes skip it."""
        now = self._clock()
        with self._sweep_lock:
            last = self._last_sweep
            # A clock set back (NTP, a test) must not postpone the next sweep by as much.
            if last is not None and last <= now < last + self._sweep_interval:
                return False
            self._last_sweep = now
            return True

    def _expired_rows(self) -> Delete:
        """One DELETE on the indexed ``expires_at``: cheap even when nothing has expired."""
        return delete(store_table).where(store_table.c.expires_at <= int(self._clock()))

    def _sweep(self) -> None:
        if self._sweep_due():
            with self._begin() as connection:
                connection.execute(self._expired_rows())


def _is_redis_outage(exc: Exception) -> bool:
    """Whether Redis is down, unreachable, failing over, full or cannot persist (not: the command was wrong).

    A plain ``ResponseError`` (WRONGTYPE, syntax, NOPERM) or a ``DataError`` is a bug or a
    misconfiguration that waiting will not fix, so it is left as it is.
    """
    from redis import exceptions

    operational_refusals = (
        exceptions.ReadOnlyError,  # a replica after failover
        exceptions.OutOfMemoryError,  # maxmemory reached; keys expire and make room
        exceptions.TryAgainError,
        exceptions.ClusterDownError,
    )
    if isinstance(exc, operational_refusals):
        return True
    if isinstance(exc, exceptions.ResponseError):
        # Writes are refused while snapshots fail to save; no class of its own in redis-py.
        return str(exc).startswith("MISCONF")
    return not isinstance(
        exc, (exceptions.DataError, exceptions.WatchError, exceptions.LockError, exceptions.PubSubError)
    )


class RedisStore:
    """The shared store in Redis (``SET NX EX``); needs the ``redis`` package.

    Redis expires the keys itself; redis-py reconnects by itself after an outage.
    """

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._errors: type[Exception] = redis.exceptions.RedisError
        # Compare and delete in one step: between a GET and a DEL another worker may have taken the key.
        self._discard = self._redis.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
        )

    def add(self, key: str, value: str, ttl: int) -> bool:
        with _outages_reported(self._errors, _is_redis_outage):
            return bool(self._redis.set(key, value, nx=True, ex=ttl))

    def get(self, key: str) -> str | None:
        with _outages_reported(self._errors, _is_redis_outage):
            value = self._redis.get(key)
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, value: str, ttl: int) -> None:
        with _outages_reported(self._errors, _is_redis_outage):
            self._redis.set(key, value, ex=ttl)

    def discard(self, key: str, value: str) -> bool:
        with _outages_reported(self._errors, _is_redis_outage):
            return bool(self._discard(keys=[key], args=[value]))
