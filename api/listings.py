"""The listing and housekeeping routes of A1111's `/sdapi/v1` that generation does not need: command-line
flags, embeddings, hypernetworks, Real-ESRGAN models, VAEs, UNet modules, scripts, extensions, interrogate,
refreshes, and `/internal/ping`. Each answers in A1111's shape (modules/api/models.py), empty lists where Easel
has nothing of the kind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.routing import BaseRoute

from api import a1111_translate
from api.http import ApiError, read_json
from api.schemas import A1111Body
from core.backend import EmbeddingInfo, ModelInfo
from core.images import ImageInputError, decode_image
from core.settings import Settings
from studio import Studio

log = logging.getLogger(__name__)

INTERROGATE_MODELS = ("clip", "deepdanbooru")
_BUILTIN_UPSCALERS = frozenset({"None", "Lanczos", "Nearest"})
_SCALE = re.compile(r"(?:^|[^0-9])(?:x([1-8])|([1-8])x)(?:[^0-9]|$)", re.IGNORECASE)


class InterrogateBody(A1111Body):
    image: str = Field(description="Base64 PNG, JPEG or WebP (a data: URL prefix is allowed)")
    model: str | None = "clip"


def embedding_item(info: EmbeddingInfo) -> dict[str, Any]:
    """A1111's `EmbeddingItem`."""
    return {
        "step": info.step,
        "sd_checkpoint": info.sd_checkpoint,
        "sd_checkpoint_name": info.sd_checkpoint_name,
        "shape": info.shape,
        "vectors": info.vectors,
    }


def fits(info: EmbeddingInfo, model: ModelInfo | None) -> bool:
    """Whether an embedding can be used with `model` (A1111 lists the others as skipped)."""
    if info.refusal is not None:
        return False
    if model is None or model.family is None:
        return True
    if info.sdxl != (model.family == "sdxl"):
        return False
    real_width = {"sd1": 768, "sd2": 1024}.get(model.family)
    return info.shape not in (768, 1024) or info.shape == real_width  # tiny test widths fit any


def upscaler_scale(name: str) -> int | None:
    """The scale a model upscaler's name states ("4x-UltraSharp", "RealESRGAN_x2plus"), else None."""
    match = _SCALE.search(name)
    return int(match.group(1) or match.group(2)) if match else None


def _shown_path(path: Path) -> str | None:
    """A path relative to the working folder, or None when it lies outside (absolute paths are never shown)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return None


def cmd_flags(settings: Settings | None) -> dict[str, Any]:
    """The effective command-line flags under A1111's names where one exists; no logins, no absolute paths."""
    s = settings or Settings()
    models = _shown_path(s.models_dir)

    def under(*parts: str) -> str | None:
        return None if models is None else "/".join((models, *parts))

    return {
        "data_dir": ".",
        "models_dir": models,
        "ckpt_dir": models,
        "ckpt": None,
        "vae_dir": under("VAE"),
        "vae_path": None,
        "embeddings_dir": under("embeddings"),
        "hypernetwork_dir": None,
        "lora_dir": under("Lora"),
        "esrgan_models_path": under("ESRGAN"),
        "realesrgan_models_path": under("RealESRGAN"),
        "gfpgan_models_path": under("GFPGAN"),
        "codeformer_models_path": under("Codeformer"),
        "outdir": _shown_path(s.outputs_dir),
        "styles_file": [],
        "listen": s.listen,
        "server_name": s.host,
        "port": s.port,
        "share": s.share,
        "api": s.api,
        "nowebui": False,
        "api_log": False,
        "gradio_auth": None,
        "gradio_auth_path": None,
        "api_auth": None,
        "xformers": s.xformers,
        "force_enable_xformers": False,
        "opt_sdp_attention": not s.xformers,
        "use_cpu": ["all"] if s.device == "cpu" else [],
        "device_id": None,
        "precision": "full" if s.dtype == "fp32" else "autocast",
        "no_half": s.dtype == "fp32",
        "no_half_vae": s.dtype == "fp32",
        "upcast_sampling": False,
        "medvram": False,
        "medvram_sdxl": False,
        "lowvram": False,
        "lowram": False,
        "disable_safe_unpickle": False,
        "enable_insecure_extension_access": False,
        "allow_code": False,
        "administrator": False,
        "cors_allow_origins": None,
        "cors_allow_origins_regex": None,
        "tls_keyfile": None,
        "tls_certfile": None,
        "subpath": None,
        "add_stop_route": False,
        "api_server_stop": False,
        "skip_load_model_at_start": False,
        "no_download_sd_model": True,
        "do_not_download_clip": True,
        "disable_all_extensions": True,
        "disable_extra_extensions": True,
        "freeze_settings": False,
        "hide_ui_dir_config": True,
        "max_batch_count": 16,
        "loglevel": None,
        "theme": None,
        "autolaunch": False,
        "easel_demo": s.demo,
        "easel_queue_size": s.queue_size,
        "easel_max_gpu_models": s.max_gpu_models,
        "easel_max_ram_models": s.max_ram_models,
        "easel_preview_every": s.preview_every,
    }


