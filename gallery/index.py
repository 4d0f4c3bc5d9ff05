"""The gallery's SQLite index: a disposable cache of what the files say, with FTS5 prompt search.

The index can always be rebuilt from the files, so a file that is missing, corrupt or from an unknown
schema version is simply replaced. Schema changes are numbered migrations tracked in `PRAGMA user_version`;
a migration that only adds columns or indexes keeps the rows (and their ids). One connection is shared
by all threads behind one lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.errors import EaselError
from gallery.files import FileFacts
from gallery.query import MAX_PAGE as MAX_PAGE  # re-exported: callers and tests import it from here
from gallery.query import GalleryQuery, check_page
from gallery.records import GalleryImage

logger = logging.getLogger(__name__)

INDEX_FILE_NAME = ".easel-index.sqlite3"


@dataclass(frozen=True)
class Migration:
    sql: str
    refill: bool
    """True when the rows must be re-read from the files afterwards (they lack a fact it adds)."""


_FTS_COLUMNS = ("prompt", "negative_prompt", "title", "ops", "exports")
SEARCHED_COLUMNS = ("prompt", "title", "ops", "exports")
"""What the search box matches: prompts, titles (upload names), retouch operations and exported file names."""


def _fts_values(row: str) -> str:
    return ", ".join(f"{row}.{column}" for column in _FTS_COLUMNS)


# MIGRATIONS[i] takes the schema from version i to i + 1; SCHEMA_VERSION is their count.
MIGRATIONS: tuple[Migration, ...] = (
    # 1: images, newest-first order, FTS5 over the prompts.
    Migration(
        refill=True,
        sql="""
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
    ),
    # 2: favourites (kept in a file beside the images, copied in by every sync), indexes for the
    #    Gallery tab's filters, each ending in the sort key so a filtered page is read in order; the FTS
    #    update trigger now fires only when a prompt changes, not when a favourite flag does.
    Migration(
        refill=False,
        sql="""
        ALTER TABLE images ADD COLUMN favourite INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX images_model ON images (model, created, id);
        CREATE INDEX images_task ON images (task, created, id);
        CREATE INDEX images_author ON images (author, created, id);
        CREATE INDEX images_favourite ON images (favourite, created, id);
        DROP TRIGGER images_fts_update;
        CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt, negative_prompt ON images BEGIN
            INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
            VALUES ('delete', old.id, old.prompt, old.negative_prompt);
            INSERT INTO images_fts (rowid, prompt, negative_prompt)
            VALUES (new.id, new.prompt, new.negative_prompt);
        END;
        """,
    ),
    # 3: a picture's title, the prompt as typed, a retouch's operations, its job and the files the job exported
    #    beside it; the full-text index covers titles, operations and export names too. Every row is marked
    #    stale (mtime_ns -1), so the next sync re-reads its file and fills the new columns, keeping its id.
    Migration(
        refill=False,
        sql=f"""
        ALTER TABLE images ADD COLUMN title TEXT NOT NULL DEFAULT '';
        ALTER TABLE images ADD COLUMN user_prompt TEXT NOT NULL DEFAULT '';
        ALTER TABLE images ADD COLUMN ops TEXT NOT NULL DEFAULT '';
        ALTER TABLE images ADD COLUMN job TEXT NOT NULL DEFAULT '';
        ALTER TABLE images ADD COLUMN exports TEXT NOT NULL DEFAULT '';
        DROP TRIGGER images_fts_insert;
        DROP TRIGGER images_fts_delete;
        DROP TRIGGER images_fts_update;
        DROP TABLE images_fts;
        CREATE VIRTUAL TABLE images_fts USING fts5 (
            {", ".join(_FTS_COLUMNS)}, content = 'images', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
            INSERT INTO images_fts (rowid, {", ".join(_FTS_COLUMNS)}) VALUES (new.id, {_fts_values("new")});
        END;
        CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
            INSERT INTO images_fts (images_fts, rowid, {", ".join(_FTS_COLUMNS)})
            VALUES ('delete', old.id, {_fts_values("old")});
        END;
        CREATE TRIGGER images_fts_update AFTER UPDATE OF {", ".join(_FTS_COLUMNS)} ON images BEGIN
            INSERT INTO images_fts (images_fts, rowid, {", ".join(_FTS_COLUMNS)})
            VALUES ('delete', old.id, {_fts_values("old")});
            INSERT INTO images_fts (rowid, {", ".join(_FTS_COLUMNS)}) VALUES (new.id, {_fts_values("new")});
        END;
        INSERT INTO images_fts (images_fts) VALUES ('rebuild');
        UPDATE images SET mtime_ns = -1;
        """,
    ),
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
    "title",
    "user_prompt",
    "ops",
    "job",
    "exports",
)
_IMAGE_FIELDS = (
    "id", "relpath", "created", "task", "author", "model", "seed", "width", "height", "prompt", "negative_prompt",
    "infotext", "favourite", "title", "user_prompt", "ops", "job", "exports",
)  # fmt: skip
_IMAGE_COLUMNS = ", ".join(_IMAGE_FIELDS)
_INSERT = f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_INSERT_WITH_FAVOURITE = (
    f"INSERT INTO images ({', '.join(_COLUMNS)}, favourite) VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})"
)
_UPDATE = f"UPDATE images SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE relpath = ?"
_NEWEST_FIRST = "ORDER BY images.created DESC, images.id DESC"
_OLDEST_FIRST = "ORDER BY images.created ASC, images.id ASC"
FACET_COLUMNS = ("model", "task", "author")


