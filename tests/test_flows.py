"""Every WeChat login a site needs: QR on desktops, Official Account inside WeChat, the mini program,
one local user per person across apps, binding, and snapshot identities never stored."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_wechat import signals
from flask_wechat.testing.fake import (
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    FakeApp,
    FakeWeChat,
)
from flask_wechat.testing.server import FakeWeChatServer

from .apps import User, WeChatAccount, db, make_app
from .conftest import login

WECHAT_UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Mobile MicroMessenger/8.0.50.2701 NetType/WIFI"
WECOM_UA = "Mozilla/5.0 (Windows NT 10.0) MicroMessenger/7.0.1 wxwork/4.1.0"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
ALL_APPS = {
    "WECHAT_OPEN_APPID": DEMO_OPEN_APPID,
    "WECHAT_OPEN_SECRET": DEMO_OPEN_SECRET,
    "WECHAT_MINIPROGRAM_APPID": DEMO_MINIPROGRAM_APPID,
    "WECHAT_MINIPROGRAM_SECRET": DEMO_MINIPROGRAM_SECRET,
}


@pytest.fixture
def app(fake_wechat_server: FakeWeChatServer, database_uri: str) -> Flask:
    return make_app(fake_wechat_server.url, database_uri, **ALL_APPS)


def browser(app: Flask, user_agent: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def rows(app: Flask) -> tuple[int, int]:
    with app.app_context():
        users = db.session.execute(select(func.count()).select_from(User)).scalar_one()
        accounts = db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one()
    return users, accounts


def profile_user(client: FlaskClient) -> str:
    page = client.get("/profile")
    assert page.status_code == 200, page.status_code
    return re.search(r"user=(\d+)", page.get_data(as_text=True)).group(1)


def state_of(location: str) -> str:
    return dict(parse_qsl(urlsplit(location).query))["state"]


def test_desktop_goes_to_qrconnect_with_the_website_app(app: Flask, fake_wechat_server: FakeWeChatServer) -> None:
    start = browser(app, DESKTOP_UA).get("/wechat/login?next=/profile")
    state = state_of(start.location)
    assert start.location == (
        f"{fake_wechat_server.url}/connect/qrconnect?appid={DEMO_OPEN_APPID}"
        f"&redirect_uri={quote('http://localhost/wechat/qr/callback', safe='')}"
        f"&response_type=code&scope=snsapi_login&state={state}#wechat_redirect"
    )


@pytest.mark.parametrize(
    ("user_agent", "path", "appid"),
    [
        (WECHAT_UA, "/connect/oauth2/authorize", DEMO_APPID),
        (WECOM_UA, "/connect/qrconnect", DEMO_OPEN_APPID),
        ("", "/connect/qrconnect", DEMO_OPEN_APPID),
    ],
)
def test_the_browser_picks_the_flow(app: Flask, user_agent: str, path: str, appid: str) -> None:
    start = urlsplit(browser(app, user_agent).get("/wechat/login").location)
    assert start.path == path
    assert dict(parse_qsl(start.query))["appid"] == appid


def test_a_link_can_force_the_flow_and_unknown_flows_are_404(
    app: Flask, database_uri: str, fake_wechat_server: FakeWeChatServer
) -> None:
    client = browser(app, WECHAT_UA)
    assert urlsplit(client.get("/wechat/login?flow=qr").location).path == "/connect/qrconnect"
    assert urlsplit(browser(app, DESKTOP_UA).get("/wechat/login?flow=oa").location).path == "/connect/oauth2/authorize"
    for flow in ("nope", "QR", "../oa", "x" * 5000):
        assert client.get(f"/wechat/login?flow={quote(flow)}").status_code == 404
    only_oa = make_app(fake_wechat_server.url, database_uri.replace("app.db", "oa.db"))
    assert only_oa.test_client().get("/wechat/login?flow=qr").status_code == 404
    assert urlsplit(browser(only_oa, DESKTOP_UA).get("/wechat/login").location).path == "/connect/oauth2/authorize"
    assert only_oa.test_client().get("/wechat/qr/callback?code=x&state=y").status_code == 404


def test_one_person_through_qr_and_official_account_is_one_user(app: Flask, fake_wechat: FakeWeChat) -> None:
    desktop, phone = browser(app, DESKTOP_UA), browser(app, WECHAT_UA)
    trip = login(desktop, user="alice")
    assert trip.callback_url.startswith("http://localhost/wechat/qr/callback?")
    login(phone, user="alice")
    assert profile_user(desktop) == profile_user(phone)
    assert rows(app) == (1, 2)
    with app.app_context():
        appids = sorted(db.session.execute(select(WeChatAccount.appid)).scalars())
    assert appids == sorted([DEMO_APPID, DEMO_OPEN_APPID])


def test_without_unionid_each_app_has_its_own_user(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    lonely, secret = "wx0aa0bb0cc0dd0ee1", "00112233445566778899aabbccddeeff"
    fake_wechat.add_app(FakeApp(lonely, secret, bound=False, name="Unbound site", kind="website"))
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_OPEN_APPID=lonely, WECHAT_OPEN_SECRET=secret)
    desktop, phone = browser(app, DESKTOP_UA), browser(app, WECHAT_UA)
    login(desktop, user="bob")
    login(phone, user="bob")
    assert profile_user(desktop) != profile_user(phone)
    assert rows(app) == (2, 2)


def test_a_state_minted_for_one_flow_is_refused_by_the_other(app: Flask, fake_wechat: FakeWeChat) -> None:
    phone = browser(app, WECHAT_UA)
    oa_state = state_of(phone.get("/wechat/login").location)
    code = fake_wechat.issue_code(DEMO_OPEN_APPID, "alice", scope="snsapi_login")
    assert phone.get(f"/wechat/qr/callback?code={code}&state={oa_state}").status_code == 400
    desktop = browser(app, DESKTOP_UA)
    qr_state = state_of(desktop.get("/wechat/login").location)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    assert desktop.get(f"/wechat/callback?code={code}&state={qr_state}").status_code == 400
    assert rows(app) == (0, 0)
    assert fake_wechat.requests == []


def test_snapshot_identity_is_never_stored_nor_logged_in(app: Flask, fake_wechat: FakeWeChat) -> None:
    seen = []

    def on_snapshot(sender: Flask, **extra: object) -> None:
        seen.append(extra)

    fake_wechat.snapshot_next()
    with signals.snapshot_user.connected_to(on_snapshot, app):
        trip = login(browser(app, WECHAT_UA), user="alice")
    assert trip.response.status_code == 403
    assert "使用完整服务" in trip.response.get_data(as_text=True)
    assert seen == [{"flow": "oa"}]
    assert rows(app) == (0, 0)
    assert [r.path for r in fake_wechat.requests] == ["/sns/oauth2/access_token"]


def test_embedded_qr_page_mints_a_state_the_callback_accepts(
    app: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer
) -> None:
    client = browser(app, DESKTOP_UA)
    page = client.get("/wechat/qr?next=/profile").get_data(as_text=True)
    assert f'<script src="{fake_wechat_server.url}/connect/zh_CN/htmledition/js/wxLogin.js"></script>' in page
    options = json.loads(re.search(r"new WxLogin\((.*?)\);", page, re.S).group(1))
    assert options["appid"] == DEMO_OPEN_APPID and options["scope"] == "snsapi_login"
    assert options["redirect_uri"] == quote("http://localhost/wechat/qr/callback", safe="")
    assert options["self_redirect"] is False and options["id"] == "wechat-qr"
    code = fake_wechat.issue_code(DEMO_OPEN_APPID, "carol", scope="snsapi_login")
    done = client.get(f"/wechat/qr/callback?code={code}&state={options['state']}")
    assert done.status_code == 302 and done.location == "/profile"
    assert profile_user(client)


def test_binding_links_wechat_to_the_logged_in_user(
    app: Flask, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    phone = browser(app, WECHAT_UA)
    login(phone, user="alice")
    user = profile_user(phone)
    bind = phone.get("/wechat/bind?flow=qr&next=/profile")
    code = fake_wechat.issue_code(DEMO_OPEN_APPID, "alice", scope="snsapi_login")
    done = phone.get(f"/wechat/qr/callback?code={code}&state={state_of(bind.location)}")
    assert done.status_code == 302 and done.location == "/profile"
    assert profile_user(phone) == user
    assert rows(app) == (1, 2)


def test_binding_refuses_to_steal_an_identity(app: Flask, fake_wechat: FakeWeChat) -> None:
    login(browser(app, WECHAT_UA), user="alice")
    bob = browser(app, WECHAT_UA)
    login(bob, user="bob")
    before = rows(app)
    with app.app_context():
        snapshot = sorted(
            (a.appid, a.openid, a.user_id) for a in db.session.execute(select(WeChatAccount)).unique().scalars()
        )
    bind = bob.get("/wechat/bind?flow=qr")
    code = fake_wechat.issue_code(DEMO_OPEN_APPID, "alice", scope="snsapi_login")
    refused = bob.get(f"/wechat/qr/callback?code={code}&state={state_of(bind.location)}")
    assert refused.status_code == 409
    assert "already linked to another user" in refused.get_data(as_text=True)
    assert rows(app) == before
    with app.app_context():
        after = sorted(
            (a.appid, a.openid, a.user_id) for a in db.session.execute(select(WeChatAccount)).unique().scalars()
        )
    assert after == snapshot


def test_binding_needs_a_logged_in_user(app: Flask) -> None:
    response = browser(app, WECHAT_UA).get("/wechat/bind")
    assert response.status_code == 302 and "/connect/oauth2/authorize?" in response.location


def mini_login(client: FlaskClient, payload: object, **headers: str):  # type: ignore[no-untyped-def]
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post("/wechat/miniprogram/login", data=body, content_type="application/json", headers=headers)


def test_a_mini_program_login_the_site_refuses_answers_its_own_error(app: Flask, fake_wechat: FakeWeChat) -> None:
    """``@wechat.login_allowed`` applies to mini program logins too, before any row is written."""
    app.extensions["test_wechat"].login_allowed(lambda identity: identity.unionid != fake_wechat.users["bob"].unionid)
    before = rows(app)
    answer = mini_login(app.test_client(), {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob")})
    assert (answer.status_code, answer.get_json()) == (403, {"error": "login_refused"})
    assert rows(app) == before
    allowed = mini_login(app.test_client(), {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")})
    assert allowed.status_code == 200


def test_mini_program_login_joins_the_same_user_and_keeps_the_session_key(app: Flask, fake_wechat: FakeWeChat) -> None:
    phone = browser(app, WECHAT_UA)
    login(phone, user="bob")
    mini = app.test_client()
    answer = mini_login(mini, {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob")})
    assert answer.status_code == 200
    data = answer.get_json()
    assert str(data["user_id"]) == profile_user(phone) and data["new_user"] is False
    assert "session_key" not in answer.get_data(as_text=True)
    assert profile_user(mini) == profile_user(phone)
    call = fake_wechat.calls("jscode2session")[0]
    assert call.method == "GET"
    assert call.params == {
        "appid": DEMO_MINIPROGRAM_APPID,
        "secret": "[redacted]",  # checked by the fake on arrival, never kept in its log
        "js_code": call.params["js_code"],
        "grant_type": "authorization_code",
    }
    with app.app_context():
        account = (
            db.session.execute(select(WeChatAccount).filter_by(appid=DEMO_MINIPROGRAM_APPID)).unique().scalar_one()
        )
        assert account.session_key and len(account.session_key) == 24


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        (b"", 400, "invalid_request"),
        (b"not json", 400, "invalid_request"),
        ([], 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"code": ""}, 400, "invalid_request"),
        ({"code": 12}, 400, "invalid_request"),
        ({"code": "x" * 10_240}, 400, "invalid_request"),
        ({"code": "unknown-code"}, 400, "invalid_code"),
    ],
)
def test_mini_program_bad_requests_get_json_errors(app: Flask, payload: object, status: int, error: str) -> None:
    answer = mini_login(app.test_client(), payload)
    assert answer.status_code == status
    assert answer.get_json()["error"] == error
    assert rows(app) == (0, 0)


@pytest.mark.parametrize(
    ("errcode", "status", "error"),
    [
        (40029, 400, "invalid_code"),
        (40163, 400, "code_used"),
        (40226, 403, "code_blocked"),
        (45011, 503, "rate_limited"),
        (-1, 503, "wechat_busy"),
        (40125, 502, "wechat_unavailable"),
    ],
)
def test_mini_program_wechat_errors_get_stable_codes(
    app: Flask, fake_wechat: FakeWeChat, errcode: int, status: int, error: str
) -> None:
    # -1 means WeChat did not process the code: it is tried once more, then reported.
    tries = 2 if errcode == -1 else 1
    fake_wechat.fail_next("jscode2session", errcode, times=tries)
    answer = mini_login(app.test_client(), {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")})
    assert (answer.status_code, answer.get_json()["error"], answer.get_json()["errcode"]) == (status, error, errcode)
    assert ("Retry-After" in answer.headers) == (status == 503)
    assert len(fake_wechat.calls("jscode2session")) == tries
    assert rows(app) == (0, 0)


def test_mini_program_used_code_is_refused(app: Flask, fake_wechat: FakeWeChat) -> None:
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    assert mini_login(app.test_client(), {"code": code}).status_code == 200
    again = mini_login(app.test_client(), {"code": code})
    assert again.status_code == 400 and again.get_json()["error"] == "code_used"


def test_mini_program_bearer_tokens(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_MINIPROGRAM_AUTH="token", **ALL_APPS)
    answer = mini_login(app.test_client(), {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "carol")})
    data = answer.get_json()
    assert data["token_type"] == "Bearer" and data["token"]
    fresh = app.test_client()
    assert fresh.get("/profile", headers={"Authorization": f"Bearer {data['token']}"}).status_code == 200
    assert fresh.get("/profile", headers={"Authorization": f"Bearer {data['token']}x"}).status_code == 302
    assert fresh.get("/profile", headers={"Authorization": "Bearer"}).status_code == 302


def test_mini_program_endpoint_is_404_when_not_configured(
    fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    client = make_app(fake_wechat_server.url, database_uri).test_client()
    assert client.post("/wechat/miniprogram/login", json={"code": "x"}).status_code == 404
    assert client.get("/wechat/qr").status_code == 404


def test_a_person_whose_accounts_were_deleted_gets_their_user_back(app: Flask, fake_wechat: FakeWeChat) -> None:
    phone = browser(app, WECHAT_UA)
    login(phone, user="alice")
    user = profile_user(phone)
    with app.app_context():
        db.session.query(WeChatAccount).delete()
        db.session.commit()
    again = browser(app, DESKTOP_UA)
    trip = login(again, user="alice")
    assert trip.response.status_code == 302
    assert profile_user(again) == user
    assert rows(app) == (1, 1)


def test_a_blocked_user_gets_a_page_that_says_so(app: Flask, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail_next("access_token", 40226, errmsg="code blocked")
    trip = login(browser(app, WECHAT_UA))
    assert trip.response.status_code == 403
    assert "blocked" in trip.response.get_data(as_text=True)


def test_mini_program_login_logs_no_code_or_session_key(
    app: Flask, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    answer = mini_login(app.test_client(), {"code": code})
    mini_login(app.test_client(), {"code": code})  # used: an error path too
    with app.app_context():
        account = (
            db.session.execute(select(WeChatAccount).filter_by(appid=DEMO_MINIPROGRAM_APPID)).unique().scalar_one()
        )
        session_key = account.session_key
    text = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "code_used" in text
    for secret in (code, session_key, DEMO_MINIPROGRAM_SECRET):
        assert secret not in text
        assert secret not in answer.get_data(as_text=True)


def test_a_binding_link_planted_in_another_browser_is_refused(app: Flask, fake_wechat: FakeWeChat) -> None:
    attacker, victim = browser(app, WECHAT_UA), browser(app, WECHAT_UA)
    login(attacker, user="bob")
    victim_user = (login(victim, user="carol"), profile_user(victim))[1]
    state = state_of(attacker.get("/wechat/bind?flow=qr").location)
    code = fake_wechat.issue_code(DEMO_OPEN_APPID, "bob", scope="snsapi_login")
    before = rows(app)
    assert victim.get(f"/wechat/qr/callback?code={code}&state={state}").status_code == 400
    assert rows(app) == before
    assert profile_user(victim) == victim_user
    with app.app_context():
        assert db.session.execute(select(WeChatAccount).filter_by(appid=DEMO_OPEN_APPID)).first() is None


def test_two_users_of_one_person_from_before_binding_still_log_in(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    fake_wechat.apps[DEMO_OPEN_APPID].bound = False
    app = make_app(fake_wechat_server.url, database_uri, **ALL_APPS)
    login(browser(app, DESKTOP_UA), user="alice")  # no unionid yet: its own user
    login(browser(app, WECHAT_UA), user="alice")  # unionid: the second user holds it
    assert rows(app) == (2, 2)
    fake_wechat.apps[DEMO_OPEN_APPID].bound = True  # the site binds its website app later
    again = browser(app, DESKTOP_UA)
    assert login(again, user="alice").response.status_code == 302
    assert profile_user(again)
    assert rows(app) == (2, 2)


def test_a_dead_token_in_one_app_does_not_block_login_through_another(app: Flask, fake_wechat: FakeWeChat) -> None:
    phone = browser(app, WECHAT_UA)
    login(phone, user="alice")
    with app.app_context():
        account = db.session.execute(select(WeChatAccount)).unique().scalar_one()
        account.user.wechat_reauthorization_required = True
        db.session.commit()
    assert phone.get("/profile").status_code == 302
    desktop = browser(app, DESKTOP_UA)
    assert login(desktop, user="alice").response.status_code == 302
    assert profile_user(desktop)
    assert profile_user(phone)


def test_mini_program_login_takes_json_only(app: Flask, fake_wechat: FakeWeChat) -> None:
    code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
    form = app.test_client().post(
        "/wechat/miniprogram/login", data=json.dumps({"code": code}), content_type="text/plain"
    )
    assert form.status_code == 400 and form.get_json()["error"] == "invalid_request"
    assert fake_wechat.calls("jscode2session") == []


def test_bearer_tokens_survive_a_secret_key_rotation(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    old = make_app(fake_wechat_server.url, database_uri, WECHAT_MINIPROGRAM_AUTH="token", **ALL_APPS)
    token = mini_login(
        old.test_client(), {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")}
    ).get_json()["token"]
    rotated = make_app(
        fake_wechat_server.url,
        database_uri,
        SECRET_KEY="a-new-key",
        SECRET_KEY_FALLBACKS=["test-secret-key"],
        WECHAT_MINIPROGRAM_AUTH="token",
        **ALL_APPS,
    )
    assert rotated.test_client().get("/profile", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_failed_logins_send_login_failed_with_the_error(app: Flask, fake_wechat: FakeWeChat) -> None:
    seen: list[tuple[str, int | None]] = []

    def failed(sender: Flask, error: Exception) -> None:
        seen.append((type(error).__name__, getattr(error, "errcode", None)))

    with signals.login_failed.connected_to(failed, app):
        fake_wechat.fail_next("access_token", 40029)
        assert login(app.test_client()).response.status_code == 400
        fake_wechat.fail_next("jscode2session", 40163)
        mini = mini_login(app.test_client(), {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "bob")})
        assert mini.status_code == 400
    assert seen == [("InvalidCodeError", 40029), ("CodeUsedError", 40163)]
