"""How WeChat's API hosts write their JSON bodies, byte for byte.

Clients break on the details (raw UTF-8, ``\\/``, raw control characters, the
``rid`` suffix), so the fake reproduces them instead of using plain ``json.dumps``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Final

__all__ = ["ERRMSGS", "JSON_CONTENT_TYPE", "STABLE_TOKEN_HINT", "encode", "error_body", "new_rid", "with_rid"]

#: What ``/cgi-bin/token`` sends, errors included (``encoding=``, not ``charset=``); assumed for the
#: other ``/cgi-bin`` and ``/wxa`` JSON endpoints too.
JSON_CONTENT_TYPE: Final = "application/json; encoding=utf-8"
#: What WeChat appends (since 2023) to a stale token's 40001 and to ``/cgi-bin/token``'s 45009.
STABLE_TOKEN_HINT: Final = (
    ", could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r"
)

#: WeChat's usual ``errmsg`` per errcode, without the ``rid`` suffix.
ERRMSGS: Final[Mapping[int, str]] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",  # the text on api.weixin.qq.com is UNCONFIRMED
    40029: "invalid code",
    40030: "invalid refresh_token",
    40066: "invalid url",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    # The IP varies: refuse_ip() puts the refused one in; this is for fail_next().
    40164: "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41003: "refresh_token missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    42002: "refresh_token expired",
    43001: "require GET method",
    43002: "require POST method",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    # As observed; refuse_ip() answers 61004 in 40164's shape instead, which names the IP the same way.
    61004: "access clientip is not registered requestIP: 203.0.113.7",
}

# json.dumps escapes C0 controls as \u00XX; WeChat sends them raw (an odd run of
# backslashes means the \u is a real escape, an even one is an escaped backslash).
_CONTROL_ESCAPE: Final = re.compile(r"(\\+)u00([01][0-9a-f])")


def _raw_controls(match: re.Match[str]) -> str:
    slashes = match.group(1)
    if len(slashes) % 2 == 0:
        return match.group(0)
    return slashes[:-1] + chr(int(match.group(2), 16))


def new_rid() -> str:
    """A request id in the current ``xxxxxxxx-xxxxxxxx-xxxxxxxx`` style."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def encode(data: Mapping[str, object]) -> bytes:
    """Compact JSON as WeChat writes it: raw UTF-8, ``/`` as ``\\/``, raw control characters."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # "/" only ever occurs inside JSON strings, where "\/" is a valid escape.
    text = text.replace("/", "\\/")
    return _CONTROL_ESCAPE.sub(_raw_controls, text).encode("utf-8")


def with_rid(text: str) -> str:
    """``text`` with a fresh ``, rid: ...`` suffix, as WeChat sends every errmsg."""
    return f"{text}, rid: {new_rid()}"


def error_body(errcode: int, errmsg: str | None = None) -> bytes:
    """An error body; WeChat's usual errmsg gets a fresh ``, rid: ...``, an explicit one is kept verbatim."""
    if errmsg is None:
        errmsg = with_rid(ERRMSGS[errcode])
    return encode({"errcode": errcode, "errmsg": errmsg})
