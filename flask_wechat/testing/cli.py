"""``flask wechat fake-server``: the fake WeChat on its own port (registered as a ``flask_wechat.commands`` plugin)."""

from __future__ import annotations

import click

from .server import serve_forever

__all__ = ["fake_server"]


@click.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--rtt-ms", default=0.0, show_default=True, type=click.FloatRange(0), help="Simulated round trip per API call."
)
def fake_server(host: str, port: int, rtt_ms: float) -> None:
    """Run the built-in fake WeChat (both hosts) for local development and tests.

    It prints the URL to point WECHAT_OPEN_BASE_URL and WECHAT_API_BASE_URL at, and the
    AppID and secret of each of its apps (made-up test values) under their config keys.
    """
    serve_forever(host=host, port=port, request_latency=rtt_ms / 1000, connect_latency=2 * rtt_ms / 1000)
