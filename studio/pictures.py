"""Changing gallery pictures with their ownership checked: star, delete, restore, empty the trash.

Reading the gallery (query, facets, files, thumbnails, metadata) is the Gallery's own (`studio.gallery`); a
change goes through here first (studio.roles): a picture is its author's, NotAllowed names whose it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.backend import GeneratedImage
from core.errors import EaselError, NotAllowed
from core.images import decode_image, to_rgb_or_rgba
from core.pnginfo import read_text_chunks
from core.recipes import RECIPE_CHUNK_FIELD
from core.requests import GenerationRequest
from core.retouch import RetouchRequest
from core.styles import Style, strip_styles
from gallery.records import GalleryImage
from gallery.store import Gallery
from studio.roles import Roles, may_change, refuse_pictures


def own_words(
    request: GenerationRequest | RetouchRequest, styles_named: Callable[[Sequence[str]], Sequence[Style]]
) -> dict[str, object]:
    """The fields of a picture's Easel chunk that keep its author's own words: its `title` (an upload's file name,
    when the request has one) and `user_prompt`, the prompt as typed before its styles were added (a resolved
    request carries the styled prompt and the style names). Fields not known are left out."""
    fields: dict[str, object] = {}
    title = getattr(request, "title", None)
    if isinstance(title, str) and title.strip():
        fields["title"] = title.strip()
    if isinstance(request, GenerationRequest):
        typed: tuple[str, str] | None = (request.prompt, request.negative_prompt)
        if request.styles:
            try:
                typed = strip_styles(request.prompt, request.negative_prompt, styles_named(request.styles))
            except EaselError:  # a style removed since the job was submitted: its text can't be told apart
                typed = None
        if typed is not None:
            fields["user_prompt"] = typed[0]
    return fields


def source_picture(request: RetouchRequest) -> GeneratedImage:
    """The picture a retouch chain started from, to save when the chain only exported files (an SVG, a logo
    pack): the gallery then shows them beside the picture they were made of. It keeps the parameters it carried."""
    try:
        infotext, _ = read_text_chunks(request.image)
    except ValueError:
        infotext = ""
    image = to_rgb_or_rgba(decode_image(request.image))
    extra = {
        RECIPE_CHUNK_FIELD: request.recipe(),
        "retouch": {"chain": request.summary(), "source_size": list(request.source_size)},
    }
    return GeneratedImage(image=image, seed=max(request.seed, 0), infotext=infotext, model="", extra=extra)


class Pictures:
    """Gallery changes on behalf of a user."""

    def __init__(self, gallery: Gallery, roles: Roles) -> None:
        self.gallery = gallery
        self.roles = roles

    def check_pictures(self, ids: Sequence[int], user: str, verb: str) -> None:
        """NotAllowed unless `user` may `verb` ("delete", ...) every one of these pictures. The actions check
        this themselves; the page also asks first, so that a refusal leaves its widgets as they are."""
        if self.roles.is_admin(user):
            return
        others = [
            image.author
            for image in map(self.gallery.get, ids)
            if not may_change(image.author, user, admin=False)
        ]
        if others:
            raise refuse_pictures(others, verb)

    def set_favourite(self, ids: Sequence[int], value: bool, *, user: str) -> int:
        """Star or unstar pictures. A star is the author's pick, seen by everyone: only the author (or an admin)
        may set it."""
        self.check_pictures(ids, user, "star or unstar")
        return self.gallery.set_favourite(ids, value)

    def delete_images(self, ids: Sequence[int], *, user: str) -> list[str]:
        """Move pictures to their author's trash; returns the keys `restore_images` takes to undo it. Only the
        author or an admin may (NotAllowed, before anything moves)."""
        self.check_pictures(ids, user, "delete")
        return self.gallery.delete(ids)

    def check_restore(self, keys: Sequence[str], user: str) -> None:
        """NotAllowed unless every trashed picture these keys name is `user`'s (or `user` is an admin)."""
        if not self.roles.is_admin(user):
            others = [
                a for a in self.gallery.trash_authors(keys).values() if not may_change(a, user, admin=False)
            ]
            if others:
                raise refuse_pictures(others, "restore")

    def restore_images(self, keys: Sequence[str], *, user: str) -> list[GalleryImage]:
        """Undo a delete: only pictures from `user`'s own trash (any trash for an admin)."""
        self.check_restore(keys, user)
        return self.gallery.restore(keys)

    def empty_trash(self, *, user: str, everyone: bool = False) -> int:
        """Delete `user`'s trashed pictures for good (everyone's with `everyone`, which only an admin may)."""
        if everyone and not self.roles.is_admin(user):
            raise NotAllowed("Not allowed: only an admin can empty everyone's trash. Nothing was deleted.")
        return self.gallery.empty_trash(None if everyone else user)

    def trash_count(self, *, user: str, everyone: bool = False) -> int:
        """How many of `user`'s pictures (everyone's with `everyone`) wait in the trash."""
        return self.gallery.trash_count(None if everyone else user)
