"""Synthetic test pictures for the retouch operations, each with what is known about it (ground-truth masks)."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["dull_cast", "iou", "logo", "neutral", "noisy_flat", "product", "soft_edges"]


def product(
    seed: int = 0, width: int = 192, height: int = 144, cy: float = 0.58
) -> tuple[Image.Image, np.ndarray]:
    """A shaded blue bottle (body + cap, with a highlight) on a light studio background with a gradient and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = 232 + 8 * (xx / width - 0.5) + 5 * (yy / height - 0.5)
    img = np.repeat(background[..., None], 3, axis=2) + np.array([0, 1, 3], np.float32)
    body = ((xx - width / 2) / (width * 0.22)) ** 2 + ((yy - height * cy) / (height * 0.3)) ** 2 <= 1
    cap = (
        (np.abs(xx - width / 2) <= width * 0.07) & (yy >= height * (cy - 0.44)) & (yy < height * (cy - 0.24))
    )
    truth = body | cap
    shaded = np.array([40, 95, 170], np.float32) * (0.65 + 0.5 * (xx / width))[..., None]
    highlight = (xx - width * 0.42) ** 2 + (yy - height * cy) ** 2 <= (width * 0.04) ** 2
    shaded[highlight] = shaded[highlight] * 0.4 + 150
    img[truth] = shaded[truth]
    img += rng.normal(0, 2.0, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)), truth


def logo(width: int = 192, height: int = 144) -> tuple[Image.Image, np.ndarray]:
    """A flat-colour logo on white: a red ring (its hole is background), a navy bar, a yellow square."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.full((height, width, 3), 255, np.uint8)
    r = np.hypot(xx - width * 0.31, yy - height * 0.5)
    ring = (r <= height * 0.28) & (r >= height * 0.15)
    bar = (xx >= width * 0.6) & (xx < width * 0.91) & (yy >= height * 0.35) & (yy < height * 0.49)
    square = (xx >= width * 0.625) & (xx < width * 0.73) & (yy >= height * 0.59) & (yy < height * 0.73)
    img[ring], img[bar], img[square] = (220, 40, 40), (20, 40, 120), (250, 180, 0)
    return Image.fromarray(img), ring | bar | square


def dull_cast(width: int = 128, height: int = 96) -> Image.Image:
    """Low contrast (values ~95..165) with a warm colour cast: red up, blue down; some shapes for structure."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 110 + 40 * (xx / width) + 10 * np.sin(yy / 7.0)
    base[(xx - 40) ** 2 + (yy - 50) ** 2 < 300] -= 15
    rgb = np.stack([base + 22, base + 4, base - 18], axis=2)
    colourful = (xx > 80) & (yy < 40)
    rgb[colourful] += np.array([12, -6, -6], np.float32)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def neutral(width: int = 128, height: int = 96) -> Image.Image:
    """Well exposed and neutral: a full-range grey ramp with red, green and blue patches of equal size."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = np.repeat((xx / (width - 1) * 255)[..., None], 3, axis=2)
    for i, colour in enumerate(((200, 60, 60), (60, 200, 60), (60, 60, 200))):
        patch = (xx >= 16 + 36 * i) & (xx < 40 + 36 * i) & (yy >= 36) & (yy < 60)
        grey[patch] = colour
    return Image.fromarray(np.rint(grey).astype(np.uint8))


def noisy_flat(seed: int = 0, size: int = 64, sigma: float = 12.0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.full((size, size, 3), (120, 130, 140), np.float32) + rng.normal(0, sigma, (size, size, 3))
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def soft_edges(width: int = 96, height: int = 96) -> Image.Image:
    """Stripes and a disc, slightly blurred: something for a sharpener to work on."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.where((xx // 12) % 2 == 0, 70.0, 180.0)
    pixels[(xx - 48) ** 2 + (yy - 48) ** 2 < 400] = 230.0
    rgb = Image.fromarray(np.repeat(pixels[..., None], 3, axis=2).astype(np.uint8))
    from PIL import ImageFilter

    return rgb.filter(ImageFilter.GaussianBlur(1.5))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))
