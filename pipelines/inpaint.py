"""inpaint: repaint only the masked area; every pixel outside the mask is kept exactly.

Works with ordinary (4-channel) and inpainting (9-channel) checkpoints through the family's inpaint
pipeline. The result always has the source image's size: the model works at width × height (on the
whole picture, or on a crop around the mask), the result is scaled back and composited into the source
through the feathered mask, whose soft edge lies inside the painted area.

Variation seeds and seed resize (pipelines/img2img.py says how): below full denoising strength the drawn start
noise is swapped as the scheduler adds it — also where 4-channel models re-noise the source at every step with
that same noise, so the border of the mask sees one noise. At full strength the pipelines add no noise to the
source (the start is `noise * init_noise_sigma`): the mixed noise is passed in as the start latents, drawn where
the pipeline would have drawn it (first for 9-channel models, after the source's VAE sample for 4-channel ones),
and the generators advance as if it had been drawn, so ancestral step noise is the seed's as without a variation.
The VAE samples of the source and of the masked picture are mixed too (`VariedVaeSample`): with a non-ancestral
sampler strength 1 gives exactly the variation seed's picture.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from core.images import decode_image, flatten
from core.masks import (
    composite,
    feather,
    fill_masked_area,
    invert_mask,
    mask_crop_box,
    mask_from_upload,
    require_nonempty,
)
from core.requests import InpaintRequest
from pipelines.img2img import variation_noise, variation_vae_kwargs
from pipelines.sampling import StepCallback, generators_for, sample
from pipelines.variation_noise import replace_start_noise, skip_draws_before_first_step

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


def _noise_kwargs(pipe: DiffusionPipeline, request: InpaintRequest, seeds: Sequence[int]) -> dict:
    """How a run with variation seeds or a seed resize gets its start noise and VAE samples (see the module
    docstring). Where each draw falls in a seed's own stream: below full strength the source's VAE sample (1),
    the noise (2), the masked picture's VAE sample (3); at full strength 9-channel models draw the noise (1)
    then the masked picture's sample (2), 4-channel ones the source's sample (1), the noise (2), the masked
    picture's sample (3)."""
    scale = pipe.vae_scale_factor
    four_channel = pipe.unet.config.in_channels == 4
    if request.denoising_strength < 1:
        noise_map = variation_noise(request, seeds, scale, draw=2)
        if noise_map is None:
            return {}
        # the scheduler adds the drawn noise, again at every step for 4-channel models (the same tensor)
        return {
            **variation_vae_kwargs(request, seeds, draws=[1, 3]),
            "prepare_scheduler": lambda scheduler: replace_start_noise(scheduler, noise_map, every_use=True),
        }
    draw = 2 if four_channel else 1
    start_noise = variation_noise(request, seeds, scale, draw=draw)
    if start_noise is None:
        return {}
    vae_kwargs = variation_vae_kwargs(request, seeds, draws=[1, 3] if four_channel else [2])
    shape = (len(seeds), 4, request.height // scale, request.width // scale)
    dtype = pipe.unet.dtype
    generators = vae_kwargs.get("generator") or generators_for(seeds)
    drawing = generators if draw == 1 else generators_for(seeds)
    for _ in range(draw):
        drawn = randn_tensor(shape, generator=drawing, device=torch.device("cpu"), dtype=dtype)
    kwargs: dict = {
        **vae_kwargs,
        "latents": start_noise(drawn).to(device=pipe.device),
        "generator": generators,
    }
    if draw == 2:  # the pipeline's generators skip the noise draw it did not make
        kwargs["prepare_scheduler"] = lambda scheduler: skip_draws_before_first_step(
            scheduler, generators, (1, *shape[1:]), dtype
        )
    return kwargs


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
        **_noise_kwargs(pipe, request, seeds),
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
