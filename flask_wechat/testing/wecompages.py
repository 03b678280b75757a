"""The fake WeCom's browser side: the in-client authorize page, the web login page and its panel script.

* ``/connect/oauth2/authorize?appid=<CORPID>&...``: the path WeChat's Official Account
  page uses; the fake answers here when ``appid`` is one of its corps. ``snsapi_base``
  is silent in real WeCom (the client knows who opened the link); the fake cannot
  know, so it shows a picker that redirects as soon as someone is picked.
  ``snsapi_privateinfo`` shows a consent page for members in the app's visible range.
* ``/wwlogin/sso/login?login_type=CorpApp&...``: the web login (login.work.weixin.qq.com)
  with a QR code nobody can scan and a picker to "scan" as.
* :data:`PANEL_SCRIPT_PATH`: a stand-in for ``@wecom/jssdk``'s ``ww.createWWLoginPanel``
  (the real one is an npm package bundled into the site, so the fake cannot serve it at
  its own address): it puts the web login page in an iframe and answers per ``redirect_type``.

Errors are HTML pages with HTTP 200, like the WeChat ones; their Chinese texts are the
fake's own (UNCONFIRMED) except "redirect_uri需使用应用可信域名", which WeCom shows at
``/wwopen/uriconfirm?err_type=domain_err&uri=...``. Element ids and names are stable
for browser tests: ``button[name=user][value=KEY]`` (the picker), ``#user-KEY`` radios,
``#allow``, ``#deny``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final, Literal
from urllib.parse import quote, urlencode, urlsplit

from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .. import protocol
from . import pages
from .authorize import callback_url
from .interfaces import DenyMode
from .wecom import (
    SCOPE_BASE,
    SCOPE_PRIVATEINFO,
    SCOPES,
    FakeAgent,
    FakeCorp,
    FakeMember,
    FakeNonMember,
    WeCom,
    redirect_host,
)

__all__ = [
    "NO_PERMISSION",
    "OAUTH_CONFIRM_PATH",
    "PANEL_SCRIPT_PATH",
    "REDIRECT_TYPES",
    "TRUSTED_DOMAIN_ERROR",
    "URICONFIRM_PATH",
    "WEB_LOGIN_CONFIRM_PATH",
    "WEB_LOGIN_PATH",
    "OAuthRequest",
    "WeComPageError",
    "WebLoginRequest",
    "corp_rows",
    "oauth_confirm",
    "oauth_show",
    "panel_script",
    "parse_oauth",
    "parse_web_login",
    "serve_panel_script",
    "serve_user_qr",
    "uriconfirm_show",
    "web_login_confirm",
    "web_login_show",
]

#: Where the in-client pages post the pick or the consent (the fake's own path).
OAUTH_CONFIRM_PATH: Final = protocol.OA_AUTHORIZE_PATH + "/wecom"
#: The web login page, as on login.work.weixin.qq.com.
WEB_LOGIN_PATH: Final = "/wwlogin/sso/login"
WEB_LOGIN_CONFIRM_PATH: Final = WEB_LOGIN_PATH + "/confirm"
#: The fake's stand-in for ``@wecom/jssdk``'s login panel (a path of the fake's own choosing).
PANEL_SCRIPT_PATH: Final = "/wwlogin/sso/panel.js"
#: Where WeCom sends a link whose redirect_uri is not on the app's trusted domain.
URICONFIRM_PATH: Final = "/wwopen/uriconfirm"
#: ``createWWLoginPanel``'s ``redirect_type``: ``top`` (the default), ``callback``, ``self``.
REDIRECT_TYPES: Final = ("top", "callback", "self")

TRUSTED_DOMAIN_ERROR: Final = "redirect_uri需使用应用可信域名"
#: What the phone shows a member outside the app's visible range who scans (text UNCONFIRMED).
NO_PERMISSION: Final = "无权限"
_PARAMETER_ERROR: Final = "参数错误"
_AGENT_ERROR: Final = "无效的agentid参数"
_SCOPE_ERROR: Final = "scope参数错误"
_HTML: Final = "text/html; charset=utf-8"
_JS: Final = "application/javascript; charset=utf-8"
#: Marks the fake panel's messages between the iframe and the site's page.
_MESSAGE_SOURCE: Final = "fake-wwlogin"


class WeComPageError(Exception):
    """A link refused with a page ``text`` (Chinese) and a ``detail`` for the developer (English).

    ``uri`` is set for the trusted-domain refusal, which WeCom answers by sending the
    browser to :data:`URICONFIRM_PATH` with the refused redirect_uri.
    """

    def __init__(self, text: str, detail: str, *, uri: str | None = None) -> None:
        super().__init__(text, detail)
        self.text = text
        self.detail = detail
        self.uri = uri


def _known_corp(corps: Mapping[str, FakeCorp], appid: str) -> FakeCorp:
    corp = corps.get(appid) if appid else None
    if corp is None:
        raise WeComPageError(_PARAMETER_ERROR, f"appid {appid!r} is not a corp of this fake")
    return corp


def _checked_redirect_uri(redirect_uri: str, agent: FakeAgent | None) -> str:
    """An absolute http(s) URL, on the agent's trusted domain when it has one (host[:port], exact)."""
    if not redirect_uri:
        raise WeComPageError(_PARAMETER_ERROR, "redirect_uri is missing")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WeComPageError(_PARAMETER_ERROR, "redirect_uri must be an absolute http(s) URL")
    trusted = None if agent is None else agent.trusted_domain
    if trusted is not None and redirect_host(redirect_uri) != trusted.lower():
        raise WeComPageError(
            TRUSTED_DOMAIN_ERROR,
            f"redirect_uri's host[:port] must be exactly {trusted}, got {redirect_host(redirect_uri)}",
            uri=redirect_uri,
        )
    return redirect_uri


