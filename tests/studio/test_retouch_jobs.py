"""Retouch jobs through a real Studio (registry, manager, tiny model, gallery): chains, exactness, seams, errors."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.images import encode_png
from core.infotext import EASEL_CHUNK_KEY, parse_infotext
from core.recipes import recipe_from_png
from core.retouch import RetouchRequest
from core.tiles import tile_boxes
from studio import JobState
from tests.helpers import flat_product


def run(studio, ops, image=None, seed=-1):
    job = studio.jobs.submit(RetouchRequest(image=encode_png(image or flat_product()), ops=ops, seed=seed))
    assert job.wait(120)
    return job


def test_remove_background_then_upscale_saves_a_transparent_double_size_png_with_its_recipe(studio):
    before = studio.gallery.count()
    job = run(studio, [{"op": "remove_background", "method": "key"}, {"op": "upscale", "scale": 2}])
    assert job.state is JobState.DONE, job.error
    assert job.step == job.total == 2 and len(job.images) == 1
    saved = job.images[0]
    assert studio.gallery.count() == before + 1 and saved.task == "retouch"
    data = studio.gallery.file_path(saved.id).read_bytes()
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        assert picture.format == "PNG" and picture.mode == "RGBA" and picture.size == (192, 128)
        alpha = np.asarray(picture.getchannel("A"))
        chunk = json.loads(picture.info[EASEL_CHUNK_KEY])
    assert alpha[0, 0] == 0 and alpha[64, 96] == 255  # background gone, product kept
    assert "Retouch: remove_background → upscale ×2" in saved.infotext
    assert parse_infotext(saved.infotext).params["Size"] == "192x128"
    recipe = recipe_from_png(data)
    assert recipe is not None and [op.op for op in recipe.ops] == ["remove_background", "upscale"]
    assert chunk["task"] == "retouch"
    # replaying the recipe on another picture does the same thing
    again = studio.jobs.submit(recipe.request(encode_png(flat_product((40, 30)))))
    assert again.wait(60) and again.state is JobState.DONE
    assert (again.images[0].width, again.images[0].height) == (80, 60)


def test_replace_background_keeps_every_subject_pixel_byte_identical(studio):
    from pipelines.retouch.background import subject_mask

    source = flat_product()
    ops = [{"op": "replace_background", "prompt": "a wooden table", "method": "key", "steps": 3}]
    job = run(studio, ops, source, seed=11)
    assert job.state is JobState.DONE, job.error
    with Image.open(studio.gallery.file_path(job.images[0].id)) as out:
        result = np.asarray(out.convert("RGB"))
    subject = (
        np.asarray(subject_mask(source, method="key", models_dir=studio.backend.registry.models_dir)) >= 128
    )
    assert subject.sum() > 500 and (~subject).sum() > 500
    assert np.array_equal(result[subject], np.asarray(source)[subject])
    assert not np.array_equal(result[~subject], np.asarray(source)[~subject])  # the background did change
    assert "Seed: 11" in job.images[0].infotext and "Model: tiny-sd1" in job.images[0].infotext


def test_replace_background_of_a_cut_out_keeps_its_opaque_pixels(studio):
    cut = flat_product().convert("RGBA")
    alpha = Image.new("L", cut.size, 0)
    ImageDraw.Draw(alpha).rectangle((20, 10, 70, 50), fill=255)
    cut.putalpha(alpha)
    job = run(studio, [{"op": "replace_background", "prompt": "sky", "steps": 2}], cut, seed=3)
    assert job.state is JobState.DONE, job.error
    with Image.open(studio.gallery.file_path(job.images[0].id)) as out:
        result = np.asarray(out.convert("RGB"))
    opaque = np.asarray(alpha) == 255
    assert np.array_equal(result[opaque], np.asarray(cut.convert("RGB"))[opaque])


def test_sd_upscale_has_the_asked_size_and_no_seams_at_tile_borders(studio):
    source = Image.fromarray(
        np.stack(
            [*np.meshgrid(np.linspace(0, 255, 80), np.linspace(0, 255, 60)), np.full((60, 80), 128.0)], -1
        ).astype(np.uint8)
    )
    ops = [
        {
            "op": "sd_upscale",
            "scale": 2,
            "tile_size": 64,
            "overlap": 24,
            "steps": 4,
            "denoising_strength": 0.5,
        }
    ]
    job = run(studio, ops, source, seed=5)
    assert job.state is JobState.DONE, job.error
    assert job.step == job.total and job.total > 10
    with Image.open(studio.gallery.file_path(job.images[0].id)) as out:
        pixels = np.asarray(out.convert("RGB"), dtype=np.float64)
    assert pixels.shape == (120, 160, 3)
    # the step between neighbouring columns at each tile's edge is no larger than steps inside the tiles
    boxes = tile_boxes(160, 120, 64, 24)
    steps = np.abs(np.diff(pixels, axis=1)).mean(axis=(0, 2))  # step between column x and x+1
    edges = {b[0] - 1 for b in boxes if b[0] > 0} | {b[2] - 1 for b in boxes if b[2] < 160}
    interior = [steps[x] for x in range(len(steps)) if x not in edges]
    assert max(steps[x] for x in edges) <= np.percentile(interior, 99)
    rows = np.abs(np.diff(pixels, axis=0)).mean(axis=(1, 2))
    row_edges = {b[1] - 1 for b in boxes if b[1] > 0} | {b[3] - 1 for b in boxes if b[3] < 120}
    row_interior = [rows[y] for y in range(len(rows)) if y not in row_edges]
    assert max(rows[y] for y in row_edges) <= np.percentile(row_interior, 99)


def test_tile_blending_leaves_no_step_where_hard_pasting_would():
    """With random weights every tile is noise, so the seam check above cannot tell blending from pasting;
    here tiles of flat, very different colours show what the blend does at the tile borders."""
    from pipelines.retouch.sd_upscale import blend_tiles

    size, tile, overlap = (200, 90), 64, 24
    boxes = tile_boxes(*size, tile, overlap)
    flat = [(box, np.full((box[3] - box[1], box[2] - box[0], 3), 40.0 * i)) for i, box in enumerate(boxes)]
    blended = blend_tiles(flat, size, overlap).astype(np.float64)
    largest_jump = 40.0 * len(boxes)
    # a ramp over `overlap` px: each step is a small share of the jump between neighbouring tiles
    assert np.abs(np.diff(blended, axis=1)).max() <= largest_jump / overlap + 1
    assert np.abs(np.diff(blended, axis=0)).max() <= largest_jump / overlap + 1
    pasted = blend_tiles(flat, size, 0).astype(np.float64)  # no feathering: hard edges
    assert np.abs(np.diff(pasted, axis=1)).max() >= 40.0 / 2


def test_erase_changes_only_inside_the_mask(studio):
    source = flat_product()
    mask = Image.new("L", source.size, 0)
    ImageDraw.Draw(mask).rectangle((40, 20, 60, 40), fill=255)
    job = run(studio, [{"op": "erase", "mask": encode_png(mask), "steps": 2}], source, seed=1)
    assert job.state is JobState.DONE, job.error
    with Image.open(studio.gallery.file_path(job.images[0].id)) as out:
        result = np.asarray(out.convert("RGB"))
    outside = np.asarray(mask) == 0
    assert np.array_equal(result[outside], np.asarray(source)[outside])
    assert not np.array_equal(result[~outside], np.asarray(source)[~outside])


def test_exports_are_files_not_gallery_pictures(studio):
    before = studio.gallery.count()
    job = run(studio, [{"op": "vectorize", "colors": "binary"}, {"op": "logo_pack", "sizes": [16, 32]}])
    assert job.state is JobState.DONE, job.error
    # the picture they were made of is saved once, unchanged, with the exports listed beside it
    assert len(job.images) == 1 and studio.gallery.count() == before + 1
    source = job.images[0]
    assert (source.task, source.width, source.height) == ("retouch", 96, 64)
    stem = job.request.file_stem()  # no title, no prompt: "retouch-" and the picture's hash
    assert stem.startswith("retouch-") and len(stem) == len("retouch-") + 8
    assert sorted(p.name for p in job.exports) == [f"{stem}-logo-pack.zip", f"{stem}-vector.svg"]
    assert all(p.is_file() and p.parent.parent == studio.jobs.exports_dir() for p in job.exports)
    assert studio.gallery.export_paths(source.id) == sorted(job.exports)
    assert job.exports[0].read_text().lstrip().startswith(("<?xml", "<svg"))


def test_missing_weights_fail_the_step_with_what_to_download_and_keep_the_step_before(studio):
    before = studio.gallery.count()
    job = run(studio, [{"op": "upscale"}, {"op": "restore_faces"}])
    assert job.state is JobState.FAILED
    assert job.error.startswith("Step 2 (restore_faces): ")
    assert "face_restore" in job.error and "GFPGAN" in job.error
    # the upscaled picture of step 1 is kept, described by step 1 alone
    assert studio.gallery.count() == before + 1 and len(job.images) == 1
    assert (job.images[0].width, job.images[0].height) == (192, 128)
    recipe = recipe_from_png(studio.gallery.file_path(job.images[0].id).read_bytes())
    assert recipe is not None and [op.op for op in recipe.ops] == ["upscale"]


def test_unknown_tools_and_models_are_refused_at_submit(studio):
    from studio import RequestRefused

    for ops in (
        [{"op": "upscale", "upscaler": "4x-Nonexistent"}],
        [{"op": "replace_background", "prompt": "x", "model": "no-such-model"}],
    ):
        with pytest.raises(RequestRefused):
            studio.jobs.submit(RetouchRequest(image=encode_png(flat_product()), ops=ops))


def test_a_plain_chain_needs_no_model_and_a_diffusion_chain_gets_one_and_a_seed(studio):
    job = run(studio, [{"op": "enhance", "auto": True}])
    assert job.state is JobState.DONE and "Model:" not in job.images[0].infotext
    job = studio.jobs.submit(
        RetouchRequest(
            image=encode_png(flat_product()),
            ops=[{"op": "erase", "mask": encode_png(Image.new("L", (96, 64), 255)), "steps": 1}],
        )
    )
    assert job.request.ops[0].model == "tiny-sd1" and job.request.ops[0].seed == job.request.seed >= 0
    job.wait(60)


def test_cancel_stops_a_retouch_job_and_saves_nothing(studio):
    before = studio.gallery.count()
    ops = [
        {
            "op": "sd_upscale",
            "scale": 4,
            "tile_size": 64,
            "overlap": 8,
            "steps": 50,
            "denoising_strength": 1.0,
        }
    ]
    job = studio.jobs.submit(RetouchRequest(image=encode_png(flat_product()), ops=ops))
    started = threading.Event()
    while job.state is JobState.QUEUED or (job.state is JobState.RUNNING and job.step < 2):
        started.wait(0.05)
    studio.jobs.cancel(job.id, "local")
    assert job.wait(60)
    assert job.state is JobState.CANCELLED and job.images == []
    assert studio.gallery.count() == before


def _pixels(studio, job) -> np.ndarray:
    with Image.open(studio.gallery.file_path(job.images[0].id)) as out:
        return np.asarray(out.convert("RGB"))


def test_replace_background_with_a_preset_and_a_style_keeps_the_subject_and_its_recipe_replays_exactly(
    studio,
):
    from core.styles import apply_styles
    from pipelines.retouch.background import subject_mask

    preset = studio.presets_book.get("Product — studio white (1:1)")
    extra = next(s.name for s in studio.presets_book.styles() if s.prompt and s.name not in preset.styles)
    names = [*preset.styles, extra]
    source = flat_product()
    ops = [
        {
            "op": "replace_background",
            "prompt": "a marble table",
            "negative_prompt": "dust",
            "method": "key",
            "preset": preset.name,
            "styles": [extra],
        }
    ]
    job = run(studio, ops, source, seed=21)
    assert job.state is JobState.DONE, job.error
    # 1. expanded once, at submit, exactly as a generation prompt is; the preset's settings came along
    op = job.request.ops[0]
    expected = apply_styles("a marble table", "dust", studio.presets_book.styles_named(names), scene=True)
    assert (op.prompt, op.negative_prompt) == expected and op.prompt != "a marble table"
    assert (op.sampler, op.schedule_type, op.steps, op.cfg_scale) == (
        preset.sampler, preset.schedule_type, preset.steps, preset.cfg_scale,
    )  # fmt: skip
    assert op.preset == "" and op.styles == [] and op.applied.preset == preset.name
    assert op.applied.styles == names and op.applied.prompt == "a marble table"
    assert job.step == job.total == preset.steps + 1
    # 2. the subject is exact; the infotext carries the final prompt and the styles
    result = _pixels(studio, job)
    subject = (
        np.asarray(subject_mask(source, method="key", models_dir=studio.backend.registry.models_dir)) >= 128
    )
    assert subject.sum() > 500 and np.array_equal(result[subject], np.asarray(source)[subject])
    parsed = parse_infotext(job.images[0].infotext)
    assert (parsed.prompt, parsed.negative_prompt) == expected
    assert parsed.params["Styles"] == ", ".join(names)
    # 3. the recipe holds what was applied; replayed, it applies nothing again and paints the same pixels
    recipe = recipe_from_png(studio.gallery.file_path(job.images[0].id).read_bytes())
    assert recipe is not None and recipe.ops == [op]
    again = studio.jobs.submit(recipe.request(encode_png(source)))
    assert again.wait(120) and again.state is JobState.DONE, again.error
    assert again.request.ops == [op]
    assert np.array_equal(_pixels(studio, again), result)


def test_unknown_presets_and_styles_are_refused_at_submit_as_in_generation(studio):
    from core.requests import Txt2ImgRequest
    from studio import RequestRefused, UnknownPreset, UnknownStyle

    before = studio.gallery.count()
    picture = encode_png(flat_product())
    background = {"op": "replace_background", "prompt": "sand", "method": "key"}
    with pytest.raises(UnknownPreset, match="Unknown preset 'No such preset'. Available: .*Banner"):
        studio.jobs.submit(RetouchRequest(image=picture, ops=[{**background, "preset": "No such preset"}]))
    with pytest.raises(UnknownStyle) as retouch_error:
        studio.jobs.submit(RetouchRequest(image=picture, ops=[{**background, "styles": ["Nope"]}]))
    with pytest.raises(UnknownStyle) as generation_error:
        studio.jobs.submit(Txt2ImgRequest(prompt="sand", styles=("Nope",)))
    assert str(retouch_error.value) == str(generation_error.value)
    assert issubclass(UnknownPreset, RequestRefused)  # the API answers 422, the UI shows the message
    assert studio.gallery.count() == before


def test_the_retouch_tab_sends_the_preset_and_styles_and_shows_the_prompt_the_studio_will_send(studio):
    from ui.retouch import _background_preview
    from ui.retouch_steps import ops_from_values

    preset = studio.presets_book.get("Product — studio white (1:1)")
    values = {
        "bg_prompt": "a marble table", "bg_negative": "", "rb_method": "key", "rb_segmenter": None,
        "bg_preset": preset.name, "bg_styles": ["Cinematic"], "rb_model": "tiny-sd1", "rb_sampler": "Euler",
        "rb_steps": 4, "rb_cfg": 7,
    }  # fmt: skip
    ops = ops_from_values(["replace_background"], values, (96, 64))
    (op,) = RetouchRequest(image=encode_png(flat_product()), ops=ops).ops
    assert (op.preset, op.styles) == (preset.name, ["Cinematic"])
    styled = studio.resolver.styled_background(op)
    shown = _background_preview(
        studio, "a marble table", "", preset.name, ["Cinematic"], "tiny-sd1", "Euler", 4, 7
    )
    assert shown.visible and shown.value.splitlines()[0] == styled.prompt
    # the settings really sent: the preset's steps, marked as the preset's (the step's own 4 are not used)
    assert (
        f"{preset.steps} steps (set by the preset {preset.name})" in shown.value
        and styled.steps == preset.steps
    )
    assert "4 steps" not in shown.value
    unknown = _background_preview(studio, "x", "", None, ["Nope"], "tiny-sd1", "Euler", 4, 7)
    assert unknown.value.startswith("Unknown style 'Nope'")
    plain = _background_preview(studio, "x", "", None, ["Cinematic"], "tiny-sd1", "Euler", 4, 7)
    assert "4 steps, CFG 7" in plain.value and "set by" not in plain.value
    assert not _background_preview(studio, "x", "", None, [], "tiny-sd1", "Euler", 4, 7).visible
