"""The parts every generating tab shares: the settings column, the results column, and the handlers that
turn widget values into a request, submit it to the Studio and stream its progress back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from pydantic import BaseModel

from core.requests import GenerationRequest
from core.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE, SAMPLERS, SCHEDULE_TYPES
from studio import JobState, Studio
from ui import compare, fields, history, loras, queue_controls, variation_seed
from ui import presets as preset_tools
from ui.common import build_request, failed_html, follow, progress_html, submit, user_of
from ui.controls import RESULTS_HEIGHT, Component, Controls, Results


def model_choices(studio: Studio, *, inpaint: bool, refresh: bool = False) -> list[tuple[str, str]]:
    """Dropdown choices; inpainting checkpoints are offered only where they can run (the inpaint tab)."""
    return [
        (m.label, m.name)
        for m in studio.catalog.models(refresh=refresh)
        if not m.refusal and (inpaint or not m.inpaint)
    ]


def advanced(prefix: str) -> gr.Accordion:
    """The collapsed section (`{prefix}_advanced`) holding everything beyond the tab's default view."""
    return gr.Accordion("Advanced", open=False, elem_id=f"{prefix}_advanced")


def build_prompts(studio: Studio, prefix: str, *, inpaint_models: bool = False) -> Controls:
    """The default view's prompts: prompt, negative prompt, preset and styles (the model picker is made here
    but shown in the Advanced section by `build_settings`)."""
    model = gr.Dropdown(
        choices=model_choices(studio, inpaint=inpaint_models),
        value=studio.catalog.default_model(),
        label="Model",
        elem_id=f"{prefix}_model",
        scale=8,
        render=False,
    )
    prompt = gr.Textbox(
        label="Prompt",
        lines=3,
        placeholder="a red fox logo, flat vector, white background   (Ctrl+Enter generates)",
        elem_id=f"{prefix}_prompt",
    )
    negative = gr.Textbox(
        label="Negative prompt", lines=1, max_lines=4, placeholder="blurry, text, watermark",
        elem_id=f"{prefix}_negative",
    )  # fmt: skip
    controls = Controls(model=model, prompt=prompt, negative=negative)
    controls.fields.update({model: "model", prompt: "prompt", negative: "negative_prompt"})
    controls.presets = preset_tools.build_prompt_tools(studio, controls, prefix)
    return controls


def build_quick(controls: Controls, prefix: str) -> None:
    """The rest of the default view: the aspect ratio and the number of images (the batch size)."""
    assert controls.presets is not None  # build_prompts made them
    preset_tools.build_aspect(controls.presets)
    batch_size = fields.slider(
        GenerationRequest, "batch_size", label="Number of images", elem_id=f"{prefix}_batch_size", info=None
    )
    controls.fields[batch_size] = "batch_size"


def _build_model_row(studio: Studio, controls: Controls, prefix: str, *, inpaint_models: bool) -> None:
    """The model picker (made by build_prompts) with its refresh button, and the LoRA picker."""
    with gr.Row():
        controls.model.render()
        refresh = gr.Button(
            "↻", elem_id=f"{prefix}_refresh_models", scale=1, min_width=40, size="sm",
            elem_classes=["easel-side-button"],
        )  # fmt: skip
    loras.build(studio, controls.prompt, prefix)
    refresh.click(
        lambda: gr.Dropdown(choices=model_choices(studio, inpaint=inpaint_models, refresh=True)),
        outputs=controls.model,
        api_visibility="private",
        queue=False,
    )


