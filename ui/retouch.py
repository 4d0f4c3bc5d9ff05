"""The Retouch tab: pick operations, run them in a fixed order on a picture, compare before/after, download.

Operations (in the order they run): erase → remove background → replace background → restore faces → enhance →
upscale / SD upscale → vectorise / logo pack. The chain of a run is shown as a recipe (JSON) that can be
re-applied to this picture, to a batch of uploads (one job each) or read back from a retouched gallery image.
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

from core.backend import RetouchTools
from core.images import ImageInputError, encode_png
from core.masks import mask_from_layers, require_nonempty
from core.recipes import RecipeError, parse_recipe, recipe_from_png
from core.requests import validation_message
from core.retouch import RetouchRequest
from core.retouch_ops import (
    DEFAULT_LOGO_SIZES,
    ENHANCE_STRENGTHS,
    EnhanceOp,
    ReplaceBackgroundOp,
    RestoreFacesOp,
    SdUpscaleOp,
    VectorizeOp,
)
from core.samplers import DEFAULT_SAMPLER, SAMPLERS
from studio import Job, JobState, Studio
from ui import fields as from_model
from ui import queue_controls
from ui.common import build_request, failed_html, follow, progress_html, submit, user_of
from ui.controls import RESULTS_HEIGHT
from ui.generation import model_choices
from ui.presets import preset_choices, style_choices

Component = gr.components.Component

OPERATIONS = [
    ("Erase (brush it below)", "erase"),
    ("Remove background", "remove_background"),
    ("Replace background", "replace_background"),
    ("Restore faces", "restore_faces"),
    ("Enhance", "enhance"),
    ("Upscale", "upscale"),
    ("SD upscale", "sd_upscale"),
    ("Vectorise (SVG)", "vectorize"),
    ("Logo pack (zip of PNGs)", "logo_pack"),
]
ORDER = [value for _, value in OPERATIONS]
LOGO_SIZES = [16, 32, 48, 64, 128, 256, 512, 1024, 2048]


@dataclass
class RetouchParts:
    image: gr.Image
    run: gr.Button


def _read(path: str | None) -> bytes:
    if not path:
        raise gr.Error("Upload a picture (or send one here from a result or the gallery) first.")
    return Path(path).read_bytes()


def _choice(value: Any) -> str:
    return value if isinstance(value, str) else ""


def ops_from_values(values: dict[str, Any], image: Image.Image | None = None) -> list[dict[str, Any]]:
    """The chosen operations, in the tab's fixed order, as request data (validated by RetouchRequest)."""
    chosen = set(values["ops"] or [])
    diffusion = {
        "model": _choice(values["model"]),
        "sampler": values["sampler"],
        "steps": values["steps"],
        "cfg_scale": values["cfg_scale"],
        "seed": int(values["seed"]) if values["seed"] is not None else -1,
    }
    ops: list[dict[str, Any]] = []
    for name in ORDER:
        if name not in chosen:
            continue
        if name == "erase":
            ops.append({"op": "erase", "mask": _erase_mask(values["erase_editor"], image), **diffusion})
        elif name == "remove_background":
            ops.append(
                {"op": name, "method": values["bg_method"], "model": _choice(values["bg_model"]),
                 "alpha_matting": values["alpha_matting"]}
            )  # fmt: skip
        elif name == "replace_background":
            ops.append(
                {"op": name, "prompt": values["bg_prompt"], "negative_prompt": values["bg_negative"],
                 "method": values["bg_method"], "segmenter": _choice(values["bg_model"]),
                 "preset": _choice(values["bg_preset"]), "styles": list(values["bg_styles"] or []), **diffusion}
            )  # fmt: skip
        elif name == "restore_faces":
            ops.append(
                {"op": name, "model": _choice(values["face_model"]), "visibility": values["face_visibility"]}
            )
        elif name == "enhance":
            if values["enhance_auto"]:
                ops.append({"op": name, "auto": True})
            else:
                ops.append({"op": name, **{k: values[f"enhance_{k}"] for k in ENHANCE_STRENGTHS}})
        elif name == "upscale":
            ops.append({"op": name, "upscaler": values["upscaler"], "scale": values["scale"]})
        elif name == "sd_upscale":
            ops.append(
                {"op": name, "upscaler": values["upscaler"], "scale": values["scale"],
                 "denoising_strength": values["sd_strength"], "tile_size": values["tile_size"],
                 "overlap": values["overlap"], "prompt": values["sd_prompt"], **diffusion}
            )  # fmt: skip
        elif name == "vectorize":
            ops.append({"op": name, "colors": values["svg_colors"], "detail": values["svg_detail"]})
        elif name == "logo_pack":
            ops.append({"op": name, "sizes": sorted(int(s) for s in values["logo_sizes"] or [])})
    if not ops:
        raise gr.Error("Tick at least one operation to run.")
    return ops


