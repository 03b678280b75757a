"""The simulated WeChat network: two loopback hosts sharing one :class:`FakeWeChat`.

:class:`RemoteWeChat` runs them in a process of their own, so the browsers' threads and the fake
never compete for one GIL.

* The **API host** (api.weixin.qq.com) answers ``/sns/*`` (and the app-token APIs, ``/cgi-bin/*``). It
  sleeps one RTT per ``/sns/*`` request and two more per new TCP connection (a TCP + TLS handshake).
  Its accepted connections and recorded requests are the "WeChat connections" and "WeChat calls" the
  benchmark reports.
* The **open host** (open.weixin.qq.com) serves the browser's consent page and form, without added
  latency: those hops cost every contender the same. Its connections are the browser's and are
  counted apart, so they never inflate the API figures.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import multiprocessing
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, cast

from werkzeug.wrappers import Request

from flask_wechat import protocol
from flask_wechat.testing import (
    DEFAULT_USERS,
    DEMO_APPID,
    DEMO_SECRET,
    FakeUser,
    FakeWeChat,
    FakeWeChatServer,
    authorize,
)
from flask_wechat.testing.accounts import stable_id
from flask_wechat.testing.interfaces import ConsentBackend

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "DEMO_APPID",
    "DEMO_SECRET",
    "Mark",
    "RemoteWeChat",
    "SimulatedWeChat",
    "Traffic",
    "openid_for",
]


class _OpenHost:
    """The browser-facing host: WeChat's consent page, in front of the shared fake.

    The fake's own page lists every registered user; with thousands of benchmark users that
    page would weigh megabytes, while WeChat's real one shows only the viewer. Here it lists
    the few default users; the browser posts the key of the user it plays, as a test would.
    """

    def __init__(self, fake: FakeWeChat) -> None:
        self.fake = fake
        self.connections = 0
        self._lock = threading.Lock()
        self._page_view = SimpleNamespace(apps=fake.apps, users={user.key: user for user in DEFAULT_USERS})

    def note_connection(self) -> None:
        """Count a browser connection (called by the loopback server)."""
        with self._lock:
            self.connections += 1

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == protocol.OA_AUTHORIZE_PATH:
            page = authorize.show(cast(ConsentBackend, self._page_view), request)
            return page(environ, start_response)
        return self.fake(environ, start_response)


@dataclass(frozen=True)
class Mark:
    """A point in the API host's history: requests recorded and connections accepted so far."""

    requests: int
    connections: int


@dataclass(frozen=True)
class Traffic:
    """API traffic between two marks."""

    calls: Counter[str]
    connections: int

    @property
    def total_calls(self) -> int:
        """Every ``/sns/*`` request, whatever the endpoint."""
        return sum(self.calls.values())


def openid_for(user_key: str) -> str:
    """The user's openid under the demo AppID (what the fake derives, computed without asking it)."""
    return stable_id("openid", DEMO_APPID, user_key)


def _avatar(key: str) -> str:
    token = base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest() * 2).decode().rstrip("=")
    return f"https://thirdwx.qlogo.cn/mmopen/vi_32/{token[:86]}/132"


