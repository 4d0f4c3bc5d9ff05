"""The inpaint tab: paint a mask on the picture (or upload one), repaint only there; outpaint; erase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image
from pydantic import ValidationError

from core import requests
from core.images import ImageInputError, decode_image, encode_png
from core.masks import mask_from_layers, mask_from_upload
from core.requests import InpaintRequest, working_size
from studio import Studio
from ui import fields
from ui.controls import Component, Controls
from ui.generation import (
    advanced,
    build_history,
    build_prompts,
    build_quick,
    build_results,
    build_settings,
    wire,
)
from ui.txt2img import RESULTS_COLUMN, SETTINGS_COLUMN, TabParts

MASKED_CONTENT = ["original", "fill", "latent noise", "latent nothing"]
AREAS = ["whole picture", "only masked"]
ASPECTS = {
    "by the sides above": None,
    "1:1": 1.0,
    "4:5": 0.8,
    "3:2": 1.5,
    "2:3": 2 / 3,
    "16:9": 16 / 9,
    "9:16": 9 / 16,
}


def _source_and_mask(
    editor: dict | None, uploaded_mask: Image.Image | None
) -> tuple[Image.Image, Image.Image]:
    if not editor or editor.get("background") is None:
        raise gr.Error("Upload or paste a picture into the editor first.")
    source: Image.Image = editor["background"]
    source = source.convert("RGBA") if source.mode in ("RGBA", "LA", "P") else source.convert("RGB")
    try:
        if uploaded_mask is not None:
            mask = mask_from_upload(uploaded_mask, source.size)
        else:
            mask = mask_from_layers(editor.get("layers") or [], source.size)
    except ImageInputError as exc:
        raise gr.Error(str(exc)) from None
    return source, mask


def _sibling_of(studio: Studio, model: str | None) -> str | None:
    info = next((m for m in studio.catalog.models() if m.name == model), None)
    return info.inpaint_sibling if info is not None else None


def _sibling_text(sibling: str | None) -> str:
    return (
        f"An inpainting version of this model exists: **{sibling}** (usually better here)." if sibling else ""
    )


def sibling_hint(studio: Studio, model: str | None) -> tuple[Any, Any]:
    """Offer the inpainting version of the chosen model, when one exists."""
    sibling = _sibling_of(studio, model)
    if not sibling:
        return gr.Markdown(visible=False), gr.Button(visible=False)
    return gr.Markdown(_sibling_text(sibling), visible=True), gr.Button(f"Use {sibling}", visible=True)


def build(studio: Studio) -> tuple[TabParts, gr.ImageEditor]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320, elem_classes=SETTINGS_COLUMN):
            editor, upload = _build_editor()
            erase = gr.Button("Erase masked area", elem_id="inpaint_erase", size="sm")
            controls = build_prompts(studio, "inpaint", inpaint_models=True)
            with gr.Row():
                sibling = _sibling_of(studio, studio.catalog.default_model())
                hint = gr.Markdown(
                    _sibling_text(sibling), visible=bool(sibling), elem_id="inpaint_sibling_hint"
                )
                use_sibling = gr.Button(
                    f"Use {sibling}", visible=bool(sibling), size="sm", elem_id="inpaint_use_sibling"
                )
            strength = fields.slider(
                InpaintRequest, "denoising_strength", step=0.01, label="Denoising strength",
                info="How much the masked area changes (1 = repaint it completely)",
                elem_id="inpaint_denoising",
            )  # fmt: skip
            build_quick(controls, "inpaint")
            with advanced("inpaint"):
                with gr.Accordion("…or upload a mask (white = repaint)", open=False):
                    mask_upload = gr.Image(
                        label="Mask",
                        type="pil",
                        sources=["upload"],
                        height=160,
                        elem_id="inpaint_mask_upload",
                    )
                extra = {
                    editor: "_editor", mask_upload: "_mask_upload", strength: "denoising_strength",
                    **_build_mask_options(),
                }  # fmt: skip
                outpaint, outpaint_extra = _build_outpaint()
                build_settings(studio, controls, "inpaint", inpaint_models=True)
        with gr.Column(scale=6, min_width=320, elem_classes=RESULTS_COLUMN):
            results = build_results("inpaint")
            build_history(results, "inpaint")
    _wire_generation(
        studio, TabParts(controls=controls, results=results), extra, erase, outpaint, outpaint_extra
    )
    _wire_helpers(studio, controls, editor, hint, use_sibling)
    _wire_upload(upload, editor, controls)
    return TabParts(controls=controls, results=results), editor


def _build_editor() -> tuple[gr.ImageEditor, gr.UploadButton]:
    """The mask editor, and an upload button that loads a picture into it from the server's side."""
    upload = gr.UploadButton(
        "Upload a picture", file_types=["image"], file_count="single", type="filepath", size="sm",
        variant="secondary", elem_id="inpaint_upload",
    )  # fmt: skip
    # the editor's own upload area may drop a picture that arrives while it is still setting itself up (right
    # after the tab first opens, on a busy machine): pictures come in through the button above instead
    editor = gr.ImageEditor(
        label="Picture — paint over what should change",
        type="pil",
        sources=["clipboard"],
        brush=gr.Brush(colors=[("#ff3d7f", 0.6)], color_mode="fixed", default_size=24),
        eraser=gr.Eraser(default_size=24),
        layers=False,
        transforms=(),
        format="png",
        height=420,
        elem_id="inpaint_editor",
    )
    return editor, upload


