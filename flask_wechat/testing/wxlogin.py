"""The fake's ``wxLogin.js``: ``new WxLogin({...})`` builds the same iframe as WeChat's script.

WeChat serves it from ``res.wx.qq.com/connect/zh_CN/htmledition/js/wxLogin.js`` and
points the iframe at ``open.weixin.qq.com``; the fake serves both, so the iframe
goes to the origin the script was loaded from (read from ``document.currentScript``
when the browser has it, else the origin of the request), under the mount prefix
(``SCRIPT_NAME``) the script was requested with. Everything else is the real
script's logic, including ``redirect_uri`` being concatenated verbatim: callers
pass it already URL-encoded.
"""

from __future__ import annotations

from typing import Final

from werkzeug.wrappers import Request, Response

from .. import protocol
from .pages import js_string

__all__ = ["SCRIPT_PATHS", "script", "serve"]

#: Where the fake serves the script: WeChat's own path, and a short alias.
SCRIPT_PATHS: Final = ("/connect/zh_CN/htmledition/js/wxLogin.js", "/js/wxLogin.js")

_TEMPLATE: Final = """\
/* Fake WeChat wxLogin.js: the iframe of res.wx.qq.com/connect/zh_CN/htmledition/js/wxLogin.js, pointed at this fake. */
!function (window, document) {
  var script = document.currentScript, origin = __ORIGIN__;
  var found = script && script.src ? /^[a-z][a-z0-9+.-]*:\\/\\/[^\\/?#]+/i.exec(script.src) : null;
  if (found) origin = found[0];
  var base = origin + __PREFIX__;
  window.WxLogin = function (e) {
    var r = "default";
    true === e.self_redirect ? r = "true" : false === e.self_redirect && (r = "false");
    var i = document.createElement("iframe"),
      n = base + __QRCONNECT__ + "?appid=" + e.appid + "&scope=" + e.scope + "&redirect_uri=" + e.redirect_uri +
        "&state=" + e.state + "&login_type=jssdk&self_redirect=" + r + "&styletype=" + (e.styletype || "") +
        "&sizetype=" + (e.sizetype || "") + "&bgcolor=" + (e.bgcolor || "") + "&rst=" + (e.rst || "");
    n += e.style ? "&style=" + e.style : "";
    n += e.href ? "&href=" + e.href : "";
    n += "en" === e.lang ? "&lang=en" : "";
    n += 1 === e.stylelite ? "&stylelite=1" : "";
    n += 0 === e.fast_login ? "&fast_login=0" : "";
    i.src = n;
    i.frameBorder = "0";
    i.allowTransparency = "true";
    i.scrolling = "no";
    i.width = "300px";
    i.height = "400px";
    var l = document.getElementById(e.id);
    l.innerHTML = "";
    l.appendChild(i);
  };
}(window, document);
"""


def script(origin: str, prefix: str = "") -> str:
    """The script text; ``origin`` (``scheme://host[:port]``) is the fallback when ``currentScript`` is unknown."""
    return (
        _TEMPLATE.replace("__ORIGIN__", js_string(origin.rstrip("/")))
        .replace("__PREFIX__", js_string(prefix.rstrip("/")))
        .replace("__QRCONNECT__", js_string(protocol.QRCONNECT_PATH))
    )


def serve(request: Request) -> Response:
    """``GET`` one of :data:`SCRIPT_PATHS`."""
    if request.method not in ("GET", "HEAD"):
        return Response("use GET", 405, content_type="text/plain; charset=utf-8")
    text = script(request.host_url, request.script_root)
    return Response(
        text, 200, content_type="application/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )
