"""The shared app token: one fetch for every worker, a lock that a dead holder cannot keep, compare-and-invalidate.

Each :class:`SharedCredential` here plays one worker process; they share a real store
(SQLite, PostgreSQL, MariaDB or Redis). ``fetch`` stands in for WeChat's token endpoint:
the endpoints themselves are tested against the fake WeChat in ``test_app_api.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select

from flask_wechat.apptoken import MEMORY_SECONDS, REFRESH_AHEAD, SAFETY, Credential, SharedCredential
from flask_wechat.crypto import TokenCipher
from flask_wechat.errors import ServiceUnavailableError
from flask_wechat.store import RedisStore, SharedStore, SQLStore, store_key, store_table

from .private_databases import server_url
from .redis_server import RedisServer, running_redis
from .test_store import redis_url

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class WeChatTokens:
    """Stands in for the token endpoint: counts fetches, hands out numbered tokens, may take its time."""

    def __init__(self, delay: float = 0.0, lifetime: int = 7200) -> None:
        self.delay = delay
        self.lifetime = lifetime
        self.calls: list[bool] = []
        self._lock = threading.Lock()

    def __call__(self, force: bool) -> tuple[str, int]:
        with self._lock:
            self.calls.append(force)
            number = len(self.calls)
        time.sleep(self.delay)
        return f"token-{number}", self.lifetime


class CountingStore:
    """A store that counts reads (to see what memory saves) and can run code before a lock is taken."""

    def __init__(self, inner: SharedStore) -> None:
        self.inner = inner
        self.gets = 0
        self.before_add: Any = None

    def add(self, key: str, value: str, ttl: int) -> bool:
        if self.before_add is not None:
            hook, self.before_add = self.before_add, None
            hook()
        return self.inner.add(key, value, ttl)

    def get(self, key: str) -> str | None:
        self.gets += 1
        return self.inner.get(key)

    def set(self, key: str, value: str, ttl: int) -> None:
        self.inner.set(key, value, ttl)

    def discard(self, key: str, value: str) -> bool:
        return self.inner.discard(key, value)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedStore]:
    if request.param == "redis":
        yield RedisStore(redis_url())
        return
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else server_url(request.param)
    engine = create_engine(url)
    yield SQLStore(lambda: engine)
    engine.dispose()


@pytest.fixture
def appid() -> str:
    # Keys on a shared Redis must not meet another test's.
    return "wx" + uuid.uuid4().hex[:16]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def worker(appid: str, fetch: WeChatTokens, store: Any, clock: Clock, **options: Any) -> SharedCredential:
    return SharedCredential("app_token", appid, fetch, store, clock=clock, **options)


def test_many_workers_and_threads_fetch_once(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens(delay=0.3)
    workers = [worker(appid, fetch, store, clock) for _ in range(4)]
    with ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(lambda i: workers[i % 4].get(), range(32)))
    assert fetch.calls == [False]
    assert set(tokens) == {"token-1"}


def test_a_fresh_token_is_read_from_the_store_not_fetched(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens()
    assert worker(appid, fetch, store, clock).get() == "token-1"
    assert worker(appid, fetch, store, clock).get() == "token-1"
    assert len(fetch.calls) == 1


def test_memory_spares_the_store_for_a_minute_and_never_past_the_refresh_point(
    store: SharedStore, appid: str, clock: Clock
) -> None:
    counting = CountingStore(store)
    fetch = WeChatTokens()
    one = worker(appid, fetch, counting, clock)
    one.get()
    reads = counting.gets
    for _ in range(50):
        assert one.get() == "token-1"
    assert counting.gets == reads
    clock.now += MEMORY_SECONDS
    one.get()
    assert counting.gets > reads
    # Near the refresh point memory never outlives it.
    clock.now = NOW + 7200 - REFRESH_AHEAD - 10
    one.get()
    reads = counting.gets
    clock.now += 11
    assert one.get() == "token-2"
    assert counting.gets > reads


def test_refreshes_ahead_of_expiry_once_for_everybody(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens(delay=0.2)
    workers = [worker(appid, fetch, store, clock) for _ in range(4)]
    workers[0].get()
    clock.now = NOW + 7200 - REFRESH_AHEAD + 1
    with ThreadPoolExecutor(16) as pool:
        seen = set(pool.map(lambda i: workers[i % 4].get(), range(32)))
    assert len(fetch.calls) == 2
    # While one worker refreshed, the others went on with the old, still valid token: nobody waited.
    assert seen <= {"token-1", "token-2"}
    assert {w.get() for w in workers} <= {"token-1", "token-2"}
    clock.now += MEMORY_SECONDS + 1
    assert {w.get() for w in workers} == {"token-2"}
    assert len(fetch.calls) == 2


def test_others_use_the_old_token_while_the_lock_is_held(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens()
    one, two = worker(appid, fetch, store, clock), worker(appid, fetch, store, clock)
    one.get()
    clock.now = NOW + 7200 - REFRESH_AHEAD + 1
    assert store.add(store_key("app_token-lock", appid), "another worker", 15)
    started = time.monotonic()
    assert two.get() == "token-1"
    assert time.monotonic() - started < 0.5
    assert len(fetch.calls) == 1


def test_a_dead_lock_holder_delays_the_others_at_most_the_lock_timeout(
    store: SharedStore, appid: str, clock: Clock
) -> None:
    fetch = WeChatTokens()
    # A worker took the lock and died: nothing is stored and nobody will release it.
    assert store.add(store_key("app_token-lock", appid), "a dead worker", 2)
    workers = [worker(appid, fetch, store, clock, lock_timeout=2) for _ in range(3)]
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        tokens = list(pool.map(lambda i: workers[i % 3].get(), range(6)))
    waited = time.monotonic() - started
    assert tokens == ["token-1"] * 6
    assert len(fetch.calls) == 1
    # The SQL store counts whole seconds: the lock ends within a second after its timeout.
    assert waited <= 2 + 1.5


def test_the_holder_checks_the_store_again_before_fetching(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens()
    counting = CountingStore(store)
    late = worker(appid, fetch, counting, clock)
    early = worker(appid, fetch, store, clock)
    # Between this worker's read (nothing there) and its lock, another worker refreshes.
    counting.before_add = early.get
    assert late.get() == "token-1"
    assert len(fetch.calls) == 1


def test_invalidate_drops_only_the_token_that_failed(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens()
    one, two = worker(appid, fetch, store, clock), worker(appid, fetch, store, clock)
    assert one.get() == "token-1"
    two.invalidate("token-1")
    assert two.get() == "token-2"
    # A burst of calls that failed with token-1: the replacement is kept, nobody fetches again.
    for _ in range(5):
        one.invalidate("token-1")
    assert one.get() == "token-2"
    assert two.get() == "token-2"
    assert len(fetch.calls) == 2


def test_force_refresh_fetches_on_demand_only(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens()
    one = worker(appid, fetch, store, clock)
    one.get()
    one.get()
    assert fetch.calls == [False]
    assert one.get(force_refresh=True) == "token-2"
    assert fetch.calls == [False, True]
    assert worker(appid, fetch, store, clock).get() == "token-2"


def test_an_expired_token_is_never_served(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens(lifetime=600)
    one = worker(appid, fetch, store, clock)
    one.get()
    clock.now = NOW + 600 - SAFETY
    assert one.get() == "token-2"


def test_a_late_writer_never_replaces_a_newer_token(store: SharedStore, appid: str, clock: Clock) -> None:
    """A holder whose lock expired mid-fetch must not write its older token over the newer one."""
    fetch = WeChatTokens()
    slow = worker(appid, fetch, store, clock, lock_timeout=1)
    fast = worker(appid, fetch, store, clock)
    lock_key = store_key("app_token-lock", appid)

    def lock_lost_meanwhile(force: bool) -> tuple[str, int]:
        token = fetch(force)
        store.discard(lock_key, store.get(lock_key) or "")
        fast.get()  # takes the free lock, fetches token-2 and stores it
        return token

    slow._fetch = lock_lost_meanwhile
    assert slow.get() == "token-1"
    assert worker(appid, fetch, store, clock).get() == "token-2"


def test_tokens_are_sealed_at_rest_with_token_keys(tmp_path: Path, appid: str, clock: Clock) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store = SQLStore(lambda: engine)
    cipher = TokenCipher([Fernet.generate_key().decode()])
    fetch = WeChatTokens()
    assert worker(appid, fetch, store, clock, cipher=cipher).get() == "token-1"
    with engine.connect() as connection:
        raw = connection.execute(select(store_table.c.value)).scalars().all()
    assert raw and not any("token-1" in value for value in raw)
    # Another worker with the same keys reads it; one without them fetches its own.
    assert worker(appid, fetch, store, clock, cipher=cipher).get() == "token-1"
    assert len(fetch.calls) == 1


def test_stored_shows_age_and_expiry_without_fetching(store: SharedStore, appid: str, clock: Clock) -> None:
    fetch = WeChatTokens()
    one = worker(appid, fetch, store, clock)
    assert one.stored() is None
    one.get()
    clock.now += 100
    held = one.stored()
    assert isinstance(held, Credential)
    assert held.fetched_at == NOW and held.expires_at == NOW + 7200
    assert "token" not in repr(held)
    assert len(fetch.calls) == 1


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    yield from running_redis()


def test_a_store_outage_is_a_service_outage(private_redis: RedisServer) -> None:
    fetch = WeChatTokens()
    one = SharedCredential("app_token", "wx0123456789abcdef", fetch, RedisStore(private_redis.url))
    private_redis.stop()
    with pytest.raises(ServiceUnavailableError):
        one.get()
    private_redis.start()
    assert one.get() == "token-1"
