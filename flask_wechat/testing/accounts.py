"""The apps and people the fake WeChat knows about.

Plain data, so tests can build their own cast; the defaults carry the nicknames
that break naive clients (4-byte emoji, CJK, a raw control character).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_USERS", "DEMO_APPID", "DEMO_SECRET", "FakeApp", "FakeUser", "stable_id"]

DEMO_APPID: Final = "wx5f3a9c0d1e2b4a67"
DEMO_SECRET: Final = "fake-secret-for-local-testing-only"


def stable_id(*parts: str) -> str:
    """A 28-character WeChat-looking id (``o`` + 27 of ``[A-Za-z0-9_-]``), the same on every run."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


@dataclass
class FakeApp:
    """An Official Account registered with the fake.

    ``bound`` means bound to an Open Platform account, which is what makes WeChat
    return ``unionid``. ``domain`` is the console's 网页授权域名: when set, the
    redirect_uri host must equal it and carry no port (else error page 10003).
    """

    appid: str
    secret: str
    bound: bool = True
    name: str = "Demo Official Account"
    domain: str | None = None


@dataclass
class FakeUser:
    """A WeChat user who can consent on the fake's authorization page.

    ``unionid`` is the person's id across all apps of one Open Platform account;
    ``snapshot`` marks a snapshot-page virtual identity (``is_snapshotuser: 1``).
    """

    key: str
    nickname: str
    unionid: str
    headimgurl: str = ""
    snapshot: bool = False


def _avatar(seed: str) -> str:
    # Current avatar URLs: thirdwx.qlogo.cn, last segment = size (0, 46, 64, 96, 132).
    token = base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest() * 2).decode().rstrip("=")
    return f"https://thirdwx.qlogo.cn/mmopen/vi_32/{token[:86]}/132"


DEFAULT_USERS: Final[tuple[FakeUser, ...]] = (
    FakeUser("alice", "Alice 🐼", stable_id("unionid", "alice"), _avatar("alice")),
    FakeUser("bob", "小明✨🚀", stable_id("unionid", "bob"), _avatar("bob")),
    # A raw C0 control character, as in a real capture (lanrion/weixin_authorize#52).
    FakeUser("carol", "\x14琦娅🍭", stable_id("unionid", "carol")),
    # Snapshot pages hand out a virtual "微信用户" with the default grey avatar.
    FakeUser("dave", "微信用户", stable_id("unionid", "dave"), _avatar("snapshot"), snapshot=True),
)
