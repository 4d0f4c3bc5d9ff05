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
    title: str = ""
    """Its own name: an upload's file name ("" when it has none)."""
    user_prompt: str = ""
    """The prompt as its author typed it, before styles ("" when not known)."""
    ops: str = ""
    """A retouch's operations in words ("remove background → upscale ×2")."""
    job: str = ""
    exports: tuple[str, ...] = ()
    """The files its job exported beside it (SVG, logo pack zip): see `Gallery.export_paths`."""

    @property
    def own_words(self) -> str:
        """What its author wrote or named: the title, else the prompt as typed (without the styles' text)."""
        return self.title or self.user_prompt or self.prompt

    @property
    def caption(self) -> str:
        """A one-line caption that starts with the author's own words; a retouch says what it did."""
        words = " ".join(self.own_words.split())
        if self.task != "retouch" or not self.ops:
            return words
        return f"{words} · Retouch: {self.ops}" if words else f"Retouch: {self.ops}"
