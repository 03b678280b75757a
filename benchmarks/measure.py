"""Passes of logins against one served contender, and the figures they yield."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .browser import LoginResult, login
from .fakenet import Mark, RemoteWeChat, Traffic
from .server import AppServer

__all__ = ["Pass", "percentile", "run_interleaved", "run_pass"]

MB = 1024 * 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by nearest rank (the median for 0.5); 0.0 for no values."""
    if not values:
        return 0.0
    if fraction == 0.5:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]


@dataclass
class Pass:
    """One batch of logins and what it cost, browser side and server side."""

    results: list[LoginResult]
    wall_seconds: float
    cpu_seconds: float
    calls: dict[str, int]
    connections: int
    peak_rss: int
    concurrency: int
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[LoginResult]:
        """The logins that reached the profile page."""
        return [result for result in self.results if result.ok]

    def _per_login(self, total: float) -> float:
        return total / len(self.ok) if self.ok else 0.0

    def figures(self) -> dict[str, Any]:
        """The pass's figures, in report units (ms, MB, bytes, per login)."""
        ok = self.ok
        latencies = [result.seconds * 1000 for result in ok]
        return {
            "logins": len(self.results),
            "errors": len(self.results) - len(ok),
            "concurrency": self.concurrency,
            "logins_per_s": len(ok) / self.wall_seconds if self.wall_seconds else 0.0,
            "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95),
            "mean_ms": statistics.fmean(latencies) if latencies else 0.0,
            "wechat_calls_per_login": self._per_login(sum(self.calls.values())),
            "wechat_calls_by_endpoint": dict(self.calls),
            "wechat_connections": self.connections,
            "wechat_connections_per_100_logins": 100 * self._per_login(self.connections),
            "cpu_ms_per_login": 1000 * self._per_login(self.cpu_seconds),
            "peak_rss_mb": self.peak_rss / MB,
            "cookie_bytes": max((result.cookie_bytes for result in ok), default=0),
            "max_cookie_bytes_during_login": max((result.max_cookie_bytes for result in ok), default=0),
            "sql_statements_per_login": self._per_login(sum(result.sql for result in ok)),
            "sql_commits_per_login": self._per_login(sum(result.commits for result in ok)),
            "first_errors": self.errors[:3],
        }


def run_pass(server: AppServer, net: RemoteWeChat, users: Sequence[str], concurrency: int = 1) -> Pass:
    """Log every user in once, ``concurrency`` browsers at a time, each a fresh session."""
    mark = net.mark()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    if concurrency <= 1:
        results = [login(server.url, user, net.openid(user)) for user in users]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(lambda user: login(server.url, user, net.openid(user)), users))
    wall = time.perf_counter() - started
    traffic = net.since(mark)
    errors = [result.error for result in results if not result.ok]
    if errors:
        print(f"    ! {len(errors)} failed logins, e.g. {errors[0]}; the app's log ends:", file=sys.stderr)
        print(server.log_tail(15), file=sys.stderr)
    return Pass(
        results=results,
        wall_seconds=wall,
        cpu_seconds=server.cpu_seconds() - cpu_before,
        calls=dict(traffic.calls),
        connections=traffic.connections,
        peak_rss=server.peak_rss(),
        concurrency=concurrency,
        errors=errors,
    )


def run_interleaved(servers: dict[str, AppServer], net: RemoteWeChat, users: Sequence[str]) -> dict[str, Pass]:
    """Log every user in once on every server, one login at a time, the servers taking turns.

    Taking turns (and rotating who goes first) spreads any background load on the machine
    evenly over the contenders, so their ratios stay fair. Each login's WeChat traffic is
    counted between marks taken just before and after it.
    """
    names = list(servers)
    results: dict[str, list[LoginResult]] = {name: [] for name in names}
    calls: dict[str, Counter[str]] = {name: Counter() for name in names}
    connections = dict.fromkeys(names, 0)
    cpu_before = {name: server.cpu_seconds() for name, server in servers.items()}
    for index, user in enumerate(users):
        turn = index % len(names)
        for name in names[turn:] + names[:turn]:
            mark: Mark = net.mark()
            results[name].append(login(servers[name].url, user, net.openid(user)))
            traffic: Traffic = net.since(mark)
            calls[name].update(traffic.calls)
            connections[name] += traffic.connections
    passes = {}
    for name, server in servers.items():
        errors = [result.error for result in results[name] if not result.ok]
        if errors:
            print(f"    ! {name}: {len(errors)} failed logins, e.g. {errors[0]}; its log ends:", file=sys.stderr)
            print(server.log_tail(15), file=sys.stderr)
        passes[name] = Pass(
            results=results[name],
            wall_seconds=sum(result.seconds for result in results[name]),
            cpu_seconds=server.cpu_seconds() - cpu_before[name],
            calls=dict(calls[name]),
            connections=connections[name],
            peak_rss=server.peak_rss(),
            concurrency=1,
            errors=errors,
        )
    return passes
