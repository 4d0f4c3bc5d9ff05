"""SD upscale: enlarge with any upscaler, then repaint the result at low strength tile by tile.

The model works on overlapping tiles of `tile_size` px (so large pictures fit the GPU), each through the
ordinary img2img path on the loaded model's shared weights; the tiles are put back with feathered weights
(linear ramps over the overlap), so no seam shows where one tile ends. Transparency is carried over from the
upscaled picture unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.images import encode_png
from core.requests import Img2ImgRequest, working_size
from core.retouch_ops import SdUpscaleOp
from core.tiles import tile_boxes
from pipelines.img2img import run_img2img
from pipelines.retouch.upscale import UpscalerCache, upscale

# (tile index, step within the tile, steps per tile, latents) → keep going?
TileStepCallback = Callable[[int, int, int, torch.Tensor], bool]


def tile_weights(box: tuple[int, int, int, int], size: tuple[int, int], ramp: int) -> np.ndarray:
    """Blend weights of one tile: 1 inside, rising linearly over `ramp` px from each edge that has a
    neighbour (edges on the picture's border stay at 1). Never 0, so every covered pixel has weight."""
    left, top, right, bottom = box
    width, height = size

    def axis(length: int, rise: bool, fall: bool) -> np.ndarray:
        weights = np.ones(length, dtype=np.float64)
        n = min(ramp, length // 2)
        if n > 0:
            edge = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
            if rise:
                weights[:n] = np.minimum(weights[:n], edge)
            if fall:
                weights[length - n :] = np.minimum(weights[length - n :], edge[::-1])
        return weights

    wx = axis(right - left, left > 0, right < width)
    wy = axis(bottom - top, top > 0, bottom < height)
    return wy[:, None] * wx[None, :]


def blend_tiles(
    tiles: Sequence[tuple[tuple[int, int, int, int], np.ndarray]], size: tuple[int, int], ramp: int
) -> np.ndarray:
    """Tiles (box, H×W×3 pixels) covering `size` blended into one uint8 picture with :func:`tile_weights`."""
    width, height = size
    total = np.zeros((height, width, 3), dtype=np.float64)
    weight_sum = np.zeros((height, width, 1), dtype=np.float64)
    for box, pixels in tiles:
        left, top, right, bottom = box
        weights = tile_weights(box, size, ramp)[:, :, None]
        total[top:bottom, left:right] += pixels * weights
        weight_sum[top:bottom, left:right] += weights
    if not weight_sum.all():
        raise ValueError("the tiles do not cover the whole picture")
    return np.clip(np.rint(total / weight_sum), 0, 255).astype(np.uint8)


def _tile_request(op: SdUpscaleOp, tile: Image.Image) -> Img2ImgRequest:
    width, height = working_size(*tile.size)
    return Img2ImgRequest(
        **op.sampling_fields(),
        init_image=encode_png(tile),
        width=width,
        height=height,
        denoising_strength=op.denoising_strength,
        resize_mode="just resize",
    )


def steps_per_tile(op: SdUpscaleOp) -> int:
    """Sampling steps img2img runs for one tile (the strength's share of the steps)."""
    return int(op.steps * op.denoising_strength)


def sd_upscale(
    pipe: DiffusionPipeline,
    op: SdUpscaleOp,
    image: Image.Image,
    *,
    models_dir: Path,
    device: str,
    cache: UpscalerCache | None,
    on_step: TileStepCallback,
) -> Image.Image:
    """`image` upscaled by `op.scale` with `op.upscaler`, then repainted tile by tile (`pipe`: img2img)."""
    # 1. upscale (any upscaler); the alpha channel, if any, is kept as the upscaler made it
    big = upscale(
        image, upscaler=op.upscaler, scale=op.scale, models_dir=models_dir, device=device, cache=cache
    )
    alpha = big.getchannel("A") if big.mode == "RGBA" else None
    rgb = big.convert("RGB")

    # 2. repaint each tile at low strength
    painted_tiles = []
    for index, box in enumerate(tile_boxes(rgb.width, rgb.height, op.tile_size, op.overlap)):
        tile = rgb.crop(box)

        def tile_step(step: int, steps: int, latents: torch.Tensor, index: int = index) -> bool:
            return on_step(index, step, steps, latents)

        painted = run_img2img(pipe, _tile_request(op, tile), [op.seed], tile_step)[0]
        if painted.size != tile.size:
            painted = painted.resize(tile.size, Image.Resampling.LANCZOS)
        painted_tiles.append((box, np.asarray(painted, dtype=np.float64)))

    # 3. the tiles blended into one picture through feathered weights
    result = Image.fromarray(blend_tiles(painted_tiles, rgb.size, op.overlap), "RGB")
    if alpha is not None:
        result.putalpha(alpha)
    return result
