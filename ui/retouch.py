"""The Retouch tab: a picture and a chain of steps (erase, remove or replace the background, restore faces,
enhance, upscale, SD upscale, vectorise, logo pack) the user adds, removes and reorders, each with its own
settings (ui/retouch_steps.py). Every step's picture is kept and shown in a strip; a failing step stops the
chain there, with the steps before it kept and the reason shown at that step (ui/retouch_outcome.py).

The chain of a run is shown as a recipe (JSON) that can be re-applied to this picture, to a batch of uploads
(one job each) or read back from a retouched gallery image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image
from pydantic import ValidationError

from core.images import ImageInputError
from core.recipes import RecipeError, parse_recipe, recipe_from_png
from core.requests import validation_message
from core.retouch import MAX_TITLE_CHARS, RetouchRequest
from core.retouch_ops import ReplaceBackgroundOp, RestoreFacesOp
from studio import Job, JobState, Studio
from ui import fields as from_model
from ui import queue_controls
from ui.common import build_request, failed_html, follow, progress_html, submit, user_of
from ui.controls import RESULTS_HEIGHT
from ui.presets import preset_choices, style_choices
from ui.retouch_outcome import Outcome, outcome, svg_preview
from ui.retouch_steps import (
    ORDER_SCRIPT,
    TOOLS,
    StepPanel,
    build_panels,
    chain_updates,
    moved,
    ops_from_values,
)

GENERIC_UPLOAD_NAMES = frozenset({"image", "blob", "clipboard", "paste", "untitled"})
# scroll the page to the top when a picture arrives while the tab's picture box is above the window (sent here
# from another tab that was scrolled down); an upload, with the box in view, does not move the page
SCROLL_TO_TOP = """() => {
  const go = (frames) => {
    const box = document.getElementById('retouch_image');
    if (!box || box.offsetParent === null) {  // the tab is not shown yet: look again on the next frame
      if (frames > 0) requestAnimationFrame(() => go(frames - 1));
      return;
    }
    if (box.getBoundingClientRect().top < 0) window.scrollTo({top: 0});
  };
  requestAnimationFrame(() => go(60));
}"""
QUICK = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
RUNNING = {"api_visibility": "private", "concurrency_id": "generate", "concurrency_limit": None,
           "show_progress": "hidden"}  # fmt: skip


@dataclass
class RetouchParts:
    image: gr.Image
    run: gr.Button


@dataclass
class _Source:
    image: gr.Image
    title: gr.Textbox
    upload_name: gr.State
    seed: gr.Number


@dataclass
class _Chain:
    tool: gr.Dropdown
    add: gr.Button
    summary: gr.HTML
    chain: gr.State
    panels: dict[str, StepPanel]

    def controls(self) -> dict[str, Any]:
        """Every panel's settings by the name `ops_from_values` reads them under."""
        return {name: c for panel in self.panels.values() for name, c in panel.controls.items()}


@dataclass
class _Results:
    """The right column of the tab."""

    run: gr.Button
    interrupt: gr.Button
    status: gr.HTML
    result: gr.ImageSlider
    strip: gr.Gallery
    svg: gr.HTML
    downloads: gr.File
    info: gr.Textbox
    recipe: gr.Code
    load_recipe: gr.Button
    apply_recipe: gr.Button
    batch: gr.File
    apply_batch: gr.Button
    batch_gallery: gr.Gallery


def build(studio: Studio) -> RetouchParts:
    tools = studio.catalog.retouch_tools()
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            source = _build_source()
            chain = _build_chain(studio, tools)
            source.seed = from_model.number(
                RetouchRequest, "seed", precision=0, label="Seed",
                info="-1 = random; used by replace background, erase and SD upscale", elem_id="retouch_seed",
            )  # fmt: skip
        with gr.Column(scale=6, min_width=320):
            out = _build_results(studio)
    job_ids = gr.State([])
    _wire_chain(chain)
    _wire_run(studio, source, chain, out, job_ids)
    _wire_recipes(studio, source.image, out, job_ids)
    _wire_helpers(studio, source, chain, out, job_ids)
    return RetouchParts(image=source.image, run=out.run)


