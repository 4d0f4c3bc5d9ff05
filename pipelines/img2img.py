"""img2img: repaint a whole source image toward the prompt, on the loaded model's shared weights."""

from __future__ import annotations

from collections.abc import Sequence

from diffusers import DiffusionPipeline
from PIL import Image

from core.images import decode_image, flatten, resize_for_mode
from core.requests import Img2ImgRequest
from pipelines.sampling import StepCallback, sample


def source_image(request: Img2ImgRequest) -> Image.Image:
    """The source image as the model sees it: RGB, resized to width × height by the request's mode."""
    image = flatten(decode_image(request.init_image))
    return resize_for_mode(image, request.width, request.height, request.resize_mode)


def run_img2img(
    pipe: DiffusionPipeline,
    request: Img2ImgRequest,
    seeds: Sequence[int],
    on_step: StepCallback,
) -> list[Image.Image]:
    """One batch of img2img images (`pipe` is the family's img2img pipeline sharing the model's weights)."""
    # 1. check inputs
    if pipe.unet.config.in_channels != 4:
        raise ValueError("this is an inpainting model: use it in the inpaint tab, or pick an ordinary model")
    # 2. the source at the working size; strength 0 asks for the source itself
    image = source_image(request)
    if request.denoising_strength == 0:
        return [image.copy() for _ in seeds]
    # 3. denoise from the re-noised source; one copy per image, so each is encoded with its own generator
    return sample(
        pipe, request, seeds, on_step, image=[image] * len(seeds), strength=request.denoising_strength
    )
