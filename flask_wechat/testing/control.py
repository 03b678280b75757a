"""``/_fake/*``: drive a fake that runs in another process (CLI, browser tests).

Each endpoint mirrors a :class:`~flask_wechat.testing.FakeWeChat` method; the fake passes
itself in as a :class:`~.interfaces.ControlTarget`. ``/_fake/requests`` shows the
requests as the fake recorded them: codes and tokens as received, AppSecrets never;
``/_fake/counters`` shows how many tokens and tickets were issued, never a token.
``/_fake/jssdk/verify`` is the one endpoint other origins may read (the fake's
``jweixin`` script calls it from the app's pages). ``/_fake/wecom/*`` drive the fake's
WeCom; ``/_fake/fail`` and ``/_fake/break`` take its ``wecom_*`` endpoint names too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from werkzeug.wrappers import Request, Response

from .interfaces import ControlTarget
from .jssdk import INVALID_SIGNATURE, VERIFY_PATH

__all__ = ["CORS_PATHS", "ENDPOINTS", "handle"]

#: Control endpoints any origin may call and read.
CORS_PATHS: Final = frozenset({VERIFY_PATH})

_Action = Callable[[ControlTarget, dict[str, Any]], object]


def _body(request: Request) -> dict[str, Any]:
    data = request.get_json(force=True, silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    return data


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer")
    return value


def _fail(fake: ControlTarget, data: dict[str, Any]) -> object:
    errmsg = data.get("errmsg")
    fake.fail_next(
        str(data["endpoint"]), _int(data, "errcode"), None if errmsg is None else str(errmsg), _int(data, "times", 1)
    )
    return {"ok": True}


def _break(fake: ControlTarget, data: dict[str, Any]) -> object:
    body = str(data.get("body", "")).encode("utf-8")
    fake.break_next(str(data["endpoint"]), body, _int(data, "status", 200), _int(data, "times", 1))
    return {"ok": True}


def _code(fake: ControlTarget, data: dict[str, Any]) -> object:
    scope = data.get("scope")
    return {"code": fake.issue_code(str(data["appid"]), str(data["user"]), None if scope is None else str(scope))}


def _js_code(fake: ControlTarget, data: dict[str, Any]) -> object:
    return {"code": fake.issue_js_code(str(data["appid"]), str(data["user"]))}


def _phone_code(fake: ControlTarget, data: dict[str, Any]) -> object:
    return {"code": fake.issue_phone_code(str(data["appid"]), str(data["user"]))}


def _encrypted_phone(fake: ControlTarget, data: dict[str, Any]) -> object:
    encrypted, iv = fake.encrypted_phone(str(data["appid"]), str(data["user"]))
    return {"encryptedData": encrypted, "iv": iv}


def _clock(fake: ControlTarget, data: dict[str, Any]) -> object:
    if "advance" in data:
        seconds = data["advance"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError("advance must be a number of seconds")
        return {"now": fake.advance(seconds)}
    return {"now": fake.now()}


def _refuse_ip(fake: ControlTarget, data: dict[str, Any]) -> object:
    errcode = _int(data, "errcode", 40164)
    if "ip" in data:
        fake.refuse_ip(str(data["ip"]), errcode)
    else:
        fake.refuse_ip(errcode=errcode)
    return {"ok": True}


def _wecom_code(fake: ControlTarget, data: dict[str, Any]) -> object:
    agentid = data.get("agentid")
    if isinstance(agentid, str) and agentid.isascii() and agentid.isdigit():
        agentid = int(agentid)  # as it appears in links
    if agentid is not None and (isinstance(agentid, bool) or not isinstance(agentid, int)):
        raise ValueError("agentid must be an integer or null")
    web = data.get("web", False)
    if not isinstance(web, bool):
        raise ValueError("web must be true or false")
    redirect_uri = data.get("redirect_uri")
    code = fake.issue_wecom_code(
        str(data["corpid"]),
        agentid,
        str(data["user"]),
        str(data.get("scope", "snsapi_base")),
        web=web,
        redirect_uri=None if redirect_uri is None else str(redirect_uri),
    )
    return {"code": code}


def _wecom_refuse_ip(fake: ControlTarget, data: dict[str, Any]) -> object:
    if "ip" in data:
        fake.refuse_wecom_ip(str(data["ip"]))
    else:
        fake.refuse_wecom_ip()
    return {"ok": True}


def _wecom_people(fake: ControlTarget, data: dict[str, Any]) -> object:
    return [
        {
            "corpid": corp.corpid,
            "name": corp.name,
            "agents": [
                {
                    "agentid": agent.agentid,
                    "name": agent.name,
                    "created_after_2022_06_20": agent.created_after_2022_06_20,
                    "trusted_domain": agent.trusted_domain,
                }
                for agent in corp.agents
            ],
            "members": [
                {
                    "userid": member.userid,
                    "name": member.name,
                    "department": member.department,
                    "in_visible_range": member.in_visible_range,
                }
                for member in corp.members
            ],
            "non_members": [
                {
                    "key": person.key,
                    "name": person.name,
                    "openid": person.openid,
                    "external_userid": person.external_userid,
                }
                for person in corp.non_members
            ],
        }
        for corp in list(fake.corps.values())
    ]


def _counters(fake: ControlTarget, data: dict[str, Any]) -> object:
    return {
        "stale_token_calls": fake.stale_token_calls,
        "apps": {
            appid: {
                "app_tokens": fake.app_tokens_issued(appid, "token"),
                "stable_tokens": fake.app_tokens_issued(appid, "stable"),
                "force_refreshes": fake.force_refreshes(appid),
                "jsapi_tickets": fake.tickets_issued(appid),
            }
            for appid in list(fake.apps)
        },
        "corps": {
            corp.corpid: {
                str(agent.agentid): {"wecom_tokens": fake.wecom_tokens_issued(corp.corpid, agent.agentid)}
                for agent in corp.agents
            }
            for corp in list(fake.corps.values())
        },
    }


def _jssdk_verify(fake: ControlTarget, data: dict[str, Any]) -> object:
    appid, timestamp, noncestr, signature, url = (
        data.get(key) for key in ("appId", "timestamp", "nonceStr", "signature", "url")
    )
    if (
        isinstance(appid, str)
        and isinstance(timestamp, (int, str))
        and isinstance(noncestr, str)
        and isinstance(signature, str)
        and isinstance(url, str)
        and fake.verify_jssdk(appid, timestamp, noncestr, signature, url)
    ):
        return {"ok": True}
    return {"ok": False, "errMsg": INVALID_SIGNATURE}


def _snapshot_next(fake: ControlTarget, data: dict[str, Any]) -> object:
    fake.snapshot_next(_int(data, "times", 1))
    return {"ok": True}


def _call(method: Callable[[ControlTarget], None]) -> _Action:
    def action(fake: ControlTarget, data: dict[str, Any]) -> object:
        method(fake)
        return {"ok": True}

    return action


def _requests(fake: ControlTarget, data: dict[str, Any]) -> object:
    return [
        {
            "method": r.method,
            "path": r.path,
            "endpoint": r.endpoint,
            "query": [list(pair) for pair in r.query],
            "body": r.body,
        }
        for r in list(fake.requests)
    ]


def _users(fake: ControlTarget, data: dict[str, Any]) -> object:
    return [
        {
            "key": user.key,
            "nickname": user.nickname,
            "unionid": user.unionid,
            "headimgurl": user.headimgurl,
            "snapshot": user.snapshot,
            "blocked": user.blocked,
            "phone_number": user.phone_number,
            "country_code": user.country_code,
            "follows": user.follows and not user.snapshot,
            "openids": {appid: fake.openid_for(appid, user.key) for appid in fake.apps},
        }
        for user in list(fake.users.values())
    ]


#: path -> (method, what it does); also listed on the index page.
ENDPOINTS: Final[Mapping[str, tuple[str, str, _Action]]] = {
    "/_fake/fail": ("POST", "JSON {endpoint, errcode, errmsg?, times?}: the next calls answer that errcode", _fail),
    "/_fake/break": ("POST", "JSON {endpoint, body, status?, times?}: the next calls answer that raw body", _break),
    "/_fake/code": ("POST", "JSON {appid, user, scope?}: mint a code as if the user consented", _code),
    "/_fake/js-code": ("POST", "JSON {appid, user}: mint the code wx.login() gives a mini program", _js_code),
    "/_fake/phone-code": (
        "POST",
        "JSON {appid, user}: mint the code a mini program's phone-number button gives",
        _phone_code,
    ),
    "/_fake/encrypted-phone": (
        "POST",
        "JSON {appid, user}: legacy {encryptedData, iv} of the phone number, under the user's latest session_key",
        _encrypted_phone,
    ),
    "/_fake/snapshot-next": (
        "POST",
        "JSON {times?}: the next OA snsapi_userinfo consents are snapshot-page virtual users",
        _snapshot_next,
    ),
    "/_fake/reset": (
        "POST",
        "forget codes, tokens, tickets, counters, requests, faults, pending snapshots and the refused IPs",
        _call(lambda fake: fake.reset()),
    ),
    "/_fake/expire-access-tokens": (
        "POST",
        "every access token now answers 42001",
        _call(lambda f: f.expire_access_tokens()),
    ),
    "/_fake/expire-refresh-tokens": (
        "POST",
        "every refresh token now answers 42002",
        _call(lambda f: f.expire_refresh_tokens()),
    ),
    "/_fake/expire-app-tokens": (
        "POST",
        "every app access token issued so far now answers 42001",
        _call(lambda f: f.expire_app_tokens()),
    ),
    "/_fake/revoke-app-tokens": (
        "POST",
        "every app access token issued so far now answers 40001",
        _call(lambda f: f.revoke_app_tokens()),
    ),
    "/_fake/refuse-ip": (
        "POST",
        "JSON {ip?, errcode?}: the token endpoints refuse the caller's IP (40164 or 61004)",
        _refuse_ip,
    ),
    "/_fake/allow-ip": ("POST", "the token endpoints accept the caller's IP again", _call(lambda f: f.allow_ip())),
    "/_fake/clock": ("GET, POST", "the fake's time {now}; POST JSON {advance: seconds} moves it forward", _clock),
    "/_fake/counters": (
        "GET",
        "app tokens, stable tokens, force refreshes and jsapi tickets per app; WeCom tokens per corp and agent",
        _counters,
    ),
    "/_fake/wecom/code": (
        "POST",
        "JSON {corpid, agentid (null: none), user, scope?, web?, redirect_uri?}: mint a WeCom code",
        _wecom_code,
    ),
    "/_fake/wecom/expire-tokens": (
        "POST",
        "every WeCom access token issued so far now answers 42001",
        _call(lambda f: f.expire_wecom_tokens()),
    ),
    "/_fake/wecom/revoke-tokens": (
        "POST",
        "WeCom ends every access token early: they answer 40014",
        _call(lambda f: f.revoke_wecom_tokens()),
    ),
    "/_fake/wecom/refuse-ip": (
        "POST",
        "JSON {ip?}: WeCom APIs but gettoken answer 60020 to apps created after 2022-06-20",
        _wecom_refuse_ip,
    ),
    "/_fake/wecom/allow-ip": ("POST", "the caller's IP is trusted again", _call(lambda f: f.allow_wecom_ip())),
    "/_fake/wecom/people": (
        "GET",
        "the WeCom corps, their agents (no secrets), members and non-members",
        _wecom_people,
    ),
    VERIFY_PATH: (
        "POST",
        "JSON {appId, timestamp, nonceStr, signature, url}: jweixin's wx.config check, {ok[, errMsg]}",
        _jssdk_verify,
    ),
    "/_fake/requests": ("GET", "every API request received, in order", _requests),
    "/_fake/users": ("GET", "the test users and their openid per app", _users),
}


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False).encode("utf-8"), status, content_type="application/json")


def _answer(fake: ControlTarget, request: Request) -> Response:
    route = ENDPOINTS.get(request.path)
    if route is None:
        return _json({"error": f"unknown control endpoint {request.path}"}, 404)
    methods, _, action = route
    if request.method == "OPTIONS" and request.path in CORS_PATHS:
        return Response(status=204, headers={"Access-Control-Allow-Methods": methods, "Access-Control-Max-Age": "600"})
    if request.method not in methods.split(", "):
        return _json({"error": f"use {methods}"}, 405)
    try:
        return _json(action(fake, _body(request) if request.method == "POST" else {}))
    except (KeyError, ValueError) as exc:
        return _json({"error": f"bad request: {exc}"}, 400)


def handle(fake: ControlTarget, request: Request) -> Response:
    """Answer one ``/_fake/*`` request."""
    response = _answer(fake, request)
    if request.path in CORS_PATHS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response
