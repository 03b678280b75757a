"""The fake's ``jweixin-1.6.0.js``: ``wx.config`` checked by the fake instead of by the WeChat client.

Real pages load ``https://res.wx.qq.com/open/js/jweixin-1.6.0.js``; inside WeChat the
client then checks ``wx.config``'s signature against the account's jsapi_ticket and
calls the ``wx.ready`` or ``wx.error`` callbacks. This stand-in posts the config (and
the page URL without its ``#fragment``, which is what WeChat signs) to the fake's
:data:`VERIFY_PATH`, found next to the script's own URL, so it works on another origin
and under a mount prefix alike. The request is a CORS "simple request" (``text/plain``),
so no preflight is needed. ``wx.__fake`` is true and ``wx.__result`` holds the outcome,
for browser tests.
"""

from __future__ import annotations

from typing import Final

from werkzeug.wrappers import Request, Response

from .pages import js_string

__all__ = ["INVALID_SIGNATURE", "SCRIPT_PATH", "VERIFY_PATH", "script", "serve"]

#: WeChat's own path (on res.wx.qq.com).
SCRIPT_PATH: Final = "/open/js/jweixin-1.6.0.js"
#: Where the script sends ``wx.config`` for checking.
VERIFY_PATH: Final = "/_fake/jssdk/verify"
#: What ``wx.error`` receives for a signature that no ticket of the app makes.
INVALID_SIGNATURE: Final = "config:invalid signature"

_TEMPLATE: Final = """\
/* Fake WeChat jweixin-1.6.0.js: wx.config is checked by this fake (/_fake/jssdk/verify), not by WeChat. */
!function (window, document) {
  var script = document.currentScript, base = __BASE__;
  var found = script && script.src ? /^(.*?)\\/open\\/js\\/[^\\/?#]*(?:[?#].*)?$/.exec(script.src) : null;
  if (found) base = found[1];
  var state = "idle", outcome = null, readyCallbacks = [], errorCallbacks = [], allowed = {};
  var reserved = {config: 1, ready: 1, error: 1, __fake: 1, __result: 1};
  function run(callbacks, argument) {
    for (var i = 0; i < callbacks.length; i++) {
      try { callbacks[i](argument); } catch (e) { setTimeout(function () { throw e; }, 0); }
    }
  }
  function settle(ok, errMsg) {
    state = ok ? "ready" : "error";
    outcome = {errMsg: errMsg};
    wx.__result = {ok: ok, errMsg: errMsg};
    var callbacks = ok ? readyCallbacks : errorCallbacks;
    readyCallbacks = [];
    errorCallbacks = [];
    ok ? run(callbacks) : run(callbacks, outcome);
  }
  function stub(name) {
    return function (options) {
      options = options || {};
      var ok = state === "ready" && allowed[name];
      var result = {errMsg: name + (ok ? ":ok" : ":permission denied")};
      if (ok && options.success) options.success(result);
      if (!ok && options.fail) options.fail(result);
      if (options.complete) options.complete(result);
    };
  }
  var wx = {
    __fake: true,
    __result: null,
    config: function (config) {
      config = config || {};
      state = "pending";
      allowed = {};
      var list = config.jsApiList || [];
      for (var i = 0; i < list.length; i++) {
        allowed[list[i]] = true;
        if (!reserved[list[i]] && !wx[list[i]]) wx[list[i]] = stub(list[i]);
      }
      var body = JSON.stringify({
        appId: config.appId, timestamp: config.timestamp, nonceStr: config.nonceStr,
        signature: config.signature, jsApiList: list, url: window.location.href.split("#")[0]
      });
      window.fetch(base + __VERIFY__, {method: "POST", headers: {"Content-Type": "text/plain"}, body: body})
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          answer && answer.ok ? settle(true, "config:ok") : settle(false, (answer && answer.errMsg) || "config:fail");
        }, function () { settle(false, "config:fail"); });
    },
    ready: function (callback) {
      if (state === "ready") run([callback]); else readyCallbacks.push(callback);
    },
    error: function (callback) {
      if (state === "error") run([callback], outcome); else errorCallbacks.push(callback);
    }
  };
  window.wx = window.jWeixin = wx;
}(window, document);
"""


def script(base: str) -> str:
    """The script text; ``base`` (where the fake is reached) is the fallback when ``currentScript`` is unknown."""
    return _TEMPLATE.replace("__BASE__", js_string(base.rstrip("/"))).replace("__VERIFY__", js_string(VERIFY_PATH))


def serve(request: Request) -> Response:
    """``GET`` :data:`SCRIPT_PATH`."""
    if request.method not in ("GET", "HEAD"):
        return Response("use GET", 405, content_type="text/plain; charset=utf-8")
    text = script(request.host_url.rstrip("/") + request.script_root)
    return Response(
        text, 200, content_type="application/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )
