"""``python -m benchmarks``: complete WeChat logins, end to end, for three contenders in one run.

Sections (each reported in ``benchmarks/results/``):

1. **Main table** at ``--rtt-ms`` (default 30) and at 0 ms: first logins, returning logins and
   ``snsapi_base`` logins per contender. A latency pass (one login at a time, the contenders
   taking turns) gives the latencies, calls, connections, CPU, memory and cookie figures; a
   throughput pass (several browsers, one contender at a time) gives logins/s.
2. **p50 against RTT** (0, 10, 30, 100 ms) for first and returning logins: ``p50_vs_rtt.png``.
3. **Flat cost**: flask-wechat over ``--flat-logins`` (default 5,000) first logins on one worker:
   time, CPU, peak RSS and cookie size per window, and WeChat connections since start-up.
4. **Scale** (``--scale``, ``--scale-only``): gunicorn with 1, 2 and 4 workers, on SQLite and PostgreSQL.
5. **App tokens** (on by default; ``--no-tokens``, ``--tokens-only``): tokens and tickets WeChat issued
   over two simulated hours of 8 x 8 workers, against a per-process cache; the JS-SDK warm path; a
   killed lock holder. See :mod:`benchmarks.tokens`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import create_engine, make_url, text

from . import report, tokens
from .fakenet import DEMO_APPID, DEMO_SECRET, RemoteWeChat
from .measure import run_interleaved, run_pass
from .patches import PATCHES
from .server import ROOT, AppServer, create_schema
from .wsgi import CONTENDERS

__all__ = ["Options", "main"]

USERINFO = "snsapi_userinfo"
BASE = "snsapi_base"
BENCH_DATABASE = "flask_wechat_bench"
#: The contenders of issue #5; ``--patch`` adds :data:`PATCHED`.
BASE_CONTENDERS = [name for name in CONTENDERS if not name.endswith("+patches")]
PATCHED = "flask-wechat+patches"
SWEEP_KEYS = ("contender", "scenario", "rtt_ms", "p50_ms", "p95_ms", "logins", "errors", "main")
#: Signs the session cookie of every contender (the same length for all, so cookies compare).
SECRET_KEY = "benchmark-only-secret-key-0123456789abcdef"


@dataclass
class Options:
    """Command-line options."""

    rtt_ms: float = 30.0
    logins: int = 30
    concurrency: int = 0
    workers: int = 1
    database: str = "sqlite"
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    contenders: list[str] = field(default_factory=lambda: list(BASE_CONTENDERS))
    sweep_rtts: list[float] = field(default_factory=lambda: [0.0, 10.0, 30.0, 100.0])
    sweep_logins: int = 10
    flat_logins: int = 5000
    flat_rtt_ms: float = 0.0
    scale: bool = False
    scale_only: bool = False
    scale_workers: list[int] = field(default_factory=lambda: [1, 2, 4])
    scale_databases: list[str] = field(default_factory=lambda: ["sqlite", "postgres"])
    scale_logins: int = 200
    warmup: int = 5
    store_url: str = ""
    patch: list[str] = field(default_factory=list)
    out: Path = ROOT / "benchmarks" / "results"
    quick: bool = False
    tokens: bool = True
    tokens_only: bool = False
    token_stores: list[str] = field(default_factory=lambda: ["sqlite", "redis"])
    token_processes: int = 8
    token_threads: int = 8
    token_hours: float = 2.0
    token_speed: float = 240.0
    token_lock_timeout: float = 3.0
    token_redis_url: str = "redis://127.0.0.1:6379/14"
    jssdk_requests: int = 300
    dead_holder_processes: int = 4
    dead_holder_threads: int = 4

    def browsers(self, workers: int) -> int:
        """Browsers in flight for a throughput pass: enough to keep every worker busy."""
        return self.concurrency or 2 * workers


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line; ``--quick`` shrinks every count for a smoke run."""
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--rtt-ms", type=float, default=defaults.rtt_ms, help="simulated round trip to WeChat (default 30)")
    add("--logins", type=int, default=defaults.logins, help="logins per pass of the main table (default 30)")
    add("--concurrency", type=int, default=0, help="browsers in flight for logins/s (default 2 per worker)")
    add("--workers", type=int, default=defaults.workers, help="gunicorn workers for the main table (default 1)")
    add("--database", choices=["sqlite", "postgres"], default=defaults.database, help="main table database")
    add("--postgres-url", default=defaults.postgres_url, help="an existing PostgreSQL database to connect through")
    add("--contenders", nargs="+", choices=BASE_CONTENDERS, default=defaults.contenders)
    add("--sweep-rtts", nargs="+", type=float, default=defaults.sweep_rtts, help="RTTs of the p50 plot")
    add("--sweep-logins", type=int, default=defaults.sweep_logins, help="logins per point of the plot")
    add("--flat-logins", type=int, default=defaults.flat_logins, help="logins of the flat-cost run (0: skip)")
    add("--flat-rtt-ms", type=float, default=defaults.flat_rtt_ms, help="RTT of the flat-cost run (default 0)")
    add("--scale", action="store_true", help="also run gunicorn with 1/2/4 workers on SQLite and PostgreSQL")
    add("--scale-only", action="store_true", help="run the scale matrix and nothing else")
    add("--scale-workers", nargs="+", type=int, default=defaults.scale_workers)
    add("--scale-databases", nargs="+", choices=["sqlite", "postgres"], default=defaults.scale_databases)
    add("--scale-logins", type=int, default=defaults.scale_logins, help="first logins per scale cell")
    add("--warmup", type=int, default=defaults.warmup, help="unmeasured logins after each server start")
    add(
        "--store-url",
        default="",
        help="WECHAT_STORE_URL for flask-wechat, e.g. redis://127.0.0.1:6379/15 "
        "(default: its SQL store in the app's database)",
    )
    add(
        "--patch",
        nargs="+",
        default=[],
        choices=["all", *PATCHES],
        help="also run flask-wechat+patches: the example with proposed changes (benchmarks/patches.py)",
    )
    add("--out", type=Path, default=defaults.out, help="where results.{md,json} and the plot go")
    add("--quick", action="store_true", help="a small smoke run of every section (about 2 min)")
    add(
        "--tokens",
        action=argparse.BooleanOptionalAction,
        default=defaults.tokens,
        help="the app-token section (default: on, about 3 min)",
    )
    add("--tokens-only", action="store_true", help="run the app-token section and nothing else")
    add(
        "--token-stores",
        nargs="+",
        choices=["sqlite", "redis", "postgres"],
        default=defaults.token_stores,
        help="shared stores of the app-token section (default: sqlite redis)",
    )
    add("--token-processes", type=int, default=defaults.token_processes, help="worker processes per contender")
    add("--token-threads", type=int, default=defaults.token_threads, help="threads per token worker process")
    add("--token-hours", type=float, default=defaults.token_hours, help="simulated hours per load run (default 2)")
    add("--token-speed", type=float, default=defaults.token_speed, help="simulated seconds per real second")
    add("--token-lock-timeout", type=float, default=defaults.token_lock_timeout, help="lock_timeout (s, default 3)")
    add("--token-redis-url", default=defaults.token_redis_url, help="Redis of the app-token section (db 14)")
    add("--jssdk-requests", type=int, default=defaults.jssdk_requests, help="requests per endpoint, JS-SDK warm path")
    add("--dead-holder-processes", type=int, default=defaults.dead_holder_processes, help="processes left waiting")
    add("--dead-holder-threads", type=int, default=defaults.dead_holder_threads, help="threads per waiting process")
    args = parser.parse_args(argv)
    options = Options(**{key: value for key, value in vars(args).items()})
    if options.scale_only:
        options.scale, options.flat_logins, options.tokens = True, 0, False
    if options.tokens_only:
        options.tokens, options.scale, options.flat_logins = True, False, 0
    if options.patch and PATCHED not in options.contenders:
        options.contenders.append(PATCHED)
    if options.quick:
        options.logins = min(options.logins, 8)
        options.sweep_logins = min(options.sweep_logins, 3)
        options.flat_logins = min(options.flat_logins, 300)
        options.scale_logins = min(options.scale_logins, 20)
        options.warmup = min(options.warmup, 2)
        options.token_processes = min(options.token_processes, 4)
        options.token_threads = min(options.token_threads, 4)
        options.token_speed = max(options.token_speed, 720.0)
        options.token_stores = options.token_stores[:1]
        options.jssdk_requests = min(options.jssdk_requests, 50)
        options.dead_holder_processes = min(options.dead_holder_processes, 2)
        options.dead_holder_threads = min(options.dead_holder_threads, 2)
    return options


