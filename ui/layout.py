"""The page: header line, demo banner, tabs, keyboard shortcuts and the Gradio API endpoints."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from core.requests import working_size
from gallery import private_paths
from studio import Studio
from ui import api_endpoints, gallery, img2img, inpaint, remember, retouch, txt2img

CSS = """
#easel_header { font-size: 0.9rem; opacity: 0.85; }
#unsafe_banner { background: #f8d7da; color: #58151c; border: 1px solid #f1aeb5; border-radius: 6px;
                 padding: 6px 10px; font-weight: 600; }
#demo_banner { background: #fff3cd; color: #664d03; border: 1px solid #ffe69c; border-radius: 6px;
               padding: 6px 10px; font-weight: 600; }
@media (prefers-color-scheme: dark) { #unsafe_banner { background: #f8d7da; color: #58151c; border: 1px solid #f1aeb5; border-radius: 6px;
                 padding: 6px 10px; font-weight: 600; }
#demo_banner { background: #332701; color: #ffda6a; border-color: #997404; } }
.easel-status { font-size: 0.9rem; }
.easel-bar { height: 6px; background: var(--neutral-200, #ddd); border-radius: 3px; margin-top: 4px; }
.easel-bar > div { height: 100%; background: var(--color-accent, #f97316); border-radius: 3px; }
.easel-status[data-state="failed"] { color: var(--error-text-color, #b91c1c); }
/* results galleries: pictures whole (also the small strip under an opened picture), tiles start small */
.easel-results .thumbnails img { object-fit: contain; }
.easel-results .grid-wrap { min-height: 0; }
.easel-results .grid-wrap .thumbnail-lg { aspect-ratio: auto; height: auto; }
.easel-results .grid-wrap .thumbnail-lg > img { height: auto; }
[id$="_variations_gallery"] .thumbnail-lg > img, [id$="_variations_gallery"] .thumbnails img {
  object-fit: contain !important; }
[id$="_variations_gallery"] .grid-wrap.fixed-height { min-height: 0; max-height: none; }
/* gallery tab: tiles of one size, the picked picture as large as its box allows */
#gallery_grid .thumbnail-lg { aspect-ratio: 1; }
#gallery_detail_image .image-frame { width: 100%; }
#gallery_detail_image .image-frame img { object-fit: contain; }
/* retouch: transparency shows as a checkerboard under the result (the slider sets its own inline background) */
#retouch_result img, #retouch_batch_gallery img {
  background: repeating-conic-gradient(#c8c8c8 0% 25%, #f4f4f4 0% 50%) 50% / 16px 16px !important; }
/* small buttons beside a field sit level with its input box (centred on it), not with its label:
   the block's bottom padding (12px) + half of (input 42px - small button 26px) */
.easel-side-button, [id$="_random_seed"], [id$="_reuse_seed"], [id$="_random_subseed"] {
  align-self: flex-end; margin-bottom: 20px !important; }
/* a generating tab: Generate, Interrupt and the status line stay on screen while the page scrolls */
.gradio-container { overflow: clip !important; }  /* clips as "hidden" does, without stopping "sticky" */
.easel-results-column { align-self: stretch; }
.easel-settings, .easel-results-column { gap: 12px !important; }
.easel-settings > .block:has(> [data-testid="markdown-wrapper"] span.md:empty) { display: none; }
.easel-actions { position: sticky; top: 0; z-index: 30; flex-grow: 0 !important; gap: 4px !important;
                 background: var(--body-background-fill); padding: 6px 0; }
.easel-cancel-queued { align-self: center; }
.easel-status-line:not(:has(.easel-status)) { display: none !important; }
.easel-status-line .easel-status { padding: 2px 2px 0; }
.easel-history .grid-wrap { min-height: 0; }
/* inpaint: pictures come in through "Upload a picture" (the editor's own upload is off), so say so */
#inpaint_editor .empty.wrap > div:first-child { font-size: 0; }
#inpaint_editor .empty.wrap > div:first-child::after { content: "Upload a picture with the button above";
                                                       font-size: 1rem; }
#inpaint_editor .empty.wrap > .or + div { font-size: 0; }
#inpaint_editor .empty.wrap > .or + div::after { content: "paste one, or send one from another tab";
                                                 font-size: 1rem; }
/* phones: the actions bar sits at the bottom of the screen, visible without scrolling */
@media (max-width: 720px) {
  .easel-actions { position: fixed; top: auto; left: 0; right: 0; bottom: 0; padding: 8px 12px;
                   box-shadow: 0 -2px 10px rgba(0, 0, 0, 0.18); }
  .gradio-container { padding-bottom: 112px !important; }  /* the page's end stays clear of the bar */
  .gradio-container .main.fillable { padding-left: 8px !important; padding-right: 8px !important; }
  .easel-action-buttons > button { min-width: 0 !important; }
  .easel-action-buttons > .easel-cancel-queued { flex-basis: 100%; }
  /* side-by-side fields get a sensible width (or a line of their own): help texts wrap by phrase */
  .form > .block:not(.easel-side-button), .row > .block:not(button), .row > .column {
    min-width: min(100%, 220px) !important; }
  .row > .form { flex-basis: 100% !important; }
  .head:has(.info-text) { flex-wrap: wrap; }
  .head:has(.info-text) > label { flex: 1 1 100%; }
  /* the tab bar: small tabs, wrapping onto a second line rather than hiding tabs behind "⋯" */
  .tab-wrapper .tab-container { flex-wrap: wrap; height: auto; }
  .tab-wrapper .tab-container button { padding: 4px 5px !important; font-size: 0.78rem !important; }
}
"""

# Ctrl+Enter in a prompt box generates; Esc interrupts (as in A1111).
JS = """
() => {
  document.addEventListener('keydown', (e) => {
    const tab = ['txt2img', 'img2img', 'inpaint', 'retouch'].find(t => {
      const el = document.getElementById('tab_' + t);
      return el && el.offsetParent !== null;
    });
    if (!tab) return;
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      document.getElementById(tab + (tab === 'retouch' ? '_run' : '_generate'))?.click();
    } else if (e.key === 'Escape') {
      document.getElementById(tab + '_interrupt')?.click();
    }
  });
}
"""


@dataclass(frozen=True)
class PageOptions:
    title: str = "Easel"
    open_to_all: bool = False  # reachable from other computers without logins (--unsafe-no-auth)


def header_text(studio: Studio) -> str:
    status = studio.catalog.status()
    loaded = ", ".join(status.loaded_models) or "none yet"
    memory = ""
    if status.memory_used_mb is not None and status.memory_total_mb:
        memory = f" · VRAM {status.memory_used_mb / 1024:.1f}/{status.memory_total_mb / 1024:.1f} GB"
    return f"**Easel** · device: {html.escape(status.device)}{memory} · loaded: {html.escape(loaded)}"


def build_page(studio: Studio, options: PageOptions | None = None) -> gr.Blocks:
    options = options or PageOptions()
    models = studio.catalog.models()
    demo_only = all(m.demo for m in models if not m.refusal)
    with gr.Blocks(title=options.title, analytics_enabled=False) as page:
        header = gr.Markdown(header_text(studio), elem_id="easel_header")
        if demo_only:
            gr.HTML(
                '<div id="demo_banner">Demo mode: the only model is a tiny one with random weights — every control '
                "works, but pictures are noise. Put a .safetensors checkpoint (SD 1.x, SD 2.x or SDXL) into "
                "models/ and press ↻ next to the model list.</div>"
            )
        if options.open_to_all:
            gr.HTML(
                '<div id="unsafe_banner">Open to everyone: this server is reachable from other computers and '
                "asks for no login (--unsafe-no-auth). Anyone who can reach it can use it and see the gallery.</div>"
            )
        refused = [m for m in models if m.refusal]
        if refused:
            lines = "\n".join(f"- `{m.name}`: {m.refusal}" for m in refused)
            with gr.Accordion(f"{len(refused)} file(s) in models/ cannot be used", open=False):
                gr.Markdown(lines, elem_id="refused_models")
        with gr.Tabs() as tabs:
            with gr.Tab("txt2img", id="txt2img", elem_id="tab_txt2img"):
                txt2img_tab = txt2img.build(studio)
            with gr.Tab("img2img", id="img2img", elem_id="tab_img2img"):
                img2img_tab, img2img_image = img2img.build(studio)
            with gr.Tab("inpaint", id="inpaint", elem_id="tab_inpaint"):
                inpaint_tab, inpaint_editor = inpaint.build(studio)
            with gr.Tab("Retouch", id="retouch", elem_id="tab_retouch"):
                retouch_tab = retouch.build(studio)
            with gr.Tab("Gallery", id="gallery", elem_id="tab_gallery") as gallery_tab:
                targets = {"txt2img": txt2img_tab, "img2img": img2img_tab, "inpaint": inpaint_tab}
                recent_view = gallery.build(studio, tabs, gallery_tab, targets)
            with gr.Tab("PNG Info", id="pnginfo", elem_id="tab_pnginfo"):
                gallery.build_pnginfo(tabs, txt2img_tab, studio)
        senders = [
            (t.results.selected, t.results.send_img2img, t.results.send_inpaint)
            for t in (txt2img_tab, img2img_tab, inpaint_tab)
        ]
        senders.append((recent_view.selected, recent_view.send_img2img, recent_view.send_inpaint))
        img2img_size = [img2img_tab.controls.width, img2img_tab.controls.height]
        inpaint_size = [inpaint_tab.controls.width, inpaint_tab.controls.height]
        for selected, to_retouch in [
            (t.results.selected, t.results.send_retouch) for t in (txt2img_tab, img2img_tab, inpaint_tab)
        ] + [(recent_view.selected, recent_view.send_retouch)]:
            to_retouch.click(
                send_to_retouch, inputs=selected, outputs=[tabs, retouch_tab.image], api_visibility="private"
            )
        for selected, to_img2img, to_inpaint in senders:
            to_img2img.click(
                lambda path: send_to("img2img", path), inputs=selected, outputs=[tabs, img2img_image, *img2img_size],
                api_visibility="private",
            )  # fmt: skip
            to_inpaint.click(
                lambda path: send_to("inpaint", path), inputs=selected, outputs=[tabs, inpaint_editor, *inpaint_size],
                api_visibility="private",
            )  # fmt: skip
        for key, tab_parts in (("txt2img", txt2img_tab), ("img2img", img2img_tab), ("inpaint", inpaint_tab)):
            remember.remember(
                page, key, tab_parts.controls.fields, tab_parts.results.generate, skip=("seed",)
            )
        api_endpoints.register(studio)
        timer = gr.Timer(5.0)
        timer.tick(lambda: header_text(studio), outputs=header, api_visibility="private", queue=False)
    return page


def send_to(tab: str, path: str) -> tuple[object, ...]:
    """Open `tab` with the picture at `path` (a result or gallery file) and its size in the size sliders."""
    if not path:
        raise gr.Error("Click a result first, then send it.")
    with Image.open(path) as picture:
        width, height = working_size(*picture.size)
    return gr.Tabs(selected=tab), path, width, height


def send_to_retouch(path: str) -> tuple[object, ...]:
    """Open the Retouch tab with the picture at `path` (a result or gallery file, metadata and all)."""
    if not path:
        raise gr.Error("Click a result first, then send it.")
    return gr.Tabs(selected="retouch"), path


def launch_kwargs(outputs_dir: str, max_upload_mb: int) -> dict[str, object]:
    """Arguments for Blocks.launch() that every launch needs (theme, assets, safety limits)."""
    return {
        "css": CSS + gallery.CSS,
        "js": JS,
        "allowed_paths": [outputs_dir],
        "blocked_paths": [str(path) for path in private_paths(Path(outputs_dir))],  # the index, trash, …
        "max_file_size": f"{max_upload_mb}mb",
        "footer_links": ["api", "settings"],
        "show_error": False,
    }
