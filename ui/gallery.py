"""The Gallery tab: everything the team made — search, filters, pages, details, reuse, favourites, trash,
downloads — and the PNG Info tab that reads any picture's parameters."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import gradio as gr

from core.images import ImageInputError
from core.infotext import parse_infotext, request_fields_from_infotext
from core.pnginfo import read_text_chunks
from core.styles import Style
from gallery.query import GalleryQuery
from gallery.records import GalleryImage, ImageNotFound
from studio import Studio
from ui import cache_copies, xyz
from ui.common import refusals, user_of
from ui.controls import Component
from ui.txt2img import TabParts

PAGE_SIZE = 48
ALL = "all"
PICK_HINT = "Click an image to see everything about it."
CHECKER = "easel-checker"  # the class of picture boxes that show transparency as a checkerboard
CSS = f"""
/* gallery: transparent pictures on a checkerboard, in the grid and in the detail pane */
.{CHECKER} img {{
  background: repeating-conic-gradient(#c8c8c8 0% 25%, #f4f4f4 0% 50%) 50% / 16px 16px !important; }}
/* the checkerboard only under the picture itself, not the empty sides of its box (no false transparency) */
#gallery_detail_image .image-frame {{ display: flex; align-items: center; justify-content: center; height: 100%; }}
#gallery_detail_image .image-frame img {{ width: auto !important; height: auto !important; max-width: 100%;
  max-height: 100%; }}
#gallery_grid .thumbnail-item {{ display: flex; align-items: center; justify-content: center; }}
#gallery_grid .thumbnail-item > img {{ width: auto !important; height: auto !important; max-width: 100%;
  max-height: 100%; }}
/* phones: the grid as tall as its pictures (at most most of the screen), not a fixed empty box */
@media (max-width: 720px) {{
  #gallery_grid, #gallery_grid .grid-wrap {{ height: auto !important; min-height: 0; }}
  #gallery_grid .grid-wrap {{ max-height: 70vh; }}
}}
"""
_MARKDOWN_SPECIALS = str.maketrans({ch: "\\" + ch for ch in "\\`*_{}[]<>()#+-.!|~"})


@dataclass
class GalleryView:
    selected: gr.State  # path of the picked image (for the send-to buttons)
    send_img2img: gr.Button
    send_inpaint: gr.Button
    send_retouch: gr.Button


def _day(text: str, name: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise gr.Error(f"{name}: write the date as YYYY-MM-DD (e.g. 2026-11-25)") from None


def reuse_values(infotext: str, styles: Sequence[Style] = ()) -> dict[str, Any]:
    """Request field values from an infotext (the exact settings, seed included; with the known `styles`,
    the styles it names and the prompt as typed before them)."""
    parsed = parse_infotext(infotext)
    fields = request_fields_from_infotext(parsed, styles)
    strength = parsed.params.get("Denoising strength")
    if strength is not None:
        try:
            fields["denoising_strength"] = float(strength)
        except ValueError:
            pass
    return fields


def _star_label(starred: bool) -> str:
    return "★ Favourite" if starred else "☆ Favourite"


def _star_button(starred: bool) -> gr.Button:
    """The picked picture's star button: a filled, highlighted star while it is a favourite."""
    return gr.Button(_star_label(starred), variant="primary" if starred else "secondary")


def _plain(text: str) -> str:
    """`text` for Markdown, shown as written (a file name's `_` or `*` never turns into emphasis)."""
    return " ".join(text.split()).translate(_MARKDOWN_SPECIALS)


def grid_caption(image: GalleryImage) -> str:
    """A grid tile's caption: its author's own words first (title or prompt as typed), a ★ for favourites."""
    return f"{'★ ' if image.favourite else ''}{image.caption[:60] or f'#{image.id}'}"


def describe(image: GalleryImage) -> str:
    """The detail pane's line about a picture. A retouch says what was done to it (and a model and seed only
    when one of its steps sampled)."""
    made = f"{image.task} · model **{_plain(image.model or '?')}** · seed {image.seed}"
    if image.task == "retouch":
        made = f"Retouch: {_plain(image.ops or '?')}"
        if image.model:
            made += f" · model **{_plain(image.model)}** · seed {image.seed}"
    title = f" · **{_plain(image.title)}**" if image.title else ""
    return (
        f"**#{image.id}**{title} · {made} · {image.width}×{image.height} · by **{_plain(image.author or '?')}** · "
        f"{image.created[:19].replace('T', ' ')} UTC{' · ★ favourite' if image.favourite else ''}"
    )


