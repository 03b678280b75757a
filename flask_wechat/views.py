"""The ``wechat`` blueprint: login, callback and logout, and nothing else.

Views are thin: they read the request, hand it to the extension, and turn every
:class:`~flask_wechat.errors.WeChatError` into a short page. Nothing a browser or
WeChat can send makes them answer 5xx.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, unquote, urlsplit

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from . import protocol
from .errors import (
    AccountConflictError,
    AuthorizationDenied,
    CodeBlockedError,
    CodeError,
    IdentityTakenError,
    LoginFlowError,
    RateLimitedError,
    SnapshotUserError,
    StateError,
    WeChatAPIError,
    WeChatError,
)
from .i18n import MESSAGES, pick_language
from .miniprogram import error_answer, log_in_with_code, read_code

if TYPE_CHECKING:
    from .runtime import WeChatState

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


#: (status, words in :mod:`.i18n`) per error kind; the first class that matches wins.
_ERROR_PAGES: Final[tuple[tuple[type[WeChatError], int, str], ...]] = (
    (AuthorizationDenied, 403, "denied"),
    (SnapshotUserError, 403, "snapshot"),
    (IdentityTakenError, 409, "identity_taken"),
    (AccountConflictError, 409, "flow"),
    (StateError, 400, "state"),
    (CodeBlockedError, 403, "code_blocked"),
    (CodeError, 400, "code"),
    (RateLimitedError, 429, "rate_limited"),
    (LoginFlowError, 400, "flow"),
    # WeChat failed us (busy, unreachable, bad answer, wrong credentials): a dependency failed,
    # not this site; 424 keeps such answers out of the 5xx range that pages operators.
    (WeChatError, 424, "unavailable"),
)


def page(template: str, **context: object) -> str:
    """Render one of the extension's pages in the visitor's language (as ``t`` and ``lang``)."""
    settings = _state().settings
    language = pick_language(request.headers.get("Accept-Language"), settings.default_language)
    return render_template(template, t=MESSAGES[language], lang=language, **context)


def error_response(exc: WeChatError) -> tuple[str, int]:
    """The page for a failed login; logs WeChat's errcode and rid, never a code or token."""
    status, words = next((status, key) for kind, status, key in _ERROR_PAGES if isinstance(exc, kind))
    if isinstance(exc, WeChatAPIError):
        log.warning("WeChat login failed: errcode %s (%s) rid=%s", exc.errcode, exc.errmsg, exc.rid)
    else:
        log.warning("WeChat login failed: %s", type(exc).__name__)
    retry_url = f"{_state().settings.url_prefix}/login"
    return page("wechat/error.html", words=words, status=status, error=type(exc).__name__, retry_url=retry_url), status


def _state() -> WeChatState:
    state: WeChatState = current_app.extensions["wechat"]
    return state


def _next_url(state: WeChatState) -> str:
    return safe_next_url(request.values.get("next"), state.settings.default_next)


def send_to_wechat() -> Response:
    """Flask-Login's unauthorized handler: send the visitor to WeChat now, and back here after."""
    state = _state()
    flow = state.choose_flow(None)
    if flow is None:
        abort(401)  # only a mini program is configured: no browser login exists
    here = request.full_path if request.query_string else request.path
    return state.begin_login(flow, safe_next_url(here, state.settings.default_next))


@blueprint.get("/login")
def login() -> Response:
    """Send the visitor through WeChat, then back to ``next`` (a same-site path only).

    ``flow`` picks the way: ``oa`` (inside WeChat), ``qr`` (desktop QR) or ``auto``
    (the default: by the browser's User-Agent). An unknown or unconfigured flow is a 404.
    """
    state = _state()
    flow = state.choose_flow(request.args.get("flow"))
    if flow is None:
        abort(404)
    next_url = _next_url(state)
    if current_user.is_authenticated:
        return redirect(next_url)
    return state.begin_login(flow, next_url)


def _finish(flow: str) -> Response | tuple[str, int]:
    state = _state()
    if flow not in state.web_flows:
        abort(404)
    try:
        next_url = state.complete_login(flow)
    except WeChatError as exc:
        return error_response(exc)
    return redirect(next_url)


@blueprint.get("/callback")
def callback() -> Response | tuple[str, int]:
    """Where WeChat sends the browser back from in-WeChat authorization (``code`` and ``state``)."""
    return _finish("oa")


@blueprint.get("/qr/callback")
def qr_callback() -> Response | tuple[str, int]:
    """Where WeChat sends the browser back from a QR login (redirect page or embedded QR)."""
    return _finish("qr")


@blueprint.get("/qr")
def qr() -> str:
    """A page of this site that shows WeChat's QR code (wxLogin.js); override ``wechat/qr.html``."""
    state = _state()
    if "qr" not in state.web_flows:
        abort(404)
    return page("wechat/qr.html", next_url=_next_url(state))


@blueprint.get("/choose")
def choose() -> str:
    """A page offering every configured way to log in; override ``wechat/choose.html``."""
    state = _state()
    return page("wechat/choose.html", next_url=_next_url(state), flows=sorted(state.web_flows))


@blueprint.app_template_global("wechat_qr_login")
def wechat_qr_login(
    next: str | None = None, element_id: str = "wechat-qr", self_redirect: bool = False, style: str = "black"
) -> Markup:
    """Embed WeChat's QR login in any template: ``{{ wechat_qr_login(next="/me") }}``.

    The state is minted here, on the server, and checked by the callback exactly like
    the redirect flow's. ``redirect_uri`` is passed pre-encoded, as wxLogin.js wants.
    """
    state = _state()
    if "qr" not in state.web_flows:
        raise RuntimeError("wechat_qr_login needs WECHAT_OPEN_APPID and WECHAT_OPEN_SECRET")
    options = {
        "self_redirect": self_redirect,
        "id": element_id,
        "appid": state.web_flows["qr"].credentials.appid,
        "scope": protocol.SCOPE_LOGIN,
        "redirect_uri": quote(state.callback_url("qr"), safe=""),
        "state": state.begin_state("qr", safe_next_url(next, state.settings.default_next)),
        "style": style,
    }
    return Markup(  # noqa: S704 - a rendered template, already escaped by Jinja
        render_template(
            "wechat/qr_widget.html", options=options, element_id=element_id, script=state.settings.qr_script_url
        )
    )


@blueprint.get("/bind")
def bind() -> Response:
    """Link a WeChat identity to the logged-in user (e.g. a "bind WeChat" button in settings)."""
    state = _state()
    if not current_user.is_authenticated:
        response: Response = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return response
    flow = state.choose_flow(request.args.get("flow"))
    if flow is None:
        abort(404)
    return state.begin_login(flow, _next_url(state), bind=True)


@blueprint.post("/miniprogram/login")
def miniprogram_login() -> tuple[Response, int]:
    """JSON login for a mini program: ``{"code": "<wx.login() code>"}`` in, the user out."""
    state = _state()
    if state.miniprogram is None:
        abort(404)
    try:
        answer = log_in_with_code(state, read_code(request))
    except WeChatError as exc:
        body, status = error_answer(exc)
        log.warning("mini program login failed: %s", body["error"])
        return jsonify(body), status
    return jsonify(answer), 200


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    """Log out and forget what the extension kept in the session."""
    state = _state()
    state.logout()
    return redirect(_next_url(state))
