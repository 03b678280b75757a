"""The fake's open.weixin.qq.com side: the OA authorize page and its consent form.

WeChat matches the authorize link against a strict pattern, so the checks here are
deliberately as picky as the real thing: a client that passes them builds links
WeChat accepts. Failures are HTML pages with HTTP 200, as inside the WeChat client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .. import protocol
from . import pages
from .accounts import FakeApp
from .interfaces import ConsentBackend

__all__ = [
    "CONFIRM_PATH",
    "LINK_UNAVAILABLE",
    "PAGE_ERRORS",
    "AuthorizePageError",
    "AuthorizeRequest",
    "callback_url",
    "confirm",
    "parse_authorize",
    "redirect_uri_problem",
    "show",
]

CONFIRM_PATH: Final = protocol.OA_AUTHORIZE_PATH + "/confirm"
LINK_UNAVAILABLE: Final = "该链接无法访问"
#: The authorize-page error table of the OA web-auth doc.
PAGE_ERRORS: Final[Mapping[int, str]] = {
    10003: "redirect_uri域名与后台配置不一致",
    10005: "此公众号并没有这些scope的权限",
    10010: "scope不能为空",
    10011: "redirect_uri不能为空",
    10012: "appid不能为空",
    10013: "state不能为空",
    10016: "不支持微信开放平台的Appid，请使用公众号Appid",
}

_REQUIRED: Final = (("appid", 10012), ("redirect_uri", 10011), ("scope", 10010))
_HEAD: Final = ("appid", "redirect_uri", "response_type", "scope")
# What may follow the fixed head, in this order: WeChat's own clients send connect_redirect=1 after state.
_ORDERS: Final = tuple(
    (*_HEAD, *state, *extra)
    for state in ((), ("state",))
    for extra in ((), ("connect_redirect",), ("forcePopup",), ("connect_redirect", "forcePopup"))
)
_HTML: Final = "text/html; charset=utf-8"


@dataclass(frozen=True)
class AuthorizeRequest:
    """An authorize link that passed WeChat's checks; ``state`` is None when the link had none."""

    appid: str
    redirect_uri: str
    scope: str
    state: str | None


class AuthorizePageError(Exception):
    """The authorize link is refused; ``errcode`` None means WeChat's code-less 该链接无法访问 page."""

    def __init__(self, errcode: int | None, detail: str) -> None:
        super().__init__(errcode, detail)
        self.errcode = errcode
        self.detail = detail

    @property
    def text(self) -> str:
        """The Chinese text WeChat shows."""
        return PAGE_ERRORS.get(self.errcode, LINK_UNAVAILABLE) if self.errcode else LINK_UNAVAILABLE


