"""Retouch over HTTP: A1111's `/sdapi/v1/extra-single-image`, `/upscalers` and `/face-restorers`, the A1111 rembg
extension's `POST /rembg`, and the native `POST /easel/v1/retouch` that takes a whole operation chain.

Every route builds a `RetouchRequest` and goes through `studio.jobs.submit` like a click in the Retouch tab: the same
validation, the same fair queue, logins and ownership as the other routes, and the result saved to the gallery.
Operations that need model files which are not on disk (face restoration without weights) are refused with 422
and a message saying what to download and where, before anything is queued.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from PIL import Image, PngImagePlugin
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import a1111_translate
from api.a1111_translate import BadRequest
from api.http import ApiError, JsonErrors, Logins, checked_picture, read_json, submit_and_wait
from api.schemas import ExtraSingleImageBody, RembgBody
from core.backend import RetouchTools
from core.images import MAX_PIXELS, encode_png
from core.infotext import INFOTEXT_KEY
from core.pnginfo import read_text_chunks
from core.recipes import RecipeError, parse_recipe
from core.requests import validation_message
from core.retouch import RetouchRequest
from core.retouch_ops import MAX_UPSCALE, RemoveBackgroundOp, RestoreFacesOp, UpscaleOp
from core.throttle import LoginThrottle
from core.users import UserBook
from studio import Job, JobState, Studio

log = logging.getLogger(__name__)

NATIVE_PREFIX = "/easel/v1"
_NO_UPSCALER = "None"


# --- shared ---------------------------------------------------------------------------------------------


def check_weights(ops: Sequence[object], tools: RetouchTools) -> None:
    """Refuse (422) operations whose model files are missing, saying what to download and where."""
    for op in ops:
        if isinstance(op, RestoreFacesOp) and not tools.face_restorers:
            raise ApiError(
                422, tools.missing.get("restore_faces") or "No face restoration model is installed."
            )


def _build(ops: Sequence[Any], image: bytes, seed: int = -1, **fields: Any) -> RetouchRequest:
    try:
        return RetouchRequest(image=image, ops=list(ops), seed=seed, **fields)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


async def run_job(studio: Studio, request: RetouchRequest, user: str, client: Request | None = None) -> Job:
    """Queue the request for `user` and wait for it; 422/429/503 before queueing, 500 when it fails. With
    `client` (the HTTP request), the job is dropped when the client hangs up before it starts."""
    check_weights(request.ops, studio.catalog.retouch_tools())
    job = await submit_and_wait(studio, request, user, "The retouch failed.", client)
    if job.state is JobState.CANCELLED:
        raise ApiError(500, "The retouch was interrupted.", error="Interrupted")
    return job


def _result(studio: Studio, job: Job, source: bytes) -> bytes:
    """The job's last picture as PNG bytes (the source itself when the chain only exported files)."""
    if job.images:
        return studio.gallery.file_path(job.images[-1].id).read_bytes()
    return source


# --- A1111 /sdapi/v1 routes -------------------------------------------------------------------------------


