"""A minimal gallery view: the most recent images, newest first, with a prompt search."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from studio import Studio
from ui.common import user_of

PAGE = 60


@dataclass
class RecentView:
    grid: gr.Gallery
    selected: gr.State  # path of the clicked image
    send_img2img: gr.Button
    send_inpaint: gr.Button


def build(studio: Studio, tab: gr.Tab) -> RecentView:
    with gr.Row():
        search = gr.Textbox(
            label="Search prompts",
            placeholder="words from the prompt, then Enter",
            elem_id="gallery_search",
            scale=6,
        )
        scope = gr.Radio(
            ["everyone", "mine"], value="everyone", label="Made by", elem_id="gallery_scope", scale=2
        )
        refresh = gr.Button("↻ Refresh", elem_id="gallery_refresh", scale=1, min_width=80)
    grid = gr.Gallery(
        label="Recent images",
        columns=[3, 4, 6],
        height=640,
        object_fit="contain",
        allow_preview=True,
        format="png",
        elem_id="gallery_grid",
        buttons=["download", "fullscreen"],
        interactive=False,
    )
    with gr.Row():
        send_img2img = gr.Button("Send to img2img", size="sm", elem_id="gallery_send_img2img")
        send_inpaint = gr.Button("Send to inpaint", size="sm", elem_id="gallery_send_inpaint")
    details = gr.Textbox(label="Parameters", lines=4, interactive=False, elem_id="gallery_details")
    infotexts = gr.State([])
    paths = gr.State([])
    selected = gr.State("")

    def show(text: str, made_by: str, request: gr.Request):
        author = user_of(request) if made_by == "mine" else None
        images = studio.search_images(text, limit=PAGE, author=author)
        files = [str(studio.image_path(i.id)) for i in images]
        items = [
            (f, f"{i.created[:19].replace('T', ' ')} · seed {i.seed}")
            for f, i in zip(files, images, strict=True)
        ]
        return items, [i.infotext for i in images], files

    def on_select(texts: list[str], files: list[str], evt: gr.SelectData) -> tuple[str, str]:
        index = evt.index if isinstance(evt.index, int) else 0
        if not 0 <= index < len(texts):
            return "", ""
        return texts[index], files[index]

    outputs = [grid, infotexts, paths]
    inputs = [search, scope]
    search.submit(show, inputs=inputs, outputs=outputs, api_visibility="private")
    refresh.click(show, inputs=inputs, outputs=outputs, api_visibility="private")
    scope.change(show, inputs=inputs, outputs=outputs, api_visibility="private")
    tab.select(show, inputs=inputs, outputs=outputs, api_visibility="private")
    grid.select(
        on_select,
        inputs=[infotexts, paths],
        outputs=[details, selected],
        api_visibility="private",
        queue=False,
    )
    return RecentView(grid=grid, selected=selected, send_img2img=send_img2img, send_inpaint=send_inpaint)