def _agent(corp: FakeCorp, raw: str) -> FakeAgent:
    agent = corp.agent(int(raw)) if raw.isascii() and raw.isdigit() else None
    if agent is None:
        raise WeComPageError(_AGENT_ERROR, f"agentid {raw!r} is not an app of corp {corp.corpid}")
    return agent


# -- the in-client authorize page -----------------------------------------------------------------


@dataclass(frozen=True)
class OAuthRequest:
    """An in-client authorize link that passed the checks.

    ``scope`` is what the code will carry: ``snsapi_privateinfo`` without ``agentid``
    counts as ``snsapi_base`` (the documentation's special note); ``requested_scope``
    is what the link said. ``agentid`` None: the link had none.
    """

    corpid: str
    redirect_uri: str
    scope: str
    requested_scope: str
    state: str | None
    agentid: int | None

    def form_fields(self) -> list[tuple[str, str]]:
        """The hidden fields that carry the link through the page's form."""
        fields = [
            ("appid", self.corpid),
            ("redirect_uri", self.redirect_uri),
            ("response_type", "code"),
            ("scope", self.requested_scope),
        ]
        if self.state is not None:
            fields.append(("state", self.state))
        if self.agentid is not None:
            fields.append(("agentid", str(self.agentid)))
        return fields


def parse_oauth(values: Mapping[str, str], corps: Mapping[str, FakeCorp]) -> OAuthRequest:
    """Check an in-client authorize query; raise :class:`WeComPageError` as WeCom would refuse it.

    Parameter order is free: WxJava puts ``agentid`` before ``state``, the documentation
    after it, and both work. ``state`` must be ``[A-Za-z0-9]``, at most 128 (so a
    ``%23wechat_redirect`` folded into it is refused: whether WeCom tolerates that is
    UNCONFIRMED). ``#wechat_redirect`` itself is a fragment and never reaches a server.
    """
    corp = _known_corp(corps, values.get("appid", ""))
    redirect_uri = values.get("redirect_uri", "")
    if values.get("response_type") != "code":
        raise WeComPageError(_PARAMETER_ERROR, "response_type must be code")
    requested = values.get("scope", "")
    if requested not in SCOPES:
        raise WeComPageError(_SCOPE_ERROR, "scope must be snsapi_base or snsapi_privateinfo")
    state = values.get("state")
    if state and not protocol.is_valid_state(state):
        raise WeComPageError(_PARAMETER_ERROR, f"state must match [A-Za-z0-9]{{0,{protocol.MAX_STATE_LENGTH}}}")
    raw_agentid = values.get("agentid", "")
    agent = _agent(corp, raw_agentid) if raw_agentid else None
    _checked_redirect_uri(redirect_uri, agent)
    scope = requested if agent is not None else SCOPE_BASE
    return OAuthRequest(corp.corpid, redirect_uri, scope, requested, state, None if agent is None else agent.agentid)


