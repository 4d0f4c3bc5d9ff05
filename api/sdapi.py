"""AUTOMATIC1111's HTTP API (`/sdapi/v1/...`) over the Studio, so that existing A1111 clients work unchanged.

Every generation goes through `studio.jobs.submit` like a click in the UI: the same request models validate
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

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api import a1111_translate
from api import scripts as a1111_scripts
from api.a1111_translate import BadRequest, Plan
from api.http import (
    POLL_SECONDS,
    ApiError,
    JsonErrors,
    Logins,
    checked_picture,
    read_json,
    retry_after,
    submit_and_wait,
)
from api.listings import add_listing_routes, internal_routes
from api.options import encode_answer, job_options, resolve_vae, with_options
from api.retouch import add_sdapi_routes
from api.schemas import PngInfoBody
from core.images import encode_png
from core.infotext import parse_infotext
from core.pnginfo import read_text_chunks
from core.requests import GenerationRequest
from core.settings import Settings
from core.throttle import LoginThrottle
from core.users import UserBook
from gallery.store import GalleryImage
from studio import Job, JobState, RequestRefused, Studio, TooManyQueued
from studio.jobs import FINISHED, JobGroup
from studio.options import AdminOnly, OptionsError

log = logging.getLogger(__name__)

PREFIX = "/sdapi/v1"


def build_router(
    studio: Studio,
    users: UserBook | None,
    throttle: LoginThrottle | None = None,
    *,
    settings: Settings | None = None,
) -> APIRouter:
    """The `/sdapi/v1` routes over `studio`. With users (non-empty), every route needs HTTP Basic auth; wrong
    passwords count in `throttle` (one of its own when None). `settings` are what `/cmd-flags` shows."""
    router = APIRouter(prefix=PREFIX, tags=["AUTOMATIC1111 API"], route_class=JsonErrors)
    who = Logins(users, throttle)
    sdapi = _Sdapi(studio, users)
    _add_generation_routes(router, who, sdapi)
    _add_progress_routes(router, who, studio, users)
    _add_option_routes(router, who, sdapi)
    scripts = _add_model_routes(router, who, sdapi)
    _add_picture_routes(router, who)
    add_sdapi_routes(router, studio, who)  # /extra-single-image, /upscalers, /face-restorers (api.retouch)
    add_listing_routes(router, studio, who, settings=settings, scripts=scripts)  # listings, interrogate
    router.routes.extend(internal_routes())  # added without the prefix: served at /internal/ping
    return router


class _Sdapi:
    """What the generation and option routes share: the Studio, the users, and the model hashes learned from
    the infotexts of finished jobs (model name → short hash)."""

    def __init__(self, studio: Studio, users: UserBook | None) -> None:
        self.studio = studio
        self.users = users
        self.hashes: dict[str, str] = {}

    def resolve_model(self, text: str) -> str:
        return a1111_translate.resolve_model(text, self.studio.catalog.models(), self.hashes)

    def options(self, user: str) -> dict[str, Any]:
        """Every A1111 option as `user` sees it (studio/options.py), with their model and its hash."""
        model = self.studio.catalog.preferred_model(user)
        values = self.studio.options.values(user)
        return {**values, "sd_model_checkpoint": model, "sd_checkpoint_hash": self.hashes.get(model or "")}

    def is_admin(self, user: str) -> bool:
        return self.users.is_admin(user) if self.users else self.studio.roles.is_admin(user)

    def with_job_options(self, plan: Plan, raw: dict[str, Any], user: str) -> tuple[Plan, dict[str, Any]]:
        """The plan with the options its job runs with (the user's, then `override_settings`; api/options.py)."""
        overrides = raw.get("override_settings")
        try:
            used, warnings = job_options(
                self.studio.options.values(user),
                overrides if isinstance(overrides, dict) else None,
                self.studio.catalog.vaes,
            )
        except OptionsError as exc:
            raise ApiError(422, str(exc)) from None
        request = with_options(plan.request, used)
        return dataclasses.replace(plan, request=request, warnings=[*plan.warnings, *warnings]), used

    def answer(
        self, job: Job | ScriptResult, plan: Plan, timestamp: str, used: dict[str, Any]
    ) -> dict[str, Any]:
        images = list(job.images)
        warnings = list(plan.warnings)
        if job.state is JobState.CANCELLED:
            warnings.append(f"interrupted: {len(images)} of {job.request.image_count} images were finished")
        for image in images:
            params = parse_infotext(image.infotext).params
            if params.get("Model") and params.get("Model hash"):
                self.hashes[params["Model"]] = params["Model hash"]
        encoded = (  # in `samples_format`, with the infotext as A1111 carries it (the gallery keeps its PNG)
            [
                a1111_translate.encode_b64(
                    encode_answer(self.studio.gallery.file_path(image.id).read_bytes(), image.infotext, used)
                )
                for image in images
            ]
            if plan.send_images
            else []
        )
        info = a1111_translate.info_json(
            job.request,
            seeds=[image.seed for image in images],
            infotexts=[image.infotext for image in images],
            timestamp=timestamp,
            warnings=warnings,
            typed=plan.request,
        )
        return {"images": encoded, "parameters": plan.parameters, "info": info}

    async def run_script(self, plan: Plan, user: str) -> ScriptResult:
        """Run the plan's A1111 script through the Studio and wait: what it made, shaped as a finished job."""
        studio = self.studio
        if plan.script == a1111_translate.SD_UPSCALE:  # the Retouch SD upscale of the picture
            upscalers = [a1111_scripts.NO_UPSCALER, *studio.catalog.retouch_tools().upscalers]
            retouch = await run_in_threadpool(
                a1111_scripts.sd_upscale_request, plan, upscalers, studio.presets_book.styles()
            )
            job = await submit_and_wait(studio, retouch, user, "The SD upscale failed.")
            request = plan.request.model_copy(update={"seed": job.request.seed})
            return ScriptResult(list(job.images), job.state, request)
        if plan.script == a1111_translate.XYZ_PLOT:  # the grid first, then (include_lone_images) the cells
            plot, lone_images = await run_in_threadpool(a1111_scripts.xyz_plot, plan, self.resolve_model)
            group = await self.run_group(lambda: studio.groups.run_plot(plot, user), user)
            images = [group.grid, *(group.cell_images if lone_images else [])] if group.grid else group.images
        else:  # prompts from file or textbox: one job per line
            requests = await run_in_threadpool(a1111_scripts.prompt_requests, plan, self.resolve_model)
            group = await self.run_group(
                lambda: studio.groups.submit_group(requests, user, kind="prompts"), user
            )
            images = group.images
        request = plan.request.model_copy(update={"seed": images[0].seed}) if images else plan.request
        return ScriptResult(images, group.state, request)

    async def run_group(self, start: Callable[[], JobGroup], user: str) -> JobGroup:
        try:
            group = await run_in_threadpool(start)
        except RequestRefused as exc:
            raise ApiError(422, str(exc)) from None
        except TooManyQueued as exc:  # a script's job group counts as one waiting job of the caller
            raise ApiError(429, str(exc), headers={"Retry-After": retry_after(self.studio, user)}) from None
        except ValueError as exc:  # a plot the Studio cannot run (PlotError)
            raise BadRequest(str(exc)) from None
        while not group.wait(0):
            await anyio.sleep(POLL_SECONDS)
        if group.state is JobState.FAILED:
            raise ApiError(500, group.error or "The script failed.")
        return group

    async def generate(self, request: Request, user: str, plan_for: Callable[..., Plan]) -> dict[str, Any]:
        # 1. map the A1111 body onto our request model (decoding images: off the event loop)
        raw = await read_json(request)
        plan = await run_in_threadpool(plan_for, raw, self.resolve_model)
        plan, used = await run_in_threadpool(self.with_job_options, plan, raw, user)
        # 2. queue it like a click in the UI
        timestamp = a1111_translate.job_timestamp()
        if plan.request.restore_faces and not self.studio.catalog.retouch_tools().face_restorers:
            plan.warnings.append(f"restore_faces: {NO_FACE_RESTORER_HELP}")
        # 3. wait, then answer with what was made (an interrupted job keeps its finished images); a script's
        #    jobs are answered as one job (api/scripts.py)
        job: Job | ScriptResult
        if plan.script:
            job = await self.run_script(plan, user)
        else:
            job = await submit_and_wait(self.studio, plan.request, user, "The generation failed.", request)
        return await run_in_threadpool(self.answer, job, plan, timestamp, used)


def _add_generation_routes(router: APIRouter, who: Logins, sdapi: _Sdapi) -> None:
    @router.post("/txt2img")
    async def txt2img(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        return await sdapi.generate(request, user, a1111_translate.txt2img_plan)

    @router.post("/img2img")
    async def img2img(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """img2img; with a `mask`, inpaint (every pixel outside the mask is kept exactly)."""
        return await sdapi.generate(request, user, a1111_translate.img2img_plan)


def _add_progress_routes(router: APIRouter, who: Logins, studio: Studio, users: UserBook | None) -> None:
    @router.get("/progress")
    def progress(skip_current_image: bool = False, user: str = Depends(who)) -> dict[str, Any]:
        """The caller's running job, else their oldest waiting one; idle (progress 0, job_count 0) otherwise."""
        return _progress(studio, studio.jobs.latest_job(user), skip_current_image)

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


def _add_option_routes(router: APIRouter, who: Logins, sdapi: _Sdapi) -> None:
    studio = sdapi.studio

    @router.get("/options")
    def get_options(user: str = Depends(who)) -> dict[str, Any]:
        return sdapi.options(user)

    @router.post("/options")
    async def set_options(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """Keep the caller's options (`sd_model_checkpoint` picks their model; server-wide keys: admins only,
        else 403). Unknown keys or bad values: 422 naming them, and nothing is kept. Answers with the options."""
        changes = await read_json(request)
        checkpoint = changes.get("sd_model_checkpoint")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise ApiError(422, "sd_model_checkpoint: must be a model name (a string)")
        name = await run_in_threadpool(sdapi.resolve_model, checkpoint) if checkpoint else None
        try:
            if isinstance(changes.get("sd_vae"), str):
                changes = {**changes, "sd_vae": resolve_vae(changes["sd_vae"], studio.catalog.vaes())}
            await run_in_threadpool(lambda: studio.options.update(user, changes, admin=sdapi.is_admin(user)))
        except OptionsError as exc:
            raise ApiError(422, str(exc)) from None
        except AdminOnly as exc:
            raise ApiError(403, str(exc), error="Forbidden") from None
        if name is not None:
            try:
                studio.catalog.prefer_model(user, name)
            except RequestRefused as exc:
                raise ApiError(422, str(exc)) from None
        return sdapi.options(user)


def _add_model_routes(router: APIRouter, who: Logins, sdapi: _Sdapi) -> Callable[..., dict[str, list[str]]]:
    """The models, LoRAs, samplers, styles, scripts and memory; answers the `/scripts` route's function."""
    studio = sdapi.studio

    @router.get("/sd-models")
    def sd_models(user: str = Depends(who)) -> list[dict[str, Any]]:
        return [
            a1111_translate.model_item(m, sdapi.hashes.get(m.name))
            for m in a1111_translate.usable_models(studio.catalog.models())
        ]

    @router.post("/refresh-checkpoints")
    def refresh_checkpoints(user: str = Depends(who)) -> dict[str, Any]:
        studio.catalog.models(refresh=True)
        return {}

    @router.get("/loras")
    def loras(user: str = Depends(who)) -> list[dict[str, Any]]:
        # A1111's shape; the path is relative to the models folder (A1111 gives the absolute one)
        usable = [lora for lora in studio.catalog.loras() if lora.refusal is None]
        return [{"name": lora.name, "alias": lora.name, "path": lora.path, "metadata": {}} for lora in usable]

    @router.post("/refresh-loras")
    def refresh_loras(user: str = Depends(who)) -> None:
        studio.catalog.loras(refresh=True)

    @router.get("/samplers")
    def samplers(user: str = Depends(who)) -> list[dict[str, Any]]:
        return a1111_translate.sampler_items()

    @router.get("/latent-upscale-modes")
    def latent_upscale_modes(user: str = Depends(who)) -> list[dict[str, Any]]:
        return a1111_translate.latent_upscale_mode_items()

    @router.get("/schedulers")
    def schedulers(user: str = Depends(who)) -> list[dict[str, Any]]:
        return a1111_translate.scheduler_items()

    @router.get("/prompt-styles")
    def prompt_styles(user: str = Depends(who)) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt}
            for s in studio.presets_book.styles()
        ]

    @router.get("/scripts")
    def scripts(user: str = Depends(who)) -> dict[str, list[str]]:
        """The scripts `script_name` can run here, by task (sd upscale, x/y/z plot, prompts from file or textbox)."""
        return {task: list(names) for task, names in a1111_translate.SCRIPTS.items()}

    @router.get("/memory")
    def memory(user: str = Depends(who)) -> dict[str, Any]:
        return _memory(studio)

    return scripts


def _add_picture_routes(router: APIRouter, who: Logins) -> None:
    @router.post("/png-info")
    async def png_info(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        body = a1111_translate.parse_body(PngInfoBody, await read_json(request))
        return await run_in_threadpool(_png_info, body)


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
    job = studio.jobs.latest_job(user)
    if (job is None or job.state in FINISHED) and admin:
        job = studio.jobs.running_job()
    if job is None or job.state in FINISHED:
        return
    try:
        studio.jobs.cancel(job.id, user, admin=admin)
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
        place = studio.jobs.queue_position(job)
        textinfo = f"Waiting in the queue (position {place})" if place else "Waiting in the queue"
        return {**idle, "textinfo": textinfo}
    preview = job.preview
    current_image = None
    if preview is not None and not skip_current_image:
        current_image = a1111_translate.encode_b64(encode_png(preview))
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
    status = studio.catalog.status()
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


def _png_info(body: PngInfoBody) -> dict[str, Any]:
    data, _ = checked_picture(body.image, "image")
    geninfo, items = read_text_chunks(data)
    return {"info": geninfo, "items": items, "parameters": a1111_translate.png_info_parameters(geninfo)}