def _build_source() -> _Source:
    image = gr.Image(
        label="Picture", type="filepath", image_mode=None, sources=["upload", "clipboard"], format="png",
        height=320, elem_id="retouch_image",
    )  # fmt: skip
    title = gr.Textbox(
        label="Title", max_length=MAX_TITLE_CHARS, placeholder="an upload keeps its file name",
        info="Kept with the results in the gallery (search finds it)", elem_id="retouch_title",
    )  # fmt: skip
    return _Source(image=image, title=title, upload_name=gr.State(""), seed=None)  # type: ignore[arg-type]


def _build_chain(studio: Studio, tools: Any) -> _Chain:
    with gr.Row():
        tool = gr.Dropdown(
            [(label, name) for name, label in TOOLS.items()], value="remove_background", label="Tool",
            info="Each step works on the previous step's result", elem_id="retouch_tool", scale=3,
        )  # fmt: skip
        add = gr.Button(
            "Add step", variant="secondary", elem_id="retouch_add_step", scale=1, min_width=110,
            elem_classes=["easel-side-button"],
        )  # fmt: skip
    summary = gr.HTML(_summary_html([]), elem_id="retouch_chain", js_on_load=ORDER_SCRIPT, padding=True)
    panels = build_panels(studio, tools)
    return _Chain(tool=tool, add=add, summary=summary, chain=gr.State([]), panels=panels)


def _summary_html(chain: list[str]) -> str:
    if not chain:
        return (
            "<div><b>No steps yet.</b> Pick a tool and press <i>Add step</i>; add more to chain them.</div>"
        )
    steps = " → ".join(f"{index}. {TOOLS[tool]}" for index, tool in enumerate(chain, start=1))
    return f"<div><b>Steps:</b> {steps}</div>"


def _build_results(studio: Studio) -> _Results:
    """Run / Interrupt, the status, the before/after, the step strip, downloads, info and the recipe tools."""
    # the same actions bar as the generation tabs: sticky on a desktop, at the bottom of a phone's screen
    with gr.Column(elem_id="retouch_actions", elem_classes=["easel-actions"]):
        with gr.Row(elem_classes=["easel-action-buttons"]):
            run = gr.Button("Run", variant="primary", elem_id="retouch_run", scale=3)
            interrupt = gr.Button("Interrupt", variant="stop", elem_id="retouch_interrupt", scale=1)
            queue_controls.wire(studio, queue_controls.build("retouch"))
        status = gr.HTML("", elem_id="retouch_status")
    result = gr.ImageSlider(
        label="Before / after", type="filepath", image_mode=None, format="png", interactive=False,
        buttons=["download", "fullscreen"], elem_id="retouch_result",
    )  # fmt: skip
    strip = gr.Gallery(
        label="Each step's picture (all kept in the gallery)", columns=6, rows=1, height=230,
        object_fit="contain", format="png", interactive=False, allow_preview=True, preview=False,
        elem_id="retouch_step_results",
    )  # fmt: skip
    svg = gr.HTML("", elem_id="retouch_svg_preview")
    downloads = gr.File(
        label="Downloads (PNG, SVG, zip)",
        file_count="multiple",
        interactive=False,
        elem_id="retouch_downloads",
    )
    info = gr.Textbox(label="Retouch info", lines=3, interactive=False, elem_id="retouch_info")
    with gr.Accordion("Recipe: replay this chain on other pictures", open=False):
        recipe = gr.Code(label="Recipe (JSON)", language="json", interactive=True, elem_id="retouch_recipe")
        with gr.Row():
            load_recipe = gr.Button("Recipe from the picture", size="sm", elem_id="retouch_load_recipe")
            apply_recipe = gr.Button("Apply to the picture", size="sm", elem_id="retouch_apply_recipe")
        batch = gr.File(
            label="…or apply to several pictures", file_count="multiple", file_types=["image"],
            type="filepath", elem_id="retouch_batch",
        )  # fmt: skip
        apply_batch = gr.Button("Apply to these pictures", size="sm", elem_id="retouch_apply_batch")
        batch_gallery = gr.Gallery(
            label="Batch results", columns=4, height=RESULTS_HEIGHT, object_fit="contain",
            format="png", interactive=False, elem_id="retouch_batch_gallery", elem_classes=["easel-results"],
        )  # fmt: skip
    return _Results(
        run=run, interrupt=interrupt, status=status, result=result, strip=strip, svg=svg, downloads=downloads,
        info=info, recipe=recipe, load_recipe=load_recipe, apply_recipe=apply_recipe, batch=batch,
        apply_batch=apply_batch, batch_gallery=batch_gallery,
    )  # fmt: skip


