"""The fake's WeCom (企业微信), over real loopback HTTP: its pages, its qyapi answers and its knobs.

In-client authorize (the Official Account path, with a corpid), the web login page and
its ``ww.createWWLoginPanel`` stand-in (in Chromium when it is there), ``gettoken``,
both ``getuserinfo`` endpoints with their key casing, ``getuserdetail``, ``user/get``
and the wire details WeCom clients trip on: Error-Code headers, errmsg suffixes with
the caller's IP, empty lists in error bodies, 404 with an empty body.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from flask_wechat import errors, protocol
from flask_wechat.testing import (
    DEFAULT_CORPS,
    DEMO_AGENTID,
    DEMO_APPID,
    DEMO_CORPID,
    DEMO_WECOM_SECRET,
    ENDPOINT_PATHS,
    WECOM_DESKTOP_USER_AGENT,
    WECOM_USER_AGENT,
    FakeAgent,
    FakeCorp,
    FakeMember,
    FakeNonMember,
    FakeWeChat,
    FakeWeChatServer,
)
from flask_wechat.testing.server import describe

from . import fake_fixtures
from .fake_fixtures import Clock
from .loopback import chromium, local_page, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
from .test_fake import RID, assert_error, body

# The shared fixtures, assigned rather than imported (see tests/fake_fixtures.py).
clock, fake_wechat, base, http = fake_fixtures.clock, fake_fixtures.fake_wechat, fake_fixtures.base, fake_fixtures.http

CONTENT_TYPE = "application/json; charset=UTF-8"
GETTOKEN = "/cgi-bin/gettoken"
GETUSERINFO = "/cgi-bin/auth/getuserinfo"
LEGACY_GETUSERINFO = "/cgi-bin/user/getuserinfo"
GETUSERDETAIL = "/cgi-bin/auth/getuserdetail"
USER_GET = "/cgi-bin/user/get"
AUTHORIZE = "/connect/oauth2/authorize"
WEB_LOGIN = "/wwlogin/sso/login"
PANEL_JS = "/wwlogin/sso/panel.js"
CALLBACK = "https://app.example.com/wecom/callback"
TOKEN = re.compile(r"[A-Za-z0-9_-]{214}")
HINT = r"hint: \[[0-9]{25}\]"
LISTS = {"department": [], "order": [], "is_leader_in_dept": [], "direct_leader": []}
WITHHELD = {"avatar", "thumb_avatar", "gender", "mobile", "email", "biz_mail", "qr_code", "address"}
SECOND_SECRET = "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp_Oo-Nn9Mm8L"
OTHER_CORPID = "ww0a1b2c3d4e5f6789"
OTHER_SECRET = "Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0Kk_Ll-Mm1Nn2O"


# -- helpers --------------------------------------------------------------------------------------


def call(http: requests.Session, base: str, path: str, **params: str) -> requests.Response:
    response = http.get(base + path, params=params)
    assert response.status_code == 200 and response.headers["Content-Type"] == CONTENT_TYPE
    return response


def gettoken(
    http: requests.Session, base: str, corpid: str = DEMO_CORPID, secret: str = DEMO_WECOM_SECRET
) -> dict[str, Any]:
    return body(call(http, base, GETTOKEN, corpid=corpid, corpsecret=secret))


def token_of(http: requests.Session, base: str, corpid: str = DEMO_CORPID, secret: str = DEMO_WECOM_SECRET) -> str:
    value: str = gettoken(http, base, corpid, secret)["access_token"]
    return value


def userinfo(http: requests.Session, base: str, token: str, code: str, path: str = GETUSERINFO) -> requests.Response:
    return call(http, base, path, access_token=token, code=code)


def detail(http: requests.Session, base: str, token: str, payload: Any) -> requests.Response:
    response = http.post(base + GETUSERDETAIL, params={"access_token": token}, json=payload)
    assert response.status_code == 200 and response.headers["Content-Type"] == CONTENT_TYPE
    return response


def user_get(http: requests.Session, base: str, token: str, userid: str) -> requests.Response:
    return call(http, base, USER_GET, access_token=token, userid=userid)


def assert_wecom_error(
    response: requests.Response, errcode: int, text: str | None = None, ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """WeCom's error: HTTP 200, its Content-Type, the headers, and ``<text>, hint: [...], from ip: ..., more info``."""
    data = body(response)
    assert response.status_code == 200 and response.headers["Content-Type"] == CONTENT_TYPE
    assert data["errcode"] == errcode, data
    assert list(data)[:2] == ["errcode", "errmsg"]
    assert response.headers["Error-Code"] == str(errcode)
    assert response.headers["Error-Msg"] == data["errmsg"]
    if text is not None:
        link = re.escape(f"https://open.work.weixin.qq.com/devtool/query?e={errcode}")
        pattern = rf"{re.escape(text)}, {HINT}, from ip: {re.escape(ip)}, more info at {link}"
        assert re.fullmatch(pattern, data["errmsg"]), data["errmsg"]
    return data


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def second_agent_corp(**agent: Any) -> FakeCorp:
    """The demo corp with a second app (``1000003``): created before 2022-06-20 unless told otherwise."""
    corp = copy.deepcopy(DEFAULT_CORPS[0])
    options = {"name": "Old Directory App", "created_after_2022_06_20": False, **agent}
    corp.agents.append(FakeAgent(1000003, SECOND_SECRET, **options))
    return corp


