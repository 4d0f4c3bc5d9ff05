"""Answer only to this server's own names: a request whose `Host` is not one of them gets 400 (DNS rebinding).

A web page on `rebind.attacker.example` can make its own name resolve to 127.0.0.1 and then send requests
that the browser treats as same-origin; the only trace is the `Host` header, which names the attacker's host.
Allowed: the loopback names, the address the server is bound to, this computer's addresses and host name when
it serves the network (`--listen`), the share link's host (`--share`), and the names given with
`--allowed-hosts` (`*.example.com` matches subdomains; `*` turns the check off).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Iterable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_ANY_ADDRESS = ("0.0.0.0", "::", "")
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_host(value: str) -> tuple[str, int | None] | None:
    """(name, port) of a `Host` header value (`name`, `name:port`, `[v6]:port`), lower-cased and without a
    trailing dot; None when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        if not bracket:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
        if not _NAME.fullmatch(name):
            return None
        name = name.rstrip(".")
    if not rest:
        return name, None
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        return None
    return name, int(rest[1:])


class AllowedHosts:
    """The host names this server answers to. `add` may be called while it serves (the share link's host is
    known only after the server has started)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names: set[str] = set()
        self._suffixes: set[str] = set()
        self._any = False
        self._lock = threading.Lock()
        for name in (*LOOPBACK_NAMES, *names):
            self.add(name)

    @classmethod
    def for_server(cls, bind: str, *, listen: bool, extra: Iterable[str] = ()) -> AllowedHosts:
        """Loopback, the bound address, every local address and the host name when serving the network, `extra`."""
        hosts = cls(extra)
        if listen or bind in _ANY_ADDRESS:
            hosts.add_all(local_names())
        elif bind:
            hosts.add(bind)
        return hosts

    def add(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        with self._lock:
            if name == "*":
                self._any = True
            elif name.startswith("*."):
                self._suffixes.add(name[1:])
            elif name:
                self._names.add(name)

    def add_all(self, names: Iterable[str]) -> None:
        for name in names:
            self.add(name)

    def allows(self, host_header: str) -> bool:
        with self._lock:
            if self._any:
                return True
            parsed = parse_host(host_header)
            if parsed is None:
                return False
            name = parsed[0]
            return name in self._names or any(name.endswith(suffix) for suffix in self._suffixes)

    def names(self) -> list[str]:
        with self._lock:
            return (
                sorted(self._names) + sorted("*" + s for s in self._suffixes) + (["*"] if self._any else [])
            )


def local_names() -> list[str]:
    """This computer's addresses (every interface, IPv4 and IPv6) and its host name."""
    names: list[str] = []
    try:
        import psutil

        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family in (socket.AF_INET, socket.AF_INET6):
                    names.append(address.address.split("%", 1)[0])  # an IPv6 link-local address's %zone
    except Exception as exc:  # noqa: BLE001 - without the list, --allowed-hosts still lets names in
        log.warning("could not list this computer's addresses: %s", exc)
    hostname = socket.gethostname().lower()
    if hostname:
        names += [hostname, f"{hostname}.local"]
    return names


class HostCheck:
    """ASGI middleware: an HTTP or WebSocket request whose `Host` is not allowed gets 400 before any handler."""

    def __init__(self, app: ASGIApp, hosts: AllowedHosts) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"host"), "")
            if not self.hosts.allows(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                response = PlainTextResponse(
                    "Unknown host name: this server answers only to its own names and addresses. "
                    "Its owner can add a name with --allowed-hosts.",
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
