"""What every task shares when it samples: its own scheduler, per-image generators, step reporting."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.errors import JobCancelled
from core.requests import GenerationRequest
from pipelines.prompt_weighting import prompt_embeddings
from pipelines.schedulers import make_scheduler, with_scheduler
from pipelines.variation_noise import replace_start_noise

# step callback: (step index within this batch, steps in this batch, latents) → keep going?
StepCallback = Callable[[int, int, torch.Tensor], bool]


def generators_for(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image: a seed gives the same noise on any device and in any batch slot."""
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def sample(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    seeds: Sequence[int],
    on_step: StepCallback,
    *,
    start_noise: Callable[[torch.Tensor], torch.Tensor] | None = None,
    prepare_scheduler: Callable[[Any], None] | None = None,
    prepare_pipe: Callable[[DiffusionPipeline], None] | None = None,
    embeds: Mapping[str, torch.Tensor] | None = None,
    **call_kwargs: Any,
) -> list[Image.Image]:
    """Run `pipe` once for `len(seeds)` images with a scheduler of its own; `on_step` False cancels.

    `start_noise` (img2img pipelines): maps the start noise the pipeline drew to the one to use (variation seeds).
    `prepare_scheduler`, `prepare_pipe`: called with the run's own scheduler / pipeline object before the run
    (see pipelines/variation_noise.py).

    The cached pipeline is never modified: the run uses a pipeline object sharing its components.
    The prompts are encoded with A1111's syntax (weights, long prompts, BREAK); see prompt_weighting.
    `embeds`: one row of prompt embeddings per image, already encoded (jobs of several users run together).
    """
    if not seeds:
        raise ValueError("a batch needs at least one seed")
    scheduler = make_scheduler(request.sampler, request.schedule_type, pipe.scheduler.config, seed=seeds[0])
    if start_noise is not None:
        replace_start_noise(scheduler, start_noise)
    if prepare_scheduler is not None:
        prepare_scheduler(scheduler)
    run_pipe = with_scheduler(pipe, scheduler)
    if prepare_pipe is not None:
        prepare_pipe(run_pipe)

    def callback(p: DiffusionPipeline, step: int, timestep: object, tensors: dict) -> dict:
        if not on_step(step + 1, p.num_timesteps, tensors["latents"]):
            raise JobCancelled
        return {}

    call_kwargs.setdefault("generator", generators_for(seeds))
    if request.eta_noise_seed_delta and call_kwargs.get("latents") is not None:
        # A1111's ENSD: the step noise of ancestral/SDE samplers comes from seed + delta (start noise: the seed)
        call_kwargs["generator"] = generators_for([s + request.eta_noise_seed_delta for s in seeds])
    call_kwargs.setdefault("output_type", "pil")  # "latent": the final latents, one tensor per image
    with torch.inference_mode():
        if embeds is None:
            encoded = prompt_embeddings(
                run_pipe, request.prompt, request.negative_prompt, clip_skip=request.clip_skip
            )
            per_prompt = len(seeds)
        else:
            encoded, per_prompt = dict(embeds), 1
        result = run_pipe(
            **encoded,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg_scale,
            num_images_per_prompt=per_prompt,
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
            **call_kwargs,
        )
    return list(result.images)