class Form(HTMLParser):
    """What a browser without JavaScript sees of a page's form: action, hidden fields, choices, buttons."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.radios: list[str] = []
        self.picks: list[str] = []
        self.buttons: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "form":
            self.action = attr.get("action") or ""
        elif tag == "input" and attr.get("type") == "hidden":
            self.hidden[attr.get("name") or ""] = attr.get("value") or ""
        elif tag == "input" and attr.get("type") == "radio":
            self.radios.append(attr.get("value") or "")
        elif tag == "button" and attr.get("name") == "user":
            self.picks.append(attr.get("value") or "")
        elif tag == "button":
            self.buttons.append(attr.get("id") or "")


def oauth_url(base: str, scope: str = "snsapi_base", state: str | None = "st4te", **extra: str) -> str:
    params = {"appid": DEMO_CORPID, "redirect_uri": CALLBACK, "response_type": "code", "scope": scope}
    if state is not None:
        params["state"] = state
    params.update(extra)
    return f"{base}{AUTHORIZE}?{urlencode(params)}"


def submit(http: requests.Session, base: str, page: requests.Response, **fields: str) -> requests.Response:
    form = Form(page.text)
    assert form.action, page.text
    return http.post(base + form.action, data={**form.hidden, **fields}, allow_redirects=False)


def web_url(base: str, **params: str) -> str:
    query = {
        "login_type": "CorpApp",
        "appid": DEMO_CORPID,
        "agentid": str(DEMO_AGENTID),
        "redirect_uri": CALLBACK,
        "state": "w3b",
        **params,
    }
    return f"{base}{WEB_LOGIN}?{urlencode({k: v for k, v in query.items() if v is not None})}"


# -- the cast -------------------------------------------------------------------------------------


def test_the_default_corp_and_its_people() -> None:
    assert re.fullmatch(r"ww[0-9a-f]{16}", DEMO_CORPID) and re.fullmatch(r"[A-Za-z0-9_-]{43}", DEMO_WECOM_SECRET)
    assert DEMO_AGENTID == 1000002
    (corp,) = DEFAULT_CORPS
    (agent,) = corp.agents
    assert (agent.agentid, agent.secret, agent.created_after_2022_06_20, agent.trusted_domain) == (
        DEMO_AGENTID,
        DEMO_WECOM_SECRET,
        True,
        None,
    )
    members = {member.userid: member for member in corp.members}
    assert members["zhangsan"].name == "张三" and members["zhangsan"].department == [1, 2]
    assert members["lisi"].name == "李四" and members["wangwu"].name == "王五"
    assert [m.userid for m in corp.members if not m.in_visible_range] == ["wangwu"]
    assert all(m.gender in ("0", "1", "2") and m.avatar.startswith("/mmopen/") for m in corp.members)
    (guest,) = corp.non_members
    assert guest.key == "guest" and re.fullmatch(r"o[A-Za-z0-9_-]{27}", guest.openid)
    assert guest.external_userid is not None and re.fullmatch(r"wm[A-Za-z0-9_-]{30}", guest.external_userid)


def test_user_agents_are_wecoms_not_wechats() -> None:
    for agent in (WECOM_USER_AGENT, WECOM_DESKTOP_USER_AGENT):
        assert "wxwork/" in agent and "MicroMessenger/" in agent
        assert not protocol.is_wechat_browser(agent)


def test_the_cast_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="agentid"):
        FakeAgent(0, "s")
    with pytest.raises(ValueError, match="gender"):
        FakeMember("x", "X", gender="1 ")
    with pytest.raises(ValueError, match="unique"):
        FakeCorp(OTHER_CORPID, agents=[FakeAgent(1, "a"), FakeAgent(1, "b")])
    with pytest.raises(ValueError, match="differ"):
        FakeCorp(OTHER_CORPID, members=[FakeMember("x", "X")], non_members=[FakeNonMember("x", "X", "oX")])


def test_editing_a_fakes_corp_leaves_the_defaults_alone() -> None:
    FakeWeChat().corps[DEMO_CORPID].members[0].name = "changed"
    FakeWeChat().corps[DEMO_CORPID].agents[0].trusted_domain = "changed.example"
    assert DEFAULT_CORPS[0].members[0].name == "张三" and DEFAULT_CORPS[0].agents[0].trusted_domain is None


# -- gettoken -------------------------------------------------------------------------------------


def test_gettoken_success_is_wecom_shaped(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    response = call(http, base, GETTOKEN, corpid=DEMO_CORPID, corpsecret=DEMO_WECOM_SECRET)
    data = body(response)
    assert list(data) == ["errcode", "errmsg", "access_token", "expires_in"]
    assert data["errcode"] == 0 and data["errmsg"] == "ok" and data["expires_in"] == 7200
    assert TOKEN.fullmatch(data["access_token"])
    assert "Error-Code" not in response.headers
    assert response.content == json.dumps(data, separators=(",", ":")).encode()  # compact
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 1


def test_gettoken_returns_the_same_token_while_it_lives(
    fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str
) -> None:
    first = gettoken(http, base)
    clock.advance(1000)
    again = gettoken(http, base)
    assert again["access_token"] == first["access_token"] and again["expires_in"] == 6200
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 1
    clock.advance(6200)
    assert_wecom_error(user_get(http, base, first["access_token"], "zhangsan"), 42001, "access_token expired")
    fresh = gettoken(http, base)
    assert fresh["access_token"] != first["access_token"] and fresh["expires_in"] == 7200
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 2


@pytest.mark.parametrize(
    ("params", "errcode", "text"),
    [
        ({}, 41004, "corpsecret missing"),
        ({"corpid": DEMO_CORPID}, 41004, "corpsecret missing"),
        ({"corpsecret": DEMO_WECOM_SECRET}, 41002, "corpid missing"),
        ({"corpid": "ww0000000000000000", "corpsecret": DEMO_WECOM_SECRET}, 40013, "invalid corpid"),
        ({"corpid": DEMO_CORPID, "corpsecret": "wrong"}, 40001, "invalid credential"),
        ({"corpid": DEMO_CORPID, "corpsecret": OTHER_SECRET}, 40001, "invalid credential"),
    ],
)
def test_gettoken_errors_in_order(
    fake_wechat: FakeWeChat, http: requests.Session, base: str, params: dict[str, str], errcode: int, text: str
) -> None:
    fake_wechat.add_corp(FakeCorp(OTHER_CORPID, "Other Corp", agents=[FakeAgent(1000002, OTHER_SECRET)]))
    assert_wecom_error(http.get(base + GETTOKEN, params=params), errcode, text)
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 0


def test_one_token_per_agent_secret(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.add_corp(second_agent_corp())
    first, second = token_of(http, base), token_of(http, base, secret=SECOND_SECRET)
    assert first != second
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 1
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, 1000003) == 1
    # A code minted for one app is another app's 40029; a link without agentid serves any app of the corp.
    code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan")
    assert_wecom_error(userinfo(http, base, second, code), 40029, "invalid code")
    assert body(userinfo(http, base, first, code))["userid"] == "zhangsan"
    anyone = fake_wechat.issue_wecom_code(DEMO_CORPID, None, "lisi")
    assert body(userinfo(http, base, second, anyone))["userid"] == "lisi"


def test_revoked_tokens_are_40014_and_expired_ones_42001(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = token_of(http, base)
    fake_wechat.revoke_wecom_tokens()
    revoked = user_get(http, base, token, "zhangsan")
    data = assert_wecom_error(revoked, 40014)
    assert data == {"errcode": 40014, "errmsg": "invalid access_token", **LISTS}  # bare, as observed
    fresh = token_of(http, base)
    assert fresh != token and body(user_get(http, base, fresh, "zhangsan"))["errcode"] == 0
    fake_wechat.expire_wecom_tokens()
    assert_wecom_error(user_get(http, base, fresh, "zhangsan"), 42001, "access_token expired")
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 2
    assert token_of(http, base) not in (token, fresh)


def test_the_token_is_read_from_the_query_only(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    header = http.get(base + USER_GET, params={"userid": "zhangsan"}, headers={"Authorization": f"Bearer {token}"})
    assert assert_wecom_error(header, 41001, "access_token missing") == {**body(header), **LISTS}
    in_body = http.post(base + GETUSERDETAIL, json={"access_token": token, "user_ticket": "x"})
    assert_wecom_error(in_body, 41001, "access_token missing")
    assert_wecom_error(user_get(http, base, "not-a-token", "zhangsan"), 40014)


def test_concurrent_gettoken_calls_share_one_token(fake_wechat: FakeWeChat, base: str) -> None:
    tokens: list[str] = []

    def run() -> None:
        with requests.Session() as session:
            tokens.append(token_of(session, base))

    threads = [threading.Thread(target=run) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 12 and len(set(tokens)) == 1
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 1


# -- getuserinfo, new and legacy ------------------------------------------------------------------


def test_getuserinfo_is_lowercase(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    base_code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan")
    response = userinfo(http, base, token, base_code)
    assert response.content == b'{"errcode":0,"errmsg":"ok","userid":"zhangsan"}'
    private = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "lisi", "snsapi_privateinfo")
    data = body(userinfo(http, base, token, private))
    assert list(data) == ["errcode", "errmsg", "userid", "user_ticket"] and data["userid"] == "lisi"
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,512}", data["user_ticket"])
    # Outside the visible range: the userid, never a ticket.
    outside = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "wangwu", "snsapi_privateinfo")
    assert body(userinfo(http, base, token, outside)) == {"errcode": 0, "errmsg": "ok", "userid": "wangwu"}
    # A web login code: the userid only.
    web = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan", web=True)
    assert body(userinfo(http, base, token, web)) == {"errcode": 0, "errmsg": "ok", "userid": "zhangsan"}
    guest = fake_wechat.corps[DEMO_CORPID].non_members[0]
    outsider = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "guest")
    assert body(userinfo(http, base, token, outsider)) == {
        "errcode": 0,
        "errmsg": "ok",
        "openid": guest.openid,
        "external_userid": guest.external_userid,
    }
    fake_wechat.corps[DEMO_CORPID].non_members.append(
        FakeNonMember("walkin", "Walk-in", "oWalkInWalkInWalkInWalkInWal")
    )
    stranger = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "walkin")
    assert body(userinfo(http, base, token, stranger)) == {
        "errcode": 0,
        "errmsg": "ok",
        "openid": "oWalkInWalkInWalkInWalkInWal",
    }


def test_legacy_getuserinfo_is_capitalised(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan")
    data = body(userinfo(http, base, token, code, LEGACY_GETUSERINFO))
    assert list(data) == ["errcode", "errmsg", "UserId", "DeviceId"]
    assert data["UserId"] == "zhangsan" and re.fullmatch(r"[0-9a-f]{32}", data["DeviceId"])
    private = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "lisi", "snsapi_privateinfo")
    data = body(userinfo(http, base, token, private, LEGACY_GETUSERINFO))
    assert list(data) == ["errcode", "errmsg", "UserId", "DeviceId", "user_ticket", "expires_in"]
    assert data["expires_in"] == 1800 and "userid" not in data
    assert body(detail(http, base, token, {"user_ticket": data["user_ticket"]}))["userid"] == "lisi"
    guest = fake_wechat.corps[DEMO_CORPID].non_members[0]
    outsider = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "guest")
    data = body(userinfo(http, base, token, outsider, LEGACY_GETUSERINFO))
    assert list(data) == ["errcode", "errmsg", "OpenId", "DeviceId", "external_userid"]
    assert data["OpenId"] == guest.openid and data["external_userid"] == guest.external_userid
    web = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "lisi", web=True)
    assert body(userinfo(http, base, token, web, LEGACY_GETUSERINFO)) == {
        "errcode": 0,
        "errmsg": "ok",
        "UserId": "lisi",
        "DeviceId": "",
    }


def test_a_code_is_single_use_across_both_endpoints(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan")
    assert body(userinfo(http, base, token, code))["userid"] == "zhangsan"
    assert_wecom_error(userinfo(http, base, token, code), 40029, "invalid code")
    assert_wecom_error(userinfo(http, base, token, code, LEGACY_GETUSERINFO), 40029, "invalid code")
    assert_wecom_error(http.get(base + GETUSERINFO, params={"access_token": token}), 41008, "missing code")


def test_a_code_lives_five_minutes(fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str) -> None:
    early, late = (fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "lisi") for _ in range(2))
    clock.advance(299)
    token = token_of(http, base)
    assert body(userinfo(http, base, token, early))["userid"] == "lisi"
    fake_wechat.advance(1)  # the fake's own clock knob moves the same time
    assert_wecom_error(userinfo(http, base, token, late), 40029, "invalid code")


def test_another_corps_code_is_40029(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    corp = FakeCorp(OTHER_CORPID, "Other Corp", [FakeAgent(DEMO_AGENTID, OTHER_SECRET)], [FakeMember("zhangsan", "Z")])
    fake_wechat.add_corp(corp)
    code = fake_wechat.issue_wecom_code(OTHER_CORPID, DEMO_AGENTID, "zhangsan")
    assert_wecom_error(userinfo(http, base, token_of(http, base), code), 40029, "invalid code")
    assert body(userinfo(http, base, token_of(http, base, OTHER_CORPID, OTHER_SECRET), code))["userid"] == "zhangsan"


def test_a_code_from_an_untrusted_domain_is_50001(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.corps[DEMO_CORPID].agents[0].trusted_domain = "app.example.com"
    token = token_of(http, base)
    elsewhere = fake_wechat.issue_wecom_code(
        DEMO_CORPID, DEMO_AGENTID, "zhangsan", redirect_uri="https://evil.example.net/cb"
    )
    assert_wecom_error(userinfo(http, base, token, elsewhere), 50001, "redirect_uri unauthorized")
    assert_wecom_error(userinfo(http, base, token, elsewhere, LEGACY_GETUSERINFO), 50001)
    # The port is part of the domain; scheme and path are not.
    port = fake_wechat.issue_wecom_code(
        DEMO_CORPID, DEMO_AGENTID, "zhangsan", redirect_uri="https://app.example.com:8443/cb"
    )
    assert_wecom_error(userinfo(http, base, token, port), 50001)
    trusted = fake_wechat.issue_wecom_code(
        DEMO_CORPID, DEMO_AGENTID, "zhangsan", redirect_uri="http://APP.example.com/other/path"
    )
    assert body(userinfo(http, base, token, trusted))["userid"] == "zhangsan"


# -- getuserdetail and user/get -------------------------------------------------------------------


def private_ticket(fake: FakeWeChat, http: requests.Session, base: str, token: str, userid: str = "zhangsan") -> str:
    code = fake.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, userid, "snsapi_privateinfo")
    ticket: str = body(userinfo(http, base, token, code))["user_ticket"]
    return ticket


def test_getuserdetail_answers_the_consented_fields(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    ticket = private_ticket(fake_wechat, http, base, token)
    data = body(detail(http, base, token, {"user_ticket": ticket}))
    assert list(data) == [
        "errcode",
        "errmsg",
        "userid",
        "gender",
        "avatar",
        "qr_code",
        "mobile",
        "email",
        "biz_mail",
        "address",
    ]
    assert data["errcode"] == 0 and data["userid"] == "zhangsan" and data["gender"] == "1"
    assert (data["mobile"], data["email"]) == ("13800138011", "zhangsan@example.com")
    assert data["biz_mail"] == "zhangsan@corp.example.com" and data["address"].startswith("广州市")
    assert data["avatar"].startswith(base + "/mmopen/") and data["avatar"].endswith("/0")
    assert data["qr_code"].startswith(base + "/wwopen/userQRCode?vcode=vc")
    avatar, qr = http.get(data["avatar"]), http.get(data["qr_code"])
    assert avatar.status_code == qr.status_code == 200
    assert avatar.headers["Content-Type"] == qr.headers["Content-Type"] == "image/svg+xml"
    # The ticket is not single use.
    assert body(detail(http, base, token, {"user_ticket": ticket}))["userid"] == "zhangsan"


def test_user_ticket_errors(fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    ticket = private_ticket(fake_wechat, http, base, token, "lisi")
    assert_wecom_error(detail(http, base, token, {"user_ticket": "unknown"}), 84015, "invalid user ticket")
    assert_wecom_error(detail(http, base, token, {}), 84015)
    response = http.post(base + GETUSERDETAIL, params={"access_token": token}, data="user_ticket=" + ticket)
    assert_wecom_error(response, 47001, "data format error")
    clock.advance(1799)
    assert body(detail(http, base, token, {"user_ticket": ticket}))["userid"] == "lisi"
    clock.advance(1)
    assert_wecom_error(detail(http, base, token, {"user_ticket": ticket}), 84014, "user ticket expired")
    moved = private_ticket(fake_wechat, http, base, token_of(http, base), "zhangsan")
    fake_wechat.corps[DEMO_CORPID].members[0].in_visible_range = False
    assert_wecom_error(detail(http, base, token_of(http, base), {"user_ticket": moved}), 50002, "user limited")


def test_another_apps_ticket_is_84015(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.add_corp(second_agent_corp())
    ticket = private_ticket(fake_wechat, http, base, token_of(http, base))
    assert_wecom_error(detail(http, base, token_of(http, base, secret=SECOND_SECRET), {"user_ticket": ticket}), 84015)


def test_user_get_withholds_sensitive_fields_from_apps_created_after_2022_06_20(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    fake_wechat.add_corp(second_agent_corp())
    new = body(user_get(http, base, token_of(http, base), "zhangsan"))
    old = body(user_get(http, base, token_of(http, base, secret=SECOND_SECRET), "zhangsan"))
    assert set(old) - set(new) == WITHHELD and not WITHHELD & set(new)
    assert new["errcode"] == 0 and new["userid"] == "zhangsan" and new["name"] == "张三"
    assert new["department"] == [1, 2] and new["order"] == [0, 0] and new["main_department"] == 1
    assert new["position"] == "产品经理" and new["is_leader_in_dept"] == [0, 0] and new["direct_leader"] == []
    assert old["gender"] == "1" and old["mobile"] == "13800138011" and old["email"] == "zhangsan@example.com"
    assert old["avatar"].startswith(base + "/mmopen/") and old["qr_code"].startswith(base + "/wwopen/userQRCode")
    assert list(old)[:4] == ["errcode", "errmsg", "userid", "name"]


def test_user_get_errors_keep_their_empty_lists(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    unknown = user_get(http, base, token, "nobody")
    data = assert_wecom_error(unknown, 60111, "invalid string value `nobody`. userid not found")
    assert list(data) == ["errcode", "errmsg", "department", "order", "is_leader_in_dept", "direct_leader"]
    assert {key: data[key] for key in LISTS} == LISTS
    outside = user_get(http, base, token, "wangwu")
    assert (
        assert_wecom_error(outside, 60011, "no privilege to access/modify contact/party/agent").keys() >= LISTS.keys()
    )
    missing = http.get(base + USER_GET, params={"userid": "zhangsan"})
    assert body(missing) == {"errcode": 41001, "errmsg": body(missing)["errmsg"], **LISTS}
    # Other endpoints' errors have no such lists.
    assert list(body(userinfo(http, base, token, "nope"))) == ["errcode", "errmsg"]


# -- the trusted IP -------------------------------------------------------------------------------


def test_refused_ip_is_60020_everywhere_but_gettoken(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = token_of(http, base)
    code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan")
    fake_wechat.refuse_wecom_ip()
    assert gettoken(http, base)["access_token"] == token  # gettoken still works
    text = "not allow to access from your ip"
    for response in (
        userinfo(http, base, token, code),
        userinfo(http, base, token, code, LEGACY_GETUSERINFO),
        detail(http, base, token, {"user_ticket": "x"}),
        user_get(http, base, token, "zhangsan"),
    ):
        data = assert_wecom_error(response, 60020, text, ip="198.51.100.23")
        error = errors.error_for(60020, data["errmsg"])
        assert isinstance(error, errors.IPNotAllowedError) and error.ip == "198.51.100.23"
    # Meanwhile every WeCom errmsg names that IP as the caller.
    assert_wecom_error(http.get(base + GETTOKEN), 41004, "corpsecret missing", ip="198.51.100.23")
    fake_wechat.allow_wecom_ip()
    assert body(userinfo(http, base, token, code))["userid"] == "zhangsan"  # the refused call left it unused
    fake_wechat.refuse_wecom_ip("203.0.113.99")
    assert_wecom_error(user_get(http, base, token, "lisi"), 60020, text, ip="203.0.113.99")
    with pytest.raises(ValueError):
        fake_wechat.refuse_wecom_ip("not an ip")


def test_apps_created_before_2022_06_20_need_no_trusted_ip(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    fake_wechat.add_corp(second_agent_corp())
    fake_wechat.refuse_wecom_ip()
    assert body(user_get(http, base, token_of(http, base, secret=SECOND_SECRET), "lisi"))["errcode"] == 0
    assert_wecom_error(user_get(http, base, token_of(http, base), "lisi"), 60020)


# -- fault injection, recording, host and path ----------------------------------------------------


def test_fail_next_and_break_next_answer_in_wecoms_shape(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    names = {"wecom_gettoken", "wecom_getuserinfo", "wecom_legacy_getuserinfo", "wecom_getuserdetail", "wecom_user_get"}
    assert names <= set(ENDPOINT_PATHS)
    fake_wechat.fail_next("wecom_gettoken", 45009)
    fake_wechat.fail_next("wecom_gettoken", -1, "system busy")
    fake_wechat.fail_next("wecom_user_get", 48002)
    fake_wechat.break_next("wecom_getuserinfo", b"<html>502</html>", status=502)
    assert_wecom_error(http.get(base + GETTOKEN), 45009, "api freq out of limit")
    explicit = http.get(base + GETTOKEN)
    assert body(explicit) == {"errcode": -1, "errmsg": "system busy"} and explicit.headers["Error-Code"] == "-1"
    token = token_of(http, base)
    forbidden = assert_wecom_error(user_get(http, base, token, "zhangsan"), 48002, "api forbidden")
    assert {key: forbidden[key] for key in LISTS} == LISTS
    broken = http.get(base + GETUSERINFO, params={"access_token": token, "code": "x"})
    assert broken.status_code == 502 and broken.content == b"<html>502</html>"
    assert http.post(base + "/_fake/fail", json={"endpoint": "wecom_getuserdetail", "errcode": 84014}).ok
    assert_wecom_error(detail(http, base, token, {"user_ticket": "x"}), 84014)
    with pytest.raises(ValueError, match="errmsg"):
        fake_wechat.fail_next("wecom_gettoken", 40164)  # a WeChat errcode WeCom has no text for
    fake_wechat.fail_next("app_token", 41004)  # WeChat's endpoints keep WeChat's shape
    assert_error(body(http.get(base + "/cgi-bin/token")), 41004)


def test_requests_are_recorded_with_the_corpsecret_redacted(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = token_of(http, base)
    http.post(base + GETUSERDETAIL, params={"access_token": token}, data=f'{{"leak": "{DEMO_WECOM_SECRET}"}}')
    (recorded,) = fake_wechat.calls("wecom_gettoken")
    assert recorded.params == {"corpid": DEMO_CORPID, "corpsecret": "[redacted]"}
    assert [r.endpoint for r in fake_wechat.requests] == ["wecom_gettoken", "wecom_getuserdetail"]
    assert fake_wechat.calls("wecom_getuserdetail")[0].params["access_token"] == token  # tokens are kept
    assert DEMO_WECOM_SECRET not in repr(fake_wechat.requests)
    assert DEMO_WECOM_SECRET not in http.get(base + "/_fake/requests").text


def test_unknown_paths_on_wecoms_host_are_404_with_an_empty_body(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    wecom_host = {"Host": "qyapi.weixin.qq.com"}
    for path in ("/cgi-bin/this_api_does_not_exist", "/cgi-bin/token", "/sns/oauth2/access_token", "/"):
        response = http.get(base + path, headers=wecom_host)
        assert response.status_code == 404 and response.content == b"", path
    named = http.get(
        base + GETTOKEN, params={"corpid": DEMO_CORPID, "corpsecret": DEMO_WECOM_SECRET}, headers=wecom_host
    )
    assert body(named)["errcode"] == 0
    # On the loopback origin a path alone cannot say which host it was meant for: WeChat's 40066 stays.
    assert_error(body(http.get(base + "/cgi-bin/this_api_does_not_exist")), 40066)
    # WeChat's host does not serve WeCom's paths.
    wechat = http.get(base + GETTOKEN, headers={"Host": "api.weixin.qq.com"})
    assert wechat.headers["Content-Type"] == "application/json; encoding=utf-8"
    assert_error(body(wechat), 40066)


# -- the in-client authorize page -----------------------------------------------------------------


def test_snsapi_base_picks_who_opened_the_link_and_redirects_at_once(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    page = http.get(oauth_url(base, agentid=str(DEMO_AGENTID)), headers={"User-Agent": WECOM_USER_AGENT})
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    form = Form(page.text)
    assert form.picks == ["zhangsan", "lisi", "wangwu", "guest"]  # silent in WeCom: anyone may have opened it
    assert "模拟企业微信" in page.text and 'id="ua-note"' not in page.text
    answer = submit(http, base, page, user="wangwu")
    assert answer.status_code == 302 and answer.headers["Location"].startswith(CALLBACK + "?code=")
    query = query_of(answer.headers["Location"])
    assert list(query) == ["code", "state"] and query["state"] == "st4te"
    assert body(userinfo(http, base, token_of(http, base), query["code"]))["userid"] == "wangwu"


def test_parameter_order_is_free_and_state_optional(http: requests.Session, base: str) -> None:
    # WxJava sends agentid before state, the documentation after it.
    query = f"appid={DEMO_CORPID}&redirect_uri={CALLBACK}&response_type=code&scope=snsapi_base&agentid={DEMO_AGENTID}"
    page = http.get(f"{base}{AUTHORIZE}?{query}&state=x1")
    assert Form(page.text).picks and 'id="ua-note"' in page.text  # not in the WeCom client: a note says so
    answer = submit(http, base, http.get(oauth_url(base, state=None)), user="guest")
    assert list(query_of(answer.headers["Location"])) == ["code"]


def test_snsapi_privateinfo_consent_yields_a_ticket(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    page = http.get(oauth_url(base, "snsapi_privateinfo", agentid=str(DEMO_AGENTID)))
    form = Form(page.text)
    assert form.radios == ["zhangsan", "lisi"] and form.buttons == ["allow", "deny"]  # the visible range only
    assert "Demo WeCom App" in page.text and "手机" in page.text
    answer = submit(http, base, page, user="lisi", action="allow")
    query = query_of(answer.headers["Location"])
    token = token_of(http, base)
    data = body(userinfo(http, base, token, query["code"]))
    assert data["userid"] == "lisi" and query["state"] == "st4te"
    assert body(detail(http, base, token, {"user_ticket": data["user_ticket"]}))["mobile"] == "13800138012"
    refused = submit(http, base, page, user="wangwu", action="allow")
    assert refused.status_code == 400 and "visible range" in refused.text


def test_snsapi_privateinfo_refusal(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    page = http.get(oauth_url(base, "snsapi_privateinfo", agentid=str(DEMO_AGENTID)))
    denied = submit(http, base, page, user="zhangsan", action="deny")
    assert denied.status_code == 200 and 'id="denied"' in denied.text
    fake_wechat.deny_mode = "redirect"
    denied = submit(http, base, page, user="zhangsan", action="deny")
    assert denied.status_code == 302 and denied.headers["Location"] == CALLBACK + "?state=st4te"


def test_snsapi_privateinfo_without_agentid_counts_as_base(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    page = http.get(oauth_url(base, "snsapi_privateinfo"))
    assert Form(page.text).picks and 'id="scope-note"' in page.text
    answer = submit(http, base, page, user="zhangsan")
    code = query_of(answer.headers["Location"])["code"]
    assert body(userinfo(http, base, token_of(http, base), code)) == {
        "errcode": 0,
        "errmsg": "ok",
        "userid": "zhangsan",
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"response_type": "token"}, "response_type must be code"),
        ({"scope": "snsapi_userinfo"}, "scope must be"),
        ({"state": "abc#wechat_redirect"}, "state must match"),
        ({"agentid": "1000009"}, "agentid"),
        ({"agentid": "abc"}, "agentid"),
        ({"redirect_uri": "javascript:alert(1)"}, "absolute http(s) URL"),
        ({"redirect_uri": ""}, "redirect_uri is missing"),
    ],
)
def test_bad_in_client_links_show_an_error_page(
    http: requests.Session, base: str, change: dict[str, str], problem: str
) -> None:
    page = http.get(oauth_url(base, **change))
    assert page.status_code == 200 and 'id="error"' in page.text and problem in page.text
    assert not Form(page.text).picks


def test_a_redirect_uri_off_the_trusted_domain_shows_wecoms_page(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    fake_wechat.corps[DEMO_CORPID].agents[0].trusted_domain = "app.example.com:8443"
    refused = http.get(oauth_url(base, agentid=str(DEMO_AGENTID)), allow_redirects=False)
    assert refused.status_code == 302
    location = refused.headers["Location"]
    assert location.startswith("/wwopen/uriconfirm?") and query_of(location) == {
        "err_type": "domain_err",
        "uri": CALLBACK,
    }
    page = http.get(oauth_url(base, agentid=str(DEMO_AGENTID)))
    assert "redirect_uri需使用应用可信域名" in page.text and CALLBACK in page.text
    trusted = "https://app.example.com:8443/wecom/callback"
    assert Form(http.get(oauth_url(base, redirect_uri=trusted, agentid=str(DEMO_AGENTID))).text).picks
    # A link without agentid cannot be checked on the page; the code then fails at getuserinfo.
    answer = submit(http, base, http.get(oauth_url(base)), user="lisi")
    code = query_of(answer.headers["Location"])["code"]
    assert_wecom_error(userinfo(http, base, token_of(http, base), code), 50001, "redirect_uri unauthorized")


def test_the_oa_authorize_page_still_serves_wechat_appids(http: requests.Session, base: str) -> None:
    url = protocol.build_authorize_url(base, DEMO_APPID, CALLBACK, protocol.SCOPE_USERINFO, "abc")
    page = http.get(url)
    assert page.status_code == 200 and "模拟微信" in page.text and "模拟企业微信" not in page.text


# -- the web login page ---------------------------------------------------------------------------


def test_web_login_page_scans_and_redirects_with_code_and_state(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    page = http.get(web_url(base))
    assert page.status_code == 200 and 'id="qrcode"' in page.text and "请使用企业微信扫码登录" in page.text
    form = Form(page.text)
    assert form.radios == ["zhangsan", "lisi", "wangwu", "guest"] and form.buttons == ["allow", "deny"]
    answer = submit(http, base, page, user="lisi", action="allow")
    assert answer.status_code == 302
    query = query_of(answer.headers["Location"])
    assert list(query) == ["code", "state"] and query["state"] == "w3b"
    token = token_of(http, base)
    assert body(userinfo(http, base, token, query["code"])) == {"errcode": 0, "errmsg": "ok", "userid": "lisi"}
    english = http.get(web_url(base, lang="en", state="a b&c/d"))
    assert "Scan with WeCom to log in" in english.text
    answer = submit(http, base, english, user="guest", action="allow")
    query = query_of(answer.headers["Location"])
    assert query["state"] == "a b&c/d"  # any state comes back intact
    assert body(userinfo(http, base, token, query["code"]))["openid"].startswith("o")


def test_web_login_cancel_goes_back_with_state_only(http: requests.Session, base: str) -> None:
    answer = submit(http, base, http.get(web_url(base)), user="zhangsan", action="deny")
    assert answer.status_code == 302 and answer.headers["Location"] == CALLBACK + "?state=w3b"


def test_web_login_refuses_members_outside_the_visible_range(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    answer = submit(http, base, http.get(web_url(base)), user="wangwu", action="allow")
    assert answer.status_code == 200 and "无权限" in answer.text and "Location" not in answer.headers
    with pytest.raises(ValueError, match="visible range"):
        fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "wangwu", web=True)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"login_type": None}, "login_type must be CorpApp"),
        ({"login_type": "ServiceApp"}, "self-built apps only"),
        ({"appid": "ww0000000000000000"}, "not a corp"),
        ({"agentid": None}, "agentid is required"),
        ({"agentid": "1000009"}, "agentid"),
        ({"redirect_uri": None}, "redirect_uri is missing"),
        ({"panel": "1", "redirect_type": "popup"}, "redirect_type must be"),
        ({"panel": "1", "redirect_type": "callback"}, "origin="),
    ],
)
def test_bad_web_login_links_show_an_error_page(
    http: requests.Session, base: str, change: dict[str, Any], problem: str
) -> None:
    page = http.get(web_url(base, **change))
    assert page.status_code == 200 and 'id="error"' in page.text and problem in page.text


def test_web_login_checks_the_trusted_domain(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.corps[DEMO_CORPID].agents[0].trusted_domain = "login.example.org"
    page = http.get(web_url(base))
    assert "redirect_uri需使用应用可信域名" in page.text
    good = http.get(web_url(base, redirect_uri="https://login.example.org/cb"))
    code = query_of(submit(http, base, good, user="zhangsan", action="allow").headers["Location"])["code"]
    assert body(userinfo(http, base, token_of(http, base), code))["userid"] == "zhangsan"


def test_web_login_in_the_panel_answers_per_redirect_type(http: requests.Session, base: str) -> None:
    top = submit(http, base, http.get(web_url(base, panel="1")), user="zhangsan", action="allow")
    assert top.status_code == 200 and "window.top.location.href" in top.text and CALLBACK + "?code=" in top.text
    inside = submit(http, base, http.get(web_url(base, panel="1", redirect_type="self")), user="lisi", action="allow")
    assert inside.status_code == 302 and inside.headers["Location"].startswith(CALLBACK + "?code=")
    origin = "http://site.example:8080"
    page = http.get(web_url(base, panel="1", redirect_type="callback", origin=origin))
    assert Form(page.text).hidden["origin"] == origin
    message = submit(http, base, page, user="lisi", action="allow")
    assert message.status_code == 200 and "Location" not in message.headers
    found = re.search(r"postMessage\(JSON\.parse\((\".*?\")\), \"(.*?)\"\)", message.text)
    assert found is not None and found.group(2) == origin
    data = json.loads(json.loads(found.group(1)))
    assert data["source"] == "fake-wwlogin" and data["type"] == "success" and CALLBACK not in message.text
    assert body(userinfo(http, base, token_of(http, base), data["code"]))["userid"] == "lisi"
    cancel = submit(http, base, page, user="lisi", action="deny")
    assert '\\"type\\": \\"fail\\"' in cancel.text


def test_panel_script_is_served_as_javascript(http: requests.Session, base: str) -> None:
    response = http.get(base + PANEL_JS)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    script = response.text
    assert "ww.createWWLoginPanel = function (options)" in script and f'base = "{base}"' in script
    assert '"/wwlogin/sso/login"' in script and "onLoginSuccess({code: data.code})" in script
    assert "unmount: function ()" in script and "isWeComLogin: false" in script


def test_panel_script_under_a_mount_prefix() -> None:
    app = DispatcherMiddleware(Response("site", 404), {"/wecom-fake": FakeWeChat()})
    script = Client(app).get("/wecom-fake" + PANEL_JS, base_url="https://site.example").get_data(as_text=True)
    assert 'base = "https://site.example/wecom-fake"' in script


# -- issue helper, control endpoints, reset, index, CLI -------------------------------------------


def test_issue_wecom_code_checks_its_arguments(fake_wechat: FakeWeChat) -> None:
    for args, kwargs, match in [
        (("ww0000000000000000", DEMO_AGENTID, "zhangsan"), {}, "unknown corpid"),
        ((DEMO_CORPID, 1000009, "zhangsan"), {}, "no agent"),
        ((DEMO_CORPID, DEMO_AGENTID, "nobody"), {}, "no member or non-member"),
        ((DEMO_CORPID, DEMO_AGENTID, "zhangsan", "snsapi_userinfo"), {}, "scope"),
        ((DEMO_CORPID, None, "zhangsan"), {"web": True}, "needs an agentid"),
        ((DEMO_CORPID, DEMO_AGENTID, "zhangsan", "snsapi_privateinfo"), {"web": True}, "no scope"),
    ]:
        with pytest.raises(ValueError, match=match):
            fake_wechat.issue_wecom_code(*args, **kwargs)


def test_wecom_control_endpoints(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    payload = {"corpid": DEMO_CORPID, "agentid": str(DEMO_AGENTID), "user": "zhangsan", "scope": "snsapi_privateinfo"}
    code = http.post(base + "/_fake/wecom/code", json=payload).json()["code"]
    token = token_of(http, base)
    assert "user_ticket" in body(userinfo(http, base, token, code))
    web = http.post(base + "/_fake/wecom/code", json={**payload, "scope": "snsapi_base", "web": True}).json()["code"]
    assert "user_ticket" not in body(userinfo(http, base, token, web))
    bad = http.post(base + "/_fake/wecom/code", json={**payload, "agentid": True})
    assert bad.status_code == 400
    counters = http.get(base + "/_fake/counters").json()
    assert counters["corps"] == {DEMO_CORPID: {str(DEMO_AGENTID): {"wecom_tokens": 1}}}
    assert http.post(base + "/_fake/wecom/refuse-ip", json={"ip": "198.51.100.7"}).json() == {"ok": True}
    assert_wecom_error(user_get(http, base, token, "lisi"), 60020, ip="198.51.100.7")
    http.post(base + "/_fake/wecom/allow-ip")
    assert body(user_get(http, base, token, "lisi"))["errcode"] == 0
    http.post(base + "/_fake/wecom/revoke-tokens")
    assert_wecom_error(user_get(http, base, token, "lisi"), 40014)
    http.post(base + "/_fake/wecom/expire-tokens")
    people = http.get(base + "/_fake/wecom/people").json()
    assert people[0]["corpid"] == DEMO_CORPID and people[0]["agents"][0]["agentid"] == DEMO_AGENTID
    assert [m["userid"] for m in people[0]["members"]] == ["zhangsan", "lisi", "wangwu"]
    assert people[0]["non_members"][0]["key"] == "guest"
    assert DEMO_WECOM_SECRET not in json.dumps(people)


def test_reset_forgets_wecom_state_and_keeps_the_corps(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = token_of(http, base)
    code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan")
    fake_wechat.refuse_wecom_ip()
    fake_wechat.fail_next("wecom_user_get", -1)
    fake_wechat.reset()
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 0 and fake_wechat.requests == []
    assert_wecom_error(user_get(http, base, token, "zhangsan"), 40014)  # forgotten
    fresh = token_of(http, base)
    assert_wecom_error(userinfo(http, base, fresh, code), 40029)
    assert body(user_get(http, base, fresh, "zhangsan"))["errcode"] == 0  # no refusal, no fault
    assert DEMO_CORPID in fake_wechat.corps


def test_index_lists_wecom(http: requests.Session, base: str) -> None:
    page = http.get(base + "/").text
    for path in (WEB_LOGIN, PANEL_JS, GETTOKEN, GETUSERINFO, LEGACY_GETUSERINFO, GETUSERDETAIL, USER_GET):
        assert f"<code>{path}</code>" in page
    assert "POST: wecom_getuserdetail" in page and "GET: wecom_user_get" in page
    for fragment in ("/_fake/wecom/code", "/_fake/wecom/refuse-ip", DEMO_CORPID, "张三", "(not visible)"):
        assert fragment in page
    assert DEMO_WECOM_SECRET not in page


def test_the_fake_server_prints_the_wecom_credentials() -> None:
    with FakeWeChatServer() as server:
        printed, url = describe(server), server.url
    assert f'WECHAT_WECOM_API_BASE_URL = "{url}"' in printed
    assert f'corpid "{DEMO_CORPID}"' in printed and f'agentid {DEMO_AGENTID}, secret "{DEMO_WECOM_SECRET}"' in printed
    assert printed.splitlines()[-1].startswith(" * Test users:")


def test_rid_suffix_is_wechats_only(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    data = body(http.get(base + GETTOKEN))
    assert not re.search(RID, data["errmsg"]) and re.search(HINT, data["errmsg"])


# -- the panel in a real browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@dataclass
class Site:
    """A site on its own loopback port whose login page embeds the panel, as a site bundling @wecom/jssdk would."""

    fake_url: str
    url: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def callback(self) -> str:
        return self.url + "/wecom/callback"

    def login_page(self) -> str:
        params = {"login_type": "CorpApp", "appid": DEMO_CORPID, "agentid": str(DEMO_AGENTID), **self.params}
        return (
            '<!doctype html><html><head><meta charset="utf-8">'
            f'<script src="{self.fake_url}{PANEL_JS}"></script></head>'
            '<body><h1 id="site">Site login</h1><div id="ww_login"></div><pre id="events"></pre>'
            f"<script>var params = {json.dumps(params)}; params.redirect_uri = {json.dumps(self.callback)};"
            "function log(text) { document.getElementById('events').textContent += text + '\\n'; }"
            "window.panel = ww.createWWLoginPanel({el: '#ww_login', params: params,"
            " onCheckWeComLogin: function (r) { log('check:' + r.isWeComLogin); },"
            " onLoginSuccess: function (r) { log('code:' + r.code); },"
            " onLoginFail: function (e) { log('fail:' + JSON.stringify(e)); }});"
            "</script></body></html>"
        )

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        text = self.login_page() if request.path == "/login" else '<h1 id="callback">callback</h1>'
        return Response(text, content_type="text/html; charset=utf-8")(environ, start_response)


@pytest.fixture
def server() -> Iterator[FakeWeChatServer]:
    with FakeWeChatServer(FakeWeChat()) as running:
        yield running


@pytest.fixture
def site(server: FakeWeChatServer) -> Iterator[Site]:
    app = Site(server.url)
    with serving(app, "site") as port:
        app.url = f"http://127.0.0.1:{port}"
        yield app


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with local_page(browser) as opened:
        yield opened


def redeem(server: FakeWeChatServer, code: str) -> dict[str, Any]:
    with requests.Session() as session:
        return body(userinfo(session, server.url, token_of(session, server.url), code))


def test_panel_top_navigates_the_top_window(page: Page, site: Site, server: FakeWeChatServer) -> None:
    site.params = {"state": "top1"}  # redirect_type defaults to top
    page.goto(site.url + "/login")
    iframe = page.locator("#ww_login iframe")
    src = iframe.get_attribute("src") or ""
    assert src.startswith(f"{server.url}{WEB_LOGIN}?login_type=CorpApp&appid={DEMO_CORPID}&agentid={DEMO_AGENTID}")
    assert "&panel=1&redirect_type=top" in src
    page.locator("#events").filter(has_text="check:false").wait_for()
    frame = page.frame_locator("#ww_login iframe")
    outer, allow = iframe.bounding_box(), frame.locator("#allow").bounding_box()
    assert outer is not None and allow is not None and allow["y"] + allow["height"] <= outer["y"] + outer["height"]
    frame.locator("#user-lisi").check()
    frame.locator("#allow").click()
    page.wait_for_url(site.callback + "?*")
    query = query_of(page.url)
    assert query["state"] == "top1" and redeem(server, query["code"])["userid"] == "lisi"


def test_panel_callback_calls_on_login_success(page: Page, site: Site, server: FakeWeChatServer) -> None:
    site.params = {"state": "cb1", "redirect_type": "callback"}
    page.goto(site.url + "/login")
    frame = page.frame_locator("#ww_login iframe")
    frame.locator("#allow").click()
    events = page.locator("#events")
    events.filter(has_text="code:").wait_for()
    assert page.url == site.url + "/login"
    code = re.search(r"code:(\S+)", events.inner_text())
    assert code is not None and redeem(server, code.group(1))["userid"] == "zhangsan"
    page.evaluate("window.panel.unmount()")
    assert page.locator("#ww_login iframe").count() == 0


def test_panel_callback_cancel_calls_on_login_fail(page: Page, site: Site) -> None:
    site.params = {"state": "cb2", "redirect_type": "callback"}
    page.goto(site.url + "/login")
    page.frame_locator("#ww_login iframe").locator("#deny").click()
    page.locator("#events").filter(has_text="fail:").wait_for()
    assert 'fail:{"errMsg":"cancel"}' in page.locator("#events").inner_text()


def test_panel_self_redirects_inside_the_iframe(page: Page, site: Site, server: FakeWeChatServer) -> None:
    site.params = {"state": "in1", "redirect_type": "self", "lang": "en"}
    page.goto(site.url + "/login")
    frame = page.frame_locator("#ww_login iframe")
    assert "Scan with WeCom" in frame.locator("#hint").inner_text()
    frame.locator("#user-guest").check()
    frame.locator("#allow").click()
    child = page.frames[1]
    child.wait_for_url(site.callback + "?*")
    assert page.url == site.url + "/login"
    query = query_of(child.url)
    guest = server.fake.corps[DEMO_CORPID].non_members[0]
    assert query["state"] == "in1" and redeem(server, query["code"])["openid"] == guest.openid


def test_replace_keeps_a_member_usable(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    corp = fake_wechat.corps[DEMO_CORPID]
    corp.members[1] = replace(corp.members[1], position="架构师")
    assert body(user_get(http, base, token_of(http, base), "lisi"))["position"] == "架构师"
