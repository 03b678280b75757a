"""The flask-wechat demo: a public page and a profile behind ``@login_required``.

Without any WeChat AppID configured it chooses to run against the built-in fake WeChat
(``flask_wechat.testing.install``, with ``WECHAT_FAKE = True`` as its explicit opt-in) on
SQLite, with all three apps (Official Account, website QR, mini program)::

    flask --app examples/app.py run

With real apps, set ``FLASK_WECHAT_APPID``/``FLASK_WECHAT_SECRET`` (Official Account),
``FLASK_WECHAT_OPEN_APPID``/``FLASK_WECHAT_OPEN_SECRET`` (website QR) and/or
``FLASK_WECHAT_MINIPROGRAM_APPID``/``..._SECRET`` (Flask reads ``FLASK_``-prefixed
environment variables into the config).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, render_template
from flask_login import current_user, login_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_wechat import WeChat, WeChatAccountMixin, WeChatUserMixin
from flask_wechat.testing import install

APPID_KEYS = ("WECHAT_APPID", "WECHAT_OPEN_APPID", "WECHAT_MINIPROGRAM_APPID")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(WeChatUserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"


class WeChatAccount(WeChatAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "wechat_accounts"


wechat = WeChat(user_model=User, account_model=WeChatAccount)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the demo app; ``test_config`` overrides everything else."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        # Every worker must share one SECRET_KEY; set FLASK_SECRET_KEY in production.
        SECRET_KEY="demo-only-change-me",  # noqa: S106 - a demo default, overridden by FLASK_SECRET_KEY
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "demo.db"),
    )
    app.config.from_prefixed_env()
    app.config.update(test_config or {})
    if app.config.get("WECHAT_FAKE") is None and not any(app.config.get(key) for key in APPID_KEYS):
        # No WeChat app configured: this demo chooses to run every flow against the built-in fake.
        app.config["WECHAT_FAKE"] = True
    if app.config.get("WECHAT_FAKE") is True:
        install(app)

    db.init_app(app)
    wechat.init_app(app)
    with app.app_context():
        db.create_all()

    def page() -> str:
        if not current_user.is_authenticated:
            return render_template("page.html", account=None)
        accounts = wechat.accounts(current_user)
        latest = max(accounts, key=lambda account: account.updated_at) if accounts else None
        return render_template("page.html", account=latest, accounts=accounts, user=current_user)

    @app.get("/")
    def index() -> str:
        return page()

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return page()

    return app
