"""The trash: deleted images wait in `outputs/.trash/<relpath>` until they are restored or the trash is emptied.

A trash key is the file's relpath inside the trash (`2026-11-25/00001-3.png`); a name already taken there
gets a `~N` suffix (`00001-3~1.png`). Keys come back from clients, so they are checked against the disk
before use: only plain files that exist inside the trash, reached without any link, are accepted.
A trashed picture still belongs to the author its PNG records, so one author's trash can be counted, emptied
or restored without touching anyone else's (`Gallery.trash_count`, `empty_trash`, `trash_authors`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Collection
from itertools import count
from pathlib import Path

from gallery.files import NUMBER_WIDTH, TRASH_DIR, is_real_dir, next_number

_RE_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RE_SUFFIXED = re.compile(r"(.+)~[0-9]+(\.[Pp][Nn][Gg])")
_RE_LEADING_NUMBER = re.compile(r"([0-9]+)(.*)", re.DOTALL)


def trash_root(outputs_dir: Path) -> Path:
    return outputs_dir / TRASH_DIR


def check_key(key: object) -> tuple[str, str]:
    """(day, name) of a well-formed key; ValueError for anything else (`../`, absolute, NUL, dot-names)."""
    if not isinstance(key, str):
        raise ValueError(f"trash key must be a string (got {type(key).__name__})")
    parts = key.split("/")
    if (
        "\x00" in key
        or len(parts) != 2
        or not _RE_DAY.fullmatch(parts[0])
        or not parts[1]
        or parts[1].startswith(".")
        or not parts[1].lower().endswith(".png")
    ):
        raise ValueError(f"not a trash key: {key!r}")
    return parts[0], parts[1]


def resolve_key(outputs_dir: Path, key: object) -> Path:
    """The trashed file a key names. ValueError unless it is a plain file inside the trash, via no link."""
    day, name = check_key(key)
    root = trash_root(outputs_dir)
    folder = root / day
    if not is_real_dir(root) or not is_real_dir(folder):
        raise ValueError(f"no such image in the trash: {key!r}")
    path = folder / name
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        raise ValueError(f"no such image in the trash: {key!r}") from error
    if not stat.S_ISREG(mode):
        raise ValueError(f"trash entry {key!r} is not a plain file")
    return path


def free_name(folder: Path, name: str, taken: Collection[str] = ()) -> str:
    """`name`, or `stem~N.png` with the smallest N that is free in `folder` and not in `taken`."""
    if name not in taken and not os.path.lexists(folder / name):
        return name
    stem, extension = os.path.splitext(name)
    for number in count(1):
        candidate = f"{stem}~{number}{extension}"
        if candidate not in taken and not os.path.lexists(folder / candidate):
            return candidate
    raise AssertionError("unreachable")


def original_name(name: str) -> str:
    """The name a trashed file had before a clash suffix was added."""
    match = _RE_SUFFIXED.fullmatch(name)
    return match.group(1) + match.group(2) if match else name


def restored_name(folder: Path, name: str, taken: Collection[str] = ()) -> str:
    """`name` when free in `folder` (and not in `taken`), else the same name with the folder's next NNNNN."""
    if name not in taken and not os.path.lexists(folder / name):
        return name
    number = next_number(folder)
    for other in taken:
        match = _RE_LEADING_NUMBER.fullmatch(other)
        if match:
            number = max(number, int(match.group(1)) + 1)
    match = _RE_LEADING_NUMBER.fullmatch(name)
    rest = match.group(2) if match else "-" + name
    return f"{number:0{NUMBER_WIDTH}d}{rest}"
