"""Masks and compositing for inpaint and outpaint.

Masks are ``"L"`` images the size of the picture they belong to: 255 = repaint, 0 = keep. A *hard* mask
holds only 0 and 255; :func:`feather` turns it into a soft one whose blend band lies inside the painted
area, so :func:`composite` leaves every pixel outside the mask byte-identical to the original. Problems the
user can fix raise :class:`ImageInputError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, cast

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

from core.errors import ImageInputError
from core.images import MAX_PIXELS, PIXEL_MODES, has_alpha, to_rgb_or_rgba

OutpaintFill = Literal["edge stretch", "noise"]
# Lookup table that turns an "L" image into a hard mask: luminance >= 128 is "repaint".
_THRESHOLD_128 = (0,) * 128 + (255,) * 128
_NONZERO = (0,) + (255,) * 255
# (blur radius, repeats) of the smearing passes of the "fill" masked content, as in A1111.
_FILL_PASSES = ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1))


# --- masks --------------------------------------------------------------------------------------------


def mask_from_upload(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """An uploaded mask image → hard ``"L"`` mask of ``size``; white (luminance ≥ 128) means repaint.

    A mask with transparency (not every alpha value 255) is a painted layer: there, any alpha > 0 means
    repaint. A mask of another size is refused rather than silently resized.
    """
    _require_size(mask, size, "the mask")
    if has_alpha(mask):
        alpha = _alpha(mask)
        lowest, _ = cast(tuple[int, int], alpha.getextrema())  # one band: (min, max)
        if lowest < 255:
            return alpha.point(_NONZERO)
    return _luminance(mask).point(_THRESHOLD_128)


def mask_from_layers(layers: Sequence[Image.Image | None], size: tuple[int, int]) -> Image.Image:
    """Image-editor layers → hard ``"L"`` mask: the union of every painted (alpha > 0) pixel.

    Missing layers (None) are skipped; a layer without an alpha channel counts its bright pixels
    (luminance ≥ 128). With no painted pixel the mask is all zero (see :func:`require_nonempty`).
    """
    union = Image.new("L", size, 0)
    for index, layer in enumerate(layers):
        if layer is None:
            continue
        _require_size(layer, size, f"layer {index + 1}")
        painted = (
            _alpha(layer).point(_NONZERO) if has_alpha(layer) else _luminance(layer).point(_THRESHOLD_128)
        )
        union = ImageChops.lighter(union, painted)
    return union


def invert_mask(mask: Image.Image) -> Image.Image:
    """The ``"L"`` mask with repaint and keep swapped (255 - value)."""
    return ImageOps.invert(_as_l(mask))


def require_nonempty(mask: Image.Image) -> None:
    """Refuse a mask with no pixel to repaint."""
    if _as_l(mask).getbbox() is None:
        raise ImageInputError("the mask is empty: paint the area to change, or upload a mask")


def feather(mask: Image.Image, blur_px: int) -> Image.Image:
    """Soft ``"L"`` mask: the hard mask blurred by ``blur_px``, kept at 0 wherever the hard mask is 0.

    The blend band therefore lies inside the painted area, and every pixel outside it stays exactly the
    original after :func:`composite`. ``blur_px`` 0 returns the hard mask unchanged.
    """
    if blur_px < 0:
        raise ValueError(f"mask blur must be 0 or more pixels, got {blur_px}")
    hard = _as_l(mask)
    if blur_px == 0:
        return hard.copy()
    blurred = hard.filter(ImageFilter.GaussianBlur(blur_px))
    return ImageChops.darker(blurred, hard)


def mask_crop_box(
    mask: Image.Image, padding: int, target_aspect: float | None = None
) -> tuple[int, int, int, int]:
    """The region to repaint for "only masked" inpainting, as ``(left, top, right, bottom)``, right/bottom exclusive.

    The bounding box of the mask's nonzero pixels, grown by ``padding`` on every side; with
    ``target_aspect`` (width / height) it is then grown around its centre to that aspect, shifted back
    inside the image where it sticks out, and clipped to the image where the image is too small (as
    A1111's ``expand_crop_region``). The box never shrinks below the padded mask.
    """
    if padding < 0:
        raise ValueError(f"padding must be 0 or more pixels, got {padding}")
    if target_aspect is not None and not (math.isfinite(target_aspect) and target_aspect > 0):
        raise ValueError(f"the target aspect ratio must be a positive number, got {target_aspect}")
    box = _as_l(mask).getbbox()
    if box is None:
        raise ImageInputError("the mask is empty: paint the area to change, or upload a mask")
    image_w, image_h = mask.size
    left, top, right, bottom = box
    left, top = max(left - padding, 0), max(top - padding, 0)
    right, bottom = min(right + padding, image_w), min(bottom + padding, image_h)
    if target_aspect is None:
        return left, top, right, bottom

    box_w, box_h = right - left, bottom - top
    if box_w / box_h > target_aspect:
        top, bottom = _grow_span(top, bottom, round(box_w / target_aspect), image_h)
    else:
        left, right = _grow_span(left, right, round(box_h * target_aspect), image_w)
    return left, top, right, bottom


def _grow_span(start: int, end: int, length: int, limit: int) -> tuple[int, int]:
    """Grow [start, end) around its centre to ``length`` (at most ``limit``), kept inside [0, limit)."""
    length = min(max(length, end - start), limit)
    extra = length - (end - start)
    start -= extra // 2
    end += extra - extra // 2
    if end > limit:
        start, end = start - (end - limit), limit
    if start < 0:
        start, end = 0, end - start
    return start, end


def _require_size(image: Image.Image, size: tuple[int, int], what: str) -> None:
    if image.size != tuple(size):
        raise ImageInputError(
            f"{what} is {image.width}×{image.height} but the image is {size[0]}×{size[1]}: "
            "use a mask the same size as the image"
        )


def _alpha(image: Image.Image) -> Image.Image:
    if image.mode not in ("RGBA", "LA"):
        image = image.convert("RGBA")
    return image.getchannel("A")


def _luminance(image: Image.Image) -> Image.Image:
    """The "L" luminance of any mode, ignoring alpha (no premultiplying)."""
    if image.mode == "L":
        return image
    return to_rgb_or_rgba(image).convert("RGB").convert("L")


def _as_l(mask: Image.Image) -> Image.Image:
    return mask if mask.mode == "L" else _luminance(mask)


# --- compositing --------------------------------------------------------------------------------------


def composite(original: Image.Image, generated: Image.Image, soft_mask: Image.Image) -> Image.Image:
    """Paste ``generated`` over ``original`` through ``soft_mask``.

    Where the mask is 0 the result is byte-identical to the original, where it is 255 it is the generated
    image, and in between a linear blend. The result has the original's mode; an RGBA original keeps its
    alpha channel exactly.
    """
    if not (original.size == generated.size == soft_mask.size):
        raise ValueError(
            f"composite needs images of one size: original {original.width}×{original.height}, "
            f"generated {generated.width}×{generated.height}, mask {soft_mask.width}×{soft_mask.height}"
        )
    if original.mode not in PIXEL_MODES:
        raise ValueError(f"composite works on RGB, RGBA or L images, not {original.mode!r}")
    mask = _as_l(soft_mask)
    if original.mode == "RGBA":
        colour = Image.composite(generated.convert("RGB"), original.convert("RGB"), mask)
        result = colour.convert("RGBA")
        result.putalpha(original.getchannel("A"))
        return result
    return Image.composite(generated.convert(original.mode), original, mask)


def fill_masked_area(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill" masked content: the masked area repainted with colours smeared in from around it.

    The unmasked pixels are blurred outward at decreasing radii and layered over each other, so the hole
    takes the surrounding colours. Pixels outside the mask are unchanged; a fully masked image, having no
    surroundings, comes out mid-grey. The result has the image's mode (RGB, RGBA or L).
    """
    _require_size(mask, image.size, "the mask")
    hard = _as_l(mask).point(_NONZERO)
    keep = ImageOps.invert(hard)
    if keep.getbbox() is None:
        grey = Image.new("RGB", image.size, (128, 128, 128))
        return composite(image if image.mode in PIXEL_MODES else image.convert("RGB"), grey, hard)

    rgb = image.convert("RGB")
    known = Image.new("RGBa", image.size)
    known.paste(rgb.convert("RGBA").convert("RGBa"), mask=keep)
    smeared = Image.new("RGBA", image.size)
    for radius, repeats in _FILL_PASSES:
        layer = known.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            smeared.alpha_composite(layer)
    base = image if image.mode in PIXEL_MODES else rgb
    return composite(base, smeared.convert("RGB"), hard)


def extend_canvas(
    image: Image.Image,
    *,
    left: int = 0,
    right: int = 0,
    top: int = 0,
    bottom: int = 0,
    fill: OutpaintFill = "edge stretch",
    seed: int = 0,
) -> tuple[Image.Image, Image.Image]:
    """Outpainting canvas: the image pasted at ``(left, top)`` on a larger canvas, and its mask.

    The new area is pre-filled by stretching the image's edge pixels outward ("edge stretch") or with
    random noise from ``seed`` ("noise"; new pixels are opaque). Returns ``(canvas, mask)`` where the hard
    ``"L"`` mask is 255 exactly on the new area and 0 on the original.
    """
    amounts = {"left": left, "right": right, "top": top, "bottom": bottom}
    negative = [f"{side}={amount}" for side, amount in amounts.items() if amount < 0]
    if negative:
        raise ValueError(f"outpaint amounts must be 0 or more pixels, got {', '.join(negative)}")
    if not any(amounts.values()):
        raise ValueError("nothing to extend")
    if fill not in ("edge stretch", "noise"):
        raise ValueError(f"unknown outpaint fill {fill!r}; choose edge stretch or noise")
    width, height = image.width + left + right, image.height + top + bottom
    if width * height > MAX_PIXELS:
        raise ImageInputError(
            f"the extended canvas would be {width}×{height} = {width * height:,} pixels; "
            f"the limit is {MAX_PIXELS:,}: extend by less"
        )

    source = image if image.mode in PIXEL_MODES else to_rgb_or_rgba(image)
    pixels = np.asarray(source)
    pad = ((top, bottom), (left, right)) + (((0, 0),) if pixels.ndim == 3 else ())
    if fill == "edge stretch":
        canvas = np.pad(pixels, pad, mode="edge")
    else:
        canvas = np.random.default_rng(seed).integers(
            0, 256, size=(height, width, *pixels.shape[2:]), dtype=np.uint8
        )
        if source.mode == "RGBA":
            canvas[..., 3] = 255
        canvas[top : top + image.height, left : left + image.width] = pixels
    new_area = np.full((height, width), 255, dtype=np.uint8)
    new_area[top : top + image.height, left : left + image.width] = 0
    return Image.fromarray(canvas), Image.fromarray(new_area)


def extension_for_aspect(size: tuple[int, int], aspect: float) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` amounts that extend an image of ``size`` to ``aspect`` (width / height).

    Only ever grows the canvas: the axis that is too short is lengthened, split evenly between its two
    sides (the odd pixel goes right or bottom). Both resulting dimensions are rounded up to multiples of 8,
    so the aspect is matched as closely as multiples of 8 allow.
    """
    if not (math.isfinite(aspect) and aspect > 0):
        raise ValueError(f"the aspect ratio must be a positive number, got {aspect}")
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"the image size must be positive, got {width}×{height}")
    new_w, new_h = _ceil8(width), _ceil8(height)
    if new_w / new_h < aspect:
        new_w = max(new_w, _round8(new_h * aspect))
    elif new_w / new_h > aspect:
        new_h = max(new_h, _round8(new_w / aspect))
    extra_w, extra_h = new_w - width, new_h - height
    return extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2


def _ceil8(value: int) -> int:
    return -(-value // 8) * 8


def _round8(value: float) -> int:
    return max(8, round(value / 8) * 8)
