"""``/_fake/*``: drive a fake that runs in another process (CLI, browser tests).

Each endpoint mirrors a :class:`~flask_wechat.testing.FakeWeChat` method; the fake passes
itself in as a :class:`~.interfaces.ControlTarget`. ``/_fake/requests`` shows the
requests as the fake recorded them: codes and tokens as received, AppSecrets never.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from werkzeug.wrappers import Request, Response

from .interfaces import ControlTarget

__all__ = ["ENDPOINTS", "handle"]

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
        {"method": r.method, "path": r.path, "endpoint": r.endpoint, "query": [list(pair) for pair in r.query]}
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
    "/_fake/snapshot-next": (
        "POST",
        "JSON {times?}: the next OA snsapi_userinfo consents are snapshot-page virtual users",
        _snapshot_next,
    ),
    "/_fake/reset": (
        "POST",
        "forget codes, tokens, requests, faults and pending snapshots",
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
    "/_fake/requests": ("GET", "every /sns/* request received, in order", _requests),
    "/_fake/users": ("GET", "the test users and their openid per app", _users),
}


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False).encode("utf-8"), status, content_type="application/json")


def handle(fake: ControlTarget, request: Request) -> Response:
    """Answer one ``/_fake/*`` request."""
    route = ENDPOINTS.get(request.path)
    if route is None:
        return _json({"error": f"unknown control endpoint {request.path}"}, 404)
    method, _, action = route
    if request.method != method:
        return _json({"error": f"use {method}"}, 405)
    try:
        return _json(action(fake, _body(request) if method == "POST" else {}))
    except (KeyError, ValueError) as exc:
        return _json({"error": f"bad request: {exc}"}, 400)
