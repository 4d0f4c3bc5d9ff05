"""The widget groups a generating tab is made of, as typed records that the tab's modules pass around:
`Controls` (the settings column), `Results` (the results column) and `PresetTools` (preset picker, styles,
aspect ratio)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from studio import Studio
from ui import compare, history

Component = gr.components.Component

# Results galleries grow with their pictures (whole, never cropped) instead of scrolling inside a fixed box.
RESULTS_HEIGHT = "fit-content"


@dataclass
class PresetTools:
    """The widgets ui.presets adds to a tab (`ui.presets.connect` wires them once the settings exist)."""

    studio: Studio
    prefix: str
    preset: gr.Dropdown
    apply: gr.Button
    description: gr.Markdown
    styles: gr.Dropdown
    final: gr.Textbox
    aspect: gr.Radio | None = None


@dataclass
class Controls:
    """The left column's common settings; `fields` maps each widget to its request field."""

    model: gr.Dropdown
    prompt: gr.Textbox
    negative: gr.Textbox
    fields: dict[Component, str] = field(default_factory=dict)
    # added by build_settings
    seed: gr.Number | None = None
    width: gr.Slider | None = None
    height: gr.Slider | None = None
    reuse_seed: gr.Button | None = None
    presets: PresetTools | None = None  # preset picker, styles, aspect ratio


@dataclass
class Results:
    """The right column: buttons, progress, results and their info."""

    generate: gr.Button
    interrupt: gr.Button
    status: gr.HTML
    preview: gr.Image
    gallery: gr.Gallery
    info: gr.Textbox
    send_img2img: gr.Button
    send_inpaint: gr.Button
    send_retouch: gr.Button
    job_id: gr.State
    last_seed: gr.State
    infotexts: gr.State
    paths: gr.State
    selected: gr.State  # path of the selected result (the first one until another is clicked)
    compare: compare.CompareParts | None = None
    cancel_queued: gr.Button | None = None
    history: history.HistoryParts | None = None  # added by the tab (ui.generation.build_history)
