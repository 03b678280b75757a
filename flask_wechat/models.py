"""SQLAlchemy 2 mixins the app composes into its own ``db.Model`` classes.

The app owns its tables (names, extra columns, migrations); flask-wechat only
describes what it needs: a local user Flask-Login can load, and one WeChat
account row per ``(appid, openid)`` pointing at that user. ``unionid`` links the
accounts one person has in several WeChat apps.

Example::

    class User(WeChatUserMixin, db.Model):
        __tablename__ = "users"

    class WeChatAccount(WeChatAccountMixin, db.Model):
        __tablename__ = "wechat_accounts"
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "WeChatAccountMixin", "WeChatUserMixin", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always comes back timezone-aware.

    SQLite and MariaDB keep no zone, so a plain ``DateTime(timezone=True)`` returns
    naive values there; comparing them with aware ones raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class WeChatUserMixin(UserMixin):  # type: ignore[misc]  # Flask-Login is untyped
    """A local user Flask-Login can log in: an integer id, the person's unionid, when it was created."""

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The person's unionid across all WeChat apps of one Open Platform account; unique, so that
    #: two simultaneous first logins of one person cannot create two users.
    wechat_unionid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    #: Set when a refresh token of theirs died: the next protected page sends them through WeChat.
    wechat_reauthorization_required: Mapped[bool] = mapped_column(default=False)
    #: Part of every mini program bearer token; logout bumps it, which revokes the tokens issued before.
    wechat_token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WeChatAccountMixin:
    """One WeChat identity ``(appid, openid)``, its profile and its tokens.

    Set ``wechat_user_table`` / ``wechat_user_class`` on the subclass when the user
    model is not the table ``users`` mapped by a class named ``User``.
    """

    wechat_user_table: ClassVar[str] = "users"
    wechat_user_class: ClassVar[str] = "User"

    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64), default=None)
    nickname: Mapped[str] = mapped_column(String(255), default="")
    avatar_url: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(String(64), default="")
    access_token: Mapped[str | None] = mapped_column(Text, default=None)
    refresh_token: Mapped[str | None] = mapped_column(Text, default=None)
    #: A mini program's session_key (sealed like the tokens); never sent to a client.
    session_key: Mapped[str | None] = mapped_column(Text, default=None)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: WeChat never extends a refresh token: 30 days after the authorization it came from.
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    profile_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @declared_attr
    def user_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey(f"{cls.wechat_user_table}.id", ondelete="CASCADE"), index=True)

    @declared_attr
    def user(cls) -> Mapped[Any]:
        return relationship(cls.wechat_user_class, lazy="joined")

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        table = getattr(cls, "__tablename__", "wechat_accounts")
        return (
            UniqueConstraint("appid", "openid", name=f"uq_{table}_appid_openid"),
            Index(f"ix_{table}_unionid", "unionid"),
            # Nicknames carry 4-byte emoji; MySQL's legacy "utf8" cannot store them.
            {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"},
        )

    def __repr__(self) -> str:
        # Tokens stay out of reprs: they end up in logs and tracebacks.
        return f"<{type(self).__name__} id={self.id} appid={self.appid} openid={self.openid}>"