def add_listing_routes(
    router: APIRouter,
    studio: Studio,
    who: Callable[..., str],
    *,
    settings: Settings | None,
    scripts: Callable[..., dict[str, list[str]]],
) -> None:
    """Add the listing routes to the `/sdapi/v1` router. `scripts` is the `/scripts` route's function (so
    `/script-info` lists the same scripts)."""
    _add_file_listings(router, studio, who, settings=settings)
    _add_housekeeping_routes(router, who, scripts=scripts)


def _add_file_listings(
    router: APIRouter, studio: Studio, who: Callable[..., str], *, settings: Settings | None
) -> None:
    """The command-line flags, embeddings, hypernetworks, upscaler models, VAEs and UNet files."""

    @router.get("/cmd-flags")
    def get_cmd_flags(user: str = Depends(who)) -> dict[str, Any]:
        return cmd_flags(settings)

    @router.get("/embeddings")
    def embeddings(user: str = Depends(who)) -> dict[str, dict[str, Any]]:
        """`loaded`: usable with the caller's model; `skipped`: the others (refused files included)."""
        preferred = studio.catalog.preferred_model(user)
        model = next((m for m in studio.catalog.models() if m.name == preferred), None)
        loaded: dict[str, Any] = {}
        skipped: dict[str, Any] = {}
        for info in studio.catalog.embeddings():
            (loaded if fits(info, model) else skipped)[info.name] = embedding_item(info)
        return {"loaded": loaded, "skipped": skipped}

    @router.post("/refresh-embeddings")
    def refresh_embeddings(user: str = Depends(who)) -> None:
        studio.catalog.embeddings(refresh=True)

    @router.get("/hypernetworks")
    def hypernetworks(user: str = Depends(who)) -> list[dict[str, Any]]:
        return []  # hypernetworks are not supported

    @router.get("/realesrgan-models")
    def realesrgan_models(user: str = Depends(who)) -> list[dict[str, Any]]:
        """The model upscalers of models/upscalers/ (Easel runs any that spandrel reads, Real-ESRGAN or not)."""
        names = [n for n in studio.catalog.retouch_tools().upscalers if n not in _BUILTIN_UPSCALERS]
        return [{"name": name, "path": None, "scale": upscaler_scale(name)} for name in names]

    @router.get("/sd-vae")
    def sd_vae(user: str = Depends(who)) -> list[dict[str, Any]]:
        return [
            {"model_name": v.name, "filename": v.path} for v in studio.catalog.vaes() if v.refusal is None
        ]

    @router.post("/refresh-vae")
    def refresh_vae(user: str = Depends(who)) -> None:
        studio.catalog.vaes(refresh=True)

    @router.get("/sd-modules")
    def sd_modules(user: str = Depends(who)) -> list[dict[str, Any]]:
        return []  # separate UNet files (A1111's sd_unet) are not supported


def _add_housekeeping_routes(
    router: APIRouter, who: Callable[..., str], *, scripts: Callable[..., dict[str, list[str]]]
) -> None:
    """The script and extension listings, checkpoint (un)loading, and interrogate."""

    @router.get("/script-info")
    def script_info(user: str = Depends(who)) -> list[dict[str, Any]]:
        listed = scripts(user=user)
        return [
            {"name": name.lower(), "is_alwayson": False, "is_img2img": task == "img2img", "args": []}
            for task in ("txt2img", "img2img")
            for name in listed.get(task, [])
        ]

    @router.get("/extensions")
    def extensions(user: str = Depends(who)) -> list[dict[str, Any]]:
        return []  # A1111 extensions are not loaded

    @router.post("/unload-checkpoint")
    def unload_checkpoint(user: str = Depends(who)) -> dict[str, Any]:
        """Accepted and nothing done: models are shared by everyone's jobs and kept by the cache's budgets."""
        return {}

    @router.post("/reload-checkpoint")
    def reload_checkpoint(user: str = Depends(who)) -> dict[str, Any]:
        """Accepted and nothing done: the caller's model loads with their next job."""
        return {}

    @router.post("/interrogate")
    async def interrogate(request: Request, user: str = Depends(who)) -> dict[str, Any]:
        """Checks the body like A1111, then refuses with 501: no captioning model ships with Easel."""
        body = a1111_translate.parse_body(InterrogateBody, await read_json(request))
        model = (body.model or "clip").strip().lower()
        if model not in INTERROGATE_MODELS:
            raise a1111_translate.BadRequest(
                f"model: unknown interrogate model {body.model!r}; A1111 offers clip, deepdanbooru"
            )
        try:
            decode_image(a1111_translate.decode_b64(body.image, "image"))
        except ImageInputError as exc:
            raise a1111_translate.BadRequest(f"image: {exc}") from None
        raise ApiError(
            501,
            f"Interrogate ({model}) is not available: it needs a captioning model (CLIP interrogator with BLIP, "
            "or DeepDanbooru), and Easel ships none. Write the prompt yourself, or read an image's own "
            "prompt with POST /sdapi/v1/png-info.",
            error="NotImplemented",
        )


def internal_routes() -> list[BaseRoute]:
    """A1111's `/internal/ping`, to add to a router without its prefix (no login, as in A1111: it says only that
    the server is up)."""
    router = APIRouter(tags=["AUTOMATIC1111 API"])

    @router.get("/internal/ping")
    def ping() -> dict[str, Any]:
        return {}

    return list(router.routes)
