"""Gallery files on disk: naming, atomic PNG writes with metadata, reading metadata back, scanning.

Layout (A1111's): `outputs/YYYY-MM-DD/NNNNN-SEED.png`, NNNNN counting up per day folder from 00000.
A file is written as a dot-named temp file in its final folder, fsynced, then renamed over the final name,
so a crash leaves either nothing or a temp file (which scans ignore and `clean_temp_files` removes), never
a half-written PNG under a real name.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from core.infotext import EASEL_CHUNK_KEY, INFOTEXT_KEY, parse_infotext

logger = logging.getLogger(__name__)

EXPORTS_DIR = "retouch-exports"  # files a job makes beside its pictures (SVG, zips), as <job id>/<name>
TRASH_DIR = ".trash"  # deleted images, as .trash/<relpath>, until the trash is emptied
THUMBS_DIR = ".thumbs"  # cached previews, as .thumbs/<relpath>.<size>.webp
TEMP_SUFFIX = ".tmp"  # temp files are "." + final name + random part + TEMP_SUFFIX
DAY_FORMAT = "%Y-%m-%d"
NUMBER_WIDTH = 5

_RE_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RE_SEQUENCE = re.compile(r"[0-9]+")  # A1111: the number before the first "-" of any name in the folder
_RE_OWN_NAME = re.compile(r"[0-9]+-([0-9]+)\.png")
_MAX_SQLITE_INT = 2**63 - 1
_RE_JOB = re.compile(r"[0-9a-f]{32}")  # a job id (uuid4 hex): the name of its exports folder
_RE_EXPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MAX_TITLE = 200


@dataclass(frozen=True)
class FileFacts:
    """What the index stores about one picture file, read from the file alone (with its size and mtime, which
    tell a stale row); the index adds the id and the favourite mark to make it a GalleryImage."""

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
    size: int
    mtime_ns: int
    title: str = ""
    """The picture's own name (an upload's file name), "" when it has none."""
    user_prompt: str = ""
    """The prompt as its author typed it, before styles were added ("" when not known: then `prompt`)."""
    ops: str = ""
    """A retouch's operations in words ("remove background → upscale ×2"), "" for other pictures."""
    job: str = ""
    """The job that made it, which names its exports folder ("" when unknown)."""
    exports: tuple[str, ...] = ()
    """The names of the files its job exported beside it (in `EXPORTS_DIR/<job>/`)."""


def is_job_id(text: object) -> bool:
    return isinstance(text, str) and _RE_JOB.fullmatch(text) is not None


def is_export_name(name: object) -> bool:
    """True for a plain file name an export may have (no folders, no dot-names, nothing to climb out)."""
    return isinstance(name, str) and _RE_EXPORT_NAME.fullmatch(name) is not None and ".." not in name


def export_names(outputs_dir: Path, job: str) -> tuple[str, ...]:
    """The plain files in the job's exports folder, sorted (no links, no dot-names; () without a folder)."""
    if not is_job_id(job):
        return ()
    folder = outputs_dir / EXPORTS_DIR / job
    if not is_real_dir(outputs_dir / EXPORTS_DIR) or not is_real_dir(folder):
        return ()
    names = []
    for entry in os.scandir(folder):
        if (
            is_export_name(entry.name)
            and not is_temp_name(entry.name)
            and entry.is_file(follow_symlinks=False)
        ):
            names.append(entry.name)
    return tuple(sorted(names))


