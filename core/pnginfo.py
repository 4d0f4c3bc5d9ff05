"""Reading generation parameters back out of a picture: the PNG `parameters` text, or EXIF UserComment
(where A1111 puts it in JPEG and WebP files)."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from PIL import Image

from core.images import decode_image, sniff_format
from core.infotext import EASEL_CHUNK_KEY, INFOTEXT_KEY


def read_text_chunks(data: bytes) -> tuple[str, dict[str, str]]:
    """(A1111 infotext or "", the picture's other text items). Raises ImageInputError for non-images."""
    decode_image(data)  # format, size and pixel checks before anything else reads it
    with Image.open(io.BytesIO(data), formats=[sniff_format(data) or "PNG"]) as image:
        image.load()
        items = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}
        geninfo = items.pop(INFOTEXT_KEY, None)
        if geninfo is None:
            geninfo = exif_user_comment(image)
    return geninfo or "", items


def easel_fields(items: Mapping[str, object]) -> dict[str, Any]:
    """The fields of Easel's own JSON chunk among a picture's text items; {} when there is none or it is not
    a JSON object."""
    raw = items.get(EASEL_CHUNK_KEY)
    if not isinstance(raw, str):
        return {}
    try:
        fields = json.loads(raw)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def read_metadata(data: bytes) -> tuple[str, dict[str, Any]]:
    """(A1111 infotext or "", the fields of Easel's JSON chunk) of a picture. ImageInputError for non-images."""
    infotext, items = read_text_chunks(data)
    return infotext, easel_fields(items)


def exif_user_comment(image: Image.Image) -> str | None:
    """A1111 stores JPEG/WebP infotext in EXIF UserComment ("UNICODE\\0" + UTF-16 big-endian)."""
    comment = image.getexif().get_ifd(0x8769).get(0x9286)
    if isinstance(comment, str):
        return comment or None
    if not isinstance(comment, bytes) or len(comment) < 8:
        return None
    prefix, payload = comment[:8], comment[8:]
    codec = {b"UNICODE\x00": "utf-16-be", b"ASCII\x00\x00\x00": "ascii"}.get(prefix, "utf-8")
    return payload.decode(codec, errors="replace").rstrip("\x00") or None
