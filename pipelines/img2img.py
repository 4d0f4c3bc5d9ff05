"""img2img: repaint a whole source image toward the prompt, on the loaded model's shared weights.

Variation seeds and seed resize work as in A1111: the noise added to the source's latents is the seed's noise
mixed with the variation seed's (pipelines/variation_noise.py). diffusers' pipelines draw that noise inside the call,
second from each image's generator (the first draw is the source's VAE sample); the run's scheduler swaps it
for the mix as it is added. The variation seed's noise is drawn the same way (its generator's second draw), so
at strength 1 the start noise is exactly the one the variation seed's own run adds. The source's VAE sample
(drawn from the same generator) is mixed the same way (`VariedVaeSample`), so with a non-ancestral sampler
strength 0 gives exactly the seed's picture and strength 1 exactly the variation seed's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.images import decode_image, flatten, resize_for_mode
from core.requests import GenerationRequest, Img2ImgRequest
from pipelines.inpaint_models import blank_mask_kwargs, is_inpainting
from pipelines.sampling import StepCallback, generators_for, sample
from pipelines.txt2img import initial_latents, job_subseeds
from pipelines.variation_noise import vary_batch_noise, vary_vae_samples

NoiseMap = Callable[[torch.Tensor], torch.Tensor]


def variation_noise(
    request: GenerationRequest, seeds: Sequence[int], scale: int, *, draw: int
) -> NoiseMap | None:
    """The start noise of a run with variation seeds or a seed resize, from the noise the pipeline drew
    (`draw`-th from each image's generator); None without them (the drawn noise is used as it is)."""
    if request.subseed_strength == 0 and request.seed_resize_from is None:
        return None
    subseeds = job_subseeds(request, seeds)

    def start_noise(noise: torch.Tensor) -> torch.Tensor:
        return vary_batch_noise(
            noise, seeds, subseeds, request.subseed_strength, request.seed_resize_from, scale, draw=draw
        )

    return start_noise


def variation_vae_kwargs(request: GenerationRequest, seeds: Sequence[int], draws: Sequence[int]) -> dict:
    """`sample` arguments that mix the source encodings' VAE samples too (`draws`: where each encoding pass
    draws in a seed's own stream); none without a variation."""
    if request.subseed_strength == 0:
        return {}
    generators = generators_for(seeds)
    subseeds = job_subseeds(request, seeds)

    def prepare_pipe(run_pipe: DiffusionPipeline) -> None:
        vary_vae_samples(run_pipe, generators, subseeds, request.subseed_strength, draws)

    return {"generator": generators, "prepare_pipe": prepare_pipe}


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
    """One batch of img2img images (`pipe` is the family's img2img pipeline sharing the model's weights, or an
    inpainting checkpoint's inpaint pipeline, run on A1111's blank-mask conditioning)."""
    # 1. the source at the working size; strength 0 asks for the source itself
    image = source_image(request)
    if request.denoising_strength == 0:
        return [image.copy() for _ in seeds]
    # 2. an inpainting model: the whole picture masked, a zero picture as the masked one (pipelines/inpaint_models)
    conditioning = blank_mask_kwargs(pipe, len(seeds), request.width, request.height)
    if conditioning:
        conditioning.update(width=request.width, height=request.height)
    # 3. denoise from the re-noised source; one copy per image, so each is encoded with its own generator
    #    (its first draw); the start noise is the second draw, mixed with the variation seed's
    #    (at full strength an inpainting model encodes no source and starts from the noise alone: drawn here as
    #    txt2img draws it, variation seeds included, from the generators the run then goes on with)
    if is_inpainting(pipe) and request.denoising_strength == 1:
        generators = generators_for(seeds)
        latents = initial_latents(
            pipe, generators, request.width, request.height, seeds=seeds, subseeds=job_subseeds(request, seeds),
            subseed_strength=request.subseed_strength, resize_from=request.seed_resize_from,
        )  # fmt: skip
        conditioning.update(
            latents=latents.to(device=pipe.device, dtype=pipe.unet.dtype), generator=generators
        )
        return sample(pipe, request, seeds, on_step, **conditioning, image=[image] * len(seeds), strength=1.0)
    start_noise = variation_noise(request, seeds, pipe.vae_scale_factor, draw=2)
    return sample(
        pipe, request, seeds, on_step, **variation_vae_kwargs(request, seeds, draws=[1]), **conditioning,
        image=[image] * len(seeds), strength=request.denoising_strength, start_noise=start_noise,
    )  # fmt: skip
