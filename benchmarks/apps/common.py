"""What the two baseline apps share, written the way an app without flask-wechat would be.

The same tables (``users``, ``wechat_accounts``), the same ``/`` and ``/profile`` pages as the
example app (from a template file, which Jinja compiles once), Flask-Login with a user loader, and
one function that stores a finished login. Each baseline adds only its own ``/login`` and ``/callback``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flask import Flask, redirect, render_template, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, logout_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.wrappers import Response

__all__ = ["User", "WeChatAccount", "db", "make_app", "safe_next", "save_login"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
login_manager.login_view = "login"


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class WeChatAccount(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "wechat_accounts"
    __table_args__ = (UniqueConstraint("appid", "openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    appid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    nickname: Mapped[str] = mapped_column(String(255), default="")
    avatar_url: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(String(64), default="")
    access_token: Mapped[str | None] = mapped_column(Text, default=None)
    refresh_token: Mapped[str | None] = mapped_column(Text, default=None)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    profile_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)

    user: Mapped[User] = relationship()


@login_manager.user_loader  # type: ignore[untyped-decorator]
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def _account_of(user: Any) -> WeChatAccount | None:
    return db.session.execute(select(WeChatAccount).filter_by(user_id=user.id).limit(1)).scalar_one_or_none()


def safe_next(value: str | None) -> str:
    """Only same-site paths, the usual hand-rolled check."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def save_login(appid: str, token: dict[str, Any], profile: dict[str, Any] | None) -> User:
    """Find or create the account of a finished login, update it, commit once."""
    openid = token["openid"]
    account = db.session.execute(select(WeChatAccount).filter_by(appid=appid, openid=openid)).scalar_one_or_none()
    if account is None:
        account = WeChatAccount(appid=appid, openid=openid, user=User())
        db.session.add(account)
    account.unionid = token.get("unionid") or (profile or {}).get("unionid") or account.unionid
    if profile:
        account.nickname = profile.get("nickname", "")
        account.avatar_url = profile.get("headimgurl", "")
        account.profile_updated_at = _now()
    account.scope = token.get("scope", "")
    account.access_token = token["access_token"]
    account.refresh_token = token.get("refresh_token")
    account.access_token_expires_at = _now() + timedelta(seconds=int(token.get("expires_in", 7200)))
    user: User = account.user
    db.session.commit()
    return user


def make_app(name: str) -> Flask:
    """The app shell: config from ``FLASK_*`` variables, database, Flask-Login and the two pages."""
    app = Flask(name, template_folder=str(Path(__file__).with_name("templates")))
    app.config.from_mapping(
        SECRET_KEY="baseline-only-change-me",  # noqa: S106 - overridden by FLASK_SECRET_KEY
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.abspath("baseline.db"),
        WECHAT_SCOPE="snsapi_userinfo",
    )
    app.config.from_prefixed_env()
    db.init_app(app)
    login_manager.init_app(app)

    @app.get("/")
    def index() -> str:
        account = _account_of(current_user) if current_user.is_authenticated else None
        return render_template("page.html", account=account, user=current_user)

    @app.get("/profile")
    @login_required  # type: ignore[untyped-decorator]
    def profile() -> str:
        return render_template("page.html", account=_account_of(current_user), user=current_user)

    @app.route("/logout", methods=["GET", "POST"])
    def logout() -> Response:
        logout_user()
        return redirect(url_for("index"))

    with app.app_context():
        db.create_all()
    return app
