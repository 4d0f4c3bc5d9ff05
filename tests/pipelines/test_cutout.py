"""Cut-outs that never cut the product: the model-free key grows the background from the border (an enclosed
region goes only when it matches the background closely), keep/remove brush strokes refine any cut-out (key or
segmentation model), and a cut-out keeping almost nothing or almost everything comes with a warning."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydantic import ValidationError

from core.images import encode_png
from core.retouch import make_recipe
from core.retouch_ops import RemoveBackgroundOp, parse_op
from pipelines.retouch import RetouchError
from pipelines.retouch.background import coverage_warning, cut_out, remove_background, subject_mask
from tests.pipelines.test_retouch_ops import write_tiny_segmenter
from tests.retouch_images import iou

CREAM = (0xEF, 0xE6, 0xD2)  # a cream label on a #d8d8d8 sweep
CLOSE_CREAM = (0xE2, 0xDE, 0xD4)  # closer still: within the key's tolerance of the background


class Mug:
    """A synthetic catalogue shot of a mug, with what is known about it."""

    def __init__(
        self, seed: int = 0, label_colour: tuple[int, int, int] = CREAM, *, wrap: bool = False
    ) -> None:
        width, height = 256, 192
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        # a light-grey sweep (#d8d8d8) with a gentle gradient
        pixels = np.repeat((216 + 6 * (xx / width - 0.5) - 5 * (yy / height - 0.5))[..., None], 3, axis=2)
        left, right, top, bottom = width * 0.25, width * 0.62, height * 0.2, height * 0.85
        body = (xx >= left) & (xx < right) & (yy >= top) & (yy < bottom)
        r = np.hypot((xx - right) / (width * 0.13), (yy - (top + bottom) / 2) / (height * 0.2))
        ring = (r <= 1.0) & (r >= 0.6) & (xx >= right - 2)
        self.hole = (r < 0.6) & (xx >= right)  # the handle's hole shows the sweep
        self.truth = body | ring
        self.ring = ring & ~body
        shade = 0.75 + 0.45 * np.clip((xx - left) / (right - left), 0, 1)
        brown = np.array([120, 78, 48], np.float32) * shade[..., None]
        pixels[self.truth] = brown[self.truth]
        # the label: inside the body, or wrapped round it (reaching the mug's outline on both sides)
        inset = 0.0 if wrap else (right - left) * 0.12
        box = (left + inset, top + (bottom - top) * 0.22, right - inset, bottom - (bottom - top) * 0.22)
        self.label = (xx >= box[0]) & (xx < box[2]) & (yy >= box[1]) & (yy < box[3])
        pixels[self.label] = label_colour
        pixels += rng.normal(0, 2.0, pixels.shape)
        picture = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        # dark text on the label
        font = ImageFont.load_default(size=17)
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        ink = Image.new("L", picture.size, 0)  # where the text is: drawn the same way on its own
        for target, fill in ((picture, (40, 28, 20)), (ink, 255)):
            ImageDraw.Draw(target).text(
                centre, "KAFFE\nco.", fill=fill, font=font, anchor="mm", align="center"
            )
        self.text = np.asarray(ink) > 0
        self.picture = picture


def brush(where: np.ndarray) -> bytes:
    """A stroke as the page sends it: a PNG the picture's size, white where brushed."""
    return encode_png(Image.fromarray(np.where(where, 255, 0).astype(np.uint8), "L"))


def shrunk(region: np.ndarray, px: int) -> np.ndarray:
    return cv2.erode(region.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


# --- the key: background grown from the border ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "label_colour", [CREAM, CLOSE_CREAM], ids=["cream label", "label within the tolerance"]
)
def test_the_product_stays_opaque_and_the_handle_hole_goes(
    tmp_path: Path, seed: int, label_colour: tuple[int, int, int]
) -> None:
    mug = Mug(seed, label_colour)
    assert mug.text.sum() > 100 and (mug.text & mug.label).sum() == mug.text.sum()  # the text is on the label
    cut = cut_out(mug.picture, method="key", models_dir=tmp_path)
    assert cut.image.convert("RGB").tobytes() == mug.picture.tobytes()  # colours untouched
    alpha = np.asarray(cut.image.getchannel("A"))
    assert iou(alpha > 127, mug.truth) >= 0.97
    assert (alpha[mug.label] == 255).all() and (alpha[mug.text] == 255).all()  # label and text: fully opaque
    assert (alpha[shrunk(mug.hole, 3)] == 0).all()  # the handle's hole: fully transparent (but its soft edge)
    assert (alpha[mug.hole] < 128).mean() >= 0.98
    assert cut.warning == ""