def build_settings(studio: Studio, controls: Controls, prefix: str, *, inpaint_models: bool = False) -> None:
    """Model, LoRA, sampler, steps, CFG, size, seed and batch widgets, added to `controls` (call it inside
    the tab's Advanced section, after `build_quick`)."""
    _build_model_row(studio, controls, prefix, inpaint_models=inpaint_models)
    with gr.Row():
        sampler = gr.Dropdown(
            SAMPLERS,
            value=DEFAULT_SAMPLER,
            label="Sampler",
            info="How noise is removed step by step; DPM++ 2M is a good default",
            elem_id=f"{prefix}_sampler",
        )
        schedule = gr.Dropdown(
            SCHEDULE_TYPES,
            value=DEFAULT_SCHEDULE,
            label="Schedule type",
            info="Spacing of the noise levels; Automatic = the sampler's usual one",
            elem_id=f"{prefix}_schedule",
        )
    with gr.Row():
        steps = fields.slider(GenerationRequest, "steps", label="Sampling steps", elem_id=f"{prefix}_steps")
        cfg = fields.slider(
            GenerationRequest, "cfg_scale", step=0.5, label="CFG scale", elem_id=f"{prefix}_cfg"
        )
    with gr.Row():
        width = fields.slider(GenerationRequest, "width", step=8, label="Width", elem_id=f"{prefix}_width")
        height = fields.slider(
            GenerationRequest, "height", step=8, label="Height", elem_id=f"{prefix}_height"
        )
    with gr.Row():
        seed = fields.number(
            GenerationRequest, "seed", precision=0, label="Seed", info="-1 = random; the same seed repeats a picture",
            elem_id=f"{prefix}_seed", scale=4,
        )  # fmt: skip
        random_seed = gr.Button("Random", elem_id=f"{prefix}_random_seed", scale=1, min_width=40, size="sm")
        reuse_seed = gr.Button("Reuse last", elem_id=f"{prefix}_reuse_seed", scale=1, min_width=40, size="sm")
    variation_seed.build(controls, prefix)  # variation seed and seed resize (where the task can use them)
    with gr.Row():
        batch_count = fields.slider(
            GenerationRequest, "batch_count", label="Batch count", elem_id=f"{prefix}_batch_count"
        )
    with gr.Row():
        restore_faces = fields.checkbox(
            GenerationRequest, "restore_faces", label="Restore faces", elem_id=f"{prefix}_restore_faces"
        )
        tiling = fields.checkbox(GenerationRequest, "tiling", label="Tiling", elem_id=f"{prefix}_tiling")
    controls.seed, controls.width, controls.height, controls.reuse_seed = seed, width, height, reuse_seed
    controls.fields.update(
        {
            sampler: "sampler",
            schedule: "schedule_type",
            steps: "steps",
            cfg: "cfg_scale",
            width: "width",
            height: "height",
            seed: "seed",
            batch_count: "batch_count",
            restore_faces: "restore_faces",
            tiling: "tiling",
        }
    )
    random_seed.click(lambda: -1, outputs=seed, api_visibility="private", queue=False)
    preset_tools.connect(controls)


def build_actions(prefix: str) -> tuple[gr.Button, gr.Button, gr.Button, gr.HTML]:
    """Generate, Interrupt, Cancel queued and the status line under them: one bar that stays on screen."""
    with gr.Column(elem_id=f"{prefix}_actions", elem_classes=["easel-actions"]):
        with gr.Row(elem_classes=["easel-action-buttons"]):
            generate = gr.Button("Generate", variant="primary", elem_id=f"{prefix}_generate", scale=3)
            interrupt = gr.Button("Interrupt", variant="stop", elem_id=f"{prefix}_interrupt", scale=1)
            cancel_queued = queue_controls.build(prefix)
        status = gr.HTML("", elem_id=f"{prefix}_status", elem_classes=["easel-status-line"])
    return generate, interrupt, cancel_queued, status


def build_results(prefix: str) -> Results:
    generate, interrupt, cancel_queued, status = build_actions(prefix)
    preview = gr.Image(
        label="Preview", visible=False, interactive=False, elem_id=f"{prefix}_preview", height=160
    )
    gallery = gr.Gallery(
        label="Results", columns=2, height=RESULTS_HEIGHT, object_fit="contain", format="png",
        elem_id=f"{prefix}_gallery", elem_classes=["easel-results"], buttons=["download", "fullscreen"],
        interactive=False,
    )  # fmt: skip
    info = gr.Textbox(
        label="Generation info", lines=2, max_lines=6, interactive=False, elem_id=f"{prefix}_info"
    )
    with gr.Row(elem_classes=["easel-picked-tools"]):  # what to do with the picked picture
        send_img2img = gr.Button("Send to img2img", size="sm", elem_id=f"{prefix}_send_img2img")
        send_inpaint = gr.Button("Send to inpaint", size="sm", elem_id=f"{prefix}_send_inpaint")
        send_retouch = gr.Button("Send to retouch", size="sm", elem_id=f"{prefix}_send_retouch")
        compare_parts = compare.build(prefix)
    compare_parts.slider.render()
    return Results(
        generate=generate, interrupt=interrupt, status=status, preview=preview, gallery=gallery, info=info,
        send_img2img=send_img2img, send_inpaint=send_inpaint, send_retouch=send_retouch, job_id=gr.State(""), last_seed=gr.State(-1),
        infotexts=gr.State([]), paths=gr.State([]), selected=gr.State(""), compare=compare_parts,
        cancel_queued=cancel_queued,
    )  # fmt: skip


def build_history(results: Results, prefix: str) -> None:
    """The session history (`{prefix}_history`) under the results; every run of the tab adds to it."""
    results.history = history.build(prefix)


def history_outputs(results: Results) -> list[Any]:
    """Where a run leaves its pictures for the history, as event outputs (none where the tab has none)."""
    return [results.history.pending] if results.history is not None else []


def with_history(
    results: Results, paths: list[str], captions: list[str], infotexts: list[str]
) -> dict[Any, Any]:
    """The part of a run's last update that hands its pictures to the tab's history (empty without one)."""
    if results.history is None:
        return {}
    return {results.history.pending: history.entries(paths, captions, infotexts)}


def keep_in_history(event: Any, results: Results) -> None:
    """After a run (`event`) that used `with_history`: its pictures join the tab's history."""
    if results.history is not None:
        history.keep(event, results.history)