# --- the chain: add, move, remove -------------------------------------------------------------------------


def _wire_chain(ui: _Chain) -> None:
    """Add step / ↑ / ↓ / ✕: the chain state, the panels shown in its order, the tools left to add."""
    panels = ui.panels
    outputs = [ui.chain, ui.tool, ui.summary] + [
        c for p in panels.values() for c in (p.group, p.title, p.state)
    ]

    def show(chain: list[str]) -> dict[Any, Any]:
        left = [(label, name) for name, label in TOOLS.items() if name not in chain]
        return {
            ui.chain: chain, ui.summary: _summary_html(chain),
            ui.tool: gr.Dropdown(choices=left, value=left[0][1] if left else None),
            **chain_updates(panels, chain),
        }  # fmt: skip

    def on_add(tool: str | None, chain: list[str]) -> dict[Any, Any]:
        if not tool:
            raise gr.Error("Pick a tool to add (each tool can be one step of the chain).")
        if tool in chain:
            raise gr.Error(f"{TOOLS[tool]} is already step {chain.index(tool) + 1}; each tool is one step.")
        return show([*chain, tool])

    each = {**QUICK, "trigger_mode": "multiple"}  # a quick second click is a second step, never dropped
    ui.add.click(on_add, inputs=[ui.tool, ui.chain], outputs=outputs, **each)
    for tool, panel in panels.items():
        panel.up.click(lambda c, t=tool: show(moved(c, t, -1)), inputs=ui.chain, outputs=outputs, **each)
        panel.down.click(lambda c, t=tool: show(moved(c, t, 1)), inputs=ui.chain, outputs=outputs, **each)
        panel.remove.click(
            lambda c, t=tool: show([x for x in c if x != t]), inputs=ui.chain, outputs=outputs, **each
        )


# --- running -----------------------------------------------------------------------------------------------


def _read(path: str | None) -> bytes:
    if not path:
        raise gr.Error("Upload a picture (or send one here from a result or the gallery) first.")
    return Path(path).read_bytes()


def _warn_missing(studio: Studio, request: RetouchRequest) -> None:
    """Operations whose model files are missing: say what to download and where, before queueing."""
    if any(isinstance(op, RestoreFacesOp) for op in request.ops):
        tools = studio.catalog.retouch_tools()
        if not tools.face_restorers:
            raise gr.Error(tools.missing.get("restore_faces") or "No face restoration model is installed.")


def _run_jobs(studio: Studio, requests: list[RetouchRequest], user: str) -> Iterator[tuple[list[Job], str]]:
    for request in requests:
        _warn_missing(studio, request)
    jobs = [submit(studio, request, user) for request in requests]
    while True:
        unfinished = [j for j in jobs if j.state not in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)]
        shown = unfinished[0] if unfinished else jobs[-1]
        text = progress_html(shown, studio.jobs.queue_position(shown), studio.jobs.wait_estimate(shown))
        if len(jobs) > 1:
            text = f"<div>{len(jobs) - len(unfinished)} of {len(jobs)} pictures done</div>{text}"
        yield jobs, text
        if not unfinished:
            return
        for _ in follow(unfinished[0]):
            break


def _status(job: Job, seen: Outcome) -> str:
    """The status line of a finished run; a failed chain says what it kept."""
    if job.state is not JobState.FAILED:
        return progress_html(job, None)
    kept = f" — the {len(seen.strip)} step picture(s) before it are kept in the gallery" if seen.strip else ""
    return failed_html((job.error or "The retouch failed.") + kept)


def _title(value: str | None) -> str | None:
    text = " ".join((value or "").split())
    return text or None


