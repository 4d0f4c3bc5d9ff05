"""The `Gallery` façade: save generated images, list and search them, hand out their files by id.

Files are the source of truth; the SQLite index is a cache checked against them when the gallery opens
(missing, corrupt or old → rebuilt; files added or removed behind our back → synced). One process writes
to an outputs folder at a time; within it, any number of threads may save and read concurrently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType

from PIL import Image

from core.infotext import EASEL_CHUNK_KEY
from core.requests import MAX_SEED
from gallery import files
from gallery.index import INDEX_FILE_NAME, GalleryIndex
from gallery.records import GalleryImage, ImageNotFound

logger = logging.getLogger(__name__)

RESERVED_CHUNK_FIELDS = ("task", "author", "model", "seed", "created")
_MAX_ID = 2**63 - 1


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _check_id(image_id: int) -> int:
    if not isinstance(image_id, int) or isinstance(image_id, bool):
        raise TypeError(f"image id must be an integer (got {type(image_id).__name__})")
    if not 1 <= image_id <= _MAX_ID:
        raise ImageNotFound(image_id)
    return image_id


class Gallery:
    """Generated images under `outputs_dir`, indexed in `outputs_dir/.easel-index.sqlite3`."""

    def __init__(self, outputs_dir: Path, *, now: Callable[[], datetime] | None = None) -> None:
        self.outputs_dir = Path(outputs_dir).resolve()
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self._now = now or _local_now
        self._write_lock = threading.Lock()  # file naming + writing, and index refills from the files
        files.clean_temp_files(self.outputs_dir)
        self._index = GalleryIndex(self.outputs_dir / INDEX_FILE_NAME)
        if self._index.needs_rebuild:
            logger.info("gallery index: %d image(s) indexed from %s", self.rebuild(), self.outputs_dir)
        else:
            changes = self.sync()
            if changes:
                logger.info("gallery index: %d change(s) found in %s", changes, self.outputs_dir)

    # -- writing -----------------------------------------------------------------------------------

    def save(
        self,
        image: Image.Image,
        *,
        infotext: str,
        seed: int,
        task: str,
        author: str,
        model: str,
        extra: Mapping[str, object] | None = None,
    ) -> GalleryImage:
        """Write `image` as the next `YYYY-MM-DD/NNNNN-SEED.png` with its metadata, then index it."""
        # 1. check inputs
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be a resolved seed in 0..{MAX_SEED} (got {seed!r})")
        clashes = sorted(set(extra or {}) & set(RESERVED_CHUNK_FIELDS))
        if clashes:
            raise ValueError(f"extra fields {clashes} would overwrite the {EASEL_CHUNK_KEY!r} chunk's own")

        # 2. encode, outside the locks (the slow part)
        moment = self._now()
        chunk = {
            **(extra or {}),
            "task": task,
            "author": author,
            "model": model,
            "seed": seed,
            "created": files.iso_utc(moment),
        }
        data = files.encode_png(image, infotext=infotext, easel=chunk)

        # 3. pick the name, write atomically, index
        with self._write_lock:
            folder = self.outputs_dir / files.day_folder_name(moment)
            folder.mkdir(exist_ok=True)
            path = folder / files.file_name(files.next_number(folder), seed)
            files.write_atomic(path, data)
            stat = path.stat()
            record = files.make_record(
                f"{folder.name}/{path.name}",
                width=image.width,
                height=image.height,
                infotext=infotext,
                ours=chunk,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
            )
            return self._index.insert(record)

    def sync(self) -> int:
        """Bring the index in line with the files (new, changed and vanished files); returns the changes.

        Rows of unchanged files keep their ids.
        """
        with self._write_lock:
            on_disk = files.scan(self.outputs_dir)
            indexed = self._index.file_stats()
            remove = [relpath for relpath in indexed if relpath not in on_disk]
            add, update = [], []
            for relpath in sorted(on_disk):
                if indexed.get(relpath) == on_disk[relpath]:
                    continue
                record = files.read_record(self.outputs_dir, relpath)
                if record is None:
                    if relpath in indexed:
                        remove.append(relpath)
                elif relpath in indexed:
                    update.append(record)
                else:
                    add.append(record)
            add.sort(key=lambda r: (r.created, r.relpath))
            if add or update or remove:
                self._index.apply(add=add, update=update, remove=remove)
            return len(add) + len(update) + len(remove)

    def rebuild(self) -> int:
        """Re-index every PNG in the day folders from its own chunks; returns how many are indexed."""
        with self._write_lock:
            files.clean_temp_files(self.outputs_dir)
            records = [
                files.read_record(self.outputs_dir, relpath) for relpath in files.scan(self.outputs_dir)
            ]
            found = sorted((r for r in records if r is not None), key=lambda r: (r.created, r.relpath))
            self._index.apply(add=found, remove_all=True)
            return len(found)

    # -- reading -----------------------------------------------------------------------------------

    def recent(self, limit: int = 50, offset: int = 0, *, author: str | None = None) -> list[GalleryImage]:
        """Newest first; `limit` at most MAX_PAGE; only `author`'s images when given."""
        return self._index.recent(limit, offset, author)

    def search(self, text: str, limit: int = 50, *, author: str | None = None) -> list[GalleryImage]:
        """Images whose prompt contains every word of `text` (word prefixes), newest first.

        Any text is safe: words are quoted, never read as FTS syntax. Blank text gives the newest images.
        """
        return self._index.search(text, limit, author)

    def get(self, image_id: int) -> GalleryImage:
        image = self._index.get(_check_id(image_id))
        if image is None:
            raise ImageNotFound(image_id)
        return image

    def file_path(self, image_id: int) -> Path:
        """The image's file: absolute, resolved, inside outputs_dir. A path through a symlink is refused."""
        image = self.get(image_id)
        parts = image.relpath.split("/")
        if len(parts) != 2 or any(part in ("", ".", "..") for part in parts):
            raise PermissionError(f"image {image_id}: stored path {image.relpath!r} is not a gallery path")
        candidate = self.outputs_dir.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError) as error:
            raise ImageNotFound(image_id) from error
        # outputs_dir is already resolved, so any symlink on the way makes the two differ.
        if resolved != candidate or not resolved.is_relative_to(self.outputs_dir):
            raise PermissionError(f"image {image_id}: its file is a link; refusing to follow it")
        if not resolved.is_file():
            raise ImageNotFound(image_id)
        return resolved

    def count(self) -> int:
        return self._index.count()

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
