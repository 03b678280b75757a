"""A worker process of the app-token section: threads calling WeChat APIs that need the app token.

``python -m benchmarks.tokenworker`` reads JSON lines on stdin and answers JSON lines on stdout:

* ``{"cmd": "setup", ...}`` builds the client (a :class:`~flask_wechat.appapi.AppAPI` on a shared
  store, or the per-process baseline of :mod:`benchmarks.apps.percache`) and answers ``{"ready": true}``;
* ``{"cmd": "go", "r0": R0}`` starts the shared :class:`~benchmarks.simclock.WarpedClock` at real time
  ``R0`` and the threads at real time ``start`` (default ``R0``; earlier, they begin at the clock's ``t0``),
  runs them until the clock shows ``end`` (the setup's, or the command's ``end``) and answers
  ``{"result": {...}}``;
* ``{"cmd": "exit"}`` (or the end of stdin) ends the process.

Setup keys: ``contender`` (``shared`` or ``percache``), ``appid``, ``secret``, ``api_url``, ``mode``
(``stable_token`` or ``token``), ``store_url`` (shared), ``lock_timeout``, ``threads``, ``t0``, ``speed``,
``end`` (simulated time), ``openids``, ``jssdk_every`` (every Nth call is ``jssdk_config``, 0: never),
``page_url``, ``single`` (one token request in one thread, then wait: the lock holder that
gets killed). Every request to WeChat goes through a counting adapter: requests per path, and the
errcodes WeChat answered per path.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest, Response
from sqlalchemy import create_engine

from flask_wechat.appapi import AppAPI
from flask_wechat.compliance import KeepAliveAdapter
from flask_wechat.store import RedisStore, SharedStore, SQLStore

from .apps.percache import PerProcessAPI
from .simclock import SENT_HEADER, WarpedClock

__all__ = ["CountingAdapter", "main"]

#: Connect and read timeouts of every WeChat call, as the extension's defaults.
TIMEOUT = (3.05, 10.0)


class CountingAdapter(KeepAliveAdapter):
    """The extension's pooled adapter, counting requests and errcodes per path.

    Each request carries the simulated time it is sent (:data:`~benchmarks.simclock.SENT_HEADER`).
    """

    def __init__(self, pool_maxsize: int, clock: WarpedClock) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize)
        self._clock = clock
        self._counts_lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.errcodes: Counter[str] = Counter()

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        request.headers[SENT_HEADER] = repr(self._clock())
        response = super().send(request, *args, **kwargs)
        path = urlsplit(request.url or "").path
        errcode = 0
        try:
            errcode = int(json.loads(response.content).get("errcode") or 0)
        except (ValueError, AttributeError, TypeError):
            errcode = 0 if response.status_code == 200 else -response.status_code
        with self._counts_lock:
            self.requests[path] += 1
            if errcode:
                self.errcodes[f"{path} {errcode}"] += 1
        return response


def _store(url: str) -> SharedStore:
    if url.startswith("redis://"):
        return RedisStore(url)
    engine = create_engine(url)
    return SQLStore(lambda: engine)


@dataclass
class Worker:
    """One process's client, threads and counts."""

    setup: Mapping[str, Any]

    def __post_init__(self) -> None:
        setup = self.setup
        self.clock = WarpedClock(float(setup["t0"]), float(setup["speed"]))
        self.adapter = CountingAdapter(max(10, int(setup["threads"])), self.clock)
        self.api: AppAPI | PerProcessAPI
        if setup["contender"] == "shared":
            store = _store(str(setup["store_url"]))
            store.get("bench:warm-up")  # connect now, not while measured
            self.api = AppAPI(
                str(setup["appid"]),
                str(setup["secret"]),
                str(setup["api_url"]),
                store,
                token_endpoint=str(setup["mode"]),
                session_options={"adapter": self.adapter, "default_timeout": TIMEOUT},
                lock_timeout=float(setup["lock_timeout"]),
                clock=self.clock,
            )
        else:
            self.api = PerProcessAPI(
                str(setup["appid"]),
                str(setup["secret"]),
                str(setup["api_url"]),
                token_endpoint=str(setup["mode"]),
                adapter=self.adapter,
                clock=self.clock,
                timeout=TIMEOUT,
            )
        self._lock = threading.Lock()
        self.calls = 0
        self.errors: Counter[str] = Counter()
        self.first_errors: list[str] = []
        self.latencies: list[float] = []
        self.first_calls: list[float] = []
        self.end = float(setup["end"])

    def _record(self, seconds: float, error: BaseException | None, first: bool) -> None:
        with self._lock:
            self.latencies.append(seconds)
            if first:
                self.first_calls.append(seconds)
            if error is None:
                self.calls += 1
                return
            name = type(error).__name__
            self.errors[name] += 1
            if len(self.first_errors) < 3:
                self.first_errors.append(f"{name}: {error}")

    def _loop(self, index: int) -> None:
        setup = self.setup
        end, every = self.end, int(setup["jssdk_every"])
        openids: list[str] = list(setup["openids"])
        page = str(setup["page_url"])
        # A thread's first call (as every jssdk_every-th) is a page's wx.config: token and ticket needed at once.
        count, first = 0, True
        while self.clock() < end:
            started = time.perf_counter()
            try:
                if every and count % every == 0:
                    self.api.jssdk_config(page)
                else:
                    self.api.follower(openids[(count + index) % len(openids)])
            except Exception as exc:  # noqa: BLE001 - every failure is a figure of the run
                self._record(time.perf_counter() - started, exc, first)
            else:
                self._record(time.perf_counter() - started, None, first)
            count, first = count + 1, False

    def run(self, r0: float, end: float | None = None, start: float | None = None) -> dict[str, Any]:
        """Start the clock at ``r0`` and the threads at real time ``start`` (default ``r0``); report at ``end``."""
        if end is not None:
            self.end = end
        self.clock.start(r0)
        time.sleep(max(0.0, (r0 if start is None else start) - time.time()))
        if self.setup.get("single"):
            self.api.tokens.get()  # holds the lock while WeChat hangs; the harness kills this process
            return self.report()
        threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(int(self.setup["threads"]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.report()

    def report(self) -> dict[str, Any]:
        """The process's figures, every call's seconds included."""
        fetches: dict[str, int] = {}
        if isinstance(self.api, PerProcessAPI):
            fetches = {"token_fetches": self.api.tokens.fetches, "ticket_fetches": self.api.tickets.fetches}
        return {
            "contender": self.setup["contender"],
            "calls": self.calls,
            "errors": sum(self.errors.values()),
            "errors_by_type": dict(self.errors),
            "first_errors": self.first_errors,
            "requests": dict(self.adapter.requests),
            "errcodes": dict(self.adapter.errcodes),
            "first_calls": self.first_calls,
            "latencies": [round(seconds, 5) for seconds in self.latencies],
            **fetches,
        }


def _answer(message: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Serve setup / go / exit commands until stdin ends."""
    worker: Worker | None = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["cmd"] == "setup":
                worker = Worker(command)
                _answer({"ready": True})
            elif command["cmd"] == "go" and worker is not None:
                end, start = command.get("end"), command.get("start")
                result = worker.run(
                    float(command["r0"]), None if end is None else float(end), None if start is None else float(start)
                )
                _answer({"result": result})
                worker = None
            else:
                return 0
        except Exception:  # noqa: BLE001 - reported to the harness, which shows it
            _answer({"failed": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