def _finished(studio: Studio, job: Job, chain: list[str], source: str, ui: _Chain, out: _Results) -> dict:
    """Every output of a finished run of the chain."""
    seen = outcome(studio, job, chain)
    for warning in seen.warnings:
        gr.Warning(warning)
    info = job.images[-1].infotext if job.images and not seen.failed else (job.error or "")
    if not job.images and not seen.failed:
        info = "The chain only exported files; the picture is unchanged."
    return {
        out.status: _status(job, seen),
        out.result: (source, seen.result or source),
        out.strip: seen.strip or None,
        out.svg: svg_preview(seen.exports),
        out.downloads: (seen.pictures + seen.exports) or None,
        out.info: info,
        out.recipe: json.dumps(job.request.recipe(), indent=1),  # type: ignore[union-attr]
        **{ui.panels[tool].state: text for tool, text in seen.states.items()},
    }


def _wire_run(studio: Studio, source: _Source, ui: _Chain, out: _Results, job_ids: gr.State) -> None:
    """The Run button: the chain on the picture, every step's picture kept."""
    controls = ui.controls()
    states = [panel.state for panel in ui.panels.values()]

    def on_run(data: dict[Any, Any], request: gr.Request):
        values = {name: data[component] for name, component in controls.items()}
        path, chain = data[source.image], list(data[ui.chain] or [])
        try:
            picture = _read(path)
            with Image.open(path) as opened:
                size = opened.size
            fields = {
                "image": picture, "ops": ops_from_values(chain, values, size), "seed": data[source.seed],
                "title": _title(data[source.title]), "keep_steps": True,
            }  # fmt: skip
            req = build_request(RetouchRequest, fields)
        except gr.Error as exc:  # the status must not keep saying how the previous run went
            yield {out.status: failed_html(str(exc.message))}
            raise
        cleared = {state: "" for state in states}
        for jobs, text in _run_jobs(studio, [req], user_of(request)):  # type: ignore[list-item]
            yield {job_ids: [j.id for j in jobs], out.status: text, **cleared}
            cleared = {}
        yield {job_ids: [], **_finished(studio, jobs[0], chain, path, ui, out)}

    inputs = {*controls.values(), source.image, source.title, source.seed, ui.chain}
    outputs = [
        job_ids, out.status, out.result, out.strip, out.svg, out.downloads, out.info, out.recipe, *states,
    ]  # fmt: skip
    out.run.click(on_run, inputs=inputs, outputs=outputs, **RUNNING)


def _recipe_requests(text: str, paths: list[str]) -> list[RetouchRequest]:
    try:
        parsed = parse_recipe(text or "")
    except RecipeError as exc:
        raise gr.Error(str(exc)) from None
    return [build_request(parsed.request, {"image": _read(p)}) for p in paths]  # type: ignore[misc]


def _last_picture(studio: Studio, job: Job) -> str | None:
    return str(studio.gallery.file_path(job.images[-1].id)) if job.images else None


