"""The server-side calls of one WeChat app on its app access token (no Flask).

:class:`AppAPI` owns the app's :class:`~flask_wechat.apptoken.SharedCredential` and makes
the calls a site needs right after a login: a mini program user's phone number, an
Official Account follower's unionid, the JS-SDK ticket. A call refused for its token
(40001 / 42001 / 40014) discards that token only if it is still the stored one,
refreshes once and is sent once more; every other error is raised as WeChat gave it.
Tokens travel only in query strings sent to WeChat, never into a log line or an error.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import requests

from . import protocol, serverapi
from .apptoken import SharedCredential
from .crypto import TokenCipher
from .errors import (
    AccessTokenError,
    InvalidAccessTokenError,
    InvalidAppSecretError,
    SystemBusyError,
    WeChatTransportError,
)
from .store import SharedStore

__all__ = ["AppAPI", "TokenAPI", "http_session"]

log = logging.getLogger(__name__)

#: ``WECHAT_APP_TOKEN_ENDPOINT`` by default: the same token for every caller, no invalidation storms.
DEFAULT_TOKEN_ENDPOINT: Final = "stable_token"


def http_session(options: Mapping[str, Any]) -> requests.Session:
    """A plain requests session over the extension's shared pool (and any mounted stand-in)."""
    session = requests.Session()
    session.trust_env = bool(options.get("trust_env", False))
    adapter = options.get("adapter")
    if adapter is not None:
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    for prefix, mounted in (options.get("mounts") or {}).items():
        session.mount(prefix, mounted)
    session.proxies.update(options.get("proxies") or {})
    session.verify = options.get("verify", True)
    return session