def wire(
    studio: Studio,
    controls: Controls,
    results: Results,
    request_cls: Callable[..., BaseModel],
    *,
    extra: dict[Component, str] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    trigger: gr.Button | None = None,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Generate on `trigger` (default: the Generate button): widgets → request → Studio → results.

    `prepare` turns widget values into request fields (e.g. an uploaded picture into PNG bytes);
    `overrides` fixes some fields whatever the widgets say (the Erase shortcut, for instance).
    """
    fields = {**controls.fields, **(extra or {})}
    on_generate = _generate_handler(studio, results, fields, request_cls, prepare, overrides)
    event = (trigger or results.generate).click(
        on_generate,
        inputs=set(fields),
        outputs=[
            results.job_id, results.status, results.preview, results.gallery, results.info, results.last_seed,
            results.infotexts, results.paths, results.selected, *history_outputs(results),
        ],
        api_visibility="private",
        concurrency_id="generate",
        concurrency_limit=None,
        show_progress="hidden",
    )  # fmt: skip
    keep_in_history(event, results)
    if trigger is None:
        _wire_results(studio, controls, results, fields)


def _generate_handler(
    studio: Studio,
    results: Results,
    fields: dict[Component, str],
    request_cls: Callable[..., BaseModel],
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None,
    overrides: dict[str, Any] | None,
) -> Callable[..., Iterator[dict[Any, Any]]]:
    """The Generate handler: widget values → request → Studio, then the job's progress and results."""

    def on_generate(data: dict[Any, Any], request: gr.Request):
        values = {name: data[component] for component, name in fields.items()}
        values["model"] = values["model"] or ""
        values.update(overrides or {})
        try:
            if prepare is not None:
                values = prepare(values)
            job = submit(studio, build_request(request_cls, values), user_of(request))
        except gr.Error as exc:  # the status must not keep saying how the previous run went
            yield {results.status: failed_html(str(exc.message))}
            raise
        yield {
            results.job_id: job.id,
            results.status: progress_html(
                job, studio.jobs.queue_position(job), studio.jobs.wait_estimate(job)
            ),
        }
        shown = None
        for state in follow(job):
            update: dict[Any, Any] = {
                results.status: progress_html(
                    state, studio.jobs.queue_position(state), studio.jobs.wait_estimate(state)
                )
            }
            if state.preview is not None and state.preview is not shown and state.state is JobState.RUNNING:
                shown = state.preview
                update[results.preview] = gr.Image(value=state.preview, visible=True)
            yield update
        if job.state is JobState.FAILED:
            yield {
                results.job_id: "",
                results.status: progress_html(job, None),
                results.preview: gr.Image(visible=False),
            }
            raise gr.Error(job.error or "Generation failed")
        paths = [str(studio.gallery.file_path(img.id)) for img in job.images]
        captions = [f"seed {img.seed}" for img in job.images]
        yield {
            **with_history(results, paths, captions, [img.infotext for img in job.images]),
            results.job_id: "",
            results.status: progress_html(job, None),
            results.preview: gr.Image(value=None, visible=False),
            results.gallery: list(zip(paths, captions, strict=True)),
            results.info: job.images[0].infotext if job.images else "",
            results.last_seed: job.images[0].seed if job.images else -1,
            results.infotexts: [img.infotext for img in job.images],
            results.paths: paths,
            results.selected: paths[0] if paths else "",
        }

    return on_generate


def _wire_results(studio: Studio, controls: Controls, results: Results, fields: dict[Component, str]) -> None:
    """The results column's own events: compare, Interrupt, cancel queued, picking a result, reuse seed."""

    def on_interrupt(current: str, request: gr.Request) -> None:
        user = user_of(request)
        if current:
            try:
                studio.jobs.cancel(current, user)
                return
            except KeyError:
                pass
        studio.jobs.cancel_all(user)

    def on_select(texts: list[str], paths: list[str], evt: gr.SelectData) -> tuple[Any, Any, Any]:
        index = evt.index if isinstance(evt.index, int) else 0
        if not 0 <= index < len(texts):
            return gr.skip(), gr.skip(), gr.skip()
        seed = history.seed_of(texts[index])
        return texts[index], paths[index], gr.skip() if seed is None else seed

    if results.compare is not None:
        source = next((c for c, name in fields.items() if name in ("init_image", "_editor")), None)
        compare.wire(results.compare, results.selected, source)
    results.interrupt.click(
        on_interrupt, inputs=[results.job_id], outputs=None, api_visibility="private", queue=False
    )
    if results.cancel_queued is not None:
        queue_controls.wire(studio, results.cancel_queued)
    results.gallery.select(
        on_select, inputs=[results.infotexts, results.paths], outputs=[results.info, results.selected, results.last_seed],
        api_visibility="private", queue=False,
    )  # fmt: skip
    if results.history is not None:
        history.wire(results.history, results.info, results.selected, results.last_seed)
    if controls.reuse_seed is not None:
        controls.reuse_seed.click(
            lambda s: s,
            inputs=results.last_seed,
            outputs=controls.seed,
            api_visibility="private",
            queue=False,
        )