def _wire_recipes(studio: Studio, image: gr.Image, out: _Results, job_ids: gr.State) -> None:
    """Recipes: read one from the picture, apply one to the picture or to a batch of pictures."""
    status, result, downloads, info = out.status, out.result, out.downloads, out.info
    batch_gallery = out.batch_gallery

    def on_apply(text: str, path: str | None, request: gr.Request):
        try:
            reqs = _recipe_requests(text, [path] if path else [""])
        except gr.Error as exc:
            yield {status: failed_html(str(exc.message))}
            raise
        for jobs, html_text in _run_jobs(studio, reqs, user_of(request)):
            yield {job_ids: [j.id for j in jobs], status: html_text}
        job = jobs[0]
        if job.state is JobState.FAILED:
            yield {job_ids: [], status: failed_html(job.error or "The retouch failed.")}
            return
        after = _last_picture(studio, job)
        yield {
            job_ids: [], status: progress_html(job, None), result: (path, after or path),
            downloads: ([after] if after else []) + [str(p) for p in job.exports] or None,
            info: job.images[-1].infotext if job.images else "",
        }  # fmt: skip

    def on_batch(text: str, paths: list[str] | None, request: gr.Request):
        if not paths:
            raise gr.Error("Add the pictures to apply the recipe to.")
        try:
            reqs = _recipe_requests(text, list(paths))
        except gr.Error as exc:
            yield {status: failed_html(str(exc.message))}
            raise
        # the before/after and info of an earlier single run do not describe this batch
        stale = {result: None, info: "", downloads: None, batch_gallery: None}
        for jobs, html_text in _run_jobs(studio, reqs, user_of(request)):
            yield {job_ids: [j.id for j in jobs], status: html_text, **stale}
            stale = {}
        failed = [j.error for j in jobs if j.state is JobState.FAILED]
        if failed:
            gr.Warning(f"{len(failed)} of {len(jobs)} pictures failed: {failed[0]}")
        pictures = [p for p in (_last_picture(studio, j) for j in jobs if j.state is JobState.DONE) if p]
        files = pictures + [str(p) for j in jobs for p in j.exports]
        summary = f"Batch: the recipe was applied to {len(jobs)} picture(s); {len(pictures)} result(s)"
        if failed:
            summary += f", {len(failed)} failed ({failed[0]})"
        yield {
            job_ids: [], status: html_text, batch_gallery: pictures, downloads: files or None,
            info: summary + " (under Batch results).",
        }  # fmt: skip

    def on_load_recipe(path: str | None) -> str:
        try:
            found = recipe_from_png(_read(path))
        except (RecipeError, ImageInputError) as exc:
            raise gr.Error(f"The picture's recipe cannot be read: {exc}") from None
        if found is None:
            raise gr.Error("This picture carries no retouch recipe (only retouched gallery pictures do).")
        return found.to_json()

    outputs = [job_ids, status, result, downloads, info, out.recipe, batch_gallery]
    out.apply_recipe.click(on_apply, inputs=[out.recipe, image], outputs=outputs, **RUNNING)
    out.apply_batch.click(on_batch, inputs=[out.recipe, out.batch], outputs=outputs, **RUNNING)
    out.load_recipe.click(on_load_recipe, inputs=image, outputs=out.recipe, api_visibility="private")


# --- helpers: interrupt, the picture's title and editors, the final background prompt -----------------------


def upload_title(path: str | None) -> str:
    """The title an uploaded file gives: its name without the extension ("" for a pasted picture's
    generic name)."""
    stem = Path(path).stem.strip() if path else ""
    return "" if stem.lower() in GENERIC_UPLOAD_NAMES else stem[:MAX_TITLE_CHARS]


def _wire_helpers(studio: Studio, source: _Source, ui: _Chain, out: _Results, job_ids: gr.State) -> None:
    """Interrupt, the title and brush editors following the picture, the final background prompt."""
    image, controls = source.image, ui.controls()

    def on_interrupt(ids: list[str], request: gr.Request) -> None:
        user = user_of(request)
        for job_id in ids or []:
            try:
                studio.jobs.cancel(job_id, user)
            except KeyError:
                pass

    def on_upload(path: str | None) -> tuple[str, str]:
        name = upload_title(path)
        return name, name

    def on_change(path: str | None, uploaded: str, title: str) -> Any:
        # an upload keeps its own title (set by on_upload, whichever of the two runs first); a picture sent
        # here from elsewhere starts without one
        if path and uploaded and upload_title(path) == uploaded:
            return gr.skip()
        return ""

    out.interrupt.click(on_interrupt, inputs=job_ids, outputs=None, api_visibility="private", queue=False)
    image.upload(on_upload, inputs=image, outputs=[source.title, source.upload_name], **QUICK)
    image.change(on_change, inputs=[image, source.upload_name, source.title], outputs=source.title, **QUICK)
    image.change(None, js=SCROLL_TO_TOP, **QUICK)
    for editor in (controls["erase_editor"], controls["cutout_brush"]):
        image.change(lambda path: path, inputs=image, outputs=editor, **QUICK)
    styling = [controls[name] for name in ("bg_prompt", "bg_negative", "bg_preset", "bg_styles")] + [
        controls[name] for name in ("rb_model", "rb_sampler", "rb_steps", "rb_cfg")
    ]
    for component in styling:
        component.change(
            lambda *args: _background_preview(studio, *args),
            inputs=styling,
            outputs=controls["bg_final"],
            **QUICK,
        )
    # teammates may have added presets and styles since the page was built
    preset, styles = controls["bg_preset"], controls["bg_styles"]
    preset.focus(lambda: gr.Dropdown(choices=preset_choices(studio)), outputs=preset, **QUICK)
    styles.focus(lambda: gr.Dropdown(choices=style_choices(studio)), outputs=styles, **QUICK)


