"""A mini program user's phone number through ``POST /wechat/miniprogram/phone``, against the fake WeChat.

Cookie and bearer logins, the code's single use across requests and threads (one WeChat
call, never another user's number), the legacy ``encryptedData``, every errcode the call
can meet, and the number kept out of the store, the logs and the errors.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from examples.app import create_app
from examples.app import db as demo_db
from flask_wechat.serverapi import PhoneNumber
from flask_wechat.testing import FakeWeChat, FakeWeChatServer
from flask_wechat.testing.accounts import DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET, DEMO_OPEN_APPID
from flask_wechat.testing.fake import DEMO_OPEN_SECRET
from flask_wechat.testing.serverapis import phone_info
from flask_wechat.testing.userdata import encrypt_user_data

from . import fake_fixtures
from .apps import WeChatAccount, db, make_app
from .conftest import login
from .private_databases import private_database
from .redis_server import RedisServer, running_redis

clock = fake_fixtures.clock
fake_wechat = fake_fixtures.fake_wechat

MINI = {"WECHAT_MINIPROGRAM_APPID": DEMO_MINIPROGRAM_APPID, "WECHAT_MINIPROGRAM_SECRET": DEMO_MINIPROGRAM_SECRET}
WEBSITE = {"WECHAT_OPEN_APPID": DEMO_OPEN_APPID, "WECHAT_OPEN_SECRET": DEMO_OPEN_SECRET}
#: The fake's made-up numbers (138-0013-8xxx: the range documentation examples use).
ALICE = {"phone_number": "13800138001", "pure_phone_number": "13800138001", "country_code": "86"}
BOB_NUMBER = "13800138002"


@pytest.fixture
def make(fake_wechat_server: FakeWeChatServer, database_uri: str, clock: Any) -> Iterator[Callable[..., Flask]]:
    """Apps with the mini program on the fake (whose clock they share), disposed of after the test."""
    made: list[Flask] = []

    def build(database: str | None = None, **config: Any) -> Flask:
        app = make_app(fake_wechat_server.url, database or database_uri, WECHAT_CLOCK=clock, **{**MINI, **config})
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make: Callable[..., Flask]) -> Flask:
    return make()


def mini_login(client: FlaskClient, fake: FakeWeChat, user: str = "alice") -> dict[str, Any]:
    """Log in as the mini program does (``wx.login()``); the JSON answer (with a token in bearer mode)."""
    answer = client.post("/wechat/miniprogram/login", json={"code": fake.issue_js_code(DEMO_MINIPROGRAM_APPID, user)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    data: dict[str, Any] = answer.get_json()
    return data


def share(client: FlaskClient, payload: object, **headers: str) -> TestResponse:
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post("/wechat/miniprogram/phone", data=body, content_type="application/json", headers=headers)


def phone_code(fake: FakeWeChat, user: str = "alice") -> dict[str, str]:
    return {"code": fake.issue_phone_code(DEMO_MINIPROGRAM_APPID, user)}


def phone_calls(fake: FakeWeChat) -> int:
    return len(fake.calls("phone_number"))


def error_of(answer: TestResponse) -> tuple[int, str, int | None]:
    data = answer.get_json()
    return answer.status_code, data["error"], data.get("errcode")


def account_of(app: Flask, user: str, fake: FakeWeChat) -> WeChatAccount:
    with app.app_context():
        openid = fake.openid_for(DEMO_MINIPROGRAM_APPID, user)
        account: WeChatAccount = (
            db.session.execute(select(WeChatAccount).filter_by(appid=DEMO_MINIPROGRAM_APPID, openid=openid))
            .unique()
            .scalar_one()
        )
        return account


def stored_number(app: Flask, user: str, fake: FakeWeChat) -> PhoneNumber | None:
    """The number as ``wechat.phone_number`` reads it: by querying, or from the accounts already loaded."""
    account = account_of(app, user, fake)
    with app.app_context():
        wechat = app.extensions["test_wechat"]
        number: PhoneNumber | None = wechat.phone_number(account.user)
        assert wechat.phone_number(account.user, wechat.accounts(account.user)) == number
        return number


# -- sharing the number -------------------------------------------------------------------------


def test_the_number_is_answered_and_stored_in_cookie_mode(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    assert stored_number(app, "alice", fake_wechat) is None
    request = phone_code(fake_wechat)
    answer = share(client, request)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == ALICE
    assert isinstance(answer.get_json()["country_code"], str)
    assert answer.headers["Content-Type"] == "application/json"
    [call] = fake_wechat.calls("phone_number")
    assert call.method == "POST" and call.json == request and call.params["access_token"]
    assert stored_number(app, "alice", fake_wechat) == PhoneNumber(**ALICE)
    assert account_of(app, "alice", fake_wechat).phone_updated_at is not None


def test_the_number_is_answered_in_bearer_mode(make: Callable[..., Flask], fake_wechat: FakeWeChat) -> None:
    app = make(WECHAT_MINIPROGRAM_AUTH="token")
    token = mini_login(app.test_client(), fake_wechat, "bob")["token"]
    fresh = app.test_client()
    answer = share(fresh, phone_code(fake_wechat, "bob"), Authorization=f"Bearer {token}")
    assert answer.status_code == 200
    assert answer.get_json() == {"phone_number": BOB_NUMBER, "pure_phone_number": BOB_NUMBER, "country_code": "86"}
    anonymous = share(app.test_client(), phone_code(fake_wechat, "bob"))
    assert error_of(anonymous) == (401, "login_required", None)
    assert phone_calls(fake_wechat) == 1


def test_a_number_outside_china_keeps_its_country_code_as_a_string(app: Flask, fake_wechat: FakeWeChat) -> None:
    fake_wechat.users["carol"] = replace(fake_wechat.users["carol"], phone_number="2025550123", country_code="1")
    client = app.test_client()
    mini_login(client, fake_wechat, "carol")
    answer = share(client, phone_code(fake_wechat, "carol"))
    assert answer.get_json() == {
        "phone_number": "+1 2025550123",
        "pure_phone_number": "2025550123",
        "country_code": "1",
    }
    assert stored_number(app, "carol", fake_wechat) == PhoneNumber("+1 2025550123", "2025550123", "1")


def test_the_number_is_sealed_at_rest_and_rotated_with_the_token_keys(
    make: Callable[..., Flask], fake_wechat: FakeWeChat
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = make(WECHAT_TOKEN_KEYS=[old])
    client = app.test_client()
    mini_login(client, fake_wechat)
    assert share(client, phone_code(fake_wechat)).status_code == 200
    with app.app_context():
        [(number, pure, country)] = db.session.execute(
            text("SELECT phone_number, pure_phone_number, phone_country_code FROM wechat_accounts")
        ).all()
    assert number.startswith("fernet:") and pure.startswith("fernet:") and country == "86"
    assert ALICE["phone_number"] not in number + pure
    assert stored_number(app, "alice", fake_wechat) == PhoneNumber(**ALICE)

    rotated = make(WECHAT_TOKEN_KEYS=[new, old])
    with rotated.app_context():
        assert rotated.extensions["test_wechat"].rotate_token_keys() == 1
    only_new = make(WECHAT_TOKEN_KEYS=[new])
    assert stored_number(only_new, "alice", fake_wechat) == PhoneNumber(**ALICE)
    assert account_of(only_new, "alice", fake_wechat).phone_number != number


# -- a code is used once ------------------------------------------------------------------------


def test_a_repeated_code_is_answered_without_asking_wechat_again(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    request = phone_code(fake_wechat)
    first, again = share(client, request), share(client, request)
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json() == ALICE
    assert phone_calls(fake_wechat) == 1


@pytest.fixture(params=["sqlite", "sqlite+redis", "postgresql", "mariadb"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Where the app keeps its rows and its store: each database (the store in it), or Redis."""
    kind = str(request.param)
    if kind == "sqlite+redis":
        for server in running_redis():
            yield {"WECHAT_STORE_URL": server.url}
        return
    with private_database(kind, tmp_path) as url:
        yield {} if kind == "sqlite" else {"database": url}


