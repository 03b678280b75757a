"""The shared store: set-if-absent across processes, expiry, on SQLite and on Redis."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Engine

from flask_wechat.errors import ServiceUnavailableError
from flask_wechat.store import RedisStore, SharedStore, SQLStore, store_key, store_table

from .private_databases import server_url
from .redis_server import RedisServer, running_redis

REDIS_URL = os.environ.get("FLASK_WECHAT_TEST_REDIS_URL")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[SharedStore]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
        yield SQLStore(lambda: engine, clock=clock)
        engine.dispose()
    else:
        yield RedisStore(redis_url())


def redis_url() -> str:
    if not REDIS_URL:
        if os.environ.get("CI"):
            pytest.fail("FLASK_WECHAT_TEST_REDIS_URL must be set in CI")
        pytest.skip("FLASK_WECHAT_TEST_REDIS_URL is not set")
    return REDIS_URL


def key() -> str:
    return store_key("test", uuid.uuid4().hex)


def test_add_stores_once(store: SharedStore) -> None:
    k = key()
    assert store.get(k) is None
    assert store.add(k, "first", 60)
    assert not store.add(k, "second", 60)
    assert store.get(k) == "first"


def test_set_replaces(store: SharedStore) -> None:
    k = key()
    store.set(k, "a", 60)
    store.set(k, "b", 60)
    assert store.get(k) == "b"


def test_sql_values_expire_and_can_be_taken_over(tmp_path: Path, clock: Clock) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store = SQLStore(lambda: engine, clock=clock)
    k = key()
    assert store.add(k, "old", 10)
    clock.now += 10
    assert store.get(k) is None
    assert store.add(k, "new", 10)
    assert store.get(k) == "new"


def test_concurrent_adds_let_exactly_one_win(store: SharedStore) -> None:
    k = key()
    with ThreadPoolExecutor(max_workers=16) as pool:
        wins = list(pool.map(lambda i: store.add(k, str(i), 60), range(64)))
    assert wins.count(True) == 1


def test_keys_hide_what_they_were_made_from() -> None:
    made = store_key("outcome", "nonce", "THE-CODE")
    assert "THE-CODE" not in made and made.startswith("outcome:") and len(made) <= 80


# -- bounded: expired rows are swept on a timer, by every kind of write ---------------------


def sql_store(path: Path, clock: Clock, **options: Any) -> tuple[Engine, SQLStore]:
    engine = create_engine(f"sqlite:///{path}", **options)
    return engine, SQLStore(lambda: engine, clock=clock)


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(store_table)).scalar_one())


def test_sql_store_stays_bounded_under_anonymous_login_starts(tmp_path: Path, clock: Clock) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    # One commit per write: without fsync the ten thousand of them take a third of the time.
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA synchronous = OFF"))
    store = SQLStore(lambda: engine, clock=clock)
    long_next = "/" + "n" * 1023
    for i in range(10_000):
        store.set(store_key("next", str(i)), long_next, 600)
    assert rows(engine) == 10_000
    clock.now += 3600
    store.set(key(), long_next, 600)
    assert rows(engine) == 1
    engine.dispose()


def test_sql_sweeps_at_most_once_per_interval(tmp_path: Path, clock: Clock) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store = SQLStore(lambda: engine, clock=clock, sweep_interval=60)
    sweeps: list[str] = []

    def count_sweeps(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            sweeps.append(statement)

    event.listen(engine, "before_cursor_execute", count_sweeps)
    start = clock.now
    for offset, expected in [(0, 1), (1, 1), (30, 1), (59, 1), (60, 2), (61, 2), (119, 2), (120, 3)]:
        clock.now = start + offset
        store.set(key(), "v", 10)
        assert len(sweeps) == expected, offset
    engine.dispose()


@pytest.mark.parametrize("write", ["add", "set"])
def test_sql_every_kind_of_write_sweeps(tmp_path: Path, clock: Clock, write: str) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store = SQLStore(lambda: engine, clock=clock, sweep_interval=60)
    for _ in range(5):
        store.add(key(), "old", 10)
    clock.now += 61
    getattr(store, write)(key(), "new", 10)
    assert rows(engine) == 1
    engine.dispose()


def test_redis_keys_carry_their_ttl() -> None:
    url = redis_url()
    store = RedisStore(url)
    added, replaced = key(), key()
    assert store.add(added, "v", 60)
    store.set(replaced, "v", 600)
    client = redis.Redis.from_url(url)
    try:
        assert 0 < client.ttl(added) <= 60
        assert 60 < client.ttl(replaced) <= 600
    finally:
        client.delete(added, replaced)
        client.close()


# -- outages are a typed error, and the same store object recovers --------------------------

SECRET_KEY = store_key("state", "SECRET-NONCE")
SECRET_VALUE = "/private/next?token=SECRET-VALUE"


def assert_outage(error: pytest.ExceptionInfo[ServiceUnavailableError]) -> None:
    """The error names the store, never a key or value, and chains no driver message."""
    exc = error.value
    assert exc.service == "store" and exc.detail
    for shown in (str(exc), repr(exc), *map(str, exc.args)):
        assert "SECRET" not in shown and SECRET_KEY not in shown
    assert exc.__cause__ is None and exc.__suppress_context__


def sqlite_lock(path: Path, mode: str) -> sqlite3.Connection:
    """Another process's transaction: IMMEDIATE blocks writers, EXCLUSIVE blocks readers too."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute(f"BEGIN {mode}")
    return holder


