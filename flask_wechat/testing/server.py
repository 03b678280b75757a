"""Serve the fake WeChat over real loopback HTTP, with keep-alive and simulated latency.

Werkzeug's development handler closes every connection; this one keeps HTTP/1.1
connections open, so tests can prove that a client reuses its pooled connections
(``fake.connections``) and measure what a cold connection costs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .accounts import AppKind
from .fake import FakeWeChat

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["FakeWeChatServer", "describe", "serve_forever"]

_Answer = tuple[str, list[tuple[str, str]], list[bytes]]
#: The API host's paths: each request there costs ``request_latency`` (pages and control endpoints do not).
_API_PREFIXES = ("/sns/", "/cgi-bin/", "/wxa/")
#: The config keys of each kind of app, as flask_wechat reads them.
_CONFIG_PREFIX: dict[AppKind, str] = {
    "official_account": "WECHAT",
    "website": "WECHAT_OPEN",
    "miniprogram": "WECHAT_MINIPROGRAM",
}


def _call(app: WSGIApplication, environ: WSGIEnvironment) -> _Answer:
    """Run a WSGI app to completion: status, headers and body chunks."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(status, headers)]
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the WSGI app did not call start_response")
    return started[0][0], started[0][1], chunks


class _Server(ThreadedWSGIServer):
    owner: FakeWeChatServer