class SimulatedWeChat:
    """Both fake WeChat hosts on loopback ports, with a settable RTT; a context manager."""

    def __init__(self, rtt_ms: float = 30.0) -> None:
        self.fake = FakeWeChat()
        self._open_host = _OpenHost(self.fake)
        self.api = FakeWeChatServer(self.fake)
        self.open = FakeWeChatServer(cast(FakeWeChat, self._open_host))
        self.set_rtt(rtt_ms)

    def set_rtt(self, rtt_ms: float) -> None:
        """One RTT per API request, two more per new API connection."""
        self.rtt_ms = rtt_ms
        self.api.request_latency = rtt_ms / 1000
        self.api.connect_latency = 2 * rtt_ms / 1000

    def __enter__(self) -> SimulatedWeChat:
        self.api.start()
        self.open.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.open.stop()
        self.api.stop()

    @property
    def api_url(self) -> str:
        """Base URL of the API host (``WECHAT_API_BASE_URL``)."""
        return self.api.url

    @property
    def open_url(self) -> str:
        """Base URL of the browser-facing host (``WECHAT_OPEN_BASE_URL``)."""
        return self.open.url

    def users(self, prefix: str, count: int) -> list[str]:
        """Keys of ``count`` test users named ``prefix0``, ``prefix1``...; created on first use."""
        keys = [f"{prefix}{index}" for index in range(count)]
        for index, key in enumerate(keys):
            if key not in self.fake.users:
                nickname = f"测试用户{index} 🐼"
                self.fake.add_user(FakeUser(key, nickname, stable_id("unionid", key), _avatar(key)))
        return keys

    def openid(self, user_key: str) -> str:
        """The openid the demo app sees for this user."""
        return openid_for(user_key)

    def mark(self) -> Mark:
        """The API host's counters now."""
        return Mark(len(self.fake.requests), self.fake.connections)

    def since(self, mark: Mark) -> Traffic:
        """API calls (by endpoint name) and new API connections since ``mark``."""
        recorded = self.fake.requests[mark.requests :]
        calls = Counter(request.endpoint or request.path for request in recorded)
        return Traffic(calls, self.fake.connections - mark.connections)

    def app_counters(self, appid: str) -> dict[str, int]:
        """App tokens and JS-SDK tickets issued to ``appid`` so far, and calls refused for a stale token."""
        return {
            "tokens_issued": self.fake.app_tokens_issued(appid),
            "tickets_issued": self.fake.tickets_issued(appid),
            "stale_token_calls": self.fake.stale_token_calls,
        }

    def verify_jssdk(self, appid: str, timestamp: int, noncestr: str, signature: str, url: str) -> bool:
        """Whether WeChat would accept this ``wx.config`` on the page at ``url``."""
        return self.fake.verify_jssdk(appid, timestamp, noncestr, signature, url)


def _serve(conn: Connection, rtt_ms: float) -> None:
    """The fake WeChat's own process: serve both hosts, answer the parent's calls over ``conn``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with SimulatedWeChat(rtt_ms) as net:
        conn.send((net.api_url, net.open_url))
        while True:
            method, args = conn.recv()
            if method == "stop":
                return
            conn.send(getattr(net, method)(*args))


class RemoteWeChat:
    """:class:`SimulatedWeChat` in a process of its own, so the browsers' threads never hold its GIL.

    Same interface; a context manager. ``openid`` is computed here, without a round trip.
    """

    def __init__(self, rtt_ms: float = 30.0) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, rtt_ms), daemon=True)
        self._lock = threading.Lock()
        self.rtt_ms = rtt_ms
        self.api_url = self.open_url = ""

    def __enter__(self) -> RemoteWeChat:
        self._process.start()
        self.api_url, self.open_url = self._conn.recv()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            self._conn.send(("stop", ()))
        self._process.join(timeout=10)

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((method, args))
            return self._conn.recv()

    def set_rtt(self, rtt_ms: float) -> None:
        """One RTT per API request, two more per new API connection."""
        self.rtt_ms = rtt_ms
        self._call("set_rtt", rtt_ms)

    def users(self, prefix: str, count: int) -> list[str]:
        """Keys of ``count`` test users named ``prefix0``...; created on first use."""
        keys: list[str] = self._call("users", prefix, count)
        return keys

    def openid(self, user_key: str) -> str:
        """The openid the demo app sees for this user."""
        return openid_for(user_key)

    def mark(self) -> Mark:
        """The API host's counters now."""
        mark: Mark = self._call("mark")
        return mark

    def since(self, mark: Mark) -> Traffic:
        """API calls and new API connections since ``mark``."""
        traffic: Traffic = self._call("since", mark)
        return traffic

    def app_counters(self, appid: str) -> dict[str, int]:
        """App tokens and JS-SDK tickets issued to ``appid`` so far, and calls refused for a stale token."""
        counters: dict[str, int] = self._call("app_counters", appid)
        return counters

    def verify_jssdk(self, appid: str, timestamp: int, noncestr: str, signature: str, url: str) -> bool:
        """Whether WeChat would accept this ``wx.config`` on the page at ``url``."""
        valid: bool = self._call("verify_jssdk", appid, timestamp, noncestr, signature, url)
        return valid
