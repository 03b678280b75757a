"""Every bad input a browser or WeChat can send gets a clear page, no 5xx, and no user."""

from __future__ import annotations

import re
import socket
from urllib.parse import quote, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_wechat.testing.fake import DEMO_APPID, DEMO_SECRET, FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import User, WeChatAccount, db, make_app
from .conftest import login, visit_wechat


def rows(app: Flask) -> tuple[int, int]:
    with app.app_context():
        users = db.session.execute(select(func.count()).select_from(User)).scalar_one()
        accounts = db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one()
    return users, accounts


def start(client: FlaskClient, next_url: str = "/profile") -> str:
    """Begin a login and return the state the app minted."""
    response = client.get(f"/wechat/login?next={next_url}")
    assert response.status_code == 302
    return re.search(r"state=([A-Za-z0-9]+)", response.location).group(1)


def test_denial_without_redirect_leaves_the_user_on_wechat(app: Flask, client: FlaskClient) -> None:
    client.get("/profile")
    authorize_url = client.get("/wechat/login?next=/profile").location
    answer = visit_wechat(authorize_url, action="deny")
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert rows(app) == (0, 0)


def test_denial_with_state_only_redirect_shows_the_friendly_page(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.deny_mode = "redirect"
    trip = login(client, action="deny")
    assert "code=" not in trip.callback_url
    assert trip.response.status_code == 403
    assert "did not authorize" in trip.response.get_data(as_text=True)
    assert rows(app) == (0, 0)
    assert fake_wechat.requests == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "code=abc",
        "code=abc&state=",
        "code=abc&state=unknownstate123",
        "code=abc&state=" + "A" * 129,
        "code=abc&state=%00%ff",
        "code=" + "x" * 10_000 + "&state=" + "y" * 10_000,
        "state=abc&state=def&code=1&code=2",
    ],
)
def test_callback_without_a_known_state_is_refused(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, query: str
) -> None:
    start(client)
    response = client.get(f"/wechat/callback?{query}")
    assert response.status_code == 400
    assert "expired or was not started here" in response.get_data(as_text=True)
    assert fake_wechat.requests == []
    assert rows(app) == (0, 0)


def is_authorize_redirect(response: object) -> bool:
    return response.status_code == 302 and "/connect/oauth2/authorize?" in response.location  # type: ignore[attr-defined]


def test_state_from_another_browser_starts_a_login_of_its_own(app: Flask, fake_wechat: FakeWeChat) -> None:
    victim, attacker = app.test_client(), app.test_client()
    start(victim)
    state = start(attacker)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    response = victim.get(f"/wechat/callback?code={code}&state={state}")
    assert is_authorize_redirect(response) and f"state={state}" not in response.location
    assert fake_wechat.requests == []
    assert rows(app) == (0, 0)


