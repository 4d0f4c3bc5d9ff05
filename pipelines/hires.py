"""Hires fix (A1111's): a txt2img first pass at width × height, upscaled, then repainted by img2img at the
larger size.

The latent modes ("Latent", "Latent (bicubic)", ...) interpolate the first pass's latents and hand them
straight to the second pass (no decode); every other upscaler decodes the first pass, upscales the picture
(Lanczos, Nearest or a model upscaler) and lets the img2img pipeline encode it again. The second pass runs
on the model's img2img pipeline (derived with shared weights) at `denoising_strength`, with
`hr_second_pass_steps` (0 = the first pass's steps).

Variation seeds apply in both passes, as in A1111 (`sample_hr_pass` builds its noise with the job's seeds,
subseeds, subseed strength and seed resize): the second pass's start noise is the seed's noise mixed with the
variation seed's (pipelines/variation_noise.py). diffusers' img2img pipelines draw that noise inside the call; the
run's scheduler swaps it for the mix as it is added (`replace_start_noise`). With a picture upscaler (Lanczos,
a model) the second pass first encodes the upscaled picture with a VAE sample drawn from the seed's generator;
that sample is mixed the same way (as in img2img, pipelines/img2img.py). So strength 0 gives exactly the seed's
hires picture and, with a non-ancestral sampler, strength 1 exactly the variation seed's, whatever the upscaler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from PIL import Image

from core.hires import LATENT_SCALE, LATENT_UPSCALE_MODES, HiresSize, is_latent_upscaler, second_pass_steps
from core.requests import Txt2ImgRequest
from pipelines.img2img import variation_noise, variation_vae_kwargs
from pipelines.inpaint_models import blank_mask_kwargs
from pipelines.sampling import StepCallback, sample
from pipelines.txt2img import run_txt2img

# (picture, (width, height)) → the picture at that size
ImageUpscaler = Callable[[Image.Image, tuple[int, int]], Image.Image]

_PIL_UPSCALERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}


def pil_upscaler(name: str) -> ImageUpscaler:
    """Lanczos or Nearest resampling with Pillow (model upscalers come from pipelines.retouch.upscale)."""
    if name not in _PIL_UPSCALERS:
        raise ValueError(
            f"unknown hires upscaler {name!r}; available: {', '.join([*LATENT_UPSCALE_MODES, *_PIL_UPSCALERS])}"
        )
    return lambda image, size: image.resize(size, _PIL_UPSCALERS[name])


def upscale_latents(latents: torch.Tensor, size: HiresSize, mode_name: str) -> torch.Tensor:
    """Latents (N, C, h, w) interpolated to the hires size and centre-cropped to its target, as A1111 does."""
    mode, antialias = LATENT_UPSCALE_MODES[mode_name]
    width, height = size.upscale_to
    # in float32: half-precision interpolation is missing for some modes on some devices; latents are small
    out = F.interpolate(
        latents.float(), size=(height // LATENT_SCALE, width // LATENT_SCALE), mode=mode, antialias=antialias
    ).to(latents.dtype)
    left, top, right, bottom = (v // LATENT_SCALE for v in size.crop_box)
    return out[:, :, top:bottom, left:right]


def upscale_picture(image: Image.Image, size: HiresSize, upscale_image: ImageUpscaler) -> Image.Image:
    """A first-pass picture upscaled to the hires size and centre-cropped to its target."""
    upscaled = upscale_image(image, size.upscale_to)
    return upscaled if size.upscale_to == size.target else upscaled.crop(size.crop_box)


def decode_latents(pipe: DiffusionPipeline, latents: torch.Tensor) -> list[Image.Image]:
    """Latents decoded as the SD 1.x/2.x pipeline decodes them (used to show a latent first pass)."""
    with torch.inference_mode():
        scaled = latents.to(device=pipe.vae.device, dtype=pipe.vae.dtype) / pipe.vae.config.scaling_factor
        image = pipe.vae.decode(scaled, return_dict=False)[0]
    return pipe.image_processor.postprocess(image, output_type="pil", do_denormalize=[True] * len(image))


def run_hires(
    pipe: DiffusionPipeline,
    request: Txt2ImgRequest,
    seeds: Sequence[int],
    on_step: StepCallback,
    *,
    img2img_pipe: DiffusionPipeline,
    upscale_image: ImageUpscaler | None = None,
    first_pass: list[Image.Image] | None = None,
) -> list[Image.Image]:
    """One batch of hires-fixed images at `request.hires_size.target`.

    `on_step` sees both passes as one run: (step, first + second pass steps, latents). `upscale_image` does the
    non-latent upscalers (default: Pillow's Lanczos/Nearest). When `first_pass` is a list, the first pass's
    pictures are appended to it (decoded for the latent modes) — they equal a plain txt2img's.
    """
    # 1. check inputs
    if not request.enable_hr:
        raise ValueError("hires fix is not enabled in this request")
    size = request.hires_size
    latent_mode = is_latent_upscaler(request.hr_upscaler)
    if not latent_mode and upscale_image is None:
        upscale_image = pil_upscaler(request.hr_upscaler)
    expected_second = second_pass_steps(
        request.steps, request.hr_second_pass_steps, request.denoising_strength
    )
    first_steps = request.steps

    # 2. first pass: exactly the plain txt2img at width × height (variation seeds included)
    def first_step(step: int, steps: int, latents: torch.Tensor) -> bool:
        nonlocal first_steps
        first_steps = steps
        return on_step(step, steps + expected_second, latents)

    output = run_txt2img(pipe, request, seeds, first_step, output_type="latent" if latent_mode else "pil")

    # 3. upscale: latents interpolated, or pictures upscaled (the img2img pipeline encodes them)
    second_input = _upscaled(pipe, request, output, upscale_image, first_pass)

    # 4. second pass: img2img at the target size, on the same seeds (and variation seeds); at denoising strength 0
    #    there is none, as in A1111: the upscaled picture (a latent upscale decoded) is the result
    width, height = size.target
    if request.denoising_strength == 0:
        if latent_mode:
            assert isinstance(second_input, torch.Tensor)
            return decode_latents(img2img_pipe, second_input)
        return list(second_input)
    second = request.model_copy(
        update={"steps": request.hr_second_pass_steps or request.steps, "width": width, "height": height}
    )

    def second_step(step: int, steps: int, latents: torch.Tensor) -> bool:
        return on_step(first_steps + step, first_steps + steps, latents)

    return sample(
        img2img_pipe, second, seeds, second_step,
        image=second_input, strength=request.denoising_strength,
        **_second_pass_kwargs(img2img_pipe, request, seeds, latent_mode),
    )  # fmt: skip


def _upscaled(
    pipe: DiffusionPipeline,
    request: Txt2ImgRequest,
    output: Sequence[Any],
    upscale_image: ImageUpscaler | None,
    first_pass: list[Image.Image] | None,
) -> torch.Tensor | list[Image.Image]:
    """The first pass's latents interpolated to the hires size, or its pictures upscaled (`upscale_image`); the
    first pass's pictures go to `first_pass` when it is a list (decoded for the latent modes)."""
    size = request.hires_size
    if is_latent_upscaler(request.hr_upscaler):
        with torch.inference_mode():
            latents = torch.stack(list(output))
            if first_pass is not None:
                first_pass.extend(decode_latents(pipe, latents))
            return upscale_latents(latents, size, request.hr_upscaler)
    if first_pass is not None:
        first_pass.extend(image.copy() for image in output)
    assert upscale_image is not None
    return [upscale_picture(image, size, upscale_image) for image in output]


def _second_pass_kwargs(
    img2img_pipe: DiffusionPipeline, request: Txt2ImgRequest, seeds: Sequence[int], latent_mode: bool
) -> dict[str, Any]:
    """The second pass's start noise (mixed with the variation seed's) and an inpainting model's blank mask.

    A picture is encoded first (its VAE sample is each generator's first draw, the noise the second); latents go
    in as they are (the noise is the first draw).
    """
    width, height = request.hires_size.target
    variation: dict[str, Any] = {}
    conditioning = blank_mask_kwargs(img2img_pipe, len(seeds), width, height)  # an inpainting model's
    if conditioning:
        conditioning.update(width=width, height=height)
    if latent_mode:
        variation["start_noise"] = variation_noise(request, seeds, LATENT_SCALE, draw=1)
    else:
        variation["start_noise"] = variation_noise(request, seeds, LATENT_SCALE, draw=2)
        variation.update(variation_vae_kwargs(request, seeds, draws=[1]))
    return {**variation, **conditioning}
