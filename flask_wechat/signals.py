"""Blinker signals the app may observe; their return values never steer a login.

Every signal is sent with the Flask app as sender.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = ["account_created", "logged_in", "logged_out", "login_failed", "snapshot_user"]

_signals = Namespace()

#: A WeChat login completed: ``user``, ``account``, ``new_user``, ``new_account``.
logged_in = _signals.signal("wechat-logged-in")
#: A WeChat identity was stored for the first time: ``user``, ``account``, ``new_user``.
account_created = _signals.signal("wechat-account-created")
#: A login could not be completed: ``error`` (a :class:`~flask_wechat.errors.WeChatError`).
login_failed = _signals.signal("wechat-login-failed")
#: The user logged out through the blueprint: ``user``.
logged_out = _signals.signal("wechat-logged-out")
#: WeChat sent a snapshot-page virtual identity (``is_snapshotuser``): nothing was stored; ``flow``.
snapshot_user = _signals.signal("wechat-snapshot-user")
