"""Upscale an image: Lanczos or nearest resampling, or a model upscaler (ESRGAN, Real-ESRGAN, SwinIR, ... — any
architecture spandrel recognises) whose weights the user put in ``models/upscalers/`` (or A1111's ``ESRGAN/``,
``RealESRGAN/``, ``SwinIR/`` folders).

A model runs at its native scale on overlapping tiles (so big images fit in memory) blended with linear ramps,
repeated when one pass is not enough (a ×2 model asked for ×4 runs twice), and the result is resized to the exact
requested size with Lanczos. An alpha channel is upscaled separately with Lanczos.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pipelines.retouch import RetouchError
from pipelines.retouch.pixels import merge_alpha, rgb_to_tensor, split_alpha, tensor_to_rgb
from pipelines.retouch.weights import ModelCache, find_model_files, get_model

if TYPE_CHECKING:
    from spandrel import ImageModelDescriptor

logger = logging.getLogger(__name__)

__all__ = ["BUILTIN_UPSCALERS", "UPSCALER_FOLDERS", "UpscalerCache", "list_upscalers", "upscale"]

BUILTIN_UPSCALERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}
# Where upscaler weights are looked for, under models_dir (Easel's folder first, then A1111's and ComfyUI's).
UPSCALER_FOLDERS = ("upscalers", "ESRGAN", "RealESRGAN", "SwinIR", "upscale_models")
MAX_SCALE = 16.0
MAX_OUTPUT_PIXELS = 8192 * 8192
MAX_MODEL_PASSES = 3
DEFAULT_TILE = 256
MIN_TILE = 16
TILE_OVERLAP = 16


class UpscalerCache(ModelCache):
    """The last loaded upscaler model(s), kept between calls; the caller owns it (see :class:`ModelCache`)."""


def list_upscalers(models_dir: str | Path) -> list[str]:
    """``"Lanczos"``, ``"Nearest"``, then the model upscalers found on disk (file names without extension)."""
    models = find_model_files(models_dir, UPSCALER_FOLDERS)
    return [*BUILTIN_UPSCALERS, *sorted((n for n in models if n not in BUILTIN_UPSCALERS), key=str.lower)]


def upscale(
    image: Image.Image,
    *,
    upscaler: str = "Lanczos",
    scale: float = 2.0,
    target: tuple[int, int] | None = None,
    models_dir: str | Path,
    device: str = "cpu",
    cache: ModelCache | None = None,
    tile_size: int = DEFAULT_TILE,
    on_tile: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """Upscale ``image`` by ``scale``, or to exactly ``target`` = (width, height) when given.

    ``upscaler`` is one of :func:`list_upscalers`. ``tile_size`` is the model's input tile edge in pixels
    (tiles overlap by 16 px, or a quarter of smaller tiles). ``on_tile(done, total)`` is called after each model
    tile (counted over all passes); an exception it raises (a cancel) stops the work. Raises
    :class:`RetouchError` for bad sizes or an unknown/unusable upscaler.
    """
    # 1. check inputs
    size = _output_size(image.size, scale, target)
    if not isinstance(tile_size, int) or tile_size < MIN_TILE:
        raise RetouchError(
            f"tile_size must be a whole number of pixels, at least {MIN_TILE} (got {tile_size!r})"
        )
    rgb, alpha = split_alpha(image)

    # 2. builtin resampling
    if upscaler in BUILTIN_UPSCALERS:
        return merge_alpha(rgb.resize(size, BUILTIN_UPSCALERS[upscaler]), _resize_alpha(alpha, size))

    # 3. model upscaler: find and load it (cached by the caller's cache)
    models = find_model_files(models_dir, UPSCALER_FOLDERS)
    path = models.get(upscaler)
    if path is None:
        raise RetouchError(
            f"unknown upscaler {upscaler!r}; available: {', '.join(list_upscalers(models_dir))}"
        )
    model = get_model(path, device, cache)
    if model.purpose == "FaceSR":
        raise RetouchError(f"{path.name} is a face restoration model: put it in models/face_restore/")
    if model.input_channels != 3 or model.output_channels != 3:
        raise RetouchError(
            f"{path.name}: only RGB models are supported (this one has {model.input_channels} channels)"
        )

    # 4. run it at its native scale, as many passes as needed (at most 3)
    needed = max(size[0] / rgb.width, size[1] / rgb.height)
    passes = _passes(model.scale, needed)
    pixels = np.asarray(rgb)
    counts = [_tile_count(rgb.size, model.scale**p, tile_size) for p in range(passes)]
    for index in range(passes):
        done_before = sum(counts[:index])
        report = None if on_tile is None else (lambda d, _t, b=done_before: on_tile(b + d, sum(counts)))
        tiled = run_tiled(model, pixels, device=device, tile_size=tile_size, on_tile=report)
        pixels = np.clip(np.rint(tiled), 0, 255).astype(np.uint8)
    logger.info("upscaled %s → %s with %s (x%d, %d pass(es))", rgb.size, size, upscaler, model.scale, passes)

    # 5. exact size with Lanczos; alpha separately
    out = Image.fromarray(pixels, "RGB")
    if out.size != size:
        out = out.resize(size, Image.Resampling.LANCZOS)
    return merge_alpha(out, _resize_alpha(alpha, size))


def run_tiled(
    model: ImageModelDescriptor[Any],
    pixels: np.ndarray,
    *,
    device: str = "cpu",
    tile_size: int = DEFAULT_TILE,
    overlap: int | None = None,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run an image model on ``(H, W, 3)`` uint8 pixels tile by tile → ``(H*s, W*s, 3)`` float32 in [0, 255].

    Tiles overlap by ``overlap`` input pixels (default: 16, at most a quarter of the tile); in the overlaps the outputs are blended with linear ramps, so no seam
    shows. An image no bigger than one tile runs in one go. ``on_tile(done, total)`` follows each tile.
    """
    import torch

    height, width = pixels.shape[:2]
    s = model.scale
    overlap = min(TILE_OVERLAP, tile_size // 4) if overlap is None else overlap
    dtype = torch.float16 if device.startswith("cuda") and model.supports_half else torch.float32
    if dtype != next(model.model.parameters()).dtype:
        model.to(dtype)
    acc = np.zeros((height * s, width * s, 3), np.float32)
    weight = np.zeros((height * s, width * s, 1), np.float32)
    ys, xs = _starts(height, tile_size, overlap), _starts(width, tile_size, overlap)
    total, done = len(ys) * len(xs), 0
    with torch.inference_mode():
        for y0 in ys:
            for x0 in xs:
                y1, x1 = min(y0 + tile_size, height), min(x0 + tile_size, width)
                tile = rgb_to_tensor(pixels[y0:y1, x0:x1], device, dtype)
                out = tensor_to_rgb(model(tile))
                wy = _ramp((y1 - y0) * s, overlap * s, y0 > 0, y1 < height)
                wx = _ramp((x1 - x0) * s, overlap * s, x0 > 0, x1 < width)
                w = (wy[:, None] * wx[None, :])[..., None]
                acc[y0 * s : y1 * s, x0 * s : x1 * s] += out * w
                weight[y0 * s : y1 * s, x0 * s : x1 * s] += w
                done += 1
                if on_tile is not None:
                    on_tile(done, total)
    return acc / weight


def _tile_count(size: tuple[int, int], factor: int, tile: int) -> int:
    overlap = min(TILE_OVERLAP, tile // 4)
    return len(_starts(size[1] * factor, tile, overlap)) * len(_starts(size[0] * factor, tile, overlap))


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(length: int, ramp: int, rise: bool, fall: bool) -> np.ndarray:
    w = np.ones(length, np.float32)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        edge = (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
        if rise:
            w[:ramp] = np.minimum(w[:ramp], edge)
        if fall:
            w[-ramp:] = np.minimum(w[-ramp:], edge[::-1])
    return w


def _passes(model_scale: int, needed: float) -> int:
    if model_scale <= 1:
        return 1
    passes = 1
    while model_scale**passes < needed - 1e-6 and passes < MAX_MODEL_PASSES:
        passes += 1
    return passes


def _output_size(size: tuple[int, int], scale: float, target: Sequence[int] | None) -> tuple[int, int]:
    if target is not None:
        if len(target) != 2 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in target
        ):
            raise RetouchError(f"target must be (width, height) in whole pixels, got {target!r}")
        out = (int(target[0]), int(target[1]))
        if min(out) < 1:
            raise RetouchError(f"target size must be positive, got {out[0]}x{out[1]}")
    else:
        if not isinstance(scale, int | float) or not math.isfinite(scale) or not 0 < scale <= MAX_SCALE:
            raise RetouchError(f"scale must be a number in (0, {MAX_SCALE:g}], got {scale!r}")
        out = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    if out[0] * out[1] > MAX_OUTPUT_PIXELS:
        raise RetouchError(
            f"the result would be {out[0]}x{out[1]} px, over the {MAX_OUTPUT_PIXELS // 2**20} MP limit; "
            "ask for a smaller size"
        )
    return out


def _resize_alpha(alpha: Image.Image | None, size: tuple[int, int]) -> Image.Image | None:
    return None if alpha is None else alpha.resize(size, Image.Resampling.LANCZOS)