def _erase_mask(editor: dict | None, image: Image.Image | None) -> bytes:
    if image is None or not editor:
        raise gr.Error("Erase: brush over what to remove in the Erase editor first.")
    try:
        mask = mask_from_layers(editor.get("layers") or [], image.size)
        require_nonempty(mask)
    except ImageInputError as exc:
        raise gr.Error(f"Erase: {exc}") from None
    return encode_png(mask)


def _warn_missing(studio: Studio, request: RetouchRequest) -> None:
    """Operations whose model files are missing: say what to download and where, before queueing."""
    if any(isinstance(op, RestoreFacesOp) for op in request.ops):
        tools = studio.catalog.retouch_tools()
        if not tools.face_restorers:
            raise gr.Error(tools.missing.get("restore_faces") or "No face restoration model is installed.")


def _background_preview(
    studio: Studio, prompt: str, negative: str, preset: str | None, styles: list[str] | None, model: Any
) -> Any:
    """The "Final background prompt" box: the prompt and settings the Studio will send with the preset and
    styles applied (hidden when neither is chosen)."""
    if not preset and not styles:
        return gr.Textbox(value="", visible=False)
    try:
        op = ReplaceBackgroundOp(
            prompt=prompt or "", negative_prompt=negative or "", model=_choice(model), preset=preset or "",
            styles=list(styles or []),
        )  # fmt: skip
        styled = studio.resolver.styled_background(op)
    except ValidationError as exc:
        return gr.Textbox(value=validation_message(exc), visible=True)
    except ValueError as exc:
        return gr.Textbox(value=str(exc), visible=True)
    text = styled.prompt + (f"\nNegative prompt: {styled.negative_prompt}" if styled.negative_prompt else "")
    if preset:
        text += (
            f"\n(sent with: {styled.sampler}, {styled.schedule_type} schedule, {styled.steps} steps, "
            f"CFG {styled.cfg_scale:g}{', model ' + styled.model if styled.model else ''})"
        )
    return gr.Textbox(value=text, visible=True)


def _outcome(studio: Studio, job: Job) -> tuple[str | None, list[str], str]:
    """(result picture path, download paths, infotext) of a finished job; gr.Error when it failed."""
    if job.state is JobState.FAILED:
        raise gr.Error(job.error or "The retouch failed.")
    result = str(studio.gallery.file_path(job.images[0].id)) if job.images else None
    downloads = ([result] if result else []) + [str(p) for p in job.exports]
    return result, downloads, job.images[0].infotext if job.images else ""


def build(studio: Studio) -> RetouchParts:
    tools = studio.catalog.retouch_tools()
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            controls, bg_final = _build_picture_and_background(studio, tools)
            controls.update(_build_faces_enhance_upscale(tools))
            controls.update(_build_diffusion_and_vector(studio))
        with gr.Column(scale=6, min_width=320):
            out = _build_results(studio)
    job_ids = gr.State([])
    _wire_run(studio, controls, out, job_ids)
    _wire_recipes(studio, controls["image"], out, job_ids)
    _wire_helpers(studio, controls, bg_final, out, job_ids)
    return RetouchParts(image=controls["image"], run=out.run)


@dataclass
class _Results:
    """The right column of the tab."""

    run: gr.Button
    interrupt: gr.Button
    status: gr.HTML
    result: gr.ImageSlider
    downloads: gr.File
    info: gr.Textbox
    recipe: gr.Code
    load_recipe: gr.Button
    apply_recipe: gr.Button
    batch: gr.File
    apply_batch: gr.Button
    batch_gallery: gr.Gallery


# The controls of the left column, by the name `ops_from_values` reads them under.
Controls = dict[str, Component]


