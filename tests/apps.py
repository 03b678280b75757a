"""A small app factory for the library's own tests, with its own models."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_login import current_user, login_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_wechat import WeChat, WeChatAccountMixin, WeChatUserMixin
from flask_wechat.testing.fake import DEMO_APPID, DEMO_SECRET


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(WeChatUserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"
    display_name: Mapped[str] = mapped_column(String(255), default="")


class WeChatAccount(WeChatAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "wechat_accounts"


def make_app(base_url: str | None, database_uri: str, wechat: WeChat | None = None, **config: Any) -> Flask:
    """An app wired to the WeChat at ``base_url`` (both hosts), with a protected ``/profile``."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=database_uri,
        WECHAT_APPID=DEMO_APPID,
        WECHAT_SECRET=DEMO_SECRET,
        WECHAT_RETRIES=1,
    )
    if base_url is not None:
        app.config.update(WECHAT_OPEN_BASE_URL=base_url, WECHAT_API_BASE_URL=base_url)
    app.config.update(config)
    db.init_app(app)
    wechat = wechat or WeChat(user_model=User, account_model=WeChatAccount)
    wechat.init_app(app)
    app.extensions["test_wechat"] = wechat
    with app.app_context():
        db.create_all()

    @app.get("/")
    def index() -> str:
        return "public"

    @app.get("/profile")
    @login_required
    def profile() -> str:
        account = wechat.account(current_user)
        return f"user={current_user.id} openid={account.openid} nickname={account.nickname}"

    return app
