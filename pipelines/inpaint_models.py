"""Inpainting checkpoints (9-channel UNets) outside the inpaint task, as A1111 runs them in txt2img and img2img.

Such a UNet takes, beside the latents, a mask and the latents of the masked picture. Without a mask A1111
conditions it on a blank mask: the mask is all ones (everything may change) and the masked picture is a zero
picture (grey 0.5, which is 0 in the VAE's [-1, 1] range), in txt2img (`txt2img_image_conditioning`) and in img2img
with the default mask weight 1 (`img2img_image_conditioning`: the source × (1 − mask) is zero). The masked
picture's latents are the VAE's mean for that zero picture (no random draw, so the seeds' noise streams are those
of the ordinary pipelines).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

INPAINT_CHANNELS = 9


def is_inpainting(pipe: DiffusionPipeline) -> bool:
    """True when `pipe`'s UNet is an inpainting one (latents + mask + masked picture latents)."""
    return pipe.unet.config.in_channels == INPAINT_CHANNELS


def blank_mask_kwargs(pipe: DiffusionPipeline, count: int, width: int, height: int) -> dict[str, Any]:
    """Inpaint-pipeline arguments for A1111's blank-mask conditioning of `count` images of width × height;
    none for an ordinary (4-channel) model."""
    if not is_inpainting(pipe):
        return {}
    vae = pipe.vae
    with torch.inference_mode():
        zero = torch.zeros(1, 3, height, width, device=vae.device, dtype=vae.dtype)
        latents = vae.encode(zero).latent_dist.mode() * vae.config.scaling_factor
    mask = Image.new("L", (width, height), 255)
    return {"mask_image": [mask] * count, "masked_image_latents": latents.repeat(count, 1, 1, 1)}


def blank_picture(width: int, height: int) -> Image.Image:
    """The grey picture an inpaint pipeline is handed where there is no source (txt2img): with the mask all
    ones, nothing of it reaches the model."""
    return Image.new("RGB", (width, height), (127, 127, 127))
