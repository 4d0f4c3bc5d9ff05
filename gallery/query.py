"""What the Gallery tab asks for (`GalleryQuery`) and what it gets back (`GalleryPage`).

A query is validated when it is built, so a bad value from a widget or an API call is a clear error at
the boundary, never a silent clamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from gallery.records import GalleryImage

MAX_PAGE = 1000


def check_page(limit: int, offset: int = 0, *, min_limit: int = 0) -> None:
    """Raise ValueError unless `limit` is an int in min_limit..MAX_PAGE and `offset` an int ≥ 0."""
    for name, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer (got {value!r})")
    if not min_limit <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be in {min_limit}..{MAX_PAGE} (got {limit})")


def _check_optional_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None (got {type(value).__name__})")


def _check_day(name: str, value: object) -> None:
    # A datetime is a date too, but its time part would be silently dropped: refuse it.
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise TypeError(f"{name} must be a datetime.date or None (got {type(value).__name__})")


@dataclass(frozen=True)
class GalleryQuery:
    """Which images to list: every filter that is set must hold; pages of `limit` from `offset`.

    `text` matches prompts containing every word (as a prefix; FTS syntax is never interpreted).
    `model`, `task` and `author` match exactly ("" matches images without one). `date_from` and
    `date_to` are inclusive calendar days of the UTC creation time.
    """

    text: str = ""
    model: str | None = None
    task: str | None = None
    author: str | None = None
    favourites_only: bool = False
    date_from: date | None = None
    date_to: date | None = None
    newest_first: bool = True
    limit: int = 48
    offset: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"text must be a string (got {type(self.text).__name__})")
        for name in ("model", "task", "author"):
            _check_optional_text(name, getattr(self, name))
        for name in ("favourites_only", "newest_first"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool (got {getattr(self, name)!r})")
        _check_day("date_from", self.date_from)
        _check_day("date_to", self.date_to)
        if self.date_from is not None and self.date_to is not None and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        check_page(self.limit, self.offset, min_limit=1)


@dataclass(frozen=True)
class GalleryPage:
    """One page of a query's matches, and how many matches the whole query has."""

    items: list[GalleryImage]
    total: int
