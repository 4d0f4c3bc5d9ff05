"""Favourites, kept in a small file beside the images so they survive any index rebuild.

`outputs/.easel-favourites.json` is a sorted JSON list of relpaths (relative to the outputs folder,
"/"-separated): images in the day folders (`2026-11-25/00001-3.png`) and deleted ones waiting in the trash
(`.trash/2026-11-25/00001-3.png`), so undoing a delete brings the star back with the file. It is written
atomically. The index's `favourite` column is a copy of it, refreshed by every sync and rebuild.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from gallery.files import TRASH_DIR, write_atomic

logger = logging.getLogger(__name__)

FAVOURITES_FILE_NAME = ".easel-favourites.json"
TRASH_PREFIX = TRASH_DIR + "/"
_MAX_BYTES = 64 * 1024 * 1024
_RE_ENTRY = re.compile(r"(?:\.trash/)?[0-9]{4}-[0-9]{2}-[0-9]{2}/[^./\x00][^/\x00]*")


def is_entry(relpath: object) -> bool:
    """True for a relpath this file may hold: `DAY/NAME` or `.trash/DAY/NAME`, nothing that climbs out."""
    return isinstance(relpath, str) and _RE_ENTRY.fullmatch(relpath) is not None


def load(outputs_dir: Path) -> set[str]:
    """The stored favourites; an absent file is none. An unreadable one is logged and read as none."""
    path = outputs_dir / FAVOURITES_FILE_NAME
    try:
        if path.is_symlink():
            raise ValueError("it is a link")
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
        if len(data) > _MAX_BYTES:
            raise ValueError(f"larger than {_MAX_BYTES} bytes")
        entries = json.loads(data)
        if not isinstance(entries, list):
            raise ValueError("not a JSON list")
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as error:
        logger.warning("ignoring unreadable favourites file %s (%s)", path, error)
        return set()
    kept = {entry for entry in entries if is_entry(entry)}
    if len(kept) != len(entries):
        logger.warning("favourites file %s: ignoring %d malformed entries", path, len(entries) - len(kept))
    return kept


def save(outputs_dir: Path, relpaths: Iterable[str]) -> None:
    """Replace the stored favourites (atomically)."""
    entries = sorted(set(relpaths))
    bad = [entry for entry in entries if not is_entry(entry)]
    if bad:
        raise ValueError(f"not gallery relpaths: {bad[:3]!r}")
    data = json.dumps(entries, ensure_ascii=False, indent=0).encode("utf-8")
    write_atomic(outputs_dir / FAVOURITES_FILE_NAME, data)
