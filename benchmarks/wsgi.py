"""Gunicorn entry point: ``gunicorn 'benchmarks.wsgi:create_app()'`` serves the contender in ``BENCH_CONTENDER``.

Each contender reads its config from ``FLASK_*`` environment variables. The only things added
here are for measurement: every response carries ``X-Bench-SQL`` (statements sent to the database
while serving it) and ``X-Bench-Commits``, and :data:`CONSTANT_PATH` answers a constant JSON body
shaped like ``/wechat/jssdk-config``'s (the yardstick of the JS-SDK warm path). ``BENCH_PATCHES``
(comma-separated names from :mod:`benchmarks.patches`) tries proposed flask-wechat changes.
``python -m benchmarks.wsgi`` builds the app once, which creates the tables before several workers start.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from flask import Flask, jsonify
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.wrappers import Response

__all__ = ["CONSTANT_PATH", "CONTENDERS", "create_app"]

#: Contender name -> module whose ``create_app`` builds it.
CONTENDERS = {
    "flask-wechat": "examples.app",
    #: The example app with proposed flask-wechat changes (``BENCH_PATCHES``); only with ``--patch``.
    "flask-wechat+patches": "examples.app",
    "hand-written": "benchmarks.apps.handwritten",
    "stock-authlib": "benchmarks.apps.stock_authlib",
}

_counts = threading.local()

#: A route of every contender that answers :data:`_CONSTANT` and does nothing else.
CONSTANT_PATH = "/_bench/constant"
#: The shape and size of a ``wx.config`` answer, made up.
_CONSTANT = {
    "appId": "wx0000000000000000",
    "timestamp": 1700000000,
    "nonceStr": "0123456789abcdef",
    "signature": "0" * 40,
}


def _constant() -> Response:
    response = jsonify(_CONSTANT)
    response.headers["Cache-Control"] = "no-store"
    return response


def _reset() -> None:
    _counts.sql = 0
    _counts.commits = 0


def _on_statement(*args: Any, **kwargs: Any) -> None:
    _counts.sql = getattr(_counts, "sql", 0) + 1


def _on_commit(*args: Any, **kwargs: Any) -> None:
    _counts.commits = getattr(_counts, "commits", 0) + 1


def _add_counts(response: Response) -> Response:
    response.headers["X-Bench-SQL"] = str(getattr(_counts, "sql", 0))
    response.headers["X-Bench-Commits"] = str(getattr(_counts, "commits", 0))
    return response


def _instrument(app: Flask) -> None:
    event.listen(Engine, "before_cursor_execute", _on_statement)
    event.listen(Engine, "commit", _on_commit)
    app.before_request_funcs.setdefault(None, []).insert(0, _reset)
    app.after_request(_add_counts)
    app.add_url_rule(CONSTANT_PATH, "bench_constant", _constant)


def create_app() -> Flask:
    """The contender named by ``BENCH_CONTENDER``, instrumented."""
    module = importlib.import_module(CONTENDERS[os.environ["BENCH_CONTENDER"]])
    app: Flask = module.create_app()
    _instrument(app)
    patches = [name for name in os.environ.get("BENCH_PATCHES", "").split(",") if name]
    if patches:
        from .patches import apply

        apply(app, patches)
    return app


if __name__ == "__main__":
    create_app()
