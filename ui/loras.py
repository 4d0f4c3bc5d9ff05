"""The LoRA picker under a tab's prompts: choosing a LoRA adds ``<lora:name:1>`` to the prompt."""

from __future__ import annotations

import gradio as gr

from studio import Studio


def lora_choices(studio: Studio, refresh: bool = False) -> list[str]:
    """Names of the usable LoRA files (refused ones, e.g. pickles, are left out)."""
    return [lora.name for lora in studio.catalog.loras(refresh=refresh) if lora.refusal is None]


def add_lora_tag(prompt: str, name: str | None) -> str:
    """``prompt`` with ``<lora:name:1>`` appended (after a space unless it is empty or ends in whitespace)."""
    if not name:
        return prompt
    separator = "" if not prompt or prompt[-1].isspace() else " "
    return f"{prompt}{separator}<lora:{name}:1>"


def build(studio: Studio, prompt: gr.Textbox, prefix: str) -> gr.Dropdown:
    """A "LoRA" dropdown (elem_id ``{prefix}_lora``) with a refresh button; a choice goes into ``prompt``."""
    with gr.Row():
        dropdown = gr.Dropdown(
            choices=lora_choices(studio),
            value=None,
            label="LoRA",
            info="Adds <lora:name:1> to the prompt; edit the number to change its weight (files in models/Lora)",
            elem_id=f"{prefix}_lora",
            scale=8,
        )
        refresh = gr.Button(
            "↻", elem_id=f"{prefix}_refresh_loras", scale=1, min_width=40, size="sm",
            elem_classes=["easel-side-button"],
        )  # fmt: skip
    dropdown.input(
        lambda text, name: (add_lora_tag(text, name), None),
        inputs=[prompt, dropdown],
        outputs=[prompt, dropdown],
        api_visibility="private",
        queue=False,
    )
    refresh.click(
        lambda: gr.Dropdown(choices=lora_choices(studio, refresh=True), value=None),
        outputs=dropdown,
        api_visibility="private",
        queue=False,
    )
    return dropdown
