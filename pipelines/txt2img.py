"""txt2img: one batch of images from a prompt, on a loaded pipeline."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.requests import GenerationRequest
from pipelines.sampling import StepCallback, generators_for, sample


def initial_latents(
    pipe: DiffusionPipeline, generators: Sequence[torch.Generator], width: int, height: int
) -> torch.Tensor:
    """Start noise drawn on the CPU, one generator per image: a seed gives the same noise on any device
    and in any batch slot. The same generators then supply the step noise of ancestral samplers."""
    scale = pipe.vae_scale_factor
    shape = (1, 4, height // scale, width // scale)
    return torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])


def run_txt2img(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    seeds: Sequence[int],
    on_step: StepCallback,
) -> list[Image.Image]:
    """Generate `len(seeds)` images for `request` (one batch), calling `on_step` after every step.

    `on_step` returning False cancels the run (JobCancelled); nothing is decoded then.
    """
    # 1. check inputs
    if pipe.unet.config.in_channels != 4:
        raise ValueError("this is an inpainting model: use it in the inpaint tab, or pick an ordinary model")
    # 2. per-image start noise from per-image generators
    generators = generators_for(seeds)
    latents = initial_latents(pipe, generators, request.width, request.height)
    latents = latents.to(device=pipe.device, dtype=pipe.unet.dtype)
    # 3. denoise
    return sample(
        pipe,
        request,
        seeds,
        on_step,
        width=request.width,
        height=request.height,
        latents=latents,
        generator=generators,
    )
