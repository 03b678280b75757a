"""Mini program login: a ``wx.login()`` code in, the same local user out.

The mini program POSTs ``{"code": "..."}``; the server calls ``/sns/jscode2session``,
keeps the ``session_key`` to itself, resolves the user through ``unionid`` like
every other flow, and logs them in with the session cookie or a signed bearer
token (``WECHAT_MINIPROGRAM_AUTH``). Errors are JSON with a stable ``error`` code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from flask import Request, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .errors import (
    CodeBlockedError,
    CodeError,
    CodeUsedError,
    LoginFlowError,
    RateLimitedError,
    SystemBusyError,
    WeChatError,
)
from .flow import MAX_CODE_LENGTH
from .storage import Identity

if TYPE_CHECKING:
    from .runtime import WeChatState

__all__ = ["BadMiniProgramRequest", "error_answer", "load_bearer_user", "log_in_with_code", "read_code"]

_TOKEN_SALT: Final = "flask-wechat mini program login"


class BadMiniProgramRequest(LoginFlowError):
    """The request carried no usable ``code`` (send JSON ``{"code": "<wx.login() code>"}``)."""


#: (exception class, HTTP status, stable error code); the first match wins.
_ERRORS: Final[tuple[tuple[type[WeChatError], int, str], ...]] = (
    (BadMiniProgramRequest, 400, "invalid_request"),
    (CodeUsedError, 400, "code_used"),
    (CodeBlockedError, 403, "code_blocked"),
    (CodeError, 400, "invalid_code"),
    (RateLimitedError, 429, "rate_limited"),
    (SystemBusyError, 424, "wechat_busy"),
    (WeChatError, 424, "wechat_unavailable"),
)


def read_code(request: Request) -> str:
    """The ``code`` of a well-formed request; anything else is a :class:`BadMiniProgramRequest`."""
    # JSON only: a cross-site form (text/plain) must not be able to log a browser in.
    payload = request.get_json(silent=True) if request.is_json else None
    code = payload.get("code") if isinstance(payload, dict) else None
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_LENGTH:
        raise BadMiniProgramRequest()
    return code.strip()


def _serializer() -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with all: SECRET_KEY_FALLBACKS keep old tokens.
    keys = [*(current_app.config.get("SECRET_KEY_FALLBACKS") or []), current_app.secret_key]
    return URLSafeTimedSerializer(keys, salt=_TOKEN_SALT)


def log_in_with_code(state: WeChatState, js_code: str) -> dict[str, Any]:
    """Exchange the code, store the account (``session_key`` sealed), log in; the JSON answer."""
    client = state.miniprogram
    if client is None:  # pragma: no cover - the view is only routed when configured
        raise BadMiniProgramRequest()
    mini = state._guarded(lambda: client.code_to_session(js_code))
    identity = Identity(
        appid=client.credentials.appid, openid=mini.openid, unionid=mini.unionid, nickname="", avatar_url=""
    )
    record = state.record(identity, mini)
    answer: dict[str, Any] = {"user_id": record.user.id, "new_user": record.new_user}
    if state.settings.miniprogram_auth == "token":
        answer["token"] = _serializer().dumps({"u": str(record.user.id)})
        answer["token_type"] = "Bearer"
        answer["expires_in"] = state.settings.miniprogram_token_max_age
        state.log_in(str(record.user.id), renew=False)
    else:
        state.log_in(str(record.user.id))
    return answer


def load_bearer_user(request: Request) -> Any:
    """Flask-Login's request loader: the user of a valid ``Authorization: Bearer`` token."""
    state: WeChatState | None = current_app.extensions.get("wechat")
    header = request.headers.get("Authorization", "")
    if state is None or state.settings.miniprogram_auth != "token" or not header.startswith("Bearer "):
        return None
    try:
        data = _serializer().loads(header[len("Bearer ") :].strip(), max_age=state.settings.miniprogram_token_max_age)
    except BadSignature:
        return None
    user_id = data.get("u") if isinstance(data, dict) else None
    return state.store().load_user(user_id) if isinstance(user_id, str) else None


def error_answer(exc: WeChatError) -> tuple[dict[str, Any], int]:
    """The JSON error and status for a failed mini program login (no code, token or key in it)."""
    status, code = next((status, code) for kind, status, code in _ERRORS if isinstance(exc, kind))
    answer: dict[str, Any] = {"error": code}
    errcode = getattr(exc, "errcode", None)
    if errcode is not None:
        answer["errcode"] = errcode
    return answer, status