def test_state_without_the_session_that_started_it_is_never_used(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    state = start(client)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    client.delete_cookie("session")
    response = client.get(f"/wechat/callback?code={code}&state={state}")
    assert is_authorize_redirect(response)
    assert fake_wechat.requests == []


def finish_restarted(client: FlaskClient, fake_wechat: FakeWeChat, restart_url: str, user: str = "alice") -> str:
    """Complete a restarted login as ``user``; where the browser lands."""
    new_state = re.search(r"state=([A-Za-z0-9]+)", restart_url).group(1)  # type: ignore[union-attr]
    code = fake_wechat.issue_code(DEMO_APPID, user)
    landing = client.get(f"/wechat/callback?code={code}&state={new_state}")
    assert landing.status_code == 302
    return landing.location


def test_lost_cookie_starts_again_and_lands_at_next(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    state = start(client, quote("/profile?tab=orders", safe=""))
    client.delete_cookie("session")
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    restart = client.get(f"/wechat/callback?code={code}&state={state}")
    assert is_authorize_redirect(restart)
    assert finish_restarted(client, fake_wechat, restart.location) == "/profile?tab=orders"
    assert client.get("/profile").status_code == 200
    assert rows(app) == (1, 1)
    assert len(fake_wechat.calls("access_token")) == 1  # the first code was never used


def test_lost_cookie_keeps_a_long_next_through_the_shared_store(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    long_next = "/profile?" + "&".join(f"k{i}=v{i}" for i in range(30))
    state = start(client, quote(long_next, safe=""))
    assert len(state) <= 128
    client.delete_cookie("session")
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    restart = client.get(f"/wechat/callback?code={code}&state={state}")
    assert finish_restarted(client, fake_wechat, restart.location) == long_next


def test_tampered_state_is_refused(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    state = start(client)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    flipped = f"{(int(state[30], 16) + 1) % 16:x}"
    tampered = state[:30] + flipped + state[31:]
    assert client.get(f"/wechat/callback?code={code}&state={tampered}").status_code == 400
    assert rows(app) == (0, 0)


def test_double_callback_lands_logged_in_without_calling_wechat_again(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    trip = login(client)
    parts = urlsplit(trip.callback_url)
    again = client.get(f"{parts.path}?{parts.query}")
    assert again.status_code == 302 and again.location == "/profile"
    assert client.get("/profile").status_code == 200
    assert len(fake_wechat.calls("access_token")) == 1
    assert rows(app) == (1, 1)


def test_double_callback_after_an_aborted_first_answer(app: Flask, fake_wechat: FakeWeChat) -> None:
    # The first response never reached the browser: it still has its old cookie.
    client = app.test_client()
    state = start(client)
    with client.session_transaction() as before:
        saved = dict(before)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    assert client.get(f"/wechat/callback?code={code}&state={state}").status_code == 302
    with client.session_transaction() as sess:
        sess.clear()
        sess.update(saved)
    again = client.get(f"/wechat/callback?code={code}&state={state}")
    assert again.status_code == 302 and again.location == "/profile"
    assert client.get("/profile").status_code == 200
    assert len(fake_wechat.calls("access_token")) == 1


def test_used_state_after_logout_starts_a_new_login(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    state = start(client)
    first = fake_wechat.issue_code(DEMO_APPID, "alice")
    assert client.get(f"/wechat/callback?code={first}&state={state}").status_code == 302
    with client.session_transaction() as sess:
        token = sess["_wechat_csrf"] = "t" * 32
    assert client.post("/wechat/logout", data={"wechat_csrf": token}).status_code == 302
    second = fake_wechat.issue_code(DEMO_APPID, "bob")
    assert is_authorize_redirect(client.get(f"/wechat/callback?code={second}&state={state}"))
    assert client.get("/profile").status_code == 302
    assert len(fake_wechat.calls("access_token")) == 1


def test_failed_first_hit_is_replayed_not_retried(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail_next("access_token", 40029)
    trip = login(client)
    assert trip.response.status_code == 400
    parts = urlsplit(trip.callback_url)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 400
    assert len(fake_wechat.calls("access_token")) == 1


def test_used_code_gets_a_page_not_a_crash(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer
) -> None:
    state = start(client)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    requests.get(
        f"{fake_wechat_server.url}/sns/oauth2/access_token",
        params={"appid": DEMO_APPID, "secret": DEMO_SECRET, "code": code, "grant_type": "authorization_code"},
        timeout=5,
    )
    response = client.get(f"/wechat/callback?code={code}&state={state}")
    assert response.status_code == 400
    assert "already used or has expired" in response.get_data(as_text=True)
    assert rows(app) == (0, 0)


@pytest.mark.parametrize(
    ("errcode", "status"),
    [
        (40029, 400),
        (40163, 400),
        (41008, 400),
        (40013, 502),
        (40125, 502),
        (40001, 502),
        (45011, 503),
        (12345, 502),
    ],
)
def test_token_errcodes_get_pages_and_are_never_retried(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, errcode: int, status: int
) -> None:
    fake_wechat.fail_next("access_token", errcode, errmsg="an errcode nobody documented" if errcode == 12345 else None)
    trip = login(client)
    assert trip.response.status_code == status
    assert ("Retry-After" in trip.response.headers) == (status == 503)
    assert len(fake_wechat.calls("access_token")) == 1
    assert rows(app) == (0, 0)


def test_errcode_minus_one_on_the_code_exchange_is_tried_once_more(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail_next("access_token", -1)
    trip = login(client)
    assert trip.response.status_code == 302 and client.get("/profile").status_code == 200
    assert len(fake_wechat.calls("access_token")) == 2


def test_errcode_minus_one_twice_is_a_busy_page_to_try_later(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail_next("access_token", -1, times=2)
    trip = login(client)
    assert trip.response.status_code == 503 and trip.response.headers["Retry-After"].isdigit()
    assert len(fake_wechat.calls("access_token")) == 2
    assert rows(app) == (0, 0)


def test_authdeny_code_is_a_denial(app: Flask, client: FlaskClient, fake_wechat: FakeWeChat) -> None:
    state = start(client)
    response = client.get(f"/wechat/callback?code=authdeny&state={state}")
    assert response.status_code == 403 and "did not authorize" in response.get_data(as_text=True)
    assert fake_wechat.requests == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<html>bad gateway</html>", 502),
        (b"not json", 200),
        (b'{"access_token":', 200),
        (b"[]", 200),
        (b'{"openid":"x"}', 200),
    ],
)
def test_malformed_token_answers_get_a_page(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, body: bytes, status: int
) -> None:
    fake_wechat.break_next("access_token", body, status=status)
    trip = login(client)
    assert trip.response.status_code == 502
    assert "try again" in trip.response.get_data(as_text=True)
    assert rows(app) == (0, 0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_wechat_gets_a_page(
    fake_wechat_server: FakeWeChatServer, database_uri: str, fake_wechat: FakeWeChat
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_API_BASE_URL=f"http://127.0.0.1:{_closed_port()}")
    client = app.test_client()
    state = start(client)
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    response = client.get(f"/wechat/callback?code={code}&state={state}")
    assert response.status_code == 502
    assert rows(app) == (0, 0)


def test_slow_wechat_times_out_into_a_page(database_uri: str, fake_wechat: FakeWeChat) -> None:
    with FakeWeChatServer(fake_wechat, request_latency=1.0).start() as slow:
        app = make_app(slow.url, database_uri, WECHAT_READ_TIMEOUT=0.2)
        client = app.test_client()
        state = start(client)
        code = fake_wechat.issue_code(DEMO_APPID, "alice")
        response = client.get(f"/wechat/callback?code={code}&state={state}")
    assert response.status_code == 502
    assert rows(app) == (0, 0)


@pytest.mark.parametrize(
    "hostile",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "/\tevil",
        "%0d%0aSet-Cookie:x=1",
        "profile",
        "/" + "a" * 5000,
    ],
)
def test_next_is_only_ever_a_same_site_path(app: Flask, client: FlaskClient, hostile: str) -> None:
    from urllib.parse import quote

    response = client.get("/wechat/login?next=" + quote(hostile, safe=""))
    assert response.status_code == 302
    trip = login(client, start="/wechat/login?next=" + quote(hostile, safe=""))
    assert trip.response.status_code == 302
    assert trip.response.location == "/"


def test_safe_next_keeps_query_of_a_same_site_path() -> None:
    from flask_wechat.views import safe_next_url

    assert safe_next_url("/orders?id=5&tab=%E4%B8%AD", "/") == "/orders?id=5&tab=%E4%B8%AD"
    assert safe_next_url(None, "/home") == "/home"


def test_many_abandoned_logins_keep_the_cookie_small_and_the_last_tabs_working(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    states = [start(client) for _ in range(200)]
    cookie = client.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 1500
    for state in states[-3:]:
        code = fake_wechat.issue_code(DEMO_APPID, "alice")
        assert client.get(f"/wechat/callback?code={code}&state={state}").status_code == 302
    assert rows(app) == (1, 1)


def test_state_older_than_its_lifetime_is_refused(
    fake_wechat_server: FakeWeChatServer, database_uri: str, fake_wechat: FakeWeChat
) -> None:
    import time

    app = make_app(fake_wechat_server.url, database_uri, WECHAT_STATE_LIFETIME=60)
    client = app.test_client()
    state = start(client)
    with app.app_context():
        app.extensions["wechat"].runtime.states.clock = lambda: time.time() + 61
    code = fake_wechat.issue_code(DEMO_APPID, "alice")
    assert client.get(f"/wechat/callback?code={code}&state={state}").status_code == 400
    assert rows(app) == (0, 0)