# -- the web login page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WebLoginRequest:
    """A web login link that passed the checks; ``panel`` is the fake panel's iframe.

    ``origin`` is the site page's origin, which the panel passes for ``callback``: the
    code is posted to that origin only.
    """

    corpid: str
    agentid: int
    redirect_uri: str
    state: str | None
    lang: Literal["zh", "en"] = "zh"
    panel: bool = False
    redirect_type: str = "top"
    origin: str = ""

    def form_fields(self) -> list[tuple[str, str]]:
        """The hidden fields of the scan form."""
        fields = [
            ("login_type", "CorpApp"),
            ("appid", self.corpid),
            ("agentid", str(self.agentid)),
            ("redirect_uri", self.redirect_uri),
        ]
        if self.state is not None:
            fields.append(("state", self.state))
        fields.append(("lang", self.lang))
        if self.panel:
            fields += [("panel", "1"), ("redirect_type", self.redirect_type)]
            if self.origin:
                fields.append(("origin", self.origin))
        return fields


def _origin_problem(origin: str) -> str | None:
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc and origin == f"{parts.scheme}://{parts.netloc}":
        return None
    return "redirect_type=callback needs origin=<the page's scheme://host[:port]> (the panel script sends it)"


def parse_web_login(values: Mapping[str, str], corps: Mapping[str, FakeCorp]) -> WebLoginRequest:
    """Check a web login query (any order); raise :class:`WeComPageError` as WeCom would refuse it."""
    login_type = values.get("login_type", "")
    if login_type == "ServiceApp":
        raise WeComPageError(_PARAMETER_ERROR, "this fake serves self-built apps only: login_type=CorpApp")
    if login_type != "CorpApp":
        raise WeComPageError(_PARAMETER_ERROR, "login_type must be CorpApp (or ServiceApp)")
    corp = _known_corp(corps, values.get("appid", ""))
    raw_agentid = values.get("agentid", "")
    if not raw_agentid:
        raise WeComPageError(_AGENT_ERROR, "agentid is required when login_type=CorpApp")
    agent = _agent(corp, raw_agentid)
    redirect_uri = _checked_redirect_uri(values.get("redirect_uri", ""), agent)
    panel = values.get("panel") == "1"
    redirect_type = (values.get("redirect_type") or "top") if panel else "top"
    if redirect_type not in REDIRECT_TYPES:
        raise WeComPageError(_PARAMETER_ERROR, f"redirect_type must be one of {', '.join(REDIRECT_TYPES)}")
    origin = values.get("origin", "") if panel and redirect_type == "callback" else ""
    if panel and redirect_type == "callback":
        problem = _origin_problem(origin)
        if problem is not None:
            raise WeComPageError(_PARAMETER_ERROR, problem)
    return WebLoginRequest(
        corpid=corp.corpid,
        agentid=agent.agentid,
        redirect_uri=redirect_uri,
        state=values.get("state"),
        lang="en" if values.get("lang") == "en" else "zh",
        panel=panel,
        redirect_type=redirect_type,
        origin=origin,
    )


# -- HTML -----------------------------------------------------------------------------------------

_STYLE: Final = """
body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f3f4f6;color:#1f2329}
main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem;background:#fff;min-height:100vh;box-sizing:border-box}
.banner{font-size:.8rem;color:#d54941;border:1px dashed #d54941;padding:.25rem .5rem;border-radius:4px}
h1{font-size:1.25rem;margin:1rem 0 .25rem}
fieldset{border:0;padding:0;margin:1rem 0}
label,.pick{display:flex;align-items:center;gap:.6rem;padding:.6rem 0;border-bottom:1px solid #eee}
.pick{width:100%;background:none;border:0;border-bottom:1px solid #eee;font:inherit;text-align:left;cursor:pointer}
.avatar{width:2rem;height:2rem;border-radius:4px;background:#0082ef;color:#fff;display:inline-flex;
 align-items:center;justify-content:center;font-weight:bold}
small{color:#888}.note{font-size:.85rem;color:#555}
.buttons button{display:block;width:100%;padding:.75rem;margin:.75rem 0 0;font-size:1rem;border:0;border-radius:6px}
#allow{background:#0082ef;color:#fff}#deny{background:#f2f2f2;color:#1f2329}
.qr{display:block;margin:1rem auto;width:180px;height:180px;border:1px solid #e5e5e5;background:#fff}
.web{text-align:center}.web fieldset,.web .devpanel{text-align:left}
.devpanel{border:1px dashed #0082ef;border-radius:6px;padding:.5rem .75rem}
.panel{background:#fff}.panel main{max-width:none;min-height:0;padding:.25rem .5rem}
.panel .banner{font-size:.6rem;padding:0 .25rem;margin:.1rem 0}.panel h1{font-size:.95rem;margin:.2rem 0 0}
.panel .qr{width:110px;height:110px;margin:.2rem auto}.panel p{margin:.1rem 0;font-size:.8rem}
.panel fieldset{margin:.1rem 0;max-height:6.5rem;overflow-y:auto}.panel legend{font-size:.7rem}
.panel label{padding:.1rem 0;font-size:.8rem;gap:.4rem}.panel .avatar{width:1.2rem;height:1.2rem;font-size:.7rem}
.panel .buttons{display:flex;gap:.4rem}.panel .buttons button{padding:.3rem;margin:.2rem 0 .1rem;font-size:.85rem}
"""

