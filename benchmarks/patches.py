"""Proposed flask-wechat changes, tried out as monkeypatches inside a benchmark worker only.

``python -m benchmarks --patch all`` (or ``--patch direct-login``) applies them to a second
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
    "direct-login": _direct_login,
}


def apply(app: Flask, names: list[str]) -> None:
    """Apply the named patches (``all`` for every one)."""
    for name in PATCHES if "all" in names else names:
        try:
            PATCHES[name](app)
        except (AttributeError, ImportError, KeyError) as exc:
            log.warning("benchmark patch %s does not apply to this flask-wechat: %s", name, exc)
