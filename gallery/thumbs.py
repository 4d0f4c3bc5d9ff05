"""Thumbnails: small WebP previews cached in `outputs/.thumbs/<relpath>.<size>.webp`.

A thumbnail is made on first request and carries its PNG's modification time as its own, so it is
current exactly while the two times agree: a changed (or replaced) PNG gets a new one on next request.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from gallery.files import THUMBS_DIR

THUMB_SIZES = (128, 256, 512)
WEBP_QUALITY = 82


def check_size(size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size not in THUMB_SIZES:
        raise ValueError(f"thumbnail size must be one of {THUMB_SIZES} (got {size!r})")
    return size


def thumb_relpath(relpath: str, size: int) -> str:
    """Where the thumbnail of the image at `relpath` lives, relative to the outputs folder."""
    return f"{THUMBS_DIR}/{relpath}.{size}.webp"


def render(png_path: Path, size: int) -> bytes:
    """WebP bytes of the PNG scaled to fit `size`×`size` (aspect kept, never enlarged)."""
    with Image.open(png_path, formats=["PNG"]) as image:
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        picture = image.convert("RGBA" if transparent else "RGB")
    picture.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    picture.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()