#: The banner on every page, in the page's language: nobody may take the fake for WeCom.
_BANNER: Final = {
    "zh": "模拟企业微信 · 本地测试，不是真正的企业微信",
    "en": "Fake WeCom · local testing, not the real WeCom",
}


def _page(title: str, body: str, *, lang: str = "zh", body_class: str = "") -> str:
    klass = f' class="{escape(body_class)}"' if body_class else ""
    html_lang = "en" if lang == "en" else "zh-CN"
    return (
        f'<!doctype html>\n<html lang="{html_lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body{klass}><main><p class="banner">{_BANNER["en" if lang == "en" else "zh"]}</p>{body}</main>'
        "</body></html>\n"
    )


def _error_page(text: str, detail: str, *, panel: bool = False) -> str:
    body = f'<h1 id="error">{escape(text)}</h1><p><small lang="en">Fake WeCom: {escape(detail)}</small></p>'
    return _page(text, body, body_class="panel" if panel else "")


def _error(exc: WeComPageError, status: int = 200, *, panel: bool = False, root: str = "") -> Response:
    """The error page; the trusted-domain refusal sends the browser to WeCom's uriconfirm page instead."""
    if exc.uri is not None:
        query = urlencode({"err_type": "domain_err", "uri": exc.uri})
        return redirect(f"{root}{URICONFIRM_PATH}?{query}", 302)
    return Response(_error_page(exc.text, exc.detail, panel=panel), status, content_type=_HTML)


def _hidden(fields: Sequence[tuple[str, str]]) -> str:
    return "".join(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in fields)


def _person(key: str, name: str, note: str) -> str:
    initial = escape(name[:1]) or "?"
    return (
        f'<span class="avatar" aria-hidden="true" translate="no">{initial}</span>'
        f'<span><span translate="no">{escape(name)}</span><br>'
        f'<small><span translate="no">{escape(key)}</span> · {escape(note)}</small></span>'
    )


def _member_note(member: FakeMember, lang: str = "zh") -> str:
    if lang == "en":
        return "member" if member.in_visible_range else "member, outside the app's visible range"
    return "成员" if member.in_visible_range else "成员 · 不在应用可见范围"


def _outsider_note(lang: str = "zh") -> str:
    return "not a member" if lang == "en" else "非企业成员"


def _radio(key: str, name: str, note: str, checked: bool) -> str:
    return (
        f'<label for="user-{escape(key)}"><input type="radio" name="user" id="user-{escape(key)}" '
        f'value="{escape(key)}"{" checked" if checked else ""}>{_person(key, name, note)}</label>'
    )


def _ua_note(request: Request) -> str:
    if "wxwork/" in request.headers.get("User-Agent", "").lower():
        return ""
    return (
        '<p class="note" id="ua-note">真实企业微信只在企业微信客户端内打开此链接。'
        '<small lang="en">Real WeCom opens this link only inside the WeCom client '
        "(its User-Agent says wxwork/).</small></p>"
    )


