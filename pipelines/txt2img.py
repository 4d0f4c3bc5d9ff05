"""txt2img: one batch of images from a prompt, on a loaded pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.requests import GenerationRequest
from core.seeds import matching_subseed
from pipelines.inpaint_models import blank_mask_kwargs, blank_picture, is_inpainting
from pipelines.sampling import StepCallback, generators_for, sample
from pipelines.variation_noise import batch_noise


def initial_latents(
    pipe: DiffusionPipeline,
    generators: Sequence[torch.Generator],
    width: int,
    height: int,
    *,
    seeds: Sequence[int] = (),
    subseeds: Sequence[int] = (),
    subseed_strength: float = 0.0,
    resize_from: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Start noise drawn on the CPU, one generator per image: a seed gives the same noise on any device
    and in any batch slot. The same generators then supply the step noise of ancestral samplers.

    With a variation (`subseeds` and a strength above 0) or a seed resize (`resize_from`, pixels), the noise is
    A1111's mix of the two seeds' noise (pipelines/variation_noise.py); `seeds` are then the generators' seeds.
    """
    scale = pipe.vae_scale_factor
    shape = (1, 4, height // scale, width // scale)
    if subseed_strength == 0 and resize_from is None:
        return torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return batch_noise(generators, seeds, subseeds, subseed_strength, shape[1:], resize_from, scale)


def job_subseeds(request: GenerationRequest, seeds: Sequence[int]) -> list[int]:
    """The variation seeds of a batch: image i of the job uses seed + i and subseed + i."""
    if request.subseed_strength > 0 and request.subseed == -1:
        raise ValueError("the variation seed must be resolved (not -1) before sampling")
    return [matching_subseed(request.seed, request.subseed, seed) for seed in seeds]


def run_txt2img(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    seeds: Sequence[int],
    on_step: StepCallback,
    *,
    output_type: str = "pil",
    embeds: Mapping[str, torch.Tensor] | None = None,
) -> list[Image.Image]:
    """Generate `len(seeds)` images for `request` (one batch), calling `on_step` after every step.
    `embeds`: the prompt embeddings of every image, already encoded (jobs of several users run together).

    `on_step` returning False cancels the run (JobCancelled); nothing is decoded then. With
    `output_type="latent"` the final latents are returned (one (C, H, W) tensor per image), not decoded.
    An inpainting checkpoint (`pipe` is then its inpaint pipeline) runs on A1111's blank-mask conditioning.
    """
    # 1. an inpainting model: the whole picture masked, a zero picture as the masked one (pipelines/inpaint_models)
    conditioning = blank_mask_kwargs(pipe, len(seeds), request.width, request.height)
    if is_inpainting(pipe):
        image = blank_picture(request.width, request.height)
        conditioning.update(image=[image] * len(seeds), strength=1.0)
    # 2. per-image start noise from per-image generators
    generators = generators_for(seeds)
    latents = initial_latents(
        pipe,
        generators,
        request.width,
        request.height,
        seeds=seeds,
        subseeds=job_subseeds(request, seeds),
        subseed_strength=request.subseed_strength,
        resize_from=request.seed_resize_from,
    )
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
        output_type=output_type,
        embeds=embeds,
        **conditioning,
    )
