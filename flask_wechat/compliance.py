"""Authlib's requests-based OAuth2Session, taught WeChat's dialect.

Stock Authlib names the client ``client_id``, orders the authorize query freely,
POSTs token and refresh requests, sends the secret on refresh, trusts the
Content-Type, accepts ``errcode`` bodies as tokens and opens a new connection per
call. :class:`WeChatOAuth2Session` fixes each of these through Authlib's seams
(method overrides and the ``protected_request`` compliance hook); this module
knows nothing of Flask.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749 import OAuth2Token
from requests.adapters import BaseAdapter, HTTPAdapter

from . import protocol
from .errors import (
    AccessTokenError,
    AuthorizationDenied,
    InvalidOpenIdError,
    SystemBusyError,
    WeChatAPIError,
    WeChatError,
    WeChatTransportError,
)

__all__ = [
    "KeepAliveAdapter",
    "RetryPolicy",
    "WeChatAPI",
    "WeChatOAuth2Session",
    "as_authlib_token",
    "redact_transport_logs",
    "token_from_authlib",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Authlib's default state has 48 characters; WeChat wants [A-Za-z0-9]{1,128}.
STATE_LENGTH = 32
#: Authorize-link parameters WeChat knows beyond the five fixed ones, in the order they follow ``state``.
AUTHORIZE_EXTRAS = ("connect_redirect", "forcePopup")


# WeChat (and WeCom) put the secret, codes and tokens in query strings; urllib3 logs request lines.
_SECRET_QUERY_VALUE = re.compile(
    r"([?&](?:secret|corpsecret|code|js_code|access_token|refresh_token|session_key)=)[^&\s\"]+"
)


class _RedactQuerySecrets(logging.Filter):
    """Blank secret query values in log records of the HTTP stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_QUERY_VALUE.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_transport_logs() -> None:
    """Make urllib3's debug request lines safe to log (idempotent)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(existing, _RedactQuerySecrets) for existing in logger.filters):
        logger.addFilter(_RedactQuerySecrets())


class KeepAliveAdapter(HTTPAdapter):
    """A connection pool that outlives the per-call sessions Authlib creates.

    Authlib builds (and closes) a new ``requests.Session`` for every operation; a
    session mounting this adapter reuses the pool's keep-alive connections instead
    of paying a TCP and TLS handshake per WeChat call.
    """

    def close(self) -> None:
        """Keep the pool open when a per-call session closes; see :meth:`shutdown`."""

    def shutdown(self) -> None:
        """Really close every pooled connection."""
        super().close()


class RetryPolicy:
    """Bounded retries with exponential backoff and jitter, for idempotent calls only."""

    def __init__(self, retries: int = 2, backoff: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> None:
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep

    def run(self, call: Callable[[], T], endpoint: str) -> T:
        """Run ``call``, retrying errors WeChat calls transient (-1, transport faults)."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except (WeChatAPIError, WeChatTransportError) as exc:
                if not exc.retryable or attempt == self.retries:
                    raise
                delay = self.backoff * (2**attempt) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
                log.warning("WeChat %s failed (%s), retry %d in %.2fs", endpoint, _describe(exc), attempt + 1, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: WeChatError) -> str:
    if isinstance(exc, WeChatAPIError):
        return f"errcode {exc.errcode}"
    return type(exc).__name__


def as_authlib_token(token: protocol.Token) -> OAuth2Token:
    """Authlib's token dict for a WeChat token (``token_type`` set: Authlib crashes on ``None``)."""
    data: dict[str, Any] = {
        "access_token": token.access_token,
        "token_type": "bearer",
        "refresh_token": token.refresh_token,
        "expires_at": token.expires_at,
        "openid": token.openid,
        "scope": token.scope,
    }
    if token.unionid:
        data["unionid"] = token.unionid
    if token.is_snapshot_user:
        data["is_snapshotuser"] = 1
    return OAuth2Token(data)


def token_from_authlib(token: Mapping[str, Any]) -> protocol.Token:
    """The typed token back from Authlib's dict."""
    return protocol.Token(
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token") or "",
        openid=token["openid"],
        scope=token.get("scope") or "",
        expires_at=int(token.get("expires_at") or 0),
        unionid=token.get("unionid"),
        is_snapshot_user=token.get("is_snapshotuser") == 1,
    )