def _pick_page(corp: FakeCorp, auth: OAuthRequest, action: str, request: Request) -> str:
    """``snsapi_base``: the fake cannot tell whose client opened the link, so whoever is picked goes back at once."""
    picks = [
        f'<button type="submit" class="pick" name="user" value="{escape(m.userid)}" id="pick-{escape(m.userid)}">'
        f"{_person(m.userid, m.name, _member_note(m))}</button>"
        for m in corp.members
    ] + [
        f'<button type="submit" class="pick" name="user" value="{escape(p.key)}" id="pick-{escape(p.key)}">'
        f"{_person(p.key, p.name, _outsider_note())}</button>"
        for p in corp.non_members
    ]
    note = (
        '<p class="note" id="scope-note">snsapi_privateinfo 没有 agentid：按 snsapi_base 处理。</p>'
        if auth.requested_scope != auth.scope
        else ""
    )
    body = (
        f"<h1>{escape(corp.name)}</h1>{_ua_note(request)}{note}"
        '<p class="note">静默授权（snsapi_base）：真实企业微信不显示此页。选择是谁在企业微信里打开了链接。'
        '<br><small lang="en">Silent in real WeCom. Pick who opened the link.</small></p>'
        f'<form method="post" action="{escape(action)}" id="pick">{_hidden(auth.form_fields())}'
        f"<fieldset><legend>打开链接的人</legend>{''.join(picks)}</fieldset></form>"
        f'<p><small>redirect_uri: <code id="redirect-uri">{escape(auth.redirect_uri)}</code></small></p>'
    )
    return _page("企业微信", body)


def _consent_page(corp: FakeCorp, agent: FakeAgent, auth: OAuthRequest, action: str, request: Request) -> str:
    """``snsapi_privateinfo``: members in the visible range agree (or not) to share their details."""
    visible = [member for member in corp.members if member.in_visible_range]
    choices = "".join(_radio(m.userid, m.name, _member_note(m), i == 0) for i, m in enumerate(visible))
    buttons = (
        '<div class="buttons"><button type="submit" name="action" value="allow" id="allow">同意</button>'
        '<button type="submit" name="action" value="deny" id="deny">拒绝</button></div>'
        if visible
        else '<p id="no-users">没有在应用可见范围内的成员。</p>'
    )
    body = (
        f'<h1 id="agent-name">{escape(agent.name)}</h1><p>{escape(corp.name)}</p>{_ua_note(request)}'
        "<p>申请获取你的以下信息：</p>"
        '<ul><li id="scope">头像、性别、手机、邮箱、企业邮箱、员工个人二维码、地址</li></ul>'
        f'<form method="post" action="{escape(action)}" id="consent">{_hidden(auth.form_fields())}'
        f"<fieldset><legend>以成员身份</legend>{choices}</fieldset>{buttons}</form>"
        f'<p><small>redirect_uri: <code id="redirect-uri">{escape(auth.redirect_uri)}</code></small></p>'
    )
    return _page("企业微信授权", body)


def _denied_page(agent_name: str) -> str:
    body = (
        f'<h1 id="denied">你已拒绝授权</h1><p>{escape(agent_name)} 未获得你的信息。</p>'
        '<p><small lang="en">Fake WeCom: the member refused; with deny_mode="redirect" the fake sends '
        "<code>redirect_uri?state=STATE</code> instead (what WeCom does here is UNCONFIRMED).</small></p>"
    )
    return _page("已拒绝授权", body)


_WEB_TEXT: Final = {
    "zh": {
        "title": "企业微信登录",
        "hint": "请使用企业微信扫码登录",
        "dev": "模拟企业微信：这个二维码没人能扫。选择一个人代为扫码并确认登录。",
        "legend": "以此身份扫码",
        "allow": "确认登录",
        "deny": "取消",
    },
    "en": {
        "title": "WeCom Login",
        "hint": "Scan with WeCom to log in",
        "dev": "Fake WeCom: nobody can scan this code. Pick who scans and confirms.",
        "legend": "Scan as",
        "allow": "Log in",
        "deny": "Cancel",
    },
}


def _web_page(corp: FakeCorp, agent: FakeAgent, login: WebLoginRequest, action: str) -> str:
    """The web login page: a fake QR code, and who may "scan" it (members, then outsiders)."""
    text = _WEB_TEXT[login.lang]
    people = [(m.userid, m.name, _member_note(m, login.lang)) for m in corp.members] + [
        (p.key, p.name, _outsider_note(login.lang)) for p in corp.non_members
    ]
    choices = "".join(_radio(key, name, note, i == 0) for i, (key, name, note) in enumerate(people))
    seed = "|".join(value for _, value in login.form_fields())
    body = (
        f"<h1>{text['title']}</h1>{pages.fake_qr_svg(seed)}"
        f'<p class="hint" id="hint">{text["hint"]}</p>'
        f'<p id="appname" translate="no">「{escape(agent.name)}」 <small>{escape(corp.name)}</small></p>'
        f'<form method="post" action="{escape(action)}" id="scan" class="devpanel">{_hidden(login.form_fields())}'
        f'<p class="note">{text["dev"]}</p><fieldset><legend>{text["legend"]}</legend>{choices}</fieldset>'
        f'<div class="buttons"><button type="submit" name="action" value="allow" id="allow">{text["allow"]}</button>'
        f'<button type="submit" name="action" value="deny" id="deny">{text["deny"]}</button></div></form>'
    )
    classes = "web panel" if login.panel else "web"
    return _page(text["title"], body, lang=login.lang, body_class=classes)


