"""Logo export: trace an image to SVG with vtracer, and a zip of square transparent PNGs at icon sizes (favicon
sizes included), the logo centred with a clear margin."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from pipelines.retouch import RetouchError

__all__ = ["LOGO_PADDING", "LOGO_SIZES", "logo_pngs_zip", "to_svg", "with_view_box"]

LOGO_SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)
LOGO_PADDING = 8.0  # % of the square's side
MAX_LOGO_PADDING = 40.0
MAX_LOGO_SIZE = 4096
_SVG_TAG = re.compile(r"<svg\b[^>]*>")
MAX_TRACE_PIXELS = 4096 * 4096


def to_svg(image: Image.Image, *, colors: Literal["color", "binary"] = "color", detail: float = 0.5) -> str:
    """The image traced to SVG (stacked spline paths), the same size in SVG user units, with a ``viewBox`` so that
    it scales to any box it is shown in.

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
    svg = vtracer.convert_raw_image_to_svg(
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
    return with_view_box(svg, image.width, image.height)


def with_view_box(svg: str, width: int, height: int) -> str:
    """The SVG with ``viewBox="0 0 width height"`` on its root element (kept when it has one)."""
    tag = _SVG_TAG.search(svg)
    if tag is None:
        raise RetouchError("the traced SVG has no <svg> element")
    if "viewBox" in tag.group():
        return svg
    opened = tag.group()[:-1].rstrip("/").rstrip()
    closing = "/>" if tag.group().endswith("/>") else ">"
    return f'{svg[: tag.start()]}{opened} viewBox="0 0 {width} {height}"{closing}{svg[tag.end() :]}'


def logo_pngs_zip(
    image: Image.Image, *, sizes: Sequence[int] = LOGO_SIZES, padding: float = LOGO_PADDING
) -> bytes:
    """A zip of ``logo-<size>.png`` files: square, transparent, the subject centred with its aspect kept.

    The subject is the bounding box of the non-transparent pixels (the whole image when it has no transparency);
    it is scaled (Lanczos, premultiplied alpha, so edges get no dark fringe) so that its longer side fills the
    square less ``padding`` % of the side on each edge (0 = edge to edge).
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
    if not isinstance(padding, int | float) or not 0.0 <= padding <= MAX_LOGO_PADDING:
        raise RetouchError(
            f"logo padding must be from 0 to {MAX_LOGO_PADDING:g} % of the side, got {padding!r}"
        )

    # 2. the subject: crop to the non-transparent pixels
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise RetouchError("the picture is fully transparent: there is no logo to export")
    subject = rgba.crop(box).convert("RGBa")

    # 3. one square PNG per size, into a zip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for size in sizes:
            archive.writestr(f"logo-{int(size)}.png", _square_png(subject, int(size), padding))
    return buffer.getvalue()


def _square_png(subject: Image.Image, size: int, padding: float) -> bytes:
    inner = max(
        1, size - 2 * round(size * padding / 100)
    )  # the margin is whole pixels, the same on each side
    ratio = inner / max(subject.size)
    fitted = (max(1, round(subject.width * ratio)), max(1, round(subject.height * ratio)))
    scaled = subject.resize(fitted, Image.Resampling.LANCZOS).convert("RGBA")
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(scaled, ((size - fitted[0]) // 2, (size - fitted[1]) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