def _exports_file(paths: Sequence[Path]) -> gr.File:
    return gr.File(value=[str(p) for p in paths] or None, visible=bool(paths))


def _cleared() -> tuple[Any, ...]:
    """Values for the detail pane's outputs (`_Widgets.detail_pane`) with no picture picked."""
    return 0, "", None, PICK_HINT, "", gr.DownloadButton(value=None), _exports_file([]), _star_button(False)


def fill(fields: Mapping[gr.components.Component, str], values: Mapping[str, Any]) -> list[Any]:
    """Values for `fields` in order: the known ones set, the rest left as they are."""
    return [values[name] if name in values else gr.skip() for name in fields.values()]


def build(studio: Studio, tabs: gr.Tabs, tab: gr.Tab, targets: Mapping[str, TabParts]) -> GalleryView:
    # 1. filters
    parts = _build_filters(studio)
    # 2. the grid and its pages; 3. the picked image
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            parts.update(_build_grid())
        with gr.Column(scale=2):
            parts.update(_build_picked())
    w = _Widgets(**parts, page_ids=gr.State([]), page_no=gr.State(0), current=gr.State(0), selected=gr.State(""),
                 undo_keys=gr.State([]))  # fmt: skip
    xyz.wire_gallery_tools(studio, w.iteration_tools, w.current)
    _wire_listing(studio, w, tab)
    # 4. actions on the picked image
    _wire_reuse(studio, w, tabs, targets)
    _wire_changes(studio, w)
    _wire_trash_and_selection(studio, w, tab)
    return GalleryView(
        selected=w.selected,
        send_img2img=w.send_img2img,
        send_inpaint=w.send_inpaint,
        send_retouch=w.send_retouch,
    )


@dataclass
class _Widgets:
    """The gallery tab's widgets and states."""

    search: gr.Textbox
    model: gr.Dropdown
    task: gr.Dropdown
    scope: gr.Radio
    favourites: gr.Checkbox
    date_from: gr.Textbox
    date_to: gr.Textbox
    order: gr.Radio
    refresh: gr.Button
    grid: gr.Gallery
    prev_page: gr.Button
    page_label: gr.Markdown
    next_page: gr.Button
    selection: gr.CheckboxGroup
    zip_button: gr.Button
    fav_selected: gr.Button
    delete_selected: gr.Button
    zip_file: gr.File
    detail: gr.Image
    meta: gr.Markdown
    details: gr.Textbox
    exports: gr.File
    reuse: gr.Button
    send_img2img: gr.Button
    send_inpaint: gr.Button
    send_retouch: gr.Button
    favourite: gr.Button
    download: gr.DownloadButton
    delete: gr.Button
    undo: gr.Button
    empty: gr.Button
    everyone_trash: gr.Checkbox
    iteration_tools: xyz.GalleryTools
    page_ids: gr.State
    page_no: gr.State
    current: gr.State
    selected: gr.State
    undo_keys: gr.State

    @property
    def filters(self) -> list[Component]:
        return [self.search, self.model, self.task, self.scope, self.favourites, self.date_from, self.date_to,
                self.order]  # fmt: skip

    @property
    def listing(self) -> list[Component]:
        return [self.grid, self.page_ids, self.page_no, self.page_label, self.selection]

    @property
    def detail_pane(self) -> list[Component]:
        """The picked picture: its id and path, picture, line, parameters, download, exports, star."""
        return [self.current, self.selected, self.detail, self.meta, self.details, self.download, self.exports,
                self.favourite]  # fmt: skip


def _build_filters(studio: Studio) -> dict[str, Any]:
    with gr.Row():
        search = gr.Textbox(
            label="Search",
            placeholder="prompt, title, file name or step; Enter",
            elem_id="gallery_search",
            scale=4,
        )
        facets = studio.gallery.facets()
        model = gr.Dropdown(
            [ALL, *facets.get("model", [])], value=ALL, label="Model", elem_id="gallery_model", scale=2
        )
        task = gr.Dropdown(
            [ALL, "txt2img", "img2img", "inpaint", "retouch", "grid"],
            value=ALL,
            label="Task",
            elem_id="gallery_task",
            scale=1,
        )
    with gr.Row():
        scope = gr.Radio(["everyone", "mine"], value="everyone", label="Made by", elem_id="gallery_scope")
        favourites = gr.Checkbox(label="Favourites only", elem_id="gallery_favourites")
        date_from = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="gallery_from", max_lines=1)
        date_to = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="gallery_to", max_lines=1)
        order = gr.Radio(
            ["newest first", "oldest first"], value="newest first", label="Sort", elem_id="gallery_sort"
        )
        refresh = gr.Button("↻ Refresh", elem_id="gallery_refresh", min_width=80)
    return {"search": search, "model": model, "task": task, "scope": scope, "favourites": favourites, "date_from": date_from, "date_to": date_to, "order": order, "refresh": refresh}  # fmt: skip


