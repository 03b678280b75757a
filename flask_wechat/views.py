"""The ``wechat`` blueprint: login, callbacks, binding, logout and their pages, and nothing else.

Views are thin: they read the request, hand it to :class:`~flask_wechat.login.Logins`,
and turn every :class:`~flask_wechat.errors.WeChatError` into a short page. Nothing a
browser or WeChat can send makes them answer 5xx; a failing service this site depends
on (WeChat, the database, the shared store) is a 502 or 503 page that heals by itself.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from functools import partial
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from werkzeug.wrappers import Response

from . import protocol
from .errors import (
    AccountConflictError,
    AuthorizationDenied,
    CodeBlockedError,
    CodeError,
    CookieLostError,
    IdentityTakenError,
    IPNotAllowedError,
    LoginFlowError,
    LoginRefusedError,
    NotAMemberError,
    RateLimitedError,
    ServiceUnavailableError,
    SnapshotUserError,
    StateError,
    StorageError,
    SystemBusyError,
    UntrustedDomainError,
    WeChatAPIError,
    WeChatError,
)
from .flows import WebFlow
from .i18n import MESSAGES, pick_language
from .login import Logins, Retry
from .miniprogram import error_answer, log_in_with_code, read_code
from .phone import read_phone_request, share_phone_number

__all__ = ["LoginViews", "safe_next_url"]

log = logging.getLogger(__name__)

#: Longer ``next`` values are ignored: nobody links to such a page, and it would bloat the store.
MAX_NEXT_LENGTH: Final = 1024
_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\\]")
#: Session key of the token a logout form must carry.
CSRF_SESSION_KEY: Final = "_wechat_csrf"
CSRF_FIELD: Final = "wechat_csrf"
#: Longer page addresses are not signed for the JS-SDK.
MAX_JSSDK_URL_LENGTH: Final = 4096
#: Seconds a browser is asked to wait before trying a busy service again.
RETRY_AFTER_SECONDS: Final = 30


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
    (NotAMemberError, 403, "not_member"),
    (LoginRefusedError, 403, "refused"),
    (AccountConflictError, 409, "flow"),
    (CookieLostError, 400, "cookies"),
    (StateError, 400, "state"),
    (CodeBlockedError, 403, "code_blocked"),
    (CodeError, 400, "code"),
    (LoginFlowError, 400, "flow"),
    # WeChat is busy: it said so (-1 after retries) or throttles us (45011); it heals by itself.
    (RateLimitedError, 503, "rate_limited"),
    (SystemBusyError, 503, "unavailable"),
    # This site's own database or shared store failed.
    (ServiceUnavailableError, 503, "busy"),
    (StorageError, 503, "busy"),
    # WeChat failed us: unreachable, a malformed answer, or refusing this site's credentials.
    (WeChatError, 502, "unavailable"),
)


class LoginViews:
    """The blueprint's views for one app, bound to its :class:`Logins`."""

    def __init__(self, logins: Logins) -> None:
        self.logins = logins
        self.settings = logins.runtime.settings

    def blueprint(self) -> Blueprint:
        """A ``wechat`` blueprint with every view of this app."""
        bp = Blueprint("wechat", __name__, template_folder="templates")
        bp.add_url_rule("/login", "login", self.login)
        for flow in self.logins.runtime.web.values():
            # Each flow's own callback: a state minted for one flow is refused at another's.
            endpoint = flow.callback_endpoint.partition(".")[2]
            bp.add_url_rule(flow.callback_path, endpoint, partial(self._finish, flow.name))
        bp.add_url_rule("/qr", "qr", self.qr)
        bp.add_url_rule("/choose", "choose", self.choose)
        bp.add_url_rule("/bind", "bind", self.bind)
        bp.add_url_rule("/logout", "logout", self.logout, methods=["GET", "POST"])
        bp.add_url_rule("/miniprogram/login", "miniprogram_login", self.miniprogram_login, methods=["POST"])
        bp.add_url_rule("/miniprogram/phone", "miniprogram_phone", self.miniprogram_phone, methods=["POST"])
        bp.add_url_rule("/jssdk-config", "jssdk_config", self.jssdk_config)
        bp.add_app_template_global(self.wechat_qr_login, "wechat_qr_login")
        bp.add_app_template_global(self.wechat_jssdk_config, "wechat_jssdk_config")
        bp.add_app_template_global(self.wechat_wecom_login, "wechat_wecom_login")
        bp.add_app_template_global(csrf_token, "wechat_csrf_token")
        bp.app_errorhandler(ServiceUnavailableError)(self.error_page)
        return bp

    # -- pages ------------------------------------------------------------------------------

    def language(self) -> str:
        """The visitor's language (``zh-CN`` or ``en``): their Accept-Language, else ``WECHAT_DEFAULT_LANGUAGE``."""
        return pick_language(request.headers.get("Accept-Language"), self.settings.default_language)

    def page(self, template: str, **context: object) -> str:
        """Render one of the extension's pages in the visitor's language (as ``t`` and ``lang``)."""
        language = self.language()
        return render_template(template, t=MESSAGES[language], lang=language, **context)

    def error_page(self, exc: WeChatError, retry: Retry | None = None) -> Response:
        """The page for a failed login or binding; logs WeChat's errcode and rid, never a code or token.

        Its "try again" starts ``retry`` over: by default a login that goes on to this request's ``next``.
        """
        status, words = next((status, key) for kind, status, key in _ERROR_PAGES if isinstance(exc, kind))
        if isinstance(exc, (IPNotAllowedError, UntrustedDomainError)):
            # The operator's to fix: the IP or the domain to add, and where (WeChat's errmsg names neither place).
            log.error("WeChat login failed: %s rid=%s", exc, exc.rid)
        elif isinstance(exc, WeChatAPIError):
            log.warning("WeChat login failed: errcode %s (%s) rid=%s", exc.errcode, exc.errmsg, exc.rid)
        elif isinstance(exc, (ServiceUnavailableError, StorageError)):
            # Which service and the driver's error type, or the column: never a value that was sent.
            log.error("WeChat login failed: %s", exc)
        else:
            log.warning("WeChat login failed: %s", type(exc).__name__)
        retry = retry or Retry(self._next_url())
        kind = "bind" if retry.bind else "login"
        if retry.bind and f"{words}_bind" in MESSAGES["en"]:
            words = f"{words}_bind"
        body = self.page(
            "wechat/error.html",
            title=f"{kind}_{'unavailable' if status >= 500 else 'failed'}",
            words=words,
            status=status,
            error=type(exc).__name__,
            retry_url=url_for(f"wechat.{kind}", next=retry.next_url),
            next_url=retry.next_url,
            bind=retry.bind,
        )
        response = current_app.make_response((body, status))
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    def _default_next(self) -> str:
        return request.script_root + self.settings.default_next

    def _next_url(self) -> str:
        return safe_next_url(request.values.get("next"), self._default_next())

    def _flow(self, name: str) -> WebFlow:
        flow = self.logins.runtime.web.get(name)
        if flow is None:
            abort(404)
        return flow

    # -- login -------------------------------------------------------------------------------

    def send_to_wechat(self) -> Response:
        """Flask-Login's unauthorized handler: send the visitor to WeChat now, and back here after."""
        flow = self.logins.choose_flow(None, request.headers.get("User-Agent", ""))
        if flow is None:
            abort(401)  # only a mini program is configured: no browser login exists
        here = safe_next_url(
            request.script_root + (request.full_path if request.query_string else request.path), self._default_next()
        )
        if self._browser_may_choose():
            return redirect(url_for("wechat.choose", next=here))
        try:
            return self.logins.start(flow, here)
        except WeChatError as exc:
            return self.error_page(exc)

    def login(self) -> Response:
        """Send the visitor through WeChat, then back to ``next`` (a same-site path only).

        ``flow`` picks the way: ``oa`` (inside WeChat), ``qr`` (desktop QR) or ``auto``
        (the default: by the browser's User-Agent). An unknown or unconfigured flow is a 404.
        """
        requested = request.args.get("flow")
        flow = self.logins.choose_flow(requested, request.headers.get("User-Agent", ""))
        if flow is None:
            abort(404)
        if current_user.is_authenticated:
            return redirect(self._next_url())
        if requested in (None, "", "auto") and self._browser_may_choose():
            return redirect(url_for("wechat.choose", next=self._next_url()))
        try:
            return self.logins.start(flow, self._next_url())
        except WeChatError as exc:
            return self.error_page(exc)

    def _finish(self, name: str) -> Response:
        """Where WeChat (or WeCom) sends the browser back with ``code`` and ``state``, for the flow ``name``."""
        flow = self._flow(name)
        framed = request.headers.get("Sec-Fetch-Dest") == "iframe"
        if framed and request.headers.get("Sec-Fetch-Site") == "cross-site":
            # WeChat's QR frame (self_redirect) loaded the callback: the browser sent no cookie and would
            # refuse one. Load it again from this site's own page, where the session cookie travels.
            return self._private_page("wechat/reload.html", url=request.script_root + request.full_path)
        try:
            response = self.logins.finish(flow, request.args)
        except WeChatError as exc:
            return self.error_page(exc, self.logins.retry(request.args))
        if framed and response.status_code == 302:
            return self._private_page("wechat/continue.html", url=response.location)
        return response

    def _private_page(self, template: str, **context: object) -> Response:
        """A page whose URL holds a code: never cached, never sent on as a Referer."""
        response = current_app.make_response(self.page(template, **context))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def _browser_may_choose(self) -> bool:
        """Whether this browser fits more than one flow (a desktop with WeChat's QR and WeCom's web login)."""
        return len(self.logins.candidates(request.headers.get("User-Agent", ""))) > 1

    def _in_wechat(self) -> bool:
        return protocol.is_wechat_browser(request.headers.get("User-Agent", ""))

    def qr(self) -> Response | str:
        """A page of this site that shows WeChat's QR code (wxLogin.js); override ``wechat/qr.html``.

        Inside WeChat a phone cannot scan its own screen: the visitor goes to the in-WeChat
        login when the site has one, else the page says where the code can be scanned.
        """
        self._flow("qr")
        if self._in_wechat() and "oa" in self.logins.runtime.web:
            return redirect(url_for("wechat.login", flow="oa", next=self._next_url()))
        return self.page("wechat/qr.html", next_url=self._next_url(), in_wechat=self._in_wechat())

    def choose(self) -> str:
        """A page offering the ways to log in this browser can use, likeliest first; override ``wechat/choose.html``.

        ``flows`` lists their names in order: inside WeChat (or WeCom) its own flow only (no QR
        code a phone could scan there), elsewhere the flows for any browser (``qr``, ``wecom_web``)
        then the others. ``qr_hidden`` says a login for other browsers exists but was left out.
        """
        user_agent = request.headers.get("User-Agent", "")
        web = list(self.logins.runtime.web.values())
        fitting = [flow for flow in web if flow.fits(user_agent)]
        in_client = protocol.is_wechat_browser(user_agent) or protocol.is_wecom_browser(user_agent)
        if in_client:
            flows = [flow for flow in fitting if flow.in_client][:1]
        else:
            flows = fitting + [flow for flow in web if flow not in fitting]
        return self.page(
            "wechat/choose.html",
            next_url=self._next_url(),
            flows=[flow.name for flow in flows],
            qr_hidden=in_client and any(not flow.in_client for flow in web),
        )

    def wechat_qr_login(
        self,
        next: str | None = None,
        element_id: str = "wechat-qr",
        self_redirect: bool = False,
        style: str = "black",
        *,
        lang: str | None = None,
        stylelite: bool = False,
        fast_login: bool = True,
        href: str | None = None,
    ) -> Markup:
        """Embed WeChat's QR login in any template: ``{{ wechat_qr_login(next="/me") }}``.

        The state is minted here, on the server, and checked by the callback exactly like
        the redirect flow's. ``redirect_uri`` (and ``href``) are passed URL-encoded, as
        wxLogin.js pastes them into its iframe's address unchanged. The other options are
        wxLogin.js's: ``lang`` (``"cn"`` or ``"en"``; by default the page's language),
        ``style`` (``"black"`` or ``"white"`` text), ``stylelite`` (WeChat's newer, smaller
        QR; it ignores ``href``), ``fast_login=False`` (no "fast login" of a desktop WeChat)
        and ``href`` (a stylesheet for the QR frame, often a ``data:text/css;base64,...`` URL).
        """
        flow = self.logins.runtime.web.get("qr")
        if flow is None:
            raise RuntimeError("wechat_qr_login needs WECHAT_OPEN_APPID and WECHAT_OPEN_SECRET")
        options: dict[str, object] = {
            "self_redirect": self_redirect,
            "id": element_id,
            "appid": flow.appid,
            "scope": protocol.SCOPE_LOGIN,
            "redirect_uri": quote(url_for(flow.callback_endpoint, _external=True), safe=""),
            "state": self.logins.new_state(flow, safe_next_url(next, self._default_next())),
            "style": style,
            "lang": "en" if (lang or self.language()) == "en" else "cn",
        }
        # wxLogin.js checks `1 === stylelite` and `0 === fast_login`: other values mean the defaults.
        if stylelite:
            options["stylelite"] = 1
        if not fast_login:
            options["fast_login"] = 0
        if href:
            options["href"] = quote(href, safe="")
        script = self.settings.qr_script_url
        if script.startswith("/"):
            script = request.script_root + script  # a stand-in served inside this app (the fake)
        return Markup(  # noqa: S704 - a rendered template, already escaped by Jinja
            render_template("wechat/qr_widget.html", options=options, element_id=element_id, script=script)
        )

    def wechat_wecom_login(
        self,
        next: str | None = None,
        element_id: str = "wecom-login",
        redirect_type: str = "top",
        *,
        lang: str | None = None,
    ) -> Markup:
        """Embed WeCom's login panel in any template: ``{{ wechat_wecom_login(next="/me") }}``.

        The state is minted here, on the server, and checked by the callback like the redirect
        flow's. ``redirect_type`` is the panel's: ``"top"`` (the whole page goes to the callback),
        ``"callback"`` (this page takes the code there itself) or ``"self"`` (inside the panel).
        The page must load ``@wecom/jssdk`` (>= 2.3.2) unless ``WECHAT_WECOM_PANEL_SCRIPT_URL`` names a script.
        """
        flow = self.logins.runtime.web.get("wecom_web")
        settings = self.settings.wecom
        if flow is None or settings is None:
            raise RuntimeError(
                "wechat_wecom_login needs WECHAT_WECOM_CORPID, WECHAT_WECOM_AGENTID and WECHAT_WECOM_SECRET"
            )
        if redirect_type not in ("top", "callback", "self"):
            raise ValueError("redirect_type must be 'top', 'callback' or 'self'")
        params = {
            "login_type": "CorpApp",
            "appid": settings.corpid,
            "agentid": str(settings.agentid),
            "redirect_uri": url_for(flow.callback_endpoint, _external=True),
            "state": self.logins.new_state(flow, safe_next_url(next, self._default_next())),
            "redirect_type": redirect_type,
            "lang": "en" if (lang or self.language()) == "en" else "zh",
        }
        script = settings.panel_script_url
        if script and script.startswith("/"):
            script = request.script_root + script  # a stand-in served inside this app (the fake)
        return Markup(  # noqa: S704 - a rendered template, already escaped by Jinja
            render_template("wechat/wecom_panel.html", params=params, element_id=element_id, script=script)
        )

    def bind(self) -> Response:
        """Link a WeChat identity to the logged-in user (e.g. a "bind WeChat" button in settings)."""
        if not current_user.is_authenticated:
            response: Response = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            return response
        flow = self.logins.choose_flow(request.args.get("flow"), request.headers.get("User-Agent", ""))
        if flow is None:
            abort(404)
        try:
            return self.logins.start(flow, self._next_url(), bind=True)
        except WeChatError as exc:
            return self.error_page(exc, Retry(self._next_url(), bind=True))

    def miniprogram_login(self) -> tuple[Response, int]:
        """JSON login for a mini program: ``{"code": "<wx.login() code>"}`` in, the user out."""
        if self.logins.runtime.miniprogram is None:
            abort(404)
        try:
            answer = log_in_with_code(self.logins, read_code(request))
        except WeChatError as exc:
            return self._json_error(exc, "mini program login")
        return jsonify(answer), 200

    def miniprogram_phone(self) -> tuple[Response, int]:
        """The logged-in mini program user's phone number: ``{"code": "<getPhoneNumber code>"}`` in.

        The legacy ``{"encryptedData": ..., "iv": ...}`` of older clients is accepted too.
        """
        api = self.logins.runtime.apps.get("miniprogram")
        if api is None:
            abort(404)
        if not current_user.is_authenticated:
            return jsonify({"error": "login_required"}), 401
        try:
            answer = share_phone_number(
                self.logins.runtime, api, current_user._get_current_object(), read_phone_request(request)
            )
        except WeChatError as exc:
            return self._json_error(exc, "mini program phone number")
        response = jsonify(answer)
        response.headers["Cache-Control"] = "no-store"  # personal data
        return response, 200

    def _json_error(self, exc: WeChatError, what: str) -> tuple[Response, int]:
        """A mini program's JSON error: a stable ``error`` code, WeChat's errcode, never a value that was sent."""
        body, status = error_answer(exc)
        if isinstance(exc, (ServiceUnavailableError, IPNotAllowedError)):
            log.error("%s failed: %s", what, exc)
        else:
            log.warning("%s failed: %s", what, body["error"])
        response = jsonify(body)
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        return response, status

    # -- JS-SDK ------------------------------------------------------------------------------

    def jssdk_config(self) -> tuple[Response, int]:
        """``wx.config``'s fields for ``?url=`` (a page of this site, as ``location.href.split('#')[0]``)."""
        api = self.logins.runtime.apps.get("oa")
        if api is None:
            abort(404)
        url = request.args.get("url", "")
        if not self._is_this_site(url):
            return jsonify({"error": "invalid_url"}), 400
        try:
            config = api.jssdk_config(url.split("#", 1)[0])
        except WeChatError as exc:
            return self._json_error(exc, "JS-SDK config")
        response = jsonify(config)
        response.headers["Cache-Control"] = "no-store"
        return response, 200

    @staticmethod
    def _is_this_site(url: str) -> bool:
        if not url or len(url) > MAX_JSSDK_URL_LENGTH or _UNSAFE_CHARS.search(url):
            return False
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()

    def wechat_jssdk_config(
        self, api_list: list[str] | tuple[str, ...] = (), url: str | None = None, debug: bool = False
    ) -> Markup:
        """``wx.config({{ wechat_jssdk_config(["updateAppMessageShareData"]) }})`` for the current page.

        The URL signed is this page's as the browser has it (prefix and query included, no
        fragment); pass ``url`` when the page's address differs (a single-page app: use
        ``/wechat/jssdk-config`` from the browser instead).
        """
        api = self.logins.runtime.apps.get("oa")
        if api is None:
            raise RuntimeError("wechat_jssdk_config needs WECHAT_APPID and WECHAT_SECRET (an Official Account)")
        config: dict[str, object] = {"debug": debug}
        config.update(api.jssdk_config((url or current_page_url()).split("#", 1)[0]))
        config["jsApiList"] = list(api_list)
        return htmlsafe_json_dumps(config)

    # -- logout ------------------------------------------------------------------------------

    def logout(self) -> Response | str | tuple[str, int]:
        """Log out: a POST with the session's CSRF token (GET shows the button), or a mini program's bearer POST.

        A bearer-authenticated request carries no ambient credential, so it needs no token.
        """
        bearer = request.headers.get("Authorization", "").startswith("Bearer ")
        if request.method == "POST" and bearer:
            self.logins.log_out()
            return jsonify({"logged_out": True})
        if request.method == "GET":
            return self.page("wechat/logout.html", next_url=self._next_url(), expired=False)
        sent = request.form.get(CSRF_FIELD, "")
        expected = session.get(CSRF_SESSION_KEY)
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            return self.page("wechat/logout.html", next_url=self._next_url(), expired=True), 400
        self.logins.log_out()
        session.pop(CSRF_SESSION_KEY, None)
        return redirect(self._next_url())


def current_page_url() -> str:
    """This request's URL as the browser shows it (without the fragment, which never reaches the server).

    The request line's own bytes when the server keeps them (``REQUEST_URI``/``RAW_URI``),
    so the encoding is the browser's; behind a proxy that strips a prefix, the prefix
    (``SCRIPT_NAME``, e.g. from ``ProxyFix``'s ``X-Forwarded-Prefix``) is put back.
    """
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    root = quote(request.script_root)
    if isinstance(raw, str) and raw.startswith("/"):
        target = raw if not root or raw == root or raw.startswith((root + "/", root + "?")) else root + raw
    else:
        target = (
            root + quote(request.path) + ("?" + request.query_string.decode("latin-1") if request.query_string else "")
        )
    return f"{request.scheme}://{request.host}{target}"


def csrf_token() -> str:
    """This session's token for the logout form (``{{ wechat_csrf_token() }}`` in templates)."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(24)
    return token
