"""The img2img tab: a source picture pushed toward the prompt."""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from core.images import encode_png
from core.requests import Img2ImgRequest, working_size
from studio import Studio
from ui import fields, variations, xyz
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

RESIZE_MODES = ["just resize", "crop and resize", "resize and fill"]


def size_for(image: Image.Image | None) -> tuple[Any, Any]:
    """Width and height sliders set to the picture's size."""
    if image is None:
        return gr.skip(), gr.skip()
    return working_size(image.width, image.height)


def build(studio: Studio) -> tuple[TabParts, gr.Image]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320, elem_classes=SETTINGS_COLUMN):
            image = gr.Image(
                label="Source image (upload, paste, or send one from another tab)",
                type="pil",
                sources=["upload", "clipboard"],
                format="png",
                height=300,
                elem_id="img2img_image",
            )
            controls = build_prompts(studio, "img2img")
            strength = fields.slider(
                Img2ImgRequest, "denoising_strength", step=0.01, label="Denoising strength",
                info="How much to change: 0 keeps the picture, 1 repaints it completely",
                elem_id="img2img_denoising",
            )  # fmt: skip
            build_quick(controls, "img2img")
            with advanced("img2img"):
                resize_mode = gr.Radio(
                    RESIZE_MODES, value="just resize", label="Resize mode",
                    info="How the picture is fitted to width × height", elem_id="img2img_resize_mode",
                )  # fmt: skip
                build_settings(studio, controls, "img2img")
                plot = xyz.build("img2img", Img2ImgRequest, x="denoising_strength", y="seed")
        with gr.Column(scale=6, min_width=320, elem_classes=RESULTS_COLUMN):
            results = build_results("img2img")
            variation_row = variations.build("img2img")
            build_history(results, "img2img")

    def source_fields(picture: Image.Image | None) -> dict[str, bytes]:
        if picture is None:
            raise gr.Error("Load the source picture the result was made from, then ask for variations.")
        return {"init_image": encode_png(picture)}

    def prepare(values: dict[str, Any]) -> dict[str, Any]:
        picture = values.pop("init_image")
        if picture is None:
            raise gr.Error("Upload or paste a source image first.")
        return {**values, "init_image": encode_png(picture)}

    extra = {image: "init_image", strength: "denoising_strength", resize_mode: "resize_mode"}
    wire(studio, controls, results, Img2ImgRequest, extra=extra, prepare=prepare)
    xyz.wire(studio, plot, controls, results, Img2ImgRequest, extra=extra, prepare=prepare)
    variations.wire(studio, variation_row, results, source=image, source_fields=source_fields)
    image.upload(size_for, inputs=image, outputs=[controls.width, controls.height], api_visibility="private")
    return TabParts(controls=controls, results=results), image