class Bench:
    """The simulated WeChat, the databases, and the runs of one benchmark invocation."""

    def __init__(self, net: RemoteWeChat, options: Options, workdir: Path) -> None:
        self.net = net
        self.options = options
        self.workdir = workdir
        self._databases = 0

    def log(self, message: str) -> None:
        """Progress, on stderr."""
        print(message, file=sys.stderr, flush=True)

    def fresh_database(self, kind: str) -> str:
        """The URL of an empty database of ``kind`` (a new SQLite file, or PostgreSQL recreated)."""
        self._databases += 1
        if kind == "sqlite":
            return f"sqlite:///{self.workdir / f'bench-{self._databases}.db'}"
        name = f"{BENCH_DATABASE}_{self._databases}"
        self._postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
        return make_url(self.options.postgres_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, kind: str, url: str) -> None:
        """Drop a PostgreSQL database :meth:`fresh_database` made (SQLite files go with the work directory)."""
        if kind == "postgres":
            self._postgres(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")

    def _postgres(self, *statements: str) -> None:
        engine = create_engine(make_url(self.options.postgres_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def serve(self, contender: str, scope: str, database: str, workers: int) -> Iterator[AppServer]:
        """The contender under gunicorn on a fresh database with its tables created."""
        database_url = self.fresh_database(database)
        config = {
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WECHAT_APPID": DEMO_APPID,
            "WECHAT_SECRET": DEMO_SECRET,
            "WECHAT_SCOPE": scope,
            "WECHAT_OPEN_BASE_URL": self.net.open_url,
            "WECHAT_API_BASE_URL": self.net.api_url,
        }
        if contender.startswith("flask-wechat") and self.options.store_url:
            config["WECHAT_STORE_URL"] = self.options.store_url
        create_schema(contender, config)
        patches = self.options.patch if contender == PATCHED else []
        try:
            with AppServer(contender, config, workers, patches) as server:
                yield server
        finally:
            self.drop_database(database, database_url)

    def warm_up(self, server: AppServer) -> None:
        """A few unmeasured logins, so lazy imports and first-request work are not measured."""
        if self.options.warmup:
            users = self.net.users("warm", self.options.warmup * server.workers)
            run_pass(server, self.net, users, concurrency=server.workers)

    @contextlib.contextmanager
    def serve_all(self, scope: str) -> Iterator[dict[str, AppServer]]:
        """Every contender under gunicorn at once (one per contender), warmed up."""
        with contextlib.ExitStack() as stack:
            servers = {
                contender: stack.enter_context(
                    self.serve(contender, scope, self.options.database, self.options.workers)
                )
                for contender in self.options.contenders
            }
            self.net.set_rtt(0)
            for server in servers.values():
                self.warm_up(server)
            yield servers

    def matrix(self, main_rtts: list[float], plot_rtts: list[float]) -> list[dict[str, Any]]:
        """Every main-table and plot row.

        All contenders are served at once and their latency passes interleave login by login, so
        background load hits them alike. The RTT belongs to the fake WeChat, not to the apps, so
        one set of servers per scope serves every RTT: the main RTTs (latency + throughput
        passes), then the plot-only ones (latency only).
        """
        options = self.options
        rows: list[dict[str, Any]] = []
        for scope, scenarios in ((USERINFO, ("first", "returning")), (BASE, ("base",))):
            with self.serve_all(scope) as servers:
                for rtt in main_rtts + (plot_rtts if scope == USERINFO else []):
                    self.net.set_rtt(rtt)
                    main = rtt in main_rtts
                    count = options.logins if main else options.sweep_logins
                    latency_users = self.net.users(f"{scope[7]}{rtt:g}a-", count)
                    throughput_users = self.net.users(f"{scope[7]}{rtt:g}b-", count) if main else []
                    for scenario in scenarios:
                        self.log(f"  RTT {rtt:>3g} ms  {scenario}{'' if main else ' (plot)'}")
                        passes = run_interleaved(servers, self.net, latency_users)
                        for contender, server in servers.items():
                            row = {"contender": contender, "scenario": scenario, "rtt_ms": rtt, "main": main}
                            row.update(passes[contender].figures())
                            row["logins_per_s"] = None
                            if throughput_users:
                                browsers = options.browsers(server.workers)
                                throughput = run_pass(server, self.net, throughput_users, browsers).figures()
                                row.update(logins_per_s=throughput["logins_per_s"], throughput_concurrency=browsers)
                                row["errors"] += throughput["errors"]
                            rows.append(row)
        return rows

    def flat_cost(self) -> dict[str, Any]:
        """flask-wechat over many first logins on one worker: does any cost grow?"""
        options = self.options
        total = options.flat_logins
        self.net.set_rtt(options.flat_rtt_ms)
        users = self.net.users("f", total)
        window = min(100, total)
        checkpoints = sorted({cp for cp in (window, 1000, total // 2, total) if window <= cp <= total})
        windows: list[dict[str, Any]] = []
        with self.serve("flask-wechat", USERINFO, options.database, 1) as server:
            start = self.net.mark()
            started = time.perf_counter()
            for end in range(window, total + 1, window):
                measured = run_pass(server, self.net, users[end - window : end], options.browsers(1))
                if end in checkpoints:
                    since_start = self.net.since(start)
                    figures = measured.figures()
                    windows.append(
                        {
                            "logins_so_far": end,
                            "window": f"{end - window + 1}-{end}",
                            "p50_ms": figures["p50_ms"],
                            "cpu_ms_per_login": figures["cpu_ms_per_login"],
                            "peak_rss_mb": figures["peak_rss_mb"],
                            "cookie_bytes": figures["cookie_bytes"],
                            "wechat_calls_per_login": figures["wechat_calls_per_login"],
                            "wechat_connections_since_start": since_start.connections,
                            "errors": figures["errors"],
                        }
                    )
                    self.log(f"  flat cost: {end} logins, peak RSS {figures['peak_rss_mb']:.1f} MB")
            wall = time.perf_counter() - started
        return {"rtt_ms": options.flat_rtt_ms, "logins": total, "workers": 1, "wall_s": wall, "windows": windows}

    def scale(self) -> list[dict[str, Any]]:
        """Logins/s with 1, 2 and 4 workers on each database."""
        options = self.options
        self.net.set_rtt(options.rtt_ms)
        rows = []
        for database in options.scale_databases:
            for workers in options.scale_workers:
                users = self.net.users(f"w{database[0]}{workers}-", options.scale_logins)
                for contender in options.contenders:
                    self.log(f"  scale: {database} {workers} worker(s) {contender}")
                    with self.serve(contender, USERINFO, database, workers) as server:
                        start = self.net.mark()
                        self.warm_up(server)
                        measured = run_pass(server, self.net, users, options.browsers(workers))
                        row = {"contender": contender, "database": database, "workers": workers}
                        row.update(measured.figures())
                        row["wechat_connections_since_start"] = self.net.since(start).connections
                        rows.append(row)
        return rows


def _public(value: Any) -> Any:
    """An option as it may be shown: paths as text, passwords in URLs masked."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    return value


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603,S607
    return done.stdout.strip()


def _git_commit() -> str:
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "flask_wechat", "examples")
        return commit + (" (core has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every section, write the results and print the markdown."""
    options = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "commit": _git_commit(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "options": {key: _public(value) for key, value in vars(options).items()},
        }
    }
    with (
        tempfile.TemporaryDirectory(prefix="flask-wechat-bench-") as workdir,
        RemoteWeChat() as net,
    ):
        bench = Bench(net, options, Path(workdir))
        main_rtts = [options.rtt_ms] + ([0.0] if options.rtt_ms != 0 else [])
        plot_rtts = [rtt for rtt in options.sweep_rtts if rtt not in main_rtts]
        rows = [] if options.scale_only or options.tokens_only else bench.matrix(main_rtts, plot_rtts)
        results["main"] = [row for row in rows if row["main"]]
        results["sweep"] = [
            {key: row[key] for key in SWEEP_KEYS}
            for row in rows
            if row["scenario"] in ("first", "returning") and row["rtt_ms"] in options.sweep_rtts
        ]
        if options.flat_logins:
            bench.log(f"flat cost over {options.flat_logins} logins")
            results["flat"] = bench.flat_cost()
        if options.scale:
            bench.log("scale")
            results["scale"] = bench.scale()
        if options.tokens:
            bench.log("app tokens")
            results["tokens"] = tokens.run_section(bench)
    results["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = report.targets(results)
    stem = "scale" if options.scale_only else "tokens" if options.tokens_only else "results"
    markdown = report.write(results, options.out, stem)
    print(markdown)
    return 0
