"""Avatars: WeChat's avatar hosts are stored as https, and the fake serves the images it hands out."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_wechat.testing import FakeWeChat

from .apps import WeChatAccount, db
from .conftest import login


def stored_avatar(app: Flask) -> str:
    with app.app_context():
        account = db.session.execute(db.select(WeChatAccount)).scalar_one()
        return str(account.avatar_url)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("http://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"),
        ("http://wx.qlogo.cn/mmopen/abc/0", "https://wx.qlogo.cn/mmopen/abc/0"),
        ("HTTP://WX.QLOGO.CN/mmopen/abc/46", "https://WX.QLOGO.CN/mmopen/abc/46"),
        ("https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"),
        # Not WeChat's avatar hosts: kept as sent (the fake's own http pages, a look-alike host).
        ("http://127.0.0.1:8000/mmopen/vi_32/abc/132", "http://127.0.0.1:8000/mmopen/vi_32/abc/132"),
        ("http://qlogo.cn.example.com/a/132", "http://qlogo.cn.example.com/a/132"),
        ("", ""),
    ],
)
def test_wechat_avatar_hosts_are_stored_as_https(app: Flask, fake_wechat: FakeWeChat, sent: str, stored: str) -> None:
    fake_wechat.users["bob"].headimgurl = sent
    trip = login(app.test_client(), user="bob")
    assert trip.response.status_code == 302
    assert stored_avatar(app) == stored
