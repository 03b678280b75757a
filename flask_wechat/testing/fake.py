"""A fake WeChat: one WSGI app imitating both open.weixin.qq.com and api.weixin.qq.com.

It serves every WeChat login a site needs: Official Account web auth inside WeChat,
website QR login (full page or the wxLogin.js iframe) and mini program
``jscode2session``; and the server APIs on the app access token: ``/cgi-bin/token``,
``/cgi-bin/stable_token``, the mini program phone number, follower info and the
JS-SDK ticket (with a ``jweixin`` stand-in and a mini program simulator page). It is
faithful where clients go wrong (strictly ordered authorize links, single-use codes,
errors as HTTP 200 JSON with ``text/plain``, raw UTF-8 nicknames, unionid only for
bound apps, snapshot users, superseded app tokens) and lets tests inject the failures
WeChat produces. WeCom (企业微信) lives alongside, independent of the rest: its corps,
in-client and web login pages and qyapi answers are in :mod:`.wecom` and
:mod:`.wecompages`. No Flask here: users' tests and the demo app embed it without
pulling in the rest of the package.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from .. import protocol
from . import authorize, avatars, control, jssdk, pages, qrconnect, simulator, wecom, wecompages, wire, wxlogin
from .accounts import (
    DEFAULT_APPS,
    DEFAULT_USERS,
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
    DEMO_OPEN_APPID,
    DEMO_OPEN_SECRET,
    DEMO_SECRET,
    SNAPSHOT_AVATAR,
    SNAPSHOT_NICKNAME,
    AppKind,
    FakeApp,
    FakeUser,
    stable_id,
)
from .apptokens import AppTokenStore
from .grants import Grant, GrantStore, ShiftedClock, SnsError
from .interfaces import DenyMode, TokenFamily
from .serverapis import API_PATHS, DEFAULT_REFUSED_IP, METHODS, APICall, ServerAPIs
from .wecom import (
    DEFAULT_CORPS,
    DEFAULT_REFUSED_WECOM_IP,
    DEMO_AGENTID,
    DEMO_CORPID,
    DEMO_WECOM_SECRET,
    WECOM_API_PATHS,
    WECOM_DESKTOP_USER_AGENT,
    WECOM_METHODS,
    WECOM_USER_AGENT,
    FakeAgent,
    FakeCorp,
    FakeMember,
    FakeNonMember,
    WeCom,
    WeComCall,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "DEFAULT_APPS",
    "DEFAULT_CORPS",
    "DEFAULT_USERS",
    "DEMO_AGENTID",
    "DEMO_APPID",
    "DEMO_CORPID",
    "DEMO_MINIPROGRAM_APPID",
    "DEMO_MINIPROGRAM_SECRET",
    "DEMO_OPEN_APPID",
    "DEMO_OPEN_SECRET",
    "DEMO_SECRET",
    "DEMO_WECOM_SECRET",
    "ENDPOINT_PATHS",
    "JSCODE2SESSION_PATH",
    "PUBLIC_URL_KEY",
    "WECOM_DESKTOP_USER_AGENT",
    "WECOM_USER_AGENT",
    "AppKind",
    "FakeAgent",
    "FakeApp",
    "FakeCorp",
    "FakeMember",
    "FakeNonMember",
    "FakeUser",
    "FakeWeChat",
    "RecordedRequest",
]

JSCODE2SESSION_PATH: Final = protocol.JSCODE2SESSION_PATH
#: What the request log shows in place of an AppSecret.
REDACTED: Final = "[redacted]"
#: WSGI environ key a caller in the same process (``install(app)``) sets to where browsers reach the fake.
PUBLIC_URL_KEY: Final = "flask_wechat.fake.public_url"

#: Endpoint names accepted by :meth:`FakeWeChat.fail_next` and friends.
ENDPOINT_PATHS: Final = {
    "access_token": protocol.TOKEN_PATH,
    "refresh_token": protocol.REFRESH_PATH,
    "userinfo": protocol.USERINFO_PATH,
    "auth": protocol.AUTH_PATH,
    "jscode2session": JSCODE2SESSION_PATH,
    **API_PATHS,
    **WECOM_API_PATHS,
}
_ENDPOINT_NAMES: Final = {path: name for name, path in ENDPOINT_PATHS.items()}
_METHODS: Final = {**METHODS, **WECOM_METHODS}
#: Path prefixes of the server APIs that run on the app access token.
_SERVER_API_PREFIXES: Final = ("/cgi-bin/", "/wxa/")
#: WeChat's API host: a request that names it (``Host:``) gets WeChat's 40066 for WeCom's paths too.
_WECHAT_API_HOST: Final = "api.weixin.qq.com"
#: Query keys whose values the request log never keeps (the AppSecret, WeCom's corpsecret).
_SECRET_KEYS: Final = frozenset({"secret", "corpsecret"})
#: Scopes a code of each app kind may carry (mini programs get ``wx.login()`` codes instead).
_KIND_SCOPES: Final[dict[AppKind, frozenset[str]]] = {
    "official_account": protocol.OA_SCOPES,
    "website": frozenset({protocol.SCOPE_LOGIN}),
    "miniprogram": frozenset(),
}
_DEFAULT_SCOPE: Final[dict[AppKind, str]] = {
    "official_account": protocol.SCOPE_USERINFO,
    "website": protocol.SCOPE_LOGIN,
}
#: Token scopes that may call /sns/userinfo and whose first token body carries unionid.
_PROFILE_SCOPES: Final = frozenset({protocol.SCOPE_USERINFO, protocol.SCOPE_LOGIN})


@dataclass(frozen=True)
class RecordedRequest:
    """One API request (``/sns/*``, ``/cgi-bin/*``, ``/wxa/*``) as the fake received it, AppSecrets redacted."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    #: The request body as text (empty for GETs); a ``secret`` in it is redacted too.
    body: str = ""

    @property
    def params(self) -> dict[str, str]:
        """The query as a dict (the last value wins for a repeated key)."""
        return dict(self.query)

    @property
    def json(self) -> dict[str, Any] | None:
        """The body as a JSON object, None when it is not one."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def endpoint(self) -> str | None:
        """The endpoint name (``"access_token"``, ...), None for an unknown path."""
        return _ENDPOINT_NAMES.get(self.path)


def _redacted(query: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The query as recorded: a secret is checked on arrival and never kept (the log is shown to people)."""
    return tuple((key, REDACTED if key in _SECRET_KEYS else value) for key, value in query)


# A "secret" member anywhere in JSON (even JSON that does not parse), and a secret= field of a form.
_JSON_SECRET: Final = re.compile(r'("secret"\s*:\s*)"(?:[^"\\]|\\.)*"?')
_FORM_SECRET: Final = re.compile(r"((?:^|&)secret=)[^&]*")


def _redacted_body(raw: bytes, secrets: Iterable[str]) -> str:
    """A request body as recorded: any ``secret`` member or field, and any known AppSecret, redacted."""
    if not raw:
        return ""
    text = raw.decode("utf-8", "replace")
    text = _FORM_SECRET.sub(rf"\1{REDACTED}", _JSON_SECRET.sub(rf'\1"{REDACTED}"', text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class _Fault:
    status: int = 200
    body: bytes | None = None
    errcode: int = 0
    errmsg: str | None = None

    def render(self) -> bytes:
        # Rendered when answered, so each injected error gets its own rid.
        return self.body if self.body is not None else wire.error_body(self.errcode, self.errmsg)


def _hostname(request: Request) -> str:
    """The host the request names (``Host:``), lower case and without the port; ``""`` if unreadable."""
    try:
        return (urlsplit("//" + request.host).hostname or "").lower()
    except ValueError:
        return ""


def _path_of(endpoint: str) -> str:
    try:
        return ENDPOINT_PATHS[endpoint]
    except KeyError:
        raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINT_PATHS)}") from None


class FakeWeChat:
    """The fake WeChat, as a WSGI app serving both hosts' paths.

    State (codes, tokens, recorded requests, injected faults) sits behind one lock
    because the loopback server is threaded. ``clock`` drives every lifetime;
    :meth:`advance` moves the fake's time forward from there. ``corps`` are its WeCom
    corps (copies of :data:`DEFAULT_CORPS` unless given), served on the same origin.
    """

    def __init__(
        self,
        apps: Iterable[FakeApp] | None = None,
        users: Iterable[FakeUser] | None = None,
        *,
        corps: Iterable[FakeCorp] | None = None,
        clock: Callable[[], float] = time.time,
        content_type: str = "text/plain",
        deny_mode: DenyMode = "no_redirect",
    ) -> None:
        if deny_mode not in ("no_redirect", "redirect"):
            raise ValueError("deny_mode must be 'no_redirect' or 'redirect'")
        self._lock = threading.RLock()
        self._clock = ShiftedClock(clock)
        self._grants = GrantStore(self._clock)
        self._server = ServerAPIs(self, self._grants, AppTokenStore(self._clock))
        # Deep copies of the default corps: a test that edits a member must not edit DEFAULT_CORPS.
        self._wecom = WeCom(self._clock, copy.deepcopy(DEFAULT_CORPS) if corps is None else corps)
        self._faults: dict[str, deque[_Fault]] = {}
        self.apps: dict[str, FakeApp] = {}
        self.users: dict[str, FakeUser] = {}
        #: Sent on every /sns/* answer; WeChat's usual is text/plain without a charset.
        self.content_type = content_type
        #: Sent on every /cgi-bin/* and /wxa/* answer, errors included.
        self.api_content_type = wire.JSON_CONTENT_TYPE
        #: "no_redirect": a refusal shows a page (observed); "redirect": redirect_uri?state=STATE (legacy doc).
        self.deny_mode: DenyMode = deny_mode
        #: Every API request (/sns/*, /cgi-bin/*, /wxa/*), in order.
        self.requests: list[RecordedRequest] = []
        #: New TCP connections accepted (counted by the loopback server).
        self.connections = 0
        #: Where browsers reach this fake (``scheme://host[:port][/prefix]``): its avatar URLs start here.
        #: ``None``: where the ``/sns/userinfo`` request came in (see :meth:`public_base`).
        self.public_url: str | None = None
        self._snapshots = 0
        # Copies of the defaults, like the users below.
        for app in [replace(app) for app in DEFAULT_APPS] if apps is None else apps:
            self.add_app(app)
        # Copies of the defaults: a test that edits its fake's user must not edit DEFAULT_USERS.
        for user in [replace(user) for user in DEFAULT_USERS] if users is None else users:
            self.add_user(user)

    @property
    def clock(self) -> Callable[[], float]:
        """The time of every code and token lifetime: the clock given, plus what :meth:`advance` added.

        Setting it replaces the underlying clock; the time :meth:`advance` added stays.
        """
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock.source = clock

    def now(self) -> float:
        """The fake's current time (Unix seconds)."""
        return self._clock()

    def advance(self, seconds: float) -> float:
        """Move the fake's time forward by ``seconds`` (to expire codes and tokens without sleeping); the new time."""
        return self._clock.advance(seconds)

    # -- setup and inspection ---------------------------------------------------------------

    def add_app(self, app: FakeApp) -> None:
        """Register (or replace) an app."""
        with self._lock:
            self.apps[app.appid] = app

    def add_user(self, user: FakeUser) -> None:
        """Register (or replace) a test user."""
        with self._lock:
            self.users[user.key] = user

    def _stands_in(self, user_key: str, snapshot: bool) -> bool:
        # A snapshot of a real user is a virtual account; a snapshot FakeUser (dave) already is one.
        user = self.users.get(user_key)
        return snapshot and not (user is not None and user.snapshot)

    def openid_for(self, appid: str, user_key: str, *, snapshot: bool = False) -> str:
        """The user's openid under ``appid``: stable across runs, different per app, like WeChat's.

        ``snapshot=True`` gives the virtual openid a snapshot page hands out instead
        (see :meth:`snapshot_next`): distinct from every real user's.
        """
        if self._stands_in(user_key, snapshot):
            return stable_id("snapshot-openid", appid, user_key)
        return stable_id("openid", appid, user_key)

    def unionid_for(self, appid: str, user_key: str, *, snapshot: bool = False) -> str | None:
        """The unionid WeChat reveals for the user under ``appid``: None when the app is not bound.

        The same person has the same unionid under every bound app (unregistered
        appids count as bound); ``snapshot=True`` gives the virtual one.
        """
        user = self.users.get(user_key)
        if user is None:
            raise ValueError(f"unknown user {user_key!r}")
        app = self.apps.get(appid)
        if app is not None and not app.bound:
            return None
        return stable_id("snapshot-unionid", user_key) if self._stands_in(user_key, snapshot) else user.unionid

    def _checked(self, appid: str, user_key: str, kinds: tuple[AppKind, ...]) -> tuple[FakeApp, FakeUser]:
        app, user = self.apps.get(appid), self.users.get(user_key)
        if app is None:
            raise ValueError(f"unknown appid {appid!r}")
        if user is None:
            raise ValueError(f"unknown user {user_key!r}")
        if app.kind not in kinds:
            hint = "use issue_js_code" if app.kind == "miniprogram" else "use issue_code"
            raise ValueError(f"{appid} is a {app.kind} app: {hint}")
        if user.snapshot and app.kind != "official_account":
            raise ValueError(
                f"{user_key!r} is a snapshot-page virtual user: they exist only in Official Account logins"
            )
        return app, user

    def issue_code(self, appid: str, user_key: str, scope: str | None = None, *, snapshot: bool = False) -> str:
        """Mint a code as if ``user_key`` had consented to ``appid`` (no browser needed).

        ``scope`` defaults to ``snsapi_userinfo`` for an Official Account and
        ``snsapi_login`` for a website app (whose codes live 600 s instead of 300 s).
        An Official Account ``snsapi_userinfo`` code is a snapshot-page virtual
        identity when ``snapshot`` is true or :meth:`snapshot_next` has one pending,
        whichever user consented; a snapshot user (``dave``) always is one.
        """
        app, user = self._checked(appid, user_key, ("official_account", "website"))
        scope = _DEFAULT_SCOPE[app.kind] if scope is None else scope
        if scope not in _KIND_SCOPES[app.kind]:
            raise ValueError(f"a {app.kind} app's scope must be one of {sorted(_KIND_SCOPES[app.kind])}")
        if snapshot and app.kind != "official_account":
            raise ValueError("snapshot identities exist only in Official Account logins")
        lifetime = protocol.QR_CODE_LIFETIME if app.kind == "website" else protocol.OA_CODE_LIFETIME
        with self._lock:
            pending = app.kind == "official_account" and scope == protocol.SCOPE_USERINFO and self._snapshots > 0
            if pending and not snapshot:
                self._snapshots -= 1
                snapshot = True
            openid = self.openid_for(appid, user_key, snapshot=snapshot)
            return self._grants.issue_code(
                appid, user_key, openid, scope, lifetime=lifetime, snapshot=snapshot or user.snapshot
            )

    def issue_js_code(self, appid: str, user_key: str) -> str:
        """Mint the code ``wx.login()`` gives a mini program for ``user_key`` (single use, 300 s, jscode2session)."""
        self._checked(appid, user_key, ("miniprogram",))
        with self._lock:
            return self._grants.issue_js_code(appid, user_key, self.openid_for(appid, user_key))

    def issue_phone_code(self, appid: str, user_key: str) -> str:
        """Mint the code a mini program's phone-number button gives (single use, 300 s, getuserphonenumber only)."""
        self._checked(appid, user_key, ("miniprogram",))
        with self._lock:
            return self._grants.issue_phone_code(appid, user_key, self.openid_for(appid, user_key))

    def encrypted_phone(self, appid: str, user_key: str) -> tuple[str, str]:
        """The legacy button's ``(encryptedData, iv)`` for the user's phone number, in base64.

        Sealed with the ``session_key`` the fake's last ``jscode2session`` answer gave
        for this user and mini program (ValueError before any), as WeChat does.
        """
        self._checked(appid, user_key, ("miniprogram",))
        with self._lock:
            return self._server.encrypted_phone(appid, user_key)

    # -- app access tokens, tickets and their knobs -----------------------------------------

    @property
    def token_quota(self) -> int | None:
        """``/cgi-bin/token`` calls allowed per app per fake day before 45009; None (the default): unlimited."""
        return self._server.tokens.token_quota

    @token_quota.setter
    def token_quota(self, quota: int | None) -> None:
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 0):
            raise ValueError("token_quota must be None or a non-negative integer")
        with self._lock:
            self._server.tokens.token_quota = quota

    def refuse_ip(self, ip: str = DEFAULT_REFUSED_IP, errcode: int = 40164) -> None:
        """Make ``/cgi-bin/token`` and ``/cgi-bin/stable_token`` refuse the caller as ``ip``, until :meth:`allow_ip`.

        ``errcode`` 40164 (what is observed) or 61004 (what newer documentation names),
        both with the errmsg ``invalid ip <ip> ipv6 ::ffff:<ip>, not in whitelist, rid: ...``;
        ``fail_next(endpoint, 61004)`` sends the 61004 text seen in the wild
        (``access clientip is not registered requestIP: <ip>``) instead.
        """
        with self._lock:
            self._server.refuse_ip(ip, errcode)

    def allow_ip(self) -> None:
        """Undo :meth:`refuse_ip`."""
        with self._lock:
            self._server.refusal = None

    def expire_app_tokens(self) -> None:
        """Every app access token issued so far now answers 42001 (the next token call mints a new one)."""
        with self._lock:
            self._server.tokens.expire_all()

    def revoke_app_tokens(self) -> None:
        """Every app access token issued so far now answers 40001 (the next token call mints a new one)."""
        with self._lock:
            self._server.tokens.revoke_all()

    def app_tokens_issued(self, appid: str, family: TokenFamily | None = None) -> int:
        """Distinct app tokens minted for ``appid``: by ``/cgi-bin/token`` (``"token"``), ``"stable"``, or both."""
        with self._lock:
            return self._server.tokens.issued(appid, family)

    def force_refreshes(self, appid: str) -> int:
        """``force_refresh`` calls that replaced ``appid``'s stable token."""
        with self._lock:
            return self._server.tokens.force_refreshes(appid)

    def tickets_issued(self, appid: str, ticket_type: str = "jsapi") -> int:
        """Tickets ``getticket`` issued to ``appid`` (``jsapi`` unless ``ticket_type`` says ``wx_card``)."""
        with self._lock:
            return self._server.tokens.tickets_issued(appid, ticket_type)

    @property
    def stale_token_calls(self) -> int:
        """API calls refused with 40001/42001 because their app token was superseded, expired or revoked."""
        with self._lock:
            return self._server.tokens.stale_calls

    def verify_jssdk(self, appid: str, timestamp: int | str, noncestr: str, signature: str, url: str) -> bool:
        """Whether a page's ``wx.config`` is signed with one of ``appid``'s unexpired jsapi tickets.

        ``url`` is the page's URL without ``#`` and what follows; what the WeChat client
        checks (and the fake's ``jweixin`` script asks here).
        """
        with self._lock:
            return self._server.verify_jssdk(appid, timestamp, noncestr, signature, url)

    # -- WeCom (企业微信) ----------------------------------------------------------------------

    @property
    def corps(self) -> dict[str, FakeCorp]:
        """The WeCom corps, by corpid (edit them, or add with :meth:`add_corp`)."""
        return self._wecom.corps

    def add_corp(self, corp: FakeCorp) -> None:
        """Register (or replace) a WeCom corp."""
        with self._lock:
            self._wecom.add_corp(corp)

    def issue_wecom_code(
        self,
        corpid: str,
        agentid: int | None,
        who: str,
        scope: str = wecom.SCOPE_BASE,
        *,
        web: bool = False,
        redirect_uri: str | None = None,
    ) -> str:
        """Mint a WeCom code as if ``who`` (a member's userid or a non-member's key) had come back (no browser).

        ``scope`` is the in-client link's (``snsapi_base`` or ``snsapi_privateinfo``; the
        latter without ``agentid`` counts as base, as WeCom documents); ``web=True`` is a
        web (QR) login code, which needs the agent and never yields a user_ticket, and
        which a member outside the visible range cannot get. ``redirect_uri`` is where the
        code went back to: ``getuserinfo`` answers 50001 when its host is not the agent's
        trusted domain (the pages refuse such links; this helper does not, to test that).
        Single use, 300 s.
        """
        with self._lock:
            return self._wecom.issue_code(corpid, agentid, who, scope, web=web, redirect_uri=redirect_uri)

    def wecom_tokens_issued(self, corpid: str, agentid: int) -> int:
        """Distinct access tokens ``/cgi-bin/gettoken`` minted for this WeCom app."""
        with self._lock:
            return self._wecom.tokens_issued(corpid, agentid)

    def expire_wecom_tokens(self) -> None:
        """Every WeCom access token issued so far now answers 42001 (``gettoken`` then mints a new one)."""
        with self._lock:
            self._wecom.expire_tokens()

    def revoke_wecom_tokens(self) -> None:
        """WeCom ends every access token early (as it may): they answer 40014; ``gettoken`` mints a new one."""
        with self._lock:
            self._wecom.revoke_tokens()

    def refuse_wecom_ip(self, ip: str = DEFAULT_REFUSED_WECOM_IP) -> None:
        """The caller is not on the trusted IP list, until :meth:`allow_wecom_ip`.

        Apps created after 2022-06-20 then get 60020 ``not allow to access from your ip,
        hint: [...], from ip: <ip>, ...`` from every WeCom API but ``gettoken``, which
        still hands out tokens (as reported); older apps are not held to trusted IPs.
        Every WeCom errmsg names ``ip`` as the caller meanwhile.
        """
        with self._lock:
            self._wecom.refuse_ip(ip)

    def allow_wecom_ip(self) -> None:
        """Undo :meth:`refuse_wecom_ip`."""
        with self._lock:
            self._wecom.refused_ip = None

    def snapshot_next(self, times: int = 1) -> None:
        """Make the next ``times`` Official Account ``snsapi_userinfo`` consents snapshot-page virtual identities.

        WeChat, not the user, decides on snapshot mode: whoever consents, the token
        then says ``is_snapshotuser: 1`` and carries a virtual openid (and unionid,
        for a bound app), and userinfo shows the virtual "微信用户".
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._snapshots += times

    def fail_next(self, endpoint: str, errcode: int, errmsg: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of ``endpoint`` answer ``errcode`` (HTTP 200, like WeChat).

        Without ``errmsg`` the body carries WeChat's usual text plus a fresh ``rid``;
        an explicit ``errmsg`` is sent verbatim (e.g. to test legacy ``hints: [...]`` suffixes).
        WeCom's endpoints (``wecom_*``) answer in WeCom's shape instead: its usual text with
        ``hint``, ``from ip`` and link, the ``Error-Code``/``Error-Msg`` headers, and the
        endpoint's empty list fields.
        """
        usual = wecom.ERRMSGS if endpoint in WECOM_API_PATHS else wire.ERRMSGS
        if errmsg is None and errcode not in usual:
            raise ValueError(f"no usual errmsg known for errcode {errcode}; pass errmsg")
        self._queue(endpoint, _Fault(errcode=errcode, errmsg=errmsg), times)

    def break_next(self, endpoint: str, body: bytes, status: int = 200, times: int = 1) -> None:
        """Make the next ``times`` calls of ``endpoint`` answer these raw bytes (non-JSON, truncated, a 502...)."""
        self._queue(endpoint, _Fault(status=status, body=body), times)

    def _queue(self, endpoint: str, fault: _Fault, times: int) -> None:
        path = _path_of(endpoint)
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.setdefault(path, deque()).extend([fault] * times)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 42001 (refreshing replaces it)."""
        with self._lock:
            self._grants.expire_access_tokens()

    def expire_refresh_tokens(self) -> None:
        """Every refresh token issued so far now answers 42002: the user must authorize again."""
        with self._lock:
            self._grants.expire_refresh_tokens()

    def calls(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests of one endpoint, in order."""
        path = _path_of(endpoint)
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def note_connection(self) -> None:
        """Count a new TCP connection (called by the loopback server)."""
        with self._lock:
            self.connections += 1

    def reset(self) -> None:
        """Forget what was issued, recorded and injected; keep apps, users, the time and :attr:`token_quota`.

        That is codes, user and app tokens, tickets, session keys, counters, requests,
        faults, pending snapshots, the refused IP and the connection count; and WeCom's
        codes, tokens, user_tickets, counters and refused IP (its corps stay).
        """
        with self._lock:
            self._grants.clear()
            self._server.clear()
            self._wecom.clear()
            self._faults.clear()
            self._snapshots = 0
            self.requests.clear()
            self.connections = 0

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request, whichever WeChat host it was meant for."""
        response = self._dispatch(Request(environ))
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        host = _hostname(request)
        # One origin serves every host, and WeCom's API paths sit under /cgi-bin/ like WeChat's:
        # only a request naming a host can tell an unknown WeCom path (404, empty) from a WeChat one (40066).
        if host == wecom.API_HOST:
            return self._wecom_api(request)
        if path in wecom.PATH_ENDPOINTS and host != _WECHAT_API_HOST:
            return self._wecom_api(request)
        if path.startswith("/sns/"):
            return self._sns(request)
        if path.startswith(_SERVER_API_PREFIXES):
            return self._server_api(request)
        if path == protocol.OA_AUTHORIZE_PATH:
            with self._lock:
                # The same page serves WeCom's in-client links, whose appid is a corpid.
                if request.args.get("appid", "") in self._wecom.corps:
                    return wecompages.oauth_show(self._wecom, request)
            return authorize.show(self, request)
        if path == wecompages.OAUTH_CONFIRM_PATH:
            with self._lock:
                return wecompages.oauth_confirm(self._wecom, request, self.deny_mode)
        if path == wecompages.WEB_LOGIN_PATH:
            with self._lock:
                return wecompages.web_login_show(self._wecom, request)
        if path == wecompages.WEB_LOGIN_CONFIRM_PATH:
            with self._lock:
                return wecompages.web_login_confirm(self._wecom, request)
        if path == wecompages.PANEL_SCRIPT_PATH:
            return wecompages.serve_panel_script(request)
        if path == wecompages.URICONFIRM_PATH:
            return wecompages.uriconfirm_show(request)
        if path == wecom.USER_QR_PATH:
            return wecompages.serve_user_qr(request)
        if path == authorize.CONFIRM_PATH:
            return authorize.confirm(self, request)
        if path == protocol.QRCONNECT_PATH:
            with self._lock:
                return qrconnect.show(self, request)
        if path == qrconnect.CONFIRM_PATH:
            return qrconnect.confirm(self, request)
        if path in wxlogin.SCRIPT_PATHS:
            return wxlogin.serve(request)
        if path.startswith(avatars.PATH_PREFIX):
            return avatars.serve(request)
        if path == jssdk.SCRIPT_PATH:
            return jssdk.serve(request)
        if path == simulator.PAGE_PATH:
            with self._lock:
                return simulator.show(self, request)
        if path.startswith("/_fake/"):
            return control.handle(self, request)
        if path == "/":
            return Response(self._index(), 200, content_type="text/html; charset=utf-8")
        return self._answer(wire.error_body(40066))

    def _index(self) -> str:
        endpoints = [
            (protocol.OA_AUTHORIZE_PATH, "GET: Official Account consent page (strict query order)"),
            (protocol.QRCONNECT_PATH, "GET: website QR login page (any query order; login_type=jssdk: the iframe)"),
            *(
                (path, "GET: wxLogin.js, new WxLogin({...}) embeds the QR login iframe")
                for path in wxlogin.SCRIPT_PATHS
            ),
            (avatars.PATH_PREFIX + "…/<size>", "GET: an avatar (SVG), as headimgurl points at"),
            (jssdk.SCRIPT_PATH, "GET: the JS-SDK stand-in: wx.config is checked by this fake"),
            (
                protocol.OA_AUTHORIZE_PATH + "?appid=<corpid>",
                "GET: WeCom in-client authorize (snsapi_base picker, snsapi_privateinfo consent; agentid)",
            ),
            (
                wecompages.WEB_LOGIN_PATH,
                "GET ?login_type=CorpApp&appid=<corpid>&agentid=&redirect_uri=&state=[&lang=]: WeCom web login",
            ),
            (
                wecompages.PANEL_SCRIPT_PATH,
                "GET: ww.createWWLoginPanel stand-in (@wecom/jssdk): the web login in an iframe",
            ),
            (wecom.USER_QR_PATH + "?vcode=…", "GET: a WeCom member's personal QR code (SVG), as qr_code points at"),
            (
                simulator.PAGE_PATH,
                "GET ?login=URL[&phone=URL][&auth=cookie|token][&appid=]: a mini program simulator for your app",
            ),
            *((path, f"{_METHODS.get(name, 'GET')}: {name}") for name, path in ENDPOINT_PATHS.items()),
            *((path, f"{method}: {what}") for path, (method, what, _) in control.ENDPOINTS.items()),
        ]
        with self._lock:
            corps = wecompages.corp_rows(list(self._wecom.corps.values()))
            return pages.index_page(
                list(self.apps.values()), list(self.users.values()), endpoints, sections=[("WeCom corps", corps)]
            )

    def public_base(self, request: Request) -> str:
        """Where browsers reach this fake, as seen from ``request`` (an API call from the app).

        :attr:`public_url` when set, else what an in-process caller put in the environ
        (:data:`PUBLIC_URL_KEY`), else the address the request came in at: the loopback
        server serves both WeChat hosts on one origin, so the app's API base is the browser's too.
        """
        in_process = request.environ.get(PUBLIC_URL_KEY)
        base = self.public_url or (in_process if isinstance(in_process, str) else None)
        return (base or request.host_url.rstrip("/") + request.script_root).rstrip("/")

    def _answer(self, body: bytes, status: int = 200) -> Response:
        return Response(body, status, headers={"Content-Type": self.content_type})

    def _server_api(self, request: Request) -> Response:
        endpoint = _ENDPOINT_NAMES.get(request.path)
        raw = request.get_data(cache=False)
        call = APICall(request.method, request.args.to_dict(), raw)
        headers = {"Content-Type": self.api_content_type}
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    _redacted(request.args.items(multi=True)),
                    _redacted_body(raw, (app.secret for app in self.apps.values())),
                )
            )
            # A WeCom endpoint's faults wait for WeCom's host.
            faults = self._faults.get(request.path) if endpoint in API_PATHS else None
            if faults:
                fault = faults.popleft()
                return Response(fault.render(), fault.status, headers=headers)
            try:
                if endpoint is None or endpoint not in API_PATHS:
                    raise SnsError(40066)
                body = wire.encode(self._server.answer(endpoint, call))
            except SnsError as exc:
                body = wire.error_body(exc.errcode, None if exc.text is None else wire.with_rid(exc.text))
        return Response(body, 200, headers=headers)

    def _wecom_api(self, request: Request) -> Response:
        """A qyapi request: recorded (corpsecret redacted), then a fault, WeCom's answer, or its empty 404."""
        endpoint = wecom.PATH_ENDPOINTS.get(request.path)
        raw = request.get_data(cache=False)
        with self._lock:
            secrets = [app.secret for app in self.apps.values()]
            secrets += [agent.secret for corp in self._wecom.corps.values() for agent in corp.agents]
            query = _redacted(request.args.items(multi=True))
            self.requests.append(RecordedRequest(request.method, request.path, query, _redacted_body(raw, secrets)))
            if endpoint is None:
                return Response(b"", 404)
            # WeCom names the caller's IP in every errmsg; a refused IP stands for it.
            ip = self._wecom.refused_ip or request.remote_addr or ""
            faults = self._faults.get(request.path)
            if faults:
                fault = faults.popleft()
                if fault.body is not None:
                    return Response(fault.body, fault.status, headers={"Content-Type": wecom.CONTENT_TYPE})
                errmsg = self._wecom.usual_errmsg(fault.errcode, ip) if fault.errmsg is None else fault.errmsg
                return Response(
                    self._wecom.error_body(endpoint, fault.errcode, errmsg),
                    fault.status,
                    headers=self._wecom.error_headers(fault.errcode, errmsg),
                )
            call = WeComCall(request.method, request.args.to_dict(), raw, ip, self.public_base(request))
            body, headers = self._wecom.respond(endpoint, call)
        return Response(body, 200, headers=headers)

    def _sns(self, request: Request) -> Response:
        endpoint = _ENDPOINT_NAMES.get(request.path)
        params = request.args.to_dict()
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.path, _redacted(request.args.items(multi=True)))
            )
            faults = self._faults.get(request.path)
            if faults:
                fault = faults.popleft()
                return self._answer(fault.render(), fault.status)
            try:
                if endpoint is None:
                    raise SnsError(40066)
                if request.method != "GET":
                    raise SnsError(43001)
                answer = self._HANDLERS[endpoint](self, params)
                if str(answer.get("headimgurl", "")).startswith("/"):
                    # One of the fake's own avatars: a URL browsers can load, like WeChat's CDN's.
                    answer["headimgurl"] = self.public_base(request) + str(answer["headimgurl"])
                body = wire.encode(answer)
            except SnsError as exc:
                body = wire.error_body(exc.errcode)
        return self._answer(body)

    # -- /sns/* handlers: return the success body or raise SnsError -------------------------

    def _app_for(self, params: dict[str, str]) -> FakeApp:
        appid = params.get("appid", "")
        if not appid:
            raise SnsError(41002)
        app = self.apps.get(appid)
        if app is None:
            raise SnsError(40013)
        return app

    def _grant_unionid(self, grant: Grant) -> str | None:
        # Bound apps only (unionid_for), for the real or the virtual identity the code was minted for.
        if grant.user_key not in self.users:
            return None
        return self.unionid_for(grant.appid, grant.user_key, snapshot=grant.snapshot)

    def _token_body(self, grant: Grant, *, first: bool) -> dict[str, object]:
        body: dict[str, object] = {
            "access_token": grant.access_token,
            "expires_in": protocol.ACCESS_TOKEN_LIFETIME,
            "refresh_token": grant.refresh_token,
            "openid": grant.openid,
            "scope": grant.scope,
        }
        if first:
            # unionid: only for snsapi_userinfo (OA) or snsapi_login (website), and only for bound apps.
            unionid = self._grant_unionid(grant) if grant.scope in _PROFILE_SCOPES else None
            if unionid is not None:
                body["unionid"] = unionid
            if grant.snapshot:
                body["is_snapshotuser"] = 1
        return body

    @staticmethod
    def _check_code_exchange(app: FakeApp, params: dict[str, str]) -> None:
        """The checks every code exchange shares: the secret, then the grant type."""
        secret = params.get("secret", "")
        if not secret:
            raise SnsError(41004)
        if secret != app.secret:
            raise SnsError(40125)
        if params.get("grant_type") != "authorization_code":
            raise SnsError(40002)

    def _access_token(self, params: dict[str, str]) -> dict[str, object]:
        app = self._app_for(params)
        self._check_code_exchange(app, params)
        code = params.get("code", "")
        if not code:
            raise SnsError(41008)
        return self._token_body(self._grants.redeem(app.appid, code), first=True)

    def _refresh_token(self, params: dict[str, str]) -> dict[str, object]:
        app = self._app_for(params)  # no secret on this endpoint; one sent anyway is ignored
        if params.get("grant_type") != "refresh_token":
            raise SnsError(40002)
        refresh_token = params.get("refresh_token", "")
        if not refresh_token:
            raise SnsError(41003)
        return self._token_body(self._grants.refresh(app.appid, refresh_token), first=False)

    def _checked_grant(self, params: dict[str, str]) -> Grant:
        access_token = params.get("access_token", "")
        if not access_token:
            raise SnsError(41001)
        return self._grants.check_access(access_token, params.get("openid", ""))

    def _userinfo(self, params: dict[str, str]) -> dict[str, object]:
        grant = self._checked_grant(params)
        if grant.scope not in _PROFILE_SCOPES:
            raise SnsError(48001)
        user = self.users[grant.user_key]
        virtual = self._stands_in(grant.user_key, grant.snapshot)
        # Since 2021-10-20: sex 0 and empty region/language for everyone.
        body: dict[str, object] = {
            "openid": grant.openid,
            "nickname": SNAPSHOT_NICKNAME if virtual else user.nickname,
            "sex": 0,
            "language": "",
            "city": "",
            "province": "",
            "country": "",
            "headimgurl": SNAPSHOT_AVATAR if virtual else user.headimgurl,
            "privilege": [],
        }
        unionid = self._grant_unionid(grant)
        if unionid is not None:
            body["unionid"] = unionid
        return body

    def _auth(self, params: dict[str, str]) -> dict[str, object]:
        self._checked_grant(params)
        return {"errcode": 0, "errmsg": "ok"}

    def _jscode2session(self, params: dict[str, str]) -> dict[str, object]:
        app = self._app_for(params)
        if app.kind != "miniprogram":
            raise SnsError(40013)  # an OA or website appid is not a mini program's
        self._check_code_exchange(app, params)
        code = params.get("js_code", "")
        if not code:
            raise SnsError(41008)

        def blocked(user_key: str) -> bool:
            user = self.users.get(user_key)
            return user is not None and user.blocked

        user_key, openid = self._grants.redeem_js_code(app.appid, code, blocked)
        # Real successes carry no errcode (and, nowadays, no expires_in). The key is kept for encrypted_phone().
        body: dict[str, object] = {"session_key": self._grants.issue_session_key(app.appid, user_key), "openid": openid}
        unionid = self.unionid_for(app.appid, user_key) if user_key in self.users else None
        if unionid is not None:
            body["unionid"] = unionid
        return body

    _HANDLERS: Final[dict[str, Callable[[FakeWeChat, dict[str, str]], dict[str, object]]]] = {
        "access_token": _access_token,
        "refresh_token": _refresh_token,
        "userinfo": _userinfo,
        "auth": _auth,
        "jscode2session": _jscode2session,
    }