def redirect_uri_problem(uri: str, app: FakeApp) -> str | None:
    """Why WeChat refuses ``uri`` as the app's redirect_uri (an English hint), or None if it is fine.

    The same rule for an OA's 网页授权域名 and a website app's 授权回调域: an absolute
    http(s) URL and, when ``app.domain`` is set, exactly that host on a default port.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "redirect_uri must be an absolute http(s) URL"
    if app.domain is None:
        return None
    # The console holds a bare domain: only the default ports work, and an explicit port fails.
    if parts.hostname != app.domain.lower() or ":" in parts.netloc.rpartition("@")[2]:
        return f"redirect_uri host must be exactly {app.domain}, without a port"
    return None


def parse_authorize(pairs: Sequence[tuple[str, str]], apps: Mapping[str, FakeApp]) -> AuthorizeRequest:
    """Validate an authorize query, received in order; raise :class:`AuthorizePageError` as WeChat would."""
    values = dict(pairs)
    for key, errcode in _REQUIRED:
        if not values.get(key):
            raise AuthorizePageError(errcode, f"{key} is missing or empty")
    keys = tuple(key for key, _ in pairs)
    if keys not in _ORDERS:
        expected = "appid, redirect_uri, response_type, scope, state[, connect_redirect][, forcePopup]"
        raise AuthorizePageError(None, f"query keys must be {expected} in this order, got {', '.join(keys)}")
    if values["response_type"] != "code":
        raise AuthorizePageError(None, "response_type must be code")
    app = apps.get(values["appid"])
    if app is None:
        raise AuthorizePageError(None, f"appid {values['appid']} is not registered with this fake")
    if app.kind == "website":
        raise AuthorizePageError(10016, f"{app.appid} is an Open Platform website app: use /connect/qrconnect")
    if app.kind != "official_account":
        raise AuthorizePageError(10005, f"{app.appid} is a {app.kind} app, not an Official Account")
    problem = redirect_uri_problem(values["redirect_uri"], app)
    if problem is not None:
        raise AuthorizePageError(10003, problem)
    if values["scope"] not in protocol.OA_SCOPES:
        raise AuthorizePageError(10005, "scope must be snsapi_base or snsapi_userinfo")
    state = values.get("state")
    if state and not protocol.is_valid_state(state):
        raise AuthorizePageError(None, f"state must match [A-Za-z0-9]{{0,{protocol.MAX_STATE_LENGTH}}}")
    return AuthorizeRequest(app.appid, values["redirect_uri"], values["scope"], state)


def callback_url(redirect_uri: str, code: str | None, state: str | None) -> str:
    """``redirect_uri`` with ``code``/``state`` appended (``?`` or ``&``), before any fragment."""
    params = [f"{key}={value}" for key, value in (("code", code), ("state", state)) if value is not None]
    if not params:
        return redirect_uri
    base, hash_mark, fragment = redirect_uri.partition("#")
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}{'&'.join(params)}{hash_mark}{fragment}"


def _error(exc: AuthorizePageError, status: int = 200) -> Response:
    return Response(pages.error_page(exc.errcode, exc.text, exc.detail), status, content_type=_HTML)


def show(fake: ConsentBackend, request: Request) -> Response:
    """``GET /connect/oauth2/authorize``: the consent page, or WeChat's error page."""
    if request.method not in ("GET", "HEAD"):
        return _error(AuthorizePageError(None, "the authorize page is opened with GET"), 405)
    try:
        auth = parse_authorize(tuple(request.args.items(multi=True)), fake.apps)
    except AuthorizePageError as exc:
        return _error(exc)
    html = pages.consent_page(
        fake.apps[auth.appid],
        action=request.script_root + CONFIRM_PATH,
        redirect_uri=auth.redirect_uri,
        scope=auth.scope,
        state=auth.state,
        users=list(fake.users.values()),
    )
    return Response(html, 200, content_type=_HTML)


def confirm(fake: ConsentBackend, request: Request) -> Response:
    """``POST /connect/oauth2/authorize/confirm``: the user's 允许 / 拒绝."""
    if request.method != "POST":
        return _error(AuthorizePageError(None, "the consent form is submitted with POST"), 405)
    form = request.form
    pairs = [(key, form.get(key, "")) for key in ("appid", "redirect_uri")]
    pairs += [("response_type", "code"), ("scope", form.get("scope", ""))]
    if "state" in form:
        pairs.append(("state", form["state"]))
    try:
        auth = parse_authorize(pairs, fake.apps)
    except AuthorizePageError as exc:
        return _error(exc)
    action = form.get("action", "")
    if action == "allow":
        user = form.get("user", "")
        if user not in fake.users:
            return _error(AuthorizePageError(None, f"unknown test user {user!r}"), 400)
        code = fake.issue_code(auth.appid, user, auth.scope)
        return redirect(iri_to_uri(callback_url(auth.redirect_uri, code, auth.state)), 302)
    if action != "deny":
        return _error(AuthorizePageError(None, "action must be allow or deny"), 400)
    if fake.deny_mode == "redirect":
        return redirect(iri_to_uri(callback_url(auth.redirect_uri, None, auth.state)), 302)
    return Response(pages.denied_page(fake.apps[auth.appid]), 200, content_type=_HTML)
