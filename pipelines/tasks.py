"""Which pipeline runs each task for each model family, and the task runners themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import diffusers
from diffusers import DiffusionPipeline
from PIL import Image

from core.requests import GenerationRequest, Img2ImgRequest, InpaintRequest
from pipelines.img2img import run_img2img
from pipelines.inpaint import run_inpaint
from pipelines.manager import PipelineManager
from pipelines.registry import ModelEntry
from pipelines.sampling import StepCallback
from pipelines.txt2img import run_txt2img

Runner = Callable[[DiffusionPipeline, Any, Sequence[int], StepCallback], list[Image.Image]]

# (family, task) → diffusers class derived from the loaded model with from_pipe (shared weights)
_DERIVED = {
    ("sd1", "img2img"): "StableDiffusionImg2ImgPipeline",
    ("sd2", "img2img"): "StableDiffusionImg2ImgPipeline",
    ("sdxl", "img2img"): "StableDiffusionXLImg2ImgPipeline",
    ("sd1", "inpaint"): "StableDiffusionInpaintPipeline",
    ("sd2", "inpaint"): "StableDiffusionInpaintPipeline",
    ("sdxl", "inpaint"): "StableDiffusionXLInpaintPipeline",
}


def runner_for(request: GenerationRequest) -> Runner:
    if isinstance(request, InpaintRequest):
        return run_inpaint
    if isinstance(request, Img2ImgRequest):
        return run_img2img
    return run_txt2img


def task_pipeline(
    manager: PipelineManager, base: DiffusionPipeline, entry: ModelEntry, task: str
) -> DiffusionPipeline:
    """The pipeline for `task` on the model whose base pipeline is `base` (never a second load)."""
    if task == "txt2img":
        return base
    if entry.inpaint:
        # an inpainting checkpoint loads as its inpaint pipeline, which also runs img2img (blank-mask
        # conditioning, pipelines/inpaint_models.py)
        return base
    if entry.family is None or (entry.family, task) not in _DERIVED:
        raise ValueError(f"{task} is not available for {entry.name}")
    return manager.derive(base, task, getattr(diffusers, _DERIVED[entry.family, task]))
