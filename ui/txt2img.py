"""The txt2img tab: prompt and settings on the left, results on the right."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core.requests import Txt2ImgRequest
from studio import Studio
from ui import hires, variations, xyz
from ui.controls import Controls, Results
from ui.generation import (
    advanced,
    build_history,
    build_prompts,
    build_quick,
    build_results,
    build_settings,
    wire,
)

SETTINGS_COLUMN = ["easel-settings"]
RESULTS_COLUMN = ["easel-results-column"]


@dataclass
class TabParts:
    """What other parts of the page connect to (send-to buttons, remembered settings)."""

    controls: Controls
    results: Results


def build(studio: Studio) -> TabParts:
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320, elem_classes=SETTINGS_COLUMN):
            controls = build_prompts(studio, "txt2img")
            build_quick(controls, "txt2img")
            with advanced("txt2img"):
                build_settings(studio, controls, "txt2img")
                hires.build(studio, controls)
                plot = xyz.build("txt2img", Txt2ImgRequest)
        with gr.Column(scale=6, min_width=320, elem_classes=RESULTS_COLUMN):
            results = build_results("txt2img")
            variation_row = variations.build("txt2img")
            build_history(results, "txt2img")
    wire(studio, controls, results, Txt2ImgRequest)
    xyz.wire(studio, plot, controls, results, Txt2ImgRequest)
    variations.wire(studio, variation_row, results)
    return TabParts(controls=controls, results=results)
