"""The txt2img tab: prompt and settings on the left, results on the right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.requests import MAX_BATCH_COUNT, MAX_BATCH_SIZE, MAX_SIZE, MIN_SIZE, Txt2ImgRequest
from core.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE, SAMPLERS, SCHEDULE_TYPES
from studio import JobState, Studio
from ui.common import build_request, follow, progress_html, submit, user_of


@dataclass
class Txt2ImgTab:
    """Handles other tabs need (e.g. to fill this tab from a gallery image later)."""

    fields: dict[gr.components.Component, str]
    model: gr.Dropdown
    gallery: gr.Gallery
    generate: gr.Button


def model_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(m.label, m.name) for m in studio.models() if not m.refused and not m.inpaint]


def build(studio: Studio) -> Txt2ImgTab:
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            with gr.Row():
                model = gr.Dropdown(
                    choices=model_choices(studio),
                    value=studio.default_model(),
                    label="Model",
                    elem_id="txt2img_model",
                    scale=8,
                )
                refresh = gr.Button("↻", elem_id="txt2img_refresh_models", scale=1, min_width=40)
            prompt = gr.Textbox(
                label="Prompt",
                lines=3,
                placeholder="a red fox logo, flat vector, white background   (Ctrl+Enter generates)",
                elem_id="txt2img_prompt",
            )
            negative = gr.Textbox(
                label="Negative prompt",
                lines=2,
                placeholder="blurry, text, watermark",
                elem_id="txt2img_negative",
            )
            with gr.Row():
                sampler = gr.Dropdown(
                    SAMPLERS,
                    value=DEFAULT_SAMPLER,
                    label="Sampler",
                    info="How noise is removed step by step; DPM++ 2M is a good default",
                    elem_id="txt2img_sampler",
                )
                schedule = gr.Dropdown(
                    SCHEDULE_TYPES,
                    value=DEFAULT_SCHEDULE,
                    label="Schedule type",
                    info="Spacing of the noise levels; Automatic = the sampler's usual one",
                    elem_id="txt2img_schedule",
                )
            with gr.Row():
                steps = gr.Slider(1, 150, value=20, step=1, label="Sampling steps", elem_id="txt2img_steps")
                cfg = gr.Slider(
                    0,
                    30,
                    value=7,
                    step=0.5,
                    label="CFG scale",
                    info="How strictly to follow the prompt (5–9 is usual)",
                    elem_id="txt2img_cfg",
                )
            with gr.Row():
                width = gr.Slider(
                    MIN_SIZE, MAX_SIZE, value=512, step=8, label="Width", elem_id="txt2img_width"
                )
                height = gr.Slider(
                    MIN_SIZE, MAX_SIZE, value=512, step=8, label="Height", elem_id="txt2img_height"
                )
            with gr.Row():
                seed = gr.Number(
                    value=-1,
                    precision=0,
                    label="Seed",
                    info="-1 = random; the same seed repeats a picture",
                    elem_id="txt2img_seed",
                    scale=4,
                )
                random_seed = gr.Button(
                    "Random", elem_id="txt2img_random_seed", scale=1, min_width=40, size="sm"
                )
                reuse_seed = gr.Button(
                    "Reuse last", elem_id="txt2img_reuse_seed", scale=1, min_width=40, size="sm"
                )
            with gr.Row():
                batch_size = gr.Slider(
                    1,
                    MAX_BATCH_SIZE,
                    value=1,
                    step=1,
                    label="Batch size",
                    info="Images made together (needs more memory)",
                    elem_id="txt2img_batch_size",
                )
                batch_count = gr.Slider(
                    1,
                    MAX_BATCH_COUNT,
                    value=1,
                    step=1,
                    label="Batch count",
                    info="Batches made one after another",
                    elem_id="txt2img_batch_count",
                )
        with gr.Column(scale=6, min_width=320):
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="txt2img_generate", scale=3)
                interrupt = gr.Button("Interrupt", variant="stop", elem_id="txt2img_interrupt", scale=1)
            status = gr.HTML("", elem_id="txt2img_status")
            preview = gr.Image(
                label="Preview", visible=False, interactive=False, elem_id="txt2img_preview", height=160
            )
            gallery = gr.Gallery(
                label="Results",
                columns=2,
                height="auto",
                format="png",
                elem_id="txt2img_gallery",
                buttons=["download", "fullscreen"],
                interactive=False,
            )
            info = gr.Textbox(label="Generation info", lines=4, interactive=False, elem_id="txt2img_info")
            last_seed = gr.State(-1)
            job_id = gr.State("")
            infotexts = gr.State([])

    fields: dict[gr.components.Component, str] = {
        model: "model",
        prompt: "prompt",
        negative: "negative_prompt",
        sampler: "sampler",
        schedule: "schedule_type",
        steps: "steps",
        cfg: "cfg_scale",
        width: "width",
        height: "height",
        seed: "seed",
        batch_size: "batch_size",
        batch_count: "batch_count",
    }

    def on_generate(data: dict[Any, Any], request: gr.Request):
        values = {name: data[component] for component, name in fields.items()}
        values["model"] = values["model"] or ""
        req = build_request(Txt2ImgRequest, values)
        user = user_of(request)
        job = submit(studio, req, user)
        yield {job_id: job.id, status: progress_html(job, studio.queue_position(job))}
        shown_preview = None
        for state in follow(job):
            update: dict[Any, Any] = {status: progress_html(state, studio.queue_position(state))}
            if (
                state.preview is not None
                and state.preview is not shown_preview
                and state.state is JobState.RUNNING
            ):
                shown_preview = state.preview
                update[preview] = gr.Image(value=state.preview, visible=True)
            yield update
        if job.state is JobState.FAILED:
            raise gr.Error(job.error or "Generation failed")
        items = [(str(studio.image_path(img.id)), f"seed {img.seed}") for img in job.images]
        yield {
            job_id: "",
            status: progress_html(job, None),
            preview: gr.Image(value=None, visible=False),
            gallery: items,
            info: job.images[0].infotext if job.images else "",
            last_seed: job.images[0].seed if job.images else -1,
            infotexts: [img.infotext for img in job.images],
        }

    def on_interrupt(current: str, request: gr.Request) -> None:
        user = user_of(request)
        if current:
            try:
                studio.cancel(current, user)
                return
            except KeyError:
                pass
        studio.cancel_all(user)

    def on_select(texts: list[str], evt: gr.SelectData) -> str:
        index = evt.index if isinstance(evt.index, int) else 0
        return texts[index] if 0 <= index < len(texts) else ""

    generate.click(
        on_generate,
        inputs=set(fields),
        outputs=[job_id, status, preview, gallery, info, last_seed, infotexts],
        api_visibility="private",
        concurrency_id="generate",
        concurrency_limit=None,
        show_progress="hidden",
    )
    interrupt.click(on_interrupt, inputs=[job_id], outputs=None, api_visibility="private", queue=False)
    random_seed.click(lambda: -1, outputs=seed, api_visibility="private", queue=False)
    reuse_seed.click(lambda s: s, inputs=last_seed, outputs=seed, api_visibility="private", queue=False)
    refresh.click(
        lambda: gr.Dropdown(
            choices=[
                (m.label, m.name) for m in studio.models(refresh=True) if not m.refused and not m.inpaint
            ]
        ),
        outputs=model,
        api_visibility="private",
        queue=False,
    )
    gallery.select(on_select, inputs=infotexts, outputs=info, api_visibility="private", queue=False)
    return Txt2ImgTab(fields=fields, model=model, gallery=gallery, generate=generate)
