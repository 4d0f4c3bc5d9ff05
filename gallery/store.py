"""The `Gallery` façade: save generated images; list, search, star, delete and restore them; hand out
their files, thumbnails and zips by id.

Files are the source of truth; the SQLite index is a cache checked against them when the gallery opens
(missing, corrupt or old → rebuilt; files added or removed behind our back → synced). Favourites live in
a file beside the images (`gallery.favourites`), deleted images in `.trash/` (`gallery.trash`), thumbnails
in `.thumbs/` (`gallery.thumbs`); scans see only the day folders, so none of those is ever indexed.
One process writes to an outputs folder at a time; within it, any number of threads may save and read
concurrently.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image

from core.infotext import EASEL_CHUNK_KEY
from core.pnginfo import read_metadata
from core.requests import MAX_SEED
from gallery import favourites, files, thumbs, trash
from gallery.favourites import TRASH_PREFIX
from gallery.index import INDEX_FILE_NAME, GalleryIndex
from gallery.query import GalleryPage, GalleryQuery
from gallery.records import GalleryImage, ImageNotFound

logger = logging.getLogger(__name__)

RESERVED_CHUNK_FIELDS = ("task", "author", "model", "seed", "created")
_MAX_ID = 2**63 - 1


def private_paths(outputs_dir: Path) -> list[Path]:
    """What in `outputs_dir` is the gallery's own and never for download: the index (and its -wal, -shm and
    -journal files), the favourites file and the trash. (Thumbnails are handed out only through their images.)"""
    root = Path(outputs_dir).resolve()
    index = [root / (INDEX_FILE_NAME + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    return [*index, root / favourites.FAVOURITES_FILE_NAME, trash.trash_root(root)]


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _check_id(image_id: int) -> int:
    if not isinstance(image_id, int) or isinstance(image_id, bool):
        raise TypeError(f"image id must be an integer (got {type(image_id).__name__})")
    if not 1 <= image_id <= _MAX_ID:
        raise ImageNotFound(image_id)
    return image_id


def _check_ids(ids: Iterable[int]) -> list[int]:
    """The ids, each checked, duplicates dropped, order kept."""
    if isinstance(ids, str | bytes | bytearray) or not isinstance(ids, Iterable):
        raise TypeError(f"ids must be a sequence of integers (got {type(ids).__name__})")
    return list(dict.fromkeys(_check_id(image_id) for image_id in ids))


def _ensure_real_dir(path: Path) -> Path:
    """Create `path` if needed; PermissionError when it is a link or not a folder."""
    try:
        path.mkdir()
    except FileExistsError:
        pass
    if not files.is_real_dir(path):
        raise PermissionError(f"{path} is a link or not a folder; refusing to use it")
    return path


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
            written = path.stat()
            record = files.make_record(
                f"{folder.name}/{path.name}",
                width=image.width,
                height=image.height,
                infotext=infotext,
                ours=chunk,
                size=written.st_size,
                mtime_ns=written.st_mtime_ns,
                exports=files.export_names(self.outputs_dir, str(chunk.get("job") or "")),
            )
            return self._index.insert(record)

    def save_exports(
        self, job: str, exported: Sequence[tuple[str, bytes]], ids: Sequence[int] = ()
    ) -> list[Path]:
        """Write a job's exports (SVG, zips: `(name, data)`) to `retouch-exports/<job>/`, atomically, and list them
        with the pictures `ids` that job saved (they name the job in their chunk, so a rebuild finds them again).

        ValueError for a job id that is not one or a name that is not a plain file name, before anything is written.
        """
        if not files.is_job_id(job):
            raise ValueError(f"not a job id: {job!r}")
        bad = [name for name, _ in exported if not files.is_export_name(name)]
        if bad:
            raise ValueError(f"export name {bad[0]!r} is not a plain file name")
        checked = _check_ids(ids)
        with self._write_lock:
            folder = _ensure_real_dir(_ensure_real_dir(self.outputs_dir / files.EXPORTS_DIR) / job)
            paths = []
            for name, data in exported:
                files.write_atomic(folder / name, data)
                paths.append(folder / name)
            stale = [image for image in self._images(checked) if image.job == job]
            records = [files.read_record(self.outputs_dir, image.relpath) for image in stale]
            self._index.apply(update=[record for record in records if record is not None])
            return paths

    def export_paths(self, image_id: int) -> list[Path]:
        """The files the picture's job exported beside it (SVG, zips): absolute, plain files inside
        `outputs/retouch-exports/<job>/`, reached through no link; the ones gone since are left out."""
        image = self.get(image_id)
        folder = self.outputs_dir / files.EXPORTS_DIR / image.job
        if (
            not files.is_job_id(image.job)
            or not files.is_real_dir(folder.parent)
            or not files.is_real_dir(folder)
        ):
            return []
        found = []
        for name in image.exports:
            path = folder / name
            if files.is_export_name(name) and path.is_file() and not path.is_symlink():
                found.append(path)
        return found

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
            starred = self._index.apply(
                add=add, update=update, remove=remove, favourites=self._stored_favourites(on_disk)
            )
            for relpath in remove:  # files deleted behind our back: their thumbnails and index traces go too
                self._remove_thumbnails(relpath)
            if remove:
                self._index.purge()
            return len(add) + len(update) + len(remove) + starred

    def rebuild(self) -> int:
        """Re-index every PNG in the day folders from its own chunks; returns how many are indexed."""
        with self._write_lock:
            files.clean_temp_files(self.outputs_dir)
            on_disk = files.scan(self.outputs_dir)
            records = [files.read_record(self.outputs_dir, relpath) for relpath in on_disk]
            found = sorted((r for r in records if r is not None), key=lambda r: (r.created, r.relpath))
            self._index.apply(add=found, remove_all=True, favourites=self._stored_favourites(on_disk))
            return len(found)

    def _stored_favourites(self, on_disk: Collection[str]) -> set[str]:
        """The favourites file's entries whose file still exists; drops the others from the file."""
        stored = favourites.load(self.outputs_dir)
        kept = {relpath for relpath in stored if self._exists(relpath, on_disk)}
        if kept != stored:
            logger.info("favourites: forgetting %d image(s) no longer on disk", len(stored - kept))
            favourites.save(self.outputs_dir, kept)
        return kept

    def _exists(self, relpath: str, on_disk: Collection[str]) -> bool:
        if not relpath.startswith(TRASH_PREFIX):
            return relpath in on_disk
        try:
            trash.resolve_key(self.outputs_dir, relpath.removeprefix(TRASH_PREFIX))
        except ValueError:
            return False
        return True

    # -- reading -----------------------------------------------------------------------------------

    def recent(self, limit: int = 50, offset: int = 0, *, author: str | None = None) -> list[GalleryImage]:
        """Newest first; `limit` at most MAX_PAGE; only `author`'s images when given."""
        return self._index.recent(limit, offset, author)

    def search(self, text: str, limit: int = 50, *, author: str | None = None) -> list[GalleryImage]:
        """Images whose prompt contains every word of `text` (word prefixes), newest first.

        Any text is safe: words are quoted, never read as FTS syntax. Blank text gives the newest images.
        """
        return self._index.search(text, limit, author)

    def query(self, q: GalleryQuery) -> GalleryPage:
        """One page of the images matching every filter of `q` (one indexed SQL query), and their total."""
        if not isinstance(q, GalleryQuery):
            raise TypeError(f"expected a GalleryQuery (got {type(q).__name__})")
        items, total = self._index.query(q)
        return GalleryPage(items=items, total=total)

    def facets(self) -> dict[str, list[str]]:
        """{"model": [...], "task": [...], "author": [...]}: the distinct non-empty values, sorted."""
        return self._index.facets()

    def get(self, image_id: int) -> GalleryImage:
        image = self._index.get(_check_id(image_id))
        if image is None:
            raise ImageNotFound(image_id)
        return image

    def file_path(self, image_id: int) -> Path:
        """The image's file: absolute, resolved, inside outputs_dir. A path through a symlink is refused."""
        return self._checked_path(self.get(image_id))

    def metadata(self, image_id: int) -> dict[str, Any]:
        """The fields of the picture's own Easel JSON chunk, read from its file ({} when it has none, e.g. a
        picture made elsewhere): the resolved request, a plot's definition, a retouch recipe."""
        _, fields = read_metadata(self.file_path(image_id).read_bytes())
        return fields

    def _checked_path(self, image: GalleryImage) -> Path:
        image_id = image.id
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

    # -- favourites --------------------------------------------------------------------------------

    def set_favourite(self, ids: Sequence[int], value: bool) -> int:
        """Star (`value=True`) or unstar images; returns how many changed.

        An unknown id raises ImageNotFound and changes nothing. The favourites file is written first,
        so the flag is never only in the index.
        """
        if not isinstance(value, bool):
            raise TypeError(f"value must be a bool (got {value!r})")
        checked = _check_ids(ids)
        with self._write_lock:
            relpaths = {image.relpath for image in self._images(checked)}
            (self._add_favourites if value else self._drop_favourites)(relpaths)
            return self._index.set_favourite(sorted(relpaths), value)

    def _images(self, ids: Iterable[int]) -> list[GalleryImage]:
        images = []
        for image_id in ids:
            image = self._index.get(image_id)
            if image is None:
                raise ImageNotFound(image_id)
            images.append(image)
        return images

    # -- delete, undo, trash -----------------------------------------------------------------------

    def delete(self, ids: Sequence[int]) -> list[str]:
        """Move the images' files to `.trash/<relpath>` and drop their rows and thumbnails.

        Returns the trash keys (relpaths inside the trash) to pass to `restore` for undo. An unknown id
        raises ImageNotFound before anything moves; an image whose file is already gone just loses its row.
        """
        checked = _check_ids(ids)
        with self._write_lock:
            # 1. check every image before moving any
            moving: list[tuple[GalleryImage, Path]] = []
            vanished: list[str] = []
            for image in self._images(checked):
                try:
                    moving.append((image, self._checked_path(image)))
                except ImageNotFound:
                    vanished.append(image.relpath)

            # 2. pick the names in the trash
            root = trash.trash_root(self.outputs_dir)
            plan: list[tuple[GalleryImage, Path, str]] = []
            taken: dict[str, set[str]] = {}
            for image, path in moving:
                day, name = image.relpath.split("/")
                folder = _ensure_real_dir(_ensure_real_dir(root) / day)
                free = trash.free_name(folder, name, taken.setdefault(day, set()))
                taken[day].add(free)
                plan.append((image, path, f"{day}/{free}"))

            # 3. move (favourites first list both places, so a crash midway loses no star), drop the rows
            starred = favourites.load(self.outputs_dir)
            moved_stars = {
                image.relpath: TRASH_PREFIX + key for image, _, key in plan if image.relpath in starred
            }
            keys: list[str] = []
            try:
                self._add_favourites(moved_stars.values())
                for _image, path, key in plan:
                    os.replace(path, root / key)
                    keys.append(key)
            finally:
                moved = [image.relpath for image, _, _ in plan[: len(keys)]]
                self._index.apply(remove=[*moved, *vanished])
                self._drop_favourites(old for old in moved_stars if old in moved)
                for relpath in moved:
                    self._remove_thumbnails(relpath)
            files.fsync_dirs({(root / key).parent for key in keys} | {p.parent for _, p, _ in plan})
            return keys

    def restore(self, keys: Sequence[str]) -> list[GalleryImage]:
        """Undo a delete: move trashed files back to their day folder and index them again.

        A file whose name has been taken since gets the folder's next NNNNN. Its favourite star comes
        back with it. Keys must name plain files inside the trash (ValueError otherwise, before anything
        moves).
        """
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise TypeError(f"keys must be a sequence of trash keys (got {type(keys).__name__})")
        unique = list(dict.fromkeys(keys))
        with self._write_lock:
            # 1. check every key before moving any
            root = trash.trash_root(self.outputs_dir)
            sources: list[tuple[str, Path, files.FileFacts]] = []
            for key in unique:
                path = trash.resolve_key(self.outputs_dir, key)
                record = files.read_record(root, key)
                if record is None:
                    raise ValueError(f"trash entry {key!r} is not a readable PNG")
                sources.append((key, path, record))

            # 2. pick the names to go back to
            plan: list[tuple[str, Path, files.FileFacts]] = []
            taken: dict[str, set[str]] = {}
            for key, path, record in sources:
                day, name = key.split("/")
                folder = _ensure_real_dir(self.outputs_dir / day)
                free = trash.restored_name(folder, trash.original_name(name), taken.setdefault(day, set()))
                taken[day].add(free)
                plan.append((key, path, dataclasses.replace(record, relpath=f"{day}/{free}")))

            # 3. move back and index (favourites first list both places)
            starred = favourites.load(self.outputs_dir)
            moved_stars = {
                TRASH_PREFIX + key: record.relpath for key, _, record in plan if TRASH_PREFIX + key in starred
            }
            restored: list[GalleryImage] = []
            try:
                self._add_favourites(moved_stars.values())
                for key, path, record in plan:
                    os.replace(path, self.outputs_dir / record.relpath)
                    restored.append(self._index.insert(record, favourite=TRASH_PREFIX + key in moved_stars))
            finally:
                done = {TRASH_PREFIX + key for key, _, _ in plan[: len(restored)]}
                self._drop_favourites(old for old in moved_stars if old in done)
            files.fsync_dirs(
                {(self.outputs_dir / r.relpath).parent for r in restored} | {p.parent for _, p, _ in plan}
            )
            return restored

    # A starred file that moves is listed under its new relpath before the move and unlisted under the
    # old one after it: a crash in between leaves an entry whose file is gone, which the next sync drops.
    def _add_favourites(self, relpaths: Iterable[str]) -> None:
        stored = favourites.load(self.outputs_dir)
        wanted = stored | set(relpaths)
        if wanted != stored:
            favourites.save(self.outputs_dir, wanted)

    def _drop_favourites(self, relpaths: Iterable[str]) -> None:
        stored = favourites.load(self.outputs_dir)
        wanted = stored - set(relpaths)
        if wanted != stored:
            favourites.save(self.outputs_dir, wanted)

    def trash_count(self, author: str | None = None) -> int:
        """How many files wait in the trash (only `author`'s pictures when given)."""
        root = trash.trash_root(self.outputs_dir)
        if not files.is_real_dir(root):
            return 0
        return sum(1 for path in _trash_files(root) if author is None or _trash_author(root, path) == author)

    def trash_authors(self, keys: Sequence[str]) -> dict[str, str]:
        """{key: author} of trashed pictures, the author as their PNG records it ("" when it records none).

        Keys are checked as `restore` checks them (ValueError for one that names no plain file in the trash).
        """
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise TypeError(f"keys must be a sequence of trash keys (got {type(keys).__name__})")
        root = trash.trash_root(self.outputs_dir)
        return {key: _trash_author(root, trash.resolve_key(self.outputs_dir, key)) for key in keys}

    def empty_trash(self, author: str | None = None) -> int:
        """Delete what waits in the trash for good (only `author`'s pictures when given); returns how many
        files went. Their prompts are then purged from the index files too (see `GalleryIndex.purge`), and the
        files their jobs exported go with the last picture that listed them."""
        with self._write_lock:
            root = trash.trash_root(self.outputs_dir)
            if not os.path.lexists(root):
                return 0
            if not files.is_real_dir(root):
                raise PermissionError(f"{root} is a link or not a folder; refusing to empty it")
            removed: list[str] = []
            jobs: set[str] = set()
            for path in list(_trash_files(root)):
                record = _trash_record(root, path)
                if author is not None and (record.author if record else "") != author:
                    continue
                path.unlink()
                removed.append(path.relative_to(root).as_posix())
                jobs.update([record.job] if record is not None and record.job else [])
            if author is None:
                shutil.rmtree(root)  # only empty folders are left; rmtree never follows links
            else:
                _remove_empty_folders(root)
            stored = favourites.load(self.outputs_dir)
            if author is None:
                self._drop_favourites(r for r in stored if r.startswith(TRASH_PREFIX))
            else:
                self._drop_favourites(TRASH_PREFIX + key for key in removed)
            self._remove_unlisted_exports(jobs)
            if removed:
                self._index.purge()
            return len(removed)

    def _remove_unlisted_exports(self, jobs: set[str]) -> None:
        """Remove the exports folders of these jobs that no picture lists any more (indexed or in the trash)."""
        root = trash.trash_root(self.outputs_dir)
        if files.is_real_dir(root):
            jobs -= {
                r.job for r in (_trash_record(root, path) for path in _trash_files(root)) if r is not None
            }
        exports = self.outputs_dir / files.EXPORTS_DIR
        for job in sorted(jobs):
            folder = exports / job
            if self._index.lists_job(job) or not files.is_job_id(job) or not files.is_real_dir(exports):
                continue
            if files.is_real_dir(folder):
                shutil.rmtree(folder)  # never follows a link: a link inside is removed, not what it names

    # -- thumbnails and export ---------------------------------------------------------------------

    def thumbnail(self, image_id: int, size: int = 256) -> Path:
        """A WebP preview at most `size`×`size` (128, 256 or 512), made on first request and cached.

        The cached file is remade when the PNG's modification time no longer matches its own.
        """
        thumbs.check_size(size)
        image = self.get(image_id)
        source = self._checked_path(image)
        mtime_ns = source.stat().st_mtime_ns
        target = self.outputs_dir / thumbs.thumb_relpath(image.relpath, size)
        day = image.relpath.split("/")[0]
        folder = self.outputs_dir / files.THUMBS_DIR
        if files.is_real_dir(folder) and files.is_real_dir(folder / day):
            try:
                current = target.lstat()
            except FileNotFoundError:
                current = None
            if current is not None and stat.S_ISREG(current.st_mode) and current.st_mtime_ns == mtime_ns:
                return target
        data = thumbs.render(source, size)  # the slow part, outside the lock
        with self._write_lock:
            if self._index.get(image.id) is None:  # deleted meanwhile: leave no orphan behind
                raise ImageNotFound(image_id)
            _ensure_real_dir(_ensure_real_dir(folder) / day)
            files.write_atomic(target, data, durable=False, mtime_ns=mtime_ns)
        return target

    def picture_files(self, image_id: int) -> list[Path]:
        """The image's PNG and the thumbnails made of it so far (what a viewer may have been handed)."""
        image = self.get(image_id)
        made = [self.outputs_dir / thumbs.thumb_relpath(image.relpath, size) for size in thumbs.THUMB_SIZES]
        try:
            found = [self._checked_path(image)]
        except (ImageNotFound, PermissionError):  # its file is gone (or a link): no picture to hand out
            found = []
        return [*found, *(path for path in made if path.is_file() and not path.is_symlink())]

    def _remove_thumbnails(self, relpath: str) -> None:
        folder = self.outputs_dir / files.THUMBS_DIR
        if not files.is_real_dir(folder) or not files.is_real_dir(folder / relpath.split("/")[0]):
            return
        for size in thumbs.THUMB_SIZES:
            (self.outputs_dir / thumbs.thumb_relpath(relpath, size)).unlink(missing_ok=True)

    def export_zip(self, ids: Sequence[int], dest: Path) -> Path:
        """Write a zip of the images' original PNGs (metadata intact) to `dest`; returns `dest`.

        Entries are named by relpath with "/" turned into "_" (`2026-11-25_00001-3.png`). The zip is
        written to a temp file beside `dest` and renamed, so `dest` is never half written.
        """
        checked = _check_ids(ids)
        if not checked:
            raise ValueError("no images to export")
        sources = [
            (image.relpath.replace("/", "_"), self._checked_path(image)) for image in self._images(checked)
        ]
        dest = Path(dest)
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=files.TEMP_SUFFIX, dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
                for name, path in sources:
                    info = zipfile.ZipInfo.from_file(path, arcname=name)
                    # O_NOFOLLOW: a file swapped for a link since it was checked is refused, not followed
                    with (
                        os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as png,
                        archive.open(info, "w") as entry,
                    ):
                        shutil.copyfileobj(png, entry, 1024 * 1024)
            os.replace(temp_name, dest)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return dest

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _trash_record(root: Path, path: Path) -> files.FileFacts | None:
    """What a trashed picture's PNG records; None for anything else (a link, an unreadable file)."""
    if path.is_symlink() or not path.is_file():
        return None
    return files.read_record(root, path.relative_to(root).as_posix())


def _trash_author(root: Path, path: Path) -> str:
    """Who made a trashed picture, as its PNG records it; "" for anything else (a link, an unreadable file)."""
    record = _trash_record(root, path)
    return record.author if record is not None else ""


def _remove_empty_folders(root: Path) -> None:
    """Remove the trash's day folders left empty, then the trash itself when it is empty (never via a link)."""
    for folder, _, _ in sorted(os.walk(root, followlinks=False), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(folder)
        except OSError:  # not empty
            pass


def _trash_files(root: Path) -> Iterable[Path]:
    """Every entry in the trash that is not a folder (files, and links, which are never followed)."""
    for folder, folders, names in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in names:
            yield base / name
        for name in folders:
            if (base / name).is_symlink():
                yield base / name
