"""Gallery: real PNG files and a real SQLite index in a temp folder; no mocks."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from core.infotext import EASEL_CHUNK_KEY, INFOTEXT_KEY, parse_infotext
from gallery import Gallery, GalleryImage, GalleryPage, GalleryQuery, ImageNotFound
from gallery.index import INDEX_FILE_NAME, MAX_PAGE, SCHEMA_VERSION

DAY = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
A1111_TEXT = (
    "an old lighthouse at dusk, oil painting\n"
    "Negative prompt: people\n"
    "Steps: 25, Sampler: Euler a, CFG scale: 6.5, Seed: 555, Size: 32x24, Model hash: 6ce0161689, "
    "Model: v1-5-pruned-emaonly, Version: v1.10.1"
)


def _infotext(prompt: str, seed: int, negative: str = "") -> str:
    negative_line = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_line}\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: {seed}, Size: 16x16"


def _clock(start: datetime = DAY, step: timedelta = timedelta(seconds=1)) -> Callable[[], datetime]:
    """A thread-safe fake clock: each call is `step` later than the one before."""
    lock = threading.Lock()
    ticks = iter(range(10**9))

    def now() -> datetime:
        with lock:
            return start + step * next(ticks)

    return now


def _image(color: str = "red", size: tuple[int, int] = (16, 16)) -> Image.Image:
    return Image.new("RGB", size, color)


def _save(
    gallery: Gallery, prompt: str = "a red fox logo", seed: int = 1234, **kwargs: object
) -> GalleryImage:
    fields: dict[str, object] = {"task": "txt2img", "author": "ann", "model": "tiny-sd1"}
    fields.update(kwargs)
    return gallery.save(_image(), infotext=_infotext(prompt, seed), seed=seed, **fields)  # type: ignore[arg-type]


def _write_a1111_png(path: Path, text: str = A1111_TEXT) -> None:
    info = PngInfo()
    info.add_text(INFOTEXT_KEY, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), "navy").save(path, pnginfo=info)


def _rows(gallery: Gallery) -> dict[str, dict[str, object]]:
    """Every indexed image by relpath, without the id (ids may be re-assigned by a rebuild)."""
    images = gallery.recent(limit=MAX_PAGE)
    assert len(images) == gallery.count()
    return {image.relpath: {k: v for k, v in asdict(image).items() if k != "id"} for image in images}


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def gallery(outputs: Path) -> Iterator[Gallery]:
    with Gallery(outputs, now=_clock()) as opened:
        yield opened


# --- saving ---------------------------------------------------------------------------------------


def test_saved_file_name_and_location(gallery: Gallery, outputs: Path) -> None:
    first = _save(gallery, seed=1234)
    second = _save(gallery, seed=99)
    assert (first.relpath, second.relpath) == ("2026-11-25/00000-1234.png", "2026-11-25/00001-99.png")
    assert (outputs / "2026-11-25" / "00000-1234.png").is_file()
    assert gallery.file_path(first.id) == (outputs / first.relpath).resolve()
    assert first.created == "2026-11-25T10:00:00.000000+00:00"
    assert (first.task, first.author, first.model, first.seed) == ("txt2img", "ann", "tiny-sd1", 1234)
    assert (first.width, first.height, first.prompt, first.negative_prompt) == (16, 16, "a red fox logo", "")
    assert gallery.get(second.id) == second
    assert gallery.count() == 2


def test_day_folder_follows_the_clock(outputs: Path) -> None:
    clock = _clock(start=datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    with Gallery(outputs, now=clock) as gallery:
        assert _save(gallery, seed=1).relpath == "2026-12-31/00000-1.png"
        assert _save(gallery, seed=2).relpath == "2027-01-01/00000-2.png"


def test_png_carries_parameters_and_our_chunk(gallery: Gallery) -> None:
    prompt = "a fox logo \u2014 \u72d0\u306e\u30ed\u30b4, caf\u00e9"  # not Latin-1: stored as iTXt
    infotext = _infotext(prompt, 7, negative="blurry, text")
    saved = gallery.save(
        _image(size=(24, 16)),
        infotext=infotext,
        seed=7,
        task="txt2img",
        author="bo",
        model="tiny-sd1",
        extra={"job": "j-1", "batch_index": 0},
    )
    with Image.open(gallery.file_path(saved.id)) as png:
        assert png.format == "PNG" and png.size == (24, 16)
        assert png.text[INFOTEXT_KEY] == infotext
        ours = json.loads(png.text[EASEL_CHUNK_KEY])
    assert ours == {
        "task": "txt2img",
        "author": "bo",
        "model": "tiny-sd1",
        "seed": 7,
        "created": saved.created,
        "job": "j-1",
        "batch_index": 0,
    }
    parsed = parse_infotext(png.text[INFOTEXT_KEY])
    assert (
        (saved.prompt, saved.negative_prompt)
        == (parsed.prompt, parsed.negative_prompt)
        == (prompt, "blurry, text")
    )
    assert saved.infotext == infotext


def test_save_rejects_bad_seed_and_clashing_extra_without_writing(gallery: Gallery, outputs: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        _save(gallery, seed=-1)
    with pytest.raises(ValueError, match="overwrite"):
        _save(gallery, extra={"seed": 3})
    with pytest.raises(TypeError):
        _save(gallery, extra={"unserialisable": object()})
    assert gallery.count() == 0
    assert [
        p for p in outputs.rglob("*") if p.is_file() and p.name != INDEX_FILE_NAME and "sqlite" not in p.name
    ] == []


def test_numbering_continues_after_existing_files(outputs: Path) -> None:
    day = outputs / "2026-11-25"
    _write_a1111_png(day / "00041-555.png")
    (day / "00057-notes.txt").write_text("A1111 counts every numbered name in the folder")
    (day / "12-odd-name.png").write_bytes(b"")  # numbers are not zero-padded everywhere
    with Gallery(outputs, now=_clock()) as gallery:
        assert _save(gallery, seed=5).relpath == "2026-11-25/00058-5.png"
        assert _save(gallery, seed=5).relpath == "2026-11-25/00059-5.png"


def test_concurrent_saves_never_collide_while_readers_read(outputs: Path) -> None:
    threads_count, per_thread = 4, 8
    errors: list[BaseException] = []
    saved: list[GalleryImage] = []
    stop = threading.Event()
    with Gallery(outputs, now=_clock(step=timedelta(0))) as gallery:  # same instant: same day, same order key

        def writer() -> None:
            try:
                for _ in range(per_thread):
                    saved.append(_save(gallery, seed=42))  # same seed: a reused number would overwrite
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        def reader() -> None:
            try:
                while not stop.is_set():
                    gallery.recent(10)
                    gallery.search("fox")
                    gallery.count()
            except BaseException as error:
                errors.append(error)

        readers = [threading.Thread(target=reader) for _ in range(2)]
        writers = [threading.Thread(target=writer) for _ in range(threads_count)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()

        assert errors == []
        total = threads_count * per_thread
        names = sorted(image.relpath for image in saved)
        assert names == [f"2026-11-25/{n:05d}-42.png" for n in range(total)]
        assert len({image.id for image in saved}) == total
        assert gallery.count() == total
        assert len(list((outputs / "2026-11-25").glob("*.png"))) == total


# --- listing --------------------------------------------------------------------------------------


def test_recent_is_newest_first_with_paging(gallery: Gallery) -> None:
    made = [_save(gallery, prompt=f"picture {i}", seed=i) for i in range(7)]
    newest_first = list(reversed(made))
    assert gallery.recent() == newest_first
    assert gallery.recent(limit=3) == newest_first[:3]
    assert gallery.recent(limit=3, offset=3) == newest_first[3:6]
    assert gallery.recent(limit=3, offset=6) == newest_first[6:]
    assert gallery.recent(limit=3, offset=7) == []
    for bad in ({"limit": -1}, {"offset": -1}, {"limit": MAX_PAGE + 1}, {"limit": "5"}):
        with pytest.raises(ValueError):
            gallery.recent(**bad)  # type: ignore[arg-type]


def test_get_accepts_only_integer_ids(gallery: Gallery) -> None:
    saved = _save(gallery)
    assert gallery.get(saved.id) == saved
    for bad in (str(saved.id), "../index", 1.0, True, None):
        with pytest.raises(TypeError):
            gallery.get(bad)  # type: ignore[arg-type]
    for missing in (0, -1, saved.id + 1, 2**80):
        with pytest.raises(ImageNotFound):
            gallery.get(missing)
        with pytest.raises(ImageNotFound):
            gallery.file_path(missing)


# --- index and files agree ------------------------------------------------------------------------


def test_rebuild_from_files_equals_live_index(gallery: Gallery, outputs: Path) -> None:
    _write_a1111_png(outputs / "2026-11-20" / "00000-555.png")
    gallery.sync()
    for i in range(4):
        _save(gallery, prompt=f"logo number {i}", seed=100 + i, author=f"user{i % 2}", extra={"i": i})
    gallery.save(
        _image(), infotext=_infotext("no model name", 3), seed=3, task="img2img", author="", model=""
    )
    live = _rows(gallery)
    assert len(live) == 6
    assert gallery.rebuild() == 6
    assert _rows(gallery) == live


def test_a1111_png_without_our_chunk_is_indexed_from_its_infotext(gallery: Gallery, outputs: Path) -> None:
    _write_a1111_png(outputs / "2026-11-20" / "00000-555.png")
    assert gallery.rebuild() == 1
    (image,) = gallery.recent()
    assert image.relpath == "2026-11-20/00000-555.png"
    assert (image.prompt, image.negative_prompt) == ("an old lighthouse at dusk, oil painting", "people")
    assert (image.seed, image.model, image.task, image.author) == (555, "v1-5-pruned-emaonly", "txt2img", "")
    assert (image.width, image.height) == (32, 24)
    assert image.infotext == A1111_TEXT


def test_deleted_index_is_rebuilt_on_open(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        for i in range(3):
            _save(gallery, prompt=f"shot {i}", seed=i)
        before = _rows(gallery)
    for name in os.listdir(outputs):
        if name.startswith(INDEX_FILE_NAME):
            (outputs / name).unlink()
    with Gallery(outputs) as reopened:
        assert _rows(reopened) == before
        assert [image.prompt for image in reopened.search("shot")] == ["shot 2", "shot 1", "shot 0"]


@pytest.mark.parametrize("damage", ["garbage", "torn_pages", "empty_file"])
def test_corrupt_index_is_detected_and_rebuilt(
    outputs: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        for i in range(12):
            _save(gallery, prompt=f"a long prompt about item {i} " + "with many words " * 40, seed=i)
        before = _rows(gallery)
    index = outputs / INDEX_FILE_NAME
    for name in os.listdir(outputs):  # fold the write-ahead log in first, so the damage hits real pages
        if name.startswith(INDEX_FILE_NAME + "-"):
            (outputs / name).unlink()
    if damage == "garbage":
        index.write_bytes(b"\x00not a database\xff" * 4096)
    elif damage == "torn_pages":
        data = bytearray(index.read_bytes())
        assert len(data) > 3 * 4096
        data[4096:] = (b"\xde\xad\xbe\xef" * len(data))[: len(data) - 4096]
        index.write_bytes(bytes(data))
    else:
        index.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="gallery"), Gallery(outputs) as reopened:
        assert _rows(reopened) == before
        assert len(reopened.search("item")) == 12
    if damage != "empty_file":  # an empty file is a valid empty database: it is only refilled
        assert "unusable" in caplog.text


def test_wal_checkpointed_index_keeps_ids_on_reopen(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        saved = [_save(gallery, seed=i) for i in range(3)]
    with Gallery(outputs) as reopened:
        assert [reopened.get(image.id) for image in saved] == saved  # not rebuilt: same ids


@pytest.mark.parametrize("version", [0, 99])
def test_index_of_unknown_schema_is_rebuilt(outputs: Path, version: int) -> None:
    _write_a1111_png(outputs / "2026-11-20" / "00000-555.png")
    outputs.mkdir(exist_ok=True)
    connection = sqlite3.connect(outputs / INDEX_FILE_NAME)
    connection.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT)")
    connection.execute(f"PRAGMA user_version = {version}")
    connection.commit()
    connection.close()
    with Gallery(outputs) as gallery:
        assert [image.seed for image in gallery.recent()] == [555]
        assert gallery.search("lighthouse")[0].relpath == "2026-11-20/00000-555.png"


def test_files_added_or_removed_by_another_process_show_after_reopen(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        kept, gone = _save(gallery, seed=1), _save(gallery, seed=2)
        _write_a1111_png(outputs / "2026-11-21" / "00000-555.png")  # copied in while we are open
        assert gallery.count() == 2
    (outputs / gone.relpath).unlink()
    with Gallery(outputs) as reopened:
        assert sorted(image.relpath for image in reopened.recent()) == [
            "2026-11-21/00000-555.png",
            kept.relpath,
        ]
        assert reopened.get(kept.id) == kept  # unchanged files keep their ids
        with pytest.raises(ImageNotFound):
            reopened.get(gone.id)
        # and while open, sync() or rebuild() picks up new files
        _write_a1111_png(outputs / "2026-11-22" / "00000-556.png")
        assert reopened.sync() == 1
        assert reopened.count() == 3
        assert reopened.rebuild() == 3


def test_only_day_folders_are_indexed(gallery: Gallery, outputs: Path) -> None:
    _write_a1111_png(outputs / "2026-11-20" / "00000-1.png")
    _write_a1111_png(outputs / ".trash" / "2026-11-20" / "00001-2.png")
    _write_a1111_png(outputs / ".trash" / "00002-3.png")
    _write_a1111_png(outputs / ".hidden" / "00003-4.png")
    _write_a1111_png(outputs / "2026-11-20" / ".00004-5.png")
    _write_a1111_png(outputs / "misc" / "00005-6.png")
    _write_a1111_png(outputs / "00006-7.png")
    (outputs / "2026-11-20" / "00007-8.png").write_bytes(b"not a png at all")
    assert gallery.rebuild() == 1
    assert [image.relpath for image in gallery.recent()] == ["2026-11-20/00000-1.png"]


def test_leftover_temp_file_from_a_crash_is_never_indexed(outputs: Path) -> None:
    day = outputs / "2026-11-25"
    _write_a1111_png(day / "00000-555.png")
    whole = (day / "00000-555.png").read_bytes()
    # What a crash between writing and renaming leaves: a dot-named temp file, maybe half written.
    leftover = day / ".00001-9.png.k2j4h1.tmp"
    leftover.write_bytes(whole[: len(whole) // 2])
    complete_leftover = day / ".00002-9.png.a8d7s6.tmp"
    complete_leftover.write_bytes(whole)
    with Gallery(outputs, now=_clock()) as gallery:
        assert [image.relpath for image in gallery.recent()] == ["2026-11-25/00000-555.png"]
        assert not leftover.exists() and not complete_leftover.exists()
        # One appearing while open is never picked up either, and numbering is not fooled by it.
        complete_leftover.write_bytes(whole)
        assert gallery.sync() == 0
        assert gallery.rebuild() == 1
        assert _save(gallery, seed=3).relpath == "2026-11-25/00001-3.png"
    assert sorted(p.name for p in day.iterdir()) == ["00000-555.png", "00001-3.png"]


# --- files handed out by id -----------------------------------------------------------------------


def test_file_path_refuses_a_symlink_pointing_outside(
    gallery: Gallery, outputs: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.png"
    _write_a1111_png(secret)
    saved = _save(gallery, seed=11)
    path = gallery.file_path(saved.id)
    assert path.is_absolute() and path.is_relative_to(outputs.resolve())

    path.unlink()
    path.symlink_to(secret)  # the indexed file swapped for a link to outside
    with pytest.raises(PermissionError):
        gallery.file_path(saved.id)

    path.unlink()
    path.symlink_to(outputs / INDEX_FILE_NAME)  # a link that stays inside is refused too
    with pytest.raises(PermissionError):
        gallery.file_path(saved.id)

    path.unlink()
    with pytest.raises(ImageNotFound):
        gallery.file_path(saved.id)


def test_symlinks_are_never_indexed(gallery: Gallery, outputs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "2026-11-01"
    _write_a1111_png(outside / "00000-1.png")
    (outputs / "2026-11-25").mkdir(parents=True)
    (outputs / "2026-11-25" / "00000-1.png").symlink_to(outside / "00000-1.png")
    (outputs / "2026-11-01").symlink_to(outside, target_is_directory=True)
    assert gallery.rebuild() == 0
    assert gallery.sync() == 0


# --- search ---------------------------------------------------------------------------------------


def test_search_finds_prompt_words(gallery: Gallery) -> None:
    fox = _save(gallery, prompt="a red fox logo, flat vector", seed=1)
    whale = _save(gallery, prompt="blue whale (watercolor:1.2)", seed=2)
    hound = gallery.save(
        _image(),
        infotext=_infotext("the fox and the hound", 3, negative="whale"),
        seed=3,
        task="txt2img",
        author="ann",
        model="m",
    )
    cafe = _save(gallery, prompt="caf\u00e9 sign\nneon", seed=4)

    assert gallery.search("fox") == [hound, fox]
    assert gallery.search("red fox") == [fox]
    assert gallery.search("FOX LOGO") == [fox]
    assert gallery.search("whal") == [whale]  # word prefix; the negative prompt is not searched
    assert gallery.search("watercolor") == [whale]
    assert gallery.search("cafe neon") == [cafe]
    assert gallery.search("fox", limit=1) == [hound]
    assert gallery.search("zebra") == []
    assert gallery.search("   ") == gallery.recent()


FOX, GATE, HOUND = "a red fox logo", "the AND gate", "fox and hound (sketch)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"', []),
        ("*", []),
        ("(", []),
        (")", []),
        (") OR (", []),  # "OR" is a word like any other: no prompt has it
        ("AND", [GATE, HOUND]),  # not an operator: the word "and"
        ("fox AND", [HOUND]),
        ('"fox', [FOX, HOUND]),
        ("fox*", [FOX, HOUND]),
        ("^fox", [FOX, HOUND]),
        ("-fox", [FOX, HOUND]),  # not a negation
        ("NEAR(fox sketch)", []),  # literal text "near fox", not a NEAR query
        ("prompt:fox", []),  # literal text "prompt fox", not a column filter
        ('gate"', [GATE]),
        ("hound (sketch", [HOUND]),
    ],
)
def test_search_survives_fts_syntax(gallery: Gallery, text: str, expected: list[str]) -> None:
    for seed, prompt in enumerate((FOX, GATE, HOUND)):
        _save(gallery, prompt=prompt, seed=seed)
    assert sorted(image.prompt for image in gallery.search(text)) == sorted(expected)


def test_recent_and_search_filter_by_author(tmp_path):
    gallery = Gallery(tmp_path)
    for author, prompt in (("alice", "red fox"), ("bob", "red fox"), ("alice", "blue owl")):
        gallery.save(
            Image.new("RGB", (8, 8)), infotext=prompt, seed=1, task="txt2img", author=author, model="m"
        )
    assert [i.author for i in gallery.recent(author="alice")] == ["alice", "alice"]
    assert [i.author for i in gallery.search("red", author="bob")] == ["bob"]
    assert len(gallery.search("red")) == 2 and len(gallery.recent()) == 3
    gallery.close()


# --- the Gallery tab's query ----------------------------------------------------------------------

MODELS = ("tiny-sd1", "tiny-sdxl", "v1-5-pruned")
TASKS = ("txt2img", "img2img", "inpaint", "retouch")
AUTHORS = ("ann", "bo", "cy")
SUBJECTS = ("red fox", "blue whale", "snowy owl", "fox terrier", "paper crane")
SEEDED_START = datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC)
SEEDED_STEP = timedelta(hours=7)  # 30 images over 9 UTC days


@pytest.fixture
def seeded(outputs: Path) -> Iterator[tuple[Gallery, list[GalleryImage]]]:
    """30 saved images with varied model/task/author/day/prompt, every third one a favourite."""
    with Gallery(outputs, now=_clock(start=SEEDED_START, step=SEEDED_STEP)) as gallery:
        made = []
        for i in range(30):
            made.append(
                _save(
                    gallery,
                    prompt=f"{SUBJECTS[i % 5]} logo variant{i}",
                    seed=i,
                    model=MODELS[i % 3],
                    task=TASKS[i % 4],
                    author=AUTHORS[(i // 2) % 3],
                )
            )
        gallery.set_favourite([image.id for image in made[::3]], True)
        yield gallery, [gallery.get(image.id) for image in made]


def _expected(images: list[GalleryImage], q: GalleryQuery) -> list[int]:
    """The ids `q` should list, worked out in Python from the saved images (the oracle)."""

    def matches(image: GalleryImage) -> bool:
        words = image.prompt.lower().split()
        day = datetime.fromisoformat(image.created).astimezone(UTC).date()
        return (
            all(any(w.startswith(term.lower()) for w in words) for term in q.text.split())
            and q.model in (None, image.model)
            and q.task in (None, image.task)
            and q.author in (None, image.author)
            and (image.favourite or not q.favourites_only)
            and (q.date_from is None or day >= q.date_from)
            and (q.date_to is None or day <= q.date_to)
        )

    ordered = sorted(
        (i for i in images if matches(i)), key=lambda i: (i.created, i.id), reverse=q.newest_first
    )
    return [image.id for image in ordered]


def test_seeded_set_is_what_the_filters_are_tested_against(seeded) -> None:
    _, images = seeded
    assert len(images) == 30
    assert {i.model for i in images} == set(MODELS) and {i.task for i in images} == set(TASKS)
    assert {i.author for i in images} == set(AUTHORS)
    assert sum(i.favourite for i in images) == 10
    days = sorted({i.relpath.split("/")[0] for i in images})
    assert (days[0], days[-1], len(days)) == ("2026-11-20", "2026-11-28", 9)


def test_query_every_filter_and_combination_matches_the_oracle(seeded) -> None:
    gallery, images = seeded
    choices = {
        "text": ["", "fox", "fox logo", "variant1", "zebra"],
        "model": [None, *MODELS, "no-such-model"],
        "task": [None, "txt2img", "inpaint", "retouch"],
        "author": [None, "ann", "cy"],
        "favourites_only": [False, True],
        "dates": [
            (None, None),
            (date(2026, 11, 22), None),
            (None, date(2026, 11, 21)),
            (date(2026, 11, 23),) * 2,
        ],
    }
    checked = non_empty = 0
    for text, model, task, author, favourites_only, (date_from, date_to) in itertools.product(
        *choices.values()
    ):
        q = GalleryQuery(
            text=text,
            model=model,
            task=task,
            author=author,
            favourites_only=favourites_only,
            date_from=date_from,
            date_to=date_to,
            newest_first=checked % 2 == 0,
            limit=MAX_PAGE,
        )
        expected = _expected(images, q)
        page = gallery.query(q)
        assert [i.id for i in page.items] == expected, q
        assert page.total == len(expected), q
        checked += 1
        non_empty += bool(expected)
    assert non_empty > checked // 5  # the combinations really select something


def test_query_filters_by_hand(seeded) -> None:
    gallery, images = seeded

    def ids(**fields: object) -> list[int]:
        return [i.id for i in gallery.query(GalleryQuery(newest_first=False, **fields)).items]  # type: ignore[arg-type]

    by_index = [image.id for image in images]
    assert ids(model="tiny-sdxl", task="img2img") == [
        by_index[i] for i in (1, 13, 25)
    ]  # i % 3 == 1, i % 4 == 1
    assert ids(favourites_only=True, task="txt2img") == [by_index[i] for i in (0, 12, 24)]
    assert ids(text="fox", author="bo") == [by_index[i] for i in (3, 8, 15, 20)]
    # 2026-11-21 (UTC) holds images 3, 4, 5 (09:00 + 7 h steps: 06:00, 13:00, 20:00)
    assert ids(date_from=date(2026, 11, 21), date_to=date(2026, 11, 21)) == by_index[3:6]
    assert ids(date_to=date(2026, 11, 20)) == by_index[0:3]
    assert ids(date_from=date(2026, 11, 28)) == by_index[27:30]
    assert ids(author="") == ids(model="") == ids(text="zebra") == []


def test_query_days_are_utc_days(outputs: Path) -> None:
    late = datetime(2026, 11, 26, 2, 0, tzinfo=timezone(timedelta(hours=5)))  # 2026-11-25 21:00 UTC
    with Gallery(outputs, now=lambda: late) as gallery:
        saved = _save(gallery)
        assert saved.relpath.startswith("2026-11-26/")  # the folder is the local day
        on = GalleryQuery(date_from=date(2026, 11, 25), date_to=date(2026, 11, 25))
        assert [i.id for i in gallery.query(on).items] == [saved.id]
        assert gallery.query(GalleryQuery(date_from=date(2026, 11, 26))).total == 0
        assert gallery.query(GalleryQuery(date_to=date.max, date_from=date.min)).total == 1


def test_query_pages_and_totals_both_ways(seeded) -> None:
    gallery, images = seeded
    newest = [i.id for i in reversed(images)]
    for newest_first, order in ((True, newest), (False, newest[::-1])):
        pages = [
            gallery.query(GalleryQuery(newest_first=newest_first, limit=7, offset=o)) for o in range(0, 35, 7)
        ]
        assert [p.total for p in pages] == [30] * 5
        assert [len(p.items) for p in pages] == [7, 7, 7, 7, 2]
        assert [i.id for p in pages for i in p.items] == order
    assert gallery.query(GalleryQuery(offset=30)) == GalleryPage(items=[], total=30)
    assert gallery.query(GalleryQuery(offset=1000, model="tiny-sd1")).total == 10
    favourite_page = gallery.query(GalleryQuery(favourites_only=True, limit=4, offset=4))
    assert (len(favourite_page.items), favourite_page.total) == (4, 10)
    assert all(i.favourite for i in favourite_page.items)
    assert gallery.query(GalleryQuery()).items == gallery.recent(limit=48)  # the default: newest 48


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"limit": 0}, ValueError),
        ({"limit": MAX_PAGE + 1}, ValueError),
        ({"limit": -1}, ValueError),
        ({"limit": True}, ValueError),
        ({"limit": "5"}, ValueError),
        ({"offset": -1}, ValueError),
        ({"text": None}, TypeError),
        ({"model": 3}, TypeError),
        ({"favourites_only": "yes"}, TypeError),
        ({"date_from": datetime(2026, 11, 20, tzinfo=UTC)}, TypeError),  # a datetime, not a day
        ({"date_to": "2026-11-20"}, TypeError),
        ({"date_from": date(2026, 11, 21), "date_to": date(2026, 11, 20)}, ValueError),
    ],
)
def test_query_rejects_bad_values(fields: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        GalleryQuery(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), test_search_survives_fts_syntax.pytestmark[0].args[1])
def test_query_text_survives_fts_syntax(gallery: Gallery, text: str, expected: list[str]) -> None:
    for seed, prompt in enumerate((FOX, GATE, HOUND)):
        _save(gallery, prompt=prompt, seed=seed, model="m1" if seed else "m0")
    page = gallery.query(GalleryQuery(text=text))
    assert sorted(image.prompt for image in page.items) == sorted(expected)
    assert page.total == len(expected)
    filtered = gallery.query(GalleryQuery(text=text, model="m1"))
    assert sorted(image.prompt for image in filtered.items) == sorted(p for p in expected if p != FOX)


def test_facets_list_distinct_values_for_the_dropdowns(seeded, outputs: Path) -> None:
    gallery, _ = seeded
    _write_a1111_png(outputs / "2026-11-20" / "00099-555.png")  # no author
    gallery.sync()
    assert gallery.facets() == {
        "model": sorted([*MODELS, "v1-5-pruned-emaonly"]),
        "task": sorted(TASKS),
        "author": list(AUTHORS),
    }


def test_query_plans_use_the_indexes(seeded, outputs: Path) -> None:
    gallery, _ = seeded
    connection = sqlite3.connect(outputs / INDEX_FILE_NAME)
    try:
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(images)")}
        assert {
            "images_newest",
            "images_model",
            "images_task",
            "images_author",
            "images_favourite",
        } <= indexes
        for where in ("model = 'm'", "task = 't'", "author = 'a'", "favourite = 1"):
            plan = " ".join(
                str(row[-1])
                for row in connection.execute(
                    f"EXPLAIN QUERY PLAN SELECT id FROM images WHERE {where} ORDER BY created DESC, id DESC LIMIT 48"
                )
            )
            assert "INDEX images_" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        connection.close()


# --- schema migrations ----------------------------------------------------------------------------

# The index schema of version 1, as the previous release wrote it (kept verbatim: it is what users have).
SCHEMA_V1 = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO images_fts (rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER images_fts_update AFTER UPDATE ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO images_fts (rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
END;
PRAGMA user_version = 1;
"""