def _background_preview(
    studio: Studio, prompt: str, negative: str, preset: str | None, styles: list[str] | None, *sampling: Any
) -> Any:
    """The "Final background prompt" box: the prompt and the settings really sent, with the preset and styles
    applied (hidden when neither is chosen); settings a preset sets instead of this step's are marked."""
    if not preset and not styles:
        return gr.Textbox(value="", visible=False)
    model, sampler, steps, cfg = sampling
    try:
        op = ReplaceBackgroundOp(
            prompt=prompt or "", negative_prompt=negative or "", model=model if isinstance(model, str) else "",
            preset=preset or "", styles=list(styles or []), sampler=sampler, steps=steps, cfg_scale=cfg,
        )  # fmt: skip
        styled = studio.resolver.styled_background(op)
    except ValidationError as exc:
        return gr.Textbox(value=validation_message(exc), visible=True)
    except ValueError as exc:
        return gr.Textbox(value=str(exc), visible=True)
    text = styled.prompt + (f"\nNegative prompt: {styled.negative_prompt}" if styled.negative_prompt else "")
    by_preset = f" (set by the preset {preset})" if preset else ""
    used = [
        f"sampler {styled.sampler}" + (by_preset if styled.sampler != sampler else ""),
        f"{styled.steps} steps" + (by_preset if styled.steps != steps else ""),
        f"CFG {styled.cfg_scale:g}" + (by_preset if styled.cfg_scale != cfg else ""),
        f"{styled.schedule_type} schedule",
    ]
    if styled.model:
        used.append(f"model {styled.model}")
    return gr.Textbox(value=text + "\nSent with: " + ", ".join(used), visible=True)


def register_api(studio: Studio) -> None:
    """The Gradio API endpoint `retouch` (gradio_client: `client.predict(image_b64, ops, api_name="/retouch")`)."""
    import base64
    import binascii

    def retouch(
        image: str,
        ops: list[dict] | None = None,
        recipe: str = "",
        seed: int = -1,
        title: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Apply operations (`[{"op": "upscale", "scale": 2}, ...]`) or a recipe's JSON to a base64 picture.
        Returns gallery ids, infotexts, base64 PNGs (with metadata), base64 exports (SVG, zip) and the recipe."""
        try:
            data = base64.b64decode(image.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            raise gr.Error("image must be a base64-encoded PNG, JPEG or WebP picture") from None
        if bool(ops) == bool(recipe):
            raise gr.Error("Send either ops (a list of operations) or recipe (JSON), not both.")
        if recipe:
            try:
                ops = [op.model_dump() for op in parse_recipe(recipe).ops]
            except RecipeError as exc:
                raise gr.Error(str(exc)) from None
        req = build_request(RetouchRequest, {"image": data, "ops": ops, "seed": seed, "title": title or None})
        _warn_missing(studio, req)  # type: ignore[arg-type]
        job = submit(studio, req, user_of(request))
        job.wait()
        if job.state is not JobState.DONE:
            raise gr.Error(job.error or "The retouch did not finish.")
        return {
            "ids": [i.id for i in job.images],
            "infotexts": [i.infotext for i in job.images],
            "images": [
                base64.b64encode(studio.gallery.file_path(i.id).read_bytes()).decode() for i in job.images
            ],
            "exports": [
                {"name": p.name, "data": base64.b64encode(p.read_bytes()).decode()} for p in job.exports
            ],
            "recipe": job.request.recipe(),  # type: ignore[union-attr]
        }

    gr.api(retouch, api_name="retouch", concurrency_id="generate", concurrency_limit=None)