def _build_picture_and_background(studio: Studio, tools: RetouchTools) -> tuple[Controls, gr.Textbox]:
    """The picture, the operations, the erase editor and the background settings (and the final background
    prompt box, which is no request field)."""

    image = gr.Image(
        label="Picture", type="filepath", image_mode=None, sources=["upload", "clipboard"], format="png",
        height=320, elem_id="retouch_image",
    )  # fmt: skip
    ops = gr.CheckboxGroup(
        OPERATIONS, value=["enhance"], label="Operations (run in this order)",
        info="Tick several to chain them: each works on the previous one's result",
        elem_id="retouch_ops",
    )  # fmt: skip
    with gr.Accordion("Erase", open=False):
        erase_editor = gr.ImageEditor(
            label="Brush over what to remove", type="pil", sources=[], layers=False, transforms=(),
            brush=gr.Brush(colors=[("#ff3d7f", 0.6)], color_mode="fixed", default_size=24),
            format="png", height=320, elem_id="retouch_erase_editor",
        )  # fmt: skip
    with gr.Accordion("Background", open=False):
        with gr.Row():
            bg_method = gr.Radio(
                ["auto", "model", "key"], value="auto", label="Cut-out method",
                info="model: a segmentation model from models/rembg/; key: a near-uniform background "
                "colour (logos, studio shots); auto: the model when there is one",
                elem_id="retouch_bg_method",
            )  # fmt: skip
            bg_model = gr.Dropdown(
                list(tools.segmenters), value=tools.segmenters[0] if tools.segmenters else None,
                label="Segmentation model", info="Files in models/rembg/", elem_id="retouch_bg_model",
            )  # fmt: skip
        alpha_matting = gr.Checkbox(
            label="Alpha matting", info="Softer, more exact edges (hair, fur); slower",
            elem_id="retouch_alpha_matting",
        )  # fmt: skip
        bg_prompt = gr.Textbox(
            label="New background (replace background)", lines=2,
            placeholder="a marble table in soft daylight, product photo", elem_id="retouch_bg_prompt",
        )  # fmt: skip
        bg_negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="retouch_bg_negative")
        with gr.Row():
            bg_preset = gr.Dropdown(
                preset_choices(studio), value=None, label="Preset",
                info="Its styles, sampler, steps and CFG (and model, when the model is left empty) "
                "apply to the new background; the picture keeps its size",
                elem_id="retouch_bg_preset",
            )  # fmt: skip
            bg_styles = gr.Dropdown(
                style_choices(studio), value=[], multiselect=True, label="Styles",
                info="Applied after the preset's, in order: {prompt} in a style is replaced by your prompt",
                elem_id="retouch_bg_styles",
            )  # fmt: skip
        bg_final = gr.Textbox(
            label="Final background prompt (what will be sent)", lines=2, interactive=False,
            visible=False, elem_id="retouch_bg_final_prompt",
        )  # fmt: skip
    controls = {
        "image": image, "ops": ops, "erase_editor": erase_editor, "bg_method": bg_method, "bg_model": bg_model,
        "alpha_matting": alpha_matting, "bg_prompt": bg_prompt, "bg_negative": bg_negative,
        "bg_preset": bg_preset, "bg_styles": bg_styles,
    }  # fmt: skip
    return controls, bg_final


