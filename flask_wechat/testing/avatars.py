"""The fake's avatar images: what its users' ``headimgurl`` points at, drawn from a seed, with no network.

WeChat serves avatars from its CDN as ``https://thirdwx.qlogo.cn/mmopen/vi_32/<token>/<size>``
(the last segment is the size: ``0`` for 640 px, or 46, 64, 96, 132). The fake answers the
same paths itself, under its own address, with an SVG drawn from the token: a symmetric
5x5 pattern in a colour of its own, like a default avatar generator. The seed
:data:`DEFAULT_SEED` draws WeChat's grey default avatar (what snapshot users show).
The images hold no text, so nothing a user chose ever reaches the SVG.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from werkzeug.wrappers import Request, Response

__all__ = ["DEFAULT_AVATAR", "PATH_PREFIX", "avatar_path", "avatar_svg", "serve"]

#: Every avatar path starts here, as on WeChat's CDN.
PATH_PREFIX: Final = "/mmopen/"
#: The size segment -> pixels (WeChat's: 0 is the 640 px original).
SIZES: Final = {"0": 640, "46": 46, "64": 64, "96": 96, "132": 132}
_DEFAULT_SIZE: Final = 132
_GRID: Final = 5


def _token(seed: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest() * 2).decode().rstrip("=")[:86]


def avatar_path(seed: str) -> str:
    """The avatar path of ``seed`` (a user's key), shaped like WeChat's: ``/mmopen/vi_32/<token>/132``."""
    return f"{PATH_PREFIX}vi_32/{_token(seed)}/132"


DEFAULT_SEED: Final = "default"
#: WeChat's grey default avatar: what a snapshot page shows for every visitor.
DEFAULT_AVATAR: Final = avatar_path(DEFAULT_SEED)


def _grey(size: int) -> str:
    # A grey head and shoulders on light grey, like WeChat's default avatar.
    unit = size / 132
    return (
        f'<rect width="{size}" height="{size}" fill="#d9d9d9"/>'
        f'<circle cx="{66 * unit:g}" cy="{52 * unit:g}" r="{24 * unit:g}" fill="#fff"/>'
        f'<rect x="{26 * unit:g}" y="{86 * unit:g}" width="{80 * unit:g}" height="{46 * unit:g}" '
        f'rx="{23 * unit:g}" fill="#fff"/>'
    )


def _pattern(token: str, size: int) -> str:
    digest = hashlib.sha256(token.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    cell = size / (_GRID + 1)
    margin = cell / 2
    bits = int.from_bytes(digest[2:], "big")
    cells = []
    for y in range(_GRID):
        for x in range((_GRID + 1) // 2):  # left half and middle column, mirrored
            if bits >> (y * 3 + x) & 1:
                for column in {x, _GRID - 1 - x}:
                    cells.append(f"M{margin + column * cell:g} {margin + y * cell:g}h{cell:g}v{cell:g}h-{cell:g}z")
    return (
        f'<rect width="{size}" height="{size}" fill="hsl({hue},45%,92%)"/>'
        f'<path fill="hsl({hue},55%,45%)" d="{"".join(cells)}"/>'
    )


def avatar_svg(token: str, size: int = _DEFAULT_SIZE) -> str:
    """The image at ``token`` (the path between ``/mmopen/`` and the size), ``size`` pixels square."""
    drawing = _grey(size) if token == f"vi_32/{_token(DEFAULT_SEED)}" else _pattern(token, size)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" shape-rendering="crispEdges">{drawing}</svg>'
    )


def serve(request: Request) -> Response:
    """``GET /mmopen/.../<size>``: any token draws an image, as any stored URL of WeChat's CDN does."""
    if request.method not in ("GET", "HEAD"):
        return Response("use GET", 405, content_type="text/plain; charset=utf-8")
    token, _, size = request.path[len(PATH_PREFIX) :].rpartition("/")
    if not token:
        return Response("not found", 404, content_type="text/plain; charset=utf-8")
    return Response(
        avatar_svg(token, SIZES.get(size, _DEFAULT_SIZE)),
        200,
        content_type="image/svg+xml",
        headers={
            "Cache-Control": "public, max-age=86400",
            # An image, never a document: opened on its own it runs nothing.
            "Content-Security-Policy": "default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )
