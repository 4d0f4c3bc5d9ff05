"""The txt2img runner with hires fix, whose picture upscalers come from the Retouch upscaler."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from diffusers import DiffusionPipeline
from PIL import Image

from pipelines.hires import run_hires
from pipelines.retouch.upscale import upscale
from pipelines.tasks import Runner


def hires_runner(
    img2img_pipe: DiffusionPipeline, upscaler: str, *, models_dir: Path, device: Any, cache: Any = None
) -> Runner:
    """The txt2img runner with hires fix: its second pass on `img2img_pipe`; a non-latent `upscaler` is one of
    pipelines.retouch.upscale's (Lanczos, Nearest or a model file under models_dir), run with `cache`."""

    def upscale_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
        return upscale(
            image, upscaler=upscaler, target=size, models_dir=models_dir, device=str(device), cache=cache
        )

    return functools.partial(run_hires, img2img_pipe=img2img_pipe, upscale_image=upscale_image)