def _message_page(origin: str, message: Mapping[str, object]) -> str:
    """What the panel's iframe answers for ``redirect_type=callback``: the outcome, posted to the site's page only."""
    data = pages.js_string(json.dumps({"source": _MESSAGE_SOURCE, **message}, ensure_ascii=False))
    body = (
        '<h1 id="done">已完成 / Done</h1>'
        f"<script>window.parent.postMessage(JSON.parse({data}), {pages.js_string(origin)});</script>"
    )
    return _page("企业微信登录", body, body_class="web panel")


def corp_rows(corps: Sequence[FakeCorp]) -> list[str]:
    """The index page's WeCom list items: each corp, its apps (no secrets) and its people."""
    rows = []
    for corp in corps:
        agents = ", ".join(
            f"<code>{agent.agentid}</code> {escape(agent.name)}"
            f"{'' if agent.created_after_2022_06_20 else ' (before 2022-06-20)'}"
            f"{'' if agent.trusted_domain is None else f' · trusted domain {escape(agent.trusted_domain)}'}"
            for agent in corp.agents
        )
        people = ", ".join(
            [
                f"<code>{escape(m.userid)}</code> {escape(m.name)}" + ("" if m.in_visible_range else " (not visible)")
                for m in corp.members
            ]
            + [f"<code>{escape(p.key)}</code> {escape(p.name)} (non-member)" for p in corp.non_members]
        )
        rows.append(
            f"<li><code>{escape(corp.corpid)}</code> {escape(corp.name)}<br><small>agents: {agents}</small>"
            f"<br><small>people: {people}</small></li>"
        )
    return rows


# -- handlers ---------------------------------------------------------------------------------------


def oauth_show(wecom: WeCom, request: Request) -> Response:
    """``GET /connect/oauth2/authorize`` for a corp: the picker (base), the consent page, or an error."""
    if request.method not in ("GET", "HEAD"):
        return _error(WeComPageError(_PARAMETER_ERROR, "the authorize page is opened with GET"), 405)
    try:
        auth = parse_oauth(request.args.to_dict(), wecom.corps)
    except WeComPageError as exc:
        return _error(exc, root=request.script_root)
    corp = wecom.corps[auth.corpid]
    action = request.script_root + OAUTH_CONFIRM_PATH
    if auth.scope == SCOPE_PRIVATEINFO and auth.agentid is not None:
        agent = wecom.agent(corp, auth.agentid)
        return Response(_consent_page(corp, agent, auth, action, request), 200, content_type=_HTML)
    return Response(_pick_page(corp, auth, action, request), 200, content_type=_HTML)


def oauth_confirm(wecom: WeCom, request: Request, deny_mode: DenyMode) -> Response:
    """``POST`` :data:`OAUTH_CONFIRM_PATH`: the pick (base) or the consent; a code goes back at once."""
    if request.method != "POST":
        return _error(WeComPageError(_PARAMETER_ERROR, "the form is submitted with POST"), 405)
    form = request.form
    try:
        auth = parse_oauth(form.to_dict(), wecom.corps)
    except WeComPageError as exc:
        return _error(exc, root=request.script_root)
    corp = wecom.corps[auth.corpid]
    who = form.get("user", "")
    if auth.scope == SCOPE_PRIVATEINFO:
        action = form.get("action", "")
        if action == "deny":
            if deny_mode == "redirect":
                return redirect(iri_to_uri(callback_url(auth.redirect_uri, None, auth.state)), 302)
            agent = corp.agent(auth.agentid) if auth.agentid is not None else None
            return Response(_denied_page(corp.name if agent is None else agent.name), 200, content_type=_HTML)
        if action != "allow":
            return _error(WeComPageError(_PARAMETER_ERROR, "action must be allow or deny"), 400)
        member = corp.member(who)
        if member is None or not member.in_visible_range:
            return _error(WeComPageError(_PARAMETER_ERROR, f"{who!r} is not a member in the visible range"), 400)
    elif corp.member(who) is None and corp.non_member(who) is None:
        return _error(WeComPageError(_PARAMETER_ERROR, f"unknown person {who!r}"), 400)
    code = wecom.issue_code(auth.corpid, auth.agentid, who, auth.scope, redirect_uri=auth.redirect_uri)
    return redirect(iri_to_uri(callback_url(auth.redirect_uri, code, auth.state)), 302)


