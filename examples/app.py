"""The flask-wechat demo: a public page and a profile behind ``@login_required``.

Without any WeChat AppID configured it runs against the built-in fake WeChat on SQLite,
with all three apps (Official Account, website QR, mini program)::

    flask --app examples/app.py run

With real apps, set ``FLASK_WECHAT_APPID``/``FLASK_WECHAT_SECRET`` (Official Account),
``FLASK_WECHAT_OPEN_APPID``/``FLASK_WECHAT_OPEN_SECRET`` (website QR) and/or
``FLASK_WECHAT_MINIPROGRAM_APPID``/``..._SECRET`` (Flask reads ``FLASK_``-prefixed
environment variables into the config).
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
  <h2>WeChat apps you used</h2>
  <table id="accounts">
    <tr><th>AppID</th><th>openid</th><th>nickname</th></tr>
    {% for a in accounts %}<tr><td>{{ a.appid }}</td><td>{{ a.openid }}</td><td>{{ a.nickname }}</td></tr>{% endfor %}
  </table>
  <p><a id="bind" href="{{ url_for('wechat.bind', next=url_for('profile')) }}">Link WeChat in another app</a></p>
  <form method="post" action="{{ url_for('wechat.logout') }}"><button id="logout">Log out</button></form>
{% else %}
  <h1>flask-wechat demo</h1>
  <p>This page is public.
     <a id="profile-link" href="{{ url_for('profile') }}">Your profile</a> needs a WeChat login: inside WeChat
     through the Official Account, on a desktop browser by QR code.</p>
  <p><a id="qr-link" href="{{ url_for('wechat.qr', next=url_for('profile')) }}">Scan a QR code on this site</a></p>
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
    if not any(app.config.get(key) for key in ("WECHAT_APPID", "WECHAT_OPEN_APPID", "WECHAT_MINIPROGRAM_APPID")):
        # No WeChat app configured: every flow runs against the built-in fake WeChat.
        app.config["WECHAT_FAKE"] = True

    db.init_app(app)
    wechat.init_app(app)
    with app.app_context():
        db.create_all()

    def page() -> str:
        if not current_user.is_authenticated:
            return render_template_string(PAGE, account=None)
        accounts = wechat.accounts(current_user)
        return render_template_string(PAGE, account=wechat.account(current_user), accounts=accounts, user=current_user)

    @app.get("/")
    def index() -> str:
        return page()

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return page()

    return app
