"""The "Hires fix" accordion of the txt2img tab: A1111's first pass, upscale, img2img second pass.

Its widgets go into `controls.fields` (so requests and remembered settings get them); a line under them shows
the size the picture will have, or what is wrong with the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.hires import DEFAULT_HR_UPSCALER, hires_size
from core.requests import MAX_SIZE, MIN_SIZE, Txt2ImgRequest
from studio import Studio
from ui import fields


@dataclass
class HiresParts:
    enable: gr.Checkbox
    upscaler: gr.Dropdown
    scale: gr.Slider
    steps: gr.Slider
    denoising: gr.Slider
    resize_x: gr.Slider
    resize_y: gr.Slider
    size_note: gr.Markdown


def size_note(enabled: bool, width: int, height: int, scale: float, resize_x: int, resize_y: int) -> str:
    """ "512×512 → 1024×1024", or the reason the sizes do not work."""
    if not enabled:
        return ""
    try:
        size = hires_size(
            int(width), int(height), scale=float(scale), resize_x=int(resize_x or 0), resize_y=int(resize_y or 0),
            min_size=MIN_SIZE, max_size=MAX_SIZE,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        return f"⚠ {exc}"
    return f"{int(width)}×{int(height)} → {size.target[0]}×{size.target[1]}"


def build(studio: Studio, controls: Any, prefix: str = "txt2img") -> HiresParts:
    """The accordion, its widgets added to `controls.fields` (call after build_settings)."""
    upscalers = studio.catalog.hires_upscalers()
    with gr.Accordion("Hires fix", open=False, elem_id=f"{prefix}_hires"):
        enable = gr.Checkbox(
            False, label="Hires fix", elem_id=f"{prefix}_enable_hr",
            info="Make the picture at the size above, upscale it, then repaint the details at the larger size",
        )  # fmt: skip
        with gr.Row():
            upscaler = gr.Dropdown(
                upscalers, value=DEFAULT_HR_UPSCALER, label="Upscaler", elem_id=f"{prefix}_hr_upscaler",
                info="Latent modes keep the latents (fast, need denoising ≥ 0.5); others upscale the picture",
            )  # fmt: skip
            refresh = gr.Button("↻", elem_id=f"{prefix}_hr_refresh", scale=0, min_width=40)
        with gr.Row():
            steps = fields.slider(
                Txt2ImgRequest, "hr_second_pass_steps", label="Hires steps", elem_id=f"{prefix}_hr_second_pass_steps",
                info="Steps of the second pass; 0 = the same as sampling steps",
            )  # fmt: skip
            denoising = fields.slider(
                Txt2ImgRequest, "denoising_strength", step=0.01, label="Denoising strength",
                elem_id=f"{prefix}_denoising_strength",
                info="How much the second pass repaints: low keeps the first pass, high invents new detail",
            )  # fmt: skip
        scale = fields.slider(
            Txt2ImgRequest, "hr_scale", step=0.05, label="Upscale by", elem_id=f"{prefix}_hr_scale",
            info="Used when both resize values are 0",
        )  # fmt: skip
        with gr.Row():
            resize_x = fields.slider(
                Txt2ImgRequest, "hr_resize_x", step=8, label="Resize width to", elem_id=f"{prefix}_hr_resize_x",
                info="0 = from the scale or the height",
            )  # fmt: skip
            resize_y = fields.slider(
                Txt2ImgRequest, "hr_resize_y", step=8, label="Resize height to", elem_id=f"{prefix}_hr_resize_y",
                info="0 = from the scale or the width",
            )  # fmt: skip
        note = gr.Markdown("", elem_id=f"{prefix}_hr_size")
    controls.fields.update(
        {
            enable: "enable_hr",
            upscaler: "hr_upscaler",
            scale: "hr_scale",
            steps: "hr_second_pass_steps",
            denoising: "denoising_strength",
            resize_x: "hr_resize_x",
            resize_y: "hr_resize_y",
        }
    )
    inputs = [enable, controls.width, controls.height, scale, resize_x, resize_y]
    for component in inputs:
        component.change(size_note, inputs=inputs, outputs=note, api_visibility="private", queue=False)
    refresh.click(
        lambda: gr.Dropdown(choices=studio.catalog.hires_upscalers(refresh=True)),
        outputs=upscaler,
        api_visibility="private",
        queue=False,
    )
    return HiresParts(enable, upscaler, scale, steps, denoising, resize_x, resize_y, note)