def _build_mask_options() -> dict[Component, str]:
    """Mask blur, masked content, inpaint area, invert and padding, by request field."""
    blur = fields.slider(
        InpaintRequest, "mask_blur", label="Mask blur",
        info="Soft edge, in px, inside the painted area; outside stays exact",
        elem_id="inpaint_mask_blur",
    )  # fmt: skip
    with gr.Row():
        content = gr.Radio(
            MASKED_CONTENT, value="original", label="Masked content",
            info="What the masked area starts from", elem_id="inpaint_masked_content",
        )  # fmt: skip
        area = gr.Radio(
            AREAS, value="whole picture", label="Inpaint area",
            info="Only masked: work on a crop around the mask at full resolution (small fixes)",
            elem_id="inpaint_area",
        )  # fmt: skip
    with gr.Row():
        invert = gr.Checkbox(label="Invert mask (repaint everything else)", elem_id="inpaint_invert")
        padding = fields.slider(
            InpaintRequest, "only_masked_padding", step=4, label="Only-masked padding",
            info="Context around the mask, px",
            elem_id="inpaint_padding",
        )  # fmt: skip
    return {
        blur: "mask_blur",
        content: "masked_content",
        area: "inpaint_area",
        invert: "invert_mask",
        padding: "only_masked_padding",
    }


def _build_outpaint() -> tuple[gr.Button, dict[Component, str]]:
    """The Outpaint accordion: its button, and its widgets by the names `outpaint_request` reads."""
    with gr.Accordion("Outpaint: extend the canvas", open=False):
        with gr.Row():
            left = gr.Slider(0, 1024, value=0, step=8, label="Left", elem_id="outpaint_left")
            right = gr.Slider(0, 1024, value=0, step=8, label="Right", elem_id="outpaint_right")
        with gr.Row():
            top = gr.Slider(0, 1024, value=0, step=8, label="Top", elem_id="outpaint_top")
            bottom = gr.Slider(0, 1024, value=0, step=8, label="Bottom", elem_id="outpaint_bottom")
        aspect = gr.Dropdown(
            list(ASPECTS), value="by the sides above", label="…or extend to an aspect ratio",
            elem_id="outpaint_aspect",
        )  # fmt: skip
        prefill = gr.Radio(
            ["edge stretch", "noise"], value="edge stretch", label="Pre-fill the new area",
            elem_id="outpaint_fill",
        )  # fmt: skip
        outpaint = gr.Button("Outpaint", elem_id="inpaint_outpaint")
    return outpaint, {
        left: "_left",
        right: "_right",
        top: "_top",
        bottom: "_bottom",
        prefill: "_fill",
        aspect: "_aspect",
    }


