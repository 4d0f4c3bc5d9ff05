"""Copies of gallery files that Gradio hands out: the page never links to outputs/ directly; Gradio copies a
picture (or thumbnail) it shows into its upload folder, in a folder named by a hash of the file's bytes, and
serves the copy. Those copies would outlive a deleted picture (and keep its prompt, in the PNG's metadata), so
the Gallery tab drops them when it deletes the picture.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from gradio.processing_utils import hash_file
from gradio.utils import get_upload_folder
from gradio_client.utils import strip_invalid_filename_characters

log = logging.getLogger(__name__)


def locate(files: Iterable[Path]) -> list[Path]:
    """Where Gradio keeps (or would keep) its copy of each file (call before the files go)."""
    cache = Path(get_upload_folder())
    copies = []
    for path in files:
        try:
            copies.append(cache / hash_file(path) / strip_invalid_filename_characters(path.name))
        except OSError:  # gone meanwhile: nothing to find
            continue
    return copies


def remove(copies: Iterable[Path]) -> int:
    """Delete these copies (and their folders when left empty); returns how many were there."""
    removed = 0
    for copy in copies:
        try:
            copy.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove the served copy %s: %s", copy, exc)
        try:
            os.rmdir(copy.parent)
        except OSError:  # not empty, or already gone
            pass
    return removed
