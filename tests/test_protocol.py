"""The WeChat protocol facts, without Flask."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from flask_wechat import protocol
from flask_wechat.errors import (
    AccessTokenExpiredError,
    CodeUsedError,
    InvalidCodeError,
    SystemBusyError,
    WeChatAPIError,
    WeChatResponseError,
)

APPID = "wx1234567890abcdef"


def test_authorize_url_has_wechat_order_encoding_and_fragment() -> None:
    url = protocol.build_authorize_url(
        "https://open.weixin.qq.com", APPID, "https://example.com/cb?a=1&b=2", "snsapi_userinfo", "abc123"
    )
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef"
        "&redirect_uri=https%3A%2F%2Fexample.com%2Fcb%3Fa%3D1%26b%3D2"
        "&response_type=code&scope=snsapi_userinfo&state=abc123#wechat_redirect"
    )


def test_authorize_url_puts_extras_after_state_and_before_fragment() -> None:
    url = protocol.build_authorize_url(
        "https://open.weixin.qq.com/", APPID, "https://e.com/", "snsapi_base", "s", extra=(("forcePopup", "true"),)
    )
    parts = urlsplit(url)
    assert [key for key, _ in parse_qsl(parts.query)] == [
        "appid",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "forcePopup",
    ]
    assert parts.fragment == "wechat_redirect"
    assert unquote(dict(parse_qsl(parts.query))["redirect_uri"]) == "https://e.com/"


@pytest.mark.parametrize("state", ["", "a" * 129, "a-b", "a b", "状态", "a.b"])
def test_authorize_url_refuses_state_wechat_would_mangle(state: str) -> None:
    with pytest.raises(ValueError):
        protocol.build_authorize_url("https://open.weixin.qq.com", APPID, "https://e.com/", "snsapi_base", state)


def test_state_of_128_alphanumerics_is_valid() -> None:
    assert protocol.is_valid_state("aZ9" * 42 + "xy")
    assert not protocol.is_valid_state("a" * 129)


def test_request_queries_match_wechat_docs() -> None:
    assert protocol.token_query(APPID, "s3cret", "CODE") == {
        "appid": APPID,
        "secret": "s3cret",
        "code": "CODE",
        "grant_type": "authorization_code",
    }
    refresh = protocol.refresh_query(APPID, "RT")
    assert refresh == {"appid": APPID, "grant_type": "refresh_token", "refresh_token": "RT"}
    assert "secret" not in refresh
    assert protocol.userinfo_query("AT", "OID", "en") == {"access_token": "AT", "openid": "OID", "lang": "en"}
    assert protocol.auth_query("AT", "OID") == {"access_token": "AT", "openid": "OID"}


def test_decode_body_reads_utf8_whatever_the_header_and_tolerates_control_chars() -> None:
    body = '{"openid":"o1","nickname":"\x14琦娅🍭","headimgurl":"https:\\/\\/thirdwx.qlogo.cn\\/a\\/132"}'.encode()
    data = protocol.decode_body(body)
    assert data["nickname"] == "\x14琦娅🍭"
    assert data["headimgurl"] == "https://thirdwx.qlogo.cn/a/132"


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (b'{"errcode":40029,"errmsg":"invalid code, rid: 6270dbb5-47d9f324-018472b7"}', InvalidCodeError),
        (b'{"errcode":40163,"errmsg":"code been used, hints: [ req_id: 7L8aBa05974105 ]"}', CodeUsedError),
        (b'{"errcode":42001,"errmsg":"access_token expired"}', AccessTokenExpiredError),
        (b'{"errcode":-1,"errmsg":"system error"}', SystemBusyError),
        (b'{"errcode":99999,"errmsg":"new"}', WeChatAPIError),
    ],
)
def test_decode_body_raises_typed_errors(body: bytes, cls: type[WeChatAPIError]) -> None:
    with pytest.raises(cls) as caught:
        protocol.decode_body(body, protocol.TOKEN_PATH)
    assert type(caught.value) is cls
    assert caught.value.endpoint == protocol.TOKEN_PATH


def test_decode_body_accepts_auth_ok() -> None:
    assert protocol.decode_body(b'{"errcode":0,"errmsg":"ok"}') == {"errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize(
    "body", [b"", b"<html>502</html>", b"[1,2]", b'{"errcode":"x"}', b'{"access_token":', b"\xff\xfe"]
)
def test_decode_body_rejects_malformed_answers(body: bytes) -> None:
    with pytest.raises(WeChatResponseError):
        protocol.decode_body(body)


@pytest.mark.parametrize(
    "errcode",
    [
        b"1e400",
        b"-1e400",
        b"NaN",
        b"Infinity",
        b"40029.5",
        b"true",
        b"false",
        b'"40029x"',
        b'"40029.0"',
        b'"1e400"',
        b'""',
        b"[40029]",
        b"{}",
    ],
)
def test_decode_body_refuses_errcode_that_is_not_an_integer(errcode: bytes) -> None:
    with pytest.raises(WeChatResponseError, match="malformed errcode"):
        protocol.decode_body(b'{"errcode":' + errcode + b',"errmsg":"x"}', protocol.TOKEN_PATH)


@pytest.mark.parametrize(
    ("errcode", "cls", "expected"),
    [
        (b"40029.0", InvalidCodeError, 40029),
        (b'"40029"', InvalidCodeError, 40029),
        (b"-1.0", SystemBusyError, -1),
        (b"1" + b"0" * 30, WeChatAPIError, 10**30),
    ],
)
def test_decode_body_reads_integral_errcode_as_that_errcode(
    errcode: bytes, cls: type[WeChatAPIError], expected: int
) -> None:
    with pytest.raises(cls) as caught:
        protocol.decode_body(b'{"errcode":' + errcode + b',"errmsg":"x"}')
    assert type(caught.value) is cls
    assert type(caught.value.errcode) is int and caught.value.errcode == expected


@pytest.mark.parametrize("body", [b"{}", b'{"errcode":0}', b'{"errcode":"0"}', b'{"errcode":null}', b'{"errcode":0.0}'])
def test_decode_body_takes_zero_errcode_as_success(body: bytes) -> None:
    assert protocol.decode_body(body) == json.loads(body)


def test_decode_body_makes_errmsg_safe_to_store() -> None:
    with pytest.raises(InvalidCodeError) as caught:
        protocol.decode_body(b'{"errcode":40029,"errmsg":"bad\\u0000 \\ud800code"}')
    assert caught.value.errmsg == "bad \ufffdcode"


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (b"1e400", protocol.ACCESS_TOKEN_LIFETIME),
        (b"-1e400", protocol.ACCESS_TOKEN_LIFETIME),
        (b"NaN", protocol.ACCESS_TOKEN_LIFETIME),
        (b'"abc"', protocol.ACCESS_TOKEN_LIFETIME),
        (b"null", protocol.ACCESS_TOKEN_LIFETIME),
        (b"{}", protocol.ACCESS_TOKEN_LIFETIME),
        (b"-1000000000000", 0),
        (b"-5", 0),
        (b"1" + b"0" * 30, 86400),
        (b"1e300", 86400),
        (b"86401", 86400),
        (b'"3600"', 3600),
        (b"3600.9", 3600),
    ],
)
def test_token_lifetime_is_clamped_to_a_day(expires_in: bytes, lifetime: int) -> None:
    data = protocol.decode_body(b'{"access_token":"AT","openid":"o","expires_in":' + expires_in + b"}")
    assert protocol.Token.from_response(data, now=1000).expires_at == 1000 + lifetime


def test_token_without_expires_in_lives_the_documented_lifetime() -> None:
    token = protocol.Token.from_response({"access_token": "AT", "openid": "o"}, now=1000)
    assert token.expires_at == 1000 + protocol.ACCESS_TOKEN_LIFETIME


@pytest.mark.parametrize(
    ("value", "sex", "snapshot"),
    [
        (b"1e400", 0, False),
        (b"NaN", 0, False),
        (b"-1e400", 0, False),
        (b"1" + b"0" * 30, 2, True),
        (b"-7", 0, False),
        (b"7", 2, True),
        (b'"2"', 2, True),
        (b'"x"', 0, False),
        (b"true", 1, True),
    ],
)
def test_small_numbers_are_clamped_to_their_range(value: bytes, sex: int, snapshot: bool) -> None:
    body = b'{"access_token":"AT","openid":"o","sex":' + value + b',"is_snapshotuser":' + value + b"}"
    data = protocol.decode_body(body)
    assert protocol.UserInfo.from_response(data).sex == sex
    assert protocol.Token.from_response(data).is_snapshot_user is snapshot


def test_strings_lose_lone_surrogates_and_nul_characters() -> None:
    body = (
        b'{"access_token":"A\\u0000T","refresh_token":"\\udc00RT","openid":"o\\u0000X\\ud800",'
        b'"session_key":"k\\u0000","scope":"snsapi_userinfo\\u0000,","unionid":"\\ud83d\\ude00",'
        b'"nickname":"\\ud83d Bob\\u0000\\ud83d\\ude00","headimgurl":"https://q.cn/\\udfff\\ud800",'
        b'"city":"\\u0000","province":"\\ude00\\ud83d","country":"CN","privilege":["\\ud800P\\u0000"]}'
    )
    data = protocol.decode_body(body)
    token = protocol.Token.from_response(data, now=0)
    info = protocol.UserInfo.from_response(data)
    session = protocol.MiniProgramSession.from_response(data)
    assert (token.access_token, token.refresh_token, token.openid) == ("AT", "\ufffdRT", "oX\ufffd")
    assert token.scope == "snsapi_userinfo" and token.unionid == "😀"
    assert (session.openid, session.session_key, session.unionid) == ("oX\ufffd", "k", "😀")
    assert info.nickname == "\ufffd Bob😀"
    assert info.headimgurl == "https://q.cn/\ufffd\ufffd"
    assert (info.city, info.province, info.country) == ("", "\ufffd\ufffd", "CN")
    assert info.privilege == ("\ufffdP",)
    for value in (*vars(token).values(), *vars(info).values(), *vars(session).values()):
        if isinstance(value, str):
            value.encode("utf-8")


def test_surrogate_pair_split_in_a_python_str_is_joined_again() -> None:
    info = protocol.UserInfo.from_response({"openid": "o", "nickname": "\ud83d\ude00\ud83d"})
    assert info.nickname == "😀\ufffd"


@pytest.mark.parametrize("value", ["\x00", "\x00\x00"])
def test_required_string_of_only_nul_is_missing(value: str) -> None:
    with pytest.raises(WeChatResponseError, match="without openid"):
        protocol.Token.from_response({"access_token": "AT", "openid": value})
    with pytest.raises(WeChatResponseError, match="without session_key"):
        protocol.MiniProgramSession.from_response({"openid": "o", "session_key": value})


def test_string_fields_that_are_not_strings_are_missing() -> None:
    info = protocol.UserInfo.from_response({"openid": "o", "nickname": 5, "headimgurl": {"a": 1}, "unionid": 7})
    assert (info.nickname, info.headimgurl, info.unionid) == ("", "", None)
    with pytest.raises(WeChatResponseError, match="without openid"):
        protocol.Token.from_response({"access_token": "AT", "openid": 12345})


def test_token_from_response_reads_every_field() -> None:
    data = {
        "access_token": "AT",
        "expires_in": 7200,
        "refresh_token": "RT",
        "openid": "oX",
        "scope": "snsapi_userinfo,",
        "unionid": "uX",
        "is_snapshotuser": 1,
    }
    token = protocol.Token.from_response(data, now=1000)
    assert token.expires_at == 8200
    assert token.scope == "snsapi_userinfo"
    assert token.scopes == {"snsapi_userinfo"}
    assert token.unionid == "uX"
    assert token.is_snapshot_user
    assert "AT" not in repr(token) and "RT" not in repr(token)


def test_token_without_access_token_is_a_response_error() -> None:
    with pytest.raises(WeChatResponseError):
        protocol.Token.from_response({"openid": "o"})


def test_userinfo_parses_old_string_numbers_and_missing_fields() -> None:
    info = protocol.UserInfo.from_response({"openid": "o", "nickname": "TKA💤🙏™", "sex": "1", "privilege": ["P"]})
    assert info.sex == 1
    assert info.nickname == "TKA💤🙏™"
    assert info.headimgurl == ""
    assert info.unionid is None
    assert info.privilege == ("P",)


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        ("Mozilla/5.0 (iPhone) Mobile/10B329 MicroMessenger/5.0.1", True),
        ("Mozilla/5.0 (Linux; Android) micromessenger/5.0.1.352", True),
        ("Mozilla/5.0 MicroMessenger/7.0 wxwork/4.0.0", False),
        ("Mozilla/5.0 (X11; Linux) Chrome/120", False),
        ("", False),
    ],
)
def test_wechat_browser_detection(ua: str, expected: bool) -> None:
    assert protocol.is_wechat_browser(ua) is expected


def test_protocol_imports_without_flask() -> None:
    code = (
        "import sys, flask_wechat.protocol, flask_wechat.errors;"
        "sys.exit('flask' in sys.modules or 'authlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