class WeChatOAuth2Session(OAuth2Session):  # type: ignore[misc]  # Authlib is untyped
    """An ``OAuth2Session`` that speaks WeChat.

    Extra keyword arguments (all optional): ``adapter`` (a shared
    :class:`KeepAliveAdapter`), ``mounts`` (``{url prefix: adapter}``, e.g. an
    in-process fake), ``retry`` (a :class:`RetryPolicy`), and the server metadata
    ``refresh_token_url`` that Authlib itself never uses.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        adapter: BaseAdapter | None = None,
        mounts: Mapping[str, BaseAdapter] | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("token_placement", "uri")
        super().__init__(client_id, client_secret, **kwargs)
        if adapter is not None:
            self.mount("https://", adapter)
            self.mount("http://", adapter)
        for prefix, mounted in (mounts or {}).items():
            self.mount(prefix, mounted)
        self.retry = retry or RetryPolicy()
        self.register_compliance_hook("protected_request", self._add_openid)

    def _add_openid(self, uri: str, headers: Any, body: Any) -> tuple[str, Any, Any]:
        # Every protected sns call names the user twice: by token and by openid.
        openid = self.token.get("openid") if self.token else None
        if openid and "openid=" not in uri:
            uri = add_params_to_uri(uri, [("openid", openid)])
        return uri, headers, body

    def create_authorization_url(
        self, url: str, state: str | None = None, code_verifier: str | None = None, **kwargs: Any
    ) -> tuple[str, str]:
        """Build WeChat's strictly ordered authorize link (``url`` is the full endpoint)."""
        state = state or generate_token(STATE_LENGTH)
        scope = kwargs.get("scope") or self.scope or protocol.SCOPE_USERINFO
        extra = tuple((key, str(kwargs[key])) for key in AUTHORIZE_EXTRAS if key in kwargs)
        link = protocol.build_authorize_url(url, self.client_id, self.redirect_uri, scope, state, path="", extra=extra)
        return link, state

    def get_json(
        self, url: str, params: Mapping[str, str], *, endpoint: str, withhold_token: bool = False
    ) -> dict[str, Any]:
        """GET a WeChat endpoint and return its decoded body; errcodes raise, nothing else is tried."""
        try:
            response = self.request("GET", url, params=params, withhold_token=withhold_token)
        except requests.RequestException as exc:
            # requests puts the full URL (secret included) in its messages: name the type only.
            raise WeChatTransportError(f"could not reach WeChat {endpoint}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise WeChatTransportError(f"WeChat {endpoint} answered HTTP {response.status_code}")
        return protocol.decode_body(response.content, endpoint)

    def fetch_token(self, url: str | None = None, **kwargs: Any) -> OAuth2Token:
        """Exchange the callback's ``code``: one GET with appid and secret in the query.

        Never retried: WeChat may have consumed the code even when the answer was lost.
        """
        code = kwargs.get("code")
        if not code:
            raise AuthorizationDenied()
        endpoint = url or self.metadata["token_endpoint"]
        data = self.get_json(
            endpoint,
            protocol.token_query(self.client_id, self.client_secret, code),
            endpoint=protocol.TOKEN_PATH,
            withhold_token=True,
        )
        self.token = as_authlib_token(protocol.Token.from_response(data))
        return self.token

    def refresh_token(self, url: str | None = None, refresh_token: str | None = None, **kwargs: Any) -> OAuth2Token:
        """Refresh WeChat's way: GET the refresh endpoint without the secret.

        Authlib calls this with its token URL when a token expires; WeChat refreshes at
        its own path, so ``url`` is ignored in favour of the ``refresh_token_url`` metadata.
        """
        old = self.token or {}
        refresh_token = refresh_token or old.get("refresh_token")
        if not refresh_token:
            raise WeChatError("the stored token has no refresh_token")
        refresh_url = self.metadata["refresh_token_url"]
        data = self.retry.run(
            lambda: self.get_json(
                refresh_url,
                protocol.refresh_query(self.client_id, refresh_token),
                endpoint=protocol.REFRESH_PATH,
                withhold_token=True,
            ),
            protocol.REFRESH_PATH,
        )
        fresh = protocol.Token.from_response(data, endpoint=protocol.REFRESH_PATH)
        token = as_authlib_token(fresh)
        # WeChat does not promise to echo these on refresh; never lose them.
        token.setdefault("refresh_token", refresh_token)
        if not token["refresh_token"]:
            token["refresh_token"] = refresh_token
        for key in ("unionid", "is_snapshotuser"):
            if key in old and key not in token:
                token[key] = old[key]
        self.token = token
        if self.update_token:
            self.update_token(token, refresh_token=refresh_token)
        return token


class WeChatAPI:
    """The server-side calls of one WeChat app: code exchange, refresh, userinfo, token check, jscode2session.

    Each call runs on a short-lived :class:`WeChatOAuth2Session` over the shared keep-alive
    pool, so nothing here holds state between requests and nothing needs Flask.
    ``update_token(token, refresh_token=...)`` is told of every refreshed token.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base_url: str,
        *,
        lang: str = "zh_CN",
        session_options: Mapping[str, Any] | None = None,
        update_token: Callable[..., None] | None = None,
    ) -> None:
        self.appid = appid
        self._secret = secret
        self.api_base_url = api_base_url
        self.lang = lang
        self._options = dict(session_options or {})
        self._update_token = update_token

    def __repr__(self) -> str:
        return f"<WeChatAPI appid={self.appid} api={self.api_base_url}>"

    def session(self, token: Mapping[str, Any] | None = None) -> WeChatOAuth2Session:
        """A session for one call (close it; the pool stays open)."""
        return WeChatOAuth2Session(
            self.appid,
            self._secret,
            token=dict(token) if token is not None else None,
            update_token=self._update_token,
            token_endpoint=self.api_base_url + protocol.TOKEN_PATH,
            refresh_token_url=self.api_base_url + protocol.REFRESH_PATH,
            **self._options,
        )

    def exchange_code(self, code: str) -> protocol.Token:
        """Exchange a callback's code for the user's token.

        Codes are single-use, so only errcode -1 (WeChat says it did not process the
        request) is tried again, once; a lost answer is never retried.
        """
        with self.session() as session:
            try:
                return token_from_authlib(session.fetch_token(code=code))
            except SystemBusyError:
                log.warning("WeChat %s answered errcode -1; trying the code once more", protocol.TOKEN_PATH)
                return token_from_authlib(session.fetch_token(code=code))

    def fetch_userinfo(
        self, token: Mapping[str, Any], lang: str | None = None
    ) -> tuple[protocol.UserInfo, OAuth2Token]:
        """The user's profile and the token used (refreshed once if WeChat rejected it)."""

        def userinfo(session: WeChatOAuth2Session) -> protocol.UserInfo:
            session.ensure_active_token(session.token)
            query = protocol.userinfo_query(session.token["access_token"], session.token["openid"], lang or self.lang)
            data = session.retry.run(
                lambda: session.get_json(
                    self.api_base_url + protocol.USERINFO_PATH,
                    query,
                    endpoint=protocol.USERINFO_PATH,
                    withhold_token=True,
                ),
                protocol.USERINFO_PATH,
            )
            # The profile is the token's user; tolerate a stand-in that leaves openid out.
            data.setdefault("openid", session.token["openid"])
            return protocol.UserInfo.from_response(data)

        with self.session(token) as session:
            try:
                result = userinfo(session)
            except AccessTokenError:
                if not session.token.get("refresh_token"):
                    raise
                session.refresh_token()
                result = userinfo(session)
            return result, session.token

    def validate_token(self, token: Mapping[str, Any]) -> bool:
        """Whether WeChat still accepts the access token (``/sns/auth``); invalid is ``False``."""
        query = protocol.auth_query(token["access_token"], token["openid"])
        with self.session() as session:
            try:
                session.retry.run(
                    lambda: session.get_json(
                        self.api_base_url + protocol.AUTH_PATH, query, endpoint=protocol.AUTH_PATH, withhold_token=True
                    ),
                    protocol.AUTH_PATH,
                )
            except (AccessTokenError, InvalidOpenIdError):
                return False
        return True

    def code_to_session(self, js_code: str) -> protocol.MiniProgramSession:
        """Exchange a mini program's ``wx.login()`` code; like web codes, retried only after errcode -1."""
        query = protocol.jscode2session_query(self.appid, self._secret, js_code)
        url = self.api_base_url + protocol.JSCODE2SESSION_PATH
        with self.session() as session:
            try:
                data = session.get_json(url, query, endpoint=protocol.JSCODE2SESSION_PATH, withhold_token=True)
            except SystemBusyError:
                data = session.get_json(url, query, endpoint=protocol.JSCODE2SESSION_PATH, withhold_token=True)
        return protocol.MiniProgramSession.from_response(data)
