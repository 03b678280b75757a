"""What the fake's page and control modules need from the fake, as structural types.

:mod:`.authorize`, :mod:`.qrconnect`, :mod:`.control`, :mod:`.simulator` and
:mod:`.serverapis` answer requests for a :class:`~flask_wechat.testing.FakeWeChat`,
which passes itself in. They name the few
members they use through these Protocols and never import :mod:`.fake`, so the
dependency runs one way: the fake imports its pages, not the reverse. Any object with
these members will do (a page over a trimmed user list, say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from .accounts import FakeApp, FakeUser
from .wecom import FakeCorp

__all__ = ["ConsentBackend", "ControlTarget", "DenyMode", "Directory", "RequestRecord", "TokenFamily"]

#: An app token family: ``"token"`` (``/cgi-bin/token``) or ``"stable"`` (``/cgi-bin/stable_token``).
TokenFamily = Literal["token", "stable"]

#: How a refused consent answers: "no_redirect" shows a page (observed); "redirect" goes to
#: redirect_uri?state=STATE (legacy doc).
DenyMode = Literal["no_redirect", "redirect"]


class ConsentBackend(Protocol):
    """What the consent pages (OA authorize, website QR scan) read and do."""

    @property
    def apps(self) -> Mapping[str, FakeApp]: ...

    @property
    def users(self) -> Mapping[str, FakeUser]: ...

    @property
    def deny_mode(self) -> DenyMode: ...

    def issue_code(self, appid: str, user_key: str, scope: str | None = None) -> str: ...


class Directory(Protocol):
    """Who the fake knows, as the server APIs (``/cgi-bin/*``, ``/wxa/*``) read it."""

    @property
    def apps(self) -> Mapping[str, FakeApp]: ...

    @property
    def users(self) -> Mapping[str, FakeUser]: ...

    def openid_for(self, appid: str, user_key: str, *, snapshot: bool = False) -> str: ...

    def unionid_for(self, appid: str, user_key: str, *, snapshot: bool = False) -> str | None: ...


class RequestRecord(Protocol):
    """One recorded API request, as ``/_fake/requests`` shows it."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def endpoint(self) -> str | None: ...

    @property
    def query(self) -> Sequence[tuple[str, str]]: ...

    @property
    def body(self) -> str: ...


class ControlTarget(Protocol):
    """What the ``/_fake/*`` endpoints drive and report: one member per endpoint, as on the fake."""

    @property
    def apps(self) -> Mapping[str, FakeApp]: ...

    @property
    def users(self) -> Mapping[str, FakeUser]: ...

    @property
    def requests(self) -> Sequence[RequestRecord]: ...

    @property
    def corps(self) -> Mapping[str, FakeCorp]: ...

    def openid_for(self, appid: str, user_key: str) -> str: ...

    def issue_code(self, appid: str, user_key: str, scope: str | None = None) -> str: ...

    def issue_js_code(self, appid: str, user_key: str) -> str: ...

    def issue_phone_code(self, appid: str, user_key: str) -> str: ...

    def encrypted_phone(self, appid: str, user_key: str) -> tuple[str, str]: ...

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...

    def refuse_ip(self, ip: str = ..., errcode: int = ...) -> None: ...

    def allow_ip(self) -> None: ...

    def expire_app_tokens(self) -> None: ...

    def revoke_app_tokens(self) -> None: ...

    def app_tokens_issued(self, appid: str, family: TokenFamily | None = None) -> int: ...

    def force_refreshes(self, appid: str) -> int: ...

    def tickets_issued(self, appid: str, ticket_type: str = "jsapi") -> int: ...

    @property
    def stale_token_calls(self) -> int: ...

    def verify_jssdk(self, appid: str, timestamp: int | str, noncestr: str, signature: str, url: str) -> bool: ...

    def snapshot_next(self, times: int = 1) -> None: ...

    def issue_wecom_code(
        self,
        corpid: str,
        agentid: int | None,
        who: str,
        scope: str = ...,
        *,
        web: bool = False,
        redirect_uri: str | None = None,
    ) -> str: ...

    def wecom_tokens_issued(self, corpid: str, agentid: int) -> int: ...

    def expire_wecom_tokens(self) -> None: ...

    def revoke_wecom_tokens(self) -> None: ...

    def refuse_wecom_ip(self, ip: str = ...) -> None: ...

    def allow_wecom_ip(self) -> None: ...

    def fail_next(self, endpoint: str, errcode: int, errmsg: str | None = None, times: int = 1) -> None: ...

    def break_next(self, endpoint: str, body: bytes, status: int = 200, times: int = 1) -> None: ...

    def expire_access_tokens(self) -> None: ...

    def expire_refresh_tokens(self) -> None: ...

    def reset(self) -> None: ...
