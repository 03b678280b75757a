"""The HTML the fake shows: consent, QR scan, errors, refusal, index, and the mini program simulator.

Plain strings and no external assets; the only JavaScript is the one-line top-window
navigation of the embedded QR login and the simulator's buttons. Element ids and
names are stable because browser tests click them (``input[name=user][value=KEY]``,
``#allow``, ``#deny``, ``#login``, ``#phone``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Final

from .. import protocol
from .accounts import FakeApp, FakeUser

__all__ = [
    "consent_page",
    "denied_page",
    "error_page",
    "fake_qr_svg",
    "index_page",
    "js_string",
    "miniprogram_page",
    "scan_page",
    "top_redirect_page",
]

_STYLE: Final = """
body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#ededed;color:#191919}
main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem;background:#fff;min-height:100vh;box-sizing:border-box}
.banner{font-size:.8rem;color:#fa5151;border:1px dashed #fa5151;padding:.25rem .5rem;border-radius:4px}
h1{font-size:1.25rem;margin:1rem 0 .25rem}
fieldset{border:0;padding:0;margin:1rem 0}
label{display:flex;align-items:center;gap:.6rem;padding:.6rem 0;border-bottom:1px solid #eee}
.avatar{width:2rem;height:2rem;border-radius:4px;background:#07c160;color:#fff;display:inline-flex;
 align-items:center;justify-content:center;font-weight:bold}
small{color:#888}
button{display:block;width:100%;padding:.75rem;margin:.75rem 0 0;font-size:1rem;border:0;border-radius:6px}
#allow{background:#07c160;color:#fff}#deny{background:#f2f2f2;color:#06ae56}
.errcode{color:#888}
"""

_SCOPE_TEXT: Final = {
    protocol.SCOPE_USERINFO: "获得你的公开信息（昵称、头像）",
    protocol.SCOPE_BASE: "获得你的 openid（snsapi_base：真实微信静默授权，不显示此页面）",
}


def _visible(text: str) -> str:
    # Nicknames may carry raw C0 control characters; they are invalid in HTML.
    return "".join(ch for ch in text if ch >= " ").strip()


#: The banner on every page, in the page's language: nobody may take the fake for WeChat.
_BANNER: Final = {
    "zh-CN": "模拟微信 · 本地测试，不是真正的微信",
    "en": "Fake WeChat · local testing, not the real WeChat",
}


def _page(title: str, body: str, *, css: str = "", body_class: str = "", head: str = "", lang: str = "zh-CN") -> str:
    klass = f' class="{escape(body_class)}"' if body_class else ""
    return (
        f'<!doctype html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}{css}</style>{head}</head>"
        f'<body{klass}><main><p class="banner">{_BANNER.get(lang, _BANNER["zh-CN"])}</p>{body}</main></body></html>\n'
    )


def js_string(text: str) -> str:
    """``text`` as a JavaScript string literal that is also safe inside an HTML ``<script>`` element."""
    # json.dumps escapes quotes, backslashes, controls and (ASCII-only) U+2028/U+2029;
    # <, > and & are escaped too so "</script>" or "<!--" can never end the element.
    literal = json.dumps(text)
    return literal.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{escape(value)}">'


def _user_choice(user: FakeUser, checked: bool) -> str:
    nickname = _visible(user.nickname)
    initial = escape(nickname[:1]) or "?"
    note = " · 快照页虚拟用户" if user.snapshot else ""
    return (
        f'<label for="user-{escape(user.key)}"><input type="radio" name="user" id="user-{escape(user.key)}" '
        f'value="{escape(user.key)}"{" checked" if checked else ""}>'
        f'<span class="avatar" aria-hidden="true" translate="no">{initial}</span>'
        f'<span><span translate="no">{escape(nickname)}</span><br>'
        f'<small><span translate="no">{escape(user.key)}</span>{note}</small></span></label>'
    )


def consent_page(
    app: FakeApp, *, action: str, redirect_uri: str, scope: str, state: str | None, users: Sequence[FakeUser]
) -> str:
    """The authorization page: pick a test user, then 允许 (allow) or 拒绝 (deny) in one form."""
    hidden = [_hidden("appid", app.appid), _hidden("redirect_uri", redirect_uri), _hidden("scope", scope)]
    if state is not None:
        hidden.append(_hidden("state", state))
    choices = "".join(_user_choice(user, index == 0) for index, user in enumerate(users))
    body = (
        f"<h1>{escape(app.name)}</h1><p>申请获得以下权限：</p>"
        f'<ul><li id="scope">{escape(_SCOPE_TEXT.get(scope, scope))}</li></ul>'
        f'<form method="post" action="{escape(action)}" id="consent">{"".join(hidden)}'
        f"<fieldset><legend>以测试用户身份登录</legend>{choices}</fieldset>"
        '<button type="submit" name="action" value="allow" id="allow">允许</button>'
        '<button type="submit" name="action" value="deny" id="deny">拒绝</button></form>'
        f'<p><small>redirect_uri: <code id="redirect-uri">{escape(redirect_uri)}</code></small></p>'
    )
    return _page("微信授权", body)


def error_page(errcode: int | None, text: str, detail: str) -> str:
    """An authorize-page error like WeChat's (``…，错误码：10003``) plus an English hint for the developer."""
    code = f'<span class="errcode">，错误码：<span id="errcode">{errcode}</span></span>' if errcode else ""
    body = f'<h1 id="error">{escape(text)}{code}</h1><p><small lang="en">Fake WeChat: {escape(detail)}</small></p>'
    return _page(text, body)


def denied_page(app: FakeApp) -> str:
    """What a refusal shows when WeChat does not redirect (the observed behaviour)."""
    body = (
        f'<h1 id="denied">你已拒绝授权</h1><p>{escape(app.name)} 未获得你的信息。</p>'
        '<p><small lang="en">Fake WeChat: the user refused. Real WeChat does not redirect here '
        "(iOS closes the page, Android shows a blank one); start the fake with "
        "deny_mode=&quot;redirect&quot; to get <code>redirect_uri?state=STATE</code> instead.</small></p>"
    )
    return _page("已拒绝授权", body)


_SCAN_STYLE: Final = """
.scan main{max-width:36rem;text-align:center}
.qr{display:block;margin:1rem auto;width:200px;height:200px;border:1px solid #e5e5e5;background:#fff}
.scan .hint{color:#444}.scan .appname{font-weight:bold}
.devpanel{margin-top:1.25rem;text-align:left;border:1px dashed #07c160;border-radius:6px;padding:.5rem .75rem}
.devpanel p{margin:.25rem 0;font-size:.85rem;color:#555}
.embedded{background:transparent;overflow:hidden}
.embedded main{max-width:300px;min-height:0;padding:.25rem .5rem;background:transparent}
.embedded p{margin:.1rem 0}.embedded .banner{font-size:.6rem;padding:0 .25rem}
.embedded h1{font-size:.95rem;margin:.2rem 0 0}
.embedded .qr{width:120px;height:120px;margin:.2rem auto}
.embedded .hint,.embedded .appname{font-size:.8rem}
.embedded .devpanel{margin-top:.25rem;padding:.15rem .4rem}.embedded .devpanel p{font-size:.62rem;line-height:1.3}
.embedded fieldset{margin:.1rem 0;max-height:5.6rem;overflow-y:auto}.embedded legend{font-size:.7rem}
.embedded label{padding:.1rem 0;font-size:.8rem;gap:.4rem}.embedded .avatar{width:1.2rem;height:1.2rem;font-size:.7rem}
.embedded label br{display:none}.embedded label small{margin-left:.4rem}
.embedded .buttons{display:flex;gap:.4rem}.embedded button{padding:.3rem;margin:.2rem 0 .1rem;font-size:.85rem}
.embedded.white,.embedded.white h1,.embedded.white .hint,.embedded.white small,.embedded.white .devpanel p{color:#fff}
"""

_SCAN_TEXT: Final = {
    "cn": {
        "title": "微信登录",
        "hint": "使用微信扫一扫登录",
        "dev": "模拟微信：这个二维码没人能扫。选择一个测试用户代为扫码并确认登录。",
        "legend": "以测试用户身份扫码",
        "allow": "允许",
        "deny": "拒绝",
        "none": "没有可以扫码的测试用户。",
    },
    "en": {
        "title": "WeChat Login",
        "hint": "Scan with WeChat to log in",
        "dev": "Fake WeChat: nobody can scan this code. Pick a test user to scan and confirm as.",
        "legend": "Scan as",
        "allow": "Allow",
        "deny": "Deny",
        "none": "No test user can scan.",
    },
}


def fake_qr_svg(seed: str, modules: int = 25) -> str:
    """An inline SVG that looks like a QR code (three finder squares, noise from ``seed``); it encodes nothing."""
    bits = int.from_bytes(hashlib.sha512(seed.encode("utf-8")).digest() * 2, "big")
    finders = [(0, 0), (modules - 7, 0), (0, modules - 7)]

    def finder(x: int, y: int) -> bool | None:
        for fx, fy in finders:
            if fx - 1 <= x <= fx + 7 and fy - 1 <= y <= fy + 7:
                dx, dy = x - fx, y - fy
                if not (0 <= dx <= 6 and 0 <= dy <= 6):
                    return False
                ring = max(abs(dx - 3), abs(dy - 3))
                return ring != 2
        return None

    def dark(x: int, y: int) -> bool:
        fixed = finder(x, y)
        return fixed if fixed is not None else bool(bits >> ((y * modules + x) % 1024) & 1)

    cells = []  # one rectangle per horizontal run of dark modules, inside a 2-module quiet zone
    for y in range(modules):
        x = 0
        while x < modules:
            if not dark(x, y):
                x += 1
                continue
            run = 1
            while x + run < modules and dark(x + run, y):
                run += 1
            cells.append(f"M{x + 2} {y + 2}h{run}v1h-{run}z")
            x += run
    size = modules + 4
    return (
        f'<svg class="qr" id="qrcode" role="img" aria-label="fake QR code" viewBox="0 0 {size} {size}" '
        f'xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{"".join(cells)}"/></svg>'
    )


def scan_page(
    app: FakeApp,
    *,
    action: str,
    hidden: Sequence[tuple[str, str]],
    users: Sequence[FakeUser],
    lang: str = "cn",
    embedded: bool = False,
    white: bool = False,
    stylesheet: str | None = None,
) -> str:
    """The website QR login page (full page, or sized for wxLogin.js's 300x400 iframe) with a developer panel.

    Nobody can scan the fake QR, so the panel lists the test users to "scan as" in
    the consent page's own form fields (radio ``user``, buttons ``action`` allow/deny).
    """
    text = _SCAN_TEXT["en" if lang == "en" else "cn"]
    fields = "".join(_hidden(name, value) for name, value in hidden)
    choices = "".join(_user_choice(user, index == 0) for index, user in enumerate(users))
    buttons = (
        f'<div class="buttons"><button type="submit" name="action" value="allow" id="allow">{text["allow"]}</button>'
        f'<button type="submit" name="action" value="deny" id="deny">{text["deny"]}</button></div>'
        if users
        else f'<p id="no-users">{text["none"]}</p>'
    )
    body = (
        f"<h1>{text['title']}</h1>{fake_qr_svg('|'.join((app.appid, *(value for _, value in hidden))))}"
        f'<p class="hint" id="hint">{text["hint"]}</p>'
        f'<p class="appname" id="appname" translate="no">「{escape(app.name)}」</p>'
        f'<form method="post" action="{escape(action)}" id="scan" class="devpanel">{fields}'
        f"<p>{text['dev']}</p><fieldset><legend>{text['legend']}</legend>{choices}</fieldset>{buttons}</form>"
    )
    classes = " ".join(name for name, on in (("scan", True), ("embedded", embedded), ("white", white)) if on)
    head = f'<link rel="stylesheet" href="{escape(stylesheet)}">' if stylesheet else ""
    return _page(
        text["title"], body, css=_SCAN_STYLE, body_class=classes, head=head, lang="en" if lang == "en" else "zh-CN"
    )


def top_redirect_page(url: str) -> str:
    """What the embedded QR login answers when ``self_redirect`` is not true: navigate the top window to ``url``."""
    body = (
        '<h1 id="redirecting">正在跳转… / Redirecting…</h1>'
        f'<p><a id="continue" href="{escape(url)}" target="_top">继续 / Continue</a></p>'
        f"<script>window.top.location.href = {js_string(url)};</script>"
    )
    return _page("正在跳转", body, css=_SCAN_STYLE, body_class="scan embedded")


def index_page(
    apps: Iterable[FakeApp],
    users: Iterable[FakeUser],
    endpoints: Iterable[tuple[str, str]],
    *,
    sections: Iterable[tuple[str, Iterable[str]]] = (),
) -> str:
    """A map of the fake for people who open it in a browser; ``sections``: more (heading, HTML list items)."""
    rows = "".join(f"<li><code>{escape(path)}</code> {escape(what)}</li>" for path, what in endpoints)
    app_rows = "".join(
        f"<li><code>{escape(app.appid)}</code> {escape(app.name)} <small>{escape(app.kind)}"
        f"{'' if app.bound else ', unbound'}</small></li>"
        for app in apps
    )
    user_rows = "".join(f"<li><code>{escape(u.key)}</code> {escape(_visible(u.nickname))}</li>" for u in users)
    body = (
        "<h1>Fake WeChat</h1><p>Imitates open.weixin.qq.com and api.weixin.qq.com for local tests.</p>"
        f"<h2>Endpoints</h2><ul>{rows}</ul><h2>Apps</h2><ul>{app_rows}</ul><h2>Users</h2><ul>{user_rows}</ul>"
        + "".join(f"<h2>{escape(heading)}</h2><ul>{''.join(items)}</ul>" for heading, items in sections)
    )
    return _page("Fake WeChat", body, lang="en")


_SIMULATOR_STYLE: Final = """
.simulator dl{font-size:.85rem;margin:.5rem 0}.simulator dt{color:#888}
.simulator dd{margin:0 0 .25rem;word-break:break-all}
.simulator pre{background:#f7f7f7;border-radius:4px;padding:.5rem;margin:.5rem 0;min-height:1.2rem;
 font-size:.8rem;white-space:pre-wrap;word-break:break-all}
.simulator .primary{background:#07c160;color:#fff}.simulator .secondary{background:#f2f2f2;color:#06ae56}
"""

_SIMULATOR_SCRIPT: Final = """
(function () {
  var setup = __SETUP__, bearer = null;
  function byId(id) { return document.getElementById(id); }
  function user() { var c = document.querySelector('input[name="user"]:checked'); return c ? c.value : ""; }
  function show(id, text, status) {
    var out = byId(id);
    out.textContent = text;
    out.setAttribute("data-status", String(status));
  }
  function control(path, data) {
    return fetch(setup.control + path, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
        return body;
      });
    });
  }
  function post(url, data) {
    var headers = {"Content-Type": "application/json"};
    if (bearer && setup.auth !== "cookie") headers.Authorization = "Bearer " + bearer;
    return fetch(url, {method: "POST", credentials: "include", headers: headers, body: JSON.stringify(data)})
      .then(function (response) {
        return response.text().then(function (text) { return {status: response.status, text: text}; });
      });
  }
  function report(id, answer) {
    var text = answer.text;
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: show it as sent */ }
    show(id, "HTTP " + answer.status + "\\n" + text, answer.status);
    return answer;
  }
  function failed(id) { return function (error) { show(id, String(error), "error"); }; }
  byId("login").addEventListener("click", function () {
    show("login-result", "…", "pending");
    control("/_fake/js-code", {appid: setup.appid, user: user()})
      .then(function (answer) { return post(setup.login, {code: answer.code}); })
      .then(function (answer) {
        report("login-result", answer);
        bearer = null;
        try {
          var data = JSON.parse(answer.text);
          if (data && typeof data.token === "string") bearer = data.token;
        } catch (e) { /* no token in a non-JSON answer */ }
      }, failed("login-result"));
  });
  function share(controlPath, body) {
    show("phone-result", "…", "pending");
    control(controlPath, {appid: setup.appid, user: user()})
      .then(function (answer) { return post(setup.phone, body(answer)); })
      .then(function (answer) { report("phone-result", answer); }, failed("phone-result"));
  }
  if (byId("phone")) {
    byId("phone").addEventListener("click", function () {
      share("/_fake/phone-code", function (answer) { return {code: answer.code}; });
    });
    byId("phone-legacy").addEventListener("click", function () {
      share("/_fake/encrypted-phone", function (answer) {
        return {encryptedData: answer.encryptedData, iv: answer.iv};
      });
    });
  }
})();
"""


def miniprogram_page(
    app: FakeApp, users: Sequence[FakeUser], *, control: str, login: str, phone: str | None, auth: str | None
) -> str:
    """A stand-in for a mini program: pick a test user, ``wx.login()``, then share the phone number.

    The buttons ask the fake (under ``control``) for what WeChat would give the mini
    program (a login code, a phone code, legacy ``encryptedData``) and POST it as JSON
    to the app's ``login`` and ``phone`` URLs, with the cookie, or with
    ``Authorization: Bearer`` when the login answer carried a ``token`` (unless ``auth``
    is ``"cookie"``). Each answer is shown as received.
    """
    choices = "".join(_user_choice(user, index == 0) for index, user in enumerate(users))
    setup = {"appid": app.appid, "control": control, "login": login, "phone": phone, "auth": auth or "auto"}
    phone_part = (
        '<button type="button" id="phone" class="primary">手机号快速验证 / Share phone number</button>'
        '<button type="button" id="phone-legacy" class="secondary">'
        "旧版 encryptedData / Legacy encryptedData</button>"
        '<pre id="phone-result" data-status=""></pre>'
        if phone
        else '<p id="no-phone"><small>没有 phone 参数：不能测试手机号。 / No phone URL given: '
        "the phone number buttons are off.</small></p>"
    )
    body = (
        f'<h1>小程序模拟器 · Mini program simulator</h1><p id="appname" translate="no">「{escape(app.name)}」 '
        f"<small><code>{escape(app.appid)}</code></small></p>"
        "<p><small>模拟微信：这不是小程序。选择一个测试用户，然后像小程序那样调用你的服务器。<br>"
        '<span lang="en">Fake WeChat: not a mini program. Pick a test user, then call your server the way '
        "a mini program does.</span></small></p>"
        f'<dl><dt>登录地址 / Login URL</dt><dd><code id="login-url">{escape(login)}</code></dd>'
        f'<dt>手机号地址 / Phone URL</dt><dd><code id="phone-url">{escape(phone or "—")}</code></dd>'
        f'<dt>凭证 / Credential</dt><dd><code id="auth">{escape(auth or "auto")}</code></dd></dl>'
        f'<form id="simulator" onsubmit="return false"><fieldset><legend>以测试用户身份 / As test user</legend>'
        f"{choices}</fieldset>"
        '<button type="button" id="login" class="primary">wx.login() 登录 / Log in</button>'
        f'<pre id="login-result" data-status=""></pre>{phone_part}</form>'
        f"<script>{_SIMULATOR_SCRIPT.replace('__SETUP__', _js_object(setup))}</script>"
    )
    return _page("小程序模拟器 · Mini program simulator", body, css=_SIMULATOR_STYLE, body_class="simulator")


def _js_object(data: dict[str, str | None]) -> str:
    """``data`` as a JavaScript object literal, safe inside a ``<script>`` element."""
    items = ", ".join(
        f"{js_string(key)}: {'null' if value is None else js_string(value)}" for key, value in data.items()
    )
    return "{" + items + "}"