def test_sql_locked_database_is_an_outage_and_the_store_recovers(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "store.db"
    engine, store = sql_store(path, clock, connect_args={"timeout": 0.2})
    store.set(SECRET_KEY, SECRET_VALUE, 60)

    holder = sqlite_lock(path, "IMMEDIATE")
    with pytest.raises(ServiceUnavailableError) as error:
        store.add(key(), SECRET_VALUE, 60)
    assert_outage(error)
    with pytest.raises(ServiceUnavailableError) as error:
        store.set(SECRET_KEY, SECRET_VALUE, 60)
    assert_outage(error)
    assert store.get(SECRET_KEY) == SECRET_VALUE  # readers pass a writer's lock
    holder.rollback()

    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(ServiceUnavailableError) as error:
        store.get(SECRET_KEY)
    assert_outage(error)
    holder.rollback()
    holder.close()

    k = key()
    assert store.add(k, "after", 60)
    assert not store.add(k, "again", 60)  # a live key is still refused, not mistaken for an outage
    store.set(SECRET_KEY, "after", 60)
    assert store.get(SECRET_KEY) == "after"
    engine.dispose()


def test_sql_table_creation_in_an_outage_is_retried(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "store.db"
    sqlite3.connect(path).close()
    engine, store = sql_store(path, clock, connect_args={"timeout": 0.2})
    holder = sqlite_lock(path, "EXCLUSIVE")
    operations: list[Callable[[], object]] = [
        lambda: store.get(SECRET_KEY),
        lambda: store.set(SECRET_KEY, SECRET_VALUE, 60),
    ]
    for operation in operations:
        with pytest.raises(ServiceUnavailableError) as error:
            operation()
        assert_outage(error)
    holder.rollback()
    holder.close()
    store.set(SECRET_KEY, "v", 60)
    assert store.get(SECRET_KEY) == "v"
    engine.dispose()


def postgres_url() -> str:
    return server_url("postgresql")


def test_sql_store_recovers_from_terminated_postgres_connections(clock: Clock) -> None:
    url = postgres_url()
    # A schema and a connection name of its own: other tests share this database.
    name = f"store_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = create_engine(url, connect_args={"application_name": name})
    scoped = engine.execution_options(schema_translate_map={None: name})
    store = SQLStore(lambda: scoped, clock=clock)
    try:
        k = key()
        assert store.add(k, "v", 60)
        with admin.begin() as connection:
            terminated = connection.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            ).scalar_one()
        assert terminated >= 1
        try:
            assert store.get(k) == "v"
        except ServiceUnavailableError as exc:
            assert exc.service == "store"
        assert store.get(k) == "v"
        assert not store.add(k, "again", 60)
        store.set(k, "w", 60)
        assert store.get(k) == "w"
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


def test_redis_outage_is_a_typed_error_and_the_store_recovers(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url + "?socket_timeout=1&socket_connect_timeout=1")
    assert store.add(SECRET_KEY, SECRET_VALUE, 60)

    redis_server.stop()
    operations: list[Callable[[], object]] = [
        lambda: store.add(key(), SECRET_VALUE, 60),
        lambda: store.get(SECRET_KEY),
        lambda: store.set(SECRET_KEY, SECRET_VALUE, 60),
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError) as error:
            operation()
        assert time.monotonic() - started < 5
        assert_outage(error)

    redis_server.start()  # same port, empty: nothing was saved
    assert store.get(SECRET_KEY) is None
    assert store.add(SECRET_KEY, "back", 60)
    store.set(SECRET_KEY, "again", 60)
    assert store.get(SECRET_KEY) == "again"


def test_redis_refusing_writes_when_full_is_an_outage(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    store.set(SECRET_KEY, SECRET_VALUE, 60)
    client = redis.Redis.from_url(redis_server.url)
    client.config_set("maxmemory", 1)  # the default policy, noeviction, refuses writes with OOM
    try:
        with pytest.raises(ServiceUnavailableError) as error:
            store.set(SECRET_KEY, SECRET_VALUE, 60)
        assert_outage(error)
        assert store.get(SECRET_KEY) == SECRET_VALUE
    finally:
        client.config_set("maxmemory", 0)
        client.close()
    store.set(SECRET_KEY, "after", 60)
    assert store.get(SECRET_KEY) == "after"


def test_redis_programming_errors_are_not_outages(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    client.rpush(SECRET_KEY, "a list, not a string")
    client.close()
    with pytest.raises(redis.exceptions.ResponseError):
        store.get(SECRET_KEY)


def test_redis_server_helper_never_takes_the_shared_port() -> None:
    with pytest.raises(ValueError, match="6379"):
        RedisServer(6379)
