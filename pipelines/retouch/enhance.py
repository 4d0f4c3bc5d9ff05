"""Model-free photo enhancement: levels, white balance, contrast, saturation, denoise, sharpen — each with a
strength from 0 (unchanged) to 1 — and :func:`auto_enhance_settings`, which picks strengths from the image's
statistics. Applied in a fixed order: denoise → white balance → levels → contrast → saturation → sharpen (noise is
removed before anything amplifies it; sharpening comes last). An alpha channel passes through untouched.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from pipelines.retouch import RetouchError
from pipelines.retouch.pixels import merge_alpha, split_alpha

__all__ = ["ENHANCE_FIELDS", "auto_enhance_settings", "enhance"]

ENHANCE_FIELDS = ("levels", "white_balance", "contrast", "saturation", "denoise", "sharpen")

# Luma weights (Rec. 601), as PIL's "L" conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_CLIP_PERCENT = 0.5  # levels ignores this share of the darkest and brightest pixels
_MAX_CONTRAST_GAIN = 1.0  # contrast 1 → deviations from the mean ×2
_MAX_SATURATION_GAIN = 1.0  # saturation 1 → chroma ×2
_MAX_DENOISE_H = 15.0  # OpenCV non-local means filter strength at denoise 1
_SHARPEN_SIGMA = 1.2
_MAX_SHARPEN_AMOUNT = 1.5  # unsharp mask amount at sharpen 1


def enhance(
    image: Image.Image,
    *,
    levels: float = 0.0,
    white_balance: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    denoise: float = 0.0,
    sharpen: float = 0.0,
) -> Image.Image:
    """Apply each adjustment at its strength (0..1; 0 leaves the pixels exactly as they were).

    - ``levels``: stretch the tonal range so the darkest/brightest 0.5 % reach black/white (same curve for all
      channels, so colours keep their balance).
    - ``white_balance``: grey-world correction on the least colourful 30 % of the pixels (where a cast shows; a
      logo's red does not count as a cast) — scale the channels so those pixels' means meet.
    - ``contrast``: spread values away from the mean luminance (up to ×2).
    - ``saturation``: push colours away from their own grey (up to ×2 chroma).
    - ``denoise``: OpenCV non-local means (filter strength up to 15).
    - ``sharpen``: unsharp mask (Gaussian σ 1.2, amount up to 1.5).

    Raises :class:`RetouchError` for a strength outside 0..1.
    """
    # 1. check inputs
    strengths = _by_field(levels, white_balance, contrast, saturation, denoise, sharpen)
    for name, value in strengths.items():
        _check_strength(name, value)
    rgb, alpha = split_alpha(image)
    if not any(strengths.values()):
        return merge_alpha(rgb, alpha) if alpha is not None or image.mode != "RGB" else image.copy()

    # 2. denoise (on 8-bit pixels, before anything amplifies the noise)
    pixels = np.asarray(rgb)
    if denoise:
        h = _MAX_DENOISE_H * denoise
        pixels = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(pixels), None, h, h, 7, 21)
    x = pixels.astype(np.float32)

    # 3. white balance, levels, contrast, saturation, sharpen
    if white_balance:
        x = _white_balance(x, white_balance)
    if levels:
        x = _levels(x, levels)
    if contrast:
        mean = float((x @ _LUMA).mean())
        x = mean + (x - mean) * (1.0 + _MAX_CONTRAST_GAIN * contrast)
    if saturation:
        grey = (x @ _LUMA)[..., None]
        x = grey + (x - grey) * (1.0 + _MAX_SATURATION_GAIN * saturation)
    if sharpen:
        blurred = cv2.GaussianBlur(x, (0, 0), _SHARPEN_SIGMA)
        x = x + (x - blurred) * (_MAX_SHARPEN_AMOUNT * sharpen)

    # 4. back to 8 bits; alpha untouched
    out = Image.fromarray(np.clip(np.rint(x), 0, 255).astype(np.uint8), "RGB")
    return merge_alpha(out, alpha)


def auto_enhance_settings(image: Image.Image) -> dict[str, float]:
    """Strengths for :func:`enhance` chosen from the image's statistics (each rounded to 0.05).

    Each adjustment is measured on the image as the adjustments before it would leave it (white balance first,
    then levels, contrast, saturation), so a cast that white balance removes is not also "saturation". A
    well-exposed, neutral, clean image gets ~0 for everything but a light sharpen; a dull image gets levels and
    contrast, a colour cast white balance, a washed-out one saturation, a noisy one denoise (and then no
    sharpening). Transparent pixels are ignored.
    """
    rgb, alpha = split_alpha(image)
    factor = min(1.0, 256 / max(rgb.size))  # statistics need no more than ~256 px
    if factor < 1:
        size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
        rgb = rgb.resize(size, Image.Resampling.BOX)
        alpha = None if alpha is None else alpha.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(rgb, np.float32)
    valid = np.ones(pixels.shape[:2], bool) if alpha is None else np.asarray(alpha) > 127
    if valid.sum() < 16:
        return dict.fromkeys(ENHANCE_FIELDS, 0.0)

    # denoise / sharpen: noise level estimated from the luminance (Immerkær's fast estimator)
    sigma = _noise_sigma(np.asarray(rgb.convert("L"), np.float32)) / max(factor, 1e-6) ** 0.5
    denoise = _clamp01((sigma - 2.5) / 10.0)
    sharpen = 0.25 if sigma < 2.5 else 0.0
    x = cv2.GaussianBlur(pixels, (0, 0), 1.0)  # the statistics below should not count noise

    # white balance: how far the least colourful pixels' channel means are from their grey
    means = _grey_means(x[valid])
    grey = float(means.mean())
    cast = float(np.abs(means - grey).max() / max(grey, 1.0))
    white_balance = _clamp01((cast - 0.03) / 0.1)
    if white_balance:
        x = _white_balance(x, white_balance, valid)

    # levels: how much of the 0..255 range the image spans
    lo, hi = np.percentile(x[valid], [_CLIP_PERCENT, 100 - _CLIP_PERCENT])
    levels = _clamp01((0.92 - (hi - lo) / 255.0) / 0.4)
    if levels:
        x = _levels(x, levels, valid)

    # contrast: the luminance spread
    std = float((x[valid] @ _LUMA).std())
    contrast = _clamp01((48.0 - std) / 60.0)

    # saturation: how colourful the coloured pixels are (none, or few: greyscale, a black-on-white logo)
    px = x[valid]
    chroma = px.max(axis=1) - px.min(axis=1)
    coloured = chroma[chroma > 12.0]
    saturation = (
        0.0 if coloured.size < 0.05 * chroma.size else _clamp01((60.0 - float(np.median(coloured))) / 80.0)
    )

    values = _by_field(levels, white_balance, contrast, saturation, denoise, sharpen)
    return {k: round(round(v * 20) / 20, 2) for k, v in values.items()}


def _by_field(*strengths: float) -> dict[str, float]:
    """The strengths (in ENHANCE_FIELDS order) by field name."""
    return dict(zip(ENHANCE_FIELDS, strengths, strict=True))


def _check_strength(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RetouchError(f"{name} must be a number from 0 to 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise RetouchError(f"{name} must be from 0 to 1, got {value:g}")


def _grey_means(px: np.ndarray) -> np.ndarray:
    """Channel means of the least colourful 30 % of ``(N, 3)`` pixels: the ones that should be grey."""
    chroma = px.max(axis=1) - px.min(axis=1)
    return px[chroma <= np.percentile(chroma, 30)].mean(axis=0)


def _white_balance(x: np.ndarray, strength: float, valid: np.ndarray | None = None) -> np.ndarray:
    means = _grey_means(x.reshape(-1, 3) if valid is None else x[valid])
    grey = float(means.mean())
    gains = grey / np.maximum(means, 1.0)
    return x * (gains**strength)


def _levels(x: np.ndarray, strength: float, valid: np.ndarray | None = None) -> np.ndarray:
    lo, hi = np.percentile(x if valid is None else x[valid], [_CLIP_PERCENT, 100 - _CLIP_PERCENT])
    if hi - lo < 1.0:
        return x
    # Interpolate the curve's end points, so strength 1 maps lo→0 and hi→255.
    new_lo, new_hi = lo * (1 - strength), hi + (255.0 - hi) * strength
    return new_lo + (x - lo) * ((new_hi - new_lo) / (hi - lo))


def _noise_sigma(grey: np.ndarray) -> float:
    """Immerkær (1996): σ of additive Gaussian noise from a 3×3 Laplacian-difference kernel."""
    if min(grey.shape) < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    h, w = response.shape
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6 * h * w))


def _clamp01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))
