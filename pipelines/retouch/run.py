"""Running a retouch request: its operations in order, each one's output feeding the next.

Plain operations (upscale, restore faces, enhance, remove background) call the operations library; diffusion
operations (SD upscale, replace background, erase) lease their model from the pipeline manager and sample
through the img2img / inpaint paths. Exports (SVG, logo zip) are handed over as files, the final picture as a
GeneratedImage with an A1111-style infotext line and the chain's recipe in our metadata chunk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core.backend import ExportedFile, GeneratedImage, JobCancelled, JobFailed, Progress
from core.images import decode_image
from core.infotext import STYLES_KEY, format_infotext, parse_infotext
from core.pnginfo import read_text_chunks
from core.recipes import RECIPE_CHUNK_FIELD
from core.retouch import RetouchRequest
from core.retouch_ops import (
    EnhanceOp,
    EraseOp,
    LogoPackOp,
    RemoveBackgroundOp,
    ReplaceBackgroundOp,
    RestoreFacesOp,
    SdUpscaleOp,
    UpscaleOp,
    VectorizeOp,
)
from core.version import INFOTEXT_VERSION
from pipelines.manager import PipelineManager
from pipelines.preview import latent_preview
from pipelines.registry import ModelEntry, ModelRegistry
from pipelines.retouch import MissingWeights, RetouchError
from pipelines.retouch.upscale import UpscalerCache
from pipelines.sampling import StepCallback
from pipelines.tasks import task_pipeline

log = logging.getLogger(__name__)

Emit = Callable[[object], None]


@dataclass
class RetouchResources:
    """What the backend lends a retouch job: models, the device, and its caches of loaded upscalers/restorers."""

    registry: ModelRegistry
    manager: PipelineManager
    models_dir: Path
    device: str
    upscalers: UpscalerCache
    face_restorers: Any  # the face-restoration model cache (same kind of cache, its own budget)
    model_hash: Callable[[ModelEntry], str | None]
    preview_every: int = 3


class _ChainProgress:
    """Progress across the chain: one unit per plain operation, each sampling step of the others."""

    def __init__(self, emit: Emit, cancelled: threading.Event, total: int, preview_every: int) -> None:
        self.emit, self.cancelled = emit, cancelled
        self.done, self.total, self.preview_every = 0, total, preview_every

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled

    def advance(self, units: int) -> None:
        self.done += units
        self.total = max(self.total, self.done)
        self.emit(Progress(step=self.done, total=self.total))

    def steps(self, family: str | None, base: int = 0) -> StepCallback:
        """A sampling callback whose step `s` is progress `done + base + s`."""
        start = self.done + base

        def on_step(step: int, steps: int, latents: torch.Tensor) -> bool:
            if self.cancelled.is_set():
                return False
            preview = None
            if self.preview_every and (step % self.preview_every == 0 or step == steps):
                preview = latent_preview(latents, family)
            self.total = max(self.total, start + steps)
            self.emit(Progress(step=start + step, total=self.total, preview=preview))
            return True

        return on_step


def run_retouch(
    request: RetouchRequest, resources: RetouchResources, emit: Emit, cancelled: threading.Event
) -> None:
    """Run the chain, emitting Progress, ExportedFile and (when the picture changed) one GeneratedImage."""
    # 1. the picture, and the parameters it already carries (kept in the new infotext, as A1111's extras do)
    image = decode_image(request.image)
    try:
        source_infotext, _ = read_text_chunks(request.image)
    except ValueError:
        source_infotext = ""
    progress = _ChainProgress(emit, cancelled, request.total_steps, resources.preview_every)
    used: list[ModelEntry] = []

    # 2. each operation in order
    for index, op in enumerate(request.ops, start=1):
        progress.check()
        try:
            result = _apply(op, index, image, resources, progress, emit, used)
        except MissingWeights as exc:
            raise JobFailed(f"{op.op}: {exc}") from exc
        except RetouchError as exc:
            raise JobFailed(f"{op.op}: {exc}") from exc
        if result is not None:
            image = result
    progress.check()

    # 3. the picture, with the chain in its infotext and its recipe in our chunk
    if not request.changes_image:
        return
    model = used[0].name if used else ""
    infotext = retouch_infotext(request, image, source_infotext, used, resources.model_hash)
    extra = {
        RECIPE_CHUNK_FIELD: request.recipe(),
        "retouch": {"chain": request.summary(), "source_size": list(request.source_size)},
    }
    emit(GeneratedImage(image=image, seed=request.seed, infotext=infotext, model=model, extra=extra))


def _apply(
    op: object,
    index: int,
    image: Image.Image,
    res: RetouchResources,
    progress: _ChainProgress,
    emit: Emit,
    used: list[ModelEntry],
) -> Image.Image | None:
    """One operation; returns the new picture (None: unchanged, e.g. an export)."""
    if isinstance(op, UpscaleOp):
        from pipelines.retouch.upscale import upscale

        target = op.target
        if target is not None and op.crop:  # cover the target keeping the aspect; the centre is cut below
            factor = max(target[0] / image.width, target[1] / image.height)
            target = (
                max(target[0], round(image.width * factor)),
                max(target[1], round(image.height * factor)),
            )
        out = upscale(
            image, upscaler=op.upscaler, scale=op.scale or 2.0, target=target,
            models_dir=res.models_dir, device=res.device, cache=res.upscalers,
        )  # fmt: skip
        if op.target is not None and out.size != op.target:
            left, top = (out.width - op.target[0]) // 2, (out.height - op.target[1]) // 2
            out = out.crop((left, top, left + op.target[0], top + op.target[1]))
    elif isinstance(op, RestoreFacesOp):
        from pipelines.retouch.faces import restore_faces

        out = restore_faces(
            image, model=op.model, visibility=op.visibility, models_dir=res.models_dir, device=res.device,
            cache=res.face_restorers,
        )  # fmt: skip
    elif isinstance(op, EnhanceOp):
        from pipelines.retouch.enhance import auto_enhance_settings, enhance

        out = enhance(image, **(auto_enhance_settings(image) if op.auto else op.strengths()))
    elif isinstance(op, RemoveBackgroundOp):
        from pipelines.retouch.background import remove_background

        out = remove_background(
            image, method=op.method, model=op.model, models_dir=res.models_dir, alpha_matting=op.alpha_matting
        )
    elif isinstance(op, VectorizeOp):
        from pipelines.retouch.vectorize import to_svg

        svg = to_svg(image, colors=op.colors, detail=op.detail)
        emit(
            ExportedFile(name=f"step{index}-vector.svg", data=svg.encode("utf-8"), media_type="image/svg+xml")
        )
        out = None
    elif isinstance(op, LogoPackOp):
        from pipelines.retouch.vectorize import logo_pngs_zip

        data = logo_pngs_zip(image, sizes=tuple(op.sizes))
        emit(ExportedFile(name=f"step{index}-logo-pack.zip", data=data, media_type="application/zip"))
        out = None
    elif isinstance(op, SdUpscaleOp | ReplaceBackgroundOp | EraseOp):
        return _diffuse(op, image, res, progress, used)
    else:  # pragma: no cover - the request model admits no other operation
        raise RetouchError(f"unknown operation {op!r}")
    progress.advance(1)
    return out


def _diffuse(
    op: SdUpscaleOp | ReplaceBackgroundOp | EraseOp,
    image: Image.Image,
    res: RetouchResources,
    progress: _ChainProgress,
    used: list[ModelEntry],
) -> Image.Image:
    """A diffusion operation on its model (leased, so the model stays loaded while it runs)."""
    entry = res.registry.get(op.model)
    task = "img2img" if isinstance(op, SdUpscaleOp) else "inpaint"
    with res.manager.lease(entry) as base:
        pipe = task_pipeline(res.manager, base, entry, task)
        try:
            if isinstance(op, SdUpscaleOp):
                from pipelines.retouch.sd_upscale import sd_upscale, steps_per_tile

                per_tile = steps_per_tile(op)

                def on_tile_step(tile: int, step: int, steps: int, latents: torch.Tensor) -> bool:
                    return progress.steps(entry.family, base=tile * per_tile)(step, steps, latents)

                out = sd_upscale(
                    pipe, op, image, models_dir=res.models_dir, device=res.device, cache=res.upscalers,
                    on_step=on_tile_step,
                )  # fmt: skip
            elif isinstance(op, ReplaceBackgroundOp):
                from pipelines.retouch.replace_background import replace_background

                out = replace_background(
                    pipe, op, image, models_dir=res.models_dir, on_step=progress.steps(entry.family)
                )
            else:
                from pipelines.retouch.replace_background import erase

                out = erase(pipe, op, image, on_step=progress.steps(entry.family))
        except torch.cuda.OutOfMemoryError:
            res.manager.free_memory(keep=entry.name)
            raise
    if entry not in used:
        used.append(entry)
    progress.advance(op.work_units(image.size))
    return out


def retouch_infotext(
    request: RetouchRequest,
    image: Image.Image,
    source_infotext: str,
    used: list[ModelEntry],
    model_hash: Callable[[ModelEntry], str | None],
) -> str:
    """A1111-style infotext: the source's own parameters (when it has them), its new size, and
    `Retouch: remove_background → upscale ×2`; seed and model when a diffusion step ran."""
    parsed = parse_infotext(source_infotext) if source_infotext else None
    prompt = parsed.prompt if parsed else ""
    negative = parsed.negative_prompt if parsed else ""
    params: dict[str, object] = dict(parsed.params) if parsed else {}
    params.pop("Version", None)
    background = next((op for op in request.ops if isinstance(op, ReplaceBackgroundOp)), None)
    if background is not None and not prompt:
        prompt, negative = background.prompt, background.negative_prompt
        if background.applied is not None:  # the prompt is the one its styles made, as in generation
            params[STYLES_KEY] = ", ".join(background.applied.styles) or None
    if used:
        params.update(Seed=request.seed, **{"Model hash": model_hash(used[0]), "Model": used[0].name})
    params["Size"] = f"{image.width}x{image.height}"
    params["Retouch"] = request.summary()
    params["Version"] = INFOTEXT_VERSION
    return format_infotext(prompt, negative, params)
