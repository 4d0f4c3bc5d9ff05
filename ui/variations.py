"""The "Variations" button: N candidates around the picked result — its seed, fresh variation seeds, a
small variation strength — in one click."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core.images import ImageInputError
from core.pnginfo import read_metadata
from studio import JobGroup, JobState, QueueFull, Studio
from studio.groups import MAX_VARIATIONS, request_from_metadata
from ui.common import failed_html, follow, progress_html, user_of
from ui.controls import Results
from ui.generation import history_outputs, keep_in_history, with_history

DEFAULT_COUNT = 4
DEFAULT_STRENGTH = 0.15
PICK_FIRST = "Click a result first, then ask for variations."


@dataclass
class VariationsRow:
    button: gr.Button
    count: gr.Number
    strength: gr.Slider
    status: gr.HTML  # the progress, right under the button
    gallery: gr.Gallery | None = None  # only where the row shows its own results (the gallery)


def build(prefix: str, *, own_results: bool = False) -> VariationsRow:
    """The button with its count and strength and a status line under it (and, with `own_results`, a
    results gallery)."""
    with gr.Row(equal_height=True, elem_classes=["easel-variations"]):
        count = gr.Number(
            DEFAULT_COUNT, precision=0, minimum=1, maximum=MAX_VARIATIONS, label="How many", scale=1,
            min_width=80, elem_id=f"{prefix}_variations_count",
        )  # fmt: skip
        strength = gr.Slider(
            0.01, 1, value=DEFAULT_STRENGTH, step=0.01, label="How different", scale=3, min_width=160,
            info="Distance from the picked image: small values keep its composition",
            elem_id=f"{prefix}_variations_strength",
        )  # fmt: skip
    button = gr.Button("Variations of the picked image", size="sm", elem_id=f"{prefix}_variations")
    status = gr.HTML("", elem_id=f"{prefix}_variations_status", elem_classes=["easel-status-line"])
    row = VariationsRow(button=button, count=count, strength=strength, status=status)
    if own_results:
        row.gallery = gr.Gallery(
            label="Results", columns=4, height="auto", format="png", interactive=False,
            elem_id=f"{prefix}_variations_gallery",
        )  # fmt: skip
    return row


def _start(studio: Studio, source: Any, count: Any, strength: Any, user: str) -> JobGroup:
    try:
        return studio.groups.variations(source, int(count or 0), float(strength or 0), user)
    except (ValueError, QueueFull, KeyError) as exc:
        raise gr.Error(str(exc).strip("'\""), title="Variations") from None


def _request_of_file(path: str, images: dict[str, bytes] | None = None) -> Any:
    """The request a result file was made with (its JSON chunk; `images`: the source picture fields of an
    img2img result, which the file does not hold), or a gr.Error."""
    if not path:
        raise gr.Error(PICK_FIRST)
    try:
        infotext, metadata = read_metadata(Path(path).read_bytes())
        return request_from_metadata(metadata, infotext, "this picture", images)
    except (OSError, ImageInputError, ValueError) as exc:
        raise gr.Error(str(exc), title="Variations") from None


def _follow(studio: Studio, group: JobGroup) -> Iterator[str]:
    for state in follow(group):
        current = state.current
        yield progress_html(state, studio.jobs.queue_position(current) if current is not None else None)


def _shown(studio: Studio, group: JobGroup) -> list[tuple[str, str]]:
    if group.state is JobState.FAILED:
        raise gr.Error(group.error or "Variations failed")
    return [
        (str(studio.gallery.file_path(image.id)), f"seed {image.seed} · var. {job.request.subseed}")
        for job in group.jobs
        for image in job.images
    ]


def wire(
    studio: Studio,
    row: VariationsRow,
    results: Results,
    *,
    source: gr.components.Component | None = None,
    source_fields: Callable[[Any], dict[str, bytes]] | None = None,
) -> None:
    """In a generating tab: variations of the selected result, shown in the tab's results.

    `source` and `source_fields` (the img2img tab): the tab's source picture widget, and its value turned into
    the request's picture fields — results of a source-image task are varied with the tab's source picture.
    """

    def run(path: str, count: Any, strength: Any, images: dict[str, bytes] | None, user: str):
        try:
            group = _start(studio, _request_of_file(path, images), count, strength, user)
        except gr.Error as exc:  # the line under the button must not keep saying how the last run went
            yield {row.status: failed_html(str(exc.message))}
            raise
        for status in _follow(studio, group):
            yield {results.job_id: group.id, results.status: status, row.status: status}
        try:
            shown = _shown(studio, group)
        except gr.Error:
            yield {
                results.job_id: "",
                results.status: progress_html(group, None),
                row.status: progress_html(group, None),
            }
            raise
        paths = [p for p, _ in shown]
        infotexts = [image.infotext for image in group.images]
        done = progress_html(group, None)
        yield {
            **with_history(results, paths, [c for _, c in shown], infotexts),
            row.status: done,
            results.job_id: "",
            results.status: done,
            results.gallery: shown,
            results.info: infotexts[0] if infotexts else "",
            results.infotexts: infotexts,
            results.paths: paths,
            results.selected: paths[0] if paths else "",
        }

    if source is None:

        def on_click(path: str, count: Any, strength: Any, request: gr.Request):
            yield from run(path, count, strength, None, user_of(request))

    else:
        assert source_fields is not None

        def on_click(path: str, count: Any, strength: Any, picture: Any, request: gr.Request):  # type: ignore[misc]
            if not path:
                raise gr.Error(PICK_FIRST)
            yield from run(path, count, strength, source_fields(picture), user_of(request))

    event = row.button.click(
        on_click,
        inputs=[results.selected, row.count, row.strength, *([source] if source is not None else [])],
        outputs=[
            results.job_id, results.status, results.gallery, results.info, results.infotexts, results.paths,
            results.selected, row.status, *history_outputs(results),
        ],
        api_visibility="private",
        concurrency_id="generate",
        concurrency_limit=None,
        show_progress="hidden",
    )  # fmt: skip
    keep_in_history(event, results)


def wire_gallery(studio: Studio, row: VariationsRow, current: gr.State) -> None:
    """In the gallery: variations of the picked image (by id), shown under it."""
    assert row.gallery is not None

    def on_click(image_id: int, count: Any, strength: Any, request: gr.Request):
        if not image_id:
            raise gr.Error("Click an image first.")
        group = _start(studio, int(image_id), count, strength, user_of(request))
        for status in _follow(studio, group):
            yield status, gr.skip()
        yield progress_html(group, None), _shown(studio, group)

    row.button.click(
        on_click, inputs=[current, row.count, row.strength], outputs=[row.status, row.gallery],
        api_visibility="private", concurrency_id="generate", concurrency_limit=None, show_progress="hidden",
    )  # fmt: skip
