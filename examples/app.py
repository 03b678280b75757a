"""The flask-wechat demo: a public page and a profile behind ``@login_required``.

Without ``WECHAT_APPID`` it runs against the built-in fake WeChat on SQLite::

    flask --app examples/app.py run

With a real Official Account, set ``FLASK_WECHAT_APPID`` and ``FLASK_WECHAT_SECRET``
(Flask reads ``FLASK_``-prefixed environment variables into the config).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, render_template_string
from flask_login import current_user, login_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_wechat import WeChat, WeChatAccountMixin, WeChatUserMixin


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(WeChatUserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"


class WeChatAccount(WeChatAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "wechat_accounts"


wechat = WeChat(user_model=User, account_model=WeChatAccount)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>flask-wechat demo</title></head>
<body style="font-family: -apple-system, 'PingFang SC', sans-serif;
             max-width: 32rem; margin: 2rem auto; padding: 0 1rem">
{% if account %}
  <h1>Hello, <span id="nickname">{{ account.nickname or "WeChat user" }}</span></h1>
  {% if account.avatar_url %}<img src="{{ account.avatar_url }}" alt="" width="66" height="66">{% endif %}
  <dl>
    <dt>Local user id</dt><dd id="user-id">{{ user.id }}</dd>
    <dt>openid</dt><dd id="openid">{{ account.openid }}</dd>
    <dt>unionid</dt><dd id="unionid">{{ account.unionid or "-" }}</dd>
  </dl>
  <form method="post" action="{{ url_for('wechat.logout') }}"><button id="logout">Log out</button></form>
{% else %}
  <h1>flask-wechat demo</h1>
  <p>This page is public.
     <a id="profile-link" href="{{ url_for('profile') }}">Your profile</a> needs a WeChat login.</p>
{% endif %}
</body></html>"""


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
    if not app.config.get("WECHAT_APPID"):
        app.config["WECHAT_FAKE"] = True

    db.init_app(app)
    wechat.init_app(app)
    with app.app_context():
        db.create_all()

    @app.get("/")
    def index() -> str:
        account = wechat.account(current_user) if current_user.is_authenticated else None
        return render_template_string(PAGE, account=account, user=current_user)

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return render_template_string(PAGE, account=wechat.account(current_user), user=current_user)

    return app
