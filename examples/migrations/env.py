"""Alembic environment for a flask-wechat app, run by Flask-Migrate (``flask db ...``).

The schema is the app's models (``db.metadata``: your user and WeChat account tables)
plus flask-wechat's shared-store table ``wechat_store`` (``store_table.metadata``),
which the extension would otherwise create on first use. Copy this directory into
your project as ``migrations/`` and ``Migrate(app, db)`` picks it up.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app
from sqlalchemy import MetaData

from flask_wechat.models import render_item
from flask_wechat.store import store_table

config = context.config
log = logging.getLogger("alembic.env")

# Configure logging only when nobody did (the `flask db` command), and never silence
# loggers that already exist: a test run or a host app keeps its own logging.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

migrate = current_app.extensions["migrate"]
engine = migrate.db.engine
#: What autogenerate compares the database with.
target_metadata: list[MetaData] = [migrate.db.metadata, store_table.metadata]

# A revision must not import app code that changes after it was written: the models'
# UTCDateTime is a timezone-aware DateTime in the database, and render_item writes it as one.
# (wechat.init_app gives Flask-Migrate the same hook; an app's own render_item wins here.)
options: dict[str, Any] = {"render_item": render_item, **migrate.configure_args}


def run_migrations_offline() -> None:
    """Write the SQL to stdout (``flask db upgrade --sql``) instead of running it."""
    context.configure(url=engine.url, target_metadata=target_metadata, literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()


def _skip_empty_autogenerate(ctx: Any, revision: Any, directives: list[Any]) -> None:
    # `flask db migrate` with no model change should not write an empty revision.
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("No changes in schema detected.")


def run_migrations_online() -> None:
    """Run the migrations against the app's database."""
    online = {"process_revision_directives": _skip_empty_autogenerate, **options}
    with engine.connect() as connection:
        # SQLite can only change a table by copying it: batch mode does that for later revisions.
        online.setdefault("render_as_batch", connection.dialect.name == "sqlite")
        context.configure(connection=connection, target_metadata=target_metadata, **online)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