def _wire_generation(
    studio: Studio,
    tab: TabParts,
    extra: dict[Component, str],
    erase: gr.Button,
    outpaint: gr.Button,
    outpaint_extra: dict[Component, str],
) -> None:
    """Generate, Erase (the masked area refilled, no prompt) and Outpaint."""
    controls, results = tab.controls, tab.results

    def prepare(values: dict[str, Any]) -> dict[str, Any]:
        source, mask = _source_and_mask(values.pop("_editor"), values.pop("_mask_upload"))
        return {**values, "init_image": encode_png(source), "mask": encode_png(mask)}

    def outpaint_request(**values: Any) -> InpaintRequest:
        amounts = {side: int(values.pop(f"_{side}")) for side in ("left", "right", "top", "bottom")}
        fill = values.pop("_fill")
        ratio = ASPECTS.get(values.pop("_aspect"))
        source, _ = _source_and_mask(values.pop("_editor"), None)
        values.pop("_mask_upload")
        for fixed in ("width", "height", "masked_content", "inpaint_area", "invert_mask"):
            values.pop(fixed)
        try:
            return requests.outpaint_request(encode_png(source), fill=fill, aspect=ratio, **amounts, **values)
        except ValidationError:
            raise  # reported field by field by the caller
        except ValueError as exc:
            raise gr.Error(f"{exc}. Set how many pixels to add on at least one side.") from None

    wire(studio, controls, results, InpaintRequest, extra=extra, prepare=prepare)
    # Erase: refill the masked area from its surroundings, no prompt (object removal)
    wire(
        studio, controls, results, InpaintRequest, extra=extra, prepare=prepare, trigger=erase,
        overrides={"prompt": "", "negative_prompt": "", "masked_content": "fill", "denoising_strength": 1.0},
    )  # fmt: skip
    wire(
        studio,
        controls,
        results,
        outpaint_request,
        extra={**extra, **outpaint_extra},
        trigger=outpaint,
    )


def _wire_helpers(
    studio: Studio, controls: Controls, editor: gr.ImageEditor, hint: gr.Markdown, use_sibling: gr.Button
) -> None:
    """The inpainting sibling hint, and width × height from an uploaded picture."""
    controls.model.change(
        lambda m: sibling_hint(studio, m),
        inputs=controls.model,
        outputs=[hint, use_sibling],
        api_visibility="private",
    )
    use_sibling.click(
        lambda m: _sibling_of(studio, m) or gr.skip(),
        inputs=controls.model,
        outputs=controls.model,
        api_visibility="private",
    )

    def size_from_editor(value: dict | None) -> tuple[Any, Any]:
        background = (value or {}).get("background")
        if background is None:
            return gr.skip(), gr.skip()
        return working_size(*background.size)

    editor.upload(
        size_from_editor, inputs=editor, outputs=[controls.width, controls.height], api_visibility="private"
    )


def uploaded_picture(path: str | None) -> tuple[Any, Any, Any]:
    """The editor's new value (the uploaded file as its background) and width × height from its size."""
    if not path:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        picture = decode_image(Path(path).read_bytes())
    except (OSError, ImageInputError) as exc:
        raise gr.Error(str(exc), title="Upload a picture") from None
    width, height = working_size(*picture.size)
    return path, width, height


def _wire_upload(upload: gr.UploadButton, editor: gr.ImageEditor, controls: Controls) -> None:
    """ "Upload a picture": the server puts the file into the editor (as "Send to inpaint" does), which shows
    it whenever it is ready, however long it takes to set itself up."""
    upload.upload(
        uploaded_picture,
        inputs=upload,
        outputs=[editor, controls.width, controls.height],
        api_visibility="private",
    )
