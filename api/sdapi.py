"""AUTOMATIC1111's HTTP API (`/sdapi/v1/...`) over the Studio, so that existing A1111 clients work unchanged.

Every generation goes through `Studio.submit` like a click in the UI: the same request models validate
it, the same fair queue orders it, and its images are saved to the gallery (there is no "don't save": the
gallery is the record of what was made; `save_images` and the `samples_save` option are accepted and have no
effect). The images a route returns are those saved files, PNGs that carry their `parameters` chunk, re-encoded
when the caller's `samples_format` option asks for JPEG or WebP (api/options.py).

Differences from A1111, on purpose:

- Logins: when the app has users, every route needs HTTP Basic auth and jobs belong to that user.
  `/progress` only ever shows the caller's own job; `/interrupt` and `/skip` stop the caller's own job,
  and an admin (`:admin` in the auth file) with no job of their own stops whichever job is running;
  `/options` are the caller's own (studio/options.py), `sd_model_checkpoint` included; server-wide keys
  (output folders, caches) only admins may change (403). Unknown option keys and wrong types get 422.
- Bad values are refused with 422 and a readable `detail` instead of being clamped; unknown body fields
  are ignored as A1111 ignores them; work we cannot do (an unknown script, always-on scripts) gets 422, and
  `initial_noise_multiplier` other than 1 a line in the answer's `info["warnings"]`. The scripts `sd upscale`,
  `x/y/z plot` and `prompts from file or textbox` run (api/scripts.py). `styles` are applied as in A1111 (the
  styles of `presets/styles.csv` and `presets/user/styles.csv`); an unknown style name gets 422.
- `/skip` stops the caller's job like `/interrupt` (there is no per-image skip); finished images are kept.
- Images are never fetched from URLs; bodies over 60 MB get 413, JSON nested deeper than 64 levels 422.
- Each user may have `--max-queued-per-user` jobs waiting (admins: any number); one more gets 429 with a
  `Retry-After`, and a full queue gets 503. A job whose client hangs up before it starts is dropped.
- Wrong passwords are throttled per user name and per address (429 with `Retry-After`; core/throttle.py).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from api import a1111
from api import scripts as a1111_scripts
from api.a1111 import BadRequest, Plan
from api.options import encode_answer, job_options, resolve_vae, with_options
from api.schemas import PngInfoBody
from core.images import ImageInputError, decode_image, encode_png
from core.infotext import parse_infotext
from core.pnginfo import read_text_chunks
from core.requests import GenerationRequest
from core.settings import Settings
from core.throttle import LoginThrottle
from core.users import UserBook
from gallery.store import GalleryImage
from studio import LOCAL_USER, Job, JobState, NotAllowed, QueueFull, Studio, TooManyQueued, UnknownModel
from studio.groups import JobGroup
from studio.jobs import FINISHED
from studio.options import AdminOnly, OptionsError

log = logging.getLogger(__name__)

PREFIX = "/sdapi/v1"
MAX_BODY_BYTES = 60 * 2**20
_POLL_SECONDS = 0.05
_REMEMBERED_LOGINS = 256
MAX_JSON_DEPTH = 64
_DISCONNECT_POLL_SECONDS = 0.5


class ApiError(Exception):
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


class _JsonErrors(APIRoute):
    """Routes whose errors are A1111-shaped JSON: ApiError as it says, anything unexpected as a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except ApiError as exc:
                return exc.response()
            except BadRequest as exc:
                return ApiError(422, str(exc)).response()
            except NotAllowed as exc:  # not the user's to change: says whose it is
                return ApiError(403, str(exc)).response()
            except (HTTPException, RequestValidationError):
                raise
            except Exception as exc:  # noqa: BLE001 - the client gets a JSON 500, the log gets the trace
                log.exception("%s %s failed", request.method, request.url.path)
                return ApiError(500, f"{type(exc).__name__}: {exc}", error="InternalError").response()

        return handle_errors


class _Logins:
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
                studio.cancel(job.id, job.user)
        await anyio.sleep(_POLL_SECONDS)


