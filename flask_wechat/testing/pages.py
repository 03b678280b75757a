"""The HTML the fake's open.weixin.qq.com side shows: consent, errors, refusal, index.

Plain strings, no JavaScript, readable on a phone; element ids and names are stable
because browser tests click them (``input[name=user][value=KEY]``, ``#allow``, ``#deny``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Final

from .. import protocol
from .accounts import FakeApp, FakeUser

__all__ = ["consent_page", "denied_page", "error_page", "index_page"]

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


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><p class="banner">Fake WeChat · 本地测试，不是真正的微信</p>{body}</main></body></html>\n'
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{escape(value)}">'


def _user_choice(user: FakeUser, checked: bool) -> str:
    nickname = _visible(user.nickname)
    initial = escape(nickname[:1]) or "?"
    note = " · 快照页虚拟用户" if user.snapshot else ""
    return (
        f'<label for="user-{escape(user.key)}"><input type="radio" name="user" id="user-{escape(user.key)}" '
        f'value="{escape(user.key)}"{" checked" if checked else ""}>'
        f'<span class="avatar" aria-hidden="true">{initial}</span>'
        f"<span>{escape(nickname)}<br><small>{escape(user.key)}{note}</small></span></label>"
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
        f"<fieldset><legend>以测试用户身份登录 / Sign in as</legend>{choices}</fieldset>"
        '<button type="submit" name="action" value="allow" id="allow">允许</button>'
        '<button type="submit" name="action" value="deny" id="deny">拒绝</button></form>'
        f'<p><small>redirect_uri: <code id="redirect-uri">{escape(redirect_uri)}</code></small></p>'
    )
    return _page("微信授权", body)


def error_page(errcode: int | None, text: str, detail: str) -> str:
    """An authorize-page error like WeChat's (``…，错误码：10003``) plus an English hint for the developer."""
    code = f'<span class="errcode">，错误码：<span id="errcode">{errcode}</span></span>' if errcode else ""
    body = f'<h1 id="error">{escape(text)}{code}</h1><p><small>Fake WeChat: {escape(detail)}</small></p>'
    return _page(text, body)


def denied_page(app: FakeApp) -> str:
    """What a refusal shows when WeChat does not redirect (the observed behaviour)."""
    body = (
        f'<h1 id="denied">你已拒绝授权</h1><p>{escape(app.name)} 未获得你的信息。</p>'
        "<p><small>Fake WeChat: the user refused. Real WeChat does not redirect here "
        "(iOS closes the page, Android shows a blank one); start the fake with "
        "deny_mode=&quot;redirect&quot; to get <code>redirect_uri?state=STATE</code> instead.</small></p>"
    )
    return _page("已拒绝授权", body)


def index_page(apps: Iterable[FakeApp], users: Iterable[FakeUser], endpoints: Iterable[tuple[str, str]]) -> str:
    """A map of the fake for people who open it in a browser."""
    rows = "".join(f"<li><code>{escape(path)}</code> {escape(what)}</li>" for path, what in endpoints)
    app_rows = "".join(
        f"<li><code>{escape(app.appid)}</code> {escape(app.name)}{'' if app.bound else ' (unbound)'}</li>"
        for app in apps
    )
    user_rows = "".join(f"<li><code>{escape(u.key)}</code> {escape(_visible(u.nickname))}</li>" for u in users)
    body = (
        "<h1>Fake WeChat</h1><p>Imitates open.weixin.qq.com and api.weixin.qq.com for local tests.</p>"
        f"<h2>Endpoints</h2><ul>{rows}</ul><h2>Apps</h2><ul>{app_rows}</ul><h2>Users</h2><ul>{user_rows}</ul>"
    )
    return _page("Fake WeChat", body)