class TokenAPI:
    """Server calls on an access token that one worker refreshes for all: WeChat's app token, WeCom's corp token.

    Subclasses say how the token is fetched (:meth:`_fetch_token`); :meth:`call` sends a
    request with it and replaces a refused token once.
    """

    #: What the token is called in the store (its key) and in logs.
    token_kind = "app_token"

    def __init__(
        self,
        key: str,
        api_base_url: str,
        store: SharedStore,
        *,
        session_options: Mapping[str, Any] | None = None,
        lock_timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        cipher: TokenCipher | None = None,
    ) -> None:
        self.api_base_url = api_base_url
        self._options = dict(session_options or {})
        self._timeout = self._options.get("default_timeout")
        self._clock = clock
        self._credential_options: dict[str, Any] = {"lock_timeout": lock_timeout, "clock": clock, "cipher": cipher}
        self._store = store
        self.tokens = self._shared(self.token_kind, key, self._fetch_token)

    def _shared(self, kind: str, key: str, fetch: Callable[[bool], tuple[str, int]]) -> SharedCredential:
        return SharedCredential(kind, key, fetch, self._store, **self._credential_options)

    def _fetch_token(self, force: bool) -> tuple[str, int]:
        raise NotImplementedError

    def _send(
        self, method: str, path: str, params: Mapping[str, str], body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One request; the decoded body, or the errcode's exception. Transport errors name their type only."""
        with http_session(self._options) as session:
            try:
                response = session.request(
                    method, self.api_base_url + path, params=params, json=body, timeout=self._timeout
                )
            except requests.RequestException as exc:
                # requests quotes the URL (token or secret included) in its messages.
                raise WeChatTransportError(f"could not reach {path}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise WeChatTransportError(f"{path} answered HTTP {response.status_code}")
        return protocol.decode_body(response.content, path)

    def call(
        self, method: str, path: str, params: Mapping[str, str] | None = None, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call ``path`` with the token; a refused token is replaced once and the call sent once more."""
        token = self.tokens.get()
        try:
            return self._send(method, path, {**(params or {}), "access_token": token}, body)
        except AccessTokenError as exc:
            log.warning("%s refused the %s (errcode %s); refreshing it once", path, self.token_kind, exc.errcode)
            self.tokens.invalidate(token)
        return self._send(method, path, {**(params or {}), "access_token": self.tokens.get()}, body)

    def access_token(self, *, force_refresh: bool = False) -> str:
        """The access token, for calls of your own to other APIs of the platform."""
        return self.tokens.get(force_refresh=force_refresh)


class AppAPI(TokenAPI):
    """One WeChat app (an Official Account or a mini program) calling WeChat with its app token."""

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base_url: str,
        store: SharedStore,
        *,
        token_endpoint: str = DEFAULT_TOKEN_ENDPOINT,
        **options: Any,
    ) -> None:
        if token_endpoint not in serverapi.APP_TOKEN_ENDPOINTS:
            raise ValueError(f"token_endpoint must be one of {sorted(serverapi.APP_TOKEN_ENDPOINTS)}")
        self.appid = appid
        self._secret = secret
        self.token_endpoint = token_endpoint
        super().__init__(appid, api_base_url, store, **options)
        self.tickets = self._shared("jsapi_ticket", appid, self._fetch_ticket)

    def __repr__(self) -> str:
        return f"<AppAPI appid={self.appid} token={self.token_endpoint}>"

    def _fetch_token(self, force: bool) -> tuple[str, int]:
        """Ask WeChat for the app token; a wrong secret (40001 here, or 40125) is raised at once."""
        path = serverapi.APP_TOKEN_ENDPOINTS[self.token_endpoint]
        if self.token_endpoint == "stable_token":
            method, query, body = "POST", {}, serverapi.stable_token_body(self.appid, self._secret, force_refresh=force)
        else:
            method, query, body = "GET", serverapi.app_token_query(self.appid, self._secret), None
        try:
            try:
                data = self._send(method, path, query, body)
            except SystemBusyError:
                log.warning("WeChat %s answered errcode -1; asking once more", path)
                data = self._send(method, path, query, body)
        except InvalidAccessTokenError as exc:
            # At token time 40001 means the AppSecret is wrong: a configuration error, not a stale token.
            raise InvalidAppSecretError(exc.errcode, exc.errmsg, path) from None
        token = serverapi.AppToken.from_response(data, path)
        return token.value, token.expires_in

    def _fetch_ticket(self, force: bool) -> tuple[str, int]:
        data = self.call("GET", serverapi.JSAPI_TICKET_PATH, {"type": "jsapi"})
        ticket = serverapi.JsapiTicket.from_response(data, serverapi.JSAPI_TICKET_PATH)
        return ticket.value, ticket.expires_in

    # -- what a site calls after a login ------------------------------------------------------

    def phone_number(self, code: str) -> serverapi.PhoneNumber:
        """The phone number behind a ``getPhoneNumber`` code (single use: never retried but for its token)."""
        data = self.call("POST", serverapi.PHONE_NUMBER_PATH, body={"code": code})
        return serverapi.PhoneNumber.from_response(data)

    def follower(self, openid: str, lang: str = "zh_CN") -> serverapi.Follower:
        """What ``/cgi-bin/user/info`` knows of an Official Account's openid: following, and the unionid."""
        data = self.call("GET", serverapi.USER_INFO_PATH, {"openid": openid, "lang": lang})
        data.setdefault("openid", openid)
        return serverapi.Follower.from_response(data)

    def jsapi_ticket(self) -> str:
        """The JS-SDK ticket (shared and refreshed like the token); it signs ``wx.config`` and stays here."""
        return self.tickets.get()

    def jssdk_config(self, url: str) -> dict[str, Any]:
        """``wx.config``'s ``appId``, ``timestamp``, ``nonceStr`` and ``signature`` for the page at ``url``.

        ``url`` is the page's address without the fragment, exactly as the browser has it.
        With a warm ticket this makes no WeChat call and reads nothing from the store.
        """
        ticket = self.jsapi_ticket()
        timestamp = int(self._clock())
        nonce = secrets.token_hex(8)
        return {
            "appId": self.appid,
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": serverapi.jssdk_signature(ticket, nonce, timestamp, url),
        }
