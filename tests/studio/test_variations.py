"""Variations: N candidates around a result — its seed, fresh variation seeds, the chosen strength — run as
one group of single-image jobs and saved to the gallery."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from core.infotext import parse_infotext
from core.requests import Txt2ImgRequest
from studio import JobState

FAST = {"steps": 2, "width": 64, "height": 64}


def _pixels(studio, image):
    with Image.open(studio.gallery.file_path(image.id)) as picture:
        return np.asarray(picture.convert("RGB"))


def _finished(group, timeout=120):
    assert group.wait(timeout), "the group did not finish"
    assert group.state is JobState.DONE, group.error
    return group


def test_variations_of_a_gallery_image_share_its_seed_and_differ_by_variation_seed(make_studio):
    studio = make_studio()
    source = studio.jobs.submit(Txt2ImgRequest(prompt="a fox logo", seed=4242, **FAST), "alice")
    assert source.wait(60) and source.state is JobState.DONE
    original = source.images[0]
    group = _finished(studio.groups.variations(original.id, 4, 0.15, "alice"))
    assert len(group.jobs) == 4 and all(job.request.image_count == 1 for job in group.jobs)
    assert len(group.images) == 4 and group.step == group.total == 4 * FAST["steps"]
    subseeds = [job.request.subseed for job in group.jobs]
    assert len(set(subseeds)) == 4 and 4242 not in subseeds
    for job, image in zip(group.jobs, group.images, strict=True):
        assert job.request.seed == 4242 and job.request.subseed_strength == 0.15
        assert job.request.prompt == "a fox logo" and job.request.steps == FAST["steps"]
        params = parse_infotext(image.infotext).params
        assert params["Seed"] == "4242"
        assert params["Variation seed"] == str(job.request.subseed)
        assert params["Variation seed strength"] == "0.15"
        assert studio.gallery.get(image.id).author == "alice"
    # four different pictures, none of them the original
    pictures = [_pixels(studio, image) for image in group.images]
    base = _pixels(studio, original)
    for i, picture in enumerate(pictures):
        assert not np.array_equal(picture, base)
        assert all(not np.array_equal(picture, other) for other in pictures[i + 1 :])
    assert studio.gallery.count() == 5


def test_each_variation_equals_its_own_request_run_alone(make_studio):
    studio = make_studio()
    group = _finished(
        studio.groups.variations(Txt2ImgRequest(prompt="badge", seed=9, **FAST), 2, 0.5, "local")
    )
    for job, image in zip(group.jobs, group.images, strict=True):
        alone = studio.jobs.submit(job.request, "local")
        assert alone.wait(60) and alone.state is JobState.DONE
        assert np.array_equal(_pixels(studio, alone.images[0]), _pixels(studio, image))


def test_a_random_seed_is_fixed_once_for_all_variations(make_studio):
    studio = make_studio()
    group = _finished(studio.groups.variations(Txt2ImgRequest(prompt="x", **FAST), 3, 0.3, "local"))
    assert len({image.seed for image in group.images}) == 1


def test_bad_counts_and_strengths_are_clear_errors(make_studio):
    studio = make_studio()
    for count, strength, message in (
        (0, 0.15, "count must be 1..16"),
        (17, 0.15, "count must be 1..16"),
        (4, 0, "strength must be above 0 and at most 1"),
        (4, 1.5, "strength must be above 0 and at most 1"),
    ):
        with pytest.raises(ValueError, match=message):
            studio.groups.variations(Txt2ImgRequest(prompt="x", **FAST), count, strength, "local")
    assert studio.gallery.count() == 0


def _source_png(size=(64, 64)) -> bytes:
    from core.images import encode_png

    rng = np.random.default_rng(1)
    return encode_png(Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB"))


def _mask_png(size=(64, 64)) -> bytes:
    from core.images import encode_png

    mask = Image.new("L", size, 0)
    mask.paste(255, (16, 16, 48, 48))
    return encode_png(mask)


@pytest.mark.parametrize("task", ["img2img", "inpaint"])
def test_variations_of_an_img2img_or_inpaint_request(make_studio, task):
    from core.requests import Img2ImgRequest, InpaintRequest

    studio = make_studio()
    if task == "img2img":
        base = Img2ImgRequest(init_image=_source_png(), prompt="x", seed=7, sampler="Euler", **FAST)
    else:
        base = InpaintRequest(
            init_image=_source_png(),
            mask=_mask_png(),
            mask_blur=0,
            prompt="x",
            seed=7,
            sampler="Euler",
            **FAST,
        )
    original = studio.jobs.submit(base, "local")
    assert original.wait(60) and original.state is JobState.DONE, original.error
    group = _finished(studio.groups.variations(base, 2, 0.3, "local"))
    assert len(group.images) == 2
    plain = _pixels(studio, original.images[0])
    pictures = [_pixels(studio, image) for image in group.images]
    assert not np.array_equal(pictures[0], pictures[1])
    for job, image, picture in zip(group.jobs, group.images, pictures, strict=True):
        assert job.request.task == task and job.request.init_image == base.init_image
        assert (job.request.seed, job.request.subseed_strength) == (7, 0.3)
        params = parse_infotext(image.infotext).params
        assert params["Variation seed"] == str(job.request.subseed)
        assert not np.array_equal(picture, plain)
        if task == "inpaint":  # outside the mask, the source exactly
            outside = np.asarray(Image.open(io.BytesIO(_mask_png()))) == 0
            source = np.asarray(Image.open(io.BytesIO(_source_png())))
            assert np.array_equal(picture[outside], source[outside])


def test_variations_of_an_img2img_result_from_its_file_with_the_tab_source(make_studio):
    from core.infotext import EASEL_CHUNK_KEY
    from core.pnginfo import read_text_chunks
    from core.requests import Img2ImgRequest
    from studio.groups import request_from_metadata

    studio = make_studio()
    png = _source_png()
    job = studio.jobs.submit(Img2ImgRequest(init_image=png, prompt="x", seed=1, **FAST), "local")
    assert job.wait(60) and job.state is JobState.DONE
    image_id = job.images[0].id
    # the gallery does not keep the source: by id, a clear message saying where to make them
    with pytest.raises(ValueError, match="does not keep its source picture; in the img2img tab"):
        studio.groups.variations(image_id, 2, 0.2, "local")
    # from the result file plus the tab's source picture: the request that made it, back exactly
    infotext, items = read_text_chunks(studio.gallery.file_path(image_id).read_bytes())
    request = request_from_metadata(
        json.loads(items[EASEL_CHUNK_KEY]), infotext, "this picture", {"init_image": png}
    )
    assert isinstance(request, Img2ImgRequest) and request.seed == 1 and request.init_image == png
    again = studio.jobs.submit(request, "local")
    assert again.wait(60) and again.state is JobState.DONE
    assert np.array_equal(_pixels(studio, again.images[0]), _pixels(studio, job.images[0]))
    group = _finished(studio.groups.variations(request, 2, 0.2, "local"))
    assert {job.request.seed for job in group.jobs} == {1}
    # the img2img tab's Variations button reads the picked file the same way, with the tab's source picture
    from ui.variations import _request_of_file

    assert _request_of_file(str(studio.gallery.file_path(image_id)), {"init_image": png}) == request


def test_cancelling_variations_stops_the_rest(make_gated_studio):
    studio, backend = make_gated_studio()
    group = studio.groups.variations(
        Txt2ImgRequest(prompt="x", steps=60, width=64, height=64, seed=1), 4, 0.2, "bob"
    )
    (run,) = backend.wait_for_runs(1)
    backend.release()
    backend.wait_for_step(run, 1)
    studio.jobs.cancel_group(group.id, "bob")
    backend.open()
    assert group.wait(60) and group.state is JobState.CANCELLED
    assert len(group.jobs) == 1 and studio.gallery.count() == 0
    assert run.closed_early and len(backend.runs) == 1  # the other variations never ran