class IndexUnusable(EaselError):
    """The index file cannot be used as it is (corrupt, foreign or from an unknown schema)."""


def fts_query(text: str) -> str | None:
    """An FTS5 query matching pictures whose searched columns (SEARCHED_COLUMNS) contain every word of `text` (as a prefix), or None.

    Each word becomes a quoted FTS5 string, so user text can never be FTS syntax (`"`, `*`, `AND`,
    `(`, `NEAR`, `:` ...). Words without a letter or digit are dropped: they match nothing.
    """
    words = [word for word in text.split() if any(ch.isalnum() for ch in word)]
    if not words:
        return None
    terms = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
    return f"{{{' '.join(SEARCHED_COLUMNS)}}} : ({terms})"


_EXPORTS_SEPARATOR = "\n"  # export names are plain file names: never a line break


def _row_values(record: FileFacts) -> tuple[object, ...]:
    return tuple(
        _EXPORTS_SEPARATOR.join(record.exports) if column == "exports" else getattr(record, column)
        for column in _COLUMNS
    )


def _image(row: Sequence[Any]) -> GalleryImage:
    fields: dict[str, Any] = dict(zip(_IMAGE_FIELDS, row, strict=True))
    fields["favourite"] = bool(fields["favourite"])
    fields["exports"] = tuple(name for name in fields["exports"].split(_EXPORTS_SEPARATOR) if name)
    return GalleryImage(**fields)