def _build_faces_enhance_upscale(tools: RetouchTools) -> Controls:
    """Face restoration, Enhance and Upscale (plain and SD upscale)."""
    with gr.Accordion("Restore faces", open=False):
        face_model = gr.Dropdown(
            list(tools.face_restorers), value=tools.face_restorers[0] if tools.face_restorers else None,
            label="Face restoration model",
            info=tools.missing.get("restore_faces") or "GFPGAN / RestoreFormer weights in models/face_restore/",
            elem_id="retouch_face_model",
        )  # fmt: skip
        face_visibility = from_model.slider(  # the model takes any visibility above 0
            RestoreFacesOp, "visibility", minimum=0.05, step=0.05, label="Visibility",
            info="How much of the restored face shows (1 = all of it)", elem_id="retouch_face_visibility",
        )  # fmt: skip
    with gr.Accordion("Enhance", open=False):
        enhance_auto = gr.Checkbox(
            value=True, label="Auto", info="Pick the strengths from the picture (the sliders are ignored)",
            elem_id="retouch_enhance_auto",
        )  # fmt: skip
        tips = {
            "levels": "Stretch the darkest/brightest tones to black/white",
            "white_balance": "Remove a colour cast",
            "contrast": "Spread the tones",
            "saturation": "Stronger colours",
            "denoise": "Smooth sensor noise",
            "sharpen": "Unsharp mask",
        }
        strengths = {
            name: from_model.slider(
                EnhanceOp,
                name,
                step=0.05,
                label=name.replace("_", " ").capitalize(),
                info=tips[name],
                elem_id=f"retouch_enhance_{name}",
            )  # fmt: skip
            for name in ENHANCE_STRENGTHS
        }
    with gr.Accordion("Upscale", open=False):
        with gr.Row():
            upscaler = gr.Dropdown(
                list(tools.upscalers), value="Lanczos", label="Upscaler",
                info="Lanczos/Nearest, or a model file from models/upscalers/ (ESRGAN, SwinIR, …)",
                elem_id="retouch_upscaler",
            )  # fmt: skip
            scale = from_model.slider(
                SdUpscaleOp, "scale", step=0.5, label="Scale", info=None, elem_id="retouch_scale"
            )
        sd_prompt = gr.Textbox(
            label="SD upscale prompt", lines=1, placeholder="optional: what the detail should look like",
            elem_id="retouch_sd_prompt",
        )  # fmt: skip
        with gr.Row():
            sd_strength = from_model.slider(  # the model takes any strength above 0
                SdUpscaleOp, "denoising_strength", minimum=0.05, step=0.05,
                label="SD upscale denoising strength",
                info="How much each tile is repainted (0.1–0.3 adds detail, keeps the picture)",
                elem_id="retouch_sd_strength",
            )  # fmt: skip
            tile_size = from_model.slider(
                SdUpscaleOp, "tile_size", step=8, label="Tile size",
                info="The model works on tiles this big (the model's native size is best)",
                elem_id="retouch_tile_size",
            )  # fmt: skip
            overlap = from_model.slider(  # the model takes up to half the largest tile
                SdUpscaleOp, "overlap", maximum=256, step=8, label="Tile overlap",
                info="Neighbouring tiles are blended over this many px", elem_id="retouch_overlap",
            )  # fmt: skip
    return {
        "face_model": face_model, "face_visibility": face_visibility, "enhance_auto": enhance_auto,
        "upscaler": upscaler, "scale": scale, "sd_prompt": sd_prompt, "sd_strength": sd_strength,
        "tile_size": tile_size, "overlap": overlap,
        **{f"enhance_{name}": slider for name, slider in strengths.items()},
    }  # fmt: skip


def _build_diffusion_and_vector(studio: Studio) -> Controls:
    """The Stable Diffusion settings the diffusion operations share, and Vectorise / logo pack."""
    with gr.Accordion("Stable Diffusion settings (replace background, SD upscale, erase)", open=False):
        with gr.Row():
            model = gr.Dropdown(
                model_choices(studio, inpaint=True), value=studio.catalog.default_model(), label="Model",
                elem_id="retouch_model",
            )  # fmt: skip
            sampler = gr.Dropdown(
                list(SAMPLERS), value=DEFAULT_SAMPLER, label="Sampler",
                info="How noise is removed step by step", elem_id="retouch_sampler",
            )  # fmt: skip
        with gr.Row():
            steps = from_model.slider(SdUpscaleOp, "steps", label="Sampling steps", elem_id="retouch_steps")
            cfg = from_model.slider(
                SdUpscaleOp, "cfg_scale", step=0.5, label="CFG scale", info="How strictly to follow the prompt",
                elem_id="retouch_cfg",
            )  # fmt: skip
            seed = from_model.number(
                RetouchRequest,
                "seed",
                precision=0,
                label="Seed",
                info="-1 = random",
                elem_id="retouch_seed",
            )
    with gr.Accordion("Vectorise and logo pack", open=False):
        with gr.Row():
            svg_colors = gr.Radio(
                ["color", "binary"], value="color", label="SVG colours",
                info="binary: black shapes only (one-colour logos)", elem_id="retouch_svg_colors",
            )  # fmt: skip
            svg_detail = from_model.slider(
                VectorizeOp, "detail", step=0.05, label="SVG detail",
                info="0 = few smooth shapes, 1 = every speck", elem_id="retouch_svg_detail",
            )  # fmt: skip
        logo_sizes = gr.CheckboxGroup(
            LOGO_SIZES, value=list(DEFAULT_LOGO_SIZES), label="Logo pack sizes (px, square)",
            elem_id="retouch_logo_sizes",
        )  # fmt: skip
    return {
        "model": model, "sampler": sampler, "steps": steps, "cfg_scale": cfg, "seed": seed,
        "svg_colors": svg_colors, "svg_detail": svg_detail, "logo_sizes": logo_sizes,
    }  # fmt: skip


