"""A private ``redis-server`` on a free loopback port, for tests that stop and start Redis.

The shared Redis the suite otherwise uses (``FLASK_WECHAT_TEST_REDIS_URL``) must never be
stopped by a test; this one belongs to the test alone and keeps nothing on disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

#: The port of the machine's shared Redis, which this helper refuses to take.
SHARED_PORT = 6379


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Runs ``redis-server`` on ``127.0.0.1:port``; ``stop()`` then ``start()`` reuses the port.

    Use it as a context manager, or call :meth:`start` and :meth:`close` yourself.
    """

    def __init__(
        self, port: int | None = None, *, executable: str = "redis-server", start_timeout: float = 10.0
    ) -> None:
        if port == SHARED_PORT:
            raise ValueError(f"port {SHARED_PORT} belongs to the shared Redis; let RedisServer pick a free port")
        self.port = port or free_port()
        self.executable = executable
        self.start_timeout = start_timeout
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0: the whole server is the test's own)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers ``PING``."""
        if self.running:
            return
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="flask-wechat-redis-"))
        log = self._directory / "redis.log"
        self._process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._directory),
                "--logfile",
                str(log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.start_timeout
        while not self._answers_ping():
            if self._process.poll() is not None:
                self._process = None
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} exited while starting:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer within {self.start_timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the server and wait for it to exit (the port is free again afterwards)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def running_redis() -> Iterator[RedisServer]:
    """A private server for one test (a fixture's body): skipped without ``redis-server``, an error in CI."""
    import pytest

    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server must be on PATH in CI")
        pytest.skip("redis-server is not on PATH")
    with RedisServer() as server:
        yield server
