"""The mixins adapt to the app's own models: Flask-Login's UserMixin in either order, the app's
table names, the app's own ``__table_args__``; and what they add fits a table that holds rows."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from flask import Flask
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Index, Integer, MetaData, String, UniqueConstraint, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_wechat import ConfigurationError, WeChat, WeChatAccountMixin, WeChatUserMixin
from flask_wechat.models import UTCDateTime, render_item
from flask_wechat.testing.fake import DEMO_APPID, DEMO_SECRET


def models(
    user_bases: tuple[type, ...] = (WeChatUserMixin,),
    account_bases: tuple[type, ...] = (WeChatAccountMixin,),
    account_attrs: dict[str, Any] | None = None,
    **user_attrs: Any,
) -> tuple[SQLAlchemy, Any, Any]:
    """A fresh Flask-SQLAlchemy with a ``User`` and a ``WeChatAccount``, table names as it derives them."""
    db = SQLAlchemy()
    user = type("User", (*user_bases, db.Model), {"__module__": __name__, **user_attrs})
    account = type("WeChatAccount", (*account_bases, db.Model), {"__module__": __name__, **(account_attrs or {})})
    return db, user, account


def app_for(db: SQLAlchemy, tmp_path: Any, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'models.db'}",
        WECHAT_APPID=DEMO_APPID,
        WECHAT_SECRET=DEMO_SECRET,
        **config,
    )
    db.init_app(app)
    return app


# -- Flask-Login's UserMixin, in either order -------------------------------------------------


@pytest.mark.parametrize(
    "bases", [(UserMixin, WeChatUserMixin), (WeChatUserMixin, UserMixin), (WeChatUserMixin,)], ids=str
)
def test_the_user_mixin_goes_with_flask_logins_in_either_order(bases: tuple[type, ...], tmp_path: Any) -> None:
    db, User, WeChatAccount = models(bases)
    app = app_for(db, tmp_path)
    WeChat(app, user_model=User, account_model=WeChatAccount)
    with app.app_context():
        db.create_all()
        first, second = User(), User()
        db.session.add_all([first, second])
        db.session.commit()
        assert first.is_authenticated and first.is_active and not first.is_anonymous
        assert first.get_id() == str(first.id)
        assert first != second and first == db.session.get(User, first.id)
        assert len({first, second}) == 2


# -- the app's table names --------------------------------------------------------------------


def test_the_account_finds_a_user_table_named_by_flask_sqlalchemy(tmp_path: Any) -> None:
    db, User, WeChatAccount = models()
    assert User.__table__.name == "user"
    [fk] = WeChatAccount.__table__.c.user_id.foreign_keys
    assert fk.target_fullname == "user.id"
    app = app_for(db, tmp_path)
    WeChat(app, user_model=User, account_model=WeChatAccount)
    with app.app_context():
        db.create_all()  # was NoReferencedTableError: ... 'users'
        user = User()
        db.session.add(WeChatAccount(appid=DEMO_APPID, openid="o1", user=user))
        db.session.commit()
        assert db.session.get(WeChatAccount, 1).user is user


def test_the_account_follows_a_table_name_and_primary_key_of_the_apps_own() -> None:
    class Base(DeclarativeBase):
        pass

    class Member(WeChatUserMixin, Base):
        __tablename__ = "members"
        id: Mapped[int] = mapped_column("member_no", primary_key=True)

    class Login(WeChatAccountMixin, Base):
        __tablename__ = "member_logins"

    [fk] = Login.__table__.c.user_id.foreign_keys
    assert fk.target_fullname == "members.member_no"
    assert inspect(Login).relationships["user"].mapper.class_ is Member


def test_wechat_user_table_and_class_still_override() -> None:
    class Base(DeclarativeBase):
        pass

    class Person(WeChatUserMixin, Base):
        __tablename__ = "people"

    class Alias(Person):  # single-table inheritance: two user classes, one table
        pass

    class Account(WeChatAccountMixin, Base):
        __tablename__ = "accounts"
        wechat_user_table = "people"
        wechat_user_class = "Alias"

    [fk] = Account.__table__.c.user_id.foreign_keys
    assert fk.target_fullname == "people.id"
    assert inspect(Account).relationships["user"].mapper.class_ is Alias


def test_an_account_declared_before_any_user_model_says_what_to_do() -> None:
    class Base(DeclarativeBase):
        pass

    with pytest.raises(TypeError, match=r"WeChatUserMixin.*before.*wechat_user_table"):

        class Account(WeChatAccountMixin, Base):
            __tablename__ = "accounts"


def test_two_user_models_in_one_registry_need_the_override() -> None:
    class Base(DeclarativeBase):
        pass

    class Customer(WeChatUserMixin, Base):
        __tablename__ = "customers"

    class Staff(WeChatUserMixin, Base):
        __tablename__ = "staff"

    with pytest.raises(TypeError, match=r"Customer.*Staff.*wechat_user_table"):

        class Account(WeChatAccountMixin, Base):
            __tablename__ = "accounts"

    class StaffAccount(WeChatAccountMixin, Base):
        __tablename__ = "staff_accounts"
        wechat_user_table = "staff"

    assert inspect(StaffAccount).relationships["user"].mapper.class_ is Staff


# -- what lands on a table that holds rows ------------------------------------------------------


def named_constraints(table: Any) -> list[Any]:
    return [c for c in table.constraints if c is not table.primary_key] + list(table.indexes)


def test_the_unionid_constraint_is_named_after_the_table_even_with_the_apps_own_table_args() -> None:
    class Base(DeclarativeBase):
        pass

    class Account(UserMixin, WeChatUserMixin, Base):
        __tablename__ = "account"
        __table_args__ = (UniqueConstraint("email", name="uq_account_email"), Index("ix_account_name", "name"))
        email: Mapped[str] = mapped_column(String(255))
        name: Mapped[str] = mapped_column(String(255))

    uniques = {
        c.name: [col.name for col in c.columns]
        for c in Account.__table__.constraints
        if isinstance(c, UniqueConstraint)
    }
    assert uniques == {"uq_account_email": ["email"], "uq_account_wechat_unionid": ["wechat_unionid"]}
    assert {index.name for index in Account.__table__.indexes} == {"ix_account_name"}


def test_every_column_the_user_mixin_adds_is_nullable_or_server_defaulted() -> None:
    _, User, _ = models(
        (UserMixin, WeChatUserMixin), id=mapped_column(Integer, primary_key=True), email=mapped_column(String(255))
    )
    added = [c for c in User.__table__.columns if c.name not in ("id", "email")]
    assert {c.name for c in added} == {
        "wechat_unionid",
        "wechat_reauthorization_required",
        "wechat_token_version",
        "created_at",
    }
    for column in added:
        assert column.nullable or column.server_default is not None, column.name


def test_every_account_column_with_a_default_has_it_on_the_server_too() -> None:
    _, _, WeChatAccount = models()
    for column in WeChatAccount.__table__.columns:
        # MySQL refuses a DEFAULT on TEXT columns: avatar_url's stays in Python.
        if column.default is not None and column.name != "avatar_url" and not column.nullable:
            assert column.server_default is not None, column.name


def test_every_constraint_and_index_has_a_name() -> None:
    _, User, WeChatAccount = models()
    for table in (User.__table__, WeChatAccount.__table__):
        for item in named_constraints(table):
            assert isinstance(item.name, str) and item.name, (table.name, item)
    fk_names = [c.name for c in WeChatAccount.__table__.foreign_key_constraints]
    assert fk_names == ["fk_we_chat_account_user_id_user"]


def test_a_copy_of_the_tables_has_each_constraint_once() -> None:
    # Alembic copies tables (to_table, to_metadata); a constraint added twice renders twice.
    _, User, WeChatAccount = models()
    copies = MetaData()
    for table in (User.__table__, WeChatAccount.__table__):
        copy = table.to_metadata(copies)

        def names(constraints: Any) -> list[tuple[str, str]]:
            return sorted((type(c).__name__, str(c.name)) for c in constraints)

        assert names(copy.constraints) == names(table.constraints), table.name


def test_utc_datetime_renders_as_a_plain_sqlalchemy_type_in_a_revision() -> None:
    class Context:
        opts: ClassVar[dict[str, Any]] = {"sqlalchemy_module_prefix": "sa."}

    assert render_item("type", UTCDateTime(), Context()) == "sa.DateTime(timezone=True)"
    assert render_item("type", String(5), Context()) is False
    assert render_item("column", UTCDateTime(), Context()) is False


# -- init_app refuses models it cannot work with -------------------------------------------------


def test_init_app_refuses_a_user_model_without_the_mixin(tmp_path: Any) -> None:
    db, User, WeChatAccount = models(
        (UserMixin,),
        account_attrs={"wechat_user_table": "user", "wechat_user_class": "User"},
        id=mapped_column(Integer, primary_key=True),
        name=mapped_column(String(80), default=""),
    )
    with pytest.raises(ConfigurationError) as caught:
        WeChat(app_for(db, tmp_path), user_model=User, account_model=WeChatAccount)
    message = str(caught.value)
    for piece in ("User", "wechat_unionid", "wechat_reauthorization_required", "wechat_token_version"):
        assert piece in message
    assert "add WeChatUserMixin" in message


def test_init_app_refuses_an_account_model_without_the_mixin(tmp_path: Any) -> None:
    db, User, WeChatAccount = models(
        account_bases=(),
        account_attrs={
            "id": mapped_column(Integer, primary_key=True),
            "appid": mapped_column(String(32)),
            "openid": mapped_column(String(64)),
        },
    )
    with pytest.raises(ConfigurationError) as caught:
        WeChat(app_for(db, tmp_path), user_model=User, account_model=WeChatAccount)
    message = str(caught.value)
    assert "WeChatAccount" in message and "user_id" in message and "refresh_token" in message
    assert "add WeChatAccountMixin" in message


def test_init_app_refuses_models_that_are_not_mapped(tmp_path: Any) -> None:
    db, _, WeChatAccount = models()
    with pytest.raises(ConfigurationError, match=r"user_model .* is not a mapped SQLAlchemy model"):
        WeChat(app_for(db, tmp_path), user_model=WeChatUserMixin, account_model=WeChatAccount)


def test_init_app_refuses_an_account_linked_to_another_user_model(tmp_path: Any) -> None:
    db = SQLAlchemy()

    class User(WeChatUserMixin, db.Model):  # type: ignore[name-defined,misc]
        pass

    class Account(WeChatAccountMixin, db.Model):  # type: ignore[name-defined,misc]
        pass

    class Admin(WeChatUserMixin, db.Model):  # type: ignore[name-defined,misc]
        pass

    with pytest.raises(ConfigurationError, match=r"Account\.user_id refers to the table 'user'.*Admin.*'admin'"):
        WeChat(app_for(db, tmp_path), user_model=Admin, account_model=Account)
