"""Small image helpers shared by the retouch operations: alpha split/merge, PIL ↔ torch tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = ["has_alpha", "merge_alpha", "split_alpha", "tensor_to_rgb", "rgb_to_tensor"]


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """The image as RGB, and its alpha channel (mode ``L``) when it has one."""
    if has_alpha(image):
        rgba = image.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    return image.convert("RGB"), None


def merge_alpha(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """``rgb`` with ``alpha`` attached (resized with Lanczos when the sizes differ), or ``rgb`` itself."""
    if alpha is None:
        return rgb
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.LANCZOS)
    out = rgb.convert("RGBA")
    out.putalpha(alpha)
    return out


def rgb_to_tensor(rgb: np.ndarray, device: str, dtype: torch.dtype) -> torch.Tensor:
    """``(H, W, 3)`` uint8 → ``(1, 3, H, W)`` float in [0, 1]."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).unsqueeze(0)
    return (tensor.to(torch.float32) / 255.0).to(device=device, dtype=dtype)


def tensor_to_rgb(tensor: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` float in [0, 1] → ``(H, W, 3)`` float32 in [0, 255]."""
    import torch

    array = tensor[0].detach().to(device="cpu", dtype=torch.float32).clamp(0, 1).numpy()
    return array.transpose(1, 2, 0) * 255.0
