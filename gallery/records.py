"""What the gallery hands out: one image's indexed facts, and the error for an unknown id."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFound


class ImageNotFound(NotFound):
    """No gallery image has this id (or its file is gone)."""


@dataclass(frozen=True)
class GalleryImage:
    """One indexed image. `relpath` is relative to the outputs folder, "/"-separated; `created` is UTC.

    `favourite` comes from the favourites file beside the images, so it survives index rebuilds.
    """

    id: int
    relpath: str
    created: str
    task: str
    author: str
    model: str
    seed: int
    width: int
    height: int
    prompt: str
    negative_prompt: str
    infotext: str
    favourite: bool = False
