"""The app-token section: one app access token per app for every worker, measured three ways.

1. **Under load** (:func:`load_runs`): ``--token-processes`` worker processes x ``--token-threads``
   threads call ``/cgi-bin/user/info`` (``AppAPI.follower``) and, every ``JSSDK_EVERY``th call,
   ``jssdk_config`` (token + JS-SDK ticket) for ``--token-hours`` simulated hours, in ``stable_token``
   and ``token`` modes, on each ``--token-stores`` store. Every process and the fake share one
   :class:`~benchmarks.simclock.WarpedClock`. The per-process cache of :mod:`benchmarks.apps.percache`
   runs the same load at the same time against a fake of its own (same clock), so both contenders'
   counters are their own.
2. **JS-SDK warm path** (:func:`jssdk_warm`): p50 of ``GET /wechat/jssdk-config`` on the example app
   under gunicorn with a warm ticket, against a constant-JSON route of the same app, interleaved.
3. **Dead lock holder** (:func:`dead_holder_runs`): a worker takes the refresh lock while WeChat hangs
   and is killed (SIGKILL); the others, waiting for the token, are delayed until the lock expires.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from sqlalchemy import create_engine

from flask_wechat.apptoken import REFRESH_AHEAD
from flask_wechat.serverapi import APP_TOKEN_ENDPOINTS, DEFAULT_LIFETIME, JSAPI_TICKET_PATH, USER_INFO_PATH
from flask_wechat.store import store_key, store_table
from flask_wechat.testing.accounts import stable_id

from .fakenet import DEMO_APPID, DEMO_SECRET
from .measure import percentile
from .server import ROOT
from .tokennet import TokenWeChat
from .wsgi import CONSTANT_PATH

if TYPE_CHECKING:
    from .run import Bench

__all__ = ["CONTENDERS", "MODES", "dead_holder_runs", "expected_issues", "jssdk_warm", "load_runs", "run_section"]

MODES = ("stable_token", "token")
#: flask-wechat's shared, single-flight token, and the per-process baseline.
CONTENDERS = ("shared", "percache")
#: Every this-many-th call of a thread is ``jssdk_config`` (the ticket); the others ``user/info``.
JSSDK_EVERY = 10
#: Test users whose openids the threads look up (a follower and a non-follower).
USERS = ("alice", "bob")
TOKEN_ERRCODES = ("40001", "40014", "42001")
#: Real seconds the simulated clock stands at t0 while the threads of a load run start.
COLD_START_S = 1.5
#: How long the killed holder keeps the lock before it dies (WeChat is hanging meanwhile).
HOLD_BEFORE_KILL = 0.5


def expected_issues(simulated_seconds: float, lifetime: float = DEFAULT_LIFETIME) -> int:
    """Tokens (or tickets) one app needs over a run: the first, plus one per refresh point reached.

    A value is refreshed :data:`~flask_wechat.apptoken.REFRESH_AHEAD` seconds before it expires,
    so refreshes fall every ``lifetime - REFRESH_AHEAD`` seconds after the first fetch.
    """
    return 1 + math.floor(simulated_seconds / (lifetime - REFRESH_AHEAD))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class WorkerProcess:
    """``python -m benchmarks.tokenworker``: JSON lines in on stdin, out on stdout."""

    def __init__(self, log: IO[bytes]) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "BENCH_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.tokenworker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("the token worker's pipes did not open")
        self._stdin: IO[str] = self.process.stdin
        self._replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._replies.put(line)
        self._replies.put(None)

    def send(self, **message: Any) -> None:
        """One command line."""
        self._stdin.write(json.dumps(message) + "\n")
        self._stdin.flush()

    def reply(self, timeout: float) -> dict[str, Any]:
        """The next answer; RuntimeError if the worker failed, exited or took longer than ``timeout``."""
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"token worker {self.process.pid} did not answer within {timeout:.0f} s") from None
        if line is None:
            raise RuntimeError(f"token worker {self.process.pid} exited ({self.process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if "failed" in answer:
            raise RuntimeError(f"token worker {self.process.pid} failed:\n{answer['failed']}")
        return answer

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lock release."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send(cmd="exit")
                self._stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def workers(count: int, log: IO[bytes]) -> Iterator[list[WorkerProcess]]:
    """``count`` worker processes, closed on exit."""
    started = [WorkerProcess(log) for _ in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.close()


def _log_tail(log: IO[bytes], lines: int = 20) -> str:
    log.flush()
    return "\n".join(Path(log.name).read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def shared_store(bench: Bench, kind: str) -> Iterator[str]:
    """The URL of an empty shared store: a new SQLite file, a new PostgreSQL database, or Redis with our keys gone."""
    if kind == "redis":
        import redis

        url = bench.options.token_redis_url
        client = redis.Redis.from_url(url)
        keys = [
            store_key(name, DEMO_APPID) for name in ("app_token", "app_token-lock", "jsapi_ticket", "jsapi_ticket-lock")
        ]
        client.delete(*keys)
        try:
            yield url
        finally:
            client.delete(*keys)
            client.close()
        return
    url = bench.fresh_database(kind)
    engine = create_engine(url)
    try:
        store_table.create(engine, checkfirst=True)  # before several workers race to create it
    finally:
        engine.dispose()
    try:
        yield url
    finally:
        bench.drop_database(kind, url)


def _openids() -> list[str]:
    return [stable_id("openid", DEMO_APPID, user) for user in USERS]


# -- 1. under load ------------------------------------------------------------------------------


def _setup(bench: Bench, contender: str, api_url: str, store_url: str, mode: str, t0: float) -> dict[str, Any]:
    options = bench.options
    return {
        "cmd": "setup",
        "contender": contender,
        "appid": DEMO_APPID,
        "secret": DEMO_SECRET,
        "api_url": api_url,
        "mode": mode,
        "store_url": store_url,
        "lock_timeout": options.token_lock_timeout,
        "threads": options.token_threads,
        "t0": t0,
        "speed": options.token_speed,
        "end": t0 + options.token_hours * 3600,
        "openids": _openids(),
        "jssdk_every": JSSDK_EVERY,
        "page_url": "https://bench.example.com/share?item=1",
    }


def _contender_figures(results: list[dict[str, Any]], counters: dict[str, Any], mode: str) -> dict[str, Any]:
    """One contender's figures: WeChat's counters, and what its processes sent and were answered."""
    requests_sent: Counter[str] = Counter()
    errcodes: Counter[str] = Counter()
    for result in results:
        requests_sent.update(result["requests"])
        errcodes.update(result["errcodes"])
    latencies = [seconds for result in results for seconds in result["latencies"]]
    refused = sum(
        count
        for key, count in errcodes.items()
        if key.split()[0] not in APP_TOKEN_ENDPOINTS.values() and key.split()[1] in TOKEN_ERRCODES
    )
    return {
        "tokens_issued": counters["tokens_issued"],
        "tickets_issued": counters["tickets_issued"],
        "token_fetch_calls": requests_sent[APP_TOKEN_ENDPOINTS[mode]],
        "ticket_fetch_calls": requests_sent[JSAPI_TICKET_PATH],
        "api_calls": sum(result["calls"] for result in results),
        "user_info_requests": requests_sent[USER_INFO_PATH],
        "wechat_requests": sum(requests_sent.values()),
        "stale_token_calls": counters["stale_token_calls"],
        "refusals_seen": refused,
        "errcodes": dict(errcodes),
        "errors": sum(result["errors"] for result in results),
        "first_errors": [error for result in results for error in result["first_errors"]][:3],
        "call_p50_ms": 1000 * percentile(latencies, 0.5),
        "call_p99_ms": 1000 * percentile(latencies, 0.99),
        "call_max_ms": 1000 * max(latencies, default=0.0),
    }


def load_run(bench: Bench, pool: list[WorkerProcess], store: str, mode: str) -> dict[str, Any]:
    """Both contenders under the same load at the same time, each against its own fake on one clock."""
    options = bench.options
    processes = options.token_processes
    t0 = float(int(time.time()))
    simulated = options.token_hours * 3600
    with (
        TokenWeChat(t0, options.token_speed) as shared_net,
        TokenWeChat(t0, options.token_speed) as percache_net,
        shared_store(bench, store) as store_url,
    ):
        nets = {"shared": shared_net, "percache": percache_net}
        groups = {"shared": pool[:processes], "percache": pool[processes : 2 * processes]}
        for contender, group in groups.items():
            for worker in group:
                worker.send(**_setup(bench, contender, nets[contender].url, store_url, mode, t0))
        for worker in pool[: 2 * processes]:
            worker.reply(timeout=120)
        # The threads start at simulated t0 and the clock stands still for COLD_START_S: the cold start
        # (every thread wants a token and a ticket at once) happens at t0 however long it takes, so the
        # refresh points, and the tokens expected, do not depend on the machine's load.
        start = time.time() + 0.3
        r0 = start + COLD_START_S
        for net in nets.values():
            net.start_clock(r0)
        for worker in pool[: 2 * processes]:
            worker.send(cmd="go", r0=r0, start=start)
        real = COLD_START_S + simulated / options.token_speed
        results = {
            contender: [worker.reply(timeout=real + 120)["result"] for worker in group]
            for contender, group in groups.items()
        }
        wall = time.time() - start
        figures = {
            contender: _contender_figures(results[contender], nets[contender].counters(DEMO_APPID), mode)
            for contender in CONTENDERS
        }
    expected = expected_issues(simulated)
    shared, percache = figures["shared"], figures["percache"]
    return {
        "store": store,
        "mode": mode,
        "processes": processes,
        "threads": options.token_threads,
        "simulated_s": simulated,
        "wall_s": round(wall, 1),
        "expected_tokens": expected,
        "expected_tickets": expected,
        "shared": shared,
        "percache": percache,
        "token_fetch_ratio": percache["token_fetch_calls"] / shared["token_fetch_calls"]
        if shared["token_fetch_calls"]
        else None,
        "tokens_issued_ratio": percache["tokens_issued"] / shared["tokens_issued"] if shared["tokens_issued"] else None,
    }


def load_runs(bench: Bench, pool: list[WorkerProcess]) -> list[dict[str, Any]]:
    """:func:`load_run` for every store and mode, on one pool of worker processes."""
    rows = []
    for store in bench.options.token_stores:
        for mode in MODES:
            _log(f"  app tokens under load: {store}, {mode}")
            row = load_run(bench, pool, store, mode)
            rows.append(row)
            shared, percache = row["shared"], row["percache"]
            _log(
                f"    {row['wall_s']:.0f} s: shared {shared['tokens_issued']} tokens / "
                f"{shared['token_fetch_calls']} fetches / {shared['stale_token_calls']} stale; per-process "
                f"{percache['tokens_issued']} tokens / {percache['token_fetch_calls']} fetches / "
                f"{percache['stale_token_calls']} stale"
            )
    return rows


# -- 2. the JS-SDK warm path --------------------------------------------------------------------


def _timed(session: requests.Session, url: str) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    response = session.get(url, timeout=10)
    return (time.perf_counter() - started) * 1000, response


def jssdk_warm(bench: Bench) -> dict[str, Any]:
    """``/wechat/jssdk-config`` with a warm ticket against a constant JSON route of the same app, interleaved."""
    from .run import USERINFO

    options, net = bench.options, bench.net
    net.set_rtt(0)
    count = options.jssdk_requests
    with bench.serve("flask-wechat", USERINFO, options.database, 1) as server, requests.Session() as session:
        page = f"{server.url}/profile?share=1"
        urls = {
            "jssdk": f"{server.url}/wechat/jssdk-config?url={quote(page, safe='')}",
            "constant": f"{server.url}{CONSTANT_PATH}",
        }
        cold_ms, cold = _timed(session, urls["jssdk"])  # fetches the token and the ticket
        if cold.status_code != 200:
            raise RuntimeError(f"jssdk-config answered {cold.status_code}: {cold.text[:200]}\n{server.log_tail()}")
        for _ in range(10):
            for url in urls.values():
                _timed(session, url)
        mark, before = net.mark(), net.app_counters(DEMO_APPID)
        times: dict[str, list[float]] = {name: [] for name in urls}
        sql: list[int] = []
        failures = 0
        last: dict[str, Any] = {}
        for index in range(count):
            names = list(urls) if index % 2 == 0 else list(reversed(urls))
            for name in names:
                ms, response = _timed(session, urls[name])
                times[name].append(ms)
                if response.status_code != 200:
                    failures += 1
                elif name == "jssdk":
                    sql.append(int(response.headers.get("X-Bench-SQL", "0")))
                    last = response.json()
        traffic, after = net.since(mark), net.app_counters(DEMO_APPID)
    valid = bool(last) and net.verify_jssdk(DEMO_APPID, last["timestamp"], last["nonceStr"], last["signature"], page)
    p50 = {name: statistics.median(values) for name, values in times.items()}
    return {
        "requests": count,
        "cold_ms": cold_ms,
        "jssdk_p50_ms": p50["jssdk"],
        "constant_p50_ms": p50["constant"],
        "jssdk_p95_ms": percentile(times["jssdk"], 0.95),
        "constant_p95_ms": percentile(times["constant"], 0.95),
        "ratio": p50["jssdk"] / p50["constant"] if p50["constant"] else None,
        "wechat_calls_while_warm": traffic.total_calls,
        "tokens_issued_while_warm": after["tokens_issued"] - before["tokens_issued"],
        "tickets_issued_while_warm": after["tickets_issued"] - before["tickets_issued"],
        "sql_statements_per_request": sum(sql) / len(sql) if sql else 0.0,
        "signature_valid": valid,
        "errors": failures,
    }


# -- 3. a dead lock holder ----------------------------------------------------------------------


def dead_holder_run(bench: Bench, pool: list[WorkerProcess], store: str, log: IO[bytes]) -> dict[str, Any]:
    """Kill the worker holding the refresh lock while WeChat hangs; how long do the others wait?

    The holder is a new process; the others come from ``pool``.
    """
    options = bench.options
    lock_timeout = options.token_lock_timeout
    others, threads = min(options.dead_holder_processes, len(pool)), options.dead_holder_threads
    t0 = float(int(time.time()))
    with (
        TokenWeChat(t0) as net,
        shared_store(bench, store) as store_url,
        workers(1, log) as holder,
    ):
        victim, waiting = holder[0], pool[:others]
        run_for = lock_timeout + HOLD_BEFORE_KILL + 3.0
        base = {
            "cmd": "setup",
            "contender": "shared",
            "appid": DEMO_APPID,
            "secret": DEMO_SECRET,
            "api_url": net.url,
            "mode": "stable_token",
            "store_url": store_url,
            "lock_timeout": lock_timeout,
            "t0": t0,
            "speed": 1.0,
            "openids": _openids(),
            "jssdk_every": 0,
            "page_url": "",
        }
        victim.send(**{**base, "threads": 1, "end": t0, "single": True})
        for worker in waiting:
            worker.send(**{**base, "threads": threads, "end": math.inf})
        for worker in [victim, *waiting]:
            worker.reply(timeout=120)
        net.hold_next_token()
        r0 = time.time()
        net.start_clock(r0)
        victim.send(cmd="go", r0=r0)
        deadline = time.monotonic() + 30
        while (held_at := net.held_at()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the first worker never asked WeChat for a token")
            time.sleep(0.005)
        # The victim holds the lock now (it asks WeChat only while holding it): the others start.
        others_started = time.time()
        for worker in waiting:
            worker.send(cmd="go", r0=r0, end=t0 + (others_started - r0) + run_for)
        time.sleep(HOLD_BEFORE_KILL)
        victim.kill()
        killed_at = time.time()
        results = [worker.reply(timeout=run_for + 60)["result"] for worker in waiting]
        net.release()
        token_requests = net.token_requests()
        counters = net.counters(DEMO_APPID)
    # Each thread's first call started while nobody had a token.
    first_calls = [seconds for result in results for seconds in result["first_calls"]]
    all_calls = [seconds for result in results for seconds in result["latencies"]]
    takeover = next((moment for moment in token_requests if moment > held_at), None)
    return {
        "store": store,
        "lock_timeout_s": lock_timeout,
        "processes": others,
        "threads": threads,
        "killed_after_s": killed_at - held_at,
        "others_started_after_s": others_started - held_at,
        "takeover_after_s": None if takeover is None else takeover - held_at,
        "max_delay_s": max(all_calls, default=0.0),
        "first_call_p50_s": statistics.median(first_calls) if first_calls else 0.0,
        "first_calls": len(first_calls),
        "calls": sum(result["calls"] for result in results),
        "errors": sum(result["errors"] for result in results),
        "first_errors": [error for result in results for error in result["first_errors"]][:3],
        "tokens_issued": counters["tokens_issued"],
        "token_requests": len(token_requests),
    }


def dead_holder_runs(bench: Bench, pool: list[WorkerProcess], log: IO[bytes]) -> list[dict[str, Any]]:
    """:func:`dead_holder_run` on each token store."""
    rows = []
    for store in bench.options.token_stores:
        _log(f"  dead lock holder: {store}")
        row = dead_holder_run(bench, pool, store, log)
        rows.append(row)
        _log(
            f"    next token request after {row['takeover_after_s']:.2f} s, others delayed at most "
            f"{row['max_delay_s']:.2f} s, {row['errors']} errors"
        )
    return rows


def run_section(bench: Bench) -> dict[str, Any]:
    """Every part of the section, with the settings the report quotes."""
    options = bench.options
    started = time.perf_counter()
    section: dict[str, Any] = {
        "settings": {
            "processes": options.token_processes,
            "threads": options.token_threads,
            "simulated_hours": options.token_hours,
            "speed": options.token_speed,
            "stores": list(options.token_stores),
            "lock_timeout_s": options.token_lock_timeout,
            "jssdk_every": JSSDK_EVERY,
            "cold_start_s": COLD_START_S,
            "refresh_ahead_s": REFRESH_AHEAD,
            "lifetime_s": DEFAULT_LIFETIME,
        }
    }
    with (
        tempfile.NamedTemporaryFile(prefix="bench-token-workers-", suffix=".log", delete=False) as log,
        workers(2 * options.token_processes, log) as pool,
    ):
        try:
            section["load"] = load_runs(bench, pool)
            _log("  JS-SDK warm path")
            section["jssdk"] = jssdk_warm(bench)
            section["dead_holder"] = dead_holder_runs(bench, pool, log)
        except RuntimeError:
            _log(f"  the token workers' log ({log.name}) ends:\n{_log_tail(log)}")
            raise
    Path(log.name).unlink(missing_ok=True)
    section["wall_s"] = round(time.perf_counter() - started, 1)
    return section
