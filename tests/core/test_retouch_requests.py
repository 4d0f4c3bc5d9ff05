"""Retouch requests: the chain is validated at the boundary (never clamped), and its recipe round-trips."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from pydantic import ValidationError

from core.images import encode_png
from core.presets import Preset, compose_scene
from core.recipes import RecipeError, parse_recipe
from core.requests import validation_message
from core.retouch import MAX_OUTPUT_PIXELS, RetouchRequest, failed_step, make_recipe, step_failure
from core.retouch_ops import EraseOp, ReplaceBackgroundOp, UpscaleOp
from core.styles import Style
from core.tiles import tile_boxes

PICTURE = encode_png(Image.new("RGB", (100, 80), (200, 200, 200)))
MASK = encode_png(Image.new("L", (100, 80), 255))


def _error(ops, image=PICTURE, **fields) -> str:
    with pytest.raises(ValidationError) as caught:
        RetouchRequest(image=image, ops=ops, **fields)
    return validation_message(caught.value)


def test_a_chain_gives_sizes_steps_and_a_one_line_summary():
    request = RetouchRequest(
        image=PICTURE, ops=[{"op": "remove_background"}, {"op": "upscale", "scale": 2}, {"op": "logo_pack"}]
    )
    assert request.task == "retouch"
    assert request.source_size == (100, 80) and request.output_size == (200, 160)
    assert request.total_steps == 3 and not request.needs_model and request.model == ""
    assert request.summary() == "remove_background → upscale ×2 → logo_pack 16/32/48/64/128/256/512/1024"
    assert isinstance(request.ops[1], UpscaleOp) and request.ops[1].scale == 2.0


def test_upscale_defaults_to_x2_and_takes_a_target_instead():
    assert RetouchRequest(image=PICTURE, ops=[{"op": "upscale"}]).output_size == (200, 160)
    target = RetouchRequest(image=PICTURE, ops=[{"op": "upscale", "target_width": 300, "target_height": 150}])
    assert target.output_size == (300, 150)


def test_diffusion_chains_count_their_sampling_steps():
    request = RetouchRequest(
        image=PICTURE,
        ops=[
            {"op": "replace_background", "prompt": "a beach", "steps": 10},
            {
                "op": "sd_upscale",
                "scale": 2,
                "tile_size": 64,
                "overlap": 16,
                "steps": 10,
                "denoising_strength": 0.3,
            },
        ],
    )
    tiles = len(tile_boxes(200, 160, 64, 16))
    assert request.needs_model and request.total_steps == (10 + 1) + (tiles * 3 + 1)


@pytest.mark.parametrize(
    ("ops", "needle"),
    [
        ([], "at least 1"),
        ([{"op": "upscale"}] * 9, "at most 8"),
        ([{"op": "sharpen"}], "does not match"),
        ([{"op": "upscale", "scale": 9}], "less than or equal to 8"),
        ([{"op": "upscale", "scale": 0.5}], "greater than or equal to 1"),
        ([{"op": "upscale", "scale": float("nan")}], "finite"),
        ([{"op": "upscale", "scale": 2, "target_width": 10, "target_height": 10}], "not both"),
        ([{"op": "upscale", "target_width": 10}], "both target_width and target_height"),
        ([{"op": "upscale", "scale": 2, "crop": True}], "crop needs a target"),
        ([{"op": "upscale", "scale": 8}, {"op": "upscale", "scale": 8}], "pixels"),
        ([{"op": "upscale", "wat": 1}], "Extra inputs"),
        ([{"op": "enhance"}], "at least one strength"),
        ([{"op": "enhance", "auto": True, "sharpen": 0.5}], "leave them at 0"),
        ([{"op": "enhance", "sharpen": 1.5}], "less than or equal to 1"),
        ([{"op": "restore_faces", "visibility": 0}], "greater than 0"),
        ([{"op": "remove_background", "method": "magic"}], "auto"),
        ([{"op": "replace_background"}], "prompt"),
        ([{"op": "replace_background", "prompt": "x", "width": 100, "height": 64}], "multiple of 8"),
        ([{"op": "replace_background", "prompt": "x", "width": 64}], "both width and height"),
        ([{"op": "replace_background", "prompt": "x", "sampler": "Magic"}], "unknown sampler"),
        ([{"op": "replace_background", "prompt": "x" * 8001}], "8000"),
        ([{"op": "sd_upscale", "tile_size": 100}], "multiple of 8"),
        ([{"op": "sd_upscale", "tile_size": 64, "overlap": 40}], "more than half"),
        ([{"op": "sd_upscale", "steps": 2, "denoising_strength": 0.2}], "no step"),
        ([{"op": "logo_pack", "sizes": [64, 64]}], "once"),
        ([{"op": "logo_pack", "sizes": [4]}], "greater than or equal to 16"),
        ([{"op": "vectorize", "colors": "rainbow"}], "color"),
    ],
)
def test_bad_operations_are_refused_with_a_readable_message(ops, needle):
    assert needle in _error(ops)


def test_bad_pictures_are_refused_before_anything_runs():
    assert "PNG, JPEG or WebP" in _error([{"op": "upscale"}], image=b"GIF89a" + b"\0" * 32)
    assert "empty" in _error([{"op": "upscale"}], image=b"")
    assert "extra" in _error([{"op": "upscale"}], model="x").lower()
    assert "seed" in _error([{"op": "upscale"}], seed=-2)


def test_erase_masks_must_fit_the_picture_and_come_before_resizing():
    ok = RetouchRequest(image=PICTURE, ops=[{"op": "erase", "mask": MASK}, {"op": "upscale"}])
    assert isinstance(ok.ops[0], EraseOp) and ok.needs_model
    small = encode_png(Image.new("L", (50, 40), 255))
    assert "50×40" in _error([{"op": "erase", "mask": small}])
    assert "put erase before upscale" in _error([{"op": "upscale"}, {"op": "erase", "mask": MASK}])
    assert "mask" in _error([{"op": "erase", "mask": b"not a picture"}])


def test_the_output_pixel_cap_is_never_exceeded():
    side = int(MAX_OUTPUT_PIXELS**0.5)
    big = encode_png(Image.new("RGB", (side // 2 + 8, side // 2 + 8)))
    assert "pixels" in _error([{"op": "upscale", "scale": 2}], image=big)


def test_recipe_round_trip_leaves_out_picture_bytes_and_erase():
    request = RetouchRequest(
        image=PICTURE,
        ops=[
            {"op": "erase", "mask": MASK},
            {"op": "remove_background", "method": "key"},
            {"op": "enhance", "auto": True},
            {"op": "upscale", "target_width": 64, "target_height": 64, "crop": True},
            {"op": "vectorize", "colors": "binary", "detail": 0.25},
        ],
        seed=7,
    )
    recipe = request.recipe()
    text = json.dumps(recipe)
    assert "mask" not in text and [op["op"] for op in recipe["ops"]] == [
        "remove_background",
        "enhance",
        "upscale",
        "vectorize",
    ]
    replayed = parse_recipe(text).request(encode_png(Image.new("RGB", (30, 20))))
    assert replayed.ops == request.ops[1:]
    assert replayed.output_size == (64, 64)
    assert make_recipe(replayed.ops) == recipe
    assert parse_recipe(recipe["ops"]).ops == replayed.ops  # a bare list of operations is a recipe too
    # the request itself round-trips through JSON (bytes as base64)
    assert RetouchRequest.model_validate_json(request.model_dump_json()) == request


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("{", "not valid JSON"),
        ('"upscale"', "JSON object"),
        ('{"version": 2, "ops": [{"op": "upscale"}]}', "version"),
        ('{"version": 1, "ops": []}', "at least 1"),
        ('{"version": 1, "ops": [{"op": "erase", "mask": ""}]}', "does not match"),
        ('{"version": 1, "ops": [{"op": "upscale", "scale": 100}]}', "less than or equal to 8"),
        ('{"version": 1, "ops": [{"op": "upscale"}], "extra": 1}', "Extra inputs"),
    ],
)
def test_bad_recipes_say_what_is_wrong(text, needle):
    with pytest.raises(RecipeError, match=needle):
        parse_recipe(text)


def test_tiles_cover_every_pixel_and_overlap_by_at_least_the_overlap():
    for width, height, tile, overlap in [
        (300, 100, 128, 32),
        (64, 64, 64, 16),
        (1000, 777, 512, 64),
        (50, 40, 64, 8),
    ]:
        boxes = tile_boxes(width, height, tile, overlap)
        covered = [[0] * width for _ in range(height)]
        for left, top, right, bottom in boxes:
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            assert right - left == min(tile, width) and bottom - top == min(tile, height)
            for y in range(top, bottom):
                for x in range(left, right):
                    covered[y][x] = 1
        assert all(all(row) for row in covered)
        xs = sorted({b[0] for b in boxes})
        for a, b in zip(xs, xs[1:], strict=False):
            assert a + min(tile, width) - b >= overlap


# --- presets and styles on replace background ----------------------------------------------------------


def _studio_look() -> tuple[Preset, list[Style]]:
    preset = Preset(
        name="Studio look",
        styles=("Clean",),
        prompt="product photo backdrop, {prompt}",
        negative_prompt="clutter",
        sampler="Euler",
        schedule_type="Karras",
        steps=12,
        cfg_scale=5.5,
        aspect="4:5",
        model="other-model",
        batch_size=4,
    )
    styles = [
        Style(name="Clean", prompt="{prompt}, seamless backdrop", negative_prompt="text"),
        Style(name="Warm", prompt="warm light", negative_prompt=""),
    ]
    return preset, styles


def test_a_preset_and_styles_expand_the_background_as_they_expand_a_generation_prompt():
    preset, styles = _studio_look()
    op = ReplaceBackgroundOp(
        prompt="a marble table", negative_prompt="blurry", preset="Studio look", styles=["Warm"]
    )
    assert op.style_names(preset) == ["Clean", "Warm"]
    styled = op.styled(preset, styles)
    # the settings come as in the generating tabs; the text is the scene, and the preset's and the styles'
    # own backdrops give way to it
    expected = compose_scene(preset, styles, "a marble table", "blurry")
    assert (styled.prompt, styled.negative_prompt) == expected
    assert expected == ("a marble table, warm light", "blurry, clutter, text")
    assert (styled.sampler, styled.schedule_type, styled.steps, styled.cfg_scale) == (
        "Euler",
        "Karras",
        12,
        5.5,
    )
    assert styled.model == "other-model"  # the operation named none
    assert (styled.width, styled.height) == (None, None)  # the picture keeps its size
    assert styled.preset == "" and styled.styles == []
    assert styled.applied is not None and styled.applied.model_dump() == {
        "preset": "Studio look",
        "styles": ["Clean", "Warm"],
        "prompt": "a marble table",
        "negative_prompt": "blurry",
    }
    # an operation that names its model keeps it; styles alone touch only the prompts
    assert (
        ReplaceBackgroundOp(prompt="x", model="mine", preset="Studio look").styled(preset, styles).model
        == "mine"
    )
    only = ReplaceBackgroundOp(prompt="sand", styles=["Warm"]).styled(None, styles[1:])
    assert (only.prompt, only.sampler, only.steps) == ("sand, warm light", "DPM++ 2M", 20)


def test_an_applied_operation_replays_as_it_is_and_cannot_be_styled_twice():
    preset, styles = _studio_look()
    styled = ReplaceBackgroundOp(prompt="a marble table", preset="Studio look").styled(preset, styles[:1])
    request = RetouchRequest(image=PICTURE, ops=[styled], seed=3)
    replayed = parse_recipe(json.dumps(request.recipe())).request(PICTURE, seed=3)
    assert replayed.ops == [styled]  # the final prompt and settings, nothing left to apply
    again = {**styled.model_dump(), "styles": ["Clean"]}
    assert "already has its preset and styles applied" in _error([again])


@pytest.mark.parametrize(
    ("op", "needle"),
    [
        ({"op": "replace_background", "prompt": " "}, "describe the new background"),
        ({"op": "replace_background", "prompt": "x", "styles": ["a,b"]}, "comma"),
        ({"op": "replace_background", "prompt": "x", "preset": "../etc/passwd"}, "not a path"),
        ({"op": "replace_background", "prompt": "x", "styles": ["s"] * 17}, "at most 16"),
    ],
)
def test_bad_presets_and_styles_on_a_background_are_refused(op, needle):
    assert needle in _error([op])


def test_a_preset_or_styles_may_make_the_whole_background_prompt():
    preset, styles = _studio_look()
    op = ReplaceBackgroundOp(styles=["Clean"])
    assert op.styled(None, styles[:1]).prompt == "seamless backdrop"
    empty = Style(name="Neg", prompt="", negative_prompt="text")
    with pytest.raises(ValueError, match="describe the new background"):
        ReplaceBackgroundOp(styles=["Neg"]).styled(None, [empty])


def test_a_title_is_one_line_of_text_of_limited_length():
    assert RetouchRequest(image=PICTURE, ops=[{"op": "upscale"}], title="mug-shot").title == "mug-shot"
    assert RetouchRequest(image=PICTURE, ops=[{"op": "upscale"}]).title is None
    assert "title" in _error([{"op": "upscale"}], title="x" * 201)
    assert "control characters" in _error([{"op": "upscale"}], title="two\nlines")
    assert "leave the title out" in _error([{"op": "upscale"}], title="   ")


def test_download_names_start_with_the_title_or_the_background_prompt_and_the_picture():
    ops = [{"op": "vectorize"}]
    digest = RetouchRequest(image=PICTURE, ops=ops).file_stem().removeprefix("retouch-")
    assert len(digest) == 8 and int(digest, 16) >= 0
    other = encode_png(Image.new("RGB", (100, 80), (10, 10, 10)))
    assert RetouchRequest(image=other, ops=ops).file_stem() != f"retouch-{digest}"
    assert RetouchRequest(image=PICTURE, ops=ops, title="Café — Mug #2").file_stem() == f"cafe-mug-2-{digest}"
    background = [{"op": "replace_background", "prompt": "On a marble counter!"}]
    assert RetouchRequest(image=PICTURE, ops=background).file_stem() == f"on-a-marble-counter-{digest}"
    assert RetouchRequest(image=PICTURE, ops=ops, title="★★★").file_stem() == f"retouch-{digest}"
    # an upload's file name as the title: its extension is not part of the download names
    assert RetouchRequest(image=PICTURE, ops=ops, title="mug-shot.PNG").file_stem() == f"mug-shot-{digest}"
    assert RetouchRequest(image=PICTURE, ops=ops, title="v2.final").file_stem() == f"v2-final-{digest}"


def test_a_step_failure_names_its_step():
    text = step_failure(3, "logo_pack 16", "the picture is fully transparent")
    assert text == "Step 3 (logo_pack 16): the picture is fully transparent"
    assert failed_step(text) == 3
    assert failed_step("Out of GPU memory") is None and failed_step(None) is None


def test_logo_pack_padding_is_a_percentage_checked_at_the_boundary():
    assert "padding" in _error([{"op": "logo_pack", "padding": 41}])
    assert "padding" in _error([{"op": "logo_pack", "padding": -1}])
    op = RetouchRequest(image=PICTURE, ops=[{"op": "logo_pack", "padding": 0}]).ops[0]
    assert op.padding == 0 and op.label().endswith("(padding 0%)")
