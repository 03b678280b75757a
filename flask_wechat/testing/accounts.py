"""The apps and people the fake WeChat knows about.

Plain data, so tests can build their own cast; the defaults carry the nicknames
that break naive clients (4-byte emoji, CJK, a raw control character).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final, Literal, get_args

from .avatars import DEFAULT_AVATAR, avatar_path

__all__ = [
    "APP_KINDS",
    "DEFAULT_APPS",
    "DEFAULT_USERS",
    "DEMO_APPID",
    "DEMO_MINIPROGRAM_APPID",
    "DEMO_MINIPROGRAM_SECRET",
    "DEMO_OPEN_APPID",
    "DEMO_OPEN_SECRET",
    "DEMO_SECRET",
    "SNAPSHOT_AVATAR",
    "SNAPSHOT_NICKNAME",
    "AppKind",
    "FakeApp",
    "FakeUser",
    "stable_id",
]

#: The default Official Account (公众号/服务号): ``/connect/oauth2/authorize``.
# The AppIDs and secrets are made up, shaped like real ones ("wx" + 16 hex digits; 32 hex digits)
# so that they pass flask_wechat.config's checks; no WeChat knows them.
DEMO_APPID: Final = "wx5f3a9c0d1e2b4a67"
DEMO_SECRET: Final = "7d33775a2966f6f4b67f39d336d0f456"
#: The default Open Platform website app (网站应用): ``/connect/qrconnect`` and wxLogin.js.
DEMO_OPEN_APPID: Final = "wx8e2b7c4d1a9f3065"
DEMO_OPEN_SECRET: Final = "aa9372da0cc701039a64994430108f4c"
#: The default mini program (小程序): ``wx.login()`` codes and ``/sns/jscode2session``.
DEMO_MINIPROGRAM_APPID: Final = "wx3c1d9e7f5b2a8046"
DEMO_MINIPROGRAM_SECRET: Final = "5ae85573392854cef96feb78a29545e3"

AppKind = Literal["official_account", "website", "miniprogram"]
#: Every :data:`AppKind`, in declaration order.
APP_KINDS: Final[tuple[AppKind, ...]] = get_args(AppKind)


def stable_id(*parts: str) -> str:
    """A 28-character WeChat-looking id (``o`` + 27 of ``[A-Za-z0-9_-]``), the same on every run."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


@dataclass
class FakeApp:
    """An app registered with the fake: an Official Account unless ``kind`` says otherwise.

    ``kind`` picks the login it serves: ``"official_account"`` the in-WeChat
    ``/connect/oauth2/authorize``, ``"website"`` (an Open Platform 网站应用) the QR
    ``/connect/qrconnect``, ``"miniprogram"`` ``/sns/jscode2session``. ``bound``
    means bound to an Open Platform account, which is what makes WeChat return
    ``unionid`` (the same for one person across every bound app). ``domain`` is the
    console's 网页授权域名 / 授权回调域: when set, the redirect_uri host must equal
    it and carry no port (else an error page).
    """

    appid: str
    secret: str
    bound: bool = True
    name: str = "Demo Official Account"
    domain: str | None = None
    kind: AppKind = "official_account"

    def __post_init__(self) -> None:
        if self.kind not in APP_KINDS:
            raise ValueError(f"kind must be one of {', '.join(APP_KINDS)}, got {self.kind!r}")


@dataclass
class FakeUser:
    """A WeChat user who can consent on the fake's authorization page.

    ``unionid`` is the person's id across all apps of one Open Platform account;
    ``snapshot`` marks a snapshot-page virtual identity (``is_snapshotuser: 1``),
    which exists only in Official Account web auth; ``blocked`` marks a user WeChat
    rates high-risk: ``/sns/jscode2session`` refuses their codes with 40226.
    ``headimgurl`` is a URL, or a path on the fake (``/mmopen/...``, see
    :mod:`.avatars`) that ``/sns/userinfo`` sends as a URL of the fake's own address.
    ``phone_number`` (without the country code) and ``country_code`` are what a mini
    program's phone-number button reveals; ``follows`` says whether the user follows
    the fake's Official Accounts, which is what ``/cgi-bin/user/info`` reveals (a
    snapshot user never does).
    """

    key: str
    nickname: str
    unionid: str
    headimgurl: str = ""
    snapshot: bool = False
    blocked: bool = False
    #: Made up: 138-0013-8xxx is the number range documentation examples use.
    phone_number: str = "13800138000"
    country_code: str = "86"
    follows: bool = True


#: What a snapshot page shows for every visitor: a virtual "微信用户" with the default grey avatar.
SNAPSHOT_NICKNAME: Final = "微信用户"
SNAPSHOT_AVATAR: Final = DEFAULT_AVATAR

DEFAULT_APPS: Final[tuple[FakeApp, ...]] = (
    FakeApp(DEMO_APPID, DEMO_SECRET),
    FakeApp(DEMO_OPEN_APPID, DEMO_OPEN_SECRET, name="Demo Website", kind="website"),
    FakeApp(DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET, name="Demo Mini Program", kind="miniprogram"),
)
"""Every ``FakeWeChat()`` registers copies of these: one app per login kind, all bound."""

DEFAULT_USERS: Final[tuple[FakeUser, ...]] = (
    FakeUser("alice", "Alice 🐼", stable_id("unionid", "alice"), avatar_path("alice"), phone_number="13800138001"),
    # Not a follower: /cgi-bin/user/info answers subscribe 0 and nothing else.
    FakeUser(
        "bob", "小明✨🚀", stable_id("unionid", "bob"), avatar_path("bob"), phone_number="13800138002", follows=False
    ),
    # A raw C0 control character, as in a real capture (lanrion/weixin_authorize#52); no avatar.
    FakeUser("carol", "\x14琦娅🍭", stable_id("unionid", "carol"), phone_number="13800138003"),
    # Snapshot pages hand out a virtual "微信用户" with the default grey avatar.
    FakeUser(
        "dave",
        SNAPSHOT_NICKNAME,
        stable_id("unionid", "dave"),
        SNAPSHOT_AVATAR,
        snapshot=True,
        phone_number="13800138004",
        follows=False,
    ),
)
