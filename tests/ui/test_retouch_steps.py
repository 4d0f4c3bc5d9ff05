"""The Retouch tab's chain without a browser: reordering, request data in chain order, the keep/remove brush,
upload titles, and what a finished (or stopped) chain shows at each step."""

from __future__ import annotations

import io

import gradio as gr
import pytest
from PIL import Image, ImageDraw

from core.images import encode_png
from core.retouch import RetouchRequest
from studio import JobState
from ui.retouch import upload_title
from ui.retouch_outcome import outcome, svg_preview
from ui.retouch_steps import KEEP_COLOUR, REMOVE_COLOUR, moved, ops_from_values

VALUES = {
    "upscaler": "Lanczos", "scale": 2, "enhance_auto": True, "svg_colors": "binary", "svg_detail": 0.3,
    "logo_sizes": [48, 16], "logo_padding": 12, "bg_method": "key", "bg_model": None, "alpha_matting": False,
    "cutout_brush": None,
}  # fmt: skip


def test_moving_a_step_stays_within_the_chain():
    chain = ["upscale", "enhance", "vectorize"]
    assert moved(chain, "vectorize", -1) == ["upscale", "vectorize", "enhance"]
    assert moved(chain, "upscale", -1) == chain and moved(chain, "vectorize", 1) == chain
    assert moved(chain, "upscale", 1) == ["enhance", "upscale", "vectorize"]
    assert moved(chain, "logo_pack", 1) == chain


def test_request_data_follows_the_chain_order_with_each_steps_own_settings():
    ops = ops_from_values(["logo_pack", "upscale", "vectorize", "enhance"], VALUES, (40, 30))
    assert [op["op"] for op in ops] == ["logo_pack", "upscale", "vectorize", "enhance"]
    assert ops[0] == {"op": "logo_pack", "sizes": [16, 48], "padding": 12}
    assert ops[2] == {"op": "vectorize", "colors": "binary", "detail": 0.3}
    request = RetouchRequest(image=encode_png(Image.new("RGB", (40, 30))), ops=ops)
    assert request.summary().startswith("logo_pack 16/48 (padding 12%) → upscale ×2 → vectorize → enhance")
    with pytest.raises(gr.Error, match="Add a step"):
        ops_from_values([], VALUES, (40, 30))


def _stroke_layer(size, strokes):
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for box, colour in strokes:
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        draw.rectangle(box, fill=(*rgb, 178))  # the editor's brush at 0.7 opacity
    return layer


def test_the_cutout_brush_gives_keep_and_remove_masks_by_colour():
    size = (40, 30)
    layer = _stroke_layer(size, [((2, 2, 9, 9), KEEP_COLOUR), ((20, 10, 29, 19), REMOVE_COLOUR)])
    values = {**VALUES, "cutout_brush": {"background": None, "layers": [layer], "composite": None}}
    (op,) = ops_from_values(["remove_background"], values, size)
    keep = Image.open(io.BytesIO(op["keep_mask"])).convert("L")
    remove = Image.open(io.BytesIO(op["remove_mask"])).convert("L")
    assert keep.size == remove.size == size
    assert keep.getbbox() == (2, 2, 10, 10) and remove.getbbox() == (20, 10, 30, 20)
    # no strokes: no masks, the automatic cut-out alone
    (plain,) = ops_from_values(["remove_background"], VALUES, size)
    assert "keep_mask" not in plain and "remove_mask" not in plain
    RetouchRequest(image=encode_png(Image.new("RGB", size)), ops=[op])  # the op model takes them


def test_an_upload_keeps_its_file_name_as_title():
    assert upload_title("/tmp/gradio/ab12/mug-shot.png") == "mug-shot"
    assert upload_title("/tmp/gradio/ab12/image.png") == ""  # a pasted picture's generic name
    assert upload_title(None) == ""


def test_a_stopped_chain_shows_done_failed_and_not_run_steps_and_the_kept_pictures(studio):
    chain = ["upscale", "vectorize", "logo_pack", "enhance"]
    ops = [
        {"op": "upscale", "scale": 2},
        {"op": "vectorize"},
        {"op": "logo_pack"},
        {"op": "enhance", "auto": True},
    ]
    empty = encode_png(Image.new("RGBA", (30, 20), (0, 0, 0, 0)))
    job = studio.jobs.submit(RetouchRequest(image=empty, ops=ops, keep_steps=True))
    assert job.wait(60) and job.state is JobState.FAILED
    seen = outcome(studio, job, chain)
    assert seen.failed and [caption for _, caption in seen.strip] == ["Step 1 · Upscale"]
    assert seen.result == seen.pictures[0]
    assert 'data-state="done"' in seen.states["upscale"] and 'data-state="done"' in seen.states["vectorize"]
    assert 'data-state="failed"' in seen.states["logo_pack"] and "transparent" in seen.states["logo_pack"]
    assert "Step 3" not in seen.states["logo_pack"]  # the reason alone: the panel says which step it is
    assert 'data-state="skipped"' in seen.states["enhance"] and "step 3 failed" in seen.states["enhance"]
    preview = svg_preview(seen.exports)
    assert preview.startswith("<figure") and "data:image/svg+xml;base64," in preview
    assert svg_preview([]) == ""