def _build_grid() -> dict[str, Any]:
    grid = gr.Gallery(
        label="Images", columns=4, fit_columns=False, height=620, object_fit="contain",
        allow_preview=False, format="webp", elem_id="gallery_grid", interactive=False, elem_classes=[CHECKER],
    )  # fmt: skip
    with gr.Row():
        prev_page = gr.Button("← Newer", size="sm", elem_id="gallery_prev")
        page_label = gr.Markdown("", elem_id="gallery_page")
        next_page = gr.Button("Older →", size="sm", elem_id="gallery_next")
    with gr.Accordion("Select several", open=False):
        selection = gr.CheckboxGroup([], label="Images on this page", elem_id="gallery_selection")
        with gr.Row():
            zip_button = gr.Button("Download as zip", size="sm", elem_id="gallery_zip")
            fav_selected = gr.Button("★ Favourite", size="sm", elem_id="gallery_favourite_selected")
            delete_selected = gr.Button(
                "Delete", size="sm", variant="stop", elem_id="gallery_delete_selected"
            )
        zip_file = gr.File(label="Zip", visible=False, elem_id="gallery_zip_file")
    return {"grid": grid, "prev_page": prev_page, "page_label": page_label, "next_page": next_page, "selection": selection, "zip_button": zip_button, "fav_selected": fav_selected, "delete_selected": delete_selected, "zip_file": zip_file}  # fmt: skip


def _build_picked() -> dict[str, Any]:
    detail = gr.Image(
        label="Image",
        type="filepath",
        interactive=False,
        format="png",
        height=460,
        elem_id="gallery_detail_image",
        elem_classes=[CHECKER],
    )
    meta = gr.Markdown(PICK_HINT, elem_id="gallery_meta")
    details = gr.Textbox(label="Parameters", lines=5, interactive=False, elem_id="gallery_details")
    exports = gr.File(
        label="Exported with it (SVG, logo pack)",
        file_count="multiple",
        interactive=False,
        visible=False,
        elem_id="gallery_exports",
    )
    with gr.Row():
        reuse = gr.Button("Reuse parameters", variant="primary", size="sm", elem_id="gallery_reuse")
        send_img2img = gr.Button("Send to img2img", size="sm", elem_id="gallery_send_img2img")
        send_inpaint = gr.Button("Send to inpaint", size="sm", elem_id="gallery_send_inpaint")
        send_retouch = gr.Button("Send to retouch", size="sm", elem_id="gallery_send_retouch")
    with gr.Row():
        favourite = gr.Button(_star_label(False), size="sm", elem_id="gallery_favourite")
        download = gr.DownloadButton("Download PNG", size="sm", elem_id="gallery_download")
        delete = gr.Button("Delete", size="sm", variant="stop", elem_id="gallery_delete")
    with gr.Row():
        undo = gr.Button("Undo delete", size="sm", visible=False, elem_id="gallery_undo")
        empty = gr.Button("Empty trash", size="sm", elem_id="gallery_empty_trash")
        everyone_trash = gr.Checkbox(
            label="Everyone's trash",
            info="Admins: Empty trash deletes every user's trashed pictures, not only yours",
            visible=False,
            elem_id="gallery_trash_everyone",
        )
    iteration_tools = xyz.build_gallery_tools()
    return {"detail": detail, "meta": meta, "details": details, "exports": exports, "reuse": reuse, "send_img2img": send_img2img, "send_inpaint": send_inpaint, "send_retouch": send_retouch, "favourite": favourite, "download": download, "delete": delete, "undo": undo, "empty": empty, "everyone_trash": everyone_trash, "iteration_tools": iteration_tools}  # fmt: skip


def _query(values: Sequence[Any], page: int, user: str) -> GalleryQuery:
    text, model_v, task_v, scope_v, fav_v, from_v, to_v, order_v = values
    return GalleryQuery(
        text=text or "",
        model=None if model_v in (None, ALL) else model_v,
        task=None if task_v in (None, ALL) else task_v,
        author=user if scope_v == "mine" else None,
        favourites_only=bool(fav_v),
        date_from=_day(from_v, "From"),
        date_to=_day(to_v, "To"),
        newest_first=order_v != "oldest first",
        limit=PAGE_SIZE,
        offset=page * PAGE_SIZE,
    )


