"""Cheap live previews: latents → RGB with a fixed linear map (no VAE decode)."""

from __future__ import annotations

import torch
from PIL import Image

# Per-family 4→3 channel factors (the widely used latent approximations for SD 1.x/2.x and SDXL).
_FACTORS = {
    "sd": (
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
    "sdxl": (
        (0.3920, 0.4054, 0.4549),
        (-0.2634, -0.0196, 0.0653),
        (0.0568, 0.1687, -0.0755),
        (-0.3112, -0.2359, -0.2076),
    ),
}


def latent_preview(latents: torch.Tensor, family: str | None) -> Image.Image:
    """An RGB image (1/8 of the output size) approximating the first latent of a batch."""
    factors = torch.tensor(_FACTORS["sdxl" if family == "sdxl" else "sd"], dtype=torch.float32)
    latent = latents[0, :4].detach().to("cpu", torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latent, factors)
    rgb = ((rgb + 1.0) / 2.0).clamp(0.0, 1.0).mul(255).round().to(torch.uint8)
    return Image.fromarray(rgb.numpy(), mode="RGB")
