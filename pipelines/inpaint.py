"""inpaint: repaint only the masked area; every pixel outside the mask is kept exactly.

Works with ordinary (4-channel) and inpainting (9-channel) checkpoints through the family's inpaint
pipeline. The result always has the source image's size: the model works at width × height (on the
whole picture, or on a crop around the mask), the result is scaled back and composited into the source
through the feathered mask, whose soft edge lies inside the painted area.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from diffusers import DiffusionPipeline
from PIL import Image

from core.images import (
    composite,
    decode_image,
    feather,
    fill_masked_area,
    flatten,
    invert_mask,
    mask_crop_box,
    mask_from_upload,
    require_nonempty,
)
from core.requests import InpaintRequest
from pipelines.sampling import StepCallback, sample

# The colour a zero latent decodes to, near enough: "latent nothing" starts the masked area from it.
_NEUTRAL = (127, 127, 127)


@dataclass(frozen=True)
class InpaintInputs:
    """The source and masks at the source's size, and the region the model works on."""

    source: Image.Image  # RGB (or RGBA: its alpha is kept as it is)
    mask: Image.Image  # hard "L" mask, 255 = repaint
    soft_mask: Image.Image  # feathered inside the hard mask
    box: tuple[int, int, int, int]  # region given to the model (the whole image, or a crop around the mask)


def prepare(request: InpaintRequest) -> InpaintInputs:
    """Decode and check the source and mask; choose the working region."""
    source = decode_image(request.init_image)
    mask = mask_from_upload(decode_image(request.mask), source.size)
    if request.invert_mask:
        mask = invert_mask(mask)
    require_nonempty(mask)
    if request.inpaint_area == "only masked":
        box = mask_crop_box(mask, request.only_masked_padding, target_aspect=request.width / request.height)
    else:
        box = (0, 0, source.width, source.height)
    return InpaintInputs(source=source, mask=mask, soft_mask=feather(mask, request.mask_blur), box=box)


def _start_image(rgb: Image.Image, mask: Image.Image, content: str, seed: int) -> Image.Image:
    """What the masked area starts from (A1111's "masked content")."""
    if content == "fill":
        return fill_masked_area(rgb, mask)
    if content == "original":
        return rgb
    if content == "latent noise":
        rng = np.random.default_rng(seed)
        noise = Image.fromarray(rng.integers(0, 256, (rgb.height, rgb.width, 3), dtype=np.uint8), "RGB")
    else:  # "latent nothing"
        noise = Image.new("RGB", rgb.size, _NEUTRAL)
    return Image.composite(noise, rgb, mask)


def run_inpaint(
    pipe: DiffusionPipeline,
    request: InpaintRequest,
    seeds: Sequence[int],
    on_step: StepCallback,
) -> list[Image.Image]:
    """One batch of inpainted images, each the source size with the outside of the mask untouched."""
    # 1. check inputs, choose the region
    inputs = prepare(request)
    rgb = flatten(inputs.source)
    if request.denoising_strength == 0:
        return [inputs.source.copy() for _ in seeds]
    # 2. the working region at the model's resolution
    start = _start_image(rgb, inputs.mask, request.masked_content, random.Random(seeds[0]).randrange(2**32))
    region, region_mask = start.crop(inputs.box), inputs.mask.crop(inputs.box)
    work_size = (request.width, request.height)
    work_image = region.resize(work_size, Image.Resampling.LANCZOS)
    work_mask = region_mask.resize(work_size, Image.Resampling.NEAREST)
    # 3. denoise (one copy of image and mask per image: each is encoded with its own generator)
    n = len(seeds)
    generated = sample(
        pipe,
        request,
        seeds,
        on_step,
        image=[work_image] * n,
        mask_image=[work_mask] * n,
        width=request.width,
        height=request.height,
        strength=request.denoising_strength,
    )
    # 4. back to the region's size, into the source through the feathered mask
    results = []
    left, top, right, bottom = inputs.box
    for image in generated:
        patch = image.resize((right - left, bottom - top), Image.Resampling.LANCZOS)
        full = rgb.copy()
        full.paste(patch, (left, top))
        if inputs.source.mode == "RGBA":
            full = full.convert("RGBA")
        results.append(composite(inputs.source, full, inputs.soft_mask))
    return results