def _show(studio: Studio, page: int, request: gr.Request, *values: Any) -> tuple[Any, ...]:
    """The grid's page `page` under the filter `values` (the last page when it ran out), its ids, number and
    label, and the "Select several" choices."""
    result = studio.gallery.query(_query(values, max(page, 0), user_of(request)))
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    if page * PAGE_SIZE >= result.total > 0:  # the page ran out (after deletes): show the last one
        result = studio.gallery.query(_query(values, page, user_of(request)))
    items = [(str(studio.gallery.thumbnail(i.id)), grid_caption(i)) for i in result.items]
    choices = [(f"#{i.id} · {i.caption[:40]}", i.id) for i in result.items]
    label = f"page {page + 1} of {pages} · {result.total} image(s)"
    return items, [i.id for i in result.items], page, label, gr.CheckboxGroup(choices=choices, value=[])


def _picked_pane(studio: Studio, image_id: int) -> tuple[Any, ...]:
    """Values for the detail pane's outputs (`_Widgets.detail_pane`) showing picture `image_id`."""
    image = studio.gallery.get(image_id)
    path = str(studio.gallery.file_path(image.id))
    exports = _exports_file(studio.gallery.export_paths(image.id))
    return (image.id, path, path, describe(image), image.infotext, gr.DownloadButton(value=path), exports,
            _star_button(image.favourite))  # fmt: skip


