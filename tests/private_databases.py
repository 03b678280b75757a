"""A database of a test's own on SQLite, PostgreSQL or MariaDB, created for it and dropped after.

Schema tests (migrations, an app's adoption of the mixins) create and drop tables that other
tests on the same server use: each gets a database of its own, so parallel runs never collide.
The servers come from ``FLASK_WECHAT_TEST_POSTGRES_URL`` / ``FLASK_WECHAT_TEST_MARIADB_URL``
(skipped when unset, an error in CI, like tests/test_databases.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

KINDS = ("sqlite", "postgresql", "mariadb")
SERVERS = {"postgresql": "FLASK_WECHAT_TEST_POSTGRES_URL", "mariadb": "FLASK_WECHAT_TEST_MARIADB_URL"}


def server_url(kind: str) -> str:
    url = os.environ.get(SERVERS[kind])
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{SERVERS[kind]} must be set in CI")
        pytest.skip(f"{SERVERS[kind]} is not set")
    return url


@contextmanager
def private_database(kind: str, directory: Path) -> Iterator[str]:
    """The URL of an empty database that exists for the ``with`` block only."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'private.db'}"
        return
    url = make_url(server_url(kind))
    name = f"fw_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    options = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" if kind == "mariadb" else ""
    try:
        with server.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}{options}")
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with server.connect() as connection:
                force = " WITH (FORCE)" if kind == "postgresql" else ""
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        server.dispose()
