"""Every WeChat login a real site needs, against the fake over real loopback HTTP.

Website QR login (the full-page redirect flow and the wxLogin.js iframe), mini program
``jscode2session``, unionid across apps, unbound apps and snapshot users.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Response

from flask_wechat import protocol
from flask_wechat.testing import FakeApp, FakeUser, FakeWeChat, FakeWeChatServer
from flask_wechat.testing.accounts import APP_KINDS, SNAPSHOT_NICKNAME
from flask_wechat.testing.fake import (
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
    ENDPOINT_PATHS,
    JSCODE2SESSION_PATH,
)
from flask_wechat.testing.wxlogin import SCRIPT_PATHS

from . import fake_fixtures
from .fake_fixtures import Clock
from .test_fake import CALLBACK, ConsentForm, assert_error, body, code_from, get

LINK_UNAVAILABLE = "该链接无法访问"
SCOPE_ERROR = "Scope 参数错误或没有 Scope 权限"
REDIRECT_ERROR = "redirect_uri 参数错误"
OPENID = re.compile(r"o[A-Za-z0-9_-]{27}")


# The shared fixtures, assigned rather than imported (see tests/fake_fixtures.py).
clock, fake_wechat, base, http = fake_fixtures.clock, fake_fixtures.fake_wechat, fake_fixtures.base, fake_fixtures.http


def qrconnect_url(base: str, pairs: list[tuple[str, str]]) -> str:
    return f"{base}{protocol.QRCONNECT_PATH}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)


def redirect_flow(base: str, appid: str = DEMO_OPEN_APPID, redirect_uri: str = CALLBACK, state: str = "qr1") -> str:
    """The documented full-page link, in WeChat's documented order."""
    pairs = [("appid", appid), ("redirect_uri", redirect_uri), ("response_type", "code")]
    return qrconnect_url(base, [*pairs, ("scope", "snsapi_login"), ("state", state)])


def embedded(base: str, self_redirect: str, redirect_uri: str = CALLBACK, state: str = "emb1", **extra: str) -> str:
    """The iframe URL wxLogin.js builds (redirect_uri pre-encoded by the caller, as the script wants)."""
    url = (
        f"{base}/connect/qrconnect?appid={DEMO_OPEN_APPID}&scope=snsapi_login"
        f"&redirect_uri={quote(redirect_uri, safe='')}&state={state}&login_type=jssdk&self_redirect={self_redirect}"
        "&styletype=&sizetype=&bgcolor=&rst="
    )
    return url + "".join(f"&{key}={value}" for key, value in extra.items())


def scan(http: requests.Session, base: str, url: str, user: str = "alice", action: str = "allow") -> requests.Response:
    """Open the QR page and "scan as" a test user from its developer panel."""
    page = http.get(url)
    assert page.status_code == 200
    form = ConsentForm(page.text)
    assert form.method == "post", page.text
    return http.post(base + form.action, data={**form.hidden, "user": user, "action": action}, allow_redirects=False)


def token_for(
    http: requests.Session, base: str, code: str, appid: str = DEMO_OPEN_APPID, secret: str = DEMO_OPEN_SECRET
) -> dict[str, Any]:
    return body(get(http, base, protocol.TOKEN_PATH, **protocol.token_query(appid, secret, code)))


def userinfo(http: requests.Session, base: str, token: dict[str, Any]) -> dict[str, Any]:
    return body(
        get(http, base, protocol.USERINFO_PATH, **protocol.userinfo_query(token["access_token"], token["openid"]))
    )


def session_for(
    http: requests.Session,
    base: str,
    code: str,
    appid: str = DEMO_MINIPROGRAM_APPID,
    secret: str = DEMO_MINIPROGRAM_SECRET,
) -> dict[str, Any]:
    query = {"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"}
    return body(get(http, base, JSCODE2SESSION_PATH, **query))


def oa_login(http: requests.Session, base: str, fake: FakeWeChat, user: str = "alice") -> dict[str, Any]:
    return token_for(http, base, fake.issue_code(DEMO_APPID, user), DEMO_APPID, DEMO_SECRET)


