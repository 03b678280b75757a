"""The server-API protocol on its own (no Flask): WeChat's worked examples, and what real answers look like."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flask_wechat import serverapi
from flask_wechat.errors import UserDataError, WeChatResponseError

DOC_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # The JS-SDK documentation's worked example (appendix 1), current and older revision.
        ("http://mp.weixin.qq.com?params=value", "0f9de62fce790f9a083d5c99e95740ceb90c27ed"),
        ("http://mp.weixin.qq.com", "f4d90daf4b3bca3078ab155816175ba34c443a7b"),
    ],
)
def test_jssdk_signature_is_the_documentations(url: str, signature: str) -> None:
    assert serverapi.jssdk_signature(DOC_TICKET, "Wm3WZYTPz0wzccnW", 1414587457, url) == signature


def test_jssdk_signature_signs_the_url_unescaped() -> None:
    plain = serverapi.jssdk_signature(DOC_TICKET, "n", 1, "https://shop.example/a?q=中&x=a b")
    escaped = serverapi.jssdk_signature(DOC_TICKET, "n", 1, "https://shop.example/a?q=%E4%B8%AD&x=a%20b")
    assert plain != escaped


#: A synthetic vector (session_key bytes 0x00..0x0f, iv 0x10..0x1f), made for these tests, not by WeChat.
SESSION_KEY = "AAECAwQFBgcICQoLDA0ODw=="
IV = "EBESExQVFhcYGRobHB0eHw=="
SEALED = (
    "aLhedzo+Z6es5zW+YHo9sgkoobhypSEeViQBPmmCx3fmcZGKbataj/52/+U/sVY3AiF2KzOGsSF26s6H1VwLALPpPqvznm6/Yrci88llVSl0bw"
    "plNsmm05X71JB++CQvB2L1ST7q6P+6blzhwR+mzRJYZe9el4KhJbw0YOz0oU0MjEphB4YITaRcQM6gyHHECpWnJUAfv3vTj4pBHBmD0g=="
)


def test_legacy_encrypted_data_opens_with_its_session_key() -> None:
    data = serverapi.decrypt_user_data(SESSION_KEY, SEALED, IV)
    phone = serverapi.PhoneNumber.from_user_data(data, "wx4f4bc4dec97d474b")
    assert phone.as_json() == {
        "phone_number": "13580006666",
        "pure_phone_number": "13580006666",
        "country_code": "86",
    }
    with pytest.raises(UserDataError):
        serverapi.PhoneNumber.from_user_data(data, "wx0123456789abcdef")  # the watermark names another app


@pytest.mark.parametrize(
    ("session_key", "sealed", "iv"),
    [
        ("AQECAwQFBgcICQoLDA0ODw==", SEALED, IV),  # another session key: padding or JSON fails
        (SESSION_KEY, SEALED, "AAAAAAAAAAAAAAAAAAAAAA=="),  # another iv: the first block is garbage
        ("not base64!", SEALED, IV),
        (SESSION_KEY, SEALED[:-4], IV),  # not a whole number of blocks
        (SESSION_KEY, "", IV),
        ("AAECAwQFBgcICQoLDA0O", SEALED, IV),  # a 15-byte key
    ],
)
def test_legacy_encrypted_data_that_does_not_open_is_a_user_data_error(session_key: str, sealed: str, iv: str) -> None:
    with pytest.raises(UserDataError):
        serverapi.decrypt_user_data(session_key, sealed, iv)


@pytest.mark.parametrize("country", ["86", 86])
def test_country_code_is_a_string_however_it_arrives(country: object) -> None:
    body = {
        "errcode": 0,
        "phone_info": {"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": country},
    }
    assert serverapi.PhoneNumber.from_response(body).country_code == "86"
    assert "13800138000" not in repr(serverapi.PhoneNumber.from_response(body))


def test_a_phone_answer_without_phone_info_is_malformed() -> None:
    with pytest.raises(WeChatResponseError):
        serverapi.PhoneNumber.from_response({"errcode": 0, "errmsg": "ok"})


def test_follower_reads_subscribe_and_the_documentations_spaced_unionid() -> None:
    follower = serverapi.Follower.from_response(
        {
            "subscribe": 1,
            "openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
            "unionid": " o6_bmasdasdsad6_2sgVt7hMZOPfL",
            "nickname": "",
            "headimgurl": "",
        }
    )
    assert follower.subscribed and follower.unionid == "o6_bmasdasdsad6_2sgVt7hMZOPfL"
    assert not serverapi.Follower.from_response({"subscribe": 0, "openid": "o1"}).subscribed


@pytest.mark.parametrize("expires_in", [0, -5, 10**9, "soon", None])
def test_a_token_with_an_impossible_lifetime_is_malformed(expires_in: object) -> None:
    with pytest.raises(WeChatResponseError):
        serverapi.AppToken.from_response({"access_token": "t", "expires_in": expires_in})


def test_tickets_and_tokens_read_their_own_field() -> None:
    assert serverapi.JsapiTicket.from_response({"ticket": "x", "expires_in": 7200}).value == "x"
    with pytest.raises(WeChatResponseError):
        serverapi.JsapiTicket.from_response({"access_token": "x", "expires_in": 7200})
    assert "secret-token" not in repr(serverapi.AppToken("secret-token", 7200))


def test_the_protocol_needs_no_flask() -> None:
    code = "import sys, flask_wechat.serverapi, flask_wechat.wecom; print('flask' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