def test_an_enclosed_region_goes_only_when_it_matches_the_background_closely(tmp_path: Path) -> None:
    # A label the sweep's own colour (but for noise) is indistinguishable from a hole: it goes. This bounds how
    # close "closely" is — the close cream above is only a few Lab units further away, and stays.
    same = Mug(0, (216, 216, 216))
    alpha = np.asarray(subject_mask(same.picture, method="key", models_dir=tmp_path))
    label_only = shrunk(same.label & ~cv2.dilate(same.text.astype(np.uint8), np.ones((5, 5))).astype(bool), 2)
    assert (alpha[label_only] == 0).mean() > 0.95
    assert (alpha[same.text] > 0).mean() > 0.9  # its text stays


def test_a_wrapped_label_within_the_tolerance_is_lost_by_the_key_and_a_keep_stroke_saves_it(
    tmp_path: Path,
) -> None:
    mug = Mug(0, CLOSE_CREAM, wrap=True)  # touches the sweep at the mug's outline: grown into from there
    lost = np.asarray(subject_mask(mug.picture, method="key", models_dir=tmp_path))
    assert (lost[mug.label & ~mug.text] < 128).mean() > 0.9
    kept = np.asarray(
        subject_mask(mug.picture, method="key", models_dir=tmp_path, keep_mask=brush(mug.label))
    )
    assert iou(kept > 127, mug.truth) >= 0.97 and (kept[mug.label] == 255).all()


# --- brush strokes ----------------------------------------------------------------------------------------------


def test_a_remove_stroke_takes_away_what_it_covers_and_nothing_else(tmp_path: Path) -> None:
    mug = Mug()
    # painted as an image-editor layer: transparent, with the handle painted in a half-opaque colour
    layer = np.zeros((*mug.ring.shape, 4), np.uint8)
    layer[mug.ring] = (255, 0, 0, 90)
    stroke = encode_png(Image.fromarray(layer, "RGBA"))
    alpha = np.asarray(remove_background(mug.picture, method="key", models_dir=tmp_path, remove_mask=stroke))
    alpha = alpha[..., 3]
    assert (alpha[mug.ring] == 0).all()
    assert iou(alpha > 127, mug.truth & ~mug.ring) >= 0.97
    assert (alpha[mug.label] == 255).all()


def test_where_both_strokes_cover_a_pixel_keep_wins(tmp_path: Path) -> None:
    mug = Mug()
    corner = np.zeros(mug.truth.shape, bool)
    corner[:20, :20] = True  # background
    handle = mug.ring
    mask = subject_mask(
        mug.picture,
        method="key",
        models_dir=tmp_path,
        keep_mask=brush(corner),
        remove_mask=brush(corner | handle),
    )
    alpha = np.asarray(mask)
    assert (alpha[corner] == 255).all() and (alpha[handle] == 0).all()


def test_strokes_and_warnings_apply_to_a_segmentation_model_too(tmp_path: Path) -> None:
    write_tiny_segmenter(
        tmp_path / "rembg" / "u2net.onnx"
    )  # "saliency" = darkness: it misses the light label
    mug = Mug()
    plain = cut_out(mug.picture, models_dir=tmp_path)  # auto → the model
    assert (np.asarray(plain.mask)[shrunk(mug.label & ~mug.text, 3)] < 128).mean() > 0.5
    brushed = cut_out(
        mug.picture, models_dir=tmp_path, keep_mask=brush(mug.label), remove_mask=brush(mug.hole)
    )
    alpha = np.asarray(brushed.image.getchannel("A"))
    assert (alpha[mug.label] == 255).all() and (alpha[mug.hole] == 0).all()
    everything = cut_out(mug.picture, models_dir=tmp_path, keep_mask=brush(np.ones_like(mug.truth)))
    assert "keeps 100.0% of the picture" in everything.warning


# --- warnings ---------------------------------------------------------------------------------------------------


def test_a_cut_out_keeping_almost_nothing_or_almost_everything_is_flagged(tmp_path: Path) -> None:
    blank = Image.new("RGB", (96, 64), (216, 216, 216))
    nothing = cut_out(blank, method="key", models_dir=tmp_path)
    assert np.asarray(nothing.mask).max() == 0
    assert "keeps only 0.0% of the picture" in nothing.warning and "brush what to keep" in nothing.warning
    everything = np.ones((64, 96), bool)
    full = cut_out(blank, method="key", models_dir=tmp_path, keep_mask=brush(everything))
    assert "keeps 100.0% of the picture" in full.warning and "brush what to remove" in full.warning