class Redirector(HTMLParser):
    """The top-navigation page: its script's URL literal and its fallback link."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[dict[str, str | None]] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        if tag == "a":
            self.links.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def top_target(page: requests.Response) -> str:
    """The URL the page sends the top window to; its link fallback must agree."""
    parsed = Redirector(page.text)
    (script,) = parsed.scripts
    match = re.fullmatch(r"window\.top\.location\.href = (\"[^\"]*\");", script)
    assert match, script
    url: str = json.loads(match.group(1))
    (link,) = parsed.links
    assert link["href"] == url and link["target"] == "_top" and link["id"] == "continue"
    return url


# -- defaults -----------------------------------------------------------------------------------


def test_one_fake_serves_every_kind_of_app() -> None:
    fake = FakeWeChat()
    appids = [DEMO_APPID, DEMO_OPEN_APPID, DEMO_MINIPROGRAM_APPID]
    assert all(re.fullmatch(r"wx[0-9a-f]{16}", appid) for appid in appids) and len(set(appids)) == 3
    assert [fake.apps[appid].kind for appid in appids] == list(APP_KINDS)
    assert all(fake.apps[appid].bound for appid in appids)
    assert len({DEMO_SECRET, DEMO_OPEN_SECRET, DEMO_MINIPROGRAM_SECRET}) == 3
    fake.apps[DEMO_OPEN_APPID].bound = False  # each fake edits its own copies
    assert FakeWeChat().apps[DEMO_OPEN_APPID].bound
    with pytest.raises(ValueError, match="kind"):
        FakeApp("wx0000000000000001", "s", kind="app")  # type: ignore[arg-type]


def test_index_lists_the_new_endpoints(http: requests.Session, base: str) -> None:
    page = http.get(base + "/").text
    for path in (protocol.QRCONNECT_PATH, *SCRIPT_PATHS, JSCODE2SESSION_PATH, "/_fake/js-code", "/_fake/snapshot-next"):
        assert f"<code>{path}</code>" in page
    assert DEMO_OPEN_APPID in page and "website" in page and "miniprogram" in page


# -- website QR login: the redirect flow -----------------------------------------------------------


def test_qrconnect_scan_page_then_code_then_token(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    page = http.get(redirect_flow(base))
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<svg" in page.text and "使用微信扫一扫登录" in page.text and "Demo Website" in page.text
    assert "<script" not in page.text and "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")
    form = ConsentForm(page.text)
    assert form.action == "/connect/qrconnect/confirm"
    assert form.hidden == {"appid": DEMO_OPEN_APPID, "redirect_uri": CALLBACK, "scope": "snsapi_login", "state": "qr1"}
    assert form.users == ["alice", "bob", "carol"] and form.checked == ["alice"]  # no snapshot users on a desktop
    assert form.buttons == [("allow", "action", "allow"), ("deny", "action", "deny")]

    answer = scan(http, base, redirect_flow(base), user="bob")
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[A-Za-z0-9]{32}&state=qr1", answer.headers["Location"])
    token = token_for(http, base, code_from(answer))
    assert list(token) == ["access_token", "expires_in", "refresh_token", "openid", "scope", "unionid"]
    assert token["scope"] == "snsapi_login" and token["unionid"] == fake_wechat.users["bob"].unionid
    assert (
        token["openid"] == fake_wechat.openid_for(DEMO_OPEN_APPID, "bob") != fake_wechat.openid_for(DEMO_APPID, "bob")
    )
    info = userinfo(http, base, token)
    assert info["nickname"] == "小明✨🚀" and info["unionid"] == token["unionid"] and info["openid"] == token["openid"]
    query = protocol.refresh_query(DEMO_OPEN_APPID, token["refresh_token"])
    assert body(get(http, base, protocol.REFRESH_PATH, **query))["scope"] == "snsapi_login"
    query = protocol.auth_query(token["access_token"], token["openid"])
    assert body(get(http, base, protocol.AUTH_PATH, **query)) == {"errcode": 0, "errmsg": "ok"}


def test_qrconnect_query_order_is_free_and_response_type_optional(http: requests.Session, base: str) -> None:
    pairs = [("scope", "snsapi_login"), ("state", "x"), ("redirect_uri", CALLBACK), ("appid", DEMO_OPEN_APPID)]
    assert "<form" in http.get(qrconnect_url(base, pairs)).text
    assert "<form" in http.get(qrconnect_url(base, [*pairs, ("response_type", "code"), ("lang", "en")])).text
    english = http.get(qrconnect_url(base, [*pairs, ("lang", "en")])).text
    assert "Scan with WeChat to log in" in english and '<html lang="en">' in english


def test_qrconnect_code_lives_ten_minutes_and_once(
    fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str
) -> None:
    fresh = code_from(scan(http, base, redirect_flow(base)))
    stale = fake_wechat.issue_code(DEMO_OPEN_APPID, "carol")
    clock.advance(protocol.QR_CODE_LIFETIME - 1)
    assert token_for(http, base, fresh)["scope"] == "snsapi_login"
    assert_error(token_for(http, base, fresh), 40163)
    clock.advance(1)
    assert_error(token_for(http, base, stale), 40029)


def test_qrconnect_state_and_existing_query_come_back_intact(http: requests.Session, base: str) -> None:
    uri = "https://app.example.com/cb?next=%2Fhome"
    answer = scan(http, base, redirect_flow(base, redirect_uri=uri, state="a b&c=d"))
    location = answer.headers["Location"]
    assert location.startswith(uri + "&code=") and location.endswith("&state=a%20b%26c%3Dd")
    assert dict(parse_qsl(urlsplit(location).query))["state"] == "a b&c=d"
    no_state = [("appid", DEMO_OPEN_APPID), ("redirect_uri", CALLBACK), ("scope", "snsapi_login")]
    assert re.fullmatch(
        re.escape(CALLBACK) + r"\?code=\w{32}", scan(http, base, qrconnect_url(base, no_state)).headers["Location"]
    )


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"appid": DEMO_APPID}, SCOPE_ERROR),  # an Official Account
        ({"appid": DEMO_MINIPROGRAM_APPID}, SCOPE_ERROR),
        ({"scope": "snsapi_userinfo"}, SCOPE_ERROR),
        ({"scope": ""}, SCOPE_ERROR),
        ({"appid": "wx0000000000000000"}, LINK_UNAVAILABLE),
        ({"appid": ""}, LINK_UNAVAILABLE),
        ({"response_type": "token"}, LINK_UNAVAILABLE),
        ({"redirect_uri": ""}, REDIRECT_ERROR),
        ({"redirect_uri": "/relative/cb"}, REDIRECT_ERROR),
        ({"redirect_uri": "javascript:alert(1)"}, REDIRECT_ERROR),
    ],
)
def test_qrconnect_error_pages(http: requests.Session, base: str, change: dict[str, str], text: str) -> None:
    pairs = dict([("appid", DEMO_OPEN_APPID), ("redirect_uri", CALLBACK), ("response_type", "code")])
    pairs |= {"scope": "snsapi_login", "state": "s", **change}
    page = http.get(qrconnect_url(base, list(pairs.items())))
    assert page.status_code == 200 and "<form" not in page.text
    assert f'<h1 id="error">{text}</h1>' in page.text


@pytest.mark.parametrize("redirect_uri", ["https://site.example.com:8443/cb", "https://other.example.com/cb"])
def test_qrconnect_domain_rule(fake_wechat: FakeWeChat, http: requests.Session, base: str, redirect_uri: str) -> None:
    fake_wechat.apps[DEMO_OPEN_APPID].domain = "site.example.com"
    assert REDIRECT_ERROR in http.get(redirect_flow(base, redirect_uri=redirect_uri)).text
    assert "<form" in http.get(redirect_flow(base, redirect_uri="https://site.example.com/any/path")).text


def test_qrconnect_confirm_revalidates_and_refuses_snapshot_users(http: requests.Session, base: str) -> None:
    confirm = base + "/connect/qrconnect/confirm"
    fields = {
        "appid": DEMO_APPID,
        "redirect_uri": CALLBACK,
        "scope": "snsapi_login",
        "user": "alice",
        "action": "allow",
    }
    assert SCOPE_ERROR in http.post(confirm, data=fields, allow_redirects=False).text
    fields["appid"] = DEMO_OPEN_APPID
    assert http.post(confirm, data={**fields, "user": "dave"}, allow_redirects=False).status_code == 400
    assert http.post(confirm, data={**fields, "user": "nobody"}, allow_redirects=False).status_code == 400
    assert http.post(confirm, data={**fields, "action": "maybe"}, allow_redirects=False).status_code == 400
    assert http.get(confirm).status_code == 405 and http.post(base + "/connect/qrconnect").status_code == 405


def test_qrconnect_deny(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    answer = scan(http, base, redirect_flow(base), action="deny")
    assert answer.status_code == 200 and "你已拒绝授权" in answer.text and "Location" not in answer.headers
    fake_wechat.deny_mode = "redirect"
    answer = scan(http, base, redirect_flow(base, state="D1"), action="deny")
    assert answer.status_code == 302 and answer.headers["Location"] == CALLBACK + "?state=D1"


# -- wrong kinds of app on every endpoint ---------------------------------------------------------


@pytest.mark.parametrize(("appid", "errcode"), [(DEMO_OPEN_APPID, 10016), (DEMO_MINIPROGRAM_APPID, 10005)])
def test_oa_authorize_refuses_other_kinds(http: requests.Session, base: str, appid: str, errcode: int) -> None:
    page = http.get(protocol.build_authorize_url(base, appid, CALLBACK, protocol.SCOPE_USERINFO, "s"))
    assert page.status_code == 200 and "<form" not in page.text
    assert f'<span id="errcode">{errcode}</span>' in page.text
    if errcode == 10016:
        assert "不支持微信开放平台的Appid，请使用公众号Appid" in page.text


def test_codes_do_not_cross_app_kinds(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    js_code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    oa_code = fake_wechat.issue_code(DEMO_APPID, "alice")
    qr_code = fake_wechat.issue_code(DEMO_OPEN_APPID, "alice")
    # A wx.login() code is no OAuth code, and the OAuth codes are no mini program's.
    assert_error(token_for(http, base, js_code, DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET), 40029)
    assert_error(session_for(http, base, oa_code), 40029)
    assert_error(token_for(http, base, qr_code, DEMO_APPID, DEMO_SECRET), 40029)
    assert_error(token_for(http, base, oa_code, DEMO_OPEN_APPID, DEMO_OPEN_SECRET), 40029)
    # jscode2session refuses the appid of an Official Account or a website app outright.
    assert_error(session_for(http, base, js_code, DEMO_APPID, DEMO_SECRET), 40013)
    assert_error(session_for(http, base, js_code, DEMO_OPEN_APPID, DEMO_OPEN_SECRET), 40013)
    assert "session_key" in session_for(http, base, js_code)  # none of the above used the code up


def test_issue_helpers_check_the_app_kind(fake_wechat: FakeWeChat) -> None:
    assert re.fullmatch(r"\w{32}", fake_wechat.issue_code(DEMO_OPEN_APPID, "alice"))  # snsapi_login by default
    with pytest.raises(ValueError, match="snsapi_login"):
        fake_wechat.issue_code(DEMO_OPEN_APPID, "alice", protocol.SCOPE_USERINFO)
    with pytest.raises(ValueError, match="snsapi_base"):
        fake_wechat.issue_code(DEMO_APPID, "alice", protocol.SCOPE_LOGIN)
    with pytest.raises(ValueError, match="issue_js_code"):
        fake_wechat.issue_code(DEMO_MINIPROGRAM_APPID, "alice")
    with pytest.raises(ValueError, match="issue_code"):
        fake_wechat.issue_js_code(DEMO_APPID, "alice")
    with pytest.raises(ValueError, match="snapshot"):
        fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "dave")
    with pytest.raises(ValueError, match="snapshot"):
        fake_wechat.issue_code(DEMO_OPEN_APPID, "alice", snapshot=True)
    with pytest.raises(ValueError, match="unknown"):
        fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "nobody")


# -- unionid across apps, unbound apps ------------------------------------------------------------


def test_one_person_one_unionid_across_bound_apps(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    oa = oa_login(http, base, fake_wechat)
    website = token_for(http, base, code_from(scan(http, base, redirect_flow(base))))
    mini = session_for(http, base, fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice"))
    unionid = fake_wechat.users["alice"].unionid
    assert oa["unionid"] == website["unionid"] == mini["unionid"] == unionid
    assert userinfo(http, base, oa)["unionid"] == userinfo(http, base, website)["unionid"] == unionid
    openids = {oa["openid"], website["openid"], mini["openid"]}
    assert len(openids) == 3 and all(OPENID.fullmatch(openid) for openid in openids)
    for appid in (DEMO_APPID, DEMO_OPEN_APPID, DEMO_MINIPROGRAM_APPID):
        assert fake_wechat.unionid_for(appid, "alice") == unionid
    bob = session_for(http, base, fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob"))
    assert bob["unionid"] != unionid and bob["openid"] != mini["openid"]


def test_unbound_apps_never_send_unionid(clock: Clock, http: requests.Session) -> None:
    apps = [
        FakeApp("wx1000000000000001", "oa", bound=False),
        FakeApp("wx1000000000000002", "web", bound=False, kind="website"),
        FakeApp("wx1000000000000003", "mini", bound=False, kind="miniprogram"),
    ]
    fake = FakeWeChat(apps, clock=clock)
    with FakeWeChatServer(fake) as server:
        base = server.url
        oa = token_for(http, base, fake.issue_code(apps[0].appid, "alice"), apps[0].appid, "oa")
        web_code = code_from(scan(http, base, redirect_flow(base, appid=apps[1].appid)))
        web = token_for(http, base, web_code, apps[1].appid, "web")
        mini = session_for(http, base, fake.issue_js_code(apps[2].appid, "alice"), apps[2].appid, "mini")
        fake.snapshot_next()
        snap = token_for(http, base, fake.issue_code(apps[0].appid, "alice"), apps[0].appid, "oa")
        refreshed = body(
            get(http, base, protocol.REFRESH_PATH, **protocol.refresh_query(apps[1].appid, web["refresh_token"]))
        )
        answers = [oa, web, mini, snap, refreshed, userinfo(http, base, oa), userinfo(http, base, web)]
        answers.append(userinfo(http, base, snap))
        assert all("unionid" not in answer and "errcode" not in answer for answer in answers), answers
        assert snap["is_snapshotuser"] == 1
    assert all(fake.unionid_for(app.appid, "alice") is None for app in apps)


# -- website QR login: the wxLogin.js iframe ------------------------------------------------------


def test_embedded_page_is_iframe_sized_and_keeps_its_mode(http: requests.Session, base: str) -> None:
    page = http.get(embedded(base, "true", style="white", href="data:text/css;base64,Ym9keXt9"))
    assert page.status_code == 200 and 'class="scan embedded white"' in page.text
    assert '<link rel="stylesheet" href="data:text/css;base64,Ym9keXt9">' in page.text
    form = ConsentForm(page.text)
    assert form.hidden == {
        "appid": DEMO_OPEN_APPID,
        "redirect_uri": CALLBACK,
        "scope": "snsapi_login",
        "state": "emb1",
        "login_type": "jssdk",
        "self_redirect": "true",
    }
    lite = http.get(embedded(base, "false", href="data:text/css;base64,Ym9keXt9", stylelite="1", fast_login="0"))
    assert "<link" not in lite.text  # the new UI (stylelite=1) ignores href, like WeChat's


def test_embedded_self_redirect_true_redirects_inside_the_iframe(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    answer = scan(http, base, embedded(base, "true"), user="carol")
    assert answer.status_code == 302
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=\w{32}&state=emb1", answer.headers["Location"])
    assert token_for(http, base, code_from(answer))["openid"] == fake_wechat.openid_for(DEMO_OPEN_APPID, "carol")


@pytest.mark.parametrize("self_redirect", ["false", "default", ""])
def test_embedded_otherwise_navigates_the_top_window(http: requests.Session, base: str, self_redirect: str) -> None:
    answer = scan(http, base, embedded(base, self_redirect))
    assert answer.status_code == 200 and "Location" not in answer.headers
    target = top_target(answer)
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=\w{32}&state=emb1", target)
    assert token_for(http, base, dict(parse_qsl(urlsplit(target).query))["code"])["scope"] == "snsapi_login"


def test_top_navigation_escapes_the_url_for_js_and_html(http: requests.Session, base: str) -> None:
    nasty = "https://app.example.com/cb?q=</script><script>alert('x')</script>&u=\"&amp;é"
    answer = scan(http, base, embedded(base, "false", redirect_uri=nasty, state="S"))
    assert answer.text.count("<script") == 1 and answer.text.count("</script") == 1
    assert "<script>alert" not in answer.text and "</script><script>" not in answer.text
    target = top_target(answer)
    query = dict(parse_qsl(urlsplit(target).query))
    assert query["q"] == "</script><script>alert('x')</script>" and query["u"] == '"' and query["state"] == "S"
    assert "\\u0026" in answer.text and "&amp;" in answer.text  # & escaped for JS and for HTML


def test_embedded_deny(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    assert "你已拒绝授权" in scan(http, base, embedded(base, "false"), action="deny").text
    fake_wechat.deny_mode = "redirect"
    assert top_target(scan(http, base, embedded(base, "false"), action="deny")) == CALLBACK + "?state=emb1"
    assert scan(http, base, embedded(base, "true"), action="deny").headers["Location"] == CALLBACK + "?state=emb1"


# -- wxLogin.js -----------------------------------------------------------------------------------

DOCUMENTED_ORDER = [
    "appid",
    "scope",
    "redirect_uri",
    "state",
    "login_type=jssdk",
    "self_redirect",
    "styletype",
    "sizetype",
    "bgcolor",
    "rst",
    "style",
    "href",
    "lang=en",
    "stylelite=1",
    "fast_login=0",
]


@pytest.mark.parametrize("path", SCRIPT_PATHS)
def test_wxlogin_js_builds_the_documented_iframe(http: requests.Session, base: str, path: str) -> None:
    response = http.get(base + path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    script = response.text
    assert "window.WxLogin = function (e)" in script
    position = script.index("/connect/qrconnect")
    for name in DOCUMENTED_ORDER:  # each parameter after the one before it
        position = script.index(f"{'?' if name == 'appid' else '&'}{name}", position)
    assert "response_type" not in script
    assert '"&redirect_uri=" + e.redirect_uri +' in script  # verbatim: callers pass it already encoded
    for attribute in ('frameBorder = "0"', 'allowTransparency = "true"', 'scrolling = "no"'):
        assert f"i.{attribute}" in script
    assert 'i.width = "300px"' in script and 'i.height = "400px"' in script
    assert f'origin = "{base}"' in script and 'base = origin + ""' in script


def test_wxlogin_js_under_a_mount_prefix() -> None:
    fake = FakeWeChat()
    app = DispatcherMiddleware(Response("site", 404), {"/wechat-fake": fake})
    client = Client(app)
    script = client.get("/wechat-fake/js/wxLogin.js", base_url="https://site.example").get_data(as_text=True)
    assert 'origin = "https://site.example"' in script and 'base = origin + "/wechat-fake"' in script
    page = client.get(
        f"/wechat-fake/connect/qrconnect?appid={DEMO_OPEN_APPID}&scope=snsapi_login&redirect_uri={quote(CALLBACK)}"
        "&state=s&login_type=jssdk&self_redirect=true"
    )
    assert ConsentForm(page.get_data(as_text=True)).action == "/wechat-fake/connect/qrconnect/confirm"


NODE_HARNESS = """
const src = process.argv[1];
const container = {innerHTML: "old", children: [], appendChild(child) { this.children.push(child); }};
global.window = {};
global.document = {
  currentScript: {src: SCRIPT_SRC},
  createElement(tag) { return {tag}; },
  getElementById(id) { return id === "login_container" ? container : null; },
};
eval(src);
new window.WxLogin(OPTIONS);
console.log(JSON.stringify({html: container.innerHTML, frames: container.children}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize(
    ("options", "tail"),
    [
        ({"self_redirect": True}, "&self_redirect=true&styletype=&sizetype=&bgcolor=&rst="),
        ({"self_redirect": False, "lang": "en"}, "&self_redirect=false&styletype=&sizetype=&bgcolor=&rst=&lang=en"),
        (
            {"style": "white", "href": "data:text/css;base64,eA==", "stylelite": 1, "fast_login": 0},
            "&self_redirect=default&styletype=&sizetype=&bgcolor=&rst="
            "&style=white&href=data:text/css;base64,eA==&stylelite=1&fast_login=0",
        ),
    ],
)
def test_wxlogin_js_runs(http: requests.Session, base: str, options: dict[str, Any], tail: str) -> None:
    script = http.get(base + SCRIPT_PATHS[0]).text
    encoded = quote(CALLBACK, safe="")
    options = {"id": "login_container", "appid": DEMO_OPEN_APPID, "scope": "snsapi_login", **options}
    options |= {"redirect_uri": encoded, "state": "js1"}
    harness = NODE_HARNESS.replace("SCRIPT_SRC", json.dumps(base + "/prefixless/wxLogin.js"))
    harness = harness.replace("OPTIONS", json.dumps(options))
    node = shutil.which("node") or "node"
    out = subprocess.run([node, "-e", harness, script], check=True, capture_output=True, text=True, timeout=30)
    result = json.loads(out.stdout)
    (frame,) = result["frames"]
    assert result["html"] == ""
    assert frame["src"] == (
        f"{base}/connect/qrconnect?appid={DEMO_OPEN_APPID}&scope=snsapi_login&redirect_uri={encoded}&state=js1"
        f"&login_type=jssdk{tail}"
    )
    assert {key: frame[key] for key in ("tag", "frameBorder", "allowTransparency", "scrolling", "width", "height")} == {
        "tag": "iframe",
        "frameBorder": "0",
        "allowTransparency": "true",
        "scrolling": "no",
        "width": "300px",
        "height": "400px",
    }
    # And the fake accepts what its script built.
    assert "<form" in http.get(frame["src"]).text


# -- mini program: jscode2session -----------------------------------------------------------------


def test_jscode2session_success(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob")
    query = protocol_query(code)
    response = get(http, base, JSCODE2SESSION_PATH, **query)
    assert response.headers["Content-Type"] == "text/plain"
    data = body(response)
    assert list(data) == ["session_key", "openid", "unionid"]
    assert re.fullmatch(r"[A-Za-z0-9+/]{22}==", data["session_key"])
    assert len(base64.b64decode(data["session_key"])) == 16
    assert data["openid"] == fake_wechat.openid_for(DEMO_MINIPROGRAM_APPID, "bob")
    assert data["unionid"] == fake_wechat.users["bob"].unionid
    assert_error(body(get(http, base, JSCODE2SESSION_PATH, **query)), 40163)
    again = session_for(http, base, fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob"))
    assert again["openid"] == data["openid"] and again["session_key"] != data["session_key"]
    (first, *_) = fake_wechat.calls("jscode2session")
    assert first.endpoint == "jscode2session" and first.params["js_code"] == code


def protocol_query(code: str, **change: str) -> dict[str, str]:
    query = {
        "appid": DEMO_MINIPROGRAM_APPID,
        "secret": DEMO_MINIPROGRAM_SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    return {key: value for key, value in {**query, **change}.items() if value is not None}


@pytest.mark.parametrize(
    ("change", "errcode"),
    [
        ({"js_code": ""}, 41008),
        ({"appid": "wx0000000000000000"}, 40013),
        ({"appid": ""}, 41002),
        ({"secret": "wrong"}, 40125),
        ({"secret": ""}, 41004),
        ({"grant_type": "client_credential"}, 40002),
        ({"js_code": "0" * 32}, 40029),
    ],
)
def test_jscode2session_errors(
    fake_wechat: FakeWeChat, http: requests.Session, base: str, change: dict[str, str], errcode: int
) -> None:
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    assert_error(body(get(http, base, JSCODE2SESSION_PATH, **protocol_query(code, **change))), errcode)
    assert "session_key" in session_for(http, base, code)  # errors before the code leave it usable


def test_jscode2session_code_expiry_and_other_app(
    fake_wechat: FakeWeChat, clock: Clock, http: requests.Session, base: str
) -> None:
    other = FakeApp("wx2000000000000002", "other-mini", kind="miniprogram")
    fake_wechat.add_app(other)
    foreign = fake_wechat.issue_js_code(other.appid, "alice")
    assert_error(session_for(http, base, foreign), 40029)
    fresh, stale = (fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice") for _ in range(2))
    clock.advance(299)
    assert "openid" in session_for(http, base, fresh)
    clock.advance(1)
    assert_error(session_for(http, base, stale), 40029)
    assert session_for(http, base, fake_wechat.issue_js_code(other.appid, "alice"), other.appid, "other-mini")["openid"]


def test_jscode2session_blocked_user_is_40226(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.users["carol"].blocked = True
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "carol")
    data = session_for(http, base, code)
    assert_error(data, 40226)
    assert data["errmsg"].startswith("code blocked, rid: ")
    fake_wechat.add_user(FakeUser("mallory", "Mallory", "oMalloryMalloryMalloryMallory", blocked=True))
    assert_error(session_for(http, base, fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "mallory")), 40226)
    fake_wechat.users["carol"].blocked = False
    assert "session_key" in session_for(http, base, code)  # the refusal did not use the code up


def test_jscode2session_injected_faults(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    fake_wechat.fail_next("jscode2session", 45011)
    fake_wechat.fail_next("jscode2session", -1)
    fake_wechat.break_next("jscode2session", b"<html>502</html>", status=502)
    limited = session_for(http, base, code)
    assert_error(limited, 45011)
    assert limited["errmsg"].startswith("api minute-quota reach limit, must slower, retry next minute, rid: ")
    assert_error(session_for(http, base, code), -1)
    assert http.get(base + JSCODE2SESSION_PATH, params=protocol_query(code)).status_code == 502
    assert "session_key" in session_for(http, base, code)
    assert [call.endpoint for call in fake_wechat.calls("jscode2session")] == ["jscode2session"] * 4
    response = http.post(base + JSCODE2SESSION_PATH, data=protocol_query(code))
    assert_error(body(response), 43001)
    assert ENDPOINT_PATHS["jscode2session"] == JSCODE2SESSION_PATH


def test_js_code_control_endpoint(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    answer = http.post(base + "/_fake/js-code", json={"appid": DEMO_MINIPROGRAM_APPID, "user": "bob"})
    assert answer.status_code == 200
    assert session_for(http, base, answer.json()["code"])["openid"] == fake_wechat.openid_for(
        DEMO_MINIPROGRAM_APPID, "bob"
    )
    assert http.post(base + "/_fake/js-code", json={"appid": DEMO_APPID, "user": "bob"}).status_code == 400
    web_code = http.post(base + "/_fake/code", json={"appid": DEMO_OPEN_APPID, "user": "bob"}).json()["code"]
    assert token_for(http, base, web_code)["scope"] == "snsapi_login"
    users = http.get(base + "/_fake/users").json()
    assert users[1]["blocked"] is False and set(users[1]["openids"]) == set(fake_wechat.apps)


# -- snapshot users -------------------------------------------------------------------------------


def test_dave_is_still_a_snapshot_user(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = oa_login(http, base, fake_wechat, "dave")
    assert token["is_snapshotuser"] == 1 and token["openid"] == fake_wechat.openid_for(DEMO_APPID, "dave")
    real = {fake_wechat.openid_for(DEMO_APPID, key) for key in ("alice", "bob", "carol")}
    assert token["openid"] not in real
    assert token["unionid"] not in {user.unionid for user in fake_wechat.users.values() if not user.snapshot}


def test_snapshot_next_makes_the_next_consents_virtual(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    fake_wechat.snapshot_next()
    url = protocol.build_authorize_url(base, DEMO_APPID, CALLBACK, protocol.SCOPE_USERINFO, "snap1")
    page = http.get(url)
    form = ConsentForm(page.text)
    answer = http.post(
        base + form.action, data={**form.hidden, "user": "alice", "action": "allow"}, allow_redirects=False
    )
    token = token_for(http, base, code_from(answer), DEMO_APPID, DEMO_SECRET)
    assert list(token)[-2:] == ["unionid", "is_snapshotuser"] and token["is_snapshotuser"] == 1
    real_openids = {fake_wechat.openid_for(DEMO_APPID, user) for user in fake_wechat.users}
    real_unionids = {user.unionid for user in fake_wechat.users.values()}
    assert OPENID.fullmatch(token["openid"]) and token["openid"] not in real_openids
    assert token["unionid"] not in real_unionids
    assert token["openid"] == fake_wechat.openid_for(DEMO_APPID, "alice", snapshot=True)
    assert token["unionid"] == fake_wechat.unionid_for(DEMO_APPID, "alice", snapshot=True)
    info = userinfo(http, base, token)
    assert info["nickname"] == SNAPSHOT_NICKNAME and info["nickname"] != fake_wechat.users["alice"].nickname
    assert info["openid"] == token["openid"] and info["unionid"] == token["unionid"]
    assert protocol.Token.from_response(token).is_snapshot_user
    # Only the next consent: the one after is alice herself again.
    after = oa_login(http, base, fake_wechat)
    assert "is_snapshotuser" not in after and after["openid"] == fake_wechat.openid_for(DEMO_APPID, "alice")


def test_snapshot_next_counts_and_scopes(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    assert http.post(base + "/_fake/snapshot-next", json={"times": 2}).json() == {"ok": True}
    # Silent snsapi_base logins, website and mini program logins never see a snapshot page.
    base_scope = token_for(
        http, base, fake_wechat.issue_code(DEMO_APPID, "bob", protocol.SCOPE_BASE), DEMO_APPID, DEMO_SECRET
    )
    website = token_for(http, base, fake_wechat.issue_code(DEMO_OPEN_APPID, "bob"))
    mini = session_for(http, base, fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob"))
    assert all("is_snapshotuser" not in answer for answer in (base_scope, website, mini))
    first, second, third = (oa_login(http, base, fake_wechat, "bob") for _ in range(3))
    assert first["is_snapshotuser"] == second["is_snapshotuser"] == 1 and "is_snapshotuser" not in third
    fake_wechat.snapshot_next()
    fake_wechat.reset()
    assert "is_snapshotuser" not in oa_login(http, base, fake_wechat, "bob")
    assert (
        token_for(http, base, fake_wechat.issue_code(DEMO_APPID, "bob", snapshot=True), DEMO_APPID, DEMO_SECRET)[
            "is_snapshotuser"
        ]
        == 1
    )
    with pytest.raises(ValueError, match="times"):
        fake_wechat.snapshot_next(0)
    assert http.post(base + "/_fake/snapshot-next", json={"times": "x"}).status_code == 400
