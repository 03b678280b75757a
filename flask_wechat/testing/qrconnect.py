"""The fake's website QR login (Open Platform 网站应用): ``/connect/qrconnect`` and its scan form.

Two variants share one page. The redirect flow opens it full-page
(``appid, redirect_uri, response_type=code, scope=snsapi_login, state``, in any
order). wxLogin.js embeds it in a 300x400 iframe (``login_type=jssdk``): then
``self_redirect=true`` redirects inside the iframe and anything else makes the page
navigate the top window. Errors are HTML pages with HTTP 200, like WeChat's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .. import protocol
from . import pages
from .accounts import FakeApp
from .authorize import LINK_UNAVAILABLE, callback_url, redirect_uri_problem
from .interfaces import ConsentBackend

__all__ = [
    "CONFIRM_PATH",
    "REDIRECT_URI_ERROR",
    "SCOPE_ERROR",
    "QRConnectPageError",
    "QRConnectRequest",
    "confirm",
    "parse_qrconnect",
    "show",
]

CONFIRM_PATH: Final = protocol.QRCONNECT_PATH + "/confirm"
SCOPE_ERROR: Final = "Scope 参数错误或没有 Scope 权限"
REDIRECT_URI_ERROR: Final = "redirect_uri 参数错误"
_HTML: Final = "text/html; charset=utf-8"
# Kept through the scan form so the confirm step knows how to answer.
_FORM_KEYS: Final = ("appid", "redirect_uri", "scope", "state", "login_type", "self_redirect", "lang")


@dataclass(frozen=True)
class QRConnectRequest:
    """A qrconnect link that passed WeChat's checks; ``state`` is None when the link had none.

    ``embedded`` is the wxLogin.js iframe (``login_type=jssdk``); ``self_redirect``
    is its raw value (``"true"``, ``"false"``, ``"default"`` or ``""``).
    """

    appid: str
    redirect_uri: str
    state: str | None
    lang: str = "cn"
    embedded: bool = False
    self_redirect: str = ""
    style: str = ""
    href: str = ""
    stylelite: bool = False

    @property
    def navigates_top(self) -> bool:
        """Whether the answer must move the top window (embedded, without ``self_redirect=true``)."""
        return self.embedded and self.self_redirect != "true"

    def form_fields(self) -> list[tuple[str, str]]:
        """The hidden fields of the scan form."""
        fields = [("appid", self.appid), ("redirect_uri", self.redirect_uri), ("scope", protocol.SCOPE_LOGIN)]
        if self.state is not None:
            fields.append(("state", self.state))
        if self.embedded:
            fields += [("login_type", "jssdk"), ("self_redirect", self.self_redirect)]
        if self.lang == "en":
            fields.append(("lang", "en"))
        return fields


class QRConnectPageError(Exception):
    """The qrconnect link is refused with WeChat's page ``text``; ``detail`` is an English hint."""

    def __init__(self, text: str, detail: str) -> None:
        super().__init__(text, detail)
        self.text = text
        self.detail = detail


def parse_qrconnect(values: Mapping[str, str], apps: Mapping[str, FakeApp]) -> QRConnectRequest:
    """Validate a qrconnect query (order is free); raise :class:`QRConnectPageError` as WeChat would."""
    appid = values.get("appid", "")
    app = apps.get(appid) if appid else None
    if app is None:
        raise QRConnectPageError(LINK_UNAVAILABLE, f"appid {appid!r} is not registered with this fake")
    if app.kind != "website":
        raise QRConnectPageError(SCOPE_ERROR, f"{appid} is a {app.kind} app; qrconnect needs a website app")
    if values.get("scope") != protocol.SCOPE_LOGIN:
        raise QRConnectPageError(SCOPE_ERROR, "scope must be snsapi_login")
    if values.get("response_type", "code") != "code":
        raise QRConnectPageError(LINK_UNAVAILABLE, "response_type must be code")
    redirect_uri = values.get("redirect_uri", "")
    problem = "redirect_uri is missing" if not redirect_uri else redirect_uri_problem(redirect_uri, app)
    if problem is not None:
        raise QRConnectPageError(REDIRECT_URI_ERROR, problem)
    embedded = values.get("login_type") == "jssdk"
    return QRConnectRequest(
        appid=app.appid,
        redirect_uri=redirect_uri,
        state=values.get("state"),
        lang="en" if values.get("lang") == "en" else "cn",
        embedded=embedded,
        self_redirect=values.get("self_redirect", "") if embedded else "",
        style=values.get("style", ""),
        href=values.get("href", ""),
        stylelite=values.get("stylelite") == "1",
    )


def _error(exc: QRConnectPageError, status: int = 200) -> Response:
    return Response(pages.error_page(None, exc.text, exc.detail), status, content_type=_HTML)


def show(fake: ConsentBackend, request: Request) -> Response:
    """``GET /connect/qrconnect``: the QR scan page (full page or wxLogin.js iframe), or WeChat's error page."""
    if request.method not in ("GET", "HEAD"):
        return _error(QRConnectPageError(LINK_UNAVAILABLE, "the QR login page is opened with GET"), 405)
    try:
        qr = parse_qrconnect(request.args.to_dict(), fake.apps)
    except QRConnectPageError as exc:
        return _error(exc)
    html = pages.scan_page(
        fake.apps[qr.appid],
        action=request.script_root + CONFIRM_PATH,
        hidden=qr.form_fields(),
        users=[user for user in fake.users.values() if not user.snapshot],
        lang=qr.lang,
        embedded=qr.embedded,
        white=qr.style == "white",
        # Like WeChat: a custom stylesheet only without the new (stylelite) UI.
        stylesheet=qr.href if qr.href and not qr.stylelite else None,
    )
    return Response(html, 200, content_type=_HTML)


def _state_param(state: str | None) -> str | None:
    # qrconnect puts no charset rule on state: percent-encode it so it comes back intact.
    return None if state is None else quote(state, safe="")


def _navigate(qr: QRConnectRequest, url: str) -> Response:
    location = iri_to_uri(url)
    if qr.navigates_top:
        return Response(pages.top_redirect_page(location), 200, content_type=_HTML)
    return redirect(location, 302)


def confirm(fake: ConsentBackend, request: Request) -> Response:
    """``POST /connect/qrconnect/confirm``: the test user "scanned" and pressed 允许 / 拒绝."""
    if request.method != "POST":
        return _error(QRConnectPageError(LINK_UNAVAILABLE, "the scan form is submitted with POST"), 405)
    form = request.form
    try:
        qr = parse_qrconnect({key: form[key] for key in _FORM_KEYS if key in form}, fake.apps)
    except QRConnectPageError as exc:
        return _error(exc)
    action = form.get("action", "")
    if action == "allow":
        user = fake.users.get(form.get("user", ""))
        if user is None or user.snapshot:
            detail = f"unknown test user {form.get('user', '')!r}" if user is None else "snapshot users cannot scan"
            return _error(QRConnectPageError(LINK_UNAVAILABLE, detail), 400)
        code = fake.issue_code(qr.appid, user.key, protocol.SCOPE_LOGIN)
        return _navigate(qr, callback_url(qr.redirect_uri, code, _state_param(qr.state)))
    if action != "deny":
        return _error(QRConnectPageError(LINK_UNAVAILABLE, "action must be allow or deny"), 400)
    if fake.deny_mode == "redirect":
        return _navigate(qr, callback_url(qr.redirect_uri, None, _state_param(qr.state)))
    return Response(pages.denied_page(fake.apps[qr.appid]), 200, content_type=_HTML)
