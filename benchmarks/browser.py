"""One complete login, as a fresh browser session would make it over real HTTP.

GET /profile -> (redirects) -> WeChat's consent page -> POST 允许 -> callback -> /profile (200).
Redirects are followed by hand so the consent form can be submitted like a person would, and so
the benchmark sees every response the app sends (its ``X-Bench-*`` counters, its cookies).
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

__all__ = ["LoginResult", "login"]

_FORM = re.compile(r'<form method="post" action="([^"]+)" id="consent">')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_STEPS = 12


@dataclass(frozen=True)
class LoginResult:
    """What one login cost, as the browser saw it."""

    ok: bool
    seconds: float
    #: Bytes of the Cookie header on the final, logged-in page.
    cookie_bytes: int
    #: The largest Cookie header sent to the app during the login.
    max_cookie_bytes: int
    #: SQL statements and commits the app reported for the login's requests.
    sql: int
    commits: int
    error: str = ""


def _consent_form(page: str) -> tuple[str, dict[str, str]] | None:
    form = _FORM.search(page)
    if form is None:
        return None
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}
    return html.unescape(form.group(1)), fields


def login(app_url: str, user_key: str, openid: str, timeout: float = 30.0) -> LoginResult:
    """Log ``user_key`` in from a fresh session; ``openid`` must appear on the final page."""
    app_netloc = urlsplit(app_url).netloc
    sql = commits = max_cookie = 0
    started = time.perf_counter()
    with requests.Session() as browser:
        try:
            response = browser.get(app_url + "/profile", allow_redirects=False, timeout=timeout)
            for _ in range(_MAX_STEPS):
                if urlsplit(response.url).netloc == app_netloc:
                    sql += int(response.headers.get("X-Bench-SQL", 0))
                    commits += int(response.headers.get("X-Bench-Commits", 0))
                    max_cookie = max(max_cookie, len(response.request.headers.get("Cookie", "")))
                if response.status_code in _REDIRECTS:
                    target = urljoin(response.url, response.headers["Location"])
                    response = browser.get(target, allow_redirects=False, timeout=timeout)
                    continue
                form = _consent_form(response.text) if response.status_code == 200 else None
                if form is None:
                    break
                action, fields = form
                fields.update(user=user_key, action="allow")
                response = browser.post(
                    urljoin(response.url, action), data=fields, allow_redirects=False, timeout=timeout
                )
        except requests.RequestException as exc:
            return LoginResult(False, time.perf_counter() - started, 0, max_cookie, sql, commits, type(exc).__name__)
        seconds = time.perf_counter() - started
    cookie = len(response.request.headers.get("Cookie", ""))
    landed = urlsplit(response.url).path == "/profile" and response.status_code == 200
    if not landed or openid not in response.text:
        error = f"ended at {urlsplit(response.url).path} with HTTP {response.status_code}"
        return LoginResult(False, seconds, cookie, max_cookie, sql, commits, error)
    return LoginResult(True, seconds, cookie, max_cookie, sql, commits)