def uriconfirm_show(request: Request) -> Response:
    """``GET /wwopen/uriconfirm?err_type=domain_err&uri=...``: the trusted-domain refusal."""
    detail = request.args.get("uri", "") or "redirect_uri is not on the app's trusted domain"
    return Response(_error_page(TRUSTED_DOMAIN_ERROR, detail), 200, content_type=_HTML)


def web_login_show(wecom: WeCom, request: Request) -> Response:
    """``GET /wwlogin/sso/login``: the QR login page (full page or the panel's iframe), or an error page."""
    if request.method not in ("GET", "HEAD"):
        return _error(WeComPageError(_PARAMETER_ERROR, "the login page is opened with GET"), 405)
    try:
        login = parse_web_login(request.args.to_dict(), wecom.corps)
    except WeComPageError as exc:
        return _error(exc, panel=request.args.get("panel") == "1", root=request.script_root)
    corp = wecom.corps[login.corpid]
    html = _web_page(corp, wecom.agent(corp, login.agentid), login, request.script_root + WEB_LOGIN_CONFIRM_PATH)
    return Response(html, 200, content_type=_HTML)


def _state_param(state: str | None) -> str | None:
    # No charset rule for the web login's state: percent-encode it so it comes back intact.
    return None if state is None else quote(state, safe="")


def _navigate(login: WebLoginRequest, url: str, outcome: Mapping[str, object]) -> Response:
    """Answer the way the page was opened: a redirect, a top-window move, or a message to the site's page."""
    if login.panel and login.redirect_type == "callback":
        return Response(_message_page(login.origin, outcome), 200, content_type=_HTML)
    location = iri_to_uri(url)
    if login.panel and login.redirect_type == "top":
        return Response(pages.top_redirect_page(location), 200, content_type=_HTML)
    return redirect(location, 302)


def web_login_confirm(wecom: WeCom, request: Request) -> Response:
    """``POST`` :data:`WEB_LOGIN_CONFIRM_PATH`: someone "scanned" and confirmed or cancelled.

    A cancel goes back with ``state`` only (no ``code``), as the documentation says;
    ``callback`` panels get ``onLoginFail`` instead (its argument is UNCONFIRMED).
    """
    if request.method != "POST":
        return _error(WeComPageError(_PARAMETER_ERROR, "the scan form is submitted with POST"), 405)
    form = request.form
    try:
        login = parse_web_login(form.to_dict(), wecom.corps)
    except WeComPageError as exc:
        return _error(exc, panel=form.get("panel") == "1", root=request.script_root)
    corp = wecom.corps[login.corpid]
    action = form.get("action", "")
    if action == "deny":
        failure = {"type": "fail", "error": {"errMsg": "cancel"}}
        return _navigate(login, callback_url(login.redirect_uri, None, _state_param(login.state)), failure)
    if action != "allow":
        return _error(WeComPageError(_PARAMETER_ERROR, "action must be allow or deny"), 400, panel=login.panel)
    who = form.get("user", "")
    member: FakeMember | None = corp.member(who)
    outsider: FakeNonMember | None = corp.non_member(who)
    if member is None and outsider is None:
        return _error(WeComPageError(_PARAMETER_ERROR, f"unknown person {who!r}"), 400, panel=login.panel)
    if member is not None and not member.in_visible_range:
        detail = f"{who!r} is outside the app's visible range: WeCom refuses the scan on the phone"
        return _error(WeComPageError(NO_PERMISSION, detail), panel=login.panel)
    code = wecom.issue_code(login.corpid, login.agentid, who, SCOPE_BASE, web=True, redirect_uri=login.redirect_uri)
    url = callback_url(login.redirect_uri, code, _state_param(login.state))
    return _navigate(login, url, {"type": "success", "code": code})


# -- scripts and images -----------------------------------------------------------------------------

