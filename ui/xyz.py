"""The "X/Y/Z plot" accordion of a generating tab: up to three axes over the tab's current settings, a
"Make grid" button, and the grid plus every cell shown in the tab's results."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from pydantic import BaseModel, ValidationError

from core.requests import GenerationRequest, validation_message
from core.samplers import SAMPLERS, SCHEDULE_TYPES
from core.xyz import AXIS_NAMES, AXIS_TYPES, MAX_CELLS, PlotRequest, axis_choices, join_values
from studio import JobState, QueueFull, Studio
from ui.common import REFUSED, build_request, follow, progress_html, user_of
from ui.controls import Controls, Results
from ui.generation import history_outputs, keep_in_history, with_history

HELP = (
    f"Values: a list (`1, 2, 3`; quote a value holding a comma) or a range — `1-5`, `5-30 (+5)`, `10-1 (-3)`, "
    f"`0.1-0.9 [5]` (5 values). Prompt S/R: the first value is searched for in the prompt, each value replaces it. "
    f"One image per cell, at most {MAX_CELLS} cells; the batch settings are not used. Presets, styles, "
    f"samplers, checkpoints and LoRAs are picked from a list under the values box."
)


@dataclass
class XyzParts:
    types: dict[str, gr.Dropdown]  # "x" / "y" / "z" → axis type
    values: dict[str, gr.Textbox]
    run: gr.Button
    status: gr.HTML | None = None  # the plot's progress, right under Make grid
    picks: dict[str, gr.Dropdown] = field(default_factory=dict)  # names to pick an axis's values from


def build(
    prefix: str, request_cls: type[GenerationRequest], *, x: str = "steps", y: str = "seed"
) -> XyzParts:
    """The accordion (call it inside the settings column); `x` and `y` are the axis types it starts with.
    Its element ids are `{prefix}_xyz_...`."""
    choices = axis_choices(request_cls)
    defaults = {"x": x, "y": y, "z": "nothing"}
    types, values, picks = {}, {}, {}
    with gr.Accordion("X/Y/Z plot", open=False, elem_id=f"{prefix}_xyz"):
        gr.Markdown(HELP)
        for name in AXIS_NAMES:
            kind = AXIS_TYPES[defaults[name]]
            with gr.Row():
                types[name] = gr.Dropdown(
                    choices, value=defaults[name], label=f"{name.upper()} type", scale=2,
                    elem_id=f"{prefix}_xyz_{name}_type",
                )  # fmt: skip
                values[name] = gr.Textbox(
                    label=f"{name.upper()} values", placeholder=kind.example or None, max_lines=2, scale=5,
                    elem_id=f"{prefix}_xyz_{name}_values",
                )  # fmt: skip
            # names to pick (presets, styles, …) for the axis types that take names; filled in by `wire`
            picks[name] = gr.Dropdown(
                [], value=[], multiselect=True, label=f"{name.upper()}: pick the values",
                info="What you pick is written into the values box", visible=bool(kind.picker),
                elem_id=f"{prefix}_xyz_{name}_pick",
            )  # fmt: skip
        run = gr.Button("Make grid", variant="primary", elem_id=f"{prefix}_xyz_run")
        status = gr.HTML("", elem_id=f"{prefix}_xyz_status", elem_classes=["easel-status-line"])
    for name in AXIS_NAMES:
        types[name].change(
            lambda key: gr.Textbox(info=AXIS_TYPES[key].info or None, placeholder=AXIS_TYPES[key].example)
            if key
            else gr.skip(),
            inputs=types[name], outputs=values[name], api_visibility="private", queue=False,
        )  # fmt: skip
    return XyzParts(types=types, values=values, run=run, status=status, picks=picks)


def picker_choices(studio: Studio, picker: str) -> list[str]:
    """The names an axis's values are picked from ("presets", "styles", …; [] for an axis of numbers)."""
    if picker == "presets":
        return [preset.name for preset in studio.presets_book.presets()]
    if picker == "styles":
        return [style.name for style in studio.presets_book.styles()]
    if picker == "samplers":
        return list(SAMPLERS)
    if picker == "schedules":
        return list(SCHEDULE_TYPES)
    if picker == "models":
        return [model.name for model in studio.catalog.models() if not model.refusal]
    if picker == "loras":
        return [lora.name for lora in studio.catalog.loras() if lora.refusal is None]
    return []