def test_two_requests_with_one_code_at_once_make_one_wechat_call(
    shared: dict[str, str], make: Callable[..., Flask], fake_wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make(WECHAT_MINIPROGRAM_AUTH="token", **shared)
    token = mini_login(app.test_client(), fake_wechat)["token"]
    with app.app_context():
        api = app.extensions["test_wechat"].app_api("miniprogram")
    asked = api.phone_number

    def slow(code: str) -> PhoneNumber:
        time.sleep(0.3)  # the other request arrives while WeChat is being asked
        return asked(code)

    monkeypatch.setattr(api, "phone_number", slow)
    request = phone_code(fake_wechat)
    start = threading.Barrier(2)
    answers: list[TestResponse] = []

    def send() -> None:
        client = app.test_client()
        start.wait()
        answers.append(share(client, request, Authorization=f"Bearer {token}"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert [answer.status_code for answer in answers] == [200, 200], [a.get_data(as_text=True) for a in answers]
    assert [answer.get_json() for answer in answers] == [ALICE, ALICE]
    assert phone_calls(fake_wechat) == 1


def test_no_pooled_connection_is_held_while_wechat_is_asked(
    app: Flask, fake_wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    with app.app_context():
        api = app.extensions["test_wechat"].app_api("miniprogram")
    asked = api.phone_number
    held: list[int] = []

    def counted(code: str) -> PhoneNumber:
        held.append(db.engine.pool.checkedout())
        return asked(code)

    monkeypatch.setattr(api, "phone_number", counted)
    assert share(client, phone_code(fake_wechat)).status_code == 200
    assert held == [0]


def test_another_users_replay_of_a_code_is_refused(app: Flask, fake_wechat: FakeWeChat) -> None:
    alice, bob = app.test_client(), app.test_client()
    mini_login(alice, fake_wechat, "alice")
    mini_login(bob, fake_wechat, "bob")
    assert share(bob, phone_code(fake_wechat, "bob")).status_code == 200  # bob has a number of his own
    request = phone_code(fake_wechat, "alice")
    assert share(alice, request).status_code == 200
    stolen = share(bob, request)
    assert error_of(stolen) == (400, "code_used", None)
    assert ALICE["phone_number"] not in stolen.get_data(as_text=True)
    assert phone_calls(fake_wechat) == 2
    assert stored_number(app, "bob", fake_wechat) == PhoneNumber(BOB_NUMBER, BOB_NUMBER, "86")


def test_another_users_replay_is_refused_even_after_a_failure(app: Flask, fake_wechat: FakeWeChat) -> None:
    alice, bob = app.test_client(), app.test_client()
    mini_login(alice, fake_wechat, "alice")
    mini_login(bob, fake_wechat, "bob")
    fake_wechat.fail_next("phone_number", -1, times=2)
    request = phone_code(fake_wechat, "alice")
    assert share(alice, request).status_code == 503
    assert error_of(share(bob, request)) == (400, "code_used", None)
    assert phone_calls(fake_wechat) == 2


# -- who may ask --------------------------------------------------------------------------------


def test_an_anonymous_request_is_401(app: Flask, fake_wechat: FakeWeChat) -> None:
    answer = share(app.test_client(), phone_code(fake_wechat))
    assert error_of(answer) == (401, "login_required", None)
    assert phone_calls(fake_wechat) == 0


def test_a_user_without_a_mini_program_account_is_403(make: Callable[..., Flask], fake_wechat: FakeWeChat) -> None:
    app = make(**WEBSITE)
    client = app.test_client()
    assert login(client, user="alice").response.status_code == 302  # website QR: no mini program account
    answer = share(client, phone_code(fake_wechat))
    assert error_of(answer) == (403, "no_miniprogram_account", None)
    assert phone_calls(fake_wechat) == 0


def test_the_endpoint_is_404_without_a_mini_program(
    fake_wechat_server: FakeWeChatServer, database_uri: str, fake_wechat: FakeWeChat
) -> None:
    app = make_app(fake_wechat_server.url, database_uri)
    assert app.test_client().post("/wechat/miniprogram/phone", json={"code": "x"}).status_code == 404


# -- what is accepted ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        [],
        {},
        {"code": ""},
        {"code": "   "},
        {"code": 12},
        {"code": "x" * 513},
        {"encryptedData": "AAAA"},
        {"iv": "AAAA"},
        {"encryptedData": "", "iv": "AAAA"},
        {"encryptedData": 1, "iv": "AAAA"},
        {"encryptedData": "A" * 4097, "iv": "AAAA"},
        {"encryptedData": "AAAA", "iv": "A" * 65},
    ],
)
def test_malformed_requests_are_400_invalid_request(app: Flask, fake_wechat: FakeWeChat, payload: object) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    assert error_of(share(client, payload)) == (400, "invalid_request", None)
    assert phone_calls(fake_wechat) == 0


def test_a_cross_site_form_cannot_spend_a_code(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    form = client.post("/wechat/miniprogram/phone", data=json.dumps(phone_code(fake_wechat)), content_type="text/plain")
    assert error_of(form) == (400, "invalid_request", None)
    assert phone_calls(fake_wechat) == 0


def test_an_unknown_expired_or_login_code_is_400_invalid_code(
    app: Flask, fake_wechat: FakeWeChat, clock: fake_fixtures.Clock
) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    expired = phone_code(fake_wechat)
    clock.advance(301)
    login_code = {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")}
    for request in ({"code": "not-a-code"}, expired, login_code):
        assert error_of(share(client, request)) == (400, "invalid_code", 40029)
    assert phone_calls(fake_wechat) == 3
    assert stored_number(app, "alice", fake_wechat) is None


# -- the legacy encryptedData -------------------------------------------------------------------


def legacy(fake: FakeWeChat, user: str = "alice") -> dict[str, str]:
    encrypted, iv = fake.encrypted_phone(DEMO_MINIPROGRAM_APPID, user)
    return {"encryptedData": encrypted, "iv": iv}


def test_legacy_encrypted_data_opens_with_the_session_key(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    answer = share(client, legacy(fake_wechat))
    assert answer.status_code == 200 and answer.get_json() == ALICE
    assert stored_number(app, "alice", fake_wechat) == PhoneNumber(**ALICE)
    assert phone_calls(fake_wechat) == 0


def test_legacy_data_sealed_for_another_app_is_400_invalid_data(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    with app.app_context():
        account = account_of(app, "alice", fake_wechat)
        session_key = app.extensions["test_wechat"].runtime.accounts().session_key(account)
    info = phone_info(fake_wechat.users["alice"], "wx0123456789abcdef", time.time())
    encrypted, iv = encrypt_user_data(session_key, info)
    assert error_of(share(client, {"encryptedData": encrypted, "iv": iv})) == (400, "invalid_data", None)
    # The same data for this app opens: the watermark alone was wrong.
    right, iv = encrypt_user_data(session_key, phone_info(fake_wechat.users["alice"], DEMO_MINIPROGRAM_APPID, 0))
    assert share(client, {"encryptedData": right, "iv": iv}).status_code == 200


def test_legacy_data_under_another_session_key_is_400_invalid_data(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    stale = legacy(fake_wechat)
    mini_login(client, fake_wechat)  # a new wx.login: a new session_key
    assert error_of(share(client, stale)) == (400, "invalid_data", None)
    other_key = base64.b64encode(bytes(range(16))).decode()
    foreign, iv = encrypt_user_data(other_key, phone_info(fake_wechat.users["alice"], DEMO_MINIPROGRAM_APPID, 0))
    assert error_of(share(client, {"encryptedData": foreign, "iv": iv})) == (400, "invalid_data", None)
    assert error_of(share(client, {"encryptedData": "not base64!", "iv": "AAAA"})) == (400, "invalid_data", None)
    assert stored_number(app, "alice", fake_wechat) is None
    assert share(client, legacy(fake_wechat)).status_code == 200


def test_legacy_data_without_a_stored_session_key_is_400_invalid_data(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    request = legacy(fake_wechat)
    with app.app_context():
        db.session.execute(text("UPDATE wechat_accounts SET session_key = NULL"))
        db.session.commit()
    assert error_of(share(client, request)) == (400, "invalid_data", None)


# -- WeChat's errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "times", "status", "error"),
    [
        (40029, 1, 400, "invalid_code"),
        (40163, 1, 400, "code_used"),
        (-1, 2, 503, "wechat_busy"),  # -1: WeChat did not process the code: sent once more, then reported
        (45011, 1, 503, "rate_limited"),
        (40001, 2, 502, "wechat_unavailable"),  # a refused token is replaced once, then reported
        (42001, 2, 502, "wechat_unavailable"),
        (40014, 2, 502, "wechat_unavailable"),
        (47001, 1, 502, "wechat_unavailable"),
        (40013, 1, 502, "wechat_unavailable"),
    ],
)
def test_wechat_errors_get_stable_codes(
    app: Flask, fake_wechat: FakeWeChat, errcode: int, times: int, status: int, error: str
) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    errmsg = "invalid access_token" if errcode == 40014 else None
    fake_wechat.fail_next("phone_number", errcode, errmsg=errmsg, times=times)
    answer = share(client, phone_code(fake_wechat))
    assert error_of(answer) == (status, error, errcode)
    assert ("Retry-After" in answer.headers) == (status == 503)
    assert answer.headers["Cache-Control"] == "no-store"
    assert phone_calls(fake_wechat) == times
    assert stored_number(app, "alice", fake_wechat) is None


def test_one_busy_answer_is_retried_and_succeeds(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    fake_wechat.fail_next("phone_number", -1)
    assert share(client, phone_code(fake_wechat)).get_json() == ALICE
    assert phone_calls(fake_wechat) == 2


def test_a_code_wechat_did_not_process_may_be_sent_again(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    request = phone_code(fake_wechat)
    fake_wechat.fail_next("phone_number", 45011)
    busy = share(client, request)
    assert error_of(busy) == (503, "rate_limited", 45011) and busy.headers["Retry-After"]
    again = share(client, request)  # as Retry-After says
    assert again.status_code == 200 and again.get_json() == ALICE
    assert phone_calls(fake_wechat) == 2


def test_a_code_wechat_refused_is_answered_again_without_asking(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    request = phone_code(fake_wechat)
    fake_wechat.fail_next("phone_number", 40029)
    assert error_of(share(client, request)) == (400, "invalid_code", 40029)
    assert error_of(share(client, request)) == (400, "invalid_code", 40029)
    assert phone_calls(fake_wechat) == 1


def test_a_revoked_app_token_is_refreshed_once(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    assert share(client, phone_code(fake_wechat)).status_code == 200
    assert len(fake_wechat.calls("stable_token")) == 1
    fake_wechat.revoke_app_tokens()
    answer = share(client, phone_code(fake_wechat))
    assert answer.status_code == 200 and answer.get_json() == ALICE
    assert len(fake_wechat.calls("stable_token")) == 2
    assert phone_calls(fake_wechat) == 3
    first, second = fake_wechat.calls("phone_number")[1:]
    assert first.params["access_token"] != second.params["access_token"]


def test_an_ip_off_the_whitelist_is_502_and_logged_with_the_ip(
    app: Flask, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    mini_login(client, fake_wechat)
    fake_wechat.refuse_ip("203.0.113.9")
    with caplog.at_level(logging.WARNING):
        answer = share(client, phone_code(fake_wechat))
    assert error_of(answer) == (502, "wechat_unavailable", 40164)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("203.0.113.9" in message and "whitelist" in message for message in errors), errors
    assert phone_calls(fake_wechat) == 0


def test_a_wrong_app_secret_is_502(make: Callable[..., Flask], fake_wechat: FakeWeChat) -> None:
    token = mini_login(make(WECHAT_MINIPROGRAM_AUTH="token").test_client(), fake_wechat)["token"]
    wrong = make(WECHAT_MINIPROGRAM_AUTH="token", WECHAT_MINIPROGRAM_SECRET="0123456789abcdef0123456789abcdef")
    answer = share(wrong.test_client(), phone_code(fake_wechat), Authorization=f"Bearer {token}")
    status, error, errcode = error_of(answer)
    assert (status, error) == (502, "wechat_unavailable") and errcode in (40001, 40125)
    assert phone_calls(fake_wechat) == 0


# -- outages and what stays private --------------------------------------------------------------


def test_a_store_outage_is_503_and_heals(
    make: Callable[..., Flask], fake_wechat: FakeWeChat, redis_server: RedisServer
) -> None:
    app = make(WECHAT_STORE_URL=redis_server.url)
    client = app.test_client()
    mini_login(client, fake_wechat)
    request = phone_code(fake_wechat)
    redis_server.stop()
    answer = share(client, request)
    assert error_of(answer) == (503, "unavailable", None) and answer.headers["Retry-After"]
    assert phone_calls(fake_wechat) == 0
    redis_server.start()
    assert share(client, request).get_json() == ALICE


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


def test_the_number_stays_out_of_logs_store_and_errors(
    make: Callable[..., Flask], fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make()
    alice, bob = app.test_client(), app.test_client()
    mini_login(alice, fake_wechat, "alice")
    mini_login(bob, fake_wechat, "bob")
    request = phone_code(fake_wechat)
    answers = [share(alice, request), share(alice, request), share(bob, request), share(alice, legacy(fake_wechat))]
    fake_wechat.fail_next("phone_number", 40029)
    answers.append(share(alice, phone_code(fake_wechat)))
    assert [answer.status_code for answer in answers] == [200, 200, 400, 200, 400]
    with app.app_context():
        rows = db.session.execute(text("SELECT key, value FROM wechat_store")).all()
    assert rows, "nothing in the store: the check below would be vacuous"
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "shared their phone number" in logged
    for secret in (ALICE["phone_number"], request["code"]):
        assert secret not in logged
        assert all(secret not in key + value for key, value in rows)
    for answer in answers[2:3] + answers[4:]:
        assert ALICE["phone_number"] not in answer.get_data(as_text=True)


# -- the demo shows it --------------------------------------------------------------------------


def test_the_demo_profile_shows_the_shared_number_in_both_languages(tmp_path: Path) -> None:
    demo = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}"})
    fake: FakeWeChat = demo.extensions["wechat_fake"]
    try:
        client = demo.test_client()
        mini_login(client, fake, "bob")
        before = client.get("/profile", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert 'id="phone"' not in before and BOB_NUMBER not in before
        assert share(client, phone_code(fake, "bob")).status_code == 200
        english = client.get("/profile", headers={"Accept-Language": "en"}).get_data(as_text=True)
        chinese = client.get("/profile", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
        assert 'id="phone"' in english and BOB_NUMBER in english and "Phone number" in english
        assert 'id="phone"' in chinese and BOB_NUMBER in chinese and "手机号" in chinese
    finally:
        with demo.app_context():
            demo_db.session.remove()
            demo_db.engine.dispose()