def _retry_after(studio: Studio, user: str) -> str:
    """Seconds until the user's oldest waiting job should start (a slot frees then); 10 while unknown."""
    job = studio.latest_job(user)
    estimate = studio.wait_estimate(job) if job is not None else None
    return str(max(1, min(600, round(estimate if estimate is not None else 10))))


async def submit_and_wait(
    studio: Studio, request: Any, user: str, failed: str, client: Request | None = None
) -> Job:
    """Queue `request` for `user` and wait until it ends: 422 when the Studio refuses it (unknown model, style,
    tool), 429 when the user has as many jobs waiting as one may, 503 when the queue is full, 500 with the
    job's error (else `failed`) when it fails. With `client` (the HTTP request), a job whose client hangs up
    before it starts is cancelled."""
    try:
        job = studio.submit(request, user)
    except UnknownModel as exc:
        raise ApiError(422, str(exc)) from None
    except TooManyQueued as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": _retry_after(studio, user)}) from None
    except QueueFull as exc:
        raise ApiError(503, str(exc)) from None
    await _finished(studio, job, client)
    if job.state is JobState.FAILED:
        raise ApiError(500, job.error or failed)
    return job


def build_router(
    studio: Studio,
    users: UserBook | None,
    throttle: LoginThrottle | None = None,
    *,
    settings: Settings | None = None,
) -> APIRouter:
    """The `/sdapi/v1` routes over `studio`. With users (non-empty), every route needs HTTP Basic auth; wrong
    passwords count in `throttle` (one of its own when None). `settings` are what `/cmd-flags` shows."""
    router = APIRouter(prefix=PREFIX, tags=["AUTOMATIC1111 API"], route_class=_JsonErrors)
    who = _Logins(users, throttle)
    hashes: dict[str, str] = {}  # model name → short hash, learned from the infotexts of finished jobs

    def resolve_model(text: str) -> str:
        return a1111.resolve_model(text, studio.models(), hashes)

    def options(user: str) -> dict[str, Any]:
        """Every A1111 option as `user` sees it (studio/options.py), with their model and its hash."""
        model = studio.preferred_model(user)
        values = studio.options.values(user)
        return {**values, "sd_model_checkpoint": model, "sd_checkpoint_hash": hashes.get(model or "")}

    def is_admin(user: str) -> bool:
        return users.is_admin(user) if users else studio.is_admin(user)

    def with_job_options(plan: Plan, raw: dict[str, Any], user: str) -> tuple[Plan, dict[str, Any]]:
        """The plan with the options its job runs with (the user's, then `override_settings`; api/options.py)."""
        overrides = raw.get("override_settings")
        try:
            used, warnings = job_options(
                studio.options.values(user), overrides if isinstance(overrides, dict) else None, studio.vaes
            )
        except OptionsError as exc:
            raise ApiError(422, str(exc)) from None
        request = with_options(plan.request, used)
        return dataclasses.replace(plan, request=request, warnings=[*plan.warnings, *warnings]), used

    def answer(job: Job, plan: Plan, timestamp: str, used: dict[str, Any]) -> dict[str, Any]:
        images = list(job.images)
        warnings = list(plan.warnings)
        if job.state is JobState.CANCELLED:
            warnings.append(f"interrupted: {len(images)} of {job.request.image_count} images were finished")
        for image in images:
            params = parse_infotext(image.infotext).params
            if params.get("Model") and params.get("Model hash"):
                hashes[params["Model"]] = params["Model hash"]
        encoded = (  # in `samples_format`, with the infotext as A1111 carries it (the gallery keeps its PNG)
            [
                a1111.encode_b64(
                    encode_answer(studio.image_path(image.id).read_bytes(), image.infotext, used)
                )
                for image in images
            ]
            if plan.send_images
            else []
        )
        info = a1111.info_json(
            job.request,
            seeds=[image.seed for image in images],
            infotexts=[image.infotext for image in images],
            timestamp=timestamp,
            warnings=warnings,
            typed=plan.request,
        )
        return {"images": encoded, "parameters": plan.parameters, "info": info}

    async def run_script(plan: Plan, user: str) -> ScriptResult:
        """Run the plan's A1111 script through the Studio and wait: what it made, shaped as a finished job."""
        if plan.script == a1111.SD_UPSCALE:  # the Retouch SD upscale of the picture
            upscalers = [a1111_scripts.NO_UPSCALER, *studio.retouch_tools().upscalers]
            retouch = await run_in_threadpool(
                a1111_scripts.sd_upscale_request, plan, upscalers, studio.styles()
            )
            job = await submit_and_wait(studio, retouch, user, "The SD upscale failed.")
            request = plan.request.model_copy(update={"seed": job.request.seed})
            return ScriptResult(list(job.images), job.state, request)
        if plan.script == a1111.XYZ_PLOT:  # the grid first, then (include_lone_images) the cells
            plot, lone_images = await run_in_threadpool(a1111_scripts.xyz_plot, plan, resolve_model)
            group = await run_group(lambda: studio.run_plot(plot, user), user)
            images = [group.grid, *(group.cell_images if lone_images else [])] if group.grid else group.images
        else:  # prompts from file or textbox: one job per line
            requests = await run_in_threadpool(a1111_scripts.prompt_requests, plan, resolve_model)
            group = await run_group(lambda: studio.submit_group(requests, user, kind="prompts"), user)
            images = group.images
        request = plan.request.model_copy(update={"seed": images[0].seed}) if images else plan.request
        return ScriptResult(images, group.state, request)

    async def run_group(start: Callable[[], JobGroup], user: str) -> JobGroup:
        try:
            group = await run_in_threadpool(start)
        except UnknownModel as exc:
            raise ApiError(422, str(exc)) from None
        except TooManyQueued as exc:  # a script's job group counts as one waiting job of the caller
            raise ApiError(429, str(exc), headers={"Retry-After": _retry_after(studio, user)}) from None
        except ValueError as exc:  # a plot the Studio cannot run (PlotError)
            raise BadRequest(str(exc)) from None
        while not group.wait(0):
            await anyio.sleep(_POLL_SECONDS)
        if group.state is JobState.FAILED:
            raise ApiError(500, group.error or "The script failed.")
        return group

    async def generate(request: Request, user: str, plan_for: Callable[..., Plan]) -> dict[str, Any]:
        # 1. map the A1111 body onto our request model (decoding images: off the event loop)
        raw = await read_json(request)
        plan = await run_in_threadpool(plan_for, raw, resolve_model)
        plan, used = await run_in_threadpool(with_job_options, plan, raw, user)
        # 2. queue it like a click in the UI
        timestamp = a1111.job_timestamp()
        if plan.request.restore_faces and not studio.retouch_tools().face_restorers:
            plan.warnings.append(f"restore_faces: {NO_FACE_RESTORER_HELP}")
        # 3. wait, then answer with what was made (an interrupted job keeps its finished images); a script's
        #    jobs are answered as one job (api/scripts.py)
        if plan.script:
            job = await run_script(plan, user)
        else:
            job = await submit_and_wait(studio, plan.request, user, "The generation failed.", request)
        return await run_in_threadpool(answer, job, plan, timestamp, used)

    # -- generation ------------------------------------------------------------------------------
    @router.post("/txt2img")
    async def txt2img(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        return await generate(request, user, a1111.txt2img_plan)

    @router.post("/img2img")
    async def img2img(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """img2img; with a `mask`, inpaint (every pixel outside the mask is kept exactly)."""
        return await generate(request, user, a1111.img2img_plan)

    # -- progress and stopping -------------------------------------------------------------------
    @router.get("/progress")
    def progress(skip_current_image: bool = False, user: str = Depends(who)) -> dict[str, Any]:
        """The caller's running job, else their oldest waiting one; idle (progress 0, job_count 0) otherwise."""
        return _progress(studio, studio.latest_job(user), skip_current_image)

    @router.post("/interrupt")
    def interrupt(user: str = Depends(who)) -> dict[str, Any]:
        """Stop the caller's running job (else their oldest waiting one) within one step; an admin with
        no job of their own stops the running job, whoever's it is."""
        _stop_current(studio, user, admin=bool(users and users.is_admin(user)))
        return {}

    @router.post("/skip")
    def skip(user: str = Depends(who)) -> dict[str, Any]:
        """As /interrupt: there is no per-image skip; the images finished so far are kept."""
        _stop_current(studio, user, admin=bool(users and users.is_admin(user)))
        return {}

    # -- options and models ----------------------------------------------------------------------
    @router.get("/options")
    def get_options(user: str = Depends(who)) -> dict[str, Any]:
        return options(user)

    @router.post("/options")
    async def set_options(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """Keep the caller's options (`sd_model_checkpoint` picks their model; server-wide keys: admins only,
        else 403). Unknown keys or bad values: 422 naming them, and nothing is kept. Answers with the options."""
        changes = await read_json(request)
        checkpoint = changes.get("sd_model_checkpoint")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise ApiError(422, "sd_model_checkpoint: must be a model name (a string)")
        name = await run_in_threadpool(resolve_model, checkpoint) if checkpoint else None
        try:
            if isinstance(changes.get("sd_vae"), str):
                changes = {**changes, "sd_vae": resolve_vae(changes["sd_vae"], studio.vaes())}
            await run_in_threadpool(lambda: studio.options.update(user, changes, admin=is_admin(user)))
        except OptionsError as exc:
            raise ApiError(422, str(exc)) from None
        except AdminOnly as exc:
            raise ApiError(403, str(exc), error="Forbidden") from None
        if name is not None:
            try:
                studio.prefer_model(user, name)
            except UnknownModel as exc:
                raise ApiError(422, str(exc)) from None
        return options(user)

    @router.get("/sd-models")
    def sd_models(user: str = Depends(who)) -> list[dict[str, Any]]:
        return [a1111.model_item(m, hashes.get(m.name)) for m in a1111.usable_models(studio.models())]

    @router.post("/refresh-checkpoints")
    def refresh_checkpoints(user: str = Depends(who)) -> dict[str, Any]:
        studio.models(refresh=True)
        return {}

    @router.get("/loras")
    def loras(user: str = Depends(who)) -> list[dict[str, Any]]:
        # A1111's shape; the path is relative to the models folder (A1111 gives the absolute one)
        usable = [lora for lora in studio.loras() if lora.refused is None]
        return [{"name": lora.name, "alias": lora.name, "path": lora.path, "metadata": {}} for lora in usable]

    @router.post("/refresh-loras")
    def refresh_loras(user: str = Depends(who)) -> None:
        studio.loras(refresh=True)

    @router.get("/samplers")
    def samplers(user: str = Depends(who)) -> list[dict[str, Any]]:
        return a1111.sampler_items()

    @router.get("/latent-upscale-modes")
    def latent_upscale_modes(user: str = Depends(who)) -> list[dict[str, Any]]:
        return a1111.latent_upscale_mode_items()

    @router.get("/schedulers")
    def schedulers(user: str = Depends(who)) -> list[dict[str, Any]]:
        return a1111.scheduler_items()

    @router.get("/prompt-styles")
    def prompt_styles(user: str = Depends(who)) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt}
            for s in studio.styles()
        ]

    @router.get("/scripts")
    def scripts(user: str = Depends(who)) -> dict[str, list[str]]:
        """The scripts `script_name` can run here, by task (sd upscale, x/y/z plot, prompts from file or textbox)."""
        return {task: list(names) for task, names in a1111.SCRIPTS.items()}

    @router.get("/memory")
    def memory(user: str = Depends(who)) -> dict[str, Any]:
        return _memory(studio)

    # -- pictures --------------------------------------------------------------------------------
    @router.post("/png-info")
    async def png_info(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        body = a1111.parse_body(PngInfoBody, await read_json(request))
        return await run_in_threadpool(_png_info, body)

    # -- retouch: /extra-single-image, /upscalers, /face-restorers (api.retouch) --------------------------
    from api.retouch import add_sdapi_routes

    add_sdapi_routes(router, studio, who)

    # -- listings, interrogate, refreshes (api.listings); /internal/ping sits outside /sdapi/v1 -------------
    from api.listings import add_listing_routes, internal_routes

    add_listing_routes(router, studio, who, settings=settings, scripts=scripts)
    router.routes.extend(internal_routes())  # added without the prefix: served at /internal/ping
    return router


# --- helpers of the routes ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScriptResult:
    """What a script's jobs made, read by the answer as a finished job is."""

    images: list[GalleryImage]
    state: JobState
    request: GenerationRequest


NO_FACE_RESTORER_HELP = (
    "no face restorer is installed, so the pictures were not restored (their infotext says so); put "
    "GFPGANv1.4.safetensors (or a RestoreFormer) into models/face_restore/"
)


def _stop_current(studio: Studio, user: str, *, admin: bool = False) -> None:
    job = studio.latest_job(user)
    if (job is None or job.state in FINISHED) and admin:
        job = studio.running_job()
    if job is None or job.state in FINISHED:
        return
    try:
        studio.cancel(job.id, user, admin=admin)
    except KeyError:  # finished and forgotten meanwhile
        pass


def _progress(studio: Studio, job: Job | None, skip_current_image: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "skipped": False,
        "interrupted": False,
        "stopping_generation": False,
        "job": "",
        "job_count": 0,
        "job_timestamp": "",
        "job_no": 0,
        "sampling_step": 0,
        "sampling_steps": 0,
    }
    idle = {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
    if job is None:
        return idle
    if job.state in FINISHED:
        state["interrupted"] = job.state is JobState.CANCELLED
        idle["textinfo"] = {
            JobState.DONE: "Done",
            JobState.CANCELLED: "Interrupted",
            JobState.FAILED: f"Failed: {job.error}",
        }[job.state]
        return idle

    batches = job.request.batch_count
    per_batch = max(1, job.total // batches) if job.total else job.request.steps
    job_no = min(job.step // per_batch, batches - 1)
    state.update(
        job=job.request.task,
        job_count=batches,
        job_no=job_no,
        sampling_step=job.step - job_no * per_batch,
        sampling_steps=per_batch,
        interrupted=job.cancel_requested,
    )
    if job.state is JobState.QUEUED:
        place = studio.queue_position(job)
        textinfo = f"Waiting in the queue (position {place})" if place else "Waiting in the queue"
        return {**idle, "textinfo": textinfo}
    preview = job.preview
    current_image = None
    if preview is not None and not skip_current_image:
        current_image = a1111.encode_b64(encode_png(preview))
    return {
        "progress": min(1.0, job.step / job.total) if job.total else 0.0,
        "eta_relative": job.eta_seconds() or 0.0,
        "state": state,
        "current_image": current_image,
        "textinfo": f"Sampling step {job.step}/{job.total}" if job.step else "Loading the model",
    }


def _memory(studio: Studio) -> dict[str, Any]:
    try:
        import psutil

        rss = psutil.Process(os.getpid()).memory_info().rss
        total = psutil.virtual_memory().total
        ram: dict[str, Any] = {"free": total - rss, "used": rss, "total": total}
    except Exception as exc:  # noqa: BLE001 - A1111 reports the error in place of the figures
        ram = {"error": str(exc)}
    status = studio.status()
    if status.memory_total_mb is None:
        cuda: dict[str, Any] = {"error": f"unavailable (models run on {status.device})"}
    else:
        total_b = int(status.memory_total_mb * 2**20)
        used_b = int((status.memory_used_mb or 0) * 2**20)
        cuda = {
            "system": {"free": total_b - used_b, "used": used_b, "total": total_b},
            "device": status.device,
        }
    return {"ram": ram, "cuda": cuda}


def _checked_picture(encoded: str, where: str) -> tuple[bytes, Image.Image]:
    data = a1111.decode_b64(encoded, where)
    try:
        return data, decode_image(data)
    except ImageInputError as exc:
        raise BadRequest(f"{where}: {exc}") from None


def _png_info(body: PngInfoBody) -> dict[str, Any]:
    data, _ = _checked_picture(body.image, "image")
    geninfo, items = read_text_chunks(data)
    return {"info": geninfo, "items": items, "parameters": a1111.png_info_parameters(geninfo)}