def wire_pickers(studio: Studio, parts: XyzParts) -> None:
    """Each axis's picker: shown with the names of its type, and what is picked written into the values box."""

    def shown(key: str | None) -> Any:
        picker = AXIS_TYPES[key].picker if key else ""
        return gr.Dropdown(choices=picker_choices(studio, picker), value=[], visible=bool(picker))

    def offered(key: str | None) -> Any:  # names added since the page was built
        return gr.Dropdown(choices=picker_choices(studio, AXIS_TYPES[key].picker if key else ""))

    private = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
    for name, pick in parts.picks.items():
        parts.types[name].change(shown, inputs=parts.types[name], outputs=pick, **private)
        pick.focus(offered, inputs=parts.types[name], outputs=pick, **private)
        pick.input(lambda names: join_values(names or []), inputs=pick, outputs=parts.values[name], **private)


def plot_request(base: BaseModel, axes: dict[str, tuple[str | None, str | None]]) -> PlotRequest:
    """A validated plot from a base request and (type, values) per axis, or a gr.Error saying what to change."""
    data: dict[str, Any] = {"base": base}
    for name, (key, text) in axes.items():
        if key and key != "nothing" and (text or "").strip():
            data[name] = {"type": key, "values": text}
    try:
        return PlotRequest(**data)
    except ValidationError as exc:
        raise gr.Error(validation_message(exc), title="Check the plot") from None