def _build_results(studio: Studio) -> _Results:
    """Run / Interrupt, the status, the before/after, downloads, info and the recipe tools."""
    with gr.Row():
        run = gr.Button("Run", variant="primary", elem_id="retouch_run", scale=3)
        interrupt = gr.Button("Interrupt", variant="stop", elem_id="retouch_interrupt", scale=1)
        queue_controls.wire(studio, queue_controls.build("retouch"))
    status = gr.HTML("", elem_id="retouch_status")
    result = gr.ImageSlider(
        label="Before / after", type="filepath", image_mode=None, format="png", interactive=False,
        buttons=["download", "fullscreen"], elem_id="retouch_result",
    )  # fmt: skip
    downloads = gr.File(
        label="Downloads (PNG, SVG, zip)", file_count="multiple", interactive=False,
        elem_id="retouch_downloads",
    )  # fmt: skip
    info = gr.Textbox(label="Retouch info", lines=3, interactive=False, elem_id="retouch_info")
    with gr.Accordion("Recipe: replay this chain on other pictures", open=False):
        recipe = gr.Code(
            label="Recipe (JSON)", language="json", interactive=True, elem_id="retouch_recipe",
        )  # fmt: skip
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
        run=run, interrupt=interrupt, status=status, result=result, downloads=downloads, info=info,
        recipe=recipe, load_recipe=load_recipe, apply_recipe=apply_recipe, batch=batch, apply_batch=apply_batch,
        batch_gallery=batch_gallery,
    )  # fmt: skip


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


def _recipe_requests(text: str, paths: list[str]) -> list[RetouchRequest]:
    try:
        parsed = parse_recipe(text or "")
    except RecipeError as exc:
        raise gr.Error(str(exc)) from None
    return [build_request(parsed.request, {"image": _read(p)}) for p in paths]  # type: ignore[misc]


def _wire_run(studio: Studio, controls: Controls, out: _Results, job_ids: gr.State) -> None:
    """The Run button: the ticked operations on the picture."""
    fields = {component: name for name, component in controls.items()}
    status, result, downloads, info, recipe = out.status, out.result, out.downloads, out.info, out.recipe
    batch_gallery = out.batch_gallery

    def on_run(data: dict[Any, Any], request: gr.Request):
        values = {name: data[component] for component, name in fields.items()}
        try:
            source = _read(values["image"])
            with Image.open(values["image"]) as picture:
                size_only = Image.new("L", picture.size)
            req = build_request(RetouchRequest, {"image": source, "ops": ops_from_values(values, size_only)})
        except gr.Error as exc:  # the status must not keep saying how the previous run went
            yield {status: failed_html(str(exc.message))}
            raise
        for jobs, text in _run_jobs(studio, [req], user_of(request)):  # type: ignore[list-item]
            yield {job_ids: [j.id for j in jobs], status: text}
        job = jobs[0]
        after, files, infotext = _outcome(studio, job)
        yield {
            job_ids: [],
            status: progress_html(job, None),
            result: (values["image"], after or values["image"]),
            downloads: files or None,
            info: infotext or "The chain only exported files; the picture is unchanged.",
            recipe: json.dumps(job.request.recipe(), indent=1),  # type: ignore[union-attr]
        }

    outputs = [job_ids, status, result, downloads, info, recipe, batch_gallery]
    common = {"api_visibility": "private", "concurrency_id": "generate", "concurrency_limit": None,
              "show_progress": "hidden"}  # fmt: skip
    out.run.click(on_run, inputs=set(fields), outputs=outputs, **common)


