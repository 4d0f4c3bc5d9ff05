"""The page's logins (Gradio's `POST /login` form and its session cookie), made harder to abuse.

- Back-off: a `LoginThrottle` counts wrong passwords per user name and per client address; while either is
  locked, `POST /login` answers 429 with `Retry-After`, without checking the password.
- Sessions end: the session cookie gets a `Max-Age`, and a session older than that is forgotten by the server
  too (its token is dropped from Gradio's table), so a copied cookie stops working.
- Logging out takes a `POST /logout` (which cross-site pages cannot send: see api/origin.py); `GET /logout`,
  which any page could trigger with an image tag, answers 405 and changes nothing.

Gradio keeps its sessions in `app.tokens` (token → user) and names its cookies `access-token-<cookie id>` and
`access-token-unsecure-<cookie id>`; this middleware reaches them through the app in the ASGI scope.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.throttle import LoginThrottle

log = logging.getLogger(__name__)

LOGIN_PATHS = ("/login", "/login/")
LOGOUT_PATHS = ("/logout", "/logout/")
COOKIE_PREFIX = "access-token-"
MAX_FORM_BYTES = 64 * 1024


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def too_many_logins(seconds: int) -> JSONResponse:
    return JSONResponse(
        {"error": "TooManyLogins", "detail": f"Too many failed logins; try again in {seconds} seconds."},
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


class SessionTimes:
    """When each session token was issued, and whether it is past the limit. Thread-safe."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.seconds = seconds
        self.clock = clock
        self._issued: dict[str, float] = {}  # session token → when it was issued
        self._lock = threading.Lock()

    def issued(self, token: str) -> None:
        now = self.clock()
        with self._lock:
            self._issued[token] = now
            for old, when in list(self._issued.items()):
                if now - when > self.seconds:
                    del self._issued[old]

    def expired(self, tokens: list[str]) -> list[str]:
        """Those of `tokens` past the limit (forgotten here from now on)."""
        now = self.clock()
        with self._lock:
            gone = [t for t in tokens if t in self._issued and now - self._issued[t] > self.seconds]
            for token in gone:
                del self._issued[token]
        return gone

    def forget(self, tokens: list[str]) -> None:
        with self._lock:
            for token in tokens:
                self._issued.pop(token, None)


class LoginGuard:
    """ASGI middleware around Gradio's login, logout and session cookie (see the module's docstring)."""

    def __init__(self, app: ASGIApp, throttle: LoginThrottle, sessions: SessionTimes) -> None:
        self.app = app
        self.throttle = throttle
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                self._expire(scope)
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path in LOGIN_PATHS and method == "POST":
            await self._login(scope, receive, send)
        elif path in LOGOUT_PATHS:
            await self._logout(scope, receive, send)
        else:
            self._expire(scope)
            await self.app(scope, receive, send)

    # -- POST /login -----------------------------------------------------------------------------------------
    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await PlainTextResponse("Login form too large", status_code=413)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            form = await Request(scope, replay).form()
            user = str(form.get("username") or "").strip()
        except Exception:  # noqa: BLE001 - an unreadable form: Gradio answers it as it would
            user = ""
        replayed = False
        address = client_address(scope)
        wait = self.throttle.retry_after(user, address)
        if wait is not None:
            log.warning("login for %r from %s refused: locked for %d s more", user, address, wait)
            await too_many_logins(wait)(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 200:
                    self.throttle.succeeded(user)
                    message = {**message, "headers": self._with_max_age(message.get("headers", []))}
                elif status in (400, 401, 403):
                    self.throttle.failed(user, address)
            await send(message)

        await self.app(scope, replay, watch)

    def _with_max_age(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The response's session cookies with a Max-Age; their token is recorded with the time it was issued."""
        max_age = int(self.sessions.seconds)
        changed = []
        for key, value in headers:
            if key.lower() == b"set-cookie" and value.startswith(COOKIE_PREFIX.encode()):
                self.sessions.issued(value.split(b"=", 1)[1].split(b";", 1)[0].decode("latin-1"))
                value = value + f"; Max-Age={max_age}".encode()
            changed.append((key, value))
        return changed

    # -- sessions --------------------------------------------------------------------------------------------
    def _expire(self, scope: Scope) -> None:
        """Forget the request's session when it is older than the limit (the request then has no login)."""
        tokens = _session_tokens(scope)
        if not tokens:
            return
        table = getattr(scope.get("app"), "tokens", None)
        for token in self.sessions.expired(tokens):
            if isinstance(table, dict):
                table.pop(token, None)

    # -- /logout ---------------------------------------------------------------------------------------------
    async def _logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            response = PlainTextResponse(
                "Log out with POST /logout.", status_code=405, headers={"Allow": "POST"}
            )
            await response(scope, receive, send)
            return
        app: Any = scope.get("app")
        table = getattr(app, "tokens", None)
        tokens = _session_tokens(scope)
        if isinstance(table, dict):
            users = {table[t] for t in tokens if t in table}
            for token, user in list(table.items()):  # every session of the user, as Gradio's own logout does
                if user in users:
                    table.pop(token, None)
        self.sessions.forget(tokens)
        response = RedirectResponse(url=scope.get("root_path", "") + "/", status_code=303)
        cookie_id = getattr(app, "cookie_id", None)
        if cookie_id is not None:
            for name in (f"{COOKIE_PREFIX}{cookie_id}", f"{COOKIE_PREFIX}unsecure-{cookie_id}"):
                response.delete_cookie(name, path="/")
        await response(scope, receive, send)


def _session_tokens(scope: Scope) -> list[str]:
    """The values of the request's Gradio session cookies."""
    header = b"; ".join(v for k, v in scope["headers"] if k.lower() == b"cookie").decode("latin-1")
    tokens = []
    for pair in header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.startswith(COOKIE_PREFIX) and value:
            tokens.append(value.strip().strip('"'))
    return tokens
