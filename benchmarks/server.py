"""A contender app under gunicorn (sync workers) in its own process, with its CPU and memory.

CPU time and peak RSS are read from the worker processes (psutil and ``/proc/PID/status``
``VmHWM``), so they are the app's own, not the harness's or the fake WeChat's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]
import requests

__all__ = ["ROOT", "AppServer", "create_schema", "free_port"]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _app_env(contender: str, config: dict[str, str], patches: list[str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "BENCH_"))}
    env.update({f"FLASK_{key}": value for key, value in config.items()})
    env["BENCH_CONTENDER"] = contender
    if patches:
        env["BENCH_PATCHES"] = ",".join(patches)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def create_schema(contender: str, config: dict[str, str]) -> None:
    """Build the app once so its tables exist before several workers race to create them."""
    subprocess.run([sys.executable, "-m", "benchmarks.wsgi"], cwd=ROOT, env=_app_env(contender, config), check=True)


def _peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (Linux ``VmHWM``; current RSS elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(psutil.Process(pid).memory_info().rss)


class AppServer:
    """``gunicorn -k sync -w N`` serving one contender on a free loopback port; a context manager."""

    def __init__(
        self, contender: str, config: dict[str, str], workers: int = 1, patches: list[str] | None = None
    ) -> None:
        self.contender = contender
        self.config = config
        self.workers = workers
        self.patches = patches or []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"bench-{contender}-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> AppServer:
        """Start gunicorn and wait until every worker answers."""
        command = [
            sys.executable, "-m", "gunicorn",
            "--worker-class", "sync", "--workers", str(self.workers),
            "--bind", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
            "--graceful-timeout", "3", "--log-level", "warning",
            "benchmarks.wsgi:create_app()",
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, cwd=ROOT, env=self._env(), stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_tail()}")
            if len(self.worker_pids()) == self.workers and self._answers():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not come up: {self.log_tail()}")

    def _env(self) -> dict[str, str]:
        return _app_env(self.contender, self.config, self.patches)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url + "/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def worker_pids(self) -> list[int]:
        """The gunicorn workers' process ids."""
        if self._process is None:
            return []
        try:
            return [child.pid for child in psutil.Process(self._process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by all workers."""
        total = 0.0
        for pid in self.worker_pids():
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        return total

    def peak_rss(self) -> int:
        """The largest peak RSS of any worker, in bytes."""
        return max((_peak_rss(pid) for pid in self.worker_pids()), default=0)

    def log_tail(self, lines: int = 30) -> str:
        """The end of gunicorn's output (for error messages)."""
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop gunicorn gracefully, then hard; remove its log."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