class _KeepAliveHandler(WSGIRequestHandler):
    """Werkzeug's handler (its environ, its dropped-connection handling) with a keep-alive run_wsgi.

    Werkzeug's own run_wsgi answers ``Connection: close`` and then drains the socket,
    which would swallow the next request of a kept-alive connection. Here the request
    body is read exactly and every answer is buffered and framed by Content-Length.
    """

    # Headers and body go out in two writes; without this Nagle + delayed ACK stall every
    # request after the first on a kept-alive connection by 40 ms.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        owner._opened(self.connection)
        try:
            if owner.connect_latency:
                time.sleep(owner.connect_latency)
            super().handle()
        finally:
            owner._closed(self.connection)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        stream: Any = environ["wsgi.input"]
        if environ.pop("wsgi.input_terminated", False):
            body = stream.read()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            status, headers, chunks = _call(self.server.app, environ)
        except Exception:  # noqa: BLE001 - like a real server, answer a crash with a 500 and keep serving
            self.log_error("Error on request:\n%s", traceback.format_exc())
            status, headers, chunks = (
                "500 INTERNAL SERVER ERROR",
                [("Content-Type", "text/plain")],
                [b"fake WeChat failed"],
            )
            self.close_connection = True
        self._send(status, headers, b"".join(chunks))

    def _send(self, status: str, headers: list[tuple[str, str]], content: bytes) -> None:
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        head = self.command == "HEAD"
        for key, value in headers:
            name = key.lower()
            if name not in ("transfer-encoding", "connection") and (name != "content-length" or head):
                self.send_header(key, value)
        if not head:
            self.send_header("Content-Length", str(len(content)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(content)
        self.wfile.flush()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # WeChat puts the app secret and tokens in the query string: log the path only.
        path = getattr(self, "path", "").partition("?")[0]
        self.log("info", '"%s %s" %s', getattr(self, "command", "-"), quote(path, safe="/%"), code)


class FakeWeChatServer:
    """A :class:`FakeWeChat` on a loopback port, in a daemon thread; also a context manager.

    ``request_latency`` is slept before answering each API request (``/sns/*``,
    ``/cgi-bin/*``, ``/wxa/*``: a simulated round trip); ``connect_latency`` once per
    new connection (a simulated TCP+TLS handshake).
    """

    def __init__(
        self,
        fake: FakeWeChat | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        request_latency: float = 0.0,
        connect_latency: float = 0.0,
    ) -> None:
        self.fake = FakeWeChat() if fake is None else fake
        self.host = host
        self.port = port
        self.request_latency = request_latency
        self.connect_latency = connect_latency
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, usable as both the open and the API base URL."""
        if self._server is None:
            raise RuntimeError("the fake WeChat server is not started; call start() first")
        return f"http://{self.host}:{self._server.port}"

    def bind(self) -> FakeWeChatServer:
        """Listen on the port without serving yet (``url`` becomes known)."""
        self._bound()
        return self

    def _bound(self) -> _Server:
        if self._server is None:
            try:
                server = _Server(self.host, self.port, self._app, handler=_KeepAliveHandler)
            except SystemExit as exc:  # werkzeug exits when the port is taken
                raise OSError(f"cannot listen on {self.host}:{self.port}") from exc
            server.owner = self
            self._server = server
        return self._server

    def start(self) -> FakeWeChatServer:
        """Serve in a daemon thread and return self."""
        server = self._bound()
        if self._thread is None:
            # A short poll interval makes stop() quick: tests start and stop one server each.
            serve = functools.partial(server.serve_forever, poll_interval=0.05)
            self._thread = threading.Thread(target=serve, name="fake-wechat", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl+C)."""
        server = self._bound()
        try:
            server.serve_forever()  # werkzeug's: returns on Ctrl+C and closes the socket
        finally:
            self._server = None
            self._close_connections()

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if thread is not None:
            server.shutdown()
            thread.join()
        server.server_close()
        self._close_connections()

    def __enter__(self) -> FakeWeChatServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _opened(self, sock: socket.socket) -> None:
        self.fake.note_connection()
        with self._lock:
            self._sockets.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _close_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.request_latency and environ.get("PATH_INFO", "").startswith(_API_PREFIXES):
            time.sleep(self.request_latency)
        return self.fake(environ, start_response)


def describe(server: FakeWeChatServer) -> str:
    """What a developer needs to point an app at a running fake: its URL, and each app's AppID and secret.

    The credentials are made up and known to this fake only, so printing them leaks nothing.
    """
    lines = [
        f" * Fake WeChat on {server.url} (Ctrl+C to stop). Not WeChat: anyone logs in as any test user.",
        " * Point your app at it:",
        f'     WECHAT_OPEN_BASE_URL = "{server.url}"',
        f'     WECHAT_API_BASE_URL = "{server.url}"',
        " * Its apps (made-up test credentials, known to this fake only):",
    ]
    for app in server.fake.apps.values():
        prefix = _CONFIG_PREFIX[app.kind]
        lines += [
            f"     {app.name} ({app.kind})",
            f'         {prefix}_APPID = "{app.appid}"',
            f'         {prefix}_SECRET = "{app.secret}"',
        ]
    if server.fake.corps:
        lines += [
            " * WeCom (企业微信) is served here too (qyapi.weixin.qq.com):",
            f'     WECHAT_WECOM_API_BASE_URL = "{server.url}"',
        ]
    for corp in server.fake.corps.values():
        lines.append(f'     {corp.name}: corpid "{corp.corpid}"')
        lines += [f'         {agent.name}: agentid {agent.agentid}, secret "{agent.secret}"' for agent in corp.agents]
        people = ", ".join([m.userid for m in corp.members] + [f"{p.key} (non-member)" for p in corp.non_members])
        lines.append(f"         people: {people}")
    users = ", ".join(user.key + (" (snapshot)" if user.snapshot else "") for user in server.fake.users.values())
    lines.append(f" * Test users: {users}")
    return "\n".join(lines)


def serve_forever(
    fake: FakeWeChat | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    request_latency: float = 0.0,
    connect_latency: float = 0.0,
) -> None:
    """Run a fake WeChat in the foreground (for a CLI); blocks until Ctrl+C."""
    server = FakeWeChatServer(fake, host, port, request_latency=request_latency, connect_latency=connect_latency)
    server.bind()
    print(describe(server), flush=True)
    server.serve_forever()
