"""Tokens encrypted at rest with Fernet keys from config, and rotated to a new key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import select

from flask_wechat import ConfigurationError
from flask_wechat.testing.fake import FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import WeChatAccount, db, make_app
from .conftest import login

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(app: Flask) -> WeChatAccount:
    with app.app_context():
        return db.session.execute(select(WeChatAccount)).unique().scalar_one()


def test_tokens_are_stored_sealed_and_still_work(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=[OLD])
    login(app.test_client())
    account = stored(app)
    issued = fake_wechat.calls("userinfo")[0].params["access_token"]
    assert account.access_token.startswith("fernet:") and issued not in account.access_token
    assert account.refresh_token.startswith("fernet:")
    with app.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        assert app.extensions["test_wechat"].validate(account)
        fake_wechat.expire_access_tokens()
        app.extensions["test_wechat"].fetch_userinfo(account)
    refreshed = stored(app)
    assert refreshed.access_token.startswith("fernet:")
    assert fake_wechat.calls("refresh_token")[0].params["refresh_token"] not in refreshed.refresh_token


def test_rotation_moves_every_token_to_the_new_key(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str, tmp_path
) -> None:
    before = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=OLD)
    for user in ("alice", "bob"):
        login(before.test_client(), user=user)
    after = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=f"{NEW},{OLD}")
    with after.app_context():
        assert after.extensions["test_wechat"].rotate_token_keys() == 2
    only_new = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=[NEW])
    with only_new.app_context():
        for account in db.session.execute(select(WeChatAccount)).unique().scalars():
            assert only_new.extensions["test_wechat"].validate(account)


def test_plaintext_rows_from_before_encryption_still_open(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    plain = make_app(fake_wechat_server.url, database_uri)
    login(plain.test_client())
    sealed = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=[NEW])
    with sealed.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        assert sealed.extensions["test_wechat"].validate(account)


@pytest.mark.parametrize("keys", ["not-a-key", ["short"], [123]])
def test_bad_keys_fail_at_start_up(keys: object, database_uri: str) -> None:
    with pytest.raises(ConfigurationError, match="WECHAT_TOKEN_KEYS"):
        make_app(None, database_uri, WECHAT_TOKEN_KEYS=keys)


def test_session_keys_are_sealed_rotated_and_readable(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    from flask_wechat.testing.fake import DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET

    apps = {"WECHAT_MINIPROGRAM_APPID": DEMO_MINIPROGRAM_APPID, "WECHAT_MINIPROGRAM_SECRET": DEMO_MINIPROGRAM_SECRET}
    before = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=[OLD], **apps)
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    assert before.test_client().post("/wechat/miniprogram/login", json={"code": code}).status_code == 200
    after = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=[NEW, OLD], **apps)
    with after.app_context():
        assert after.extensions["test_wechat"].rotate_token_keys() == 1
    only_new = make_app(fake_wechat_server.url, database_uri, WECHAT_TOKEN_KEYS=[NEW], **apps)
    with only_new.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        assert account.session_key.startswith("fernet:")
        session_key = only_new.extensions["wechat"].runtime.accounts().session_key(account)
        assert session_key and len(session_key) == 24 and session_key not in account.session_key