_PANEL_TEMPLATE: Final = """\
/* Fake WeCom login panel: stands in for @wecom/jssdk's ww.createWWLoginPanel, pointed at this fake. */
!function (window, document) {
  var script = document.currentScript, base = __BASE__;
  var found = script && script.src ? /^(.*?)\\/wwlogin\\/sso\\/panel\\.js(?:[?#].*)?$/.exec(script.src) : null;
  if (found) base = found[1];
  var fakeOrigin = (/^[a-z][a-z0-9+.-]*:\\/\\/[^\\/?#]+/i.exec(base) || [""])[0];
  var ww = window.ww = window.ww || {};
  ww.__fake = true;
  ww.createWWLoginPanel = function (options) {
    options = options || {};
    var params = options.params || {}, query = [];
    var el = typeof options.el === "string" ? document.querySelector(options.el) : options.el;
    if (!el) throw new Error("createWWLoginPanel: el matches no element");
    var mode = params.redirect_type || "top";
    function add(key, value) {
      if (value !== undefined && value !== null) query.push(key + "=" + encodeURIComponent(String(value)));
    }
    add("login_type", params.login_type);
    add("appid", params.appid);
    add("agentid", params.agentid);
    add("redirect_uri", params.redirect_uri);
    add("state", params.state);
    add("lang", params.lang);
    add("panel", "1");
    add("redirect_type", mode);
    if (mode === "callback") add("origin", window.location.origin);
    var iframe = document.createElement("iframe");
    iframe.src = base + __LOGIN__ + "?" + query.join("&");
    iframe.frameBorder = "0";
    iframe.width = "100%";
    iframe.height = "400px";
    iframe.style.border = "0";
    iframe.style.minWidth = "300px";
    el.innerHTML = "";
    el.appendChild(iframe);
    function onMessage(event) {
      var data = event.data;
      if (event.source !== iframe.contentWindow || event.origin !== fakeOrigin) return;
      if (!data || data.source !== __SOURCE__) return;
      if (data.type === "success" && options.onLoginSuccess) options.onLoginSuccess({code: data.code});
      if (data.type === "fail" && options.onLoginFail) options.onLoginFail(data.error);
    }
    window.addEventListener("message", onMessage);
    setTimeout(function () {
      if (options.onCheckWeComLogin) options.onCheckWeComLogin({isWeComLogin: false});
    }, 0);
    return {
      unmount: function () {
        window.removeEventListener("message", onMessage);
        if (iframe.parentNode) iframe.parentNode.removeChild(iframe);
      }
    };
  };
}(window, document);
"""


def panel_script(base: str) -> str:
    """The panel script; ``base`` (where the fake is reached) is the fallback when ``currentScript`` is unknown."""
    return (
        _PANEL_TEMPLATE.replace("__BASE__", pages.js_string(base.rstrip("/")))
        .replace("__LOGIN__", pages.js_string(WEB_LOGIN_PATH))
        .replace("__SOURCE__", pages.js_string(_MESSAGE_SOURCE))
    )


def serve_panel_script(request: Request) -> Response:
    """``GET`` :data:`PANEL_SCRIPT_PATH`.

    ``ww.createWWLoginPanel({el, params, onLoginSuccess, onLoginFail, onCheckWeComLogin})``
    puts :data:`WEB_LOGIN_PATH` in an iframe with ``panel=1&redirect_type=...``: ``top``
    (the default) moves the top window to ``redirect_uri?code&state``, ``self`` redirects
    inside the iframe, ``callback`` calls ``onLoginSuccess({code})`` through
    ``postMessage``. ``onCheckWeComLogin({isWeComLogin: false})``: no desktop client is
    ever found. It returns ``{unmount()}``. The iframe's size is the fake's (UNCONFIRMED).
    """
    if request.method not in ("GET", "HEAD"):
        return Response("use GET", 405, content_type="text/plain; charset=utf-8")
    text = panel_script(request.host_url.rstrip("/") + request.script_root)
    return Response(text, 200, content_type=_JS, headers={"Cache-Control": "no-cache"})


def serve_user_qr(request: Request) -> Response:
    """``GET /wwopen/userQRCode?vcode=...``: the image a member's ``qr_code`` URL points at (it encodes nothing)."""
    if request.method not in ("GET", "HEAD"):
        return Response("use GET", 405, content_type="text/plain; charset=utf-8")
    vcode = request.args.get("vcode", "")
    if not vcode:
        return Response(b"", 404)
    return Response(
        pages.fake_qr_svg("wecom-user-qr|" + vcode),
        200,
        content_type="image/svg+xml",
        headers={"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"},
    )
