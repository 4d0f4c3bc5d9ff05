"""A retouch chain step by step, through a real Studio: every step's picture kept (keep_steps), a failing step
stopping the chain with the pictures and files of the steps before it kept, and download names."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image

from core.images import encode_png
from core.infotext import EASEL_CHUNK_KEY
from core.recipes import recipe_from_png
from core.retouch import RetouchRequest, failed_step
from studio import JobState
from tests.helpers import flat_product


def _run(studio, image, ops, **fields):
    job = studio.jobs.submit(RetouchRequest(image=encode_png(image), ops=ops, **fields))
    assert job.wait(120)
    return job


def _recipe_ops(studio, image):
    recipe = recipe_from_png(studio.gallery.file_path(image.id).read_bytes())
    assert recipe is not None
    return [op.op for op in recipe.ops]


def test_every_step_picture_is_kept_in_order_each_with_the_steps_that_made_it(studio):
    before = studio.gallery.count()
    ops = [
        {"op": "remove_background", "method": "key"},
        {"op": "upscale", "scale": 2},
        {"op": "vectorize"},
        {"op": "logo_pack", "sizes": [16, 48]},
    ]
    job = _run(studio, flat_product(), ops, keep_steps=True, title="Mug shot")
    assert job.state is JobState.DONE, job.error
    # two steps change the picture: two gallery pictures, the cut-out and then its double-size copy
    assert studio.gallery.count() == before + 2
    cut, bigger = job.images
    assert (cut.width, cut.height, bigger.width, bigger.height) == (96, 64, 192, 128)
    assert _recipe_ops(studio, cut) == ["remove_background"]
    assert _recipe_ops(studio, bigger) == [op["op"] for op in ops]  # the last one carries the whole chain
    with Image.open(studio.gallery.file_path(cut.id)) as picture:
        chunk = json.loads(picture.info[EASEL_CHUNK_KEY])
        assert picture.mode == "RGBA" and picture.getchannel("A").getpixel((0, 0)) == 0
    assert chunk["retouch"]["step"] == 1 and chunk["retouch"]["steps"] == 4
    assert "Retouch: remove_background" in cut.infotext and "upscale" not in cut.infotext
    # the downloads are named after the title and the picture
    stem = job.request.file_stem()
    assert stem.startswith("mug-shot-")
    assert sorted(p.name for p in job.exports) == [f"{stem}-logo-pack.zip", f"{stem}-vector.svg"]


def test_a_failing_step_stops_the_chain_keeping_the_pictures_and_files_before_it(studio):
    before = studio.gallery.count()
    empty = Image.new("RGBA", (48, 32), (0, 0, 0, 0))  # nothing to make a logo of
    ops = [
        {"op": "upscale", "scale": 2},
        {"op": "vectorize"},
        {"op": "enhance", "contrast": 0.5},
        {"op": "logo_pack", "sizes": [32]},
        {"op": "upscale", "scale": 2},
    ]
    job = _run(studio, empty, ops, keep_steps=True)
    assert job.state is JobState.FAILED
    assert failed_step(job.error) == 4 and "transparent" in job.error
    assert job.error.startswith("Step 4 (logo_pack 32")
    # steps 1 and 3 made pictures: both saved; the step after the failure never ran
    assert studio.gallery.count() == before + 2
    first, third = job.images
    assert (first.width, first.height) == (third.width, third.height) == (96, 64)
    assert _recipe_ops(studio, first) == ["upscale"]
    assert _recipe_ops(studio, third) == ["upscale", "vectorize", "enhance"]
    # the SVG of step 2 is kept too
    assert [p.name.endswith("-vector.svg") for p in job.exports] == [True]
    assert job.exports[0].is_file()


def test_without_keep_steps_only_the_last_picture_is_saved_and_a_failure_keeps_the_one_before(studio):
    before = studio.gallery.count()
    job = _run(studio, flat_product(), [{"op": "upscale", "scale": 2}, {"op": "enhance", "sharpen": 0.5}])
    assert job.state is JobState.DONE and len(job.images) == 1
    assert studio.gallery.count() == before + 1
    assert _recipe_ops(studio, job.images[0]) == ["upscale", "enhance"]

    empty = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    job = _run(
        studio, empty, [{"op": "upscale", "scale": 2}, {"op": "enhance", "levels": 1}, {"op": "logo_pack"}]
    )
    assert job.state is JobState.FAILED and failed_step(job.error) == 3
    assert len(job.images) == 1 and _recipe_ops(studio, job.images[0]) == ["upscale", "enhance"]


def test_a_failing_first_step_keeps_nothing(studio):
    before = studio.gallery.count()
    job = _run(studio, Image.new("RGBA", (40, 40), (0, 0, 0, 0)), [{"op": "logo_pack"}], keep_steps=True)
    assert job.state is JobState.FAILED and failed_step(job.error) == 1
    assert job.images == [] and job.exports == [] and studio.gallery.count() == before


def test_logo_pack_in_a_chain_has_its_padding_and_favicon_sizes(studio):
    logo = Image.new("RGB", (60, 30), (20, 40, 200))
    job = _run(studio, logo, [{"op": "logo_pack", "sizes": [16, 32, 48], "padding": 25}])
    assert job.state is JobState.DONE, job.error
    (pack,) = job.exports
    with zipfile.ZipFile(pack) as archive:
        assert archive.namelist() == ["logo-16.png", "logo-32.png", "logo-48.png"]
        with Image.open(io.BytesIO(archive.read("logo-48.png"))) as png:
            alpha = np.asarray(png.getchannel("A"))
    assert png.size == (48, 48)
    assert alpha[:, :12].max() == 0 and alpha[:, 36:].max() == 0 and alpha[24, 12:36].min() == 255
