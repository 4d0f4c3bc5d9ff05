"""Deletes that delete: once a picture is deleted for good, nothing under outputs/ still holds its prompt (the
index, its write-ahead log, thumbnails), and the file route never hands out the gallery's hidden files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from gallery import Gallery, ImageNotFound
from gallery.thumbs import THUMB_SIZES
from tests.browser.sessions import FILTERS, PageSession
from tests.helpers import served_app

SECRET_WORD = "zqxjkoalavermilion"
SECRET_PROMPT = f"confidential launch brief, {SECRET_WORD} mascot holding the 2027 product"


def _save(gallery: Gallery, seed: int, prompt: str, author: str = "ann"):
    return gallery.save(
        Image.new("RGB", (16, 16), (seed * 40 % 256, 90, 160)),
        infotext=f"{prompt}\nNegative prompt: blurry\nSteps: 2, Seed: {seed}, Size: 16x16, Model: tiny-sd1",
        seed=seed,
        task="txt2img",
        author=author,
        model="tiny-sd1",
    )


def _holders(outputs: Path, needle: bytes) -> list[str]:
    """Every file under `outputs` (hidden ones included) whose bytes contain `needle`."""
    return sorted(
        str(path.relative_to(outputs))
        for path in outputs.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    )


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def gallery(outputs: Path):
    with Gallery(outputs, now=lambda: datetime(2026, 11, 25, 10, tzinfo=UTC)) as opened:
        yield opened


def test_a_picture_deleted_for_good_leaves_its_prompt_nowhere_under_outputs(gallery: Gallery, outputs: Path):
    others = [_save(gallery, seed, f"ordinary product shot number {seed}") for seed in range(1, 25)]
    secret = _save(gallery, 99, SECRET_PROMPT)
    gallery.thumbnail(secret.id, 256)
    assert gallery.search(SECRET_WORD) == [secret]
    gallery.delete([secret.id])
    assert (
        _holders(outputs, SECRET_WORD.encode()) != []
    )  # still in the trash (and the index files): undo works

    assert gallery.empty_trash() == 1
    for needle in (SECRET_PROMPT.encode(), SECRET_WORD.encode(), b"confidential launch brief"):
        assert _holders(outputs, needle) == [], needle
    wal = outputs / ".easel-index.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # the log was checkpointed and truncated
    # the rest of the gallery is untouched and still searchable
    assert [i.id for i in gallery.search("ordinary product")] == [i.id for i in reversed(others)]
    assert gallery.search(SECRET_WORD) == []


def test_emptying_one_authors_trash_purges_only_their_prompts(gallery: Gallery, outputs: Path):
    mine = _save(gallery, 1, SECRET_PROMPT, author="bob")
    theirs = _save(gallery, 2, "alice keeps this prompt in her trash", author="alice")
    gallery.delete([mine.id, theirs.id])
    assert gallery.empty_trash("bob") == 1
    assert _holders(outputs, SECRET_WORD.encode()) == []
    assert gallery.trash_count() == 1 and gallery.trash_count("alice") == 1
    assert (outputs / ".trash" / theirs.relpath).is_file()


def test_thumbnails_go_with_their_picture(gallery: Gallery, outputs: Path):
    a, b, c = (_save(gallery, seed, f"thumb test {seed}") for seed in (1, 2, 3))
    made = {image.id: [gallery.thumbnail(image.id, size) for size in THUMB_SIZES] for image in (a, b, c)}
    assert all(path.is_file() for paths in made.values() for path in paths)

    gallery.delete([a.id])  # to the trash: its thumbnails go at once, and none is made for it again
    assert not any(path.exists() for path in made[a.id])
    with pytest.raises(ImageNotFound):
        gallery.thumbnail(a.id, 256)

    (outputs / b.relpath).unlink()  # removed by hand: the next sync drops its row and its thumbnails
    assert gallery.sync() == 1
    assert not any(path.exists() for path in made[b.id])
    assert all(path.is_file() for path in made[c.id])
    gallery.empty_trash()
    assert sorted(p.name for p in (outputs / ".thumbs").rglob("*.webp")) == sorted(p.name for p in made[c.id])


# --- the file route ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory):
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs")) as app:
        yield app


def test_the_file_route_never_serves_the_index_the_trash_or_any_dotfile(served):
    app, url = served
    gallery = app.studio.gallery
    outputs = gallery.outputs_dir
    kept = _save(gallery, 5, "a picture anyone may download")
    trashed = _save(gallery, 6, SECRET_PROMPT)
    gallery.set_favourite([kept.id], True)
    thumb = gallery.thumbnail(kept.id, 128)
    (key,) = gallery.delete([trashed.id])
    day = kept.relpath.split("/")[0]
    (outputs / day / ".hidden.png").write_bytes((outputs / kept.relpath).read_bytes())
    (outputs / ".notes.txt").write_text("private notes")
    for name in (".easel-index.sqlite3", ".easel-index.sqlite3-wal", ".easel-index.sqlite3-shm"):
        assert (outputs / name).is_file(), name  # they exist, so a refusal below is a refusal

    hidden = [
        ".easel-index.sqlite3",
        ".easel-index.sqlite3-wal",
        ".easel-index.sqlite3-shm",
        ".easel-favourites.json",
        f".trash/{key}",
        str(thumb.relative_to(outputs)),
        f"{day}/.hidden.png",
        ".notes.txt",
        f"{day}/../.easel-index.sqlite3",
        f"{day}/%2e%2e/.easel-index.sqlite3-wal",
        "%2eeasel-index.sqlite3",
        f"%2etrash/{key}",
    ]
    with httpx.Client(base_url=url, timeout=20) as http:
        for relpath in hidden:
            for route in ("/gradio_api/file=", "/gradio_api/file/"):
                for method in ("GET", "HEAD"):
                    response = http.request(method, f"{route}{outputs}/{relpath}")
                    assert response.status_code in (403, 404), (method, route, relpath, response.status_code)
                    assert SECRET_WORD.encode() not in response.content
                    assert (
                        b"SQLite format" not in response.content and b"private notes" not in response.content
                    )
        # the pictures themselves are still served
        picture = http.get(f"/gradio_api/file={outputs}/{kept.relpath}")
        assert picture.status_code == 200 and picture.content == (outputs / kept.relpath).read_bytes()


def _file_url(value: dict) -> str:
    """The served path of a file value the page was handed (`/gradio_api/file=…`)."""
    return "/gradio_api/file=" + value["url"].split("/gradio_api/file=", 1)[1]


def test_the_copies_the_page_was_served_go_with_a_deleted_picture(served):
    app, url = served
    picture = _save(app.studio.gallery, 11, SECRET_PROMPT)
    page = PageSession(url)
    listed = page.call(page.first("gallery_search", "submit"), [SECRET_WORD, *FILTERS[1:]])
    assert listed["success"], listed
    (tile,) = listed["output"]["data"][0]  # the grid: one thumbnail, served from Gradio's copy of it
    picked = page.call(page.first("gallery_grid", "select"), [None], event_data={"index": 0, "value": None})
    assert picked["success"], picked
    detail = picked["output"]["data"][2]  # the picked picture, a copy of the PNG (prompt and all)
    served_copies = [_file_url(tile["image"]), _file_url(detail)]
    with httpx.Client(base_url=url, timeout=20) as http:
        assert [http.get(u).status_code for u in served_copies] == [200, 200]
        assert SECRET_WORD.encode() in http.get(served_copies[1]).content

        delete = page.first("gallery_delete", "click")
        assert page.call(delete, [None])["success"]  # the check: the local user may
        assert page.call(page.then(delete), [None, None, *FILTERS])["success"]
        assert picture.relpath not in {i.relpath for i in app.studio.gallery.recent()}
        for copy in served_copies:
            response = http.get(copy)
            assert response.status_code in (403, 404), copy
            assert SECRET_WORD.encode() not in response.content
