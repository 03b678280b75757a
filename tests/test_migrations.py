"""examples/migrations builds exactly the schema the models describe, and takes it down again.

A model change without a new revision fails here: upgrade, then compare the database
with ``db.metadata`` (and the shared-store table) column by column, server defaults and
constraint names included, and ask Alembic's autogenerate whether it would write anything.
On SQLite, PostgreSQL and MariaDB, each test on a database of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Engine

from examples.app import create_app, db
from flask_wechat.store import store_table
from flask_wechat.testing.login import login_as

from .private_databases import KINDS, private_database

try:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import downgrade, upgrade

    from examples.migrations import manage
except ImportError as exc:  # pragma: no cover - depends on the environment
    # Like the database tests: skipped on a bare machine, an error in CI.
    if os.environ.get("CI"):
        raise
    pytest.skip(f"Flask-Migrate / Alembic are not installed ({exc.name})", allow_module_level=True)

MIGRATIONS = manage.DIRECTORY
METADATA = (db.metadata, store_table.metadata)


@pytest.fixture(params=KINDS)
def database_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with private_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def app(database_uri: str) -> Iterator[Flask]:
    """The example's models on an empty database, with Flask-Migrate and without create_all."""
    app = manage.create_app({"SQLALCHEMY_DATABASE_URI": database_uri})
    with app.app_context():
        yield app
        db.engine.dispose()


def described_tables() -> dict[str, Any]:
    return {name: table for metadata in METADATA for name, table in metadata.tables.items()}


def shape(engine: Engine, table: str) -> dict[str, Any]:
    """What the database says about a table, in comparable form."""
    inspector = inspect(engine)
    primary_key = inspector.get_pk_constraint(table)["constrained_columns"]
    return {
        "columns": {
            # PostgreSQL reports a serial key's sequence as its default.
            c["name"]: (
                column_type(engine, c["type"]),
                c["nullable"],
                c["default"] is not None and [c["name"]] != primary_key,
            )
            for c in inspector.get_columns(table)
        },
        "primary_key": primary_key,
        "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
        # Unique constraints are indexes too on PostgreSQL and MariaDB: counted above.
        "indexes": sorted(
            (i["name"], tuple(i["column_names"]))
            for i in inspector.get_indexes(table)
            if not i["unique"] and "duplicates_constraint" not in i
        ),
        "foreign_keys": sorted(
            (f["name"], tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
            for f in inspector.get_foreign_keys(table)
        ),
    }


def column_type(engine: Engine, type_: Any) -> str | None:
    # Only SQLite reflects exactly the type it was given; elsewhere autogenerate's compare_type judges.
    return type_.compile(engine.dialect) if engine.dialect.name == "sqlite" else None


def expected_shape(engine: Engine, table: Any) -> dict[str, Any]:
    """What the models say about the same table."""
    return {
        "columns": {
            c.name: (column_type(engine, c.type), c.nullable, c.server_default is not None) for c in table.columns
        },
        "primary_key": [c.name for c in table.primary_key.columns],
        "unique": sorted(
            (u.name, tuple(c.name for c in u.columns))
            for u in table.constraints
            if type(u).__name__ == "UniqueConstraint"
        ),
        "indexes": sorted((i.name, tuple(c.name for c in i.columns)) for i in table.indexes),
        "foreign_keys": sorted(
            (f.constraint.name, (f.parent.name,), f.column.table.name, f.ondelete) for f in table.foreign_keys
        ),
    }


def test_upgrade_creates_exactly_what_the_models_describe(app: Flask) -> None:
    upgrade(directory=str(MIGRATIONS))
    engine = db.engine
    tables = described_tables()
    assert set(inspect(engine).get_table_names()) == {*tables, "alembic_version"}
    assert set(tables) == {"users", "wechat_accounts", "wechat_store"}
    for name, table in tables.items():
        assert shape(engine, name) == expected_shape(engine, table), name
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, MetaData()) != []  # the comparison does see tables
        assert compare_metadata(context, list(METADATA)) == []  # type: ignore[arg-type]


def test_downgrade_removes_everything(app: Flask) -> None:
    upgrade(directory=str(MIGRATIONS))
    downgrade(directory=str(MIGRATIONS), revision="base")
    assert inspect(db.engine).get_table_names() == ["alembic_version"]


def test_the_example_app_logs_in_on_the_migrated_database(app: Flask, database_uri: str) -> None:
    upgrade(directory=str(MIGRATIONS))
    demo = create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "WECHAT_APPID": None})
    try:
        client = demo.test_client()
        account = login_as(client, "bob")
        assert account.nickname == demo.extensions["wechat_fake"].users["bob"].nickname
        assert client.get("/profile").status_code == 200
    finally:
        with demo.app_context():
            db.session.remove()
            db.engine.dispose()
