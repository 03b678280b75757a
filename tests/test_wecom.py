"""WeCom (企业微信) login, for real: the fake WeCom on loopback plays the client, the web login page and qyapi.

Each test is a browser (a Flask test client with a User-Agent) and the person on WeCom's side
(``requests`` against the fake's pages, submitting their forms as they are served). The app
is wired as a site wires it: ``WECHAT_WECOM_*`` keys naming the fake's address, next to
WeChat's Official Account and website QR login, so the choice between them is tested too.
The demo app (``examples/app.py``) is driven the same way where the issue names it.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import pytest
import requests
from flask import Flask, render_template_string, request
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from examples.app import User as DemoUser
from examples.app import WeChatAccount as DemoAccount
from examples.app import create_app
from examples.app import db as demo_db
from flask_wechat import errors, wecom
from flask_wechat.accounts import Identity
from flask_wechat.cli import wechat_cli
from flask_wechat.config import DEFAULTS, load_settings
from flask_wechat.crypto import TokenCipher
from flask_wechat.testing import (
    DEMO_AGENTID,
    DEMO_CORPID,
    DEMO_WECOM_SECRET,
    WECOM_DESKTOP_USER_AGENT,
    WECOM_USER_AGENT,
    FakeWeChat,
    FakeWeChatServer,
)
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_OPEN_APPID, DEMO_OPEN_SECRET, DEMO_SECRET
from flask_wechat.testing.wecom import CODE_LIFETIME

from .apps import User, WeChatAccount, db, make_app
from .conftest import login

WECHAT_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile MicroMessenger/8.0.50.2701 NetType/WIFI"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
IN_CLIENT_CALLBACK = "http://localhost/wechat/wecom/callback"
WEB_CALLBACK = "http://localhost/wechat/wecom/web/callback"
#: A Fernet key made up for these tests (32 bytes, URL-safe base64).
TOKEN_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
#: WeChat's two apps beside the corp: a desktop browser could use the QR login or WeCom's.
WECHAT_QR = {"WECHAT_OPEN_APPID": DEMO_OPEN_APPID, "WECHAT_OPEN_SECRET": DEMO_OPEN_SECRET}


def wecom_keys(base_url: str) -> dict[str, Any]:
    """The corp's keys, with WeCom's hosts replaced by the fake at ``base_url``."""
    return {
        "WECHAT_WECOM_CORPID": DEMO_CORPID,
        "WECHAT_WECOM_AGENTID": DEMO_AGENTID,
        "WECHAT_WECOM_SECRET": DEMO_WECOM_SECRET,
        "WECHAT_WECOM_LOGIN_BASE_URL": base_url,
        "WECHAT_WECOM_API_BASE_URL": base_url,
    }


@pytest.fixture
def build(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Apps from tests/apps.py with the Official Account, the website QR login and WeCom, each on its own SQLite."""
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        database = f"sqlite:///{tmp_path / f'app{len(made)}.db'}"
        settings = {**WECHAT_QR, **wecom_keys(fake_wechat_server.url), "WECHAT_CLOCK": fake_wechat.now, **config}
        app = make_app(fake_wechat_server.url, database, **settings)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(build: Callable[..., Flask]) -> Flask:
    return build()


@pytest.fixture
def demo(fake_wechat_server: FakeWeChatServer, tmp_path: Path) -> Iterator[Flask]:
    """``examples/app.py`` configured with every key (real-looking apps, not its in-app fake), all on the fake."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}",
            "WECHAT_FAKE": False,
            "WECHAT_APPID": DEMO_APPID,
            "WECHAT_SECRET": DEMO_SECRET,
            **WECHAT_QR,
            "WECHAT_OPEN_BASE_URL": fake_wechat_server.url,
            "WECHAT_API_BASE_URL": fake_wechat_server.url,
            **wecom_keys(fake_wechat_server.url),
        }
    )
    yield app
    with app.app_context():
        demo_db.session.remove()
        demo_db.engine.dispose()


# -- the browser, and the person on WeCom's side --------------------------------------------------


def browser(app: Flask, user_agent: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def phone(app: Flask) -> FlaskClient:
    """A phone's WeCom client."""
    return browser(app, WECOM_USER_AGENT)


def desktop(app: Flask) -> FlaskClient:
    return browser(app, DESKTOP_UA)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def state_of(url: str) -> str:
    return query_of(url)["state"]


def start(client: FlaskClient, url: str = "/wechat/login?next=/profile") -> str:
    """Start a login; where the app sends the browser."""
    response = client.get(url)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.location


_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def submit(session: requests.Session, page: requests.Response, **choices: str) -> requests.Response:
    """Submit the page's form as served: its hidden fields, plus what the person chose."""
    action = _FORM.search(page.text)
    assert action is not None, page.text
    fields = {unescape(name): unescape(value) for name, value in _HIDDEN.findall(page.text)}
    url = urljoin(page.url, unescape(action.group(1)))
    return session.post(url, data={**fields, **choices}, allow_redirects=False, timeout=5)


def in_wecom(authorize_url: str, who: str) -> str:
    """Be ``who`` in the WeCom client: open the authorize link, pick (or consent as) them; the callback path."""
    with requests.Session() as client:
        client.headers["User-Agent"] = WECOM_USER_AGENT
        page = client.get(authorize_url.split("#", 1)[0], timeout=5)
        assert page.status_code == 200, page.text
        consent = 'id="consent"' in page.text
        answer = submit(client, page, user=who, **({"action": "allow"} if consent else {}))
    assert answer.status_code == 302, answer.text
    return path_of(answer.headers["Location"])


def scan(login_url: str, who: str, action: str = "allow") -> str:
    """Be ``who`` scanning the web login page's QR code with WeCom and confirming; the callback path."""
    with requests.Session() as client:
        page = client.get(login_url, timeout=5)
        assert page.status_code == 200 and 'id="scan"' in page.text, page.text
        answer = submit(client, page, user=who, action=action)
    assert answer.status_code == 302, answer.text
    return path_of(answer.headers["Location"])


