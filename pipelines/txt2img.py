"""txt2img: one batch of images from a prompt, on a loaded pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.backend import JobCancelled
from core.requests import GenerationRequest
from pipelines.schedulers import make_scheduler, with_scheduler

# step callback: (step index within this batch, steps in this batch, latents) → keep going?
StepCallback = Callable[[int, int, torch.Tensor], bool]


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
    if not seeds:
        raise ValueError("a batch needs at least one seed")

    # 2. a scheduler of its own for this run (the cached pipeline is never modified)
    scheduler = make_scheduler(request.sampler, request.schedule_type, pipe.scheduler.config, seed=seeds[0])
    run_pipe = with_scheduler(pipe, scheduler)

    # 3. per-image start noise and per-image generators (ancestral samplers draw step noise from them)
    device = pipe.device
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    latents = initial_latents(pipe, generators, request.width, request.height)
    latents = latents.to(device=device, dtype=pipe.unet.dtype)

    # 4. denoise, reporting every step
    def callback(p: DiffusionPipeline, step: int, timestep: object, tensors: dict) -> dict:
        if not on_step(step + 1, p.num_timesteps, tensors["latents"]):
            raise JobCancelled
        return {}

    with torch.inference_mode():
        result = run_pipe(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg_scale,
            width=request.width,
            height=request.height,
            num_images_per_prompt=len(seeds),
            generator=generators,
            latents=latents,
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
            output_type="pil",
        )
    return list(result.images)
