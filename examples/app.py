"""The flask-wechat demo: a public page and a profile behind ``@login_required``, in Chinese and English.

Without any WeChat AppID configured it chooses to run against the built-in fake WeChat
(``flask_wechat.testing.install``, with ``WECHAT_FAKE = True`` as its explicit opt-in) on
SQLite, with all three WeChat apps (Official Account, website QR, mini program) and a WeCom corp::

    flask --app examples/app.py run

With real apps, set ``FLASK_WECHAT_APPID``/``FLASK_WECHAT_SECRET`` (Official Account),
``FLASK_WECHAT_OPEN_APPID``/``FLASK_WECHAT_OPEN_SECRET`` (website QR) and/or
``FLASK_WECHAT_MINIPROGRAM_APPID``/``..._SECRET`` and/or, for WeCom (企业微信),
``FLASK_WECHAT_WECOM_CORPID``/``..._AGENTID``/``..._SECRET`` (Flask reads ``FLASK_``-prefixed
environment variables into the config).

Its pages speak the visitor's language as the extension's do (``pick_language`` on the
browser's Accept-Language) and extend the extension's ``wechat/base.html``, so they look alike.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, render_template, request, url_for
from flask_login import current_user, login_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_wechat import WeChat, WeChatAccountMixin, WeChatUserMixin
from flask_wechat.i18n import MESSAGES, pick_language
from flask_wechat.protocol import DEFAULT_OPEN_BASE_URL, is_wechat_browser
from flask_wechat.testing import install

APPID_KEYS = ("WECHAT_APPID", "WECHAT_OPEN_APPID", "WECHAT_MINIPROGRAM_APPID", "WECHAT_WECOM_CORPID")
#: Where WeChat serves the JS-SDK (jweixin); the fake serves a stand-in at the same path.
JWEIXIN_PATH = "/open/js/jweixin-1.6.0.js"

#: The demo's own words; the extension's are in flask_wechat.i18n.MESSAGES (``t`` in templates).
WORDS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "flask-wechat 演示",
        "heading": "微信登录演示",
        "intro": "这个页面是公开的。“我的资料”需要微信登录：在微信里通过公众号授权，在电脑浏览器上扫码。",
        "fake": "演示模式：没有配置微信 AppID，所有登录都由内置的模拟微信完成，可以任选一个测试用户登录。",
        "profile": "微信登录，查看我的资料",
        "qr": "在本页扫码登录",
        "choose": "选择登录方式",
        "hello": "你好，",
        "no_nickname": "微信用户",
        "avatar": "微信头像",
        "logged_in": "已通过微信登录",
        "user_id": "本站用户 ID",
        "phone": "手机号（在小程序中授权）",
        "apps": "你用过的微信应用",
        "official_account": "公众号",
        "website": "网站应用",
        "miniprogram": "小程序",
        "wecom": "企业微信",
        "other_app": "其他应用",
        "bind": "绑定微信",
        "bind_hint": "把当前的微信身份绑定到这个账号（在另一个微信应用中登录过时，会合并到同一个用户）。",
        "more": "更多演示",
        "miniprogram_demo": "模拟小程序：登录并授权手机号",
        "jssdk_link": "微信内网页：JS-SDK（wx.config）",
        "jssdk_title": "JS-SDK 演示",
        "jssdk_intro": "这个页面调用 wx.config：签名由服务器为本页的完整地址（含查询参数）生成，"
        "所用的 jsapi_ticket 由所有进程共享。",
        "jssdk_pending": "正在验证 wx.config……",
        "jssdk_ready": "wx.config 验证通过，可以调用 JS 接口了。",
        "jssdk_error": "wx.config 验证失败：",
    },
    "en": {
        "title": "flask-wechat demo",
        "heading": "WeChat login demo",
        "intro": "This page is public. Your profile needs a WeChat login: inside WeChat through the "
        "Official Account, in a computer's browser by QR code.",
        "fake": "Demo mode: no WeChat AppID is configured, so every login goes through the built-in fake "
        "WeChat, where you pick a test user to log in as.",
        "profile": "Log in with WeChat to see my profile",
        "qr": "Scan a QR code on this site",
        "choose": "Other ways to log in",
        "hello": "Hello, ",
        "no_nickname": "WeChat user",
        "avatar": "WeChat avatar",
        "logged_in": "Logged in with WeChat",
        "user_id": "User id on this site",
        "phone": "Phone number (shared in the mini program)",
        "apps": "WeChat apps you used",
        "official_account": "Official Account",
        "website": "Website app",
        "miniprogram": "Mini program",
        "wecom": "WeCom",
        "other_app": "Another app",
        "bind": "Link WeChat",
        "bind_hint": "Links your current WeChat identity to this account (joined to this user if you used "
        "another WeChat app before).",
        "more": "More demos",
        "miniprogram_demo": "Simulated mini program: log in and share the phone number",
        "jssdk_link": "A page inside WeChat: JS-SDK (wx.config)",
        "jssdk_title": "JS-SDK demo",
        "jssdk_intro": "This page calls wx.config: the server signs this page's full address (query included) "
        "with the jsapi_ticket every worker shares.",
        "jssdk_pending": "Checking wx.config…",
        "jssdk_ready": "wx.config verified: the JS interfaces are ready.",
        "jssdk_error": "wx.config failed:",
    },
}
#: Which kind of WeChat app each AppID key configures (a word in WORDS).
APP_KINDS = {
    "WECHAT_APPID": "official_account",
    "WECHAT_OPEN_APPID": "website",
    "WECHAT_MINIPROGRAM_APPID": "miniprogram",
    "WECHAT_WECOM_CORPID": "wecom",
}


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

    def simulator_url() -> str:
        """The fake's mini program page, wired to this app's JSON login and phone number endpoints."""
        endpoints = {"login": url_for("wechat.miniprogram_login"), "phone": url_for("wechat.miniprogram_phone")}
        fake = request.script_root + current_app.config["WECHAT_OPEN_BASE_URL"]
        return f"{fake}/_fake/miniprogram?{urlencode(endpoints)}"

    def page() -> str:
        """The demo's one page, in the visitor's language: public, or the logged-in user's profile."""
        language = pick_language(request.headers.get("Accept-Language"), current_app.config["WECHAT_DEFAULT_LANGUAGE"])
        words = WORDS[language]
        context: dict[str, Any] = {
            "lang": language,
            "t": MESSAGES[language],
            "w": words,
            "fake": current_app.config.get("WECHAT_FAKE") is True,
            "in_wechat": is_wechat_browser(request.headers.get("User-Agent", "")),
            "qr": bool(current_app.config.get("WECHAT_OPEN_APPID")),
            "jssdk": bool(current_app.config.get("WECHAT_APPID")),
            "miniprogram_demo": simulator_url() if current_app.config.get("WECHAT_FAKE") is True else None,
            "user": None,
        }
        if current_user.is_authenticated:
            accounts = wechat.accounts(current_user)
            kinds = {current_app.config.get(key): kind for key, kind in APP_KINDS.items()}
            latest = max(accounts, key=lambda account: account.updated_at) if accounts else None
            context.update(
                account=latest,
                accounts=[(account, words[kinds.get(account.appid, "other_app")]) for account in accounts],
                user=current_user,
                # Only once they shared it from the mini program (POST /wechat/miniprogram/phone).
                phone=wechat.phone_number(current_user, accounts),
                # Shown when there is no avatar; nicknames may start with a control character.
                initial=next((ch for ch in latest.nickname if ch > " "), "?") if latest else "?",
            )
        return render_template("page.html", **context)

    @app.get("/")
    def index() -> str:
        return page()

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return page()

    @app.get("/jssdk")
    def jssdk() -> str:
        """A page inside WeChat that calls wx.config, signed for its own URL (the fake's wx stand-in checks it)."""
        language = pick_language(request.headers.get("Accept-Language"), current_app.config["WECHAT_DEFAULT_LANGUAGE"])
        # Where the authorize page is, the wx script is: WeChat's own, or a stand-in (the fake) beside it.
        open_base = wechat.runtime.settings.open_base_url
        if open_base == DEFAULT_OPEN_BASE_URL:
            script = "https://res.wx.qq.com" + JWEIXIN_PATH
        else:
            script = (request.script_root if open_base.startswith("/") else "") + open_base + JWEIXIN_PATH
        return render_template("jssdk.html", lang=language, t=MESSAGES[language], w=WORDS[language], jweixin_url=script)

    return app