def test_index_at_schema_v1_is_migrated_in_place(outputs: Path) -> None:
    with Gallery(outputs, now=_clock()) as gallery:
        saved = [_save(gallery, prompt=f"migrated shot {i}", seed=i, model=f"m{i % 2}") for i in range(5)]
    for name in os.listdir(outputs):
        if name.startswith(INDEX_FILE_NAME):
            (outputs / name).unlink()
    # A v1 index holding these files under ids a rebuild would not give them (so a rebuild would show).
    connection = sqlite3.connect(outputs / INDEX_FILE_NAME)
    connection.executescript(SCHEMA_V1)
    for image in saved:
        stat = (outputs / image.relpath).stat()
        connection.execute(
            "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (image.id + 100, *list(asdict(image).values())[1:12], stat.st_size, stat.st_mtime_ns),
        )
    connection.commit()
    connection.close()
    (outputs / ".easel-favourites.json").write_text(json.dumps([saved[1].relpath]))

    with Gallery(outputs) as migrated:
        assert migrated.count() == 5
        assert [i.id for i in migrated.recent()] == [image.id + 100 for image in reversed(saved)]  # kept
        assert migrated.get(saved[1].id + 100).favourite  # the favourites file is read on open
        assert [i.id for i in migrated.query(GalleryQuery(text="shot", model="m0")).items] == [105, 103, 101]
        assert migrated.query(GalleryQuery(favourites_only=True)).total == 1
    connection = sqlite3.connect(outputs / INDEX_FILE_NAME)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        columns = {row[1] for row in connection.execute("PRAGMA table_info(images)")}
        assert {"favourite", "title", "user_prompt", "ops", "job", "exports"} <= columns
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(images)")}
        assert {"images_model", "images_task", "images_author", "images_favourite"} <= indexes
    finally:
        connection.close()