def _wire_listing(studio: Studio, w: _Widgets, tab: gr.Tab) -> None:
    """Filters, refresh, pages, and picking an image in the grid."""
    filters, listing, pane = w.filters, w.listing, w.detail_pane
    search, model, task, scope, favourites = w.search, w.model, w.task, w.scope, w.favourites
    date_from, date_to, order, page_no = w.date_from, w.date_to, w.order, w.page_no

    def show(page: int, request: gr.Request, *values: Any) -> tuple[Any, ...]:
        return _show(studio, page, request, *values)

    def first_page(request: gr.Request, *values: Any) -> tuple[Any, ...]:
        return show(0, request, *values)

    def rescan(request: gr.Request, *values: Any) -> tuple[Any, ...]:
        changed = studio.gallery.sync()
        if changed:
            gr.Info(f"{changed} change(s) found in the outputs folder.")
        return show(0, request, *values)

    def let_go(current: int, ids: list[int]) -> tuple[Any, ...]:
        """After new filters: a picked picture they leave out is no longer shown."""
        return tuple([gr.skip()] * len(pane)) if current in (ids or []) else _cleared()

    def step_page(delta: int):
        def go(page: int, request: gr.Request, *values: Any):
            return show(page + delta, request, *values)

        return go

    listed = [w.refresh.click(rescan, inputs=filters, outputs=listing, api_visibility="private")]
    for trigger in (
        search.submit,
        model.change,
        task.change,
        scope.change,
        favourites.change,
        order.change,
        date_from.submit,
        date_to.submit,
        tab.select,
    ):
        listed.append(trigger(first_page, inputs=filters, outputs=listing, api_visibility="private"))
    for event in listed:
        event.then(let_go, inputs=[w.current, w.page_ids], outputs=pane, api_visibility="private")
    w.prev_page.click(step_page(-1), inputs=[page_no, *filters], outputs=listing, api_visibility="private")
    w.next_page.click(step_page(+1), inputs=[page_no, *filters], outputs=listing, api_visibility="private")

    def pick(ids: list[int], evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(ids):
            return [gr.skip()] * len(pane)
        return _picked_pane(studio, ids[index])

    w.grid.select(pick, inputs=w.page_ids, outputs=pane, api_visibility="private")


def _wire_reuse(studio: Studio, w: _Widgets, tabs: gr.Tabs, targets: Mapping[str, TabParts]) -> None:
    """Reuse parameters: the picked image's settings into its tab's widgets."""
    tab_ids = {"txt2img": "txt2img", "img2img": "img2img", "inpaint": "inpaint"}
    reuse_outputs: list[Any] = [tabs]
    for parts in targets.values():
        reuse_outputs.extend(parts.controls.fields)

    def on_reuse(image_id: int):
        if not image_id:
            raise gr.Error("Click an image first.")
        image = studio.gallery.get(image_id)
        target = image.task if image.task in targets else "txt2img"
        values = reuse_values(image.infotext, studio.presets_book.styles())
        usable = {m.name for m in studio.catalog.models() if not m.refusal}
        if values.get("model") not in usable:
            gr.Warning(f"Model {values.get('model')!r} is not available here; the current model is kept.")
            values.pop("model", None)
        out: list[Any] = [gr.Tabs(selected=tab_ids[target])]
        for name, parts in targets.items():
            out.extend(
                fill(parts.controls.fields, values)
                if name == target
                else [gr.skip()] * len(parts.controls.fields)
            )
        return out

    w.reuse.click(on_reuse, inputs=w.current, outputs=reuse_outputs, api_visibility="private")


def _guarded(button: gr.Button, check: Any, source: Any) -> Any:
    return button.click(check, inputs=source, outputs=None, api_visibility="private").success


def _picked(image_ids: list[int] | int | None, nothing: str) -> list[int]:
    ids = [image_ids] if isinstance(image_ids, int) else list(image_ids or [])
    if not ids or ids == [0]:
        raise gr.Error(nothing)
    return ids


def _may(studio: Studio, verb: str, nothing: str) -> Callable[..., None]:
    def check(image_ids: list[int] | int | None, request: gr.Request) -> None:
        with refusals():
            studio.pictures.check_pictures(_picked(image_ids, nothing), user_of(request), verb)

    return check


def _wire_changes(studio: Studio, w: _Widgets) -> None:
    """Favourite, Delete (the picked image or the ticked ones) and Undo delete."""
    filters, listing, current, page_no, selection = w.filters, w.listing, w.current, w.page_no, w.selection
    undo, undo_keys = w.undo, w.undo_keys

    def show(page: int, request: gr.Request, *values: Any) -> tuple[Any, ...]:
        return _show(studio, page, request, *values)

    def may(verb: str, nothing: str) -> Callable[..., None]:
        return _may(studio, verb, nothing)

    # Each change is asked for first, in a step with no outputs: a refusal ("not yours") is an error toast that
    # leaves the grid and the picked picture as they were; the change itself runs only after that step succeeds.
    def on_favourite(image_id: int, page: int, request: gr.Request, *values: Any):
        image = studio.gallery.get(image_id)
        with refusals():
            studio.pictures.set_favourite([image_id], not image.favourite, user=user_of(request))
        gr.Info("Removed from favourites." if image.favourite else "Added to favourites.")
        starred = studio.gallery.get(image_id)  # the star, the line and the grid all show the change at once
        return (*show(page, request, *values), describe(starred), _star_button(starred.favourite))

    _guarded(w.favourite, may("star or unstar", "Click an image first."), current)(
        on_favourite,
        inputs=[current, page_no, *filters],
        outputs=[*listing, w.meta, w.favourite],
        api_visibility="private",
    )

    def on_delete(image_ids: list[int] | int, page: int, request: gr.Request, *values: Any):
        ids = _picked(image_ids, "Pick an image (or tick some under “Select several”) first.")
        copies = cache_copies.locate(
            path for image_id in ids for path in studio.gallery.picture_files(image_id)
        )
        with refusals():
            keys = studio.pictures.delete_images(ids, user=user_of(request))
        cache_copies.remove(copies)  # the copies the page was served go with the picture
        gr.Info(f"Moved {len(keys)} image(s) to the trash. Undo brings them back.")
        return (*show(page, request, *values), keys, gr.Button(visible=True), *_cleared())

    delete_outputs = [*listing, undo_keys, undo, *w.detail_pane]
    may_delete = may("delete", "Pick an image (or tick some under “Select several”) first.")
    _guarded(w.delete, may_delete, current)(
        on_delete, inputs=[current, page_no, *filters], outputs=delete_outputs, api_visibility="private"
    )
    _guarded(w.delete_selected, may_delete, selection)(
        on_delete, inputs=[selection, page_no, *filters], outputs=delete_outputs, api_visibility="private"
    )

    def may_undo(keys: list[str], request: gr.Request) -> None:
        with refusals():
            studio.pictures.check_restore(keys or [], user_of(request))

    def on_undo(keys: list[str], page: int, request: gr.Request, *values: Any):
        with refusals():
            restored = studio.pictures.restore_images(keys, user=user_of(request))
        gr.Info(f"Restored {len(restored)} image(s).")
        return (*show(page, request, *values), [], gr.Button(visible=False))

    _guarded(undo, may_undo, undo_keys)(
        on_undo,
        inputs=[undo_keys, page_no, *filters],
        outputs=[*listing, undo_keys, undo],
        api_visibility="private",
    )


def _wire_trash_and_selection(studio: Studio, w: _Widgets, tab: gr.Tab) -> None:
    """Empty trash (everyone's, for admins), and favourite or zip the ticked images."""
    filters, listing, page_no, selection = w.filters, w.listing, w.page_no, w.selection

    def show(page: int, request: gr.Request, *values: Any) -> tuple[Any, ...]:
        return _show(studio, page, request, *values)

    def on_empty(everyone: bool, request: gr.Request) -> None:
        with refusals():
            removed = studio.pictures.empty_trash(user=user_of(request), everyone=bool(everyone))
        whose = "everyone's trash" if everyone else "your trash"
        gr.Info(f"Deleted {removed} image(s) from {whose} for good." if removed else f"Nothing in {whose}.")

    w.empty.click(on_empty, inputs=w.everyone_trash, outputs=None, api_visibility="private")

    def admin_tools(request: gr.Request):  # the "everyone's trash" box is shown to admins only
        return gr.Checkbox(visible=studio.roles.is_admin(user_of(request)))

    tab.select(admin_tools, outputs=w.everyone_trash, api_visibility="private", queue=False)

    def on_favourite_selected(ids: list[int], page: int, request: gr.Request, *values: Any):
        with refusals():
            studio.pictures.set_favourite(ids, True, user=user_of(request))
        return show(page, request, *values)

    def picked_star(image_id: int) -> tuple[Any, ...]:
        """The picked picture's line and star, as they are now (it may have been among the ticked ones)."""
        try:
            image = studio.gallery.get(image_id) if image_id else None
        except ImageNotFound:  # deleted meanwhile
            image = None
        return (gr.skip(), gr.skip()) if image is None else (describe(image), _star_button(image.favourite))

    _guarded(w.fav_selected, _may(studio, "star or unstar", "Tick some images first."), selection)(
        on_favourite_selected,
        inputs=[selection, page_no, *filters],
        outputs=listing,
        api_visibility="private",
    ).then(picked_star, inputs=w.current, outputs=[w.meta, w.favourite], api_visibility="private")

    def on_zip(ids: list[int]):
        if not ids:
            raise gr.Error("Tick some images first.")
        folder = Path(tempfile.mkdtemp(prefix="easel-zip-"))
        path = studio.gallery.export_zip(ids, folder / f"easel-{len(ids)}-images.zip")
        return gr.File(value=str(path), visible=True)

    w.zip_button.click(on_zip, inputs=selection, outputs=w.zip_file, api_visibility="private")


def build_pnginfo(tabs: gr.Tabs, txt2img: TabParts, studio: Studio | None = None) -> None:
    """Drop a picture, read its parameters, send them to txt2img."""
    with gr.Row(equal_height=False):
        with gr.Column():
            picture = gr.File(
                label="Drop a PNG, JPEG or WebP", file_types=[".png", ".jpg", ".jpeg", ".webp"], type="binary",
                elem_id="pnginfo_image",
            )  # fmt: skip
        with gr.Column():
            text = gr.Textbox(label="Parameters", lines=6, interactive=False, elem_id="pnginfo_text")
            table = gr.JSON(label="As fields", elem_id="pnginfo_fields")
            others = gr.JSON(label="Other text in the file", elem_id="pnginfo_other")
            send = gr.Button("Send to txt2img", variant="primary", elem_id="pnginfo_send_txt2img")

    def read(data: bytes | None):
        if not data:
            return "", None, None
        try:
            infotext, items = read_text_chunks(data)
        except ImageInputError as exc:
            raise gr.Error(str(exc)) from None
        if not infotext:
            gr.Warning("This picture carries no generation parameters.")
            return "", None, items or None
        return infotext, reuse_values(infotext, studio.presets_book.styles() if studio else ()), items or None

    picture.upload(read, inputs=picture, outputs=[text, table, others], api_visibility="private")

    def on_send(infotext: str):
        if not infotext:
            raise gr.Error("Drop a picture with parameters first.")
        values = reuse_values(infotext, studio.presets_book.styles() if studio else ())
        return [gr.Tabs(selected="txt2img"), *fill(txt2img.controls.fields, values)]

    send.click(on_send, inputs=text, outputs=[tabs, *txt2img.controls.fields], api_visibility="private")