def wire(
    studio: Studio,
    parts: XyzParts,
    controls: Controls,
    results: Results,
    request_cls: Callable[..., BaseModel],
    *,
    extra: dict[Any, str] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Make grid: the tab's widgets (one image each) as the base, the axes over it; grid and cells shown.

    `extra` and `prepare` are as in ui.generation.wire (the tab's own widgets, e.g. img2img's source picture).
    """
    fields = {**controls.fields, **(extra or {})}
    axis_inputs = [*parts.types.values(), *parts.values.values()]
    wire_pickers(studio, parts)

    def on_run(data: dict[Any, Any], request: gr.Request):
        values = {name: data[component] for component, name in fields.items()}
        values["model"] = values.get("model") or ""
        values.update(batch_size=1, batch_count=1)
        if prepare is not None:
            values = prepare(values)
        base = build_request(request_cls, values)
        plot = plot_request(base, {n: (data[parts.types[n]], data[parts.values[n]]) for n in AXIS_NAMES})
        try:
            group = studio.groups.run_plot(plot, user_of(request))
        except REFUSED as exc:
            raise gr.Error(str(exc), title="Check the plot") from None
        for state in follow(group):
            current = state.current
            position = studio.jobs.queue_position(current) if current is not None else None
            line = progress_html(state, position)
            yield {results.job_id: group.id, results.status: line, **near_button(line)}
        if group.state is JobState.FAILED:
            yield {
                results.job_id: "",
                results.status: progress_html(group, None),
                **near_button(progress_html(group, None)),
            }
            raise gr.Error(group.error or "The plot failed")
        shown = ([group.grid] if group.grid is not None else []) + (group.cell_images or group.images)
        paths = [str(studio.gallery.file_path(image.id)) for image in shown]
        captions = cell_captions(group.plot, len(group.cell_images)) if group.cell_images else []
        captions = (["grid"] if group.grid is not None else []) + captions
        captions += [f"seed {image.seed}" for image in shown[len(captions) :]]
        yield {
            **with_history(results, paths, captions, [image.infotext for image in shown]),
            **near_button(plot_status(group)),
            results.job_id: "",
            results.status: plot_status(group),
            results.gallery: list(zip(paths, captions, strict=True)),
            results.info: shown[0].infotext if shown else "",
            results.last_seed: shown[-1].seed if shown else -1,
            results.infotexts: [image.infotext for image in shown],
            results.paths: paths,
            results.selected: paths[0] if paths else "",
        }

    def near_button(line: str) -> dict[Any, str]:
        return {parts.status: line} if parts.status is not None else {}

    event = parts.run.click(
        on_run,
        inputs={*fields, *axis_inputs},
        outputs=[
            results.job_id, results.status, results.gallery, results.info, results.last_seed,
            results.infotexts, results.paths, results.selected, *near_button(""), *history_outputs(results),
        ],
        api_visibility="private",
        concurrency_id="generate",
        concurrency_limit=None,
        show_progress="hidden",
    )  # fmt: skip
    keep_in_history(event, results)


def plot_status(group: Any) -> str:
    """The finished plot's status line ("grid + 4 cell(s)"), or the usual one when it did not finish."""
    if group.state is not JobState.DONE or group.grid is None:
        return progress_html(group, None)
    took = (group.finished or 0) - (group.started or 0)
    return (
        f'<div class="easel-status" data-state="done">Done in {took:.1f}s · grid + '
        f"{len(group.cell_images)} cell(s) · {group.grid.width}×{group.grid.height}</div>"
    )


def cell_captions(plot: PlotRequest | None, count: int) -> list[str]:
    """Each cell's axis labels ("Steps: 10 · Seed: 1"), in layout order."""
    if plot is None:
        return []
    xs, ys, zs = plot.axis_labels()
    columns, rows, _ = plot.shape
    out = []
    for index in range(count):
        z, rest = divmod(index, columns * rows)
        y, x = divmod(rest, columns)
        out.append(" · ".join(label for label in (xs[x], ys[y], zs[z]) if label) or "cell")
    return out


@dataclass
class GalleryTools:
    """Under the gallery's picked image: Variations, and Re-run plot for a grid; results shown below."""

    variations: Any  # ui.variations.VariationsRow (with its own status and results)
    rerun: gr.Button


def build_gallery_tools() -> GalleryTools:
    from ui import variations

    with gr.Accordion("Variations · re-run a plot", open=False, elem_id="gallery_iteration"):
        rerun = gr.Button("Re-run plot", size="sm", elem_id="gallery_rerun_plot")
        row = variations.build("gallery", own_results=True)
    return GalleryTools(variations=row, rerun=rerun)


def wire_gallery_tools(studio: Studio, tools: GalleryTools, current: gr.State) -> None:
    """`current` holds the picked image's gallery id."""
    from ui import variations

    variations.wire_gallery(studio, tools.variations, current)
    row = tools.variations

    def on_rerun(image_id: int, request: gr.Request):
        if not image_id:
            raise gr.Error("Click a grid image first.")
        try:
            group = studio.groups.rerun_plot(int(image_id), user_of(request))
        except (*REFUSED, KeyError) as exc:
            raise gr.Error(str(exc).strip("'\""), title="Re-run plot") from None
        for state in follow(group):
            current_job = state.current
            yield (
                progress_html(state, studio.jobs.queue_position(current_job) if current_job else None),
                gr.skip(),
            )
        if group.state is JobState.FAILED:
            raise gr.Error(group.error or "The plot failed")
        shown = ([group.grid] if group.grid is not None else []) + group.cell_images
        yield plot_status(group), [(str(studio.gallery.file_path(i.id)), f"seed {i.seed}") for i in shown]

    tools.rerun.click(
        on_rerun, inputs=current, outputs=[row.status, row.gallery], api_visibility="private",
        concurrency_id="generate", concurrency_limit=None, show_progress="hidden",
    )  # fmt: skip


def register_api(studio: Studio) -> None:
    """Gradio API endpoints `xyz` (a whole plot definition) and `variations` (of a gallery image)."""
    import base64

    def encoded(image: Any) -> str:
        return base64.b64encode(studio.gallery.file_path(image.id).read_bytes()).decode()

    def finished(group: Any) -> Any:
        group.wait()
        if group.state is JobState.FAILED:
            raise gr.Error(group.error or "Generation failed")
        return group

    def xyz(plot: dict, request: gr.Request = None) -> dict:  # type: ignore[assignment]
        """Run an X/Y/Z plot: {"base": {request fields, "task": "txt2img"}, "x": {"type": "steps", "values":
        "10-30 (+10)"}, "y": ..., "z": ...}. Returns the grid (id, base64 PNG) and every cell (layout order)."""
        try:
            definition = PlotRequest.model_validate(plot)
        except ValidationError as exc:
            raise gr.Error(validation_message(exc), title="Check the plot") from None
        try:
            group = studio.groups.run_plot(definition, user_of(request))
        except REFUSED as exc:
            raise gr.Error(str(exc), title="Check the plot") from None
        finished(group)
        cells = group.cell_images
        return {
            "state": group.state.value,
            "plot": json.loads(group.plot.model_dump_json()),
            "grid_id": group.grid.id if group.grid is not None else None,
            "grid": encoded(group.grid) if group.grid is not None else None,
            "ids": [i.id for i in cells],
            "seeds": [i.seed for i in cells],
            "infotexts": [i.infotext for i in cells],
            "images": [encoded(i) for i in cells],
        }

    def variations(
        image_id: int,
        count: int = 4,
        strength: float = 0.15,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """N candidates around a txt2img gallery image: its seed, new variation seeds, the given strength."""
        try:
            group = studio.groups.variations(int(image_id), int(count), float(strength), user_of(request))
        except (ValueError, QueueFull, KeyError) as exc:
            raise gr.Error(str(exc).strip("'\""), title="Variations") from None
        finished(group)
        return {
            "state": group.state.value,
            "ids": [i.id for i in group.images],
            "seeds": [i.seed for i in group.images],
            "subseeds": [job.request.subseed for job in group.jobs],
            "infotexts": [i.infotext for i in group.images],
            "images": [encoded(i) for i in group.images],
        }

    for fn in (xyz, variations):
        gr.api(fn, api_name=fn.__name__, concurrency_id="generate", concurrency_limit=None)
