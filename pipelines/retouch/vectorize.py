"""Logo export: trace an image to SVG with vtracer, and a zip of square transparent PNGs at icon sizes."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from pipelines.retouch import RetouchError

__all__ = ["LOGO_SIZES", "logo_pngs_zip", "to_svg"]

LOGO_SIZES = (64, 128, 256, 512, 1024)
MAX_LOGO_SIZE = 4096
MAX_TRACE_PIXELS = 4096 * 4096


def to_svg(image: Image.Image, *, colors: Literal["color", "binary"] = "color", detail: float = 0.5) -> str:
    """The image traced to SVG (stacked spline paths), the same size in SVG user units.

    ``colors``: ``"color"`` keeps the colours (quantised), ``"binary"`` traces the dark parts (luminance below
    half) in black. ``detail`` 0..1:
    higher keeps smaller specks (vtracer's ``filter_speckle`` 8 → 1 px), more colour precision (4 → 8 bits) and
    finer colour layers (``layer_difference`` 28 → 4); 0.5 is close to vtracer's defaults. Pixels at least half
    transparent stay uncovered.
    """
    import vtracer

    # 1. check inputs
    if colors not in ("color", "binary"):
        raise RetouchError(f'colors must be "color" or "binary", got {colors!r}')
    if isinstance(detail, bool) or not isinstance(detail, int | float) or not math.isfinite(detail):
        raise RetouchError(f"detail must be a number from 0 to 1, got {detail!r}")
    if not 0.0 <= detail <= 1.0:
        raise RetouchError(f"detail must be from 0 to 1, got {detail:g}")
    if image.width * image.height > MAX_TRACE_PIXELS:
        raise RetouchError(
            f"the image is too big to trace ({image.width}x{image.height}); scale it down first"
        )

    # 2. trace the PNG-encoded pixels; paths are opaque, so alpha is cut at half (vtracer would count any alpha
    #    above 0 as opaque and grow a soft-edged cut-out by its feather)
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    if colors == "binary":  # vtracer thresholds one channel; make it the luminance
        rgba = Image.merge("RGBA", (*rgba.convert("L").convert("RGB").split(), alpha))
    if alpha.getextrema()[0] < 255:
        rgba.putalpha(alpha.point(lambda a: 255 if a >= 128 else 0))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    return vtracer.convert_raw_image_to_svg(
        buffer.getvalue(),
        img_format="png",
        colormode=colors,
        hierarchical="stacked",
        mode="spline",
        filter_speckle=round(8 - 7 * detail),
        color_precision=round(4 + 4 * detail),
        layer_difference=round(28 - 24 * detail),
        corner_threshold=60,
        length_threshold=4.0,
        max_iterations=10,
        splice_threshold=45,
        path_precision=3,
    )


def logo_pngs_zip(image: Image.Image, *, sizes: Sequence[int] = LOGO_SIZES) -> bytes:
    """A zip of ``logo-<size>.png`` files: square, transparent, the subject centred with its aspect kept.

    The subject is the bounding box of the non-transparent pixels (the whole image when it has no transparency);
    it is scaled (Lanczos, premultiplied alpha, so edges get no dark fringe) so its longer side fills the square.
    """
    # 1. check inputs
    sizes = list(sizes)
    if not sizes:
        raise RetouchError("give at least one logo size")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 1 <= size <= MAX_LOGO_SIZE:
            raise RetouchError(f"logo sizes must be whole numbers from 1 to {MAX_LOGO_SIZE}, got {size!r}")
    if len(set(sizes)) != len(sizes):
        raise RetouchError(f"logo sizes repeat: {sizes}")

    # 2. the subject: crop to the non-transparent pixels
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise RetouchError("the image is fully transparent: there is no logo to export")
    subject = rgba.crop(box).convert("RGBa")

    # 3. one square PNG per size, into a zip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for size in sizes:
            archive.writestr(f"logo-{int(size)}.png", _square_png(subject, int(size)))
    return buffer.getvalue()


def _square_png(subject: Image.Image, size: int) -> bytes:
    ratio = size / max(subject.size)
    fitted = (max(1, round(subject.width * ratio)), max(1, round(subject.height * ratio)))
    scaled = subject.resize(fitted, Image.Resampling.LANCZOS).convert("RGBA")
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(scaled, ((size - fitted[0]) // 2, (size - fitted[1]) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
