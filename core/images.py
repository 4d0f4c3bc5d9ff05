"""Image input safety and resizing for img2img, inpaint and outpaint (masks and compositing: core/masks.py).

Pure PIL and numpy. Everything a user uploads goes through :func:`decode_image` first: the byte size is
checked, the format is identified from its magic bytes before any decoder runs, and the pixel count is
checked from the header before any pixel is decoded. Problems the user can fix raise
:class:`ImageInputError` with a message saying what is wrong and what to do.
"""

from __future__ import annotations

import io
import warnings
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from core.errors import ImageInputError as ImageInputError  # importable from here too

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_PIXELS = 4096 * 4096
MAX_BYTES = 50 * 2**20

ResizeMode = Literal["just resize", "crop and resize", "resize and fill"]
MaskedContent = Literal["original", "fill", "latent noise", "latent nothing"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# Modes composite() and extend_canvas() work in; decode_image() only ever returns RGB or RGBA.
PIXEL_MODES = ("RGB", "RGBA", "L")


# --- decoding -----------------------------------------------------------------------------------------


def sniff_format(data: bytes) -> str | None:
    """The format named by the magic bytes at the start of ``data`` ("PNG", "JPEG", "WEBP"), else None."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(_JPEG_SIGNATURE):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Image.Image:
    """Decode an uploaded PNG, JPEG or WebP into a loaded, upright ``"RGB"`` or ``"RGBA"`` image.

    Nothing is decoded before the byte size, the format (from magic bytes) and the pixel count (from the
    header) have been checked, so oversized files and decompression bombs are refused cheaply.
    """
    # 1. byte size
    if len(data) > max_bytes:
        raise ImageInputError(
            f"the file is {_megabytes(len(data))} MB; the limit is {_megabytes(max_bytes)} MB: "
            "upload a smaller image"
        )
    if not data:
        raise ImageInputError("the file is empty: upload a PNG, JPEG or WebP image")

    # 2. format, from the magic bytes only
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageInputError(
            "only PNG, JPEG or WebP images are accepted: convert the file and upload it again"
        )

    # 3. header only, then the pixel cap, then the pixels
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns between MAX_IMAGE_PIXELS and twice that; refuse those
            # too. (The filter is process-wide while it is in place; it only ever turns this one warning
            # into an error, which is what every caller wants.)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > max_pixels:
                raise ImageInputError(_too_many_pixels(width, height, max_pixels))
            image.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        raise ImageInputError(
            f"the image has too many pixels to open safely; the limit is {limit:,} pixels: upload a smaller image"
        ) from exc
    except Exception as exc:  # any decoder failure on untrusted bytes is the upload's fault
        raise ImageInputError(
            f"the {fmt} file could not be read ({exc}); it may be truncated or damaged: "
            "re-export it and upload it again"
        ) from exc

    # 4. EXIF orientation
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:
        raise ImageInputError(
            f"the image's EXIF orientation could not be applied ({exc}): re-export the image without EXIF data"
        ) from exc

    # 5. RGB or RGBA
    return to_rgb_or_rgba(image)


def encode_png(image: Image.Image) -> bytes:
    """The image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """An ``"RGB"`` copy of the image, with any transparency blended over ``background``."""
    if image.mode == "RGB":
        return image.copy()
    if not has_alpha(image):
        return to_rgb_or_rgba(image)
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    canvas = Image.new("RGBA", image.size, (*background, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return (
        f"the image is {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels: "
        "upload a smaller image"
    )


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and image.has_transparency_data
    )


def to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to "RGB", or "RGBA" where the image carries transparency."""
    if image.mode in ("RGB", "RGBA"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        # 16-bit greyscale PNGs decode as "I;16"/"I"; Pillow's own conversion clips instead of scaling.
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I"):
            values = values / 257.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return image.convert("RGBA" if has_alpha(image) else "RGB")


# --- resizing -----------------------------------------------------------------------------------------


def resize_for_mode(image: Image.Image, width: int, height: int, mode: ResizeMode) -> Image.Image:
    """Resize to exactly ``width``×``height`` the way AUTOMATIC1111's img2img resize modes do (LANCZOS).

    - "just resize": stretch to the new size, ignoring the aspect ratio;
    - "crop and resize": scale to cover the new size, then crop the centre;
    - "resize and fill": scale to fit inside, centre, and fill the empty bands by stretching the image's
      outermost rows (or columns) outward.
    """
    if width < 1 or height < 1:
        raise ValueError(f"the target size must be positive, got {width}×{height}")
    if mode == "just resize":
        return image.resize((width, height), resample=Image.Resampling.LANCZOS)
    if mode not in ("crop and resize", "resize and fill"):
        raise ValueError(
            f"unknown resize mode {mode!r}; choose one of: just resize, crop and resize, resize and fill"
        )

    # 1. scale: to cover the target ("crop and resize") or to fit inside it ("resize and fill")
    ratio, src_ratio = width / height, image.width / image.height
    fit_width = ratio > src_ratio if mode == "crop and resize" else ratio < src_ratio
    if fit_width:
        src_w, src_h = width, max(1, image.height * width // image.width)
    else:
        src_w, src_h = max(1, image.width * height // image.height), height
    resized = image.resize((src_w, src_h), resample=Image.Resampling.LANCZOS)

    # 2. centre (a negative offset crops)
    left, top = width // 2 - src_w // 2, height // 2 - src_h // 2
    result = Image.new(image.mode, (width, height))
    result.paste(resized, (left, top))
    if mode == "crop and resize":
        return result

    # 3. fill the bands: resizing a zero-height (or zero-width) box at an edge stretches that edge outward
    if ratio < src_ratio:
        bottom = height - top - src_h
        if top > 0:
            result.paste(_stretch_edge(resized, (width, top), (0, 0, src_w, 0)), (0, 0))
        if bottom > 0:
            edge = (0, src_h, src_w, src_h)
            result.paste(_stretch_edge(resized, (width, bottom), edge), (0, top + src_h))
    elif ratio > src_ratio:
        right = width - left - src_w
        if left > 0:
            result.paste(_stretch_edge(resized, (left, height), (0, 0, 0, src_h)), (0, 0))
        if right > 0:
            edge = (src_w, 0, src_w, src_h)
            result.paste(_stretch_edge(resized, (right, height), edge), (left + src_w, 0))
    return result


def _stretch_edge(image: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    # Pillow's default (bicubic) filter over a zero-width box, exactly as A1111 calls it.
    return image.resize(size, resample=Image.Resampling.BICUBIC, box=box)
