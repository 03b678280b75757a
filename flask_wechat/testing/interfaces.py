"""What the fake's page and control modules need from the fake, as structural types.

:mod:`.authorize`, :mod:`.qrconnect` and :mod:`.control` answer requests for a
:class:`~flask_wechat.testing.FakeWeChat`, which passes itself in. They name the few
members they use through these Protocols and never import :mod:`.fake`, so the
dependency runs one way: the fake imports its pages, not the reverse. Any object with
these members will do (a page over a trimmed user list, say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from .accounts import FakeApp, FakeUser

__all__ = ["ConsentBackend", "ControlTarget", "DenyMode", "RequestRecord"]

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


class RequestRecord(Protocol):
    """One recorded ``/sns/*`` request, as ``/_fake/requests`` shows it."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def endpoint(self) -> str | None: ...

    @property
    def query(self) -> Sequence[tuple[str, str]]: ...


class ControlTarget(Protocol):
    """What the ``/_fake/*`` endpoints drive and report: one member per endpoint, as on the fake."""

    @property
    def apps(self) -> Mapping[str, FakeApp]: ...

    @property
    def users(self) -> Mapping[str, FakeUser]: ...

    @property
    def requests(self) -> Sequence[RequestRecord]: ...

    def openid_for(self, appid: str, user_key: str) -> str: ...

    def issue_code(self, appid: str, user_key: str, scope: str | None = None) -> str: ...

    def issue_js_code(self, appid: str, user_key: str) -> str: ...

    def snapshot_next(self, times: int = 1) -> None: ...

    def fail_next(self, endpoint: str, errcode: int, errmsg: str | None = None, times: int = 1) -> None: ...

    def break_next(self, endpoint: str, body: bytes, status: int = 200, times: int = 1) -> None: ...

    def expire_access_tokens(self) -> None: ...

    def expire_refresh_tokens(self) -> None: ...

    def reset(self) -> None: ...