@pytest.mark.parametrize(
    ("kept", "flagged"), [(0, True), (290, True), (310, False), (9690, False), (9710, True)]
)
def test_the_warning_bounds_are_3_and_97_percent(kept: int, flagged: bool) -> None:
    mask = np.zeros(10_000, np.uint8)
    mask[:kept] = 255
    assert bool(coverage_warning(Image.fromarray(mask.reshape(100, 100), "L"))) is flagged


# --- bad strokes ------------------------------------------------------------------------------------------------


def test_a_stroke_of_another_size_or_not_a_picture_is_a_clear_error(tmp_path: Path) -> None:
    mug = Mug()
    small = encode_png(Image.new("L", (128, 96), 255))
    with pytest.raises(RetouchError, match=r"keep_mask is 128×96 but the picture is 256×192"):
        subject_mask(mug.picture, method="key", models_dir=tmp_path, keep_mask=small)
    with pytest.raises(RetouchError, match=r"remove_mask is 128×96 but the picture is 256×192"):
        remove_background(mug.picture, method="key", models_dir=tmp_path, remove_mask=small)
    with pytest.raises(RetouchError, match=r"remove_mask: only PNG, JPEG or WebP"):
        remove_background(mug.picture, method="key", models_dir=tmp_path, remove_mask=b"not a picture")


def test_the_operation_takes_strokes_as_bytes_or_base64_and_leaves_them_out_of_recipes() -> None:
    png = encode_png(Image.new("L", (8, 8), 255))
    as_bytes = parse_op({"op": "remove_background", "keep_mask": png})
    as_text = parse_op({"op": "remove_background", "keep_mask": base64.b64encode(png).decode()})
    as_data_url = RemoveBackgroundOp(remove_mask="data:image/png;base64," + base64.b64encode(png).decode())  # type: ignore[arg-type]
    assert isinstance(as_bytes, RemoveBackgroundOp) and isinstance(as_text, RemoveBackgroundOp)
    assert as_bytes.keep_mask == as_text.keep_mask == as_data_url.remove_mask == png
    assert (
        as_bytes.label() == "remove_background (brushed: keep)"
        and RemoveBackgroundOp().label() == "remove_background"
    )
    assert make_recipe([as_bytes])["ops"] == [
        {"op": "remove_background", "method": "auto", "model": "", "alpha_matting": False}
    ]
    for bad, says in [
        (b"junk", "only PNG, JPEG or WebP"),
        ("%%%", "send the picture as PNG bytes or as base64 text"),
    ]:
        with pytest.raises(ValidationError, match=rf"keep_mask: {says}"):
            parse_op({"op": "remove_background", "keep_mask": bad})


# --- through a retouch job --------------------------------------------------------------------------------------


def test_a_job_says_when_its_cut_out_keeps_almost_nothing_and_uses_the_strokes(studio) -> None:
    from core.infotext import EASEL_CHUNK_KEY, parse_infotext
    from core.retouch import RetouchRequest
    from studio import JobState

    blank = encode_png(Image.new("RGB", (96, 64), (216, 216, 216)))
    job = studio.jobs.submit(RetouchRequest(image=blank, ops=[{"op": "remove_background", "method": "key"}]))
    assert job.wait(60) and job.state is JobState.DONE, job.error
    saved = job.images[0]
    said = parse_infotext(saved.infotext).params["Warnings"]
    assert said.startswith("Step 1 (remove_background): the cut-out keeps only 0.0% of the picture")
    with Image.open(studio.gallery.file_path(saved.id)) as picture:
        chunk = json.loads(picture.info[EASEL_CHUNK_KEY])
    assert chunk["retouch"]["warnings"] == [said]  # for the page to show at that step

    mug = Mug()
    ops = [{"op": "remove_background", "method": "key", "keep_mask": brush(mug.hole)}]
    job = studio.jobs.submit(RetouchRequest(image=encode_png(mug.picture), ops=ops))
    assert job.wait(60) and job.state is JobState.DONE, job.error
    with Image.open(studio.gallery.file_path(job.images[0].id)) as out:
        alpha = np.asarray(out.getchannel("A"))
    assert (alpha[mug.hole] == 255).all() and "Warnings" not in parse_infotext(job.images[0].infotext).params

    small = [{"op": "remove_background", "keep_mask": encode_png(Image.new("L", (10, 10), 255))}]
    job = studio.jobs.submit(RetouchRequest(image=encode_png(mug.picture), ops=small))
    assert job.wait(60) and job.state is JobState.FAILED
    assert "keep_mask is 10×10 but the picture is 256×192" in (job.error or "")