def _remove_database_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _filters(q: GalleryQuery) -> tuple[str, list[object]] | None:
    """(WHERE clause, arguments) for the query's filters; None when it can match nothing."""
    conditions: list[str] = []
    args: list[object] = []
    if q.text.strip():
        match = fts_query(q.text)
        if match is None:
            return None
        # A subquery, not a join: SQLite then runs the full-text match once, never once per candidate row.
        conditions.append("images.id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        args.append(match)
    for column in FACET_COLUMNS:
        value = getattr(q, column)
        if value is not None:
            conditions.append(f"images.{column} = ?")
            args.append(value)
    if q.favourites_only:
        conditions.append("images.favourite = 1")
    # `created` is ISO-8601 UTC text ("2026-11-25T10:00:00.000000+00:00"): days compare as prefixes.
    if q.date_from is not None:
        conditions.append("images.created >= ?")
        args.append(q.date_from.isoformat())
    if q.date_to is not None and q.date_to < date.max:
        conditions.append("images.created < ?")
        args.append((q.date_to + timedelta(days=1)).isoformat())
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return where, args


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
        connection.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten, not just unlinked
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
            migration = MIGRATIONS[number]
            connection.executescript(f"BEGIN; {migration.sql}; PRAGMA user_version = {number + 1}; COMMIT;")
            self.needs_rebuild = self.needs_rebuild or migration.refill
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
            try:
                self._connection.execute("PRAGMA optimize")  # keeps the planner's statistics fresh
            except sqlite3.Error:
                pass
            self._connection.close()

    # -- writes ------------------------------------------------------------------------------------

    def insert(self, record: FileFacts, *, favourite: bool = False) -> GalleryImage:
        with self._transaction() as connection:
            cursor = connection.execute(_INSERT_WITH_FAVOURITE, (*_row_values(record), int(favourite)))
            image_id = cursor.lastrowid
        assert image_id is not None
        return self._get_required(image_id)

    def apply(
        self,
        *,
        add: Iterable[FileFacts] = (),
        update: Iterable[FileFacts] = (),
        remove: Iterable[str] = (),
        remove_all: bool = False,
        favourites: Collection[str] | None = None,
    ) -> int:
        """Change many rows in one transaction (an update keeps the row's id and favourite flag).

        With `favourites` (relpaths), the rows' favourite flags are then made to match it. Returns how
        many flags that changed.
        """
        with self._transaction() as connection:
            if remove_all:
                connection.execute("DELETE FROM images")
            connection.executemany("DELETE FROM images WHERE relpath = ?", ((relpath,) for relpath in remove))
            connection.executemany(_UPDATE, (_row_values(r)[1:] + (r.relpath,) for r in update))
            connection.executemany(_INSERT, (_row_values(r) for r in add))
            if favourites is None:
                return 0
            flagged = {row[0] for row in connection.execute("SELECT relpath FROM images WHERE favourite = 1")}
            wanted = set(favourites)
            changed = 0
            for value, relpaths in ((1, wanted - flagged), (0, flagged - wanted)):
                cursor = connection.executemany(
                    "UPDATE images SET favourite = ? WHERE relpath = ?",
                    ((value, r) for r in sorted(relpaths)),
                )
                changed += max(cursor.rowcount, 0)
            return changed

    def purge(self) -> None:
        """Leave nothing of deleted rows on disk (call after deleting for good).

        Rows are zeroed when deleted (`secure_delete`), but the full-text index keeps a deleted prompt's words
        until its segments are merged, and the write-ahead log keeps old copies of every changed page: merge
        the index ('optimize'), then copy the log into the database and truncate it.
        """
        with self._lock:
            self._connection.execute("INSERT INTO images_fts (images_fts) VALUES ('optimize')")
            busy, _, _ = self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            logger.warning("gallery index %s: the write-ahead log could not be truncated (busy)", self.path)

    def set_favourite(self, relpaths: Iterable[str], value: bool) -> int:
        """Flag or unflag these rows; returns how many changed."""
        with self._transaction() as connection:
            cursor = connection.executemany(
                "UPDATE images SET favourite = ? WHERE relpath = ? AND favourite != ?",
                ((int(value), relpath, int(value)) for relpath in relpaths),
            )
            return max(cursor.rowcount, 0)

    # -- reads -------------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            rows: list[tuple[Any, ...]] = self._connection.execute(sql, parameters).fetchall()
            return rows

    def _get_required(self, image_id: int) -> GalleryImage:
        image = self.get(image_id)
        assert image is not None
        return image

    def get(self, image_id: int) -> GalleryImage | None:
        rows = self._query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,))
        return _image(rows[0]) if rows else None

    def query(self, q: GalleryQuery) -> tuple[list[GalleryImage], int]:
        """One page of the images matching every filter of `q`, and how many match in all."""
        filters = _filters(q)
        if filters is None:
            return [], 0
        where, args = filters
        order = _NEWEST_FIRST if q.newest_first else _OLDEST_FIRST
        with self._lock:  # one lock over both: no write can land between the page and its count
            rows = self._query(
                f"SELECT {_IMAGE_COLUMNS} FROM images {where} {order} LIMIT ? OFFSET ?",
                [*args, q.limit, q.offset],
            )
            if (rows and len(rows) < q.limit) or (not rows and q.offset == 0):
                total = q.offset + len(rows)  # the last page: no need to count
            else:
                total = self._query(f"SELECT count(*) FROM images {where}", args)[0][0]
        return [_image(row) for row in rows], total

    def facets(self) -> dict[str, list[str]]:
        """The distinct non-empty values of each filterable column, sorted."""
        return {
            column: [
                row[0]
                for row in self._query(
                    f"SELECT DISTINCT {column} FROM images WHERE {column} != '' ORDER BY {column}"
                )
            ]
            for column in FACET_COLUMNS
        }

    def recent(self, limit: int, offset: int = 0, author: str | None = None) -> list[GalleryImage]:
        check_page(limit, offset)
        where, args = ("WHERE author = ?", (author,)) if author is not None else ("", ())
        rows = self._query(
            f"SELECT {_IMAGE_COLUMNS} FROM images {where} {_NEWEST_FIRST} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_image(row) for row in rows]

    def search(self, text: str, limit: int, author: str | None = None) -> list[GalleryImage]:
        """Images whose prompt contains every word of `text`, newest first; blank text → newest images."""
        check_page(limit)
        if not isinstance(text, str):
            raise TypeError(f"search text must be a string (got {type(text).__name__})")
        if limit == 0:
            return []
        return self.query(GalleryQuery(text=text, author=author, limit=limit))[0]

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM images")[0][0])

    def lists_job(self, job: str) -> bool:
        """True when some indexed picture was made by the job `job` (and so lists its exports)."""
        return bool(self._query("SELECT 1 FROM images WHERE job = ? LIMIT 1", (job,)))

    def file_stats(self) -> dict[str, tuple[int, int]]:
        """{relpath: (size, mtime_ns)} of every row, to compare with the files."""
        return {
            relpath: (size, mtime)
            for relpath, size, mtime in self._query("SELECT relpath, size, mtime_ns FROM images")
        }
