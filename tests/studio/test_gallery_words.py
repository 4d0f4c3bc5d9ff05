"""What the worker writes into a picture so it can be found again: the prompt as typed (not the styles' text), an
upload's title, the job and the files it exported. Real Studio on tiny checkpoints, real gallery."""

from __future__ import annotations

from core.images import encode_png
from core.requests import Txt2ImgRequest
from core.retouch import RetouchRequest
from core.styles import Style
from gallery import GalleryQuery
from studio import JobState
from studio.pictures import own_words
from tests.helpers import flat_product

FAST = {"steps": 2, "width": 64, "height": 64}
STYLE = Style(name="studio look", prompt="{prompt}, studio lighting, soft shadows", negative_prompt="blurry")


def test_own_words_takes_the_styles_text_off_the_prompt() -> None:
    request = Txt2ImgRequest(
        prompt="a mug, studio lighting, soft shadows",
        negative_prompt="blurry",
        styles=["studio look"],
        **FAST,
    )
    assert own_words(request, lambda names: [STYLE]) == {"user_prompt": "a mug"}
    plain = Txt2ImgRequest(prompt="a mug on a shelf", **FAST)
    assert own_words(plain, lambda names: []) == {"user_prompt": "a mug on a shelf"}
    # a prompt the style's text cannot be taken off (the style changed since): no typed prompt is claimed
    changed = Style(name="studio look", prompt="{prompt}, harsh flash")
    assert own_words(request, lambda names: [changed]) == {}


def test_a_styled_generation_is_captioned_with_the_prompt_as_typed(studio) -> None:
    studio.presets_book.add_styles([STYLE], owner="local")
    job = studio.jobs.submit(Txt2ImgRequest(prompt="a ceramic mug", styles=["studio look"], seed=5, **FAST))
    assert job.wait(120) and job.state is JobState.DONE, job.error
    saved = job.images[0]
    assert saved.prompt == "a ceramic mug, studio lighting, soft shadows"  # what the model got
    assert saved.user_prompt == "a ceramic mug" and saved.caption == "a ceramic mug"
    assert saved.job == job.id


def test_an_upload_keeps_its_name_and_its_exports_are_listed_with_it(studio) -> None:
    fields = {"title": "mug-shot.png"} if "title" in RetouchRequest.model_fields else {}
    ops = [{"op": "remove_background", "method": "key"}, {"op": "vectorize", "colors": "binary"}]
    job = studio.jobs.submit(RetouchRequest(image=encode_png(flat_product()), ops=ops, **fields))
    assert job.wait(120) and job.state is JobState.DONE, job.error
    assert len(job.images) == 1 and len(job.exports) == 1
    saved = studio.gallery.get(job.images[0].id)
    assert saved.task == "retouch" and saved.ops == "remove background → vectorize"
    assert saved.caption.endswith("Retouch: remove background → vectorize")
    assert studio.gallery.export_paths(saved.id) == job.exports
    assert saved.exports == (job.exports[0].name,)
    found = [i.id for i in studio.gallery.query(GalleryQuery(text="background")).items]
    assert saved.id in found
    if fields:
        assert saved.title == "mug-shot.png" and saved.caption.startswith("mug-shot.png")
        assert saved.id in [i.id for i in studio.gallery.query(GalleryQuery(text="mug")).items]
