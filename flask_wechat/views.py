"""The ``wechat`` blueprint: login, callback and logout, and nothing else.

Views are thin: they read the request, hand it to the extension, and turn every
:class:`~flask_wechat.errors.WeChatError` into a short page. Nothing a browser or
WeChat can send makes them answer 5xx.
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import unquote, urlsplit

from flask import Blueprint, current_app, redirect, render_template, request
from flask_login import current_user
from werkzeug.wrappers import Response

from .errors import (
    AuthorizationDenied,
    CodeError,
    LoginFlowError,
    RateLimitedError,
    SnapshotUserError,
    StateError,
    WeChatAPIError,
    WeChatError,
)

__all__ = ["blueprint", "safe_next_url"]

log = logging.getLogger(__name__)

blueprint = Blueprint("wechat", __name__, template_folder="templates")

#: Longer ``next`` values are ignored: nobody links to such a page, and it would bloat the session.
MAX_NEXT_LENGTH: Final = 1024
_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next_url(value: str | None, default: str) -> str:
    """``value`` if it is a path on this site, else ``default``.

    Browsers read ``//host``, ``/\\host`` and ``\\\\host`` as other sites and drop
    tabs and newlines, so each decoding of the value must still be a plain path.
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return default
    candidate = value
    for _ in range(3):
        if _UNSAFE_CHARS.search(candidate):
            return default
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc or not candidate.startswith("/") or candidate.startswith("//"):
            return default
        decoded = unquote(candidate)
        if decoded == candidate:
            return value
        candidate = decoded
    return default


#: (status, page text) per error kind; the first class that matches wins.
_ERROR_PAGES: Final[tuple[tuple[type[WeChatError], int, str], ...]] = (
    (AuthorizationDenied, 403, AuthorizationDenied.public_message),
    (SnapshotUserError, 403, SnapshotUserError.public_message),
    (StateError, 400, StateError.public_message),
    (CodeError, 400, "This WeChat login link was already used or has expired. Please try again."),
    (RateLimitedError, 429, "WeChat is receiving too many logins right now. Please try again in a minute."),
    (LoginFlowError, 400, LoginFlowError.public_message),
    # WeChat failed us (busy, unreachable, bad answer, wrong credentials): a dependency failed,
    # not this site; 424 keeps such answers out of the 5xx range that pages operators.
    (WeChatError, 424, "WeChat could not complete the login right now. Please try again shortly."),
)


def error_response(exc: WeChatError) -> tuple[str, int]:
    """The page for a failed login; logs WeChat's errcode and rid, never a code or token."""
    status, message = next((status, text) for kind, status, text in _ERROR_PAGES if isinstance(exc, kind))
    if isinstance(exc, WeChatAPIError):
        log.warning("WeChat login failed: errcode %s (%s) rid=%s", exc.errcode, exc.errmsg, exc.rid)
    else:
        log.warning("WeChat login failed: %s", type(exc).__name__)
    settings = current_app.extensions["wechat"].settings
    page = render_template(
        "wechat/error.html", message=message, status=status, retry_url=f"{settings.url_prefix}/login"
    )
    return page, status


@blueprint.get("/login")
def login() -> Response:
    """Send the visitor through WeChat, then back to ``next`` (a same-site path only)."""
    state = current_app.extensions["wechat"]
    next_url = safe_next_url(request.args.get("next"), state.settings.default_next)
    if current_user.is_authenticated:
        return redirect(next_url)
    response: Response = state.begin_login(next_url)
    return response


@blueprint.get("/callback")
def callback() -> Response | tuple[str, int]:
    """Where WeChat sends the browser back, with ``code`` and ``state`` (or only ``state``)."""
    try:
        next_url = current_app.extensions["wechat"].complete_login()
    except WeChatError as exc:
        return error_response(exc)
    return redirect(next_url)


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    """Log out and forget what the extension kept in the session."""
    state = current_app.extensions["wechat"]
    state.logout()
    return redirect(safe_next_url(request.values.get("next"), state.settings.default_next))
