"""The "Variation seed" accordion under the seed row: A1111's variation seed, its strength and seed resize.

Added to `controls.fields`, so requests (and remembered settings) get `subseed`, `subseed_strength`,
`seed_resize_from_w` and `seed_resize_from_h`. The tabs whose task can use them get it (txt2img, img2img and
inpaint: the noise added to the source is then the mix, see pipelines/img2img.py), each with its own ids
(`{tab}_subseed`, `{tab}_subseed_strength`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.requests import GenerationRequest
from ui import fields

TABS_WITH_VARIATIONS = frozenset({"txt2img", "img2img", "inpaint"})


@dataclass
class VariationParts:
    subseed: gr.Number
    strength: gr.Slider
    resize_w: gr.Slider
    resize_h: gr.Slider


def build(controls: Any, prefix: str) -> VariationParts | None:
    """The accordion for the tab `prefix`, its widgets added to `controls.fields` (None where it cannot run)."""
    if prefix not in TABS_WITH_VARIATIONS:
        return None
    with gr.Accordion("Variation seed", open=False, elem_id=f"{prefix}_variation"):
        with gr.Row():
            subseed = fields.number(
                GenerationRequest, "subseed", precision=0, label="Variation seed", scale=4,
                elem_id=f"{prefix}_subseed",
                info="A second seed whose noise is mixed into the seed's; -1 = random",
            )  # fmt: skip
            random_subseed = gr.Button(
                "Random", elem_id=f"{prefix}_random_subseed", scale=1, min_width=40, size="sm"
            )
        strength = fields.slider(
            GenerationRequest, "subseed_strength", step=0.01, label="Variation seed strength",
            info="0 = the seed's picture, 1 = the variation seed's; 0.05–0.2 gives close variations",
            elem_id=f"{prefix}_subseed_strength",
        )  # fmt: skip
        with gr.Row():
            resize_w = fields.slider(
                GenerationRequest, "seed_resize_from_w", step=8, label="Resize seed from width",
                info="0 = off; the width the seed was first used at, to keep its composition",
                elem_id=f"{prefix}_seed_resize_from_w",
            )  # fmt: skip
            resize_h = fields.slider(
                GenerationRequest, "seed_resize_from_h", step=8, label="Resize seed from height",
                info="0 = off; set both or neither", elem_id=f"{prefix}_seed_resize_from_h",
            )  # fmt: skip
    random_subseed.click(lambda: -1, outputs=subseed, api_visibility="private", queue=False)
    controls.fields.update(
        {
            subseed: "subseed",
            strength: "subseed_strength",
            resize_w: "seed_resize_from_w",
            resize_h: "seed_resize_from_h",
        }
    )
    return VariationParts(subseed=subseed, strength=strength, resize_w=resize_w, resize_h=resize_h)
