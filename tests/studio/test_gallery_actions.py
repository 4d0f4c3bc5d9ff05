"""Gallery actions: favourites, delete to trash and undo, emptying the trash, thumbnails, zip export.

Real PNG files and a real SQLite index in a temp folder; no mocks.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from core.backend import BackendEvent, BackendStatus, JobFailed, ModelInfo
from core.requests import GenerationRequest
from gallery import THUMB_SIZES, Gallery, GalleryImage, GalleryQuery, ImageNotFound
from gallery.index import INDEX_FILE_NAME
from studio import Studio
from tests.gallery.test_gallery import _clock, _infotext, _write_a1111_png

FAVOURITES = ".easel-favourites.json"


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def gallery(outputs: Path) -> Iterator[Gallery]:
    with Gallery(outputs, now=_clock()) as opened:
        yield opened


def _save(
    gallery: Gallery, seed: int, *, color: str = "red", size: tuple[int, int] = (16, 16), **fields: str
) -> GalleryImage:
    chunk = {"task": "txt2img", "author": "ann", "model": "tiny-sd1", **fields}
    return gallery.save(
        Image.new("RGB", size, color),
        infotext=_infotext(f"picture number {seed}", seed),
        seed=seed,
        **chunk,  # type: ignore[arg-type]
    )


def _favourite_ids(gallery: Gallery) -> set[int]:
    return {i.id for i in gallery.query(GalleryQuery(favourites_only=True, limit=1000)).items}


def _favourites_file(outputs: Path) -> list[str]:
    return json.loads((outputs / FAVOURITES).read_text())


def _disk(outputs: Path) -> dict[str, bytes]:
    """Every file under outputs except the index's own, by relpath."""
    return {
        p.relative_to(outputs).as_posix(): p.read_bytes()
        for p in sorted(outputs.rglob("*"))
        if p.is_file() and not p.name.startswith(INDEX_FILE_NAME)
    }


# --- favourites -----------------------------------------------------------------------------------