def wecom_login(client: FlaskClient, who: str, next_url: str = "/profile") -> TestResponse:
    """A whole WeCom login of ``client`` as ``who``: in the client or on the web login page, as the app chooses."""
    url = start(client, f"/wechat/login?flow=wecom&next={quote(next_url)}")
    callback = scan(url, who) if urlsplit(url).path == wecom.WEB_LOGIN_PATH else in_wecom(url, who)
    return client.get(callback)


def logged_in_as(client: FlaskClient) -> str | None:
    """The openid (a member's userid) the browser is logged in as, or None."""
    response = client.get("/profile")
    if response.status_code != 200:
        return None
    return response.get_data(as_text=True).split("openid=")[1].split()[0]


def user_of(client: FlaskClient) -> str:
    page = client.get("/profile")
    assert page.status_code == 200, page.status_code
    found = re.search(r"user=(\d+)", page.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def error_of(response: TestResponse) -> str | None:
    found = re.search(r'data-error="(\w+)"', response.get_data(as_text=True))
    return found.group(1) if found else None


def rows(app: Flask) -> tuple[int, int]:
    with app.app_context():
        users = db.session.execute(select(func.count()).select_from(User)).scalar_one()
        accounts = db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one()
        db.session.remove()
    return users, accounts


def member_account(app: Flask, userid: str) -> Any:
    """The stored account of a member (or admitted non-member), detached, or None."""
    with app.app_context():
        query = select(WeChatAccount).filter_by(appid=DEMO_CORPID, openid=userid)
        account = db.session.execute(query).unique().scalar_one_or_none()
        if account is not None:
            db.session.expunge(account)
        db.session.remove()
    return account


def calls(fake: FakeWeChat, endpoint: str) -> int:
    return len(fake.calls(endpoint))


def assert_discreet(text: str, fake: FakeWeChat) -> None:
    """Neither the app's Secret nor any corp token WeCom handed out shows in ``text`` (a page, the logs)."""
    assert DEMO_WECOM_SECRET not in text
    tokens = {call.params.get("access_token") for call in fake.requests} - {None, ""}
    assert tokens, "no WeCom call was made with a token"
    for token in tokens:
        assert token not in text


def fake_member(fake: FakeWeChat, userid: str) -> Any:
    member = fake.corps[DEMO_CORPID].member(userid)
    assert member is not None
    return member


# -- inside the WeCom client --------------------------------------------------------------------


def test_a_member_inside_wecom_lands_on_the_profile_with_one_getuserinfo_call(
    demo: Flask, fake_wechat: FakeWeChat
) -> None:
    client = phone(demo)
    authorize = start(client, "/profile")

    assert authorize.endswith("#wechat_redirect")
    assert urlsplit(authorize).path == "/connect/oauth2/authorize"
    query = query_of(authorize.split("#", 1)[0])
    assert [key for key, _ in parse_qsl(urlsplit(authorize.split("#", 1)[0]).query)] == [
        "appid",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "agentid",
    ]
    assert query["appid"] == DEMO_CORPID and query["agentid"] == str(DEMO_AGENTID)
    assert query["scope"] == "snsapi_base" and query["redirect_uri"] == IN_CLIENT_CALLBACK
    landing = client.get(in_wecom(authorize, "zhangsan"))
    assert landing.status_code == 302 and landing.location == "/profile"

    profile = client.get("/profile").get_data(as_text=True)
    assert re.search(r'id="openid"[^>]*>zhangsan<', profile)
    assert re.search(r'id="nickname"[^>]*>张三<', profile)
    assert calls(fake_wechat, "wecom_getuserinfo") == 1
    assert calls(fake_wechat, "wecom_gettoken") == 1
    assert calls(fake_wechat, "access_token") == 0  # WeChat's own login was never involved
    with demo.app_context():
        account = demo_db.session.execute(select(DemoAccount)).unique().scalar_one()
        assert (account.appid, account.openid) == (DEMO_CORPID, "zhangsan")
        demo_db.session.remove()


def test_members_share_one_corp_token(app: Flask, fake_wechat: FakeWeChat) -> None:
    for who in ("zhangsan", "lisi", "zhangsan"):
        client = phone(app)
        assert wecom_login(client, who).status_code == 302
        assert logged_in_as(client) == who
    assert calls(fake_wechat, "wecom_gettoken") == 1
    assert calls(fake_wechat, "wecom_getuserinfo") == 3
    assert rows(app) == (2, 2)


def test_the_wecom_desktop_clients_browser_logs_in_inside_the_client(app: Flask) -> None:
    client = browser(app, WECOM_DESKTOP_USER_AGENT)
    authorize = start(client)
    assert query_of(authorize.split("#", 1)[0])["appid"] == DEMO_CORPID
    client.get(in_wecom(authorize, "lisi"))
    assert logged_in_as(client) == "lisi"


# -- on a desktop: the web login page, the chooser ----------------------------------------------


def test_a_desktop_browser_logs_in_on_wecoms_web_login_page(demo: Flask, fake_wechat_server: FakeWeChatServer) -> None:
    client = desktop(demo)
    url = start(client, "/wechat/login?flow=wecom&next=/profile")

    assert url.startswith(f"{fake_wechat_server.url}/wwlogin/sso/login?")
    assert [key for key, _ in parse_qsl(urlsplit(url).query)] == [
        "login_type",
        "appid",
        "agentid",
        "redirect_uri",
        "state",
        "lang",
    ]
    query = query_of(url)
    assert query["login_type"] == "CorpApp" and query["appid"] == DEMO_CORPID
    assert query["agentid"] == str(DEMO_AGENTID) and query["redirect_uri"] == WEB_CALLBACK
    assert re.fullmatch(r"[A-Za-z0-9]{16,128}", query["state"])
    landing = client.get(scan(url, "lisi"))
    assert landing.status_code == 302 and landing.location == "/profile"
    profile = client.get("/profile").get_data(as_text=True)
    assert re.search(r'id="openid"[^>]*>lisi<', profile)
    assert re.search(r'id="nickname"[^>]*>李四<', profile)


def test_a_desktop_that_could_use_wechat_qr_or_wecom_is_offered_the_choice(app: Flask) -> None:
    client = desktop(app)
    for path in ("/wechat/login?next=/profile", "/profile"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.location == "/wechat/choose?next=/profile", path

    page = client.get("/wechat/choose?next=/profile").get_data(as_text=True)
    choices = re.findall(r'id="choose-(\w+)" href="([^"]+)"', page)
    assert [name for name, _ in choices][:2] == ["qr", "wecom_web"]
    assert "企业微信" in client.get("/wechat/choose?next=/profile", headers={"Accept-Language": "zh-CN"}).text
    url = start(client, unescape(dict(choices)["wecom_web"]))
    assert urlsplit(url).path == "/wwlogin/sso/login"
    client.get(scan(url, "zhangsan"))
    assert logged_in_as(client) == "zhangsan"


def test_a_site_with_wecom_alone_sends_a_desktop_straight_to_the_web_login(build: Callable[..., Flask]) -> None:
    app = build(WECHAT_APPID=None, WECHAT_SECRET=None, WECHAT_OPEN_APPID=None, WECHAT_OPEN_SECRET=None)
    assert urlsplit(start(desktop(app), "/profile")).path == "/wwlogin/sso/login"
    assert urlsplit(start(phone(app), "/profile")).path == "/connect/oauth2/authorize"


@pytest.mark.parametrize(
    ("user_agent", "path", "appid"),
    [
        (DESKTOP_UA, "/wwlogin/sso/login", DEMO_CORPID),
        (WECOM_USER_AGENT, "/connect/oauth2/authorize", DEMO_CORPID),
        (WECOM_DESKTOP_USER_AGENT, "/connect/oauth2/authorize", DEMO_CORPID),
    ],
)
def test_flow_wecom_forces_wecom_the_way_this_browser_can_use(
    app: Flask, user_agent: str, path: str, appid: str
) -> None:
    url = start(browser(app, user_agent), "/wechat/login?flow=wecom&next=/profile")
    assert urlsplit(url).path == path
    assert query_of(url.split("#", 1)[0])["appid"] == appid


@pytest.mark.parametrize(
    ("user_agent", "appid", "scope"),
    [
        (WECHAT_UA, DEMO_APPID, "snsapi_userinfo"),  # WeChat, not WeCom: WeChat's own in-app login
        (WECOM_USER_AGENT, DEMO_CORPID, "snsapi_base"),  # says MicroMessenger too: wxwork is checked first
        (WECOM_DESKTOP_USER_AGENT, DEMO_CORPID, "snsapi_base"),
    ],
)
def test_the_client_is_told_by_its_user_agent_wecom_before_wechat(
    app: Flask, user_agent: str, appid: str, scope: str
) -> None:
    client = browser(app, user_agent)
    url = start(client, "/profile")  # inside a client there is nothing to choose
    assert urlsplit(url).path == "/connect/oauth2/authorize"
    query = query_of(url.split("#", 1)[0])
    assert (query["appid"], query["scope"]) == (appid, scope)
    chooser = client.get("/wechat/choose?next=/profile").get_data(as_text=True)
    own = "wecom" if appid == DEMO_CORPID else "oa"
    assert re.findall(r'id="choose-(\w+)"', chooser) == [own]


def test_a_wechat_user_still_logs_in_with_wechat(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = browser(app, WECHAT_UA)
    login(client, user="alice")
    assert logged_in_as(client) == fake_wechat.openid_for(DEMO_APPID, "alice")
    assert calls(fake_wechat, "wecom_getuserinfo") == 0


# -- members and non-members ----------------------------------------------------------------------


@pytest.mark.parametrize("flow", ["wecom", "wecom_web"])
def test_a_non_member_is_refused_with_a_page_and_nothing_is_stored(app: Flask, flow: str) -> None:
    client = phone(app) if flow == "wecom" else desktop(app)
    answer = wecom_login(client, "guest")
    assert answer.status_code == 403
    assert error_of(answer) == "NotAMemberError"
    assert "not a member" in answer.get_data(as_text=True)
    assert logged_in_as(client) is None
    assert rows(app) == (0, 0)


def test_non_members_are_admitted_when_the_site_says_so(build: Callable[..., Flask], fake_wechat: FakeWeChat) -> None:
    app = build(WECHAT_WECOM_ADMIT_NON_MEMBERS=True)
    client = phone(app)
    assert wecom_login(client, "guest").status_code == 302
    guest = fake_wechat.corps[DEMO_CORPID].non_member("guest")
    assert guest is not None
    assert logged_in_as(client) == guest.openid
    assert member_account(app, guest.openid) is not None


# -- what members share (snsapi_privateinfo) ------------------------------------------------------


@pytest.fixture
def private(build: Callable[..., Flask]) -> Flask:
    """An app asking members for their details, which it keeps sealed."""
    return build(WECHAT_WECOM_SCOPE="snsapi_privateinfo", WECHAT_TOKEN_KEYS=[TOKEN_KEY])


def test_the_consented_contact_is_stored_and_the_mobile_and_email_sealed(
    private: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer
) -> None:
    client = phone(private)
    authorize = start(client, "/profile")
    assert query_of(authorize.split("#", 1)[0])["scope"] == "snsapi_privateinfo"
    client.get(in_wecom(authorize, "zhangsan"))
    assert logged_in_as(client) == "zhangsan"

    (detail,) = fake_wechat.calls("wecom_getuserdetail")
    assert detail.method == "POST" and detail.json is not None and detail.json["user_ticket"]
    account = member_account(private, "zhangsan")
    cipher = TokenCipher([TOKEN_KEY])
    assert "13800138011" not in (account.phone_number + account.pure_phone_number)
    assert cipher.open(account.phone_number) == cipher.open(account.pure_phone_number) == "13800138011"
    assert "zhangsan@example.com" not in account.email
    assert cipher.open(account.email) == "zhangsan@example.com"
    assert account.gender == "1" and isinstance(account.gender, str)
    assert account.avatar_url.startswith(fake_wechat_server.url + "/")
    # user/get gives the name even to an app created after 2022-06-20.
    assert account.nickname == "张三"


def test_what_a_newer_app_is_not_shown_never_blanks_what_was_stored(
    private: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer
) -> None:
    client = phone(private)
    wecom_login(client, "zhangsan")
    first = member_account(private, "zhangsan")
    assert first.phone_number and first.email and first.avatar_url and first.gender == "1"
    fake_member(fake_wechat, "zhangsan").name = "张三丰"

    # The web login brings no user_ticket, and user/get withholds mobile, email, avatar and gender.
    elsewhere = desktop(private)
    assert wecom_login(elsewhere, "zhangsan").status_code == 302
    assert calls(fake_wechat, "wecom_getuserdetail") == 1

    again = member_account(private, "zhangsan")
    assert again.nickname == "张三丰"  # what arrives is stored
    cipher = TokenCipher([TOKEN_KEY])
    assert cipher.open(again.phone_number) == "13800138011"
    assert cipher.open(again.email) == "zhangsan@example.com"
    assert (again.avatar_url, again.gender) == (first.avatar_url, "1")
    assert rows(private) == (1, 1)


def test_an_app_from_before_2022_stores_what_user_get_still_shows_it(
    build: Callable[..., Flask], fake_wechat: FakeWeChat
) -> None:
    agent = fake_wechat.corps[DEMO_CORPID].agent(DEMO_AGENTID)
    assert agent is not None
    agent.created_after_2022_06_20 = False
    app = build(WECHAT_TOKEN_KEYS=[TOKEN_KEY])
    wecom_login(phone(app), "lisi")  # snsapi_base: no consent, no user_ticket
    account = member_account(app, "lisi")
    assert calls(fake_wechat, "wecom_getuserdetail") == 0
    assert (account.nickname, account.gender) == ("李四", "2")
    assert TokenCipher([TOKEN_KEY]).open(account.phone_number) == "13800138012"


def test_both_casings_of_getuserinfo_name_the_same_visitor(app: Flask, fake_wechat_server: FakeWeChatServer) -> None:
    """What the fake's two getuserinfo endpoints answer, each with its own casing, reads the same."""
    with app.app_context():
        token = app.extensions["test_wechat"].app_token("wecom")
    fake = fake_wechat_server.fake

    def ask(path: str, who: str, scope: str = "snsapi_base") -> dict[str, Any]:
        code = fake.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, who, scope)
        answer = requests.get(fake_wechat_server.url + path, params={"access_token": token, "code": code}, timeout=5)
        data: dict[str, Any] = answer.json()
        return data

    legacy = ask(wecom.LEGACY_GETUSERINFO_PATH, "zhangsan", "snsapi_privateinfo")
    assert "UserId" in legacy and "userid" not in legacy
    visitor = wecom.Visitor.from_response(legacy, wecom.LEGACY_GETUSERINFO_PATH)
    assert visitor.userid == "zhangsan" and visitor.is_member and visitor.user_ticket
    current = wecom.Visitor.from_response(ask(wecom.GETUSERINFO_PATH, "zhangsan"))
    assert current.userid == "zhangsan" and current.user_ticket is None
    outsider = wecom.Visitor.from_response(ask(wecom.LEGACY_GETUSERINFO_PATH, "guest"))
    guest = fake.corps[DEMO_CORPID].non_member("guest")
    assert guest is not None and "OpenId" in ask(wecom.LEGACY_GETUSERINFO_PATH, "guest")
    assert (outsider.userid, outsider.openid, outsider.is_member) == (None, guest.openid, False)
    with pytest.raises(errors.WeChatResponseError):
        wecom.Visitor.from_response({"errcode": 0, "errmsg": "ok", "DeviceId": "x"})


# -- the site's veto, and binding -----------------------------------------------------------------


def test_login_allowed_vetoes_by_department_before_any_user_exists(app: Flask, fake_wechat: FakeWeChat) -> None:
    wechat = app.extensions["test_wechat"]
    seen: list[tuple[str, tuple[int, ...]]] = []

    @wechat.login_allowed
    def only_department_2(identity: Identity) -> bool:
        seen.append((identity.openid, identity.departments))
        return 2 in identity.departments

    refused = wecom_login(phone(app), "lisi")
    assert refused.status_code == 403 and error_of(refused) == "LoginRefusedError"
    assert rows(app) == (0, 0)  # refused before any user or account row was written

    for _ in range(2):  # a member let in once is let in again (their departments are asked each time)
        client = phone(app)
        assert wecom_login(client, "zhangsan").status_code == 302
        assert logged_in_as(client) == "zhangsan"
    assert seen == [("lisi", (1,)), ("zhangsan", (1, 2)), ("zhangsan", (1, 2))]
    fake_member(fake_wechat, "zhangsan").department = [1]  # moved out of department 2
    client = phone(app)
    assert wecom_login(client, "zhangsan").status_code == 403
    assert logged_in_as(client) is None
    assert rows(app) == (1, 1)


def test_a_wechat_user_links_their_wecom_identity(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = browser(app, WECHAT_UA)
    login(client, user="alice")
    alice = user_of(client)

    bind = start(client, "/wechat/bind?flow=wecom&next=/profile")
    assert query_of(bind.split("#", 1)[0])["appid"] == DEMO_CORPID  # in WeChat's browser: the web login
    assert urlsplit(bind).path == "/wwlogin/sso/login"
    done = client.get(scan(bind, "zhangsan"))
    assert done.status_code == 302 and done.location == "/profile"
    assert user_of(client) == alice
    assert rows(app) == (1, 2)

    member = phone(app)  # later, inside WeCom: the same user
    wecom_login(member, "zhangsan")
    assert user_of(member) == alice

    other = browser(app, WECHAT_UA)
    login(other, user="bob")
    taken = other.get(scan(start(other, "/wechat/bind?flow=wecom&next=/profile"), "zhangsan"))
    assert taken.status_code == 409 and error_of(taken) == "IdentityTakenError"
    assert rows(app) == (2, 3)


# -- errors that tell the operator what to fix ----------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def attempt_login(app: Flask, who: str = "zhangsan") -> tuple[FlaskClient, TestResponse]:
    client = phone(app)
    return client, wecom_login(client, who)


def test_an_untrusted_ip_names_the_ip_and_where_to_add_it(
    app: Flask, fake_wechat: FakeWeChat, logs: pytest.LogCaptureFixture
) -> None:
    fake_wechat.refuse_wecom_ip("203.0.113.9")
    client, answer = attempt_login(app)

    assert answer.status_code == 502 and error_of(answer) == "IPNotAllowedError"
    assert calls(fake_wechat, "wecom_gettoken") == 1  # gettoken still works from that IP
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 1
    told = [record.getMessage() for record in logs.records if "203.0.113.9" in record.getMessage()]
    assert told and any("企业可信IP" in message for message in told)
    assert_discreet(answer.get_data(as_text=True), fake_wechat)
    assert_discreet(logs.text, fake_wechat)

    fake_wechat.allow_wecom_ip()
    retry = re.search(r'id="wechat-retry" href="([^"]+)"', answer.get_data(as_text=True))
    assert retry is not None and unescape(retry.group(1)) == "/wechat/login?next=/profile"
    client.get(in_wecom(start(client, unescape(retry.group(1))), "zhangsan"))
    assert logged_in_as(client) == "zhangsan"


def test_an_untrusted_domain_names_the_domain(
    app: Flask, fake_wechat: FakeWeChat, logs: pytest.LogCaptureFixture
) -> None:
    agent = fake_wechat.corps[DEMO_CORPID].agent(DEMO_AGENTID)
    assert agent is not None
    agent.trusted_domain = "login.example.com"
    client = phone(app)
    authorize = start(client)
    # WeCom's own page refuses the link...
    refused = requests.get(authorize.split("#", 1)[0], allow_redirects=False, timeout=5)
    assert refused.status_code == 302 and "/wwopen/uriconfirm" in refused.headers["Location"]
    # ...and a code that came back here anyway is refused by getuserinfo (50001).
    code = fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan", redirect_uri=IN_CLIENT_CALLBACK)
    answer = client.get(f"/wechat/wecom/callback?code={code}&state={state_of(authorize.split('#', 1)[0])}")

    assert answer.status_code == 502 and error_of(answer) == "UntrustedDomainError"
    told = [record.getMessage() for record in logs.records if "50001" in record.getMessage()]
    assert told and any("localhost" in message and "可信域名" in message for message in told)
    assert_discreet(answer.get_data(as_text=True), fake_wechat)
    assert_discreet(logs.text, fake_wechat)


@pytest.mark.parametrize("how", ["expired", "unknown", "used"])
def test_a_code_wecom_no_longer_takes_asks_to_log_in_again(
    app: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, how: str
) -> None:
    client = phone(app)
    callback = in_wecom(start(client), "zhangsan")
    if how == "expired":
        fake_wechat.advance(CODE_LIFETIME + 1)
    elif how == "unknown":
        fake_wechat.fail_next("wecom_getuserinfo", 40029)
    else:  # redeemed elsewhere first (a leaked code)
        with app.app_context():
            token = app.extensions["test_wechat"].app_token("wecom")
        params = {"access_token": token, "code": query_of(callback)["code"]}
        used = requests.get(fake_wechat_server.url + wecom.GETUSERINFO_PATH, params=params, timeout=5)
        assert used.json()["userid"] == "zhangsan"

    answer = client.get(callback)
    assert answer.status_code == 400 and error_of(answer) == "InvalidCodeError"
    assert logged_in_as(client) is None
    assert_discreet(answer.get_data(as_text=True), fake_wechat)


@pytest.mark.parametrize("errcode", [42001, 40014])
def test_a_refused_corp_token_is_refreshed_once_and_the_call_sent_again(
    app: Flask, fake_wechat: FakeWeChat, errcode: int
) -> None:
    fake_wechat.fail_next("wecom_getuserinfo", errcode)
    client, answer = attempt_login(app)
    assert answer.status_code == 302
    assert logged_in_as(client) == "zhangsan"
    assert calls(fake_wechat, "wecom_gettoken") == 2
    assert calls(fake_wechat, "wecom_getuserinfo") == 2

    fake_wechat.fail_next("wecom_getuserinfo", errcode, times=2)
    client, answer = attempt_login(app, "lisi")
    assert answer.status_code == 502 and error_of(answer) in ("AccessTokenExpiredError", "InvalidAccessTokenError")
    assert calls(fake_wechat, "wecom_gettoken") == 3  # refreshed once more, never in a loop
    assert calls(fake_wechat, "wecom_getuserinfo") == 4
    assert_discreet(answer.get_data(as_text=True), fake_wechat)


@pytest.mark.parametrize("end", ["expire_wecom_tokens", "revoke_wecom_tokens"])
def test_a_corp_token_wecom_ended_early_is_replaced(app: Flask, fake_wechat: FakeWeChat, end: str) -> None:
    wecom_login(phone(app), "zhangsan")
    getattr(fake_wechat, end)()
    client = phone(app)
    assert wecom_login(client, "lisi").status_code == 302
    assert logged_in_as(client) == "lisi"
    assert calls(fake_wechat, "wecom_gettoken") == 2
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 2


@pytest.mark.parametrize("errcode", [45009, 45033])
def test_wecom_throttling_is_a_503_with_retry_after(app: Flask, fake_wechat: FakeWeChat, errcode: int) -> None:
    fake_wechat.fail_next("wecom_getuserinfo", errcode)
    client, answer = attempt_login(app)
    assert answer.status_code == 503 and error_of(answer) == "RateLimitedError"
    assert int(answer.headers["Retry-After"]) > 0
    assert calls(fake_wechat, "wecom_getuserinfo") == 1  # not hammered
    assert logged_in_as(client) is None
    assert_discreet(answer.get_data(as_text=True), fake_wechat)


@pytest.mark.parametrize("errcode", [84014, 84015])
def test_a_dead_user_ticket_logs_the_member_in_without_the_consented_fields(
    private: Flask, fake_wechat: FakeWeChat, logs: pytest.LogCaptureFixture, errcode: int
) -> None:
    fake_wechat.fail_next("wecom_getuserdetail", errcode)
    client, answer = attempt_login(private)
    assert answer.status_code == 302 and logged_in_as(client) == "zhangsan"
    account = member_account(private, "zhangsan")
    assert (account.phone_number, account.email, account.gender) == (None, None, None)
    assert account.nickname == "张三"  # user/get still answered
    assert any(str(errcode) in record.getMessage() for record in logs.records if record.levelno >= logging.WARNING)
    assert_discreet(logs.text, fake_wechat)


# -- flask wechat check / tokens ------------------------------------------------------------------


def values_of(output: str, label: str) -> list[str]:
    lines = (line.strip() for line in output.splitlines())
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{label}:")]


def test_check_prints_what_the_wecom_console_must_hold(tmp_path: Path) -> None:
    app = make_app(
        None,
        f"sqlite:///{tmp_path / 'check.db'}",
        SECRET_KEY="k3y-for-tests-only-0123456789abcdef",
        SERVER_NAME="login.example.com",
        PREFERRED_URL_SCHEME="https",
        WECHAT_WECOM_CORPID=DEMO_CORPID,
        WECHAT_WECOM_AGENTID=str(DEMO_AGENTID),
        WECHAT_WECOM_SECRET=DEMO_WECOM_SECRET,
    )
    result = app.test_cli_runner().invoke(wechat_cli, ["check"])
    output = result.output
    assert result.exit_code == 0, output

    assert values_of(output, "WeCom, in the client") == [f"CorpID {DEMO_CORPID}"]
    assert values_of(output, "WeCom, web login (QR)") == [f"CorpID {DEMO_CORPID}"]
    callbacks = values_of(output, "Callback URL")
    assert "https://login.example.com/wechat/wecom/callback" in callbacks
    assert "https://login.example.com/wechat/wecom/web/callback" in callbacks
    links = values_of(output, "Authorize URL")
    in_client = (
        f"https://open.weixin.qq.com/connect/oauth2/authorize?appid={DEMO_CORPID}"
        f"&redirect_uri={quote('https://login.example.com/wechat/wecom/callback', safe='')}"
        f"&response_type=code&scope=snsapi_base&state=STATE&agentid={DEMO_AGENTID}#wechat_redirect"
    )
    web = (
        f"https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp&appid={DEMO_CORPID}"
        f"&agentid={DEMO_AGENTID}&redirect_uri={quote('https://login.example.com/wechat/wecom/web/callback', safe='')}"
        "&state=STATE&lang=en"
    )
    assert in_client in links and web in links
    domains = [value for value in values_of(output, "Console domain") if "可信域名" in value]
    assert domains and all(value.startswith("login.example.com   (") for value in domains)
    (corp_token,) = values_of(output, "WeCom corp token")
    assert "/cgi-bin/gettoken" in corp_token and "企业可信IP" in corp_token
    assert DEMO_WECOM_SECRET not in output
    with app.app_context():
        db.engine.dispose()


def test_tokens_shows_the_corp_token_and_never_its_value(app: Flask, fake_wechat: FakeWeChat) -> None:
    runner = app.test_cli_runner()
    before = runner.invoke(wechat_cli, ["tokens"])
    assert before.exit_code == 0, before.output
    row = next(line for line in before.output.splitlines() if line.startswith("wecom"))
    assert row.split() == ["wecom", DEMO_CORPID, "corp", "token", "/cgi-bin/gettoken", "-", "not", "fetched"]

    fetched = runner.invoke(wechat_cli, ["tokens", "--fetch"])
    assert fetched.exit_code == 0, fetched.output
    row = next(line for line in fetched.output.splitlines() if line.startswith("wecom"))
    assert re.fullmatch(r"1h5\dm|2h00m", row.split()[-1]), row
    assert calls(fake_wechat, "wecom_gettoken") == 1
    with app.app_context():
        token = app.extensions["test_wechat"].app_token("wecom")
    assert token not in fetched.output and DEMO_WECOM_SECRET not in fetched.output
    assert calls(fake_wechat, "wecom_gettoken") == 1  # the token the command fetched is the one every worker uses


# -- the login path's attacks, at WeCom's callbacks -----------------------------------------------


def client_for(app: Flask, flow: str) -> FlaskClient:
    """A browser that gets ``flow`` for WeCom: the phone's WeCom client, or a desktop browser."""
    return phone(app) if flow == "wecom" else desktop(app)


def started(app: Flask, flow: str) -> tuple[FlaskClient, str]:
    """A browser that started a WeCom login, and where it was sent."""
    client = client_for(app, flow)
    return client, start(client, "/wechat/login?flow=wecom&next=/profile")


def trip(url: str, who: str = "zhangsan") -> str:
    """The callback WeCom sends ``who`` to from ``url``."""
    return scan(url, who) if urlsplit(url).path == wecom.WEB_LOGIN_PATH else in_wecom(url, who)


FLOWS = pytest.mark.parametrize("flow", ["wecom", "wecom_web"])


@FLOWS
def test_a_planted_callback_starts_the_victims_own_login(app: Flask, fake_wechat: FakeWeChat, flow: str) -> None:
    _, url = started(app, flow)
    planted = trip(url, "zhangsan")
    victim = client_for(app, flow)

    answer = victim.get(planted)

    assert answer.status_code == 302
    assert urlsplit(answer.location).path == urlsplit(url).path
    assert state_of(answer.location.split("#", 1)[0]) not in (state_of(planted), state_of(url.split("#", 1)[0]))
    assert logged_in_as(victim) is None
    assert calls(fake_wechat, "wecom_getuserinfo") == 0
    assert rows(app) == (0, 0)


@FLOWS
def test_a_planted_callback_in_a_logged_in_browser_changes_nothing(
    app: Flask, fake_wechat: FakeWeChat, flow: str
) -> None:
    victim = client_for(app, flow)
    wecom_login(victim, "lisi")
    _, url = started(app, flow)
    planted = trip(url, "zhangsan")

    answer = victim.get(planted)

    assert answer.status_code == 302 and answer.location == "/profile"
    assert logged_in_as(victim) == "lisi"
    assert calls(fake_wechat, "wecom_getuserinfo") == 1  # lisi's own login only


@FLOWS
def test_a_planted_bind_callback_never_binds(app: Flask, fake_wechat: FakeWeChat, flow: str) -> None:
    attacker, victim = client_for(app, flow), client_for(app, flow)
    wecom_login(attacker, "zhangsan")
    wecom_login(victim, "lisi")
    planted = trip(start(attacker, "/wechat/bind?flow=wecom&next=/profile"), "guest")

    answer = victim.get(planted)

    assert answer.status_code == 400 and error_of(answer) == "StateError"
    assert rows(app) == (2, 2)
    assert calls(fake_wechat, "wecom_getuserinfo") == 2


@FLOWS
def test_a_replayed_callback_is_answered_without_a_second_getuserinfo(
    app: Flask, fake_wechat: FakeWeChat, flow: str
) -> None:
    client, url = started(app, flow)
    callback = trip(url)
    assert client.get(callback).status_code == 302
    again = client.get(callback)  # a reload, or WeCom's second hit
    assert again.status_code == 302 and again.location == "/profile"
    assert logged_in_as(client) == "zhangsan"

    stranger = client_for(app, flow)
    for _ in range(3):  # the used URL, leaked to another browser
        answer = stranger.get(callback)
        assert answer.status_code == 302 and urlsplit(answer.location).path == urlsplit(url).path
        assert logged_in_as(stranger) is None
    assert calls(fake_wechat, "wecom_getuserinfo") == 1


@pytest.mark.parametrize(
    ("minted", "callback"),
    [
        ("oa", "/wechat/wecom/callback"),
        ("qr", "/wechat/wecom/web/callback"),
        ("wecom", "/wechat/callback"),
        ("wecom_web", "/wechat/qr/callback"),
        ("wecom", "/wechat/wecom/web/callback"),
        ("wecom_web", "/wechat/wecom/callback"),
    ],
)
def test_a_state_minted_for_one_flow_is_refused_at_anothers_callback(
    app: Flask, fake_wechat: FakeWeChat, minted: str, callback: str
) -> None:
    client = phone(app)  # any flow can be asked for by name; the in-client ones need their client
    state = state_of(start(client, f"/wechat/login?flow={minted}&next=/profile").split("#", 1)[0])
    codes = {
        "/wechat/callback": lambda: fake_wechat.issue_code(DEMO_APPID, "alice"),
        "/wechat/qr/callback": lambda: fake_wechat.issue_code(DEMO_OPEN_APPID, "alice", scope="snsapi_login"),
        "/wechat/wecom/callback": lambda: fake_wechat.issue_wecom_code(DEMO_CORPID, DEMO_AGENTID, "zhangsan"),
        "/wechat/wecom/web/callback": lambda: fake_wechat.issue_wecom_code(
            DEMO_CORPID, DEMO_AGENTID, "zhangsan", web=True
        ),
    }

    answer = client.get(f"{callback}?code={codes[callback]()}&state={state}")

    assert answer.status_code == 400 and error_of(answer) == "StateError"
    assert calls(fake_wechat, "wecom_getuserinfo") == calls(fake_wechat, "access_token") == 0
    assert logged_in_as(client) is None


@FLOWS
def test_a_callback_without_its_session_starts_again_once_then_asks_for_cookies(
    app: Flask, fake_wechat: FakeWeChat, flow: str
) -> None:
    # A browser that keeps no cookie at all: every request is a fresh client.
    _, url = started(app, flow)
    restarted = client_for(app, flow).get(trip(url))
    assert restarted.status_code == 302 and urlsplit(restarted.location).path == urlsplit(url).path

    answer = client_for(app, flow).get(trip(restarted.location))

    assert answer.status_code == 400 and error_of(answer) == "CookieLostError"
    assert calls(fake_wechat, "wecom_getuserinfo") == 0


@FLOWS
def test_a_lost_cookie_restart_logs_the_member_in_as_themselves(app: Flask, flow: str) -> None:
    client, url = started(app, flow)
    callback = trip(url, "lisi")
    client.delete_cookie("session")  # dropped on the way back from WeCom

    restarted = client.get(callback)
    landing = client.get(trip(restarted.location, "lisi"))

    assert landing.status_code == 302 and landing.location == "/profile"
    assert logged_in_as(client) == "lisi"


# -- configuration --------------------------------------------------------------------------------

GOOD = {
    "WECHAT_WECOM_CORPID": DEMO_CORPID,
    "WECHAT_WECOM_AGENTID": DEMO_AGENTID,
    "WECHAT_WECOM_SECRET": DEMO_WECOM_SECRET,
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("WECHAT_WECOM_CORPID", "wx3b7e9a1c5d2f4086"),  # a WeChat AppID
        ("WECHAT_WECOM_CORPID", "WW3B7E9A1C5D2F4086"),
        ("WECHAT_WECOM_CORPID", "ww3b7e9a1c5d2f408"),
        ("WECHAT_WECOM_CORPID", "ww3b7e9a1c5d2f40866"),
        ("WECHAT_WECOM_CORPID", "ww3b7e9a1c5d2f408g"),
        ("WECHAT_WECOM_CORPID", None),
        ("WECHAT_WECOM_AGENTID", "abc"),
        ("WECHAT_WECOM_AGENTID", "1000002²"),
        ("WECHAT_WECOM_AGENTID", "10000 02"),
        ("WECHAT_WECOM_AGENTID", 0),
        ("WECHAT_WECOM_AGENTID", -1),
        ("WECHAT_WECOM_AGENTID", True),
        ("WECHAT_WECOM_AGENTID", 1000002.0),
        ("WECHAT_WECOM_AGENTID", None),
        ("WECHAT_WECOM_SECRET", DEMO_WECOM_SECRET[:-1]),
        ("WECHAT_WECOM_SECRET", DEMO_WECOM_SECRET + "x"),
        ("WECHAT_WECOM_SECRET", DEMO_WECOM_SECRET[:-1] + "!"),
        ("WECHAT_WECOM_SECRET", None),
        ("WECHAT_WECOM_SCOPE", "snsapi_userinfo"),
        ("WECHAT_WECOM_SCOPE", "snsapi_login"),
        ("WECHAT_WECOM_SCOPE", ""),
        ("WECHAT_WECOM_ADMIT_NON_MEMBERS", "yes"),
        ("WECHAT_WECOM_API_BASE_URL", "qyapi.weixin.qq.com"),
    ],
)
def test_a_bad_wecom_key_fails_naming_the_key_and_never_the_secret(key: str, value: Any) -> None:
    with pytest.raises(errors.ConfigurationError) as raised:
        load_settings({**DEFAULTS, **GOOD, key: value})
    message = str(raised.value)
    assert key in message
    assert DEMO_WECOM_SECRET not in message and DEMO_WECOM_SECRET[:-1] not in message


@pytest.mark.parametrize("agentid", [DEMO_AGENTID, str(DEMO_AGENTID), f" {DEMO_AGENTID} "])
@pytest.mark.parametrize("scope", ["snsapi_base", "snsapi_privateinfo"])
def test_well_formed_wecom_keys_are_accepted(agentid: Any, scope: str) -> None:
    settings = load_settings({**DEFAULTS, **GOOD, "WECHAT_WECOM_AGENTID": agentid, "WECHAT_WECOM_SCOPE": scope})
    assert settings.wecom is not None
    assert (settings.wecom.corpid, settings.wecom.agentid, settings.wecom.scope) == (DEMO_CORPID, DEMO_AGENTID, scope)
    assert DEMO_WECOM_SECRET not in repr(settings)


def test_the_wecom_keys_alone_configure_a_site() -> None:
    settings = load_settings({**DEFAULTS, **GOOD})
    assert settings.wecom is not None and settings.wecom.admit_non_members is False
    assert settings.wecom.login_base_url == "https://login.work.weixin.qq.com"
    assert settings.wecom.api_base_url == "https://qyapi.weixin.qq.com"


# -- the embedded panel (wechat_wecom_login) ------------------------------------------------------

PANEL_PAGE = "<!doctype html><title>log in</title>{{ wechat_wecom_login(next='/profile', redirect_type=kind) }}"


@pytest.fixture
def panel_app(app: Flask) -> Flask:
    @app.get("/panel")
    def panel() -> str:
        return render_template_string(PANEL_PAGE, kind=request.args.get("type", "top"))

    return app


def panel_params(page: str) -> dict[str, str]:
    found = re.search(r"var params = (\{.*?\});", page)
    assert found is not None, page
    params: dict[str, str] = json.loads(found.group(1))
    return params


@pytest.mark.parametrize("kind", ["top", "callback"])
def test_the_panel_carries_a_server_minted_state_the_callback_accepts(
    panel_app: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, kind: str
) -> None:
    client = desktop(panel_app)
    page = client.get(f"/panel?type={kind}").get_data(as_text=True)
    params = panel_params(page)
    assert f'<script src="{fake_wechat_server.url}/wwlogin/sso/panel.js"></script>' in page
    state = params.pop("state")
    assert params == {
        "login_type": "CorpApp",
        "appid": DEMO_CORPID,
        "agentid": str(DEMO_AGENTID),
        "redirect_uri": WEB_CALLBACK,
        "redirect_type": kind,
        "lang": "en",
    }
    assert state != panel_params(client.get(f"/panel?type={kind}").get_data(as_text=True))["state"]

    # What the panel's iframe loads, and the person scanning in it.
    frame = {**params, "state": state, "panel": "1"}
    if kind == "callback":
        frame["origin"] = "http://localhost"
    with requests.Session() as wecom_side:
        shown = wecom_side.get(fake_wechat_server.url + wecom.WEB_LOGIN_PATH, params=frame, timeout=5)
        answer = submit(wecom_side, shown, user="lisi", action="allow")
    assert answer.status_code == 200
    if kind == "top":  # the iframe moves the whole page to the callback
        found = re.search(r'id="continue" href="([^"]+)" target="_top"', answer.text)
        assert found is not None, answer.text
        callback = path_of(unescape(found.group(1)))
    else:  # the panel hands the code to the page, which goes to the callback itself (wecom_panel.html)
        found = re.search(r"JSON\.parse\((\".*?\")\)", answer.text)
        assert found is not None, answer.text
        message = json.loads(json.loads(found.group(1)))
        assert message["type"] == "success"
        callback = f"/wechat/wecom/web/callback?code={quote(message['code'])}&state={quote(state)}"
        assert 'params.redirect_uri + "?code="' in page
    assert state_of(callback) == state

    landing = client.get(callback)
    assert landing.status_code == 302 and landing.location == "/profile"
    assert logged_in_as(client) == "lisi"


def test_the_panel_needs_wecom_and_a_known_redirect_type(
    app: Flask, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    with app.test_request_context("/"), pytest.raises(ValueError, match="redirect_type"):
        render_template_string(PANEL_PAGE, kind="popup")
    bare = make_app(fake_wechat_server.url, database_uri)
    with bare.test_request_context("/"), pytest.raises(RuntimeError, match="WECHAT_WECOM_CORPID"):
        render_template_string(PANEL_PAGE, kind="top")
    with bare.app_context():
        db.engine.dispose()


def test_the_demo_stores_members_next_to_wechat_users(demo: Flask) -> None:
    """The demo's profile names the WeCom account among the person's accounts."""
    client = phone(demo)
    wecom_login(client, "zhangsan")
    page = client.get("/profile", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert re.search(rf'data-appid="{DEMO_CORPID}">\s*<span class="kind">WeCom</span>', page)
    with demo.app_context():
        assert demo_db.session.execute(select(func.count()).select_from(DemoUser)).scalar_one() == 1
        demo_db.session.remove()


def test_the_demo_with_its_in_app_fake_logs_members_in_both_ways(tmp_path: Path) -> None:
    """``make demo``: the fake installed inside the app serves WeCom's pages and qyapi too."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}"})
    fake = app.extensions["wechat_fake"]
    try:
        for client, who in ((phone(app), "zhangsan"), (desktop(app), "lisi")):
            url = start(client, "/wechat/login?flow=wecom&next=/profile")
            assert url.startswith("/_fake_wechat/")
            page = client.get(url.split("#", 1)[0])
            text = page.get_data(as_text=True)
            action = _FORM.search(text)
            assert page.status_code == 200 and action is not None, text
            fields = {unescape(name): unescape(value) for name, value in _HIDDEN.findall(text)}
            picked = client.post(unescape(action.group(1)), data={**fields, "user": who, "action": "allow"})
            assert picked.status_code == 302, picked.get_data(as_text=True)
            assert client.get(path_of(picked.location)).location == "/profile"
            profile = client.get("/profile").get_data(as_text=True)
            assert re.search(rf'id="openid"[^>]*>{who}<', profile)
        assert calls(fake, "wecom_gettoken") == 1 and calls(fake, "wecom_getuserinfo") == 2
    finally:
        with app.app_context():
            demo_db.engine.dispose()
