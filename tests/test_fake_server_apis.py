"""The fake WeChat's server APIs on the app access token, over real loopback HTTP.

App tokens (``/cgi-bin/token`` and ``/cgi-bin/stable_token``: rotation, overlap, force
refresh limits, the IP whitelist), the mini program phone number (new code and legacy
``encryptedData``), follower info, the JS-SDK ticket with the fake's ``jweixin`` script,
the mini program simulator page and the control endpoints that drive all of it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import threading
from typing import Any

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from flask_wechat import errors, protocol, serverapi
from flask_wechat.testing import (
    DEFAULT_USERS,
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
    ENDPOINT_PATHS,
    FakeApp,
    FakeUser,
    FakeWeChat,
    FakeWeChatServer,
)
from flask_wechat.testing.userdata import encrypt_user_data
from flask_wechat.testing.wire import ERRMSGS

from . import fake_fixtures
from .fake_fixtures import Clock
from .test_fake import RID, assert_error, body

# The shared fixtures, assigned rather than imported (see tests/fake_fixtures.py).
clock, fake_wechat, base, http = fake_fixtures.clock, fake_fixtures.fake_wechat, fake_fixtures.base, fake_fixtures.http

JSON_TYPE = "application/json; encoding=utf-8"
APP_TOKEN = re.compile(r"86_[A-Za-z0-9_-]{140}")
STABLE_HINT = ", could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r"
PAGE = "https://app.example.com/page?x=1"
NONCE = "Wm3WZYTPz0wzccnW"
JWEIXIN = "/open/js/jweixin-1.6.0.js"
OTHER_MINIPROGRAM = FakeApp("wx4444444444444444", "s4", name="Other Mini Program", kind="miniprogram")
UNBOUND_OA = FakeApp("wx5555555555555555", "s5", bound=False, name="Unbound OA")


def app_token(
    http: requests.Session, base: str, appid: str = DEMO_APPID, secret: str = DEMO_SECRET
) -> requests.Response:
    response = http.get(base + serverapi.APP_TOKEN_PATH, params=serverapi.app_token_query(appid, secret))
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON_TYPE
    return response


def token_of(http: requests.Session, base: str, appid: str = DEMO_APPID, secret: str = DEMO_SECRET) -> str:
    value: str = body(app_token(http, base, appid, secret))["access_token"]
    return value


def stable(
    http: requests.Session, base: str, appid: str = DEMO_APPID, secret: str = DEMO_SECRET, *, force: bool = False
) -> dict[str, Any]:
    body_ = serverapi.stable_token_body(appid, secret, force_refresh=force)
    response = http.post(base + serverapi.STABLE_TOKEN_PATH, json=body_)
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON_TYPE
    return body(response)


def api(http: requests.Session, base: str, path: str, token: str | None, **params: str) -> dict[str, Any]:
    query = params if token is None else {"access_token": token, **params}
    response = http.get(base + path, params=query)
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON_TYPE
    return body(response)


def ticket(http: requests.Session, base: str, token: str, ticket_type: str = "jsapi") -> dict[str, Any]:
    return api(http, base, serverapi.JSAPI_TICKET_PATH, token, type=ticket_type)


def works(http: requests.Session, base: str, token: str) -> bool:
    """Whether an Official Account token is accepted (getticket answers errcode 0)."""
    return bool(ticket(http, base, token)["errcode"] == 0)


def phone(
    http: requests.Session, base: str, token: str, payload: Any = None, *, data: Any = None, **params: str
) -> dict[str, Any]:
    response = http.post(
        base + serverapi.PHONE_NUMBER_PATH, params={"access_token": token, **params}, json=payload, data=data
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON_TYPE
    return body(response)


def mp_token(http: requests.Session, base: str) -> str:
    return token_of(http, base, DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET)


def user_info(http: requests.Session, base: str, token: str, openid: str) -> dict[str, Any]:
    return api(http, base, serverapi.USER_INFO_PATH, token, openid=openid, lang="zh_CN")


# -- /cgi-bin/token -------------------------------------------------------------------------------


def test_app_token_success_is_wechat_shaped(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    response = app_token(http, base)
    data = body(response)
    assert list(data) == ["access_token", "expires_in"]  # no errcode on success
    assert APP_TOKEN.fullmatch(data["access_token"]) and data["expires_in"] == 7200
    assert serverapi.AppToken.from_response(data, serverapi.APP_TOKEN_PATH).expires_in == 7200
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == fake_wechat.app_tokens_issued(DEMO_APPID, "token") == 1
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "stable") == 0


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({}, 41004),
        ({"grant_type": "client_credential", "appid": DEMO_APPID}, 41004),
        ({"grant_type": "client_credential", "secret": DEMO_SECRET}, 41002),
        ({"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": DEMO_SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": DEMO_APPID, "secret": "wrong"}, 40001),
        ({"grant_type": "client_credential", "appid": DEMO_APPID, "secret": DEMO_OPEN_SECRET}, 40001),
        ({"grant_type": "authorization_code", "appid": DEMO_APPID, "secret": DEMO_SECRET}, 40002),
        ({"appid": DEMO_APPID, "secret": DEMO_SECRET}, 40002),
    ],
)
def test_app_token_errors_in_order(
    fake_wechat: FakeWeChat, http: requests.Session, base: str, params: dict[str, str], errcode: int
) -> None:
    response = http.get(base + serverapi.APP_TOKEN_PATH, params=params)
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON_TYPE
    assert_error(body(response), errcode)
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 0


def test_app_token_wants_get(http: requests.Session, base: str) -> None:
    response = http.post(base + serverapi.APP_TOKEN_PATH, params=serverapi.app_token_query(DEMO_APPID, DEMO_SECRET))
    assert re.fullmatch(rf'\{{"errcode":43001,"errmsg":"require GET method, {RID}"\}}', response.text)


def test_each_call_mints_a_new_token_and_the_previous_lives_five_more_minutes(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    first, second = token_of(http, base), token_of(http, base)
    assert first != second and fake_wechat.app_tokens_issued(DEMO_APPID, "token") == 2
    fake_wechat.advance(299)
    assert works(http, base, first) and works(http, base, second)
    fake_wechat.advance(1)
    stale = ticket(http, base, first)
    assert_error(stale, 40001)
    assert stale["errmsg"].startswith(ERRMSGS[40001] + STABLE_HINT + ", rid: ")
    assert works(http, base, second)
    assert fake_wechat.stale_token_calls == 1


def test_the_overlap_never_outlives_the_old_tokens_own_expiry(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    old = token_of(http, base)
    fake_wechat.advance(7000)
    new = token_of(http, base)
    fake_wechat.advance(199)
    assert works(http, base, old)
    fake_wechat.advance(1)  # 7200 s after it was issued: expired, though within five minutes of the new token
    assert_error(ticket(http, base, old), 42001)
    assert works(http, base, new)


def test_app_token_natural_expiry_is_42001(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    fake_wechat.advance(7199)
    assert works(http, base, token)
    fake_wechat.advance(1)
    assert_error(ticket(http, base, token), 42001)
    assert fake_wechat.stale_token_calls == 1


def test_token_quota_per_fake_day(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    assert fake_wechat.token_quota is None
    fake_wechat.token_quota = 2
    token_of(http, base)
    token_of(http, base)
    refused = body(app_token(http, base))
    assert_error(refused, 45009)
    assert refused["errmsg"].startswith("reach max api daily quota limit" + STABLE_HINT + ", rid: ")
    assert "access_token" in body(app_token(http, base, DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET))  # per app
    fake_wechat.advance(86400)
    assert "access_token" in body(app_token(http, base))
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 3
    with pytest.raises(ValueError, match="token_quota"):
        fake_wechat.token_quota = -1


# -- /cgi-bin/stable_token ------------------------------------------------------------------------


def test_stable_token_is_the_same_with_what_is_left(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    first = stable(http, base)
    assert list(first) == ["access_token", "expires_in"] and APP_TOKEN.fullmatch(first["access_token"])
    assert first["expires_in"] == 7200
    fake_wechat.advance(1000)
    again = stable(http, base)
    assert again == {"access_token": first["access_token"], "expires_in": 6200}
    assert isinstance(again["expires_in"], int)
    fake_wechat.advance(5899)
    assert stable(http, base) == {"access_token": first["access_token"], "expires_in": 301}
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "stable") == 1


def test_stable_token_rotates_in_its_last_five_minutes(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    first = stable(http, base)["access_token"]
    fake_wechat.advance(6900)  # 300 s left: not more than 300
    rotated = stable(http, base)
    assert rotated["access_token"] != first and rotated["expires_in"] == 7200
    assert stable(http, base)["access_token"] == rotated["access_token"]
    fake_wechat.advance(299)
    assert works(http, base, first) and works(http, base, rotated["access_token"])  # the old lives out its time
    fake_wechat.advance(1)
    assert_error(ticket(http, base, first), 42001)
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "stable") == 2 and fake_wechat.force_refreshes(DEMO_APPID) == 0


def test_force_refresh_replaces_at_once_and_waits_thirty_seconds(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    first = stable(http, base)["access_token"]
    forced = stable(http, base, force=True)
    assert forced["access_token"] != first and forced["expires_in"] == 7200
    assert_error(ticket(http, base, first), 40001)  # invalidated at once
    fake_wechat.advance(29)
    assert stable(http, base, force=True) == {"access_token": forced["access_token"], "expires_in": 7171}
    fake_wechat.advance(1)
    third = stable(http, base, force=True)["access_token"]
    assert third not in (first, forced["access_token"])
    assert_error(ticket(http, base, forced["access_token"]), 40001)
    assert works(http, base, third)
    assert fake_wechat.force_refreshes(DEMO_APPID) == 2 and fake_wechat.app_tokens_issued(DEMO_APPID, "stable") == 3
    assert fake_wechat.stale_token_calls == 2


def test_the_21st_force_refresh_of_a_day_is_45009(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    tokens = set()
    for _ in range(20):
        tokens.add(stable(http, base, force=True)["access_token"])
        fake_wechat.advance(30)
    assert len(tokens) == 20 and fake_wechat.force_refreshes(DEMO_APPID) == 20
    assert_error(stable(http, base, force=True), 45009)
    assert stable(http, base)["access_token"] in tokens  # normal mode still answers
    assert stable(http, base, DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET, force=True)["expires_in"] == 7200
    fake_wechat.advance(86400)
    assert stable(http, base, force=True)["access_token"] not in tokens
    assert fake_wechat.force_refreshes(DEMO_APPID) == 21


@pytest.mark.parametrize(
    ("payload", "errcode"),
    [
        ({}, 41002),
        ({"grant_type": "client_credential", "secret": DEMO_SECRET}, 41002),
        ({"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": DEMO_SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": DEMO_APPID}, 41004),
        ({"grant_type": "client_credential", "appid": DEMO_APPID, "secret": "wrong"}, 40125),
        ({"grant_type": "authorization_code", "appid": DEMO_APPID, "secret": DEMO_SECRET}, 40002),
        ({"grant_type": "client_credential", "appid": DEMO_APPID, "secret": DEMO_SECRET, "force_refresh": "1"}, 47001),
        ({"grant_type": "client_credential", "appid": 123, "secret": DEMO_SECRET}, 47001),
        ([DEMO_APPID, DEMO_SECRET], 47001),
    ],
)
def test_stable_token_errors(
    fake_wechat: FakeWeChat, http: requests.Session, base: str, payload: Any, errcode: int
) -> None:
    response = http.post(base + serverapi.STABLE_TOKEN_PATH, json=payload)
    assert response.headers["Content-Type"] == JSON_TYPE
    assert_error(body(response), errcode)
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 0


def test_stable_token_is_post_json_only(http: requests.Session, base: str) -> None:
    fields = serverapi.stable_token_body(DEMO_APPID, DEMO_SECRET)
    assert_error(body(http.post(base + serverapi.STABLE_TOKEN_PATH, data=fields)), 47001)  # a form
    assert_error(body(http.post(base + serverapi.STABLE_TOKEN_PATH, data=b"{not json")), 47001)
    assert_error(body(http.get(base + serverapi.STABLE_TOKEN_PATH, params=fields)), 43002)
    assert body(http.get(base + serverapi.STABLE_TOKEN_PATH))["errmsg"].startswith("require POST method, rid: ")
    # Any Content-Type: WeChat reads the body as JSON.
    sent = http.post(
        base + serverapi.STABLE_TOKEN_PATH, data=json.dumps(fields), headers={"Content-Type": "text/plain"}
    )
    assert "access_token" in body(sent)


def test_the_two_families_are_independent(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    steady, plain = stable(http, base)["access_token"], token_of(http, base)
    token_of(http, base)
    token_of(http, base)
    fake_wechat.advance(300)
    assert works(http, base, steady)  # new /cgi-bin/token tokens do not touch the stable one
    assert_error(ticket(http, base, plain), 40001)
    latest = token_of(http, base)
    stable(http, base, force=True)
    assert works(http, base, latest)  # a forced stable token does not touch /cgi-bin/token's
    assert stable(http, base)["access_token"] != steady
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "token") == 4
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "stable") == 2
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 6
    with pytest.raises(ValueError, match="family"):
        fake_wechat.app_tokens_issued(DEMO_APPID, "other")  # type: ignore[arg-type]


def test_concurrent_token_calls(fake_wechat: FakeWeChat, base: str) -> None:
    minted: list[str] = []
    steady: list[str] = []

    def run() -> None:
        with requests.Session() as session:
            minted.append(token_of(session, base))
            steady.append(stable(session, base)["access_token"])

    threads = [threading.Thread(target=run) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(minted)) == 12 and len(set(steady)) == 1
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "token") == 12
    assert fake_wechat.app_tokens_issued(DEMO_APPID, "stable") == 1


# -- token checks on the APIs ---------------------------------------------------------------------


def test_token_checks(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    assert_error(api(http, base, serverapi.JSAPI_TICKET_PATH, None, type="jsapi"), 41001)
    assert_error(ticket(http, base, "86_" + "x" * 140), 40001)
    assert fake_wechat.stale_token_calls == 0  # never issued: not a stale token
    token, steady = token_of(http, base), stable(http, base)["access_token"]
    fake_wechat.expire_app_tokens()
    assert_error(ticket(http, base, token), 42001)
    assert_error(ticket(http, base, steady), 42001)
    renewed = stable(http, base)["access_token"]  # the dead stable token is replaced
    assert renewed != steady and works(http, base, renewed) and works(http, base, token_of(http, base))
    fake_wechat.revoke_app_tokens()
    assert_error(ticket(http, base, renewed), 40001)
    assert works(http, base, stable(http, base)["access_token"])
    assert fake_wechat.stale_token_calls == 3


def test_a_token_in_the_body_or_a_header_is_not_read(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = mp_token(http, base)
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    response = http.post(
        base + serverapi.PHONE_NUMBER_PATH,
        json={"code": code, "access_token": token},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(body(response), 41001)
    assert phone(http, base, token, {"code": code})["errcode"] == 0  # the refusal did not use the code up


def test_another_kind_of_apps_token_is_48001(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    program, official = mp_token(http, base), token_of(http, base)
    assert_error(user_info(http, base, program, fake_wechat.openid_for(DEMO_APPID, "alice")), 48001)
    assert_error(ticket(http, base, program), 48001)
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    assert_error(phone(http, base, official, {"code": code}), 48001)
    website = token_of(http, base, DEMO_OPEN_APPID, DEMO_OPEN_SECRET)
    assert_error(ticket(http, base, website), 48001)
    assert fake_wechat.stale_token_calls == 0


# -- /wxa/business/getuserphonenumber -------------------------------------------------------------


def test_phone_number_success(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    assert re.fullmatch(r"[0-9a-f]{64}", code)
    data = phone(http, base, mp_token(http, base), {"code": code})
    assert data == {
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": "13800138001",
            "purePhoneNumber": "13800138001",
            "countryCode": "86",
            "watermark": {"timestamp": int(fake_wechat.now()), "appid": DEMO_MINIPROGRAM_APPID},
        },
    }
    assert isinstance(data["phone_info"]["countryCode"], str)
    number = serverapi.PhoneNumber.from_response(data)
    assert (number.phone_number, number.country_code) == ("13800138001", "86")


def test_phone_code_is_single_use_and_lives_five_minutes(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = mp_token(http, base)
    fresh, stale = (fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, user) for user in ("bob", "carol"))
    fake_wechat.advance(299)
    assert phone(http, base, token, {"code": fresh})["phone_info"]["purePhoneNumber"] == "13800138002"
    assert_error(phone(http, base, token, {"code": fresh}), 40029)
    fake_wechat.advance(1)
    assert_error(phone(http, base, token, {"code": stale}), 40029)


def test_phone_code_refusals(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.add_app(OTHER_MINIPROGRAM)
    token = mp_token(http, base)
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    assert_error(phone(http, base, token, code=code), 40029)  # in the query string, not the body
    assert_error(phone(http, base, token, data={"code": code}), 47001)  # a form
    assert_error(phone(http, base, token, data=b"code"), 47001)
    assert_error(phone(http, base, token, {}), 40029)
    assert_error(phone(http, base, token, {"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")}), 40029)
    other = fake_wechat.issue_phone_code(OTHER_MINIPROGRAM.appid, "alice")
    assert_error(phone(http, base, token, {"code": other}), 40029)  # another mini program's code
    openid = fake_wechat.openid_for(DEMO_MINIPROGRAM_APPID, "alice")
    assert_error(phone(http, base, token, {"code": code, "openid": fake_wechat.openid_for(DEMO_APPID, "alice")}), 40003)
    assert phone(http, base, token, {"code": code, "openid": openid})["errcode"] == 0  # still unused until now
    get = http.get(base + serverapi.PHONE_NUMBER_PATH, params={"access_token": token})
    assert_error(body(get), 43002)


def test_issue_phone_code_checks_app_and_user(fake_wechat: FakeWeChat) -> None:
    with pytest.raises(ValueError, match="official_account"):
        fake_wechat.issue_phone_code(DEMO_APPID, "alice")
    with pytest.raises(ValueError, match="snapshot"):
        fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "dave")
    with pytest.raises(ValueError, match="unknown user"):
        fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "nobody")


def test_a_foreign_number_carries_its_country_code(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.add_user(
        FakeUser("erin", "Erin", "oErinErinErinErinErinErinErin", phone_number="2025550123", country_code="1")
    )
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "erin")
    info = phone(http, base, mp_token(http, base), {"code": code})["phone_info"]
    assert (info["phoneNumber"], info["purePhoneNumber"], info["countryCode"]) == ("+1 2025550123", "2025550123", "1")


def test_default_users_phones_and_follows() -> None:
    users = {user.key: user for user in DEFAULT_USERS}
    numbers = [user.phone_number for user in DEFAULT_USERS]
    assert len(set(numbers)) == len(numbers) and all(re.fullmatch(r"1[3-9][0-9]{9}", n) for n in numbers)
    assert {user.country_code for user in DEFAULT_USERS} == {"86"}
    assert [key for key, user in users.items() if user.follows] == ["alice", "carol"]
    plain = FakeUser("frank", "Frank", "oFrankFrankFrankFrankFrankFrank")  # the old constructor still works
    assert (plain.phone_number, plain.country_code, plain.follows) == ("13800138000", "86", True)


# -- legacy encryptedData -------------------------------------------------------------------------


def login_session_key(http: requests.Session, base: str, fake: FakeWeChat, user: str = "alice") -> str:
    code = fake.issue_js_code(DEMO_MINIPROGRAM_APPID, user)
    query = protocol.jscode2session_query(DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET, code)
    key: str = body(http.get(base + protocol.JSCODE2SESSION_PATH, params=query))["session_key"]
    return key


def test_encrypted_phone_opens_with_the_latest_session_key(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    with pytest.raises(ValueError, match="no session"):
        fake_wechat.encrypted_phone(DEMO_MINIPROGRAM_APPID, "alice")
    first_key = login_session_key(http, base, fake_wechat)
    sealed, iv = fake_wechat.encrypted_phone(DEMO_MINIPROGRAM_APPID, "alice")
    assert len(base64.b64decode(iv)) == 16 and len(base64.b64decode(sealed)) % 16 == 0
    data = serverapi.decrypt_user_data(first_key, sealed, iv)
    assert data == {
        "phoneNumber": "13800138001",
        "purePhoneNumber": "13800138001",
        "countryCode": "86",
        "watermark": {"timestamp": int(fake_wechat.now()), "appid": DEMO_MINIPROGRAM_APPID},
    }
    assert serverapi.PhoneNumber.from_user_data(data, DEMO_MINIPROGRAM_APPID).pure_phone_number == "13800138001"
    with pytest.raises(errors.UserDataError):
        serverapi.PhoneNumber.from_user_data(data, DEMO_APPID)
    # A new login hands out a new key; what is sealed from then on needs it.
    second_key = login_session_key(http, base, fake_wechat)
    sealed, iv = fake_wechat.encrypted_phone(DEMO_MINIPROGRAM_APPID, "alice")
    assert second_key != first_key
    assert serverapi.decrypt_user_data(second_key, sealed, iv)["purePhoneNumber"] == "13800138001"
    with pytest.raises(errors.UserDataError):
        serverapi.decrypt_user_data(first_key, sealed, iv)
    with pytest.raises(ValueError, match="no session"):
        fake_wechat.encrypted_phone(DEMO_MINIPROGRAM_APPID, "bob")


SYNTHETIC_KEY = "AAECAwQFBgcICQoLDA0ODw=="
SYNTHETIC_IV = "EBESExQVFhcYGRobHB0eHw=="
SYNTHETIC_DATA = (
    "aLhedzo+Z6es5zW+YHo9sgkoobhypSEeViQBPmmCx3fmcZGKbataj/52/+U/sVY3AiF2KzOGsSF26s6H1VwLALPpPqvznm6/Yrci88llVSl0"
    "bwplNsmm05X71JB++CQvB2L1ST7q6P+6blzhwR+mzRJYZe9el4KhJbw0YOz0oU0MjEphB4YITaRcQM6gyHHECpWnJUAfv3vTj4pBHBmD0g=="
)
SYNTHETIC_PLAIN = {
    "phoneNumber": "13580006666",
    "purePhoneNumber": "13580006666",
    "countryCode": "86",
    "watermark": {"timestamp": 1637744274, "appid": "wx4f4bc4dec97d474b"},
}


def test_decrypt_user_data_opens_the_synthetic_vector_and_the_fake_seals_it_alike() -> None:
    assert serverapi.decrypt_user_data(SYNTHETIC_KEY, SYNTHETIC_DATA, SYNTHETIC_IV) == SYNTHETIC_PLAIN
    sealed = encrypt_user_data(SYNTHETIC_KEY, SYNTHETIC_PLAIN, base64.b64decode(SYNTHETIC_IV))
    assert sealed == (SYNTHETIC_DATA, SYNTHETIC_IV)


# -- /cgi-bin/user/info ---------------------------------------------------------------------------


def test_follower_info_has_the_post_2021_shape(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    openid = fake_wechat.openid_for(DEMO_APPID, "alice")
    data = user_info(http, base, token_of(http, base), openid)
    assert list(data) == [
        "subscribe",
        "openid",
        "nickname",
        "sex",
        "language",
        "city",
        "province",
        "country",
        "headimgurl",
        "subscribe_time",
        "unionid",
        "remark",
        "groupid",
        "tagid_list",
        "subscribe_scene",
        "qr_scene",
        "qr_scene_str",
    ]
    assert data["subscribe"] == 1 and data["openid"] == openid and data["unionid"] == fake_wechat.users["alice"].unionid
    assert (data["nickname"], data["headimgurl"], data["sex"], data["language"]) == ("", "", 0, "zh_CN")
    assert isinstance(data["subscribe_time"], int) and 1_500_000_000 <= data["subscribe_time"] < 1_700_000_000
    assert data["tagid_list"] == [] and data["subscribe_scene"] == "ADD_SCENE_QR_CODE"
    follower = serverapi.Follower.from_response(data)
    assert follower.subscribed and follower.unionid == data["unionid"]


def test_non_followers_get_subscribe_0_only(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    for key in ("bob", "dave"):  # bob does not follow; a snapshot user never does
        openid = fake_wechat.openid_for(DEMO_APPID, key)
        assert user_info(http, base, token, openid) == {"subscribe": 0, "openid": openid}
    virtual = fake_wechat.openid_for(DEMO_APPID, "alice", snapshot=True)
    assert user_info(http, base, token, virtual) == {"subscribe": 0, "openid": virtual}
    assert not serverapi.Follower.from_response({"subscribe": 0, "openid": virtual}).subscribed


def test_unbound_account_sends_no_unionid(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.add_app(UNBOUND_OA)
    data = user_info(
        http, base, token_of(http, base, UNBOUND_OA.appid, "s5"), fake_wechat.openid_for(UNBOUND_OA.appid, "carol")
    )
    assert data["subscribe"] == 1 and "unionid" not in data


def test_user_info_wants_this_accounts_openid(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    assert_error(user_info(http, base, token, fake_wechat.openid_for(DEMO_MINIPROGRAM_APPID, "alice")), 40003)
    assert_error(user_info(http, base, token, "o" + "x" * 27), 40003)
    assert_error(api(http, base, serverapi.USER_INFO_PATH, token), 40003)
    post = http.post(base + serverapi.USER_INFO_PATH, params={"access_token": token, "openid": "x"})
    assert_error(body(post), 43001)


# -- /cgi-bin/ticket/getticket and the JS-SDK signature -------------------------------------------


def test_getticket_mints_a_new_ticket_each_time(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    first, second = ticket(http, base, token), ticket(http, base, token)
    assert list(first) == ["errcode", "errmsg", "ticket", "expires_in"]
    assert first["errcode"] == 0 and first["errmsg"] == "ok" and first["expires_in"] == 7200
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", first["ticket"]) and first["ticket"] != second["ticket"]
    assert serverapi.JsapiTicket.from_response(first).expires_in == 7200
    assert fake_wechat.tickets_issued(DEMO_APPID) == 2
    assert ticket(http, base, token, "wx_card")["errcode"] == 0
    assert fake_wechat.tickets_issued(DEMO_APPID) == 2 and fake_wechat.tickets_issued(DEMO_APPID, "wx_card") == 1
    refused = ticket(http, base, token, "agent_config")
    assert_error(refused, 40097)
    assert refused["errmsg"].startswith("invalid args, rid: ")
    assert_error(api(http, base, serverapi.JSAPI_TICKET_PATH, token), 40097)


def test_verify_jssdk(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    older, newer = ticket(http, base, token)["ticket"], ticket(http, base, token)["ticket"]
    card = ticket(http, base, token, "wx_card")["ticket"]
    stamp = int(fake_wechat.now())
    for value in (older, newer):  # earlier tickets stay valid
        signature = serverapi.jssdk_signature(value, NONCE, stamp, PAGE)
        assert fake_wechat.verify_jssdk(DEMO_APPID, stamp, NONCE, signature, PAGE)
        assert fake_wechat.verify_jssdk(DEMO_APPID, str(stamp), NONCE, signature, PAGE)
    signature = serverapi.jssdk_signature(newer, NONCE, stamp, PAGE)
    assert not fake_wechat.verify_jssdk(DEMO_APPID, stamp, NONCE, signature, PAGE + "#top")
    assert not fake_wechat.verify_jssdk(DEMO_APPID, stamp, NONCE + "x", signature, PAGE)
    assert not fake_wechat.verify_jssdk(DEMO_APPID, stamp + 1, NONCE, signature, PAGE)
    assert not fake_wechat.verify_jssdk(DEMO_APPID, f"0{stamp}", NONCE, signature, PAGE)
    assert not fake_wechat.verify_jssdk(DEMO_APPID, stamp, NONCE, signature.upper(), PAGE)
    assert not fake_wechat.verify_jssdk(DEMO_OPEN_APPID, stamp, NONCE, signature, PAGE)
    assert not fake_wechat.verify_jssdk(
        DEMO_APPID, stamp, NONCE, serverapi.jssdk_signature(card, NONCE, stamp, PAGE), PAGE
    )
    fake_wechat.advance(7200)
    assert not fake_wechat.verify_jssdk(DEMO_APPID, stamp, NONCE, signature, PAGE)


def test_jssdk_signature_matches_the_documentation() -> None:
    doc_ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    signature = serverapi.jssdk_signature(doc_ticket, NONCE, 1414587457, "http://mp.weixin.qq.com?params=value")
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_jssdk_verify_endpoint_answers_any_origin(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    value = ticket(http, base, token_of(http, base))["ticket"]
    stamp = int(fake_wechat.now())
    config = {
        "appId": DEMO_APPID,
        "timestamp": stamp,
        "nonceStr": NONCE,
        "signature": serverapi.jssdk_signature(value, NONCE, stamp, PAGE),
        "jsApiList": ["updateAppMessageShareData"],
        "url": PAGE,
    }
    sent = http.post(base + "/_fake/jssdk/verify", data=json.dumps(config), headers={"Content-Type": "text/plain"})
    assert sent.json() == {"ok": True} and sent.headers["Access-Control-Allow-Origin"] == "*"
    wrong = http.post(base + "/_fake/jssdk/verify", json={**config, "url": PAGE + "&y=2"})
    assert wrong.json() == {"ok": False, "errMsg": "config:invalid signature"}
    assert http.post(base + "/_fake/jssdk/verify", json={"appId": DEMO_APPID}).json()["ok"] is False
    preflight = http.options(base + "/_fake/jssdk/verify")
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Origin" not in http.get(base + "/_fake/counters").headers  # only this one


def test_jweixin_script_is_served(http: requests.Session, base: str) -> None:
    response = http.get(base + JWEIXIN)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    script = response.text
    assert "window.wx = window.jWeixin = wx" in script and "__fake: true" in script
    assert f'base = "{base}"' in script and '"/_fake/jssdk/verify"' in script
    assert 'window.location.href.split("#")[0]' in script and '"Content-Type": "text/plain"' in script


def test_jweixin_script_under_a_mount_prefix() -> None:
    app = DispatcherMiddleware(Response("site", 404), {"/wechat-fake": FakeWeChat()})
    script = Client(app).get("/wechat-fake" + JWEIXIN, base_url="https://site.example").get_data(as_text=True)
    assert 'base = "https://site.example/wechat-fake"' in script


JWEIXIN_HARNESS = """
const [src, setup] = [process.argv[1], JSON.parse(process.argv[2])];
global.window = {location: {href: setup.href}, fetch: (...args) => fetch(...args)};
global.document = {currentScript: {src: setup.src}};
eval(src);
const wx = window.wx, events = [], calls = [];
wx.ready(() => events.push("ready"));
wx.error((res) => events.push("error:" + res.errMsg));
wx.config(setup.config);
const started = Date.now();
const poll = setInterval(() => {
  if (!wx.__result && Date.now() - started < 10000) return;
  clearInterval(poll);
  wx.ready(() => events.push("late-ready"));
  wx.error((res) => events.push("late-error:" + res.errMsg));
  const report = (res) => calls.push(res.errMsg);
  wx.updateAppMessageShareData({success: report, fail: report});
  console.log(JSON.stringify({events, calls, result: wx.__result, fake: wx.__fake, same: window.jWeixin === wx}));
}, 20);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("good", [True, False])
def test_jweixin_script_runs_wx_config(fake_wechat: FakeWeChat, http: requests.Session, base: str, good: bool) -> None:
    value = ticket(http, base, token_of(http, base))["ticket"]
    stamp = int(fake_wechat.now())
    # The page's URL has a fragment; what is signed (and what the script sends) has not.
    signature = serverapi.jssdk_signature(value, NONCE, stamp, PAGE if good else PAGE + "#share")
    config = {
        "debug": False,
        "appId": DEMO_APPID,
        "timestamp": stamp,
        "nonceStr": NONCE,
        "signature": signature,
        "jsApiList": ["updateAppMessageShareData"],
    }
    setup = {"href": PAGE + "#share", "src": base + JWEIXIN + "?v=1", "config": config}
    script = http.get(base + JWEIXIN).text.replace(base, "http://wrong.invalid")  # currentScript must win
    node = shutil.which("node") or "node"
    run = subprocess.run(
        [node, "-e", JWEIXIN_HARNESS, script, json.dumps(setup)], check=True, capture_output=True, text=True, timeout=30
    )
    out = json.loads(run.stdout)
    assert out["fake"] is True and out["same"] is True
    if good:
        assert out["result"] == {"ok": True, "errMsg": "config:ok"}
        assert out["events"] == ["ready", "late-ready"]  # ready callbacks registered after success run too
        assert out["calls"] == ["updateAppMessageShareData:ok"]
    else:
        assert out["result"] == {"ok": False, "errMsg": "config:invalid signature"}
        assert out["events"] == ["error:config:invalid signature", "late-error:config:invalid signature"]
        assert out["calls"] == ["updateAppMessageShareData:permission denied"]


