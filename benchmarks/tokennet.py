"""The fake WeChat of the app-token section: its API host on a warped clock, in a process of its own.

:class:`TokenWeChat` serves one :class:`~flask_wechat.testing.FakeWeChat` whose every token and
ticket lifetime runs on a :class:`~benchmarks.simclock.WarpedClock`, so two hours of tokens pass
in half a minute. Each contender of a run gets its own, so the fake's counters (tokens and tickets
issued, calls refused with a stale token) are that contender's alone.

Each request is answered as of the simulated time its sender stamped on it
(:data:`~benchmarks.simclock.SENT_HEADER`; see :mod:`benchmarks.simclock`). The host can also *hold* the
next token request: it then answers only when released (with a 503,
and without minting anything), which is a WeChat that hangs while a worker holds the refresh lock.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Iterable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from flask_wechat.serverapi import APP_TOKEN_ENDPOINTS
from flask_wechat.testing import FakeWeChat, FakeWeChatServer

from .simclock import SENT_HEADER, WarpedClock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["TokenWeChat"]

TOKEN_PATHS = frozenset(APP_TOKEN_ENDPOINTS.values())
_SENT_KEY = "HTTP_" + SENT_HEADER.upper().replace("-", "_")
#: How long a held token request waits for its release at most.
HOLD_LIMIT = 120.0


class _Host:
    """The fake, behind a switch that can hold the next token request."""

    def __init__(self, fake: FakeWeChat, clock: WarpedClock) -> None:
        self.fake = fake
        self.clock = clock
        self._lock = threading.Lock()
        self._hold_next = False
        self._release = threading.Event()
        self.held_at: float | None = None
        #: Real time of every token request, held or not.
        self.token_requests: list[float] = []

    def note_connection(self) -> None:
        self.fake.note_connection()

    def hold_next_token(self) -> None:
        with self._lock:
            self._hold_next, self.held_at = True, None
            self._release.clear()

    def release(self) -> None:
        self._release.set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in TOKEN_PATHS:
            with self._lock:
                self.token_requests.append(time.time())
                hold, self._hold_next = self._hold_next, False
                if hold:
                    self.held_at = time.time()
            if hold:
                self._release.wait(HOLD_LIMIT)
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"held by the benchmark"]
        sent = environ.get(_SENT_KEY)
        if sent is None:
            return self.fake(environ, start_response)
        with self.clock.pinned(float(sent)):
            return self.fake(environ, start_response)


def _counters(fake: FakeWeChat, appid: str) -> dict[str, Any]:
    paths = Counter(request.path for request in list(fake.requests))
    return {
        "tokens_issued": fake.app_tokens_issued(appid),
        "tickets_issued": fake.tickets_issued(appid),
        "stale_token_calls": fake.stale_token_calls,
        "requests_by_path": dict(paths),
        "connections": fake.connections,
    }


def _serve(conn: Connection, t0: float, speed: float) -> None:
    """The fake's process: serve the API host, answer the parent's calls over ``conn``."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    clock = WarpedClock(t0, speed)
    fake = FakeWeChat(clock=clock)
    host = _Host(fake, clock)
    server = FakeWeChatServer(cast(FakeWeChat, host))
    with server:
        conn.send(server.url)
        while True:
            method, args = conn.recv()
            if method == "stop":
                host.release()
                return
            answer: Any = None
            if method == "start_clock":
                clock.start(*args)
            elif method == "counters":
                answer = _counters(fake, *args)
            elif method == "hold_next_token":
                host.hold_next_token()
            elif method == "held_at":
                answer = host.held_at
            elif method == "token_requests":
                answer = list(host.token_requests)
            elif method == "release":
                host.release()
            elif method == "now":
                answer = fake.now()
            conn.send(answer)


class TokenWeChat:
    """A fake WeChat API host on a warped clock in its own process; a context manager.

    The clock stands at ``t0`` until :meth:`start_clock`.
    """

    def __init__(self, t0: float, speed: float = 1.0) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, t0, speed), daemon=True)
        self._lock = threading.Lock()
        self.url = ""

    def __enter__(self) -> TokenWeChat:
        self._process.start()
        self.url = self._conn.recv()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            self._conn.send(("stop", ()))
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((method, args))
            return self._conn.recv()

    def start_clock(self, r0: float) -> None:
        """Let the fake's clock run from real time ``r0``."""
        self._call("start_clock", r0)

    def counters(self, appid: str) -> dict[str, Any]:
        """Tokens and tickets issued to ``appid``, stale-token refusals, requests by path, connections."""
        counters: dict[str, Any] = self._call("counters", appid)
        return counters

    def hold_next_token(self) -> None:
        """Hold the next token request until :meth:`release` (then answer 503, minting nothing)."""
        self._call("hold_next_token")

    def held_at(self) -> float | None:
        """When the held token request arrived (real time), or None while none has."""
        held: float | None = self._call("held_at")
        return held

    def token_requests(self) -> list[float]:
        """The real time of every token request so far."""
        times: list[float] = self._call("token_requests")
        return times

    def release(self) -> None:
        """Let a held token request answer."""
        self._call("release")
