"""The shared store: set-if-absent across processes, expiry, on SQLite and on Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from flask_wechat.store import RedisStore, SharedStore, SQLStore, store_key

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
        if not REDIS_URL:
            if os.environ.get("CI"):
                pytest.fail("FLASK_WECHAT_TEST_REDIS_URL must be set in CI")
            pytest.skip("FLASK_WECHAT_TEST_REDIS_URL is not set")
        yield RedisStore(REDIS_URL)


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
