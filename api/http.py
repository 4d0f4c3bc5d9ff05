"""The HTTP plumbing the Easel routes share: A1111-shaped errors (`ApiError` and the `JsonErrors` route
class), the `Logins` dependency (HTTP Basic auth, throttled), reading a JSON body with caps, and queueing a job
and waiting for it (`submit_and_wait`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import anyio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from PIL import Image
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from api import a1111_translate
from api.a1111_translate import BadRequest
from core.errors import EaselError, NotFound
from core.images import ImageInputError, decode_image
from core.throttle import LoginThrottle
from core.users import UserBook
from studio import LOCAL_USER, Job, JobState, NotAllowed, QueueFull, RequestRefused, Studio, TooManyQueued

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 60 * 2**20
POLL_SECONDS = 0.05
_REMEMBERED_LOGINS = 256
MAX_JSON_DEPTH = 64
_DISCONNECT_POLL_SECONDS = 0.5


class ApiError(EaselError):
    """An answer other than 200: A1111's error body `{"error": ..., "detail": ...}`."""

    def __init__(
        self, status: int, detail: str, *, error: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error or _ERROR_NAMES.get(status, "HTTPException")
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "detail": self.detail}, status_code=self.status, headers=self.headers
        )


_ERROR_NAMES = {
    401: "Unauthorized",
    403: "Forbidden",
    413: "PayloadTooLarge",
    422: "ValidationError",
    429: "TooManyRequests",
    500: "GenerationFailed",
    503: "QueueFull",
}


# Easel's error bases (core/errors.py) as HTTP statuses: the one place they are mapped. The first that fits wins.
STATUS_OF_ERROR: tuple[tuple[type[EaselError], int], ...] = (
    (TooManyQueued, 429),
    (QueueFull, 503),
    (RequestRefused, 422),
    (NotAllowed, 403),
    (NotFound, 404),
)


def status_of(error: BaseException) -> int | None:
    """The HTTP status of one of Easel's errors, None for anything else (which is a 500)."""
    for base, status in STATUS_OF_ERROR:
        if isinstance(error, base):
            return status
    return None


def _message(error: BaseException) -> str:
    """The error's own message (a KeyError's str() would quote it)."""
    return str(error.args[0]) if len(error.args) == 1 else str(error)


class JsonErrors(APIRoute):
    """Routes whose errors are A1111-shaped JSON: ApiError as it says, Easel's errors with the status their
    base maps to (`STATUS_OF_ERROR`), anything unexpected as a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except ApiError as exc:
                return exc.response()
            except (HTTPException, RequestValidationError):
                raise
            except Exception as exc:  # noqa: BLE001 - the client gets a JSON 500, the log gets the trace
                status = status_of(exc)
                if status is not None:  # refused, not allowed, busy: the message says why
                    return ApiError(status, _message(exc)).response()
                log.exception("%s %s failed", request.method, request.url.path)
                return ApiError(500, f"{type(exc).__name__}: {exc}", error="InternalError").response()

        return handle_errors


class Logins:
    """The `user` dependency: HTTP Basic auth against the UserBook, or the local user when there is none.

    Passwords may be slow hashes; a successful login is remembered (as a salted digest) so that clients
    that poll `/progress` do not pay for the hash every time. Wrong passwords count in `throttle` (shared
    with the page's login form); while the name or the address is locked, the answer is 429.
    """

    def __init__(self, users: UserBook | None, throttle: LoginThrottle | None = None) -> None:
        self.users = users
        self.throttle = throttle or LoginThrottle()
        self._salt = secrets.token_bytes(16)
        self._known: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> str:
        if not self.users:
            return LOCAL_USER
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise _unauthorized("Log in: this API needs HTTP Basic auth (user name and password).")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _unauthorized("Malformed HTTP Basic credentials.") from None
        key = hashlib.sha256(self._salt + credentials.encode("utf-8")).digest()
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        name, sep, password = credentials.partition(":")
        address = request.client.host if request.client else ""
        wait = self.throttle.retry_after(name, address)
        if wait is not None:
            raise ApiError(
                429,
                f"Too many failed logins; try again in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )
        if not sep or not self.users.authenticate(name, password):
            self.throttle.failed(name, address)
            raise _unauthorized("Wrong user name or password.")
        self.throttle.succeeded(name)
        with self._lock:
            if len(self._known) >= _REMEMBERED_LOGINS:
                self._known.clear()
            self._known[key] = name
        return name


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, headers={"WWW-Authenticate": 'Basic realm="Easel API"'})


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request body as a JSON object, read with a size cap (413 beyond it). An empty body is `{}`."""
    too_large = ApiError(413, f"The request body is larger than {limit // 2**20} MB; send smaller images.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        return {}
    too_deep = ApiError(422, f"The body's JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
    try:
        value = json.loads(data)
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"The body is not valid JSON: {exc}") from None
    if _nesting(value) > MAX_JSON_DEPTH:
        raise too_deep
    if not isinstance(value, dict):
        raise ApiError(422, "The body must be a JSON object.")
    return value


def _nesting(value: Any) -> int:
    """How deep the arrays and objects of a parsed JSON value go (walked without recursion)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


async def _finished(studio: Studio, job: Job, client: Request | None) -> None:
    """Wait for the job; while it waits for its turn, drop it when the client has hung up."""
    next_check = 0.0
    while not job.wait(0):
        if client is not None and job.state is JobState.QUEUED and anyio.current_time() >= next_check:
            next_check = anyio.current_time() + _DISCONNECT_POLL_SECONDS
            if await client.is_disconnected():
                log.info("%s's client went away before job %s started; dropping it", job.user, job.id)
                studio.jobs.cancel(job.id, job.user)
        await anyio.sleep(POLL_SECONDS)


def retry_after(studio: Studio, user: str) -> str:
    """Seconds until the user's oldest waiting job should start (a slot frees then); 10 while unknown."""
    job = studio.jobs.latest_job(user)
    estimate = studio.jobs.wait_estimate(job) if job is not None else None
    return str(max(1, min(600, round(estimate if estimate is not None else 10))))


async def submit_and_wait(
    studio: Studio, request: Any, user: str, failed: str, client: Request | None = None
) -> Job:
    """Queue `request` for `user` and wait until it ends: 422 when the Studio refuses it (unknown model, style,
    tool), 429 when the user has as many jobs waiting as one may, 503 when the queue is full, 500 with the
    job's error (else `failed`) when it fails. With `client` (the HTTP request), a job whose client hangs up
    before it starts is cancelled."""
    try:
        job = studio.jobs.submit(request, user)
    except TooManyQueued as exc:  # refused (422) and a full queue (503) go to JsonErrors as they are
        raise ApiError(429, str(exc), headers={"Retry-After": retry_after(studio, user)}) from None
    await _finished(studio, job, client)
    if job.state is JobState.FAILED:
        raise ApiError(500, job.error or failed)
    return job


def checked_picture(encoded: str, where: str) -> tuple[bytes, Image.Image]:
    data = a1111_translate.decode_b64(encoded, where)
    try:
        return data, decode_image(data)
    except ImageInputError as exc:
        raise BadRequest(f"{where}: {exc}") from None
