"""The gallery's SQLite index: a disposable cache of what the files say, with FTS5 prompt search.

The index can always be rebuilt from the files, so a file that is missing, corrupt or from an unknown
schema version is simply replaced. Schema changes are numbered migrations tracked in `PRAGMA user_version`.
One connection is shared by all threads behind one lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gallery.files import ImageRecord
from gallery.records import GalleryImage

logger = logging.getLogger(__name__)

INDEX_FILE_NAME = ".easel-index.sqlite3"
MAX_PAGE = 1000

# MIGRATIONS[i] takes the schema from version i to i + 1; SCHEMA_VERSION is their count.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so a stale id can't name another image
        relpath TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        task TEXT NOT NULL,
        author TEXT NOT NULL,
        model TEXT NOT NULL,
        seed INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        negative_prompt TEXT NOT NULL,
        infotext TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL
    );
    CREATE INDEX images_newest ON images (created, id);
    CREATE VIRTUAL TABLE images_fts USING fts5 (
        prompt, negative_prompt, content = 'images', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt, negative_prompt)
        VALUES (new.id, new.prompt, new.negative_prompt);
    END;
    CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    END;
    CREATE TRIGGER images_fts_update AFTER UPDATE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt);
        INSERT INTO images_fts (rowid, prompt, negative_prompt)
        VALUES (new.id, new.prompt, new.negative_prompt);
    END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "relpath",
    "created",
    "task",
    "author",
    "model",
    "seed",
    "width",
    "height",
    "prompt",
    "negative_prompt",
    "infotext",
    "size",
    "mtime_ns",
)
_IMAGE_COLUMNS = (
    "id, relpath, created, task, author, model, seed, width, height, prompt, negative_prompt, infotext"
)
_INSERT = f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_UPDATE = f"UPDATE images SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE relpath = ?"
_NEWEST_FIRST = "ORDER BY images.created DESC, images.id DESC"


class IndexUnusable(Exception):
    """The index file cannot be used as it is (corrupt, foreign or from an unknown schema)."""


def fts_query(text: str) -> str | None:
    """An FTS5 query matching prompts that contain every word of `text` (as a prefix), or None.

    Each word becomes a quoted FTS5 string, so user text can never be FTS syntax (`"`, `*`, `AND`,
    `(`, `NEAR`, `:` ...). Words without a letter or digit are dropped: they match nothing.
    """
    words = [word for word in text.split() if any(ch.isalnum() for ch in word)]
    if not words:
        return None
    terms = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
    return f"{{prompt}} : ({terms})"


def _check_page(limit: int, offset: int = 0) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer (got {value!r})")
    if limit > MAX_PAGE:
        raise ValueError(f"limit must be at most {MAX_PAGE} (got {limit})")


def _row_values(record: ImageRecord) -> tuple[object, ...]:
    return tuple(getattr(record, column) for column in _COLUMNS)


def _image(row: tuple) -> GalleryImage:
    return GalleryImage(*row)


def _remove_database_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


class GalleryIndex:
    """The SQLite index of one outputs folder. Thread-safe; every call takes the one lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.needs_rebuild = False
        """True when the index was created or migrated here: the caller must refill it from the files."""
        try:
            self._connection = self._open_checked()
        except IndexUnusable as error:
            logger.warning("gallery index %s is unusable (%s); recreating it from the files", path, error)
            _remove_database_files(path)
            self._connection = self._open_checked()

    # -- opening -----------------------------------------------------------------------------------

    def _open_checked(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._check_and_migrate(connection)
        except (sqlite3.DatabaseError, IndexUnusable) as error:
            connection.close()
            raise IndexUnusable(str(error)) from error
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def _check_and_migrate(self, connection: sqlite3.Connection) -> None:
        result = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            raise IndexUnusable(f"integrity check failed: {'; '.join(map(str, result[:3]))}")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise IndexUnusable(f"schema version {version} is newer than this program's {SCHEMA_VERSION}")
        if version == 0 and tables:
            raise IndexUnusable("not a gallery index (tables without a schema version)")
        for number in range(version, SCHEMA_VERSION):
            logger.info("gallery index %s: migrating schema %d -> %d", self.path, number, number + 1)
            connection.executescript(
                f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
            )
            self.needs_rebuild = True  # new, or migrated rows may lack new facts: refill from the files
        connection.execute(f"SELECT {_IMAGE_COLUMNS}, size, mtime_ns FROM images LIMIT 0").fetchall()
        connection.execute("SELECT rowid FROM images_fts LIMIT 0").fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # -- writes ------------------------------------------------------------------------------------

    def insert(self, record: ImageRecord) -> GalleryImage:
        with self._transaction() as connection:
            cursor = connection.execute(_INSERT, _row_values(record))
            image_id = cursor.lastrowid
        assert image_id is not None
        return self._get_required(image_id)

    def apply(
        self,
        *,
        add: Iterable[ImageRecord] = (),
        update: Iterable[ImageRecord] = (),
        remove: Iterable[str] = (),
        remove_all: bool = False,
    ) -> None:
        """Change many rows in one transaction (an update keeps the row's id)."""
        with self._transaction() as connection:
            if remove_all:
                connection.execute("DELETE FROM images")
            connection.executemany("DELETE FROM images WHERE relpath = ?", ((relpath,) for relpath in remove))
            connection.executemany(_UPDATE, (_row_values(r)[1:] + (r.relpath,) for r in update))
            connection.executemany(_INSERT, (_row_values(r) for r in add))

    # -- reads -------------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def _get_required(self, image_id: int) -> GalleryImage:
        image = self.get(image_id)
        assert image is not None
        return image

    def get(self, image_id: int) -> GalleryImage | None:
        rows = self._query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,))
        return _image(rows[0]) if rows else None

    def recent(self, limit: int, offset: int = 0, author: str | None = None) -> list[GalleryImage]:
        _check_page(limit, offset)
        where, args = ("WHERE author = ?", (author,)) if author is not None else ("", ())
        rows = self._query(
            f"SELECT {_IMAGE_COLUMNS} FROM images {where} {_NEWEST_FIRST} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_image(row) for row in rows]

    def search(self, text: str, limit: int, author: str | None = None) -> list[GalleryImage]:
        """Images whose prompt contains every word of `text`, newest first; blank text → newest images."""
        _check_page(limit)
        if not isinstance(text, str):
            raise TypeError(f"search text must be a string (got {type(text).__name__})")
        if not text.strip():
            return self.recent(limit, author=author)
        query = fts_query(text)
        if query is None:
            return []
        mine, args = (" AND images.author = ?", (author,)) if author is not None else ("", ())
        rows = self._query(
            f"SELECT {', '.join('images.' + c for c in _IMAGE_COLUMNS.split(', '))} FROM images_fts "
            f"JOIN images ON images.id = images_fts.rowid WHERE images_fts MATCH ?{mine} {_NEWEST_FIRST} LIMIT ?",
            (query, *args, limit),
        )
        return [_image(row) for row in rows]

    def count(self) -> int:
        return self._query("SELECT count(*) FROM images")[0][0]

    def file_stats(self) -> dict[str, tuple[int, int]]:
        """{relpath: (size, mtime_ns)} of every row, to compare with the files."""
        return {
            relpath: (size, mtime)
            for relpath, size, mtime in self._query("SELECT relpath, size, mtime_ns FROM images")
        }
