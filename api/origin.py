"""Refuse cross-origin writes: a web page on another site must not drive a local Easel (CSRF).

Browsers send an `Origin` header with every POST. When it names another host than the one the request
was sent to, the request came from some other site's page; it is refused before any handler runs.
Requests without an `Origin` (scripts, gradio_client, curl) are not browser cross-site requests and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.hosts import parse_host

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SameOriginWrites:
    """ASGI middleware: non-GET requests whose Origin differs from their Host get 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin")
            if origin is not None and not same_origin(origin, headers.get("host", "")):
                response = PlainTextResponse("Cross-origin request refused", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def same_origin(origin: str, host: str) -> bool:
    """True when the Origin header names the host (and port) the request was sent to. Anything odd (a port
    that is not a number, a malformed address) is not the same origin."""
    try:
        parts = urlsplit(origin)
        scheme, origin_name, origin_port = parts.scheme, parts.hostname, parts.port
    except ValueError:  # "http://127.0.0.1:7860.evil.example", "http://[::1"
        return False
    if scheme not in ("http", "https") or not origin_name:
        return False  # includes the opaque origin "null"
    request = parse_host(host)
    if request is None:
        return False
    default = 443 if scheme == "https" else 80
    return (origin_name.rstrip("."), origin_port or default) == (request[0], request[1] or default)
