"""Running a retouch request: its operations in order, each one's output feeding the next.

Plain operations (upscale, restore faces, enhance, remove background) call the operations library; diffusion
operations (SD upscale, replace background, erase) lease their model from the pipeline manager and sample
through the img2img / inpaint paths. Exports (SVG, logo zip) are handed over as files, the final picture as a
GeneratedImage with an A1111-style infotext line and the chain's recipe in our metadata chunk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core.backend import ExportedFile, GeneratedImage, JobCancelled, JobFailed, Progress
from core.errors import EaselError
from core.images import decode_image
from core.infotext import STYLES_KEY, format_infotext, parse_infotext
from core.pnginfo import read_text_chunks
from core.recipes import RECIPE_CHUNK_FIELD
from core.retouch import RetouchRequest, step_failure
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
from pipelines.retouch import RetouchError
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
    """Run the chain, emitting Progress, ExportedFile and GeneratedImage: the last picture (when the chain
    changes the picture), and with `keep_steps` the picture of every step.

    A step that fails stops the chain there: the picture of the step before it is handed over (so it is
    kept), then JobFailed says which step failed and why (`core.retouch.step_failure`)."""
    # 1. the picture, and the parameters it already carries (kept in the new infotext, as A1111's extras do)
    image = decode_image(request.image)
    try:
        source_infotext, _ = read_text_chunks(request.image)
    except ValueError:
        source_infotext = ""
    chain = _Chain(request, resources, emit, source_infotext)
    progress = _ChainProgress(emit, cancelled, request.total_steps, resources.preview_every)

    # 2. each operation in order, each one's picture handed over as it is made (keep_steps) or once, at the end
    for index, op in enumerate(request.ops, start=1):
        progress.check()
        try:
            result = _apply(op, image, resources, progress, emit, chain)
        except JobCancelled:
            raise
        except (EaselError, ValueError, KeyError) as exc:
            chain.keep()
            raise JobFailed(step_failure(index, op.label(), str(exc).strip("'\""))) from exc
        except Exception:
            chain.keep()  # an unexpected error (out of memory, …) is worded by the backend
            raise
        if result is not None:
            image = result
            chain.changed(index, image)
    progress.check()

    # 3. the last picture, with the chain in its infotext and its recipe in our chunk
    chain.keep(final=True)


class _Chain:
    """What a running chain has made: the models it used, its export names, the pictures handed over."""

    def __init__(
        self, request: RetouchRequest, resources: RetouchResources, emit: Emit, source_infotext: str
    ) -> None:
        self.request, self.resources, self.emit = request, resources, emit
        self.source_infotext = source_infotext
        self.stem = request.file_stem()
        self.used: list[ModelEntry] = []
        self.made = 0  # the step that made the current picture (0: the source)
        self.pending: Image.Image | None = None  # the current picture, until it is handed over
        self.pending_used: list[ModelEntry] = []  # the models that went into it
        self.warnings: list[tuple[int, str]] = []  # (step, text): a step whose result looks wrong

    def warn(self, op: object, text: str) -> None:
        """Step `op`'s result looks wrong (not an error: the chain goes on); its pictures from there say so."""
        index = next(i for i, o in enumerate(self.request.ops, start=1) if o is op)
        log.warning("retouch step %d: %s", index, text)
        self.warnings.append((index, f"Step {index} ({getattr(op, 'op', '?')}): {text}"))

    def changed(self, index: int, image: Image.Image) -> None:
        """Step `index` made a new picture. When every step's picture is kept, the one before it is handed over
        now (the last one waits for the end of the chain, to carry the whole chain's recipe)."""
        if self.request.keep_steps and self.pending is not None:
            self._hand_over(self.pending, self.made)
        self.made, self.pending, self.pending_used = index, image, list(self.used)

    def keep(self, *, final: bool = False) -> None:
        """Hand over the picture not handed over yet (none when the chain has not changed the picture): at the
        end of the chain, described by the whole chain; when a step failed, by the steps before it."""
        if self.pending is not None:
            self._hand_over(self.pending, len(self.request.ops) if final else self.made)

    def _hand_over(self, image: Image.Image, upto: int) -> None:
        """The picture after step `upto`, described by the steps up to there."""
        done = self.request.model_copy(update={"ops": list(self.request.ops[:upto])})
        used = self.pending_used
        warnings = [text for step, text in self.warnings if step <= upto]
        infotext = retouch_infotext(
            done, image, self.source_infotext, used, self.resources.model_hash, warnings=warnings
        )
        extra = {
            RECIPE_CHUNK_FIELD: done.recipe(),
            "retouch": {
                "chain": done.summary(),
                "source_size": list(self.request.source_size),
                "step": upto,
                "steps": len(self.request.ops),
                **({"warnings": warnings} if warnings else {}),
            },
        }
        model = used[0].name if used else ""
        self.emit(
            GeneratedImage(image=image, seed=self.request.seed, infotext=infotext, model=model, extra=extra)
        )
        self.pending = None


def _apply(
    op: object,
    image: Image.Image,
    res: RetouchResources,
    progress: _ChainProgress,
    emit: Emit,
    chain: _Chain,
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
        from pipelines.retouch.background import cut_out

        cut = cut_out(
            image, method=op.method, model=op.model, models_dir=res.models_dir, alpha_matting=op.alpha_matting,
            keep_mask=op.keep_mask, remove_mask=op.remove_mask,
        )  # fmt: skip
        if cut.warning:  # it keeps almost nothing or almost everything: said before more is built on it
            chain.warn(op, cut.warning)
        out = cut.image
    elif isinstance(op, VectorizeOp):
        from pipelines.retouch.vectorize import to_svg

        svg = to_svg(image, colors=op.colors, detail=op.detail)
        emit(
            ExportedFile(
                name=f"{chain.stem}-vector.svg", data=svg.encode("utf-8"), media_type="image/svg+xml"
            )
        )
        out = None
    elif isinstance(op, LogoPackOp):
        from pipelines.retouch.vectorize import logo_pngs_zip

        data = logo_pngs_zip(image, sizes=tuple(op.sizes), padding=op.padding)
        emit(ExportedFile(name=f"{chain.stem}-logo-pack.zip", data=data, media_type="application/zip"))
        out = None
    elif isinstance(op, SdUpscaleOp | ReplaceBackgroundOp | EraseOp):
        return _diffuse(op, image, res, progress, chain.used)
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
    *,
    warnings: Sequence[str] = (),
) -> str:
    """A1111-style infotext: the source's own parameters (when it has them), its new size, and
    `Retouch: remove_background → upscale ×2`; seed and model when a diffusion step ran; `Warnings` when a
    step's result looks wrong (a cut-out keeping almost nothing or almost everything)."""
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
    params["Warnings"] = "; ".join(warnings) or None
    params["Version"] = INFOTEXT_VERSION
    return format_infotext(prompt, negative, params)