# -- the IP whitelist -----------------------------------------------------------------------------


def test_refused_ip_on_both_token_endpoints(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    fake_wechat.refuse_ip()
    for data in (body(app_token(http, base)), stable(http, base)):
        assert_error(data, 40164)
        assert re.fullmatch(
            rf"invalid ip 203\.0\.113\.7 ipv6 ::ffff:203\.0\.113\.7, not in whitelist, {RID}", data["errmsg"]
        )
        error = errors.error_for(data["errcode"], data["errmsg"])
        assert isinstance(error, errors.IPNotAllowedError) and error.ip == "203.0.113.7"
        assert "203.0.113.7" in str(error)
    fake_wechat.allow_ip()
    assert "access_token" in stable(http, base)
    fake_wechat.refuse_ip("198.51.100.20", errcode=61004)
    data = body(app_token(http, base))
    assert_error(data, 61004)
    assert re.fullmatch(
        rf"invalid ip 198\.51\.100\.20 ipv6 ::ffff:198\.51\.100\.20, not in whitelist, {RID}", data["errmsg"]
    )
    error = errors.error_for(61004, data["errmsg"])
    assert isinstance(error, errors.IPNotAllowedError) and error.ip == "198.51.100.20"
    fake_wechat.refuse_ip("2001:db8::7")  # an IPv6 caller has no IPv4-mapped form
    assert re.fullmatch(rf"invalid ip 2001:db8::7, not in whitelist, {RID}", stable(http, base)["errmsg"])
    fake_wechat.reset()
    assert "access_token" in body(app_token(http, base))
    with pytest.raises(ValueError, match="errcode"):
        fake_wechat.refuse_ip(errcode=40013)
    with pytest.raises(ValueError):
        fake_wechat.refuse_ip("not an ip")


# -- clock, control endpoints, faults and the request log -----------------------------------------


def test_advance_moves_the_fakes_time_forward(fake_wechat: FakeWeChat, clock: Clock) -> None:
    start = fake_wechat.now()
    assert start == clock.now and fake_wechat.clock() == start
    assert fake_wechat.advance(90) == start + 90 == fake_wechat.now()
    clock.advance(10)  # the clock it was built with still drives it
    assert fake_wechat.now() == start + 100
    for bad in (-1, float("nan"), True):
        with pytest.raises(ValueError):
            fake_wechat.advance(bad)
    fake_wechat.clock = lambda: 2_000_000_000.0  # a new clock keeps what advance added
    assert fake_wechat.now() == 2_000_000_090.0


def test_clock_control_endpoint(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    now = http.get(base + "/_fake/clock").json()["now"]
    assert now == fake_wechat.now()
    assert http.post(base + "/_fake/clock", json={"advance": 3600}).json() == {"now": now + 3600}
    assert http.post(base + "/_fake/clock", json={}).json() == {"now": now + 3600}
    assert http.post(base + "/_fake/clock", json={"advance": -5}).status_code == 400
    assert http.post(base + "/_fake/clock", json={"advance": "1"}).status_code == 400
    assert http.delete(base + "/_fake/clock").status_code == 405


def test_token_control_endpoints(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    token = token_of(http, base)
    assert http.post(base + "/_fake/expire-app-tokens").json() == {"ok": True}
    assert_error(ticket(http, base, token), 42001)
    token = token_of(http, base)
    assert http.post(base + "/_fake/revoke-app-tokens").json() == {"ok": True}
    assert_error(ticket(http, base, token), 40001)
    assert http.post(base + "/_fake/refuse-ip", json={"ip": "192.0.2.1"}).json() == {"ok": True}
    assert "invalid ip 192.0.2.1 ipv6 ::ffff:192.0.2.1" in body(app_token(http, base))["errmsg"]
    assert http.post(base + "/_fake/refuse-ip", json={"errcode": 61004}).json() == {"ok": True}
    refused = body(app_token(http, base))
    assert refused["errcode"] == 61004 and "invalid ip 203.0.113.7 ipv6" in refused["errmsg"]
    assert http.post(base + "/_fake/refuse-ip", json={"errcode": 1}).status_code == 400
    assert http.post(base + "/_fake/allow-ip").json() == {"ok": True}
    fresh = token_of(http, base)
    ticket(http, base, fresh)
    stable(http, base, force=True)
    counters = http.get(base + "/_fake/counters").json()
    assert counters["stale_token_calls"] == 2
    assert counters["apps"][DEMO_APPID] == {
        "app_tokens": 3,
        "stable_tokens": 1,
        "force_refreshes": 1,
        "jsapi_tickets": 1,
    }
    assert set(counters["apps"]) == set(fake_wechat.apps)
    assert fresh not in json.dumps(counters)


def test_phone_control_endpoints(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    code = http.post(base + "/_fake/phone-code", json={"appid": DEMO_MINIPROGRAM_APPID, "user": "carol"}).json()["code"]
    token = mp_token(http, base)
    assert phone(http, base, token, {"code": code})["phone_info"]["phoneNumber"] == "13800138003"
    assert http.post(base + "/_fake/phone-code", json={"appid": DEMO_APPID, "user": "carol"}).status_code == 400
    before = http.post(base + "/_fake/encrypted-phone", json={"appid": DEMO_MINIPROGRAM_APPID, "user": "carol"})
    assert before.status_code == 400 and "no session" in before.json()["error"]
    key = login_session_key(http, base, fake_wechat, "carol")
    sealed = http.post(base + "/_fake/encrypted-phone", json={"appid": DEMO_MINIPROGRAM_APPID, "user": "carol"}).json()
    assert serverapi.decrypt_user_data(key, sealed["encryptedData"], sealed["iv"])["phoneNumber"] == "13800138003"
    users = {user["key"]: user for user in http.get(base + "/_fake/users").json()}
    assert users["carol"]["phone_number"] == "13800138003" and users["carol"]["country_code"] == "86"
    assert [key for key, user in users.items() if user["follows"]] == ["alice", "carol"]


def test_fail_next_and_break_next_cover_the_new_endpoints(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    assert {"app_token", "stable_token", "phone_number", "user_info", "jsapi_ticket"} <= set(ENDPOINT_PATHS)
    fake_wechat.fail_next("app_token", 40164)
    fake_wechat.fail_next("app_token", 61004)
    fake_wechat.fail_next("user_info", 40014)
    fake_wechat.fail_next("stable_token", -1)
    fake_wechat.break_next("jsapi_ticket", b"<html>502</html>", status=502)
    refused = body(app_token(http, base))
    assert_error(refused, 40164)
    assert isinstance(errors.error_for(40164, refused["errmsg"]), errors.IPNotAllowedError)
    observed = body(app_token(http, base))  # the 61004 text seen in the wild
    assert re.fullmatch(rf"access clientip is not registered requestIP: 203\.0\.113\.7, {RID}", observed["errmsg"])
    assert_error(stable(http, base), -1)
    token = token_of(http, base)
    broken = http.get(base + serverapi.JSAPI_TICKET_PATH, params={"access_token": token, "type": "jsapi"})
    assert broken.status_code == 502 and broken.content == b"<html>502</html>"
    assert works(http, base, token)
    assert http.post(base + "/_fake/fail", json={"endpoint": "user_info", "errcode": 48001}).json() == {"ok": True}
    assert_error(user_info(http, base, token, fake_wechat.openid_for(DEMO_APPID, "alice")), 40014)
    assert_error(user_info(http, base, token, fake_wechat.openid_for(DEMO_APPID, "alice")), 48001)
    assert [call.endpoint for call in fake_wechat.calls("app_token")] == ["app_token"] * 3


def test_requests_log_redacts_secrets_in_queries_and_bodies(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token_of(http, base)
    stable(http, base)
    http.post(base + serverapi.STABLE_TOKEN_PATH, data={"appid": DEMO_APPID, "secret": DEMO_SECRET})
    http.post(base + serverapi.STABLE_TOKEN_PATH, data='{"appid": "x", "secret": "unknown-secret", ')
    http.post(base + serverapi.STABLE_TOKEN_PATH, data=f"appid={DEMO_APPID}; {DEMO_SECRET}")
    code = fake_wechat.issue_phone_code(DEMO_MINIPROGRAM_APPID, "alice")
    token = mp_token(http, base)
    phone(http, base, token, {"code": code})
    assert DEMO_SECRET not in repr(list(fake_wechat.requests)) and "unknown-secret" not in repr(fake_wechat.requests)
    (first, *_) = fake_wechat.calls("app_token")
    assert first.params["secret"] == "[redacted]" and first.body == ""
    json_call, form_call, broken_call, loose_call = fake_wechat.calls("stable_token")
    assert json_call.method == "POST" and json_call.json == {
        "grant_type": "client_credential",
        "appid": DEMO_APPID,
        "secret": "[redacted]",
        "force_refresh": False,
    }
    assert form_call.body == f"appid={DEMO_APPID}&secret=[redacted]" and form_call.json is None
    assert broken_call.body == '{"appid": "x", "secret": "[redacted]", '
    assert loose_call.body == f"appid={DEMO_APPID}; [redacted]"
    (phone_call,) = fake_wechat.calls("phone_number")
    assert phone_call.json == {"code": code} and phone_call.params["access_token"] == token  # codes, tokens kept
    recorded = http.get(base + "/_fake/requests").json()
    assert [r["endpoint"] for r in recorded][:2] == ["app_token", "stable_token"]
    assert recorded[1]["body"] == json_call.body and recorded[-1]["body"] == json.dumps({"code": code})
    assert DEMO_SECRET not in json.dumps(recorded) and DEMO_MINIPROGRAM_SECRET not in json.dumps(recorded)


def test_unknown_server_api_paths_are_40066(fake_wechat: FakeWeChat, http: requests.Session, base: str) -> None:
    for path in ("/cgi-bin/nothing", "/wxa/nothing"):
        response = http.get(base + path)
        assert response.headers["Content-Type"] == JSON_TYPE
        assert_error(body(response), 40066)
    assert [r.endpoint for r in fake_wechat.requests] == [None, None]


def test_reset_forgets_app_tokens_and_keeps_the_time(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    token = token_of(http, base)
    ticket(http, base, token)
    fake_wechat.advance(100)
    later = fake_wechat.now()
    fake_wechat.token_quota = 5
    fake_wechat.refuse_ip()
    fake_wechat.reset()
    assert fake_wechat.app_tokens_issued(DEMO_APPID) == 0 and fake_wechat.tickets_issued(DEMO_APPID) == 0
    assert fake_wechat.stale_token_calls == 0 and fake_wechat.force_refreshes(DEMO_APPID) == 0
    assert fake_wechat.now() == later and fake_wechat.token_quota == 5
    assert_error(ticket(http, base, token), 40001)  # forgotten: unknown, not stale
    assert fake_wechat.stale_token_calls == 0
    assert works(http, base, token_of(http, base))


def test_index_lists_the_server_apis(http: requests.Session, base: str) -> None:
    page = http.get(base + "/").text
    for path in (
        serverapi.APP_TOKEN_PATH,
        serverapi.STABLE_TOKEN_PATH,
        serverapi.PHONE_NUMBER_PATH,
        serverapi.USER_INFO_PATH,
        serverapi.JSAPI_TICKET_PATH,
        JWEIXIN,
        "/_fake/miniprogram",
        "/_fake/clock",
        "/_fake/counters",
        "/_fake/phone-code",
        "/_fake/encrypted-phone",
        "/_fake/refuse-ip",
        "/_fake/jssdk/verify",
    ):
        assert f"<code>{path}</code>" in page
    assert "POST: stable_token" in page and "POST: phone_number" in page and "GET: app_token" in page


def test_latency_applies_to_the_server_apis() -> None:
    with FakeWeChatServer(request_latency=0.1) as server, requests.Session() as session:
        session.get(server.url + "/")
        elapsed = session.get(server.url + serverapi.APP_TOKEN_PATH).elapsed.total_seconds()
    assert elapsed >= 0.1


# -- the mini program simulator -------------------------------------------------------------------


def test_simulator_page_renders(http: requests.Session, base: str) -> None:
    login, phone_url = "/wechat/miniprogram/login", "https://app.example.com/wechat/miniprogram/phone"
    page = http.get(base + "/_fake/miniprogram", params={"login": login, "phone": phone_url, "auth": "token"})
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.text
    for fragment in ('id="login"', 'id="phone"', 'id="phone-legacy"', 'id="login-result"', 'id="phone-result"'):
        assert fragment in html
    assert 'value="alice"' in html and 'value="bob"' in html and 'value="dave"' not in html  # no snapshot users
    assert "Demo Mini Program" in html and DEMO_MINIPROGRAM_APPID in html
    assert "手机号快速验证" in html and "Share phone number" in html and "模拟微信" in html
    assert f'"login": "{login}"' in html and f'"phone": "{phone_url}"' in html and '"auth": "token"' in html
    assert '"control": ""' in html and '"/_fake/js-code"' in html and '"/_fake/phone-code"' in html
    assert '"/_fake/encrypted-phone"' in html and 'credentials: "include"' in html
    assert '"Bearer "' in html


def test_simulator_page_without_phone_url_and_under_a_prefix() -> None:
    app = DispatcherMiddleware(Response("site", 404), {"/wechat-fake": FakeWeChat()})
    page = Client(app).get("/wechat-fake/_fake/miniprogram?login=/wechat/miniprogram/login").get_data(as_text=True)
    assert '"control": "/wechat-fake"' in page and 'id="phone"' not in page and 'id="no-phone"' in page


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({}, "login="),
        ({"login": "javascript:alert(1)"}, "login must be"),
        ({"login": "//evil.example/x"}, "login must be"),
        ({"login": "/l", "phone": "data:text/html,x"}, "phone must be"),
        ({"login": "/l", "auth": "session"}, "auth must be"),
        ({"login": "/l", "appid": DEMO_APPID}, "not a mini program"),
    ],
)
def test_simulator_page_refuses_bad_parameters(
    http: requests.Session, base: str, query: dict[str, str], problem: str
) -> None:
    page = http.get(base + "/_fake/miniprogram", params=query)
    assert page.status_code == 400 and problem in page.text


def test_simulator_page_escapes_the_urls(http: requests.Session, base: str) -> None:
    login = "/login?next=</script><script>alert(1)</script>"
    html = http.get(base + "/_fake/miniprogram", params={"login": login}).text
    assert "<script>alert(1)" not in html and "\\u003c/script\\u003e" in html


SIMULATOR_HARNESS = """
const setup = JSON.parse(process.argv[1]);
const elements = {};
function element(id) {
  return elements[id] || (elements[id] = {
    id, textContent: "", attributes: {}, handlers: {},
    setAttribute(name, value) { this.attributes[name] = value; },
    addEventListener(type, handler) { this.handlers[type] = handler; },
  });
}
global.document = {
  getElementById: (id) => (setup.ids.includes(id) ? element(id) : null),
  querySelector: (selector) => (selector === 'input[name="user"]:checked' ? {value: setup.user} : null),
};
const realFetch = fetch;
global.fetch = (url, options) => realFetch(url.startsWith("/") ? setup.base + url : url, options);
eval(setup.script);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function press(button, output) {
  element(output).setAttribute("data-status", "");
  element(button).handlers.click();
  for (let i = 0; i < 500 && ["", "pending"].includes(element(output).attributes["data-status"]); i++) await sleep(20);
  return {status: element(output).attributes["data-status"], text: element(output).textContent};
}
(async () => {
  const login = await press("login", "login-result");
  const phone = await press("phone", "phone-result");
  const legacy = await press("phone-legacy", "phone-result");
  console.log(JSON.stringify({login, phone, legacy}));
})();
"""


class StandInApp:
    """What the library's mini program views do, in a few lines: log in by code, then take the phone number."""

    def __init__(self, fake_base: str) -> None:
        self.fake_base = fake_base
        self.session_key = ""
        self.seen: list[tuple[str, str | None, Any]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        data = request.get_json(silent=True) or {}
        self.seen.append((request.path, request.headers.get("Authorization"), data))
        with requests.Session() as session:
            if request.path == "/login":
                query = protocol.jscode2session_query(DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET, data["code"])
                answer = body(session.get(self.fake_base + protocol.JSCODE2SESSION_PATH, params=query))
                self.session_key = answer["session_key"]
                result: dict[str, Any] = {
                    "openid": answer["openid"],
                    "token": "bearer-for-test",
                    "token_type": "Bearer",
                }
            elif "code" in data:
                result = phone(session, self.fake_base, mp_token(session, self.fake_base), {"code": data["code"]})
            else:
                result = serverapi.decrypt_user_data(self.session_key, data["encryptedData"], data["iv"])
        return Response(json.dumps(result), content_type="application/json")(environ, start_response)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_simulator_buttons_log_in_and_share_the_phone_number(
    fake_wechat: FakeWeChat, http: requests.Session, base: str
) -> None:
    app = StandInApp(base)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        site = f"http://127.0.0.1:{server.port}"
        html = http.get(base + "/_fake/miniprogram", params={"login": site + "/login", "phone": site + "/phone"}).text
        script = html.rsplit("<script>", 1)[1].split("</script>", 1)[0]
        ids = re.findall(r'id="([a-z-]+)"', html)
        setup = {"script": script, "ids": ids, "user": "carol", "base": base}
        node = shutil.which("node") or "node"
        run = subprocess.run(
            [node, "-e", SIMULATOR_HARNESS, json.dumps(setup)], check=True, capture_output=True, text=True, timeout=60
        )
    finally:
        server.shutdown()
        thread.join()
    out = json.loads(run.stdout)
    assert out["login"]["status"] == "200", out
    assert json.loads(out["login"]["text"].split("\n", 1)[1])["openid"] == fake_wechat.openid_for(
        DEMO_MINIPROGRAM_APPID, "carol"
    )
    assert (
        out["phone"]["status"] == "200"
        and json.loads(out["phone"]["text"].split("\n", 1)[1])["phone_info"]["phoneNumber"] == "13800138003"
    )
    assert (
        out["legacy"]["status"] == "200"
        and json.loads(out["legacy"]["text"].split("\n", 1)[1])["phoneNumber"] == "13800138003"
    )
    (login_call, phone_call, legacy_call) = app.seen
    assert login_call[0] == "/login" and login_call[1] is None and set(login_call[2]) == {"code"}
    assert phone_call[1] == legacy_call[1] == "Bearer bearer-for-test"  # the login answer had a token
    assert set(phone_call[2]) == {"code"} and set(legacy_call[2]) == {"encryptedData", "iv"}