def add_sdapi_routes(router: APIRouter, studio: Studio, who: Logins) -> None:
    """Add `/extra-single-image`, `/upscalers` and `/face-restorers` to the `/sdapi/v1` router."""

    @router.get("/upscalers")
    def upscalers(user: str = Depends(who)) -> list[dict[str, Any]]:
        """ "None", the resamplers, and the model upscalers found in models/upscalers/."""
        names = [_NO_UPSCALER, *studio.catalog.retouch_tools().upscalers]
        return [
            {
                "name": name,
                "model_name": name if name not in (_NO_UPSCALER, "Lanczos", "Nearest") else None,
                "model_path": None,
                "model_url": None,
                "scale": 4,
            }
            for name in names
        ]

    @router.get("/face-restorers")
    def face_restorers(user: str = Depends(who)) -> list[dict[str, Any]]:
        return [{"name": name, "cmd_dir": None} for name in studio.catalog.retouch_tools().face_restorers]

    @router.post("/extra-single-image")
    async def extra_single_image(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """Face restoration (when weights are present) and upscaling (resamplers or model upscalers), as a
        retouch job; the image keeps the source's infotext."""
        body = a1111_translate.parse_body(ExtraSingleImageBody, await read_json(request))
        tools = await run_in_threadpool(studio.catalog.retouch_tools)
        plan = await run_in_threadpool(_extras_plan, body, tools)
        source, geninfo, ops = plan
        if not ops:  # upscaler "None" and no face restoration: nothing to do, as in A1111
            return {"image": a1111_translate.encode_b64(_with_infotext(source, geninfo)), "html_info": ""}
        job = await run_job(studio, _build(ops, source), user, request)
        data = await run_in_threadpool(_result, studio, job, source)
        return {"image": a1111_translate.encode_b64(_with_infotext(data, geninfo)), "html_info": ""}


def _with_infotext(data: bytes, geninfo: str) -> bytes:
    """PNG bytes of the picture carrying only `geninfo` as its `parameters` (A1111's extras answer)."""
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        chunks = PngImagePlugin.PngInfo()
        if geninfo:
            chunks.add_text(INFOTEXT_KEY, geninfo)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", pnginfo=chunks)
    return buffer.getvalue()


def _face_model(tools: RetouchTools, family: str) -> str:
    """The installed face restorer whose name mentions `family` (else the first one installed)."""
    for name in tools.face_restorers:
        if family.casefold() in name.casefold():
            return name
    return tools.face_restorers[0] if tools.face_restorers else ""


def _extras_plan(body: ExtraSingleImageBody, tools: RetouchTools) -> tuple[bytes, str, list[Any]]:
    """(source bytes, its infotext, the operations) for an A1111 extras body."""
    # 1. face restoration first (A1111's default order), when asked for
    ops: list[Any] = _face_ops(body, tools)
    # 2. the upscalers must exist; a second upscaler blend is not offered
    _check_upscalers(body, tools)
    data, picture = checked_picture(body.image, "image")
    geninfo, _ = read_text_chunks(data)
    # 3. the upscale to the new size
    upscale = _upscale_op(body, picture)
    if upscale is not None:
        ops.append(upscale)
    if body.upscale_first and len(ops) > 1 and isinstance(ops[-1], UpscaleOp):
        ops.insert(0, ops.pop())
    return data, geninfo, ops


def _face_ops(body: ExtraSingleImageBody, tools: RetouchTools) -> list[Any]:
    ops: list[Any] = []
    for field_name, family in (("gfpgan_visibility", "gfpgan"), ("codeformer_visibility", "codeformer")):
        visibility = getattr(body, field_name) or 0.0
        if visibility == 0:
            continue
        if not 0 < visibility <= 1:
            raise BadRequest(f"{field_name}: must be from 0 to 1")
        if not tools.face_restorers:
            raise ApiError(
                422, f"{field_name}: " + (tools.missing.get("restore_faces") or "no face restoration model")
            )
        ops.append(RestoreFacesOp(model=_face_model(tools, family), visibility=visibility))
    return ops


def _check_upscalers(body: ExtraSingleImageBody, tools: RetouchTools) -> None:
    for field_name in ("upscaler_1", "upscaler_2"):
        value = getattr(body, field_name) or _NO_UPSCALER
        if value != _NO_UPSCALER and value not in tools.upscalers:
            names = ", ".join([_NO_UPSCALER, *tools.upscalers])
            raise BadRequest(f"{field_name}: unknown upscaler {value!r}; available: {names}")
    if (body.upscaler_2 or _NO_UPSCALER) != _NO_UPSCALER and (body.extras_upscaler_2_visibility or 0) > 0:
        raise BadRequest("upscaler_2: blending a second upscaler is not supported; set upscaler_2 to None")


def _upscale_op(body: ExtraSingleImageBody, picture: Image.Image) -> UpscaleOp | None:
    """A1111: mode 0 scales by a factor, mode 1 covers width × height, then may crop."""
    upscaler = body.upscaler_1 or _NO_UPSCALER
    if upscaler == _NO_UPSCALER:
        return None
    mode = body.resize_mode or 0
    if mode == 0:
        factor = 2.0 if body.upscaling_resize is None else body.upscaling_resize
        if not 1 <= factor <= MAX_UPSCALE:
            raise BadRequest(f"upscaling_resize: must be from 1 to {MAX_UPSCALE:g}")
        size = (round(picture.width * factor), round(picture.height * factor))
        op: dict[str, Any] = {"upscaler": upscaler, "scale": factor}
    elif mode == 1:
        width, height = body.upscaling_resize_w or 0, body.upscaling_resize_h or 0
        if width < 1 or height < 1:
            raise BadRequest("upscaling_resize_w and upscaling_resize_h: must be at least 1")
        factor = max(width / picture.width, height / picture.height)
        size = (round(picture.width * factor), round(picture.height * factor))
        crop = body.upscaling_crop is not False
        target = (width, height) if crop else size
        op = {"upscaler": upscaler, "target_width": target[0], "target_height": target[1], "crop": crop}
    else:
        raise BadRequest("resize_mode: must be 0 (scale by upscaling_resize) or 1 (to a width and height)")
    if size[0] * size[1] > MAX_PIXELS:
        raise BadRequest(
            f"the result would be {size[0]}×{size[1]}, more than {MAX_PIXELS:,} pixels; ask for less"
        )
    try:
        return UpscaleOp(**op)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


# --- /rembg and /easel/v1/retouch ---------------------------------------------------------------------------


def build_router(studio: Studio, users: UserBook | None, throttle: LoginThrottle | None = None) -> APIRouter:
    """`POST /rembg` (the A1111 rembg extension's shape) and `POST /easel/v1/retouch` (a whole chain); wrong
    passwords count in `throttle`."""
    router = APIRouter(tags=["Retouch"], route_class=JsonErrors)
    who = Logins(users, throttle)

    @router.post("/rembg")
    async def rembg(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """Cut the subject out: `{"input_image": b64, "model": "", "return_mask": false, "alpha_matting": false}`
        → `{"image": b64 PNG}` (RGBA, or the mask with `return_mask`). `model` names a file in models/rembg/;
        "" (or "auto") uses one when present, else the model-free cut-out; "key" always the model-free one."""
        body = a1111_translate.parse_body(RembgBody, await read_json(request))
        data, _ = await run_in_threadpool(checked_picture, body.input_image, "input_image")
        tools = await run_in_threadpool(studio.catalog.retouch_tools)
        name = (body.model or "").strip()
        if name in ("", "auto", "key"):
            op = RemoveBackgroundOp(method=name or "auto", alpha_matting=bool(body.alpha_matting))
        elif name in tools.segmenters:
            op = RemoveBackgroundOp(method="model", model=name, alpha_matting=bool(body.alpha_matting))
        else:
            available = ", ".join(tools.segmenters) or "none installed"
            raise BadRequest(
                f"model: unknown background removal model {name!r} (available: {available}); put the model "
                'file into models/rembg/, or send "model": "" for the model-free cut-out'
            )
        job = await run_job(studio, _build([op], data), user, request)
        result = await run_in_threadpool(_result, studio, job, data)
        if body.return_mask:
            result = await run_in_threadpool(_alpha_png, result)
        return {"image": a1111_translate.encode_b64(result)}

    @router.post(f"{NATIVE_PREFIX}/retouch")
    async def retouch(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """`{"image": b64, "ops": [{"op": "remove_background"}, {"op": "upscale", "scale": 2}], "seed": -1}`
        (or `"recipe": {...}` instead of `ops`) → the picture (b64 PNG with its metadata), exports (SVG, zip),
        the recipe and the infotext. A `replace_background` operation may name a `preset` and `styles`; they
        are applied once, at submit (an unknown one is a 422), and the recipe records what was applied."""
        raw = await read_json(request)
        retouch_request = await run_in_threadpool(_native_request, raw)
        job = await run_job(studio, retouch_request, user, request)
        return await run_in_threadpool(_native_answer, studio, job, retouch_request)

    return router


def _alpha_png(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        mask = picture.getchannel("A") if picture.mode == "RGBA" else Image.new("L", picture.size, 255)
    return encode_png(mask)


_NATIVE_FIELDS = {"image", "ops", "recipe", "seed", "title", "keep_steps"}


def _native_request(raw: Mapping[str, Any]) -> RetouchRequest:
    unknown = sorted(set(raw) - _NATIVE_FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field(s) {unknown}; send image, ops (or recipe) and optionally seed, title and keep_steps"
        )
    if not isinstance(raw.get("image"), str):
        raise BadRequest("image: send the picture as a base64 PNG, JPEG or WebP string")
    image = a1111_translate.decode_b64(raw["image"], "image")
    if ("ops" in raw) == ("recipe" in raw):
        raise BadRequest("send either ops (a list of operations) or recipe (a recipe object), not both")
    seed = raw.get("seed", -1)
    if "recipe" in raw:
        try:
            ops: list[Any] = list(parse_recipe(raw["recipe"]).ops)
        except RecipeError as exc:
            raise BadRequest(str(exc)) from None
    else:
        if not isinstance(raw["ops"], list):
            raise BadRequest('ops: a list of operations, e.g. [{"op": "upscale", "scale": 2}]')
        ops = [_decoded_masks(op, index) for index, op in enumerate(raw["ops"])]
    extra = {name: raw[name] for name in ("title", "keep_steps") if name in raw}
    return _build(ops, image, seed, **extra)


def _decoded_masks(op: Any, index: int) -> Any:
    """An erase operation's mask arrives as base64 text; everything else as it is."""
    if isinstance(op, dict) and op.get("op") == "erase" and isinstance(op.get("mask"), str):
        return {**op, "mask": a1111_translate.decode_b64(op["mask"], f"ops[{index}].mask")}
    return op


def _native_answer(studio: Studio, job: Job, request: RetouchRequest) -> dict[str, Any]:
    images = [studio.gallery.file_path(image.id).read_bytes() for image in job.images]
    exports = [
        {
            "name": path.name,
            "media_type": "image/svg+xml" if path.suffix == ".svg" else "application/zip",
            "data": base64.b64encode(path.read_bytes()).decode("ascii"),
        }
        for path in job.exports
    ]
    return {
        "images": [a1111_translate.encode_b64(data) for data in images],
        "ids": [image.id for image in job.images],
        "infotexts": [image.infotext for image in job.images],
        "exports": exports,
        "recipe": job.request.recipe(),  # type: ignore[union-attr]
        "seed": job.request.seed,
    }
