"""The fake WeChat, exercised over real loopback HTTP the way a client would see it."""

from __future__ import annotations

import ast
import graphlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from werkzeug.wrappers import Request, Response

from flask_wechat import errors, protocol
from flask_wechat.testing import (
    DEFAULT_USERS,
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
    FakeApp,
    FakeUser,
    FakeWeChat,
    FakeWeChatServer,
)
from flask_wechat.testing.adapter import WSGIAdapter

from . import fake_fixtures
from .fake_fixtures import Clock

CALLBACK = "https://app.example.com/wechat/callback"
RID = r"rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}"
TOKEN = re.compile(r"[0-9]{2}_[A-Za-z0-9_-]{107}")
ROOT = Path(__file__).resolve().parents[1]
TESTING = ROOT / "flask_wechat" / "testing"


class ConsentForm(HTMLParser):
    """What a browser sees of the consent form."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.hidden: dict[str, str] = {}
        self.users: list[str] = []
        self.checked: list[str] = []
        self.buttons: list[tuple[str | None, str | None, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "form":
            self.action, self.method = attr.get("action") or "", attr.get("method") or ""
        elif tag == "input" and attr.get("type") == "hidden":
            self.hidden[attr["name"] or ""] = attr.get("value") or ""
        elif tag == "input" and attr.get("type") == "radio" and attr.get("name") == "user":
            self.users.append(attr.get("value") or "")
            if "checked" in attr:
                self.checked.append(attr.get("value") or "")
        elif tag == "button":
            self.buttons.append((attr.get("id"), attr.get("name"), attr.get("value")))


# The shared fixtures, assigned rather than imported (see tests/fake_fixtures.py).
clock, fake_wechat, base, http = fake_fixtures.clock, fake_fixtures.fake_wechat, fake_fixtures.base, fake_fixtures.http


def authorize_url(base: str, scope: str = protocol.SCOPE_USERINFO, state: str = "abc123", **kw: str) -> str:
    return protocol.build_authorize_url(
        base, kw.get("appid", DEMO_APPID), kw.get("redirect_uri", CALLBACK), scope, state
    )


def raw_query(base: str, pairs: Iterable[tuple[str, str]]) -> str:
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs)
    return f"{base}{protocol.OA_AUTHORIZE_PATH}?{query}"


def consent(
    http: requests.Session, base: str, url: str, user: str = "alice", action: str = "allow"
) -> requests.Response:
    """Open the authorize page and press a button, like a browser without JavaScript."""
    page = http.get(url)
    form = ConsentForm(page.text)
    assert form.method == "post", page.text
    return http.post(base + form.action, data={**form.hidden, "user": user, "action": action}, allow_redirects=False)


def code_from(response: requests.Response) -> str:
    assert response.status_code == 302
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query))["code"]


def get(http: requests.Session, base: str, path: str, **params: str) -> requests.Response:
    response = http.get(base + path, params=params)
    assert response.status_code == 200
    return response


def body(response: requests.Response) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.content.decode("utf-8"), strict=False)
    return data


def exchange(
    http: requests.Session, base: str, code: str, secret: str = DEMO_SECRET, appid: str = DEMO_APPID
) -> dict[str, Any]:
    return body(get(http, base, protocol.TOKEN_PATH, **protocol.token_query(appid, secret, code)))


def login(
    fake: FakeWeChat, http: requests.Session, base: str, user: str = "alice", scope: str = protocol.SCOPE_USERINFO
) -> dict[str, Any]:
    return exchange(http, base, fake.issue_code(DEMO_APPID, user, scope))


def assert_error(data: dict[str, Any], errcode: int) -> None:
    assert data["errcode"] == errcode, data
    assert re.fullmatch(rf".+, {RID}", data["errmsg"]), data


# -- authorize page -----------------------------------------------------------------------------


def test_authorize_ordered_query_shows_consent_page(http: requests.Session, base: str) -> None:
    page = http.get(authorize_url(base))
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    form = ConsentForm(page.content.decode("utf-8"))
    assert form.action == "/connect/oauth2/authorize/confirm"
    assert form.hidden == {"appid": DEMO_APPID, "redirect_uri": CALLBACK, "scope": "snsapi_userinfo", "state": "abc123"}
    assert form.users == [user.key for user in DEFAULT_USERS] and form.checked == ["alice"]
    assert form.buttons == [("allow", "action", "allow"), ("deny", "action", "deny")]
    assert "允许" in page.text and "拒绝" in page.text and "Demo Official Account" in page.text
    assert "\x14" not in page.text


def test_authorize_swapped_order_shows_error_page(http: requests.Session, base: str) -> None:
    pairs = [
        ("appid", DEMO_APPID),
        ("redirect_uri", CALLBACK),
        ("scope", "snsapi_base"),
        ("response_type", "code"),
        ("state", "s"),
    ]
    page = http.get(raw_query(base, pairs))
    assert page.status_code == 200
    assert "该链接无法访问" in page.text and "<form" not in page.text


@pytest.mark.parametrize(
    ("pairs", "errcode", "text"),
    [
        (
            [("appid", DEMO_APPID), ("redirect_uri", CALLBACK), ("response_type", "code"), ("state", "s")],
            10010,
            "scope不能为空",
        ),
        ([("appid", DEMO_APPID), ("response_type", "code"), ("scope", "snsapi_base")], 10011, "redirect_uri不能为空"),
        (
            [("appid", ""), ("redirect_uri", CALLBACK), ("response_type", "code"), ("scope", "snsapi_base")],
            10012,
            "appid不能为空",
        ),
        (
            [("appid", DEMO_APPID), ("redirect_uri", CALLBACK), ("response_type", "code"), ("scope", "snsapi_login")],
            10005,
            "此公众号并没有这些scope的权限",
        ),
        (
            [("appid", DEMO_APPID), ("redirect_uri", "/relative"), ("response_type", "code"), ("scope", "snsapi_base")],
            10003,
            "redirect_uri域名与后台配置不一致",
        ),
        (
            [("appid", DEMO_APPID), ("redirect_uri", CALLBACK), ("response_type", "token"), ("scope", "snsapi_base")],
            None,
            "该链接无法访问",
        ),
        (
            [
                ("appid", "wx0000000000000000"),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
            ],
            None,
            "该链接无法访问",
        ),
        (
            [
                ("appid", DEMO_APPID),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
                ("state", "a" * 129),
            ],
            None,
            "该链接无法访问",
        ),
        (
            [
                ("appid", DEMO_APPID),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
                ("state", "a-b"),
            ],
            None,
            "该链接无法访问",
        ),
        (
            [
                ("appid", DEMO_APPID),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
                ("state", "s"),
                ("x", "1"),
            ],
            None,
            "该链接无法访问",
        ),
    ],
)
def test_authorize_bad_link_shows_wechat_error_page(
    http: requests.Session, base: str, pairs: list[tuple[str, str]], errcode: int | None, text: str
) -> None:
    page = http.get(raw_query(base, pairs))
    assert page.status_code == 200 and "<form" not in page.text
    assert text in page.text
    if errcode is not None:
        assert f'错误码：<span id="errcode">{errcode}</span>' in page.text


@pytest.mark.parametrize(
    "redirect_uri", ["https://www.example.com:8443/cb", "https://other.example.com/cb", "https://example.com/cb"]
)
def test_authorize_domain_mismatch_or_port_is_10003(
    fake_wechat: FakeWeChat, http: requests.Session, base: str, redirect_uri: str
) -> None:
    fake_wechat.add_app(FakeApp("wx1111111111111111", "s", domain="www.example.com"))
    page = http.get(authorize_url(base, appid="wx1111111111111111", redirect_uri=redirect_uri))
    assert "redirect_uri域名与后台配置不一致" in page.text and ">10003<" in page.text
    assert (
        "<form"
        in http.get(authorize_url(base, appid="wx1111111111111111", redirect_uri="https://www.example.com/cb")).text
    )


def test_authorize_accepts_missing_state_and_force_popup(http: requests.Session, base: str) -> None:
    head = [("appid", DEMO_APPID), ("redirect_uri", CALLBACK), ("response_type", "code"), ("scope", "snsapi_base")]
    assert 'hidden" name="state"' not in http.get(raw_query(base, head)).text
    assert "<form" in http.get(raw_query(base, [*head, ("state", "s"), ("forcePopup", "true")])).text


# -- consent --------------------------------------------------------------------------------------


def test_allow_redirects_with_code_and_state(http: requests.Session, base: str) -> None:
    answer = consent(http, base, authorize_url(base, state="Xyz789"), user="bob")
    location = answer.headers["Location"]
    assert answer.status_code == 302 and location.startswith(CALLBACK + "?code=")
    assert re.fullmatch(r"\?code=[A-Za-z0-9]{32}&state=Xyz789", location[len(CALLBACK) :])


def test_allow_appends_to_existing_query_and_omits_absent_state(http: requests.Session, base: str) -> None:
    uri = "https://app.example.com/cb?next=%2Fprofile"
    answer = consent(http, base, authorize_url(base, redirect_uri=uri))
    assert re.fullmatch(re.escape(uri) + r"&code=[A-Za-z0-9]{32}&state=abc123", answer.headers["Location"])
    head = [("appid", DEMO_APPID), ("redirect_uri", CALLBACK), ("response_type", "code"), ("scope", "snsapi_base")]
    answer = consent(http, base, raw_query(base, head))
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[A-Za-z0-9]{32}", answer.headers["Location"])


def test_deny_shows_page_without_redirect_by_default(http: requests.Session, base: str) -> None:
    answer = consent(http, base, authorize_url(base), action="deny")
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert "你已拒绝授权" in answer.text


def test_deny_in_redirect_mode_sends_state_without_code(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    fake_wechat.deny_mode = "redirect"
    answer = consent(http, base, authorize_url(base, state="Q1"), action="deny")
    assert answer.status_code == 302 and answer.headers["Location"] == CALLBACK + "?state=Q1"


def test_confirm_revalidates_the_form(http: requests.Session, base: str) -> None:
    fields = {
        "appid": DEMO_APPID,
        "redirect_uri": CALLBACK,
        "scope": "snsapi_login",
        "user": "alice",
        "action": "allow",
    }
    answer = http.post(base + "/connect/oauth2/authorize/confirm", data=fields, allow_redirects=False)
    assert answer.status_code == 200 and "10005" in answer.text
    answer = http.post(
        base + "/connect/oauth2/authorize/confirm", data={**fields, "scope": "snsapi_base", "user": "nobody"}
    )
    assert answer.status_code == 400


# -- /sns/oauth2/access_token ---------------------------------------------------------------------


def test_token_exchange_body_is_wechat_shaped(http: requests.Session, base: str) -> None:
    code = code_from(consent(http, base, authorize_url(base)))
    response = get(http, base, protocol.TOKEN_PATH, **protocol.token_query(DEMO_APPID, DEMO_SECRET, code))
    assert response.headers["Content-Type"] == "text/plain"
    assert response.content.startswith(b'{"access_token":"') and b" " not in response.content
    data = body(response)
    assert list(data) == ["access_token", "expires_in", "refresh_token", "openid", "scope", "unionid"]
    assert TOKEN.fullmatch(data["access_token"]) and TOKEN.fullmatch(data["refresh_token"])
    assert data["expires_in"] == 7200 and data["scope"] == "snsapi_userinfo"
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", data["openid"]) and re.fullmatch(r"o[A-Za-z0-9_-]{27}", data["unionid"])
    assert protocol.Token.from_response(protocol.decode_body(response.content)).openid == data["openid"]


def test_userinfo_body_bytes_are_raw_utf8_with_escaped_slashes(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = login(fake_wechat, http, base)
    response = get(
        http, base, protocol.USERINFO_PATH, **protocol.userinfo_query(token["access_token"], token["openid"])
    )
    assert "Alice 🐼".encode() in response.content
    avatar = (base + fake_wechat.users["alice"].headimgurl).replace("/", "\\/").encode()
    assert b'"headimgurl":"' + avatar + b'"' in response.content  # the fake's own avatar, slashes escaped
    assert response.content.endswith(b'\\/132","privilege":[],"unionid":"' + token["unionid"].encode() + b'"}')
    assert response.json()["nickname"] != "Alice 🐼"  # text/plain: requests decodes latin-1, as with WeChat


def test_content_type_is_configurable(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.content_type = "application/json; encoding=utf-8"
    response = http.get(base + protocol.TOKEN_PATH)
    assert response.headers["Content-Type"] == "application/json; encoding=utf-8"


def test_code_is_single_use(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    assert "access_token" in exchange(http, base, code)
    assert_error(exchange(http, base, code), 40163)


def test_code_expires_after_five_minutes(
    fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str
) -> None:
    fresh, stale = fake_wechat.issue_code(DEMO_APPID, "alice"), fake_wechat.issue_code(DEMO_APPID, "bob")
    clock.advance(protocol.OA_CODE_LIFETIME - 1)
    assert "access_token" in exchange(http, base, fresh)
    clock.advance(1)
    assert_error(exchange(http, base, stale), 40029)


def test_code_of_another_app_or_unknown_is_40029(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.add_app(FakeApp("wx2222222222222222", "other"))
    code = fake_wechat.issue_code("wx2222222222222222", "alice")
    assert_error(exchange(http, base, code), 40029)
    assert_error(exchange(http, base, "0" * 32), 40029)


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"appid": DEMO_APPID, "secret": "wrong", "code": "c", "grant_type": "authorization_code"}, 40125),
        (
            {"appid": "wx0000000000000000", "secret": DEMO_SECRET, "code": "c", "grant_type": "authorization_code"},
            40013,
        ),
        ({"appid": DEMO_APPID, "secret": DEMO_SECRET, "grant_type": "authorization_code"}, 41008),
        ({"appid": DEMO_APPID, "secret": DEMO_SECRET, "code": "c", "grant_type": "client_credential"}, 40002),
    ],
)
def test_token_exchange_errors(http: requests.Session, base: str, params: dict[str, str], errcode: int) -> None:
    assert_error(body(get(http, base, protocol.TOKEN_PATH, **params)), errcode)


def test_wrong_secret_errmsg_carries_a_rid(http: requests.Session, base: str) -> None:
    data = exchange(http, base, "c", secret="wrong")
    assert re.fullmatch(rf"invalid appsecret, {RID}", data["errmsg"])
    assert errors.error_for(data["errcode"], data["errmsg"]).rid == data["errmsg"].rpartition(" ")[2]


def test_post_is_refused_with_43001(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    response = http.post(base + protocol.TOKEN_PATH, data=protocol.token_query(DEMO_APPID, DEMO_SECRET, code))
    assert response.status_code == 200
    assert re.fullmatch(rf'\{{"errcode":43001,"errmsg":"require GET method, {RID}"\}}', response.text)
    assert "access_token" in exchange(http, base, code)  # the code was not consumed


# -- /sns/oauth2/refresh_token --------------------------------------------------------------------


def refresh(http: requests.Session, base: str, refresh_token: str, **extra: str) -> dict[str, Any]:
    return body(get(http, base, protocol.REFRESH_PATH, **protocol.refresh_query(DEMO_APPID, refresh_token), **extra))


def test_refresh_before_expiry_returns_the_same_tokens(
    fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str
) -> None:
    token = login(fake_wechat, http, base)
    clock.advance(7000)
    renewed = refresh(http, base, token["refresh_token"], secret="ignored")
    assert list(renewed) == ["access_token", "expires_in", "refresh_token", "openid", "scope"]
    assert renewed["access_token"] == token["access_token"] and renewed["refresh_token"] == token["refresh_token"]
    assert renewed["expires_in"] == 7200
    clock.advance(7199)  # the expiry was renewed at refresh time
    query = protocol.auth_query(token["access_token"], token["openid"])
    assert body(get(http, base, protocol.AUTH_PATH, **query)) == {"errcode": 0, "errmsg": "ok"}


def test_refresh_after_expiry_returns_a_new_access_token(
    fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str
) -> None:
    token = login(fake_wechat, http, base)
    clock.advance(7200)
    old = protocol.userinfo_query(token["access_token"], token["openid"])
    assert_error(body(get(http, base, protocol.USERINFO_PATH, **old)), 42001)
    renewed = refresh(http, base, token["refresh_token"])
    assert renewed["access_token"] != token["access_token"] and renewed["refresh_token"] == token["refresh_token"]
    assert_error(body(get(http, base, protocol.USERINFO_PATH, **old)), 40001)
    new = protocol.userinfo_query(renewed["access_token"], token["openid"])
    assert body(get(http, base, protocol.USERINFO_PATH, **new))["nickname"] == "Alice 🐼"


def test_refresh_token_expiry(fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str) -> None:
    first, second = login(fake_wechat, http, base), login(fake_wechat, http, base, "bob")
    fake_wechat.expire_refresh_tokens()
    assert_error(refresh(http, base, first["refresh_token"]), 42002)
    third = login(fake_wechat, http, base, "carol")
    clock.advance(protocol.REFRESH_TOKEN_LIFETIME)
    assert_error(refresh(http, base, third["refresh_token"]), 42002)
    assert_error(refresh(http, base, "nope"), 40030)
    assert second["refresh_token"] != first["refresh_token"]


def test_expire_access_tokens_then_refresh(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base)
    fake_wechat.expire_access_tokens()
    query = protocol.auth_query(token["access_token"], token["openid"])
    assert_error(body(get(http, base, protocol.AUTH_PATH, **query)), 42001)
    assert refresh(http, base, token["refresh_token"])["access_token"] != token["access_token"]


# -- /sns/userinfo and /sns/auth ------------------------------------------------------------------


def test_userinfo_has_the_post_2021_shape(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base, "bob")
    data = body(
        get(http, base, protocol.USERINFO_PATH, **protocol.userinfo_query(token["access_token"], token["openid"]))
    )
    assert list(data) == [
        "openid",
        "nickname",
        "sex",
        "language",
        "city",
        "province",
        "country",
        "headimgurl",
        "privilege",
        "unionid",
    ]
    assert data["nickname"] == "小明✨🚀" and data["sex"] == 0 and data["privilege"] == []
    assert data["unionid"] == token["unionid"] == fake_wechat.users["bob"].unionid
    assert data["openid"] == fake_wechat.openid_for(DEMO_APPID, "bob")


def test_unionid_only_for_bound_apps(clock: Clock, http: requests.Session) -> None:
    unbound = FakeApp("wx3333333333333333", "s3", bound=False)
    fake = FakeWeChat([unbound], clock=clock)
    with FakeWeChatServer(fake) as server:
        code = fake.issue_code(unbound.appid, "alice")
        token = exchange(http, server.url, code, secret="s3", appid=unbound.appid)
        assert "unionid" not in token
        query = protocol.userinfo_query(token["access_token"], token["openid"])
        assert "unionid" not in body(get(http, server.url, protocol.USERINFO_PATH, **query))
    assert fake.openid_for(unbound.appid, "alice") != fake.openid_for(DEMO_APPID, "alice")


def test_base_scope_gets_no_unionid_and_48001(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base, scope=protocol.SCOPE_BASE)
    assert "unionid" not in token and token["scope"] == "snsapi_base"
    query = protocol.userinfo_query(token["access_token"], token["openid"])
    data = body(get(http, base, protocol.USERINFO_PATH, **query))
    assert_error(data, 48001)
    assert data["errmsg"].startswith("api unauthorized, rid: ")


def test_snapshot_user_is_flagged(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base, "dave")
    assert list(token)[-1] == "is_snapshotuser" and token["is_snapshotuser"] == 1
    assert protocol.Token.from_response(token).is_snapshot_user
    assert "is_snapshotuser" not in login(fake_wechat, http, base, "alice")


def test_control_character_nickname_is_sent_raw(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base, "carol")
    response = get(
        http, base, protocol.USERINFO_PATH, **protocol.userinfo_query(token["access_token"], token["openid"])
    )
    assert b'"nickname":"\x14\xe7\x90\xa6' in response.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content.decode("utf-8"))
    assert protocol.UserInfo.from_response(protocol.decode_body(response.content)).nickname == "\x14琦娅🍭"
    assert protocol.UserInfo.from_response(protocol.decode_body(response.content)).headimgurl == ""


@pytest.mark.parametrize("path", [protocol.USERINFO_PATH, protocol.AUTH_PATH])
def test_token_checks(fake_wechat: FakeWeChat, http: requests.Session, base: str, path: str) -> None:
    token = login(fake_wechat, http, base)
    assert_error(body(get(http, base, path, access_token=token["access_token"], openid="o" + "x" * 27)), 40003)
    assert_error(body(get(http, base, path, access_token="nope", openid=token["openid"])), 40001)
    fake_wechat.expire_access_tokens()
    assert_error(body(get(http, base, path, access_token=token["access_token"], openid=token["openid"])), 42001)


def test_auth_ok(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base, scope=protocol.SCOPE_BASE)
    response = get(http, base, protocol.AUTH_PATH, **protocol.auth_query(token["access_token"], token["openid"]))
    assert response.content == b'{"errcode":0,"errmsg":"ok"}'


def test_unknown_path_is_40066(http: requests.Session, base: str) -> None:
    assert_error(body(get(http, base, "/sns/oauth2/nothing")), 40066)
    assert_error(body(get(http, base, "/cgi-bin/nothing")), 40066)


# -- fault injection and recording ----------------------------------------------------------------


def test_fail_next_answers_errcodes_then_recovers(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    fake_wechat.fail_next("access_token", -1, times=2)
    fake_wechat.fail_next("access_token", 40163, "code been used, hints: [ req_id: 7L8aBa05974105 ]")
    assert_error(exchange(http, base, code), -1)
    assert_error(exchange(http, base, code), -1)
    assert exchange(http, base, code) == {
        "errcode": 40163,
        "errmsg": "code been used, hints: [ req_id: 7L8aBa05974105 ]",
    }
    assert "access_token" in exchange(http, base, code)  # faults do not consume the code
    assert [r.endpoint for r in fake_wechat.requests] == ["access_token"] * 4


def test_fail_next_validates_its_arguments(fake_wechat: FakeWeChat) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake_wechat.fail_next("token", 40029)
    with pytest.raises(ValueError, match="errmsg"):
        fake_wechat.fail_next("userinfo", 12345)


def test_break_next_sends_raw_bytes_and_status(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.break_next("userinfo", b"<html>502 Bad Gateway</html>", status=502)
    fake_wechat.break_next("userinfo", b'{"openid":"oX","nick')
    first = http.get(base + protocol.USERINFO_PATH)
    assert first.status_code == 502 and first.content == b"<html>502 Bad Gateway</html>"
    with pytest.raises(errors.WeChatResponseError):
        protocol.decode_body(http.get(base + protocol.USERINFO_PATH).content)
    assert_error(body(http.get(base + protocol.USERINFO_PATH)), 41001)


def test_requests_are_recorded_in_order(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = login(fake_wechat, http, base)
    http.get(base + protocol.USERINFO_PATH + f"?openid={token['openid']}&access_token={token['access_token']}&lang=en")
    http.get(authorize_url(base))  # pages are not recorded
    assert [r.endpoint for r in fake_wechat.requests] == ["access_token", "userinfo"]
    (call,) = fake_wechat.calls("userinfo")
    assert call.method == "GET" and call.path == "/sns/userinfo"
    assert [key for key, _ in call.query] == ["openid", "access_token", "lang"] and call.params["lang"] == "en"
    # The secret was checked on arrival (a wrong one is 40125) and is never kept in the log.
    assert fake_wechat.calls("access_token")[0].params["secret"] == "[redacted]"
    assert DEMO_SECRET not in repr(list(fake_wechat.requests))


def test_reset_forgets_state_but_keeps_apps_and_users(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    fake_wechat.add_user(FakeUser("erin", "Erin", "oErinErinErinErinErinErinErin"))
    token = login(fake_wechat, http, base)
    fake_wechat.fail_next("auth", -1)
    fake_wechat.reset()
    assert fake_wechat.requests == [] and fake_wechat.connections == 0
    assert_error(
        body(get(http, base, protocol.AUTH_PATH, **protocol.auth_query(token["access_token"], token["openid"]))), 40001
    )
    assert "erin" in fake_wechat.users and DEMO_APPID in fake_wechat.apps


def test_editing_a_fakes_user_leaves_the_defaults_alone() -> None:
    FakeWeChat().users["alice"].nickname = "changed"
    assert FakeWeChat().users["alice"].nickname == DEFAULT_USERS[0].nickname == "Alice 🐼"


def test_concurrent_exchanges(fake_wechat: FakeWeChat, base: str) -> None:
    codes = [fake_wechat.issue_code(DEMO_APPID, "alice") for _ in range(16)]
    results: list[dict[str, Any]] = []

    def run(code: str) -> None:
        with requests.Session() as session:
            results.append(exchange(session, base, code))

    threads = [threading.Thread(target=run, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({result["access_token"] for result in results}) == 16


# -- control endpoints ----------------------------------------------------------------------------


def test_control_endpoints(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    assert http.post(base + "/_fake/fail", json={"endpoint": "userinfo", "errcode": 45011}).json() == {"ok": True}
    assert_error(body(http.get(base + protocol.USERINFO_PATH)), 45011)
    code = http.post(base + "/_fake/code", json={"appid": DEMO_APPID, "user": "bob"}).json()["code"]
    token = exchange(http, base, code)
    recorded = http.get(base + "/_fake/requests").json()
    assert [r["endpoint"] for r in recorded] == ["userinfo", "access_token"]
    assert ["code", code] in recorded[1]["query"]
    http.post(base + "/_fake/expire-access-tokens")
    assert_error(
        body(get(http, base, protocol.AUTH_PATH, **protocol.auth_query(token["access_token"], token["openid"]))), 42001
    )
    users = http.get(base + "/_fake/users").json()
    assert users[1]["key"] == "bob" and users[1]["openids"][DEMO_APPID] == token["openid"]
    assert http.post(base + "/_fake/reset").json() == {"ok": True} and fake_wechat.requests == []
    assert http.post(base + "/_fake/fail", json={"endpoint": "nope", "errcode": 1}).status_code == 400
    assert http.get(base + "/_fake/reset").status_code == 405
    index = http.get(base + "/")
    assert index.status_code == 200 and "/_fake/fail" in index.text and protocol.TOKEN_PATH in index.text


# -- transport ------------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(fake_wechat: FakeWeChat, base: str) -> None:
    with requests.Session() as session:
        for _ in range(5):
            session.get(base + protocol.AUTH_PATH)
        consent(session, base, authorize_url(base))  # HTML pages and redirects keep the line too
    assert fake_wechat.connections == 1


def test_fresh_requests_open_fresh_connections(fake_wechat: FakeWeChat, base: str) -> None:
    for _ in range(5):
        requests.get(base + protocol.AUTH_PATH)
    assert fake_wechat.connections == 5


def test_simulated_latency() -> None:
    with FakeWeChatServer(request_latency=0.05, connect_latency=0.2) as server, requests.Session() as session:
        started = time.perf_counter()
        session.get(server.url + protocol.AUTH_PATH)
        first = time.perf_counter() - started
        started = time.perf_counter()
        session.get(server.url + protocol.AUTH_PATH)
        second = time.perf_counter() - started
    assert first >= 0.25 and 0.05 <= second < 0.2


def test_server_stop_is_idempotent_and_url_needs_a_socket() -> None:
    server = FakeWeChatServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    assert server.url.startswith("http://127.0.0.1:")
    server.stop()
    server.stop()


def test_wsgi_adapter_serves_the_fake_in_process(fake_wechat: FakeWeChat) -> None:
    with requests.Session() as session:
        session.mount("http://fake.wechat/", WSGIAdapter(fake_wechat))
        code = code_from(consent(session, "http://fake.wechat", authorize_url("http://fake.wechat")))
        response = session.get(
            "http://fake.wechat" + protocol.TOKEN_PATH, params=protocol.token_query(DEMO_APPID, DEMO_SECRET, code)
        )
        assert response.status_code == 200 and response.reason == "OK"
        assert response.url.startswith("http://fake.wechat/sns/oauth2/access_token?appid=")
        assert response.headers["Content-Type"] == "text/plain" and response.headers["Content-Length"] == str(
            len(response.content)
        )
        token = body(response)
        info = session.get(
            "http://fake.wechat" + protocol.USERINFO_PATH,
            params=protocol.userinfo_query(token["access_token"], token["openid"]),
        )
        assert protocol.UserInfo.from_response(protocol.decode_body(info.content)).nickname == "Alice 🐼"
    assert fake_wechat.connections == 0 and [r.endpoint for r in fake_wechat.requests] == ["access_token", "userinfo"]


def test_wsgi_adapter_keeps_cookies_and_follows_redirects() -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/set":
            response = Response(status=302, headers={"Location": "/echo"})
            response.set_cookie("who", "alice")
        else:
            response = Response(f"{request.method} {request.cookies.get('who')} {request.get_data(as_text=True)}")
        return response(environ, start_response)

    with requests.Session() as session:
        session.mount("http://app.test/", WSGIAdapter(app))
        assert session.get("http://app.test/set").text == "GET alice "
        assert session.post("http://app.test/echo", data="x=1").text == "POST alice x=1"


def test_fake_module_imports_neither_flask_nor_requests() -> None:
    code = (
        "import sys, flask_wechat.testing.fake, flask_wechat.testing.server\n"
        "bad = {'flask', 'requests'} & set(sys.modules)\n"
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


def package_import_graph() -> dict[str, set[str]]:
    """Each ``flask_wechat.testing`` module -> the package's modules it imports, wherever the import sits.

    Imports under ``TYPE_CHECKING`` and inside functions count: they close a circle for
    readers and type checkers all the same.
    """
    package = "flask_wechat.testing"
    parts = package.split(".")
    paths = {package if path.stem == "__init__" else f"{package}.{path.stem}": path for path in TESTING.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                # Every module sits directly in the package, so level 1 is the package itself.
                prefix = parts[: len(parts) + 1 - node.level] if node.level else []
                source = ".".join([*prefix, node.module] if node.module else prefix)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    imported.add(submodule if submodule in paths else source)
        graph[module] = {name for name in imported if name in paths and name != module}
    return graph


def test_fake_modules_import_one_way() -> None:
    graph = package_import_graph()
    # The fake still uses its page modules: a graph that lost its edges cannot pass.
    pages = {f"flask_wechat.testing.{name}" for name in ("authorize", "control", "qrconnect")}
    assert pages <= graph["flask_wechat.testing.fake"]
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each module before the ones that import it; reversed, it reads "imports".
        pytest.fail(f"import circle in flask_wechat.testing: {' -> '.join(reversed(exc.args[1]))}")


# -- flask wechat fake-server ---------------------------------------------------------------------


def test_fake_server_prints_where_to_point_the_app_and_each_apps_credentials() -> None:
    code = "from flask_wechat.testing.cli import fake_server; fake_server(['--port', '0'])"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            check_what_the_fake_server_prints(process)
        finally:
            process.terminate()


def check_what_the_fake_server_prints(process: subprocess.Popen[str]) -> None:
    """Its URL, where to set it, and each demo app's AppID and secret under their config keys."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith(" * Test users:"):
        line = process.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    printed = "".join(lines)
    url = re.search(r"Fake WeChat on (http://127\.0\.0\.1:\d+)", printed)
    assert url is not None, printed
    assert f'WECHAT_OPEN_BASE_URL = "{url.group(1)}"' in printed
    assert f'WECHAT_API_BASE_URL = "{url.group(1)}"' in printed
    for prefix, appid, secret in [
        ("WECHAT", DEMO_APPID, DEMO_SECRET),
        ("WECHAT_OPEN", DEMO_OPEN_APPID, DEMO_OPEN_SECRET),
        ("WECHAT_MINIPROGRAM", DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET),
    ]:
        assert f'{prefix}_APPID = "{appid}"\n' in printed and f'{prefix}_SECRET = "{secret}"\n' in printed
    # The printed URL serves: an app configured from these lines reaches the fake.
    assert requests.get(url.group(1) + "/", timeout=5).status_code == 200
