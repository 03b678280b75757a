"""Proposed flask-wechat changes, tried out as monkeypatches inside a benchmark worker only.

``python -m benchmarks --patch all`` (or ``--patch proxies``) applies them to a second
flask-wechat server, so a run shows what each proposal would buy before anyone edits the
package. Each patch names the file and function it stands in for; a patch whose target has
moved is skipped with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask

__all__ = ["PATCHES", "apply"]

log = logging.getLogger(__name__)


def _proxies(app: Flask) -> None:
    """compliance.py ``WeChatOAuth2Session.__init__``: read proxy settings once, not per call.

    With ``trust_env`` on, requests scans ``os.environ`` for proxy and CA-bundle variables on
    every request. Resolving them once at start-up (``requests.utils.get_environ_proxies`` for
    the API base URL) and setting ``trust_env = False`` keeps the same behaviour.
    """
    import requests.utils

    from flask_wechat.compliance import WeChatOAuth2Session

    api_base = app.extensions["wechat"].settings.api_base_url
    proxies = requests.utils.get_environ_proxies(api_base)
    original_init = WeChatOAuth2Session.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.trust_env = False
        self.proxies.update(proxies)

    WeChatOAuth2Session.__init__ = __init__  # type: ignore[method-assign]


def _direct_login(app: Flask) -> None:
    """ext.py ``_wire_login_manager``: start the WeChat login from Flask-Login's unauthorized handler.

    Today ``@login_required`` redirects to ``/wechat/login?next=...``, which redirects to WeChat:
    one extra browser round trip per login (on a phone, often 50-300 ms). Answering the
    protected page with the redirect to WeChat directly saves it; ``/wechat/login`` stays for
    links. Set only when the app has no unauthorized handler of its own.
    """
    from flask import request
    from werkzeug.datastructures import ImmutableMultiDict

    login_view = app.view_functions["wechat.login"]
    manager = app.login_manager  # type: ignore[attr-defined]

    def unauthorized() -> Any:
        request.args = ImmutableMultiDict({"next": request.full_path.rstrip("?")})
        return login_view()

    manager.unauthorized_handler(unauthorized)


#: Patch name -> what it does to a freshly built flask-wechat app.
PATCHES: dict[str, Callable[[Flask], None]] = {
    "proxies": _proxies,
    "direct-login": _direct_login,
}


def apply(app: Flask, names: list[str]) -> None:
    """Apply the named patches (``all`` for every one)."""
    for name in PATCHES if "all" in names else names:
        try:
            PATCHES[name](app)
        except (AttributeError, ImportError, KeyError) as exc:
            log.warning("benchmark patch %s does not apply to this flask-wechat: %s", name, exc)