def iso_utc(moment: datetime) -> str:
    """`moment` as ISO-8601 in UTC with microseconds (sorts as text); a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def day_folder_name(moment: datetime) -> str:
    """The day folder for an image made at `moment` (its own calendar date, local by default)."""
    return moment.strftime(DAY_FORMAT)


def next_number(folder: Path) -> int:
    """The next sequence number in `folder`: one past the largest leading number of any name (A1111)."""
    largest = -1
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in names:
        if name.startswith("."):
            continue
        head = os.path.splitext(name)[0].split("-", 1)[0]
        if _RE_SEQUENCE.fullmatch(head):
            largest = max(largest, int(head))
    return largest + 1


def file_name(number: int, seed: int) -> str:
    return f"{number:0{NUMBER_WIDTH}d}-{seed}.png"


def encode_png(image: Image.Image, *, infotext: str, easel: Mapping[str, object]) -> bytes:
    """PNG bytes carrying `parameters` (A1111 infotext) and `easel` (our JSON) text chunks."""
    info = PngInfo()
    info.add_text(INFOTEXT_KEY, infotext)  # PIL writes iTXt when the text is not Latin-1
    info.add_text(EASEL_CHUNK_KEY, json.dumps(dict(easel), ensure_ascii=True, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_dirs(folders: Iterable[Path]) -> None:
    """Make renames into and out of these folders durable."""
    for folder in folders:
        _fsync_dir(folder)


def write_atomic(path: Path, data: bytes, *, durable: bool = True, mtime_ns: int | None = None) -> None:
    """Write `data` to `path` via a temp file in the same folder: fsync, rename, fsync the folder.

    `durable=False` skips the fsyncs, for caches that can be remade: still never a torn file.
    `mtime_ns` sets the file's modification time before it appears under its name.
    """
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mtime_ns is not None:
            os.utime(temp_name, ns=(mtime_ns, mtime_ns))
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


def is_real_dir(path: Path) -> bool:
    """True when `path` is a directory itself, not a link to one."""
    return path.is_dir() and not path.is_symlink()


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def day_folders(outputs_dir: Path) -> Iterator[Path]:
    """The YYYY-MM-DD folders directly under `outputs_dir` (no dot-folders, no trash, no symlinks)."""
    try:
        entries = sorted(os.scandir(outputs_dir), key=lambda entry: entry.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if _RE_DAY.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


def clean_temp_files(outputs_dir: Path) -> int:
    """Remove temp files a crash left behind (day folders, thumbnail folders, the top); returns how many."""
    removed = 0
    folders = [outputs_dir, *day_folders(outputs_dir)]
    if is_real_dir(outputs_dir / THUMBS_DIR):
        folders.extend(day_folders(outputs_dir / THUMBS_DIR))
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
    if removed:
        logger.warning("removed %d unfinished temp file(s) left in %s", removed, outputs_dir)
    return removed


def scan(outputs_dir: Path) -> dict[str, tuple[int, int]]:
    """Every gallery PNG as {relpath: (size, mtime_ns)}; skips dot-files, temp files and symlinks."""
    found: dict[str, tuple[int, int]] = {}
    for folder in day_folders(outputs_dir):
        for entry in os.scandir(folder):
            name = entry.name
            if name.startswith(".") or not name.lower().endswith(".png"):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            found[f"{folder.name}/{name}"] = (stat.st_size, stat.st_mtime_ns)
    return found


def _int_or(value: object, default: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        return default
    return number if -1 <= number <= _MAX_SQLITE_INT else default


def _guess_task(params: Mapping[str, str]) -> str:
    # Files from A1111 carry no task name: infer the common cases from the keys it writes.
    if "Mask blur" in params:
        return "inpaint"
    if "Denoising strength" in params and "Hires upscale" not in params:
        return "img2img"
    return "txt2img"


def read_record(outputs_dir: Path, relpath: str) -> FileFacts | None:
    """Build the index record of one file from its chunks; None when it is not a readable PNG."""
    path = outputs_dir / relpath
    try:
        stat = path.stat(follow_symlinks=False)
        with Image.open(path, formats=["PNG"]) as image:
            width, height = image.size
            chunks = dict(image.info)
            if INFOTEXT_KEY not in chunks and EASEL_CHUNK_KEY not in chunks:
                image.load()  # text chunks after the image data
                chunks.update(getattr(image, "text", {}))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        logger.warning("skipping %s: not a readable PNG (%s)", relpath, error)
        return None

    infotext = chunks.get(INFOTEXT_KEY)
    ours: dict[str, object] = {}
    raw = chunks.get(EASEL_CHUNK_KEY)
    if isinstance(raw, str):
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            ours = loaded
        else:
            logger.warning("%s: ignoring unreadable %r chunk", relpath, EASEL_CHUNK_KEY)
    return make_record(
        relpath,
        width=width,
        height=height,
        infotext=infotext if isinstance(infotext, str) else "",
        ours=ours,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        exports=export_names(outputs_dir, str(ours.get("job") or "")),
    )


def _text(value: object, limit: int = _MAX_TITLE) -> str:
    """A one-line text field of our chunk ("" for anything that is not a string)."""
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _ops(ours: Mapping[str, object]) -> str:
    """A retouch's chain in words, from our chunk's `retouch.chain` ("remove_background → upscale ×2")."""
    retouch = ours.get("retouch")
    chain = retouch.get("chain") if isinstance(retouch, Mapping) else None
    return _text(chain, 1000).replace("_", " ")


def make_record(
    relpath: str,
    *,
    width: int,
    height: int,
    infotext: str,
    ours: Mapping[str, object],
    size: int,
    mtime_ns: int,
    exports: tuple[str, ...] = (),
) -> FileFacts:
    """The index record for a file with these chunks: our JSON first, the infotext for what it lacks.

    Used both when saving and when re-reading files, so a rebuilt index equals the live one.
    """
    parsed = parse_infotext(infotext)
    name_seed = _RE_OWN_NAME.fullmatch(relpath.rsplit("/", 1)[-1])
    seed = _int_or(ours.get("seed", parsed.params.get("Seed", name_seed.group(1) if name_seed else -1)), -1)
    created = ""
    if isinstance(ours.get("created"), str):
        try:
            created = iso_utc(datetime.fromisoformat(str(ours["created"])))
        except ValueError:
            created = ""
    if not created:
        created = iso_utc(datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC))
    return FileFacts(
        relpath=relpath,
        created=created,
        task=str(ours.get("task") or _guess_task(parsed.params)),
        author=str(ours.get("author") or ""),
        model=str(ours.get("model") or parsed.params.get("Model", "")),
        seed=seed,
        width=width,
        height=height,
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        infotext=infotext,
        size=size,
        mtime_ns=mtime_ns,
        title=_text(ours.get("title")),
        user_prompt=ours["user_prompt"] if isinstance(ours.get("user_prompt"), str) else "",
        ops=_ops(ours),
        job=str(ours["job"]) if is_job_id(ours.get("job")) else "",
        exports=exports,
    )
