"""The app of ``../v1`` after "Add WeChat login to an existing app": same users, same passwords.

People still log in with a password, or with WeChat; a logged-in person binds their WeChat
on the account page. ``diff -ru examples/existing_app/v1 examples/existing_app/v2`` is the
whole change, the migration ``flask db migrate`` wrote included. From the repository root::

    export FLASK_WECHAT_FAKE=true  # every flask command loads the app, which needs WeChat: the built-in fake
    flask --app examples.existing_app.v2.app db upgrade
    flask --app examples.existing_app.v2.app run --debug

With a real Official Account, set ``FLASK_WECHAT_APPID`` and ``FLASK_WECHAT_SECRET`` instead.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from flask_wechat import WeChat, WeChatAccountMixin, WeChatUserMixin

db = SQLAlchemy()
migrate = Migrate()
login_manager = LoginManager()
login_manager.login_view = "login"


# --8<-- [start:models]
class User(UserMixin, WeChatUserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # Someone who signs up with WeChat has neither an email nor a password.
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return self.password_hash is not None and check_password_hash(self.password_hash, password)


class WeChatAccount(WeChatAccountMixin, db.Model):
    __tablename__ = "wechat_account"


wechat = WeChat(user_model=User, account_model=WeChatAccount)
# --8<-- [end:models]


# --8<-- [start:user_loader]
@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))
    # --8<-- [end:user_loader]


def local_url(target: str | None) -> str:
    """``target`` when it is a path on this site, else the account page: no open redirect."""
    if target and target.startswith("/") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("account")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY="dev-only-change-me",  # noqa: S106 - set FLASK_SECRET_KEY in production
        SQLALCHEMY_DATABASE_URI="sqlite:///existing-app.db",  # in the instance folder
    )
    app.config.from_prefixed_env()
    app.config.update(test_config or {})
    # --8<-- [start:init]
    if app.config.get("WECHAT_FAKE") is True:
        from flask_wechat.testing import install

        install(app)  # the built-in fake WeChat, for trying it out: never in production
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(app.root_path, "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    wechat.init_app(app)
    # --8<-- [end:init]

    @app.get("/")
    def index() -> str:
        return render_template("index.html")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> str | Response:
        error = None
        if request.method == "POST":
            user = db.session.scalar(select(User).filter_by(email=request.form["email"]))
            if user is not None and user.check_password(request.form["password"]):
                login_user(user)
                return redirect(local_url(request.args.get("next")))
            error = "Wrong email or password."
        return render_template("login.html", error=error, next_url=local_url(request.args.get("next")))

    @app.post("/logout")
    def logout() -> Response:
        logout_user()
        return redirect(url_for("index"))

    @app.get("/account")
    @login_required
    def account() -> str:
        return render_template("account.html", user=current_user, wechat_account=wechat.account(current_user))

    @app.cli.command("add-user")
    @click.argument("email")
    @click.password_option()
    def add_user(email: str, password: str) -> None:
        """Add a user who logs in with EMAIL and a password."""
        user = User(email=email)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()

    return app