def test_set_favourite_flags_rows_and_the_file(gallery: Gallery, outputs: Path) -> None:
    a, b, c = (_save(gallery, seed) for seed in range(3))
    assert not (outputs / FAVOURITES).exists()  # nothing starred, nothing written
    assert gallery.set_favourite([a.id, c.id, a.id], True) == 2
    assert gallery.set_favourite([a.id], True) == 0  # already starred
    assert gallery.get(a.id).favourite and not gallery.get(b.id).favourite
    assert _favourite_ids(gallery) == {a.id, c.id}
    assert _favourites_file(outputs) == sorted([a.relpath, c.relpath])
    assert gallery.set_favourite((c.id, b.id), False) == 1
    assert _favourite_ids(gallery) == {a.id}
    assert _favourites_file(outputs) == [a.relpath]
    assert not [p for p in outputs.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_set_favourite_checks_everything_before_changing_anything(gallery: Gallery) -> None:
    a = _save(gallery, 1)
    with pytest.raises(ImageNotFound):
        gallery.set_favourite([a.id, a.id + 1], True)
    for bad_ids in ("12", b"1", 5, [a.id, "1"], [True]):
        with pytest.raises(TypeError):
            gallery.set_favourite(bad_ids, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gallery.set_favourite([a.id], 1)  # type: ignore[arg-type]
    assert _favourite_ids(gallery) == set()


def test_favourites_survive_rebuild_and_a_lost_or_corrupt_index(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        saved = [_save(gallery, seed) for seed in range(6)]
        gallery.set_favourite([saved[1].id, saved[4].id], True)
        starred = {saved[1].relpath, saved[4].relpath}
        assert gallery.rebuild() == 6
        assert {i.relpath for i in gallery.query(GalleryQuery(favourites_only=True)).items} == starred

    for name in os.listdir(outputs):
        if name.startswith(INDEX_FILE_NAME):
            (outputs / name).unlink()
    with Gallery(outputs) as reopened:
        assert {i.relpath for i in reopened.query(GalleryQuery(favourites_only=True)).items} == starred

    for name in os.listdir(outputs):
        if name.startswith(INDEX_FILE_NAME + "-"):
            (outputs / name).unlink()
    (outputs / INDEX_FILE_NAME).write_bytes(b"\x00garbage\xff" * 2048)
    with Gallery(outputs) as reopened:
        assert reopened.count() == 6
        assert {i.relpath for i in reopened.query(GalleryQuery(favourites_only=True)).items} == starred


def test_favourites_of_files_removed_behind_our_back_are_forgotten(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        a, b = _save(gallery, 1), _save(gallery, 2)
        gallery.set_favourite([a.id, b.id], True)
    (outputs / b.relpath).unlink()
    with Gallery(outputs, now=_clock()) as reopened:
        assert _favourites_file(outputs) == [a.relpath]
        # so a new image that happens to get the same name is not born starred
        again = _save(reopened, 2)
        assert again.relpath == b.relpath and not again.favourite


def test_favourites_file_edited_while_closed_is_read_on_open(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        a, b = _save(gallery, 1), _save(gallery, 2)
    (outputs / FAVOURITES).write_text(json.dumps([b.relpath, "../../etc/passwd", 7, "/abs/x.png"]))
    with Gallery(outputs) as reopened:
        assert _favourite_ids(reopened) == {b.id}
        assert reopened.get(a.id) == a  # not rebuilt: ids kept


def test_unreadable_favourites_file_is_logged_not_fatal(
    outputs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        a = _save(gallery, 1)
    (outputs / FAVOURITES).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="gallery"), Gallery(outputs) as reopened:
        assert _favourite_ids(reopened) == set()
        assert reopened.set_favourite([a.id], True) == 1
    assert "favourites" in caplog.text
    assert _favourites_file(outputs) == [a.relpath]


# --- delete and undo ------------------------------------------------------------------------------


def test_delete_moves_files_to_the_trash_and_restore_brings_them_back(
    gallery: Gallery, outputs: Path
) -> None:
    a, b, c = (_save(gallery, seed, color=color) for seed, color in ((1, "red"), (2, "green"), (3, "blue")))
    gallery.set_favourite([b.id], True)
    before = {image.relpath: (outputs / image.relpath).read_bytes() for image in (a, b, c)}
    thumb = gallery.thumbnail(b.id)

    keys = gallery.delete([b.id, c.id])
    assert keys == [b.relpath, c.relpath]  # the day folder is kept inside the trash
    assert [(outputs / ".trash" / key).read_bytes() for key in keys] == [before[b.relpath], before[c.relpath]]
    assert not (outputs / b.relpath).exists() and not thumb.exists()
    for gone in (b, c):
        with pytest.raises(ImageNotFound):
            gallery.get(gone.id)
    assert [i.id for i in gallery.query(GalleryQuery()).items] == [a.id]
    assert gallery.trash_count() == 2
    assert _favourites_file(outputs) == [".trash/" + b.relpath]
    assert gallery.rebuild() == 1  # the trash is never indexed

    restored = gallery.restore(keys)
    assert [i.relpath for i in restored] == [b.relpath, c.relpath]
    for image in restored:
        assert (outputs / image.relpath).read_bytes() == before[image.relpath]
        assert gallery.get(image.id) == image
    old = {i.relpath: i for i in (b, c)}
    assert [(i.created, i.prompt, i.seed, i.model) for i in restored] == [
        (old[i.relpath].created, old[i.relpath].prompt, old[i.relpath].seed, old[i.relpath].model)
        for i in restored
    ]
    assert [i.favourite for i in restored] == [True, False]  # the star comes back with the file
    assert _favourites_file(outputs) == [b.relpath]
    assert gallery.trash_count() == 0
    assert [i.relpath for i in gallery.query(GalleryQuery(newest_first=False)).items] == [
        a.relpath,
        b.relpath,
        c.relpath,
    ]


def test_trash_name_clashes_get_a_suffix_and_restore_picks_a_free_number(
    gallery: Gallery, outputs: Path
) -> None:
    first = _save(gallery, 7, color="red")  # 00000-7.png
    first_bytes = (outputs / first.relpath).read_bytes()
    (first_key,) = gallery.delete([first.id])
    second = _save(gallery, 7, color="blue")  # the number is free again: the same name
    second_bytes = (outputs / second.relpath).read_bytes()
    assert second.relpath == first.relpath
    (second_key,) = gallery.delete([second.id])
    assert (first_key, second_key) == ("2026-11-25/00000-7.png", "2026-11-25/00000-7~1.png")

    third = _save(gallery, 7, color="green")  # takes the name again
    back = gallery.restore([first_key, second_key])
    assert [i.relpath for i in back] == ["2026-11-25/00001-7.png", "2026-11-25/00002-7.png"]
    assert (outputs / back[0].relpath).read_bytes() == first_bytes
    assert (outputs / back[1].relpath).read_bytes() == second_bytes
    assert gallery.count() == 3 and gallery.get(third.id).relpath == "2026-11-25/00000-7.png"
    assert _save(gallery, 8).relpath == "2026-11-25/00003-8.png"


def test_delete_checks_every_id_before_moving_anything(gallery: Gallery, outputs: Path) -> None:
    a = _save(gallery, 1)
    before = _disk(outputs)
    with pytest.raises(ImageNotFound):
        gallery.delete([a.id, a.id + 50])
    for bad in ("1", [a.id, 1.5], [None]):
        with pytest.raises(TypeError):
            gallery.delete(bad)  # type: ignore[arg-type]
    assert _disk(outputs) == before and gallery.count() == 1
    assert gallery.delete([]) == []


def test_delete_of_an_image_whose_file_vanished_drops_its_row(gallery: Gallery, outputs: Path) -> None:
    a, b = _save(gallery, 1), _save(gallery, 2)
    (outputs / a.relpath).unlink()
    assert gallery.delete([a.id, b.id]) == [b.relpath]
    assert gallery.count() == 0


def test_delete_refuses_a_trash_folder_that_is_a_link(
    gallery: Gallery, outputs: Path, tmp_path: Path
) -> None:
    a = _save(gallery, 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (outputs / ".trash").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PermissionError):
        gallery.delete([a.id])
    assert list(elsewhere.iterdir()) == [] and gallery.get(a.id) == a
    assert (outputs / a.relpath).is_file()
    assert gallery.trash_count() == 0
    with pytest.raises(PermissionError):
        gallery.empty_trash()
    assert elsewhere.is_dir()


def test_restore_rejects_bad_keys_before_moving_anything(
    gallery: Gallery, outputs: Path, tmp_path: Path
) -> None:
    a, b = _save(gallery, 1), _save(gallery, 2)
    (good,) = gallery.delete([a.id])
    secret = tmp_path / "secret.png"
    _write_a1111_png(secret)
    (outputs / ".trash" / "2026-11-25" / "00009-9.png").symlink_to(secret)  # a link in the trash, out
    (outputs / ".trash" / "2026-11-25" / "00010-9.png").symlink_to(outputs / b.relpath)  # a link, in
    (outputs / ".trash" / "2026-11-26").symlink_to(outputs / "2026-11-25", target_is_directory=True)
    (outputs / ".trash" / "2026-11-25" / "00011-9.png").write_bytes(b"not a png")
    before = _disk(outputs)
    bad_keys = [
        "../x",
        "../../secret.png",
        "2026-11-25/../../secret.png",
        "2026-11-25/../2026-11-25/00000-1.png",
        str(secret),
        "/2026-11-25/00000-1.png",
        "2026-11-25/00000-1.png\x00.png",
        "2026-11-25",
        "2026-11-25/",
        "2026-11-25/00099-1.png",  # well formed, but not in the trash
        "2026-11-25/00009-9.png",
        "2026-11-25/00010-9.png",
        "2026-11-26/" + b.relpath.split("/")[1],  # through a linked folder
        "2026-11-25/00011-9.png",  # not an image
        "2026-11-25/.hidden.png",
        "2026-11-25\\00000-1.png",
        "",
        123,
        None,
    ]
    for key in bad_keys:
        with pytest.raises(ValueError):
            gallery.restore([good, key])  # type: ignore[list-item]
    assert _disk(outputs) == before and gallery.count() == 1 and secret.is_file()
    with pytest.raises(TypeError):
        gallery.restore(good)  # a bare string, not a list of keys
    assert [i.relpath for i in gallery.restore([good])] == [a.relpath]


def test_empty_trash_deletes_for_good(gallery: Gallery, outputs: Path) -> None:
    a, b, c = (_save(gallery, seed) for seed in range(3))
    gallery.set_favourite([b.id, c.id], True)
    keys = gallery.delete([a.id, b.id])
    assert gallery.trash_count() == 2
    assert gallery.empty_trash() == 2
    assert gallery.trash_count() == 0 and gallery.empty_trash() == 0
    assert not (outputs / ".trash").exists()
    assert _favourites_file(outputs) == [c.relpath]
    with pytest.raises(ValueError):
        gallery.restore(keys)
    assert gallery.rebuild() == 1 and gallery.sync() == 0
    assert [i.relpath for i in gallery.recent()] == [c.relpath]
    assert sorted(p.name for p in (outputs / "2026-11-25").iterdir()) == [c.relpath.split("/")[1]]


def test_actions_from_many_threads_leave_files_index_and_favourites_agreeing(outputs: Path) -> None:
    errors: list[BaseException] = []
    with Gallery(outputs, now=_clock(step=timedelta(0))) as gallery:
        seeded = [_save(gallery, seed) for seed in range(12)]

        def guarded(work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    work()
                except BaseException as error:  # reported by the main thread
                    errors.append(error)

            return run

        def saver() -> None:
            for seed in range(100, 115):
                _save(gallery, seed)

        def deleter() -> None:
            for image in seeded[:6]:
                keys = gallery.delete([image.id])
                gallery.restore(keys)

        def starrer() -> None:
            for image in seeded[6:]:
                gallery.set_favourite([image.id], True)
                gallery.thumbnail(image.id, 128)
                gallery.set_favourite([image.id], image.seed % 2 == 0)

        def reader() -> None:
            for _ in range(30):
                gallery.query(GalleryQuery(favourites_only=True))
                gallery.query(GalleryQuery(text="picture", limit=5, offset=3))
                gallery.facets()

        threads = [threading.Thread(target=guarded(w)) for w in (saver, deleter, starrer, reader, reader)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert gallery.count() == 27 and gallery.trash_count() == 0
        assert gallery.sync() == 0  # the index already says what the files say
        starred = {i.relpath for i in gallery.query(GalleryQuery(favourites_only=True)).items}
        assert starred == set(_favourites_file(outputs)) == {i.relpath for i in seeded[6:] if i.seed % 2 == 0}
        assert gallery.rebuild() == 27
        assert {i.relpath for i in gallery.query(GalleryQuery(favourites_only=True)).items} == starred


# --- thumbnails -----------------------------------------------------------------------------------


def test_thumbnails_are_made_lazily_cached_and_sized(gallery: Gallery, outputs: Path) -> None:
    wide = _save(gallery, 1, size=(600, 300))
    small = _save(gallery, 2, size=(40, 20))
    thumbs_dir = outputs / ".thumbs"
    assert not thumbs_dir.exists()

    path = gallery.thumbnail(wide.id)
    assert path == outputs.resolve() / ".thumbs" / f"{wide.relpath}.256.webp"
    assert [p.name for p in thumbs_dir.rglob("*.webp")] == [path.name]  # only what was asked for
    first = path.stat()
    assert gallery.thumbnail(wide.id) == path
    again = path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not rewritten

    for size, expected in ((128, (128, 64)), (256, (256, 128)), (512, (512, 256))):
        with Image.open(gallery.thumbnail(wide.id, size)) as thumb:
            assert (thumb.format, thumb.size) == ("WEBP", expected)
    with Image.open(gallery.thumbnail(small.id, 512)) as thumb:
        assert thumb.size == (40, 20)  # never enlarged
    for bad in (100, 1024, 0, "256", True, 256.0):
        with pytest.raises(ValueError):
            gallery.thumbnail(wide.id, bad)  # type: ignore[arg-type]
    with pytest.raises(ImageNotFound):
        gallery.thumbnail(small.id + 1)
    assert THUMB_SIZES == (128, 256, 512)
    assert gallery.rebuild() == 2 and gallery.sync() == 0  # thumbnails are never indexed


def test_thumbnail_is_remade_when_the_png_changes(gallery: Gallery, outputs: Path) -> None:
    saved = _save(gallery, 1, color="red", size=(64, 64))
    path = gallery.thumbnail(saved.id, 128)
    with Image.open(path) as thumb:
        assert thumb.convert("RGB").getpixel((32, 32))[0] > 200  # red

    png = outputs / saved.relpath
    Image.new("RGB", (64, 64), "blue").save(png)
    later = png.stat().st_mtime_ns + 2_000_000_000
    os.utime(png, ns=(later, later))
    remade = gallery.thumbnail(saved.id, 128)
    assert remade == path
    with Image.open(remade) as thumb:
        red, _, blue = thumb.convert("RGB").getpixel((32, 32))
        assert blue > 200 and red < 50


def test_thumbnail_folder_that_is_a_link_is_refused(gallery: Gallery, outputs: Path, tmp_path: Path) -> None:
    saved = _save(gallery, 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (outputs / ".thumbs").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PermissionError):
        gallery.thumbnail(saved.id)
    assert list(elsewhere.iterdir()) == []


# --- export ---------------------------------------------------------------------------------------


def test_export_zip_holds_the_original_pngs(gallery: Gallery, outputs: Path, tmp_path: Path) -> None:
    a, b, c = (_save(gallery, seed) for seed in range(3))
    _write_a1111_png(outputs / "2026-11-20" / "00000-555.png")
    gallery.sync()
    (old,) = (i for i in gallery.recent() if i.relpath.startswith("2026-11-20/"))
    dest = tmp_path / "export" / "pick.zip"
    dest.parent.mkdir()
    assert gallery.export_zip([c.id, old.id, a.id, c.id], dest) == dest
    with zipfile.ZipFile(dest) as archive:
        assert archive.namelist() == [
            c.relpath.replace("/", "_"),
            "2026-11-20_00000-555.png",
            a.relpath.replace("/", "_"),
        ]
        for image in (c, old, a):
            data = archive.read(image.relpath.replace("/", "_"))
            assert data == (outputs / image.relpath).read_bytes()
        with Image.open(io.BytesIO(archive.read("2026-11-20_00000-555.png"))) as png:
            assert "lighthouse" in png.text["parameters"]
    assert [p.name for p in dest.parent.iterdir()] == ["pick.zip"]  # no temp file left
    with pytest.raises(ValueError):
        gallery.export_zip([], tmp_path / "empty.zip")
    with pytest.raises(ImageNotFound):
        gallery.export_zip([b.id, 999], tmp_path / "missing.zip")
    assert not (tmp_path / "empty.zip").exists() and not (tmp_path / "missing.zip").exists()


# --- the Studio's pass-throughs -------------------------------------------------------------------


class _NoModels:
    """A backend with nothing to run: the gallery actions never reach it."""

    def run(self, request: GenerationRequest, resolved: object = None) -> Iterator[BackendEvent]:
        raise JobFailed("no models here")

    def models(self, refresh: bool = False) -> list[ModelInfo]:
        return []

    def default_model(self) -> str | None:
        return None

    def status(self) -> BackendStatus:
        return BackendStatus(device="none")


def test_studio_passes_gallery_actions_through(gallery: Gallery, outputs: Path, tmp_path: Path) -> None:
    studio = Studio(_NoModels(), gallery)
    a, b = _save(gallery, 1, model="m-a", author="bo"), _save(gallery, 2, task="inpaint")
    assert studio.gallery.facets() == {
        "model": ["m-a", "tiny-sd1"],
        "task": ["inpaint", "txt2img"],
        "author": ["ann", "bo"],
    }
    assert studio.gallery.query(GalleryQuery(author="bo")).items == [a]
    assert studio.gallery.get(b.id) == b
    assert (
        studio.pictures.set_favourite([a.id], True, user="local") == 1
    )  # no logins: the local user is the admin
    assert studio.gallery.thumbnail(a.id, 128).is_file()
    assert studio.gallery.export_zip([a.id], tmp_path / "a.zip").is_file()
    keys = studio.pictures.delete_images([a.id], user="local")
    assert (
        studio.pictures.trash_count(user="bo") == 1
        and studio.pictures.trash_count(user="local", everyone=True) == 1
    )
    (back,) = studio.pictures.restore_images(keys, user="local")
    assert back.favourite and back.relpath == a.relpath
    studio.pictures.delete_images([back.id], user="local")
    assert (
        studio.pictures.empty_trash(user="local", everyone=True) == 1
        and studio.pictures.trash_count(user="bo") == 0
    )
    assert studio.gallery.query(GalleryQuery()).total == 1
