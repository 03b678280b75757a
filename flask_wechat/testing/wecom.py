"""The fake's WeCom (企业微信): its corps, codes, tokens and tickets, and the qyapi.weixin.qq.com answers.

WeCom is a separate platform that shares WeChat's authorize page and nothing else: a
corp (``corpid``, ``ww`` + 16 hex) has self-built apps (agents, each with its own
secret and so its own access token), members (``userid``) and people outside it
(``openid``, ``external_userid``). The server APIs here are the ones a login needs:
``gettoken``, ``auth/getuserinfo`` (lowercase keys), the legacy ``user/getuserinfo``
(capitalised keys), ``auth/getuserdetail`` and ``user/get``. They write JSON the way
qyapi does (compact, raw UTF-8, ``/`` unescaped), send ``application/json;
charset=UTF-8``, and on every error the ``Error-Code``/``Error-Msg`` headers and an
errmsg with a ``hint``, the caller's IP and a link. Pure bookkeeping on the fake's
clock; not thread-safe on its own: :class:`~flask_wechat.testing.FakeWeChat` holds its
lock around every call. Choices the public material does not settle are marked
UNCONFIRMED where they are made.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

from .accounts import stable_id
from .avatars import avatar_path

__all__ = [
    "API_HOST",
    "CODE_LIFETIME",
    "CONTENT_TYPE",
    "DEFAULT_CORPS",
    "DEFAULT_REFUSED_WECOM_IP",
    "DEMO_AGENTID",
    "DEMO_CORPID",
    "DEMO_WECOM_SECRET",
    "ERRMSGS",
    "PATH_ENDPOINTS",
    "SCOPES",
    "SCOPE_BASE",
    "SCOPE_PRIVATEINFO",
    "TICKET_LIFETIME",
    "TOKEN_LIFETIME",
    "USER_QR_PATH",
    "WECOM_API_PATHS",
    "WECOM_DESKTOP_USER_AGENT",
    "WECOM_METHODS",
    "WECOM_USER_AGENT",
    "FakeAgent",
    "FakeCorp",
    "FakeMember",
    "FakeNonMember",
    "WeCom",
    "WeComCall",
    "WeComError",
    "encode",
    "header_safe",
    "new_hint",
    "redirect_host",
]

#: WeCom's API host. The fake serves it on its own origin; a request that names this host
#: (``Host: qyapi.weixin.qq.com``) gets WeCom's empty 404 for any other path.
API_HOST: Final = "qyapi.weixin.qq.com"
#: What qyapi sends, successes and errors alike (``charset=``, upper case; WeChat's hosts differ).
CONTENT_TYPE: Final = "application/json; charset=UTF-8"

#: The default corp (made up: ``ww`` + 16 lowercase hex digits, as real CorpIDs look; no WeCom knows it).
DEMO_CORPID: Final = "ww3b7e9a1c5d2f4086"
#: The default corp's self-built app (agent ids of self-built apps start at 1000002).
DEMO_AGENTID: Final = 1000002
#: The app's secret (made up: 43 characters of ``[A-Za-z0-9_-]``, like a real one).
DEMO_WECOM_SECRET: Final = "q7Vd2Kx9_RmT4wLp8ZsN1cHb6Jf3Gy0Ue5Ao-XiWkQe"

#: The WeCom app's browser on a phone (it says MicroMessenger too: check ``wxwork`` first).
WECOM_USER_AGENT: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 14_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 wxwork/3.1.9 MicroMessenger/7.0.1 Language/zh ColorScheme/Light"
)
#: The WeCom desktop client's browser (macOS), as observed: no space before ``wxwork``.
WECOM_DESKTOP_USER_AGENT: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    "wxwork/3.1.8 (MicroMessenger/6.2) WeChat/2.0.4"
)

SCOPE_BASE: Final = "snsapi_base"
SCOPE_PRIVATEINFO: Final = "snsapi_privateinfo"
#: The scopes of a WeCom in-client authorize link (``snsapi_userinfo`` is gone from the current docs).
SCOPES: Final = frozenset({SCOPE_BASE, SCOPE_PRIVATEINFO})

#: A code (in-client or web login) lives 5 minutes and is single use.
CODE_LIFETIME: Final = 300
#: A ``user_ticket`` lives 30 minutes.
TICKET_LIFETIME: Final = 1800
#: An access token lives 2 hours.
TOKEN_LIFETIME: Final = 7200
#: A documentation address (TEST-NET-2): what :meth:`WeCom.refuse_ip` says WeCom saw by default.
DEFAULT_REFUSED_WECOM_IP: Final = "198.51.100.23"
#: Where the fake serves the image a member's ``qr_code`` URL points at (WeCom's own path).
USER_QR_PATH: Final = "/wwopen/userQRCode"

#: Endpoint name -> path, for ``fail_next`` and friends (names start with ``wecom_``).
WECOM_API_PATHS: Final = {
    "wecom_gettoken": "/cgi-bin/gettoken",
    "wecom_getuserinfo": "/cgi-bin/auth/getuserinfo",
    "wecom_legacy_getuserinfo": "/cgi-bin/user/getuserinfo",
    "wecom_getuserdetail": "/cgi-bin/auth/getuserdetail",
    "wecom_user_get": "/cgi-bin/user/get",
}
#: Path -> endpoint name.
PATH_ENDPOINTS: Final = {path: name for name, path in WECOM_API_PATHS.items()}
#: The method each endpoint is documented with. The fake does not refuse the other one: what
#: WeCom answers then is not documented (UNCONFIRMED); a GET getuserdetail has no ticket to read.
WECOM_METHODS: Final = {name: "POST" if name == "wecom_getuserdetail" else "GET" for name in WECOM_API_PATHS}

#: WeCom's errmsg per errcode, before the ``, hint: [...], from ip: ..., more info at ...`` suffix.
ERRMSGS: Final[Mapping[int, str]] = {
    -1: "system busy",
    40001: "invalid credential",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    40056: "invalid agentid",  # text UNCONFIRMED
    41001: "access_token missing",
    41002: "corpid missing",  # text UNCONFIRMED
    41004: "corpsecret missing",
    41008: "missing code",  # text UNCONFIRMED for WeCom
    41009: "missing userid",  # text UNCONFIRMED
    42001: "access_token expired",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",  # text UNCONFIRMED
    47001: "data format error",  # text UNCONFIRMED for WeCom
    48002: "api forbidden",
    50001: "redirect_uri unauthorized",
    50002: "user limited",  # text UNCONFIRMED
    60011: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    84014: "user ticket expired",  # text UNCONFIRMED
    84015: "invalid user ticket",  # text UNCONFIRMED
}
#: Errcodes whose errmsg comes bare, without hint or link: an unknown token (observed on ``user/get``).
_BARE: Final = frozenset({40014})
_MORE_INFO: Final = "https://open.work.weixin.qq.com/devtool/query?e="
#: The list fields an error body of each endpoint still carries, empty (observed on ``user/get``).
_ERROR_CONTAINERS: Final[Mapping[str, Mapping[str, list[Any]]]] = {
    "wecom_user_get": {"department": [], "order": [], "is_leader_in_dept": [], "direct_leader": []},
}
#: What ``user/get`` withholds from apps created on or after 2022-06-20 (thumb_avatar with avatar:
#: UNCONFIRMED). Omitted, not sent empty: UNCONFIRMED (one report saw null after a Gson mapping).
_WITHHELD: Final = ("avatar", "thumb_avatar", "gender", "mobile", "email", "biz_mail", "qr_code", "address")
_GENDERS: Final = ("0", "1", "2")


def new_hint(now: float) -> str:
    """A hint in the current style: 25 digits, the first 10 the Unix time of the request."""
    return f"{int(now):010d}{secrets.randbelow(10**15):015d}"


def _usual_errmsg(errcode: int, ip: str, now: float, text: str | None = None) -> str:
    base = ERRMSGS[errcode] if text is None else text
    if errcode in _BARE:
        return base
    return f"{base}, hint: [{new_hint(now)}], from ip: {ip}, more info at {_MORE_INFO}{errcode}"


def encode(data: Mapping[str, object]) -> bytes:
    """Compact JSON as qyapi writes it: raw UTF-8, ``/`` not escaped (a captured body's length shows both)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def header_safe(text: str) -> str:
    """``text`` as a header value: WeCom's texts are ASCII; anything else a test injects is percent-encoded."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe=" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def redirect_host(uri: str) -> str:
    """The ``host[:port]`` a trusted domain is compared with: exact, port included, scheme and path ignored."""
    return urlsplit(uri).netloc.rpartition("@")[2].lower()


class WeComError(Exception):
    """A WeCom API call fails with ``errcode``; ``text`` replaces the usual errmsg text (the suffix is added)."""

    def __init__(self, errcode: int, text: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.text = text


# -- the cast -------------------------------------------------------------------------------------


@dataclass
class FakeAgent:
    """A self-built app (自建应用) of a corp: ``agentid``, its own ``secret`` and so its own token.

    ``created_after_2022_06_20`` is what WeCom's newer rules hinge on: such apps must call
    from a trusted IP (60020 otherwise) and ``user/get`` no longer shows them avatar,
    gender, mobile, email, biz_mail, qr_code or address. ``trusted_domain`` is the
    console's 可信域名 (``host[:port]``, exact): when set, an authorize or login link
    whose redirect_uri has another host is refused, and a code that came back to another
    host answers 50001.
    """

    agentid: int
    secret: str
    name: str = "Demo WeCom App"
    created_after_2022_06_20: bool = True
    trusted_domain: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.agentid, bool) or not isinstance(self.agentid, int) or self.agentid <= 0:
            raise ValueError(f"agentid must be a positive integer, got {self.agentid!r}")
        if not self.secret:
            raise ValueError("an agent needs a secret")
        if self.trusted_domain is not None and (not self.trusted_domain or "/" in self.trusted_domain):
            raise ValueError(f"trusted_domain is a host[:port], got {self.trusted_domain!r}")


@dataclass
class FakeMember:
    """A member (成员) of a corp, known by ``userid``.

    ``avatar`` is a URL, or a path on the fake (see :mod:`.avatars`) that the APIs send
    as a URL of the fake's own address; ``gender`` is a string like WeCom's (``"1"``
    male, ``"2"`` female, ``"0"`` unset). ``in_visible_range`` is whether the corp's apps
    may see the member (可见范围): outside it there is no ``user_ticket``, ``user/get``
    answers 60011, ``getuserdetail`` 50002 and the web login refuses the scan.
    """

    userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    mobile: str = ""
    email: str = ""
    avatar: str = ""
    gender: str = "0"
    position: str = ""
    in_visible_range: bool = True
    biz_mail: str = ""
    address: str = ""

    def __post_init__(self) -> None:
        if not self.userid:
            raise ValueError("a member needs a userid")
        if self.gender not in _GENDERS:
            raise ValueError(f"gender is a string, one of {', '.join(_GENDERS)}; got {self.gender!r}")
        if not self.department:
            raise ValueError("a member belongs to at least one department")


@dataclass
class FakeNonMember:
    """Someone outside the corp (a customer, say): ``getuserinfo`` gives an ``openid`` instead of a userid.

    ``key`` is how tests and pages name them; ``external_userid`` is set when they are a
    customer (external contact, 客户) of the corp.
    """

    key: str
    name: str
    openid: str
    external_userid: str | None = None


@dataclass
class FakeCorp:
    """A WeCom corp (企业): its apps, its members and the outsiders who may open its links."""

    corpid: str
    name: str = "Demo Corp"
    agents: list[FakeAgent] = field(default_factory=list)
    members: list[FakeMember] = field(default_factory=list)
    non_members: list[FakeNonMember] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.corpid:
            raise ValueError("a corp needs a corpid")
        agentids = [agent.agentid for agent in self.agents]
        if len(set(agentids)) != len(agentids):
            raise ValueError("agent ids must be unique within a corp")
        keys = [member.userid for member in self.members] + [person.key for person in self.non_members]
        if len(set(keys)) != len(keys):
            raise ValueError("member userids and non-member keys must all differ")

    def agent(self, agentid: int) -> FakeAgent | None:
        """The app with this ``agentid``, if any."""
        return next((agent for agent in self.agents if agent.agentid == agentid), None)

    def member(self, userid: str) -> FakeMember | None:
        """The member with this ``userid``, if any."""
        return next((member for member in self.members if member.userid == userid), None)

    def non_member(self, key: str) -> FakeNonMember | None:
        """The outsider with this ``key``, if any."""
        return next((person for person in self.non_members if person.key == key), None)


def _external_userid(corpid: str, key: str) -> str:
    # wm + 30 of [A-Za-z0-9_-], the shape of a customer's external_userid; stable per corp and person.
    return "wm" + stable_id("external_userid", corpid, key)[1:27] + "AAAA"


DEFAULT_CORPS: Final[tuple[FakeCorp, ...]] = (
    FakeCorp(
        DEMO_CORPID,
        "Demo Corp",
        agents=[FakeAgent(DEMO_AGENTID, DEMO_WECOM_SECRET)],
        members=[
            FakeMember(
                "zhangsan",
                "张三",
                [1, 2],
                mobile="13800138011",
                email="zhangsan@example.com",
                avatar=avatar_path("wecom-zhangsan"),
                gender="1",
                position="产品经理",
                biz_mail="zhangsan@corp.example.com",
                address="广州市海珠区示例路 1 号",
            ),
            FakeMember(
                "lisi",
                "李四",
                [1],
                mobile="13800138012",
                email="lisi@example.com",
                avatar=avatar_path("wecom-lisi"),
                gender="2",
                position="工程师",
                biz_mail="lisi@corp.example.com",
            ),
            # Outside the app's visible range: a userid from getuserinfo, and nothing else.
            FakeMember(
                "wangwu",
                "王五",
                [3],
                mobile="13800138013",
                email="wangwu@example.com",
                avatar=avatar_path("wecom-wangwu"),
                in_visible_range=False,
            ),
        ],
        non_members=[
            FakeNonMember(
                "guest",
                "访客 Guest",
                stable_id("wecom-openid", DEMO_CORPID, "guest"),
                _external_userid(DEMO_CORPID, "guest"),
            )
        ],
    ),
)
"""Every ``FakeWeChat()`` registers copies of these: one corp, one app, three members, one outsider."""


# -- codes, tokens, tickets -----------------------------------------------------------------------


@dataclass
class _Code:
    corpid: str
    #: None: an in-client link without agentid; any app of the corp may redeem it.
    agentid: int | None
    who: str
    scope: str
    web: bool
    #: The redirect_uri's host[:port], or None for a code minted without one.
    host: str | None
    expires_at: float
    used: bool = False


@dataclass
class _Token:
    value: str
    corpid: str
    agentid: int
    expires_at: float
    #: Set by the knobs: "expired" answers 42001, "revoked" 40014 from now on.
    knocked_out: Literal["", "expired", "revoked"] = ""


@dataclass(frozen=True)
class _Ticket:
    corpid: str
    agentid: int
    userid: str
    expires_at: float


@dataclass(frozen=True)
class WeComCall:
    """What a handler sees of one request: method, query (last value wins), body, and two facts of the fake.

    ``ip`` is the caller's address as WeCom would report it in errmsg; ``base`` is where
    browsers reach the fake (avatar and QR code URLs start there).
    """

    method: str
    params: Mapping[str, str]
    body: bytes = b""
    ip: str = ""
    base: str = ""


def _new_token() -> str:
    # Real tokens are long runs of [A-Za-z0-9_-] (≤ 512 bytes documented); the exact length is UNCONFIRMED.
    return secrets.token_urlsafe(162)[:214]


def _new_code() -> str:
    # Shape UNCONFIRMED (≤ 512 bytes documented); 43 URL-safe characters.
    return secrets.token_urlsafe(32)


def _new_ticket() -> str:
    return secrets.token_urlsafe(72)


def _digest_id(*parts: str, length: int = 32) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:length]


class WeCom:
    """Every corp, code, access token and user_ticket of the fake's WeCom, and the API answers on them."""

    def __init__(self, clock: Callable[[], float], corps: Iterable[FakeCorp] = ()) -> None:
        self.clock = clock
        self.corps: dict[str, FakeCorp] = {}
        #: The caller's IP as WeCom sees it, refused by apps created after 2022-06-20 (60020); None: allowed.
        self.refused_ip: str | None = None
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._current: dict[tuple[str, int], _Token] = {}
        self._issued: Counter[tuple[str, int]] = Counter()
        self._tickets: dict[str, _Ticket] = {}
        for corp in corps:
            self.add_corp(corp)

    def add_corp(self, corp: FakeCorp) -> None:
        """Register (or replace) a corp."""
        self.corps[corp.corpid] = corp

    def clear(self) -> None:
        """Forget codes, tokens, tickets, counts and the IP refusal (the corps stay)."""
        for table in (self._codes, self._tokens, self._current, self._tickets):
            table.clear()
        self._issued.clear()
        self.refused_ip = None

    # -- people -----------------------------------------------------------------------------------

    def corp(self, corpid: str) -> FakeCorp:
        """The corp, or ValueError."""
        corp = self.corps.get(corpid)
        if corp is None:
            raise ValueError(f"unknown corpid {corpid!r}")
        return corp

    def agent(self, corp: FakeCorp, agentid: int) -> FakeAgent:
        """The corp's app, or ValueError."""
        agent = corp.agent(agentid)
        if agent is None:
            raise ValueError(f"corp {corp.corpid} has no agent {agentid!r}")
        return agent

    @staticmethod
    def device_id(corpid: str, userid: str) -> str:
        """The phone a member opens in-client links on (the legacy endpoint's ``DeviceId``): stable, 32 hex."""
        return _digest_id("wecom-device", corpid, userid)

    @staticmethod
    def qr_vcode(corpid: str, userid: str) -> str:
        """The ``vcode`` of a member's personal QR code URL: stable per corp and member."""
        return "vc" + _digest_id("wecom-qr", corpid, userid, length=16)

    # -- codes ------------------------------------------------------------------------------------

    def issue_code(
        self,
        corpid: str,
        agentid: int | None,
        who: str,
        scope: str = SCOPE_BASE,
        *,
        web: bool = False,
        redirect_uri: str | None = None,
    ) -> str:
        """Mint a code as WeCom does when ``who`` (a member's userid or an outsider's key) comes back.

        ``web`` is a web (QR) login code: it needs an agent, has no scope and never
        yields a user_ticket; a member outside the visible range cannot log in that way
        (WeCom says 无权限 on the phone). An in-client ``snsapi_privateinfo`` link without
        agentid counts as ``snsapi_base``, as the documentation's special note says.
        ``redirect_uri`` records where the code went back to, for the 50001 check.
        """
        corp = self.corp(corpid)
        if agentid is not None:
            self.agent(corp, agentid)
        member = corp.member(who)
        if member is None and corp.non_member(who) is None:
            raise ValueError(f"corp {corpid} has no member or non-member {who!r}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(sorted(SCOPES))}")
        if web:
            if agentid is None:
                raise ValueError("a web login code needs an agentid (login_type=CorpApp)")
            if scope != SCOPE_BASE:
                raise ValueError("a web login has no scope: leave it at snsapi_base")
            if member is not None and not member.in_visible_range:
                raise ValueError(f"{who!r} is outside the app's visible range: WeCom refuses the scan")
        if agentid is None:
            scope = SCOPE_BASE
        host = None if redirect_uri is None else redirect_host(redirect_uri)
        code = _new_code()
        self._codes[code] = _Code(corpid, agentid, who, scope, web, host, self.clock() + CODE_LIFETIME)
        return code

    # -- tokens -----------------------------------------------------------------------------------

    def tokens_issued(self, corpid: str, agentid: int) -> int:
        """How many distinct access tokens ``gettoken`` minted for this app."""
        return self._issued[(corpid, agentid)]

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001; the next ``gettoken`` mints a new one."""
        for token in self._tokens.values():
            token.knocked_out = "expired"

    def revoke_tokens(self) -> None:
        """Every token issued so far answers 40014 (WeCom ending them early); ``gettoken`` mints anew."""
        for token in self._tokens.values():
            token.knocked_out = "revoked"

    def refuse_ip(self, ip: str = DEFAULT_REFUSED_WECOM_IP) -> None:
        """Make every API but ``gettoken`` answer 60020 to apps created after 2022-06-20, naming ``ip``."""
        ipaddress.ip_address(ip)  # ValueError for anything but an address
        self.refused_ip = ip

    def _usable(self, token: _Token, now: float) -> bool:
        return not token.knocked_out and now < token.expires_at

    # -- the wire ---------------------------------------------------------------------------------

    def error_body(self, endpoint: str | None, errcode: int, errmsg: str) -> bytes:
        """An error body: errcode, errmsg, then the endpoint's list fields, empty."""
        return encode({"errcode": errcode, "errmsg": errmsg, **_ERROR_CONTAINERS.get(endpoint or "", {})})

    def error_headers(self, errcode: int, errmsg: str) -> dict[str, str]:
        """The headers of an error answer (successes carry no Error-Code: UNCONFIRMED)."""
        return {"Content-Type": CONTENT_TYPE, "Error-Code": str(errcode), "Error-Msg": header_safe(errmsg)}

    def usual_errmsg(self, errcode: int, ip: str, text: str | None = None) -> str:
        """WeCom's errmsg for ``errcode`` with a fresh hint, the caller's ``ip`` and the link."""
        return _usual_errmsg(errcode, ip, self.clock(), text)

    def respond(self, endpoint: str, call: WeComCall) -> tuple[bytes, dict[str, str]]:
        """The body and headers of ``endpoint``'s answer to ``call`` (always HTTP 200)."""
        try:
            body = encode(self._HANDLERS[endpoint](self, call))
        except WeComError as exc:
            errmsg = self.usual_errmsg(exc.errcode, call.ip, exc.text)
            return self.error_body(endpoint, exc.errcode, errmsg), self.error_headers(exc.errcode, errmsg)
        return body, {"Content-Type": CONTENT_TYPE}

    # -- handlers: return the success body or raise WeComError ------------------------------------

    def _gettoken(self, call: WeComCall) -> dict[str, object]:
        """``GET /cgi-bin/gettoken``: corpsecret missing, corpid missing, the corp, then the secret.

        The same token comes back while it lives (the older documentation's wording; the
        current one is silent: UNCONFIRMED), with the seconds it has left (UNCONFIRMED);
        one token per app secret. An IP refusal does not stop this call.
        """
        secret, corpid = call.params.get("corpsecret", ""), call.params.get("corpid", "")
        if not secret:
            raise WeComError(41004)
        if not corpid:
            raise WeComError(41002)
        corp = self.corps.get(corpid)
        if corp is None:
            raise WeComError(40013)
        agent = next((agent for agent in corp.agents if agent.secret == secret), None)
        if agent is None:
            raise WeComError(40001)
        now = self.clock()
        key = (corp.corpid, agent.agentid)
        token = self._current.get(key)
        if token is None or not self._usable(token, now):
            token = _Token(_new_token(), corp.corpid, agent.agentid, now + TOKEN_LIFETIME)
            self._tokens[token.value] = self._current[key] = token
            self._issued[key] += 1
        return {
            "errcode": 0,
            "errmsg": "ok",
            "access_token": token.value,
            "expires_in": max(0, math.ceil(token.expires_at - now)),
        }

    def _caller(self, call: WeComCall) -> tuple[FakeCorp, FakeAgent]:
        """The app behind the query's access_token (only the query counts), then the trusted-IP rule.

        41001 missing, 40014 unknown or revoked, 42001 expired; 60020 when the IP is
        refused and the app was created after 2022-06-20 (the token is checked first: UNCONFIRMED).
        """
        value = call.params.get("access_token", "")
        if not value:
            raise WeComError(41001)
        token = self._tokens.get(value)
        if token is None or token.knocked_out == "revoked":
            raise WeComError(40014)
        if token.knocked_out == "expired" or self.clock() >= token.expires_at:
            raise WeComError(42001)
        corp = self.corps.get(token.corpid)
        agent = None if corp is None else corp.agent(token.agentid)
        if corp is None or agent is None:
            raise WeComError(40014)  # the app is gone
        if self.refused_ip is not None and agent.created_after_2022_06_20:
            raise WeComError(60020)
        return corp, agent

    def _redeem(self, call: WeComCall) -> tuple[FakeCorp, FakeAgent, _Code]:
        """The code behind the query: 40029 unknown, used, expired, or another corp's or app's.

        50001 when it went back to a host other than the app's trusted domain; a refused
        code stays unused.
        """
        corp, agent = self._caller(call)
        value = call.params.get("code", "")
        if not value:
            raise WeComError(41008)
        code = self._codes.get(value)
        if (
            code is None
            or code.used
            or self.clock() >= code.expires_at
            or code.corpid != corp.corpid
            or (code.agentid is not None and code.agentid != agent.agentid)
        ):
            raise WeComError(40029)
        if agent.trusted_domain is not None and code.host is not None and code.host != agent.trusted_domain.lower():
            raise WeComError(50001)
        if corp.member(code.who) is None and corp.non_member(code.who) is None:
            raise WeComError(40029)  # the person left the corp's records since
        code.used = True
        return corp, agent, code

    def _ticket_for(self, corp: FakeCorp, agent: FakeAgent, code: _Code) -> str | None:
        """A user_ticket: only for an in-client snsapi_privateinfo code of a member in the visible range."""
        member = corp.member(code.who)
        if code.web or code.scope != SCOPE_PRIVATEINFO or member is None or not member.in_visible_range:
            return None
        ticket = _new_ticket()
        self._tickets[ticket] = _Ticket(corp.corpid, agent.agentid, member.userid, self.clock() + TICKET_LIFETIME)
        return ticket

    def _getuserinfo(self, call: WeComCall) -> dict[str, object]:
        """``GET /cgi-bin/auth/getuserinfo``: lowercase ``userid`` (+ ``user_ticket``) or ``openid``."""
        corp, agent, code = self._redeem(call)
        body: dict[str, object] = {"errcode": 0, "errmsg": "ok"}
        member = corp.member(code.who)
        if member is not None:
            body["userid"] = member.userid
            ticket = self._ticket_for(corp, agent, code)
            if ticket is not None:
                body["user_ticket"] = ticket
            return body
        person = corp.non_member(code.who)
        if person is None:
            raise WeComError(40029)  # unreachable: _redeem found them
        body["openid"] = person.openid
        if person.external_userid:
            body["external_userid"] = person.external_userid
        return body

    def _legacy_getuserinfo(self, call: WeComCall) -> dict[str, object]:
        """``GET /cgi-bin/user/getuserinfo``: the legacy answer, with CAPITALISED ``UserId``/``DeviceId``/``OpenId``.

        ``user_ticket`` comes with ``expires_in``: the ticket's 1800 s here (the legacy
        example shows 7200: UNCONFIRMED). A web login code has an empty ``DeviceId``
        (UNCONFIRMED). ``agentid`` in the query (WxJava sends it) is ignored.
        """
        corp, agent, code = self._redeem(call)
        body: dict[str, object] = {"errcode": 0, "errmsg": "ok"}
        member = corp.member(code.who)
        if member is not None:
            body["UserId"] = member.userid
            body["DeviceId"] = "" if code.web else self.device_id(corp.corpid, member.userid)
            ticket = self._ticket_for(corp, agent, code)
            if ticket is not None:
                body["user_ticket"] = ticket
                body["expires_in"] = TICKET_LIFETIME
            return body
        person = corp.non_member(code.who)
        if person is None:
            raise WeComError(40029)  # unreachable: _redeem found them
        body["OpenId"] = person.openid
        body["DeviceId"] = "" if code.web else self.device_id(corp.corpid, person.key)
        if person.external_userid:
            body["external_userid"] = person.external_userid
        return body

    def _url(self, base: str, path_or_url: str) -> str:
        return base + path_or_url if path_or_url.startswith("/") else path_or_url

    def _avatar(self, base: str, member: FakeMember, size: str = "0") -> str:
        """The member's avatar as a URL; a fake path gets the size segment (``0``: the original)."""
        if not member.avatar:
            return ""
        path = member.avatar
        if path.startswith("/"):
            path = path.rpartition("/")[0] + "/" + size
        return self._url(base, path)

    def _qr_code(self, base: str, corp: FakeCorp, member: FakeMember) -> str:
        return f"{base}{USER_QR_PATH}?vcode={self.qr_vcode(corp.corpid, member.userid)}"

    def _getuserdetail(self, call: WeComCall) -> dict[str, object]:
        """``POST /cgi-bin/auth/getuserdetail`` with JSON ``{"user_ticket"}``: the consented fields.

        84015 for a missing, unknown or other app's ticket (the code for a missing one is
        UNCONFIRMED), 84014 once its 1800 s are over, 50002 for a member who left the
        visible range since; a body that is not a JSON object is 47001 (UNCONFIRMED).
        """
        corp, agent = self._caller(call)
        try:
            data = json.loads(call.body.decode("utf-8")) if call.body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            raise WeComError(47001) from None
        if not isinstance(data, dict):
            raise WeComError(47001)
        value = data.get("user_ticket")
        ticket = self._tickets.get(value) if isinstance(value, str) else None
        if ticket is None or ticket.corpid != corp.corpid or ticket.agentid != agent.agentid:
            raise WeComError(84015)
        if self.clock() >= ticket.expires_at:
            raise WeComError(84014)
        member = corp.member(ticket.userid)
        if member is None:
            raise WeComError(84015)
        if not member.in_visible_range:
            raise WeComError(50002)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "userid": member.userid,
            "gender": member.gender,
            "avatar": self._avatar(call.base, member),
            "qr_code": self._qr_code(call.base, corp, member),
            "mobile": member.mobile,
            "email": member.email,
            "biz_mail": member.biz_mail,
            "address": member.address,
        }

    def _user_get(self, call: WeComCall) -> dict[str, object]:
        """``GET /cgi-bin/user/get``: a member in the app's visible range, fields by the app's age.

        60111 ``invalid string value `<userid>`. userid not found`` for an unknown
        userid, 60011 for one outside the visible range. Apps created after 2022-06-20
        do not see avatar, thumb_avatar, gender, mobile, email, biz_mail, qr_code or
        address: the keys are left out (UNCONFIRMED: they might come back empty).
        """
        corp, agent = self._caller(call)
        userid = call.params.get("userid", "")
        if not userid:
            raise WeComError(41009)
        member = corp.member(userid)
        if member is None:
            raise WeComError(60111, f"invalid string value `{userid}`. userid not found")
        if not member.in_visible_range:
            raise WeComError(60011)
        body: dict[str, object] = {
            "errcode": 0,
            "errmsg": "ok",
            "userid": member.userid,
            "name": member.name,
            "department": list(member.department),
            "order": [0] * len(member.department),
            "position": member.position,
            "mobile": member.mobile,
            "gender": member.gender,
            "email": member.email,
            "biz_mail": member.biz_mail,
            "is_leader_in_dept": [0] * len(member.department),
            "direct_leader": [],
            "avatar": self._avatar(call.base, member),
            "thumb_avatar": self._avatar(call.base, member, "100"),
            "telephone": "",
            "alias": "",
            "address": member.address,
            "main_department": member.department[0],
            "extattr": {"attrs": []},
            "status": 1,
            "qr_code": self._qr_code(call.base, corp, member),
            "external_position": "",
        }
        if agent.created_after_2022_06_20:
            for key in _WITHHELD:
                del body[key]
        return body

    _HANDLERS: Final[dict[str, Callable[[WeCom, WeComCall], dict[str, object]]]] = {
        "wecom_gettoken": _gettoken,
        "wecom_getuserinfo": _getuserinfo,
        "wecom_legacy_getuserinfo": _legacy_getuserinfo,
        "wecom_getuserdetail": _getuserdetail,
        "wecom_user_get": _user_get,
    }
