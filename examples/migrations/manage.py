"""The example's models with Flask-Migrate and without ``create_all``: for ``flask db`` on this directory.

From the repository root (``python -m`` puts it on ``sys.path``)::

    python -m flask --app examples.migrations.manage db upgrade
    python -m flask --app examples.migrations.manage db migrate -m "what changed"

The database is ``instance/migrations-example.db`` unless ``FLASK_SQLALCHEMY_DATABASE_URI`` names another.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate

from examples.app import db

DIRECTORY = Path(__file__).parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """An app that only knows the example's models and these migrations."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(app.instance_path, "migrations-example.db")
    app.config.from_prefixed_env()
    app.config.update(test_config or {})
    db.init_app(app)
    Migrate(app, db, directory=str(DIRECTORY))
    return app
