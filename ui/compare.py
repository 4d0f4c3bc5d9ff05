"""Compare two results (or a result and its source picture) with a before/after slider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

SOURCE_TABS = ("img2img", "inpaint")  # tabs whose results have a source picture to compare with


@dataclass
class CompareParts:
    set_a: gr.Button
    set_b: gr.Button
    with_source: gr.Button | None
    slider: gr.ImageSlider
    a: gr.State  # path of image A
    b: gr.State


def build(prefix: str) -> CompareParts:
    """The Compare buttons (placed where the caller is: a row of the picked picture's tools, say) and the
    slider (hidden until there is something to compare)."""
    set_a = gr.Button("Compare: set A", size="sm", elem_id=f"{prefix}_compare_a")
    set_b = gr.Button("Compare: set B", size="sm", elem_id=f"{prefix}_compare_b")
    with_source = (
        gr.Button("Compare with source", size="sm", elem_id=f"{prefix}_compare_source")
        if prefix in SOURCE_TABS
        else None
    )
    slider = gr.ImageSlider(
        label="Compare (drag the handle): A | B", type="filepath", format="png", interactive=False,
        visible=False, elem_id=f"{prefix}_compare", render=False,
    )  # fmt: skip
    return CompareParts(set_a, set_b, with_source, slider, gr.State(""), gr.State(""))


def source_picture(value: Any) -> Image.Image | None:
    """The source picture in an image widget's value (a picture, or an editor's dict with a background)."""
    if isinstance(value, dict):
        value = value.get("background") or value.get("composite")
    if isinstance(value, str) and value:
        with Image.open(value) as picture:
            return picture.convert("RGB")
    return value if isinstance(value, Image.Image) else None


def wire(parts: CompareParts, selected: gr.State, source: gr.components.Component | None = None) -> None:
    """ "set A" / "set B" take the selected result; "with source" puts the tab's source picture as A."""

    def shown(a: str, b: str) -> gr.ImageSlider:
        return gr.ImageSlider(value=(a or b, b or a), visible=True)

    def on_a(path: str, b: str):
        if not path:
            raise gr.Error("Click a result first.")
        return path, shown(path, b)

    def on_b(path: str, a: str):
        if not path:
            raise gr.Error("Click a result first.")
        return path, shown(a, path)

    parts.set_a.click(
        on_a,
        inputs=[selected, parts.b],
        outputs=[parts.a, parts.slider],
        api_visibility="private",
        queue=False,
    )
    parts.set_b.click(
        on_b,
        inputs=[selected, parts.a],
        outputs=[parts.b, parts.slider],
        api_visibility="private",
        queue=False,
    )
    if parts.with_source is not None and source is not None:

        def on_source(value: Any, path: str):
            picture = source_picture(value)
            if picture is None:
                raise gr.Error("There is no source picture in this tab.")
            if not path:
                raise gr.Error("Click a result first.")
            with Image.open(path) as result:
                size = result.size
            # the result may have another size than the source (img2img resizes): compare at the result's
            return gr.ImageSlider(value=(picture.resize(size, Image.Resampling.LANCZOS), path), visible=True)

        parts.with_source.click(
            on_source, inputs=[source, selected], outputs=parts.slider, api_visibility="private"
        )
