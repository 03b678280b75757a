"""Mini program login: a ``wx.login()`` code in, the same local user out.

The mini program POSTs ``{"code": "..."}``; the server calls ``/sns/jscode2session``,
keeps the ``session_key`` to itself, resolves the user through ``unionid`` like
every other flow, and logs them in with the session cookie or a signed bearer
token (``WECHAT_MINIPROGRAM_AUTH``). Errors are JSON with a stable ``error`` code.

Bearer tokens are signed like Flask's session: with ``SECRET_KEY``, and still verified
with each key of ``SECRET_KEY_FALLBACKS`` until it is removed from there. Each holds the
user's token version, which logout bumps: that revokes every token issued before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from flask import Request, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from . import protocol, signals
from .accounts import Identity
from .errors import (
    CodeBlockedError,
    CodeError,
    CodeUsedError,
    LoginFlowError,
    LoginRefusedError,
    RateLimitedError,
    ServiceUnavailableError,
    StorageError,
    SystemBusyError,
    UserDataError,
    WeChatError,
    WeChatResponseError,
    WeChatTransportError,
)

if TYPE_CHECKING:
    from .login import Logins
    from .runtime import Runtime

__all__ = [
    "BadMiniProgramRequest",
    "NoMiniProgramAccountError",
    "PhoneCodeTakenError",
    "bearer_user",
    "error_answer",
    "log_in_with_code",
    "read_code",
]

_TOKEN_SALT: Final = "flask-wechat mini program login"


class BadMiniProgramRequest(LoginFlowError):
    """The request carried no usable ``code`` (send JSON ``{"code": "<wx.login() code>"}``)."""


class NoMiniProgramAccountError(LoginFlowError):
    """The logged-in user has never logged in through the mini program: there is no account to ask for."""


class PhoneCodeTakenError(LoginFlowError):
    """Another user already sent this ``getPhoneNumber`` code: one person's number is never shown to another."""


#: (exception class, HTTP status, stable error code); the first match wins.
_ERRORS: Final[tuple[tuple[type[WeChatError], int, str], ...]] = (
    (BadMiniProgramRequest, 400, "invalid_request"),
    (NoMiniProgramAccountError, 403, "no_miniprogram_account"),
    (LoginRefusedError, 403, "login_refused"),
    (PhoneCodeTakenError, 400, "code_used"),
    (UserDataError, 400, "invalid_data"),
    (CodeUsedError, 400, "code_used"),
    (CodeBlockedError, 403, "code_blocked"),
    (CodeError, 400, "invalid_code"),
    (RateLimitedError, 503, "rate_limited"),
    (SystemBusyError, 503, "wechat_busy"),
    (ServiceUnavailableError, 503, "unavailable"),
    (StorageError, 503, "unavailable"),
    (WeChatTransportError, 502, "wechat_unavailable"),
    (WeChatResponseError, 502, "wechat_unavailable"),
    (LoginFlowError, 400, "invalid_request"),
    (WeChatError, 502, "wechat_unavailable"),
)


def read_code(request: Request) -> str:
    """The ``code`` of a well-formed request; anything else is a :class:`BadMiniProgramRequest`."""
    # JSON only: a cross-site form (text/plain) must not be able to log a browser in.
    payload = request.get_json(silent=True) if request.is_json else None
    code = payload.get("code") if isinstance(payload, dict) else None
    if not isinstance(code, str) or not code.strip() or len(code) > protocol.MAX_CODE_LENGTH:
        raise BadMiniProgramRequest()
    return code.strip()


def _serializer() -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with all, as Flask's session does.
    keys = [*(current_app.config.get("SECRET_KEY_FALLBACKS") or []), current_app.secret_key]
    return URLSafeTimedSerializer(keys, salt=_TOKEN_SALT)


def log_in_with_code(logins: Logins, js_code: str) -> dict[str, Any]:
    """Exchange the code, store the account (``session_key`` sealed), log in; the JSON answer."""
    rt = logins.runtime
    api = rt.miniprogram
    if api is None:  # pragma: no cover - the view is only routed when configured
        raise BadMiniProgramRequest()
    try:
        rt.accounts().release()
        mini = api.code_to_session(js_code)
        identity = Identity(appid=api.appid, openid=mini.openid, unionid=mini.unionid, nickname="", avatar_url="")
        record = logins.record(identity, mini)
    except WeChatError as exc:
        signals.login_failed.send(current_app._get_current_object(), error=exc)  # type: ignore[attr-defined]
        raise
    user = record.user
    answer: dict[str, Any] = {"user_id": user.id, "new_user": record.new_user}
    if rt.settings.miniprogram_auth == "token":
        version = getattr(user, "wechat_token_version", 0) or 0
        answer["token"] = _serializer().dumps({"u": str(user.id), "v": version})
        answer["token_type"] = "Bearer"
        answer["expires_in"] = rt.settings.miniprogram_token_max_age
        logins.log_in(user, record, renew=False)
    else:
        logins.log_in(user, record)
    return answer


def bearer_user(runtime: Runtime, token: str) -> Any:
    """The user of a valid bearer token that logout has not revoked, else ``None``."""
    try:
        data = _serializer().loads(token, max_age=runtime.settings.miniprogram_token_max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("v", 0), int):
        return None
    return runtime.accounts().load_user(data["u"], token_version=data.get("v", 0))


def error_answer(exc: WeChatError) -> tuple[dict[str, Any], int]:
    """The JSON error and status for a failed mini program request (no code, token, key or number in it)."""
    status, code = next((status, code) for kind, status, code in _ERRORS if isinstance(exc, kind))
    answer: dict[str, Any] = {"error": code}
    errcode = getattr(exc, "errcode", None)
    if errcode is not None:
        answer["errcode"] = errcode
    return answer, status