def _wire_recipes(studio: Studio, image: gr.Image, out: _Results, job_ids: gr.State) -> None:
    """Recipes: read one from the picture, apply one to the picture or to a batch of pictures."""
    status, result, downloads, info, recipe = out.status, out.result, out.downloads, out.info, out.recipe
    batch, batch_gallery = out.batch, out.batch_gallery

    def on_apply(text: str, path: str | None, request: gr.Request):
        try:
            reqs = _recipe_requests(text, [path] if path else [""])
        except gr.Error as exc:
            yield {status: failed_html(str(exc.message))}
            raise
        for jobs, html in _run_jobs(studio, reqs, user_of(request)):
            yield {job_ids: [j.id for j in jobs], status: html}
        after, files, infotext = _outcome(studio, jobs[0])
        yield {
            job_ids: [], status: progress_html(jobs[0], None), result: (path, after or path),
            downloads: files or None, info: infotext,
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
        for jobs, html in _run_jobs(studio, reqs, user_of(request)):
            yield {job_ids: [j.id for j in jobs], status: html, **stale}
            stale = {}
        failed = [j.error for j in jobs if j.state is JobState.FAILED]
        if failed:
            gr.Warning(f"{len(failed)} of {len(jobs)} pictures failed: {failed[0]}")
        pictures = [str(studio.gallery.file_path(j.images[0].id)) for j in jobs if j.images]
        files = pictures + [str(p) for j in jobs for p in j.exports]
        summary = f"Batch: the recipe was applied to {len(jobs)} picture(s); {len(pictures)} result(s)"
        if failed:
            summary += f", {len(failed)} failed ({failed[0]})"
        yield {
            job_ids: [], status: html, batch_gallery: pictures, downloads: files or None,
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

    outputs = [job_ids, status, result, downloads, info, recipe, batch_gallery]
    common = {"api_visibility": "private", "concurrency_id": "generate", "concurrency_limit": None,
              "show_progress": "hidden"}  # fmt: skip
    out.apply_recipe.click(on_apply, inputs=[recipe, image], outputs=outputs, **common)
    out.apply_batch.click(on_batch, inputs=[recipe, batch], outputs=outputs, **common)
    out.load_recipe.click(on_load_recipe, inputs=image, outputs=recipe, api_visibility="private")


def _wire_helpers(
    studio: Studio, controls: Controls, bg_final: gr.Textbox, out: _Results, job_ids: gr.State
) -> None:
    """Interrupt, the erase editor following the picture, and the final background prompt."""
    image, erase_editor = controls["image"], controls["erase_editor"]
    bg_prompt, bg_negative, bg_preset = controls["bg_prompt"], controls["bg_negative"], controls["bg_preset"]
    bg_styles, model = controls["bg_styles"], controls["model"]

    def on_interrupt(ids: list[str], request: gr.Request) -> None:
        user = user_of(request)
        for job_id in ids or []:
            try:
                studio.jobs.cancel(job_id, user)
            except KeyError:
                pass

    out.interrupt.click(on_interrupt, inputs=job_ids, outputs=None, api_visibility="private", queue=False)
    image.change(lambda path: path, inputs=image, outputs=erase_editor, api_visibility="private", queue=False)
    quick = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
    styling = [bg_prompt, bg_negative, bg_preset, bg_styles, model]
    for source in styling:
        source.change(
            lambda *args: _background_preview(studio, *args), inputs=styling, outputs=bg_final, **quick
        )
    # teammates may have added presets and styles since the page was built
    bg_preset.focus(lambda: gr.Dropdown(choices=preset_choices(studio)), outputs=bg_preset, **quick)
    bg_styles.focus(lambda: gr.Dropdown(choices=style_choices(studio)), outputs=bg_styles, **quick)


def register_api(studio: Studio) -> None:
    """The Gradio API endpoint `retouch` (gradio_client: `client.predict(image_b64, ops, api_name="/retouch")`)."""
    import base64
    import binascii

    def retouch(
        image: str,
        ops: list[dict] | None = None,
        recipe: str = "",
        seed: int = -1,
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
        req = build_request(RetouchRequest, {"image": data, "ops": ops, "seed": seed})
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
