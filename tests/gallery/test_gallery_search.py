"""Finding pictures again: titles (upload names), prompts as typed, retouch operations and exported files in the
index and its search, and the schema 3 migration of an index an earlier version wrote. Real files, real SQLite."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from gallery import Gallery, GalleryQuery
from gallery.files import EXPORTS_DIR
from gallery.index import INDEX_FILE_NAME, MAX_PAGE, MIGRATIONS, SCHEMA_VERSION

DAY = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def _clock() -> Iterator[datetime]:
    moment = DAY
    while True:
        yield moment
        moment += timedelta(seconds=1)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def gallery(outputs: Path) -> Iterator[Gallery]:
    ticks = _clock()
    with Gallery(outputs, now=lambda: next(ticks)) as opened:
        yield opened


def _save(gallery: Gallery, prompt: str, *, task: str = "txt2img", model: str = "tiny", **extra: object):
    infotext = f"{prompt}\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 7, Size: 16x16" if prompt else ""
    image = Image.new("RGBA", (16, 16), (200, 30, 40, 0))
    return gallery.save(image, infotext=infotext, seed=7, task=task, author="ann", model=model, extra=extra)


def _found(gallery: Gallery, text: str) -> list[int]:
    return [image.id for image in gallery.query(GalleryQuery(text=text)).items]


def _rows(gallery: Gallery) -> dict[str, dict[str, object]]:
    return {
        i.relpath: {k: v for k, v in asdict(i).items() if k != "id"} for i in gallery.recent(limit=MAX_PAGE)
    }


def test_search_finds_titles_operations_and_exports_as_well_as_prompts(gallery: Gallery) -> None:
    job = uuid.uuid4().hex
    mug = _save(gallery, "", task="retouch", model="", title="mug-shot.png", job=job,
                retouch={"chain": "remove_background → upscale ×2"})  # fmt: skip
    fox = _save(gallery, "a red fox logo, flat vector")
    gallery.save_exports(
        job, [("coffee-brand-vector.svg", b"<svg/>"), ("coffee-brand-logo-pack.zip", b"PK")], [mug.id]
    )

    assert _found(gallery, "mug") == [mug.id]  # the upload's file name
    assert _found(gallery, "shot png") == [mug.id]
    assert _found(gallery, "background") == [mug.id]  # a retouch operation
    assert _found(gallery, "upscale mug") == [mug.id]  # words from different places
    assert _found(gallery, "coffee") == [mug.id]  # an exported file's name
    assert _found(gallery, "vector") == [fox.id, mug.id]  # the fox's prompt, the mug's SVG
    assert _found(gallery, "fox") == [fox.id]
    assert _found(gallery, "mug fox") == []
    assert _found(gallery, "zebra") == []


def test_captions_start_with_the_authors_own_words(gallery: Gallery) -> None:
    styled = _save(gallery, "a mug on a table, studio lighting, masterpiece", user_prompt="a mug on a table")
    titled = _save(gallery, "", task="retouch", model="", title="mug-shot.png",
                   retouch={"chain": "remove_background → upscale ×2"})  # fmt: skip
    untitled = _save(gallery, "", task="retouch", model="", retouch={"chain": "enhance"})
    plain = _save(gallery, "a lighthouse at dusk")

    assert styled.caption == "a mug on a table" and styled.prompt.endswith("masterpiece")
    assert titled.caption == "mug-shot.png · Retouch: remove background → upscale ×2"
    assert titled.ops == "remove background → upscale ×2"
    assert untitled.caption == "Retouch: enhance"
    assert plain.caption == "a lighthouse at dusk"  # made elsewhere or without styles: the prompt itself


def test_exports_are_listed_only_from_their_own_folder_inside_outputs(
    gallery: Gallery, outputs: Path
) -> None:
    job = uuid.uuid4().hex
    picture = _save(gallery, "a logo", job=job)
    assert picture.exports == () and gallery.export_paths(picture.id) == []
    paths = gallery.save_exports(job, [("logo-vector.svg", b"<svg/>")], [picture.id])
    folder = outputs / EXPORTS_DIR / job
    assert paths == [folder / "logo-vector.svg"] and paths[0].read_bytes() == b"<svg/>"
    assert gallery.get(picture.id).exports == ("logo-vector.svg",)
    assert gallery.export_paths(picture.id) == paths

    # a link or a dot-file put into the folder is never listed; a file gone since is left out
    secret = outputs.parent / "secret.txt"
    secret.write_text("not yours")
    (folder / "leak.svg").symlink_to(secret)
    (folder / ".hidden.svg").write_text("x")
    gallery.rebuild()
    again = gallery.query(GalleryQuery(text="logo")).items[0]
    assert again.exports == ("logo-vector.svg",)
    paths[0].unlink()
    assert gallery.export_paths(again.id) == []


@pytest.mark.parametrize("name", ["../escape.svg", "a/b.svg", ".hidden", "", "x" * 101, "..", "név.svg"])
def test_save_exports_refuses_names_that_are_not_plain_file_names(
    gallery: Gallery, outputs: Path, name: str
) -> None:
    job = uuid.uuid4().hex
    with pytest.raises(ValueError, match="not a plain file name"):
        gallery.save_exports(job, [("fine.svg", b"1"), (name, b"2")])
    assert not (outputs / EXPORTS_DIR / job).exists()  # nothing written, not even the good one


@pytest.mark.parametrize("job", ["../x", "ABC", "", "0" * 31])
def test_save_exports_refuses_what_is_not_a_job_id(gallery: Gallery, job: str) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        gallery.save_exports(job, [("fine.svg", b"1")])


def test_rebuild_from_files_keeps_titles_operations_and_exports(gallery: Gallery) -> None:
    job = uuid.uuid4().hex
    picture = _save(gallery, "", task="retouch", model="", title="mug-shot.png", job=job,
                    retouch={"chain": "remove_background"})  # fmt: skip
    gallery.save_exports(job, [("mug-shot-vector.svg", b"<svg/>")], [picture.id])
    _save(gallery, "a mug, masterpiece", user_prompt="a mug")
    live = _rows(gallery)
    assert gallery.rebuild() == 2
    assert _rows(gallery) == live
    assert any(row["exports"] == ("mug-shot-vector.svg",) for row in live.values())


# The index schema of version 2, as the previous release wrote it: version 1 (tests/gallery/test_gallery.py keeps
# it verbatim) and the migration to 2, which is history and never changes.
def _schema_v2() -> str:
    from tests.gallery.test_gallery import SCHEMA_V1

    return f"{SCHEMA_V1}\nBEGIN; {MIGRATIONS[1].sql}; PRAGMA user_version = 2; COMMIT;"


def test_index_at_schema_v2_is_migrated_keeping_ids_and_fills_the_new_columns(outputs: Path) -> None:
    ticks = _clock()
    with Gallery(outputs, now=lambda: next(ticks)) as gallery:
        job = uuid.uuid4().hex
        mug = _save(gallery, "", task="retouch", model="", title="mug-shot.png", job=job,
                    retouch={"chain": "remove_background → upscale ×2"})  # fmt: skip
        gallery.save_exports(job, [("mug-vector.svg", b"<svg/>")], [mug.id])
        fox = _save(gallery, "a fox, masterpiece", user_prompt="a fox")
        gallery.set_favourite([fox.id], True)
    for name in os.listdir(outputs):
        if name.startswith(INDEX_FILE_NAME):
            (outputs / name).unlink()
    # the v2 index an earlier version wrote for these files: other ids than a rebuild would give them
    connection = sqlite3.connect(outputs / INDEX_FILE_NAME)
    connection.executescript(_schema_v2())
    for image in (mug, fox):
        stat = (outputs / image.relpath).stat()
        values = list(asdict(image).values())
        connection.execute(
            "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (image.id + 100, *values[1:12], stat.st_size, stat.st_mtime_ns, int(image.favourite)),
        )
    connection.commit()
    assert _found_raw(connection, "fox") == [fox.id + 100]  # searchable by prompt before
    connection.close()

    with Gallery(outputs) as migrated:
        assert sorted(i.id for i in migrated.recent()) == [mug.id + 100, fox.id + 100]  # ids kept
        again = migrated.get(mug.id + 100)
        assert (again.title, again.ops, again.exports) == ("mug-shot.png", "remove background → upscale ×2",
                                                           ("mug-vector.svg",))  # fmt: skip
        assert migrated.get(fox.id + 100).caption == "a fox" and migrated.get(fox.id + 100).favourite
        assert _found(migrated, "mug") == _found(migrated, "vector") == [mug.id + 100]
        assert _found(migrated, "fox") == [fox.id + 100]
    connection = sqlite3.connect(outputs / INDEX_FILE_NAME)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        columns = [row[1] for row in connection.execute("PRAGMA table_info(images_fts)")]
        assert columns == ["prompt", "negative_prompt", "title", "ops", "exports"]
        assert connection.execute("SELECT count(*) FROM images WHERE mtime_ns = -1").fetchone()[0] == 0
    finally:
        connection.close()


def _found_raw(connection: sqlite3.Connection, word: str) -> list[int]:
    return [
        row[0] for row in connection.execute("SELECT rowid FROM images_fts WHERE images_fts MATCH ?", (word,))
    ]


def test_exports_go_for_good_with_the_last_picture_that_lists_them(gallery: Gallery, outputs: Path) -> None:
    job, other_job = uuid.uuid4().hex, uuid.uuid4().hex
    first = _save(gallery, "first of two", job=job)
    second = _save(gallery, "second of two", job=job)
    other = _save(gallery, "another job", job=other_job)
    gallery.save_exports(
        job, [("secret-brand-vector.svg", b"<svg>zqxjkvermilion</svg>")], [first.id, second.id]
    )
    gallery.save_exports(other_job, [("kept-vector.svg", b"<svg/>")], [other.id])
    folder = outputs / EXPORTS_DIR / job

    gallery.delete([first.id])
    assert gallery.empty_trash() == 1
    assert folder.is_dir()  # the second picture still lists them
    assert gallery.export_paths(second.id) == [folder / "secret-brand-vector.svg"]

    gallery.delete([second.id])
    assert folder.is_dir()  # in the trash, undo must bring the picture back with its files
    assert gallery.empty_trash(author="bob") == 0 and folder.is_dir()  # not bob's picture
    assert gallery.empty_trash(author="ann") == 1
    assert not folder.exists()
    assert not [p for p in outputs.rglob("*") if p.is_file() and b"zqxjkvermilion" in p.read_bytes()]
    assert gallery.export_paths(other.id) == [outputs / EXPORTS_DIR / other_job / "kept-vector.svg"]
