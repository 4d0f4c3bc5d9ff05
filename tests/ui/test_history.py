"""The session history's bookkeeping, and the inpaint upload's check of the file, without a browser."""

import gradio as gr
import pytest
from PIL import Image

from ui import history
from ui.inpaint import uploaded_picture

INFO = "a mug\nSteps: 2, Sampler: Euler, Seed: {seed}, Size: 64x64"


def _run(*seeds: int) -> list[list[str]]:
    return history.entries(
        [f"/out/{s}.png" for s in seeds], [f"seed {s}" for s in seeds], [INFO.format(seed=s) for s in seeds]
    )


def test_a_run_goes_in_front_in_its_own_order_and_the_oldest_leave_past_the_limit():
    items, shown = history.added(_run(1, 2), _run(3))
    assert [caption for _, caption in shown] == ["seed 3", "seed 1", "seed 2"]
    assert items[0] == ["/out/3.png", "seed 3", INFO.format(seed=3)]
    many, _ = history.added(_run(*range(history.LIMIT)), _run(-5))
    assert (
        len(many) == history.LIMIT and many[0][1] == "seed -5" and many[-1][1] == f"seed {history.LIMIT - 2}"
    )


def test_picking_gives_the_pictures_info_path_and_seed():
    items, _ = history.added([], _run(7, 8))
    assert history.picked(items, 1) == (INFO.format(seed=8), "/out/8.png", 8)
    for outside in (2, -1, None):
        skipped = history.picked(items, outside)
        assert all(isinstance(part, type(gr.skip())) for part in skipped)
    assert history.seed_of("a grid, no parameters") is None


def test_the_inpaint_upload_takes_pictures_and_refuses_other_files(tmp_path):
    picture = tmp_path / "mug.png"
    Image.new("RGB", (200, 120), "white").save(picture)
    path, width, height = uploaded_picture(str(picture))
    assert path == str(picture) and (width, height) == (200, 120)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(gr.Error, match="PNG, JPEG or WebP"):
        uploaded_picture(str(text))
