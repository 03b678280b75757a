"""The app-token baseline: what a library without a shared lock does, one token per process.

Each process keeps its own app access token (and JS-SDK ticket) in memory, fetches a new one
when it is missing or expires within :data:`MARGIN` seconds (wechatpy's rule), and refetches
when WeChat refuses it with 40001/42001/40014. Threads of one process share the value behind a
lock, so within a process there is one fetch at a time; between processes nothing is shared.
With ``GET /cgi-bin/token`` every process's fetch retires the others' tokens five minutes later.

The wire is the same as :class:`flask_wechat.appapi.AppAPI`'s (a pooled adapter mounted on
per-thread sessions), so the two differ only in how they keep the token.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import requests
from requests.adapters import BaseAdapter

from flask_wechat.serverapi import jssdk_signature

__all__ = ["MARGIN", "PerProcessAPI", "PerProcessCredential", "TokenRefused", "WeChatCallFailed"]

#: Refetch when this few seconds are left.
MARGIN: Final = 60
#: The errcodes that mean "this token is no good": invalid, expired, not the latest.
TOKEN_ERRCODES: Final = frozenset({40001, 40014, 42001})
PATHS: Final = {"stable_token": "/cgi-bin/stable_token", "token": "/cgi-bin/token"}


class WeChatCallFailed(Exception):
    """WeChat answered an errcode (or not 200)."""

    def __init__(self, path: str, errcode: int) -> None:
        super().__init__(f"WeChat {path} answered errcode {errcode}")
        self.errcode = errcode


class TokenRefused(WeChatCallFailed):
    """WeChat refused the token the call carried."""


class PerProcessCredential:
    """One value (token or ticket) kept in this process's memory."""

    def __init__(self, fetch: Callable[[], tuple[str, int]], clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires_at = 0.0
        #: Values this process fetched.
        self.fetches = 0

    def get(self) -> str:
        """The value in memory, fetched first when missing or about to expire."""
        with self._lock:
            if self._value is None or self._clock() >= self._expires_at - MARGIN:
                started = self._clock()
                self._value, expires_in = self._fetch()
                self._expires_at = started + expires_in
                self.fetches += 1
            return self._value

    def invalidate(self, failed: str) -> None:
        """WeChat refused ``failed``: forget it unless another thread already replaced it."""
        with self._lock:
            if self._value == failed:
                self._value = None


class PerProcessAPI:
    """``follower`` and ``jssdk_config`` on a per-process token, like :class:`flask_wechat.appapi.AppAPI`'s."""

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base_url: str,
        *,
        token_endpoint: str,
        adapter: BaseAdapter,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self.appid = appid
        self._secret = secret
        self.api_base_url = api_base_url
        self.token_endpoint = token_endpoint
        self._adapter = adapter
        self._clock = clock
        self._timeout = timeout
        self._sessions = threading.local()
        self.tokens = PerProcessCredential(self._fetch_token, clock)
        self.tickets = PerProcessCredential(self._fetch_ticket, clock)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._sessions, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
            self._sessions.session = session
        return session

    def _send(
        self, method: str, path: str, params: Mapping[str, str], body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self._session().request(
            method, self.api_base_url + path, params=params, json=body, timeout=self._timeout
        )
        if response.status_code != 200:
            raise WeChatCallFailed(path, -response.status_code)
        data: dict[str, Any] = json.loads(response.content.decode("utf-8"), strict=False)
        errcode = data.get("errcode") or 0
        if errcode in TOKEN_ERRCODES:
            raise TokenRefused(path, errcode)
        if errcode:
            raise WeChatCallFailed(path, errcode)
        return data

    def _fetch_token(self) -> tuple[str, int]:
        credentials = {"grant_type": "client_credential", "appid": self.appid, "secret": self._secret}
        if self.token_endpoint == "stable_token":
            data = self._send("POST", PATHS["stable_token"], {}, {**credentials, "force_refresh": False})
        else:
            data = self._send("GET", PATHS["token"], credentials)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    def _fetch_ticket(self) -> tuple[str, int]:
        data = self.call("GET", "/cgi-bin/ticket/getticket", {"type": "jsapi"})
        return str(data["ticket"]), int(data.get("expires_in", 7200))

    def call(self, method: str, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Call with this process's token; a refused token is refetched once and the call sent once more."""
        token = self.tokens.get()
        try:
            return self._send(method, path, {**params, "access_token": token})
        except TokenRefused:
            self.tokens.invalidate(token)
        return self._send(method, path, {**params, "access_token": self.tokens.get()})

    def follower(self, openid: str) -> dict[str, Any]:
        """``/cgi-bin/user/info`` for one openid."""
        return self.call("GET", "/cgi-bin/user/info", {"openid": openid, "lang": "zh_CN"})

    def jssdk_config(self, url: str) -> dict[str, Any]:
        """``wx.config``'s signed fields for ``url``; a refused ticket would only show in the browser."""
        ticket = self.tickets.get()
        timestamp, nonce = int(self._clock()), secrets.token_hex(8)
        return {
            "appId": self.appid,
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": jssdk_signature(ticket, nonce, timestamp, url),
        }
