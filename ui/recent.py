"""A minimal gallery view: the most recent images, newest first, with a prompt search."""

from __future__ import annotations

import gradio as gr

from studio import Studio

PAGE = 60


def build(studio: Studio, tab: gr.Tab) -> gr.Gallery:
    with gr.Row():
        search = gr.Textbox(
            label="Search prompts",
            placeholder="words from the prompt, then Enter",
            elem_id="gallery_search",
            scale=6,
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
    details = gr.Textbox(label="Parameters", lines=4, interactive=False, elem_id="gallery_details")
    infotexts = gr.State([])

    def show(text: str):
        images = studio.gallery.search(text, limit=PAGE) if text.strip() else studio.recent_images(limit=PAGE)
        items = [
            (str(studio.image_path(i.id)), f"{i.created[:19].replace('T', ' ')} · seed {i.seed}")
            for i in images
        ]
        return items, [i.infotext for i in images]

    def on_select(texts: list[str], evt: gr.SelectData) -> str:
        index = evt.index if isinstance(evt.index, int) else 0
        return texts[index] if 0 <= index < len(texts) else ""

    search.submit(show, inputs=search, outputs=[grid, infotexts], api_visibility="private")
    refresh.click(show, inputs=search, outputs=[grid, infotexts], api_visibility="private")
    tab.select(show, inputs=search, outputs=[grid, infotexts], api_visibility="private")
    grid.select(on_select, inputs=infotexts, outputs=details, api_visibility="private", queue=False)
    return grid
