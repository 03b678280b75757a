"""A requests transport adapter that calls a WSGI app in-process instead of opening a socket.

Mount it on a session (``session.mount("http://fake.wechat/", WSGIAdapter(fake))``)
and code written for the real WeChat API talks to the fake unchanged, with no port.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from http.client import HTTPMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from requests.adapters import BaseAdapter
from requests.cookies import extract_cookies_to_jar
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["WSGIAdapter"]


class _RawBody(io.BytesIO):
    """The body as ``Response.raw``; ``_original_response.msg`` is where requests reads Set-Cookie."""

    def __init__(self, body: bytes, headers: HTTPMessage) -> None:
        super().__init__(body)
        self._original_response = self
        self.msg = headers


def _request_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes):
        return body
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk) for chunk in body)


class WSGIAdapter(BaseAdapter):
    """Answer requests from ``app`` in-process: the whole body is buffered, ``timeout`` is ignored."""

    def __init__(self, app: WSGIApplication) -> None:
        super().__init__()
        self.app = app

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        """Run ``app`` on the prepared request and wrap its answer as a :class:`requests.Response`."""
        url = request.url or "/"
        parts = urlsplit(url)
        builder = EnvironBuilder(
            path=parts.path or "/",
            base_url=f"{parts.scheme}://{parts.netloc}",
            query_string=parts.query,
            method=request.method or "GET",
            headers=[
                (key, value if isinstance(value, str) else value.decode("latin-1"))
                for key, value in request.headers.items()
            ],
            data=_request_body(request.body),
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        app_iter, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        try:
            body = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()

        message = HTTPMessage()
        for key, value in headers.items():
            message[key] = value
        code, _, reason = status.partition(" ")
        response = Response()
        response.status_code = int(code)
        response.reason = reason
        response.headers = CaseInsensitiveDict(headers.items())
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = _RawBody(body, message)
        response.url = url
        response.request = request
        response.connection = self  # type: ignore[assignment]  # requests only calls send() on it
        extract_cookies_to_jar(response.cookies, request, response.raw)  # type: ignore[no-untyped-call,unused-ignore]
        return response

    def close(self) -> None:
        """Nothing to release: no connections are held."""
