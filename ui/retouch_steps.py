"""The Retouch tab's chain: an ordered list of steps, each a tool with its own settings.

Each tool has one panel (`retouch_step_<tool>`) holding its settings; a chain uses a tool once. Adding a step
shows its panel, removing hides it, ↑/↓ reorder: the panels are shown in chain order (a small script orders
them by their step number, see `ORDER_SCRIPT`). `ops_from_values` turns the chain and the panels' values into
request data, in chain order.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from PIL import Image, ImageChops

from core.backend import RetouchTools
from core.images import ImageInputError, encode_png
from core.masks import mask_from_layers, require_nonempty
from core.retouch_ops import (
    DEFAULT_LOGO_SIZES,
    ENHANCE_STRENGTHS,
    EnhanceOp,
    LogoPackOp,
    RestoreFacesOp,
    SamplingOp,
    SdUpscaleOp,
    VectorizeOp,
)
from core.samplers import DEFAULT_SAMPLER, SAMPLERS
from studio import Studio
from ui import fields as from_model
from ui.generation import model_choices
from ui.presets import preset_choices, style_choices

TOOLS = {
    "erase": "Erase (brush what to remove)",
    "remove_background": "Remove background",
    "replace_background": "Replace background",
    "restore_faces": "Restore faces",
    "enhance": "Enhance",
    "upscale": "Upscale",
    "sd_upscale": "SD upscale",
    "vectorize": "Vectorise (SVG)",
    "logo_pack": "Logo pack (zip of PNGs)",
}
LOGO_SIZES = [16, 32, 48, 64, 128, 256, 512, 1024, 2048]
KEEP_COLOUR, REMOVE_COLOUR = "#22c55e", "#ef4444"

# The panels in chain order (CSS `order` from each panel's step number), the number boxes of sliders wide
# enough for four digits, and pictures with transparency on a checkerboard. Installed once, by the element that
# carries it; a MutationObserver re-orders whenever a panel appears or its title changes.
ORDER_SCRIPT = """
if (!window.easelRetouchSteps) {
  window.easelRetouchSteps = true;
  const style = document.createElement('style');
  style.textContent = `
    [id^="retouch_"] input[type=number] { min-width: 5ch; }
    #retouch_steps > .retouch-step-panel { border-left: 3px solid var(--color-accent, #f97316); }
    #retouch_step_results img, #retouch_svg_preview img {
      background: repeating-conic-gradient(#c8c8c8 0% 25%, #f4f4f4 0% 50%) 50% / 16px 16px; }
    #retouch_step_results .grid-container { grid-template-columns: repeat(auto-fill, minmax(110px, 170px)) !important;
      grid-template-rows: none !important; grid-auto-rows: auto !important; }
    #retouch_step_results .thumbnail-item { aspect-ratio: 1; }
    .retouch-step-title { font-weight: 600; padding: 4px 0; }
    .retouch-step-state[data-state=failed] { color: var(--error-text-color, #b91c1c); font-weight: 600; }
    .retouch-step-state[data-state=warning] { color: #b45309; }`;
  document.head.appendChild(style);
  const order = () => {
    const list = document.getElementById('retouch_steps');
    if (!list) return;
    for (const panel of list.children) {
      const step = panel.querySelector('[data-step]');
      const value = step ? String(step.dataset.step) : '99';
      if (panel.style.order !== value) panel.style.order = value;
    }
  };
  new MutationObserver(order).observe(document.body, {childList: true, subtree: true, characterData: true,
    attributes: true, attributeFilter: ['data-step']});
  order();
}
"""


@dataclass
class StepPanel:
    """One tool's panel: its group, title, move/remove buttons, state line and settings (by value name)."""

    tool: str
    group: gr.Group
    title: gr.HTML
    up: gr.Button
    down: gr.Button
    remove: gr.Button
    state: gr.HTML
    controls: dict[str, Any] = field(default_factory=dict)


def title_html(tool: str, step: int) -> str:
    """A panel's title; `data-step` is what orders the panels."""
    return (
        f'<div class="retouch-step-title" data-step="{step}">Step {step} · {html.escape(TOOLS[tool])}</div>'
    )


def build_panels(studio: Studio, tools: RetouchTools) -> dict[str, StepPanel]:
    """Every tool's panel, hidden until its step is added."""
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "erase": lambda: _erase_settings(studio),
        "remove_background": lambda: _remove_background_settings(tools),
        "replace_background": lambda: _replace_background_settings(studio, tools),
        "restore_faces": lambda: _faces_settings(tools),
        "enhance": _enhance_settings,
        "upscale": lambda: _upscale_settings(tools),
        "sd_upscale": lambda: _sd_upscale_settings(studio, tools),
        "vectorize": _vector_settings,
        "logo_pack": _logo_settings,
    }
    panels = {}
    with gr.Column(elem_id="retouch_steps"):
        for tool, build in builders.items():
            with gr.Group(
                visible=False, elem_id=f"retouch_step_{tool}", elem_classes=["retouch-step-panel"]
            ) as group:
                with gr.Row(equal_height=True):
                    title = gr.HTML(
                        title_html(tool, 0), elem_id=f"retouch_step_{tool}_title", padding=True, min_width=120
                    )
                    up = gr.Button("↑", size="sm", min_width=40, scale=0, elem_id=f"retouch_step_{tool}_up")
                    down = gr.Button(
                        "↓", size="sm", min_width=40, scale=0, elem_id=f"retouch_step_{tool}_down"
                    )
                    remove = gr.Button(
                        "✕",
                        size="sm",
                        min_width=40,
                        scale=0,
                        variant="stop",
                        elem_id=f"retouch_step_{tool}_remove",
                    )
                state = gr.HTML("", elem_id=f"retouch_step_{tool}_state", padding=True)
                controls = build()
            panels[tool] = StepPanel(tool, group, title, up, down, remove, state, controls)
    return panels


def chain_updates(panels: dict[str, StepPanel], chain: list[str]) -> dict[Any, Any]:
    """What the page shows for `chain`: the chain's panels, numbered, each without an old run's state."""
    updates: dict[Any, Any] = {}
    for tool, panel in panels.items():
        step = chain.index(tool) + 1 if tool in chain else 0
        updates[panel.group] = gr.Group(visible=bool(step))
        updates[panel.title] = title_html(tool, step)
        updates[panel.state] = ""
    return updates


def moved(chain: list[str], tool: str, by: int) -> list[str]:
    """The chain with `tool` moved `by` places (-1 up, +1 down), staying within the chain."""
    if tool not in chain:
        return list(chain)
    index = chain.index(tool)
    target = min(max(index + by, 0), len(chain) - 1)
    out = list(chain)
    out.insert(target, out.pop(index))
    return out


# --- the settings of each tool ----------------------------------------------------------------------------


def _sampling(studio: Studio, key: str, ids: str, *, steps_default: int | None = None) -> dict[str, Any]:
    """Model, sampler, steps and CFG of one diffusion step (its own, not shared with other steps)."""
    with gr.Accordion("Stable Diffusion settings", open=False):
        with gr.Row():
            model = gr.Dropdown(
                model_choices(studio, inpaint=True), value=studio.catalog.default_model(), label="Model",
                elem_id=f"{ids}model",
            )  # fmt: skip
            sampler = gr.Dropdown(
                list(SAMPLERS), value=DEFAULT_SAMPLER, label="Sampler", elem_id=f"{ids}sampler"
            )
        with gr.Row():
            extra = {"value": steps_default} if steps_default else {}
            steps = from_model.slider(
                SamplingOp, "steps", label="Sampling steps", elem_id=f"{ids}steps", **extra
            )
            cfg = from_model.slider(
                SamplingOp, "cfg_scale", step=0.5, label="CFG scale", info="How strictly to follow the prompt",
                elem_id=f"{ids}cfg",
            )  # fmt: skip
    return {f"{key}_model": model, f"{key}_sampler": sampler, f"{key}_steps": steps, f"{key}_cfg": cfg}


def _erase_settings(studio: Studio) -> dict[str, Any]:
    editor = gr.ImageEditor(
        label="Brush over what to remove", type="pil", sources=[], layers=False, transforms=(),
        brush=gr.Brush(colors=[("#ff3d7f", 0.6)], color_mode="fixed", default_size=24),
        format="png", height=320, elem_id="retouch_erase_editor",
    )  # fmt: skip
    return {"erase_editor": editor, **_sampling(studio, "erase", "retouch_erase_")}


def _cutout_method(tools: RetouchTools, ids: str) -> tuple[gr.Radio, gr.Dropdown]:
    with gr.Row():
        method = gr.Radio(
            ["auto", "model", "key"], value="auto", label="Cut-out method",
            info="model: a segmentation model from models/rembg/; key: the background grown from the picture's "
            "border (studio shots, logos); auto: the model when there is one",
            elem_id=f"{ids}method",
        )  # fmt: skip
        model = gr.Dropdown(
            list(tools.segmenters), value=tools.segmenters[0] if tools.segmenters else None,
            label="Segmentation model", info="Files in models/rembg/", elem_id=f"{ids}model",
        )  # fmt: skip
    return method, model


def _remove_background_settings(tools: RetouchTools) -> dict[str, Any]:
    method, model = _cutout_method(tools, "retouch_bg_")
    matting = gr.Checkbox(
        label="Alpha matting",
        info="Softer, more exact edges (hair, fur); slower",
        elem_id="retouch_alpha_matting",
    )
    brush = gr.ImageEditor(
        label="Refine: brush green over what to keep, red over what to remove (optional)", type="pil",
        sources=[], layers=False, transforms=(),
        brush=gr.Brush(colors=[(KEEP_COLOUR, 0.7), (REMOVE_COLOUR, 0.7)], color_mode="fixed", default_size=20),
        format="png", height=320, elem_id="retouch_cutout_brush",
    )  # fmt: skip
    return {"bg_method": method, "bg_model": model, "alpha_matting": matting, "cutout_brush": brush}


def _replace_background_settings(studio: Studio, tools: RetouchTools) -> dict[str, Any]:
    prompt = gr.Textbox(
        label="New background (the scene)", lines=2, placeholder="on a white marble kitchen counter, soft daylight",
        elem_id="retouch_bg_prompt",
    )  # fmt: skip
    negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="retouch_bg_negative")
    with gr.Row():
        preset = gr.Dropdown(
            preset_choices(studio), value=None, label="Preset",
            info="Its styles, sampler, steps and CFG (and model, when none is chosen) apply to the new background; "
            "the picture keeps its size",
            elem_id="retouch_bg_preset",
        )  # fmt: skip
        styles = gr.Dropdown(
            style_choices(studio), value=[], multiselect=True, label="Styles",
            info="Applied after the preset's, in order", elem_id="retouch_bg_styles",
        )  # fmt: skip
    final = gr.Textbox(
        label="Final background prompt and settings (what will be sent)", lines=3, interactive=False,
        visible=False, elem_id="retouch_bg_final_prompt",
    )  # fmt: skip
    method, segmenter = _cutout_method(tools, "retouch_rb_")
    sampling = _sampling(studio, "rb", "retouch_")  # retouch_model, retouch_steps, …: the ids of before
    return {
        "bg_prompt": prompt, "bg_negative": negative, "bg_preset": preset, "bg_styles": styles, "bg_final": final,
        "rb_method": method, "rb_segmenter": segmenter, **sampling,
    }  # fmt: skip


def _faces_settings(tools: RetouchTools) -> dict[str, Any]:
    model = gr.Dropdown(
        list(tools.face_restorers), value=tools.face_restorers[0] if tools.face_restorers else None,
        label="Face restoration model",
        info=tools.missing.get("restore_faces") or "GFPGAN / RestoreFormer weights in models/face_restore/",
        elem_id="retouch_face_model",
    )  # fmt: skip
    visibility = from_model.slider(  # the model takes any visibility above 0
        RestoreFacesOp, "visibility", minimum=0.05, step=0.05, label="Visibility",
        info="How much of the restored face shows (1 = all of it)", elem_id="retouch_face_visibility",
    )  # fmt: skip
    return {"face_model": model, "face_visibility": visibility}


_ENHANCE_TIPS = {
    "levels": "Stretch the darkest/brightest tones to black/white",
    "white_balance": "Remove a colour cast",
    "contrast": "Spread the tones",
    "saturation": "Stronger colours",
    "denoise": "Smooth sensor noise",
    "sharpen": "Unsharp mask",
}


def _enhance_settings() -> dict[str, Any]:
    auto = gr.Checkbox(
        value=True, label="Auto", info="Pick the strengths from the picture (the sliders are ignored)",
        elem_id="retouch_enhance_auto",
    )  # fmt: skip
    with gr.Row():
        strengths = {
            f"enhance_{name}": from_model.slider(
                EnhanceOp,
                name,
                step=0.05,
                label=name.replace("_", " ").capitalize(),
                info=_ENHANCE_TIPS[name],
                elem_id=f"retouch_enhance_{name}",
                min_width=160,
            )  # fmt: skip
            for name in ENHANCE_STRENGTHS
        }
    return {"enhance_auto": auto, **strengths}


def _upscaler(tools: RetouchTools, elem_id: str) -> gr.Dropdown:
    return gr.Dropdown(
        list(tools.upscalers), value="Lanczos", label="Upscaler",
        info="Lanczos/Nearest, or a model file from models/upscalers/ (ESRGAN, SwinIR, …)", elem_id=elem_id,
    )  # fmt: skip


def _upscale_settings(tools: RetouchTools) -> dict[str, Any]:
    with gr.Row():
        upscaler = _upscaler(tools, "retouch_upscaler")
        scale = from_model.slider(
            SdUpscaleOp, "scale", step=0.5, label="Scale", info=None, elem_id="retouch_scale"
        )
    return {"upscaler": upscaler, "scale": scale}


def _sd_upscale_settings(studio: Studio, tools: RetouchTools) -> dict[str, Any]:
    with gr.Row():
        upscaler = _upscaler(tools, "retouch_sd_upscaler")
        scale = from_model.slider(
            SdUpscaleOp, "scale", step=0.5, label="Scale", info=None, elem_id="retouch_sd_scale"
        )
    prompt = gr.Textbox(
        label="SD upscale prompt", lines=1, placeholder="optional: what the detail should look like",
        elem_id="retouch_sd_prompt",
    )  # fmt: skip
    strength = from_model.slider(  # the model takes any strength above 0
        SdUpscaleOp, "denoising_strength", minimum=0.05, step=0.05, label="Denoising strength",
        info="How much each tile is repainted (0.1–0.3 adds detail and keeps the picture)",
        elem_id="retouch_sd_strength",
    )  # fmt: skip
    with gr.Row():
        tile = from_model.slider(
            SdUpscaleOp, "tile_size", step=8, label="Tile size", info="Tile side in px (up to 2048)",
            elem_id="retouch_tile_size",
        )  # fmt: skip
        overlap = from_model.slider(
            SdUpscaleOp, "overlap", maximum=256, step=8, label="Tile overlap",
            info="Neighbouring tiles are blended over this many px", elem_id="retouch_overlap",
        )  # fmt: skip
    sampling = _sampling(studio, "sd", "retouch_sd_")
    return {
        "sd_upscaler": upscaler, "sd_scale": scale, "sd_prompt": prompt, "sd_strength": strength,
        "tile_size": tile, "overlap": overlap, **sampling,
    }  # fmt: skip


def _vector_settings() -> dict[str, Any]:
    with gr.Row():
        colors = gr.Radio(
            ["color", "binary"], value="color", label="SVG colours",
            info="binary: black shapes only (one-colour logos)", elem_id="retouch_svg_colors",
        )  # fmt: skip
        detail = from_model.slider(
            VectorizeOp, "detail", step=0.05, label="SVG detail", info="0 = few smooth shapes, 1 = every speck",
            elem_id="retouch_svg_detail",
        )  # fmt: skip
    return {"svg_colors": colors, "svg_detail": detail}


def _logo_settings() -> dict[str, Any]:
    sizes = gr.CheckboxGroup(
        LOGO_SIZES, value=list(DEFAULT_LOGO_SIZES), label="Logo pack sizes (px, square)",
        info="16, 32 and 48 are favicon sizes", elem_id="retouch_logo_sizes",
    )  # fmt: skip
    padding = from_model.slider(
        LogoPackOp, "padding", step=1, label="Padding (% of the side)",
        info="Clear margin around the logo on each side (0 = edge to edge)", elem_id="retouch_logo_padding",
    )  # fmt: skip
    return {"logo_sizes": sizes, "logo_padding": padding}


# --- request data from the panels -------------------------------------------------------------------------


def _choice(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _sampling_values(values: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "model": _choice(values[f"{key}_model"]), "sampler": values[f"{key}_sampler"],
        "steps": values[f"{key}_steps"], "cfg_scale": values[f"{key}_cfg"],
    }  # fmt: skip


def brushed(editor: dict | None, size: tuple[int, int], colour: str | None = None) -> Image.Image:
    """The brushed pixels of an editor's layers as an "L" mask of `size` (255 = brushed); with `colour`
    ("#rrggbb"), only the strokes nearest that brush colour."""
    layers = list((editor or {}).get("layers") or [])
    if colour is not None:
        layers = [_strokes_of(layer, colour) for layer in layers]
    return mask_from_layers(layers, size)


def _strokes_of(layer: Any, colour: str) -> Image.Image:
    """A layer keeping only its strokes of the brush colour nearer to `colour` (keep: green, remove: red)."""
    rgba = (layer if isinstance(layer, Image.Image) else Image.open(layer)).convert("RGBA")
    red, green, _, alpha = rgba.split()
    nearer = ImageChops.subtract(green, red) if colour == KEEP_COLOUR else ImageChops.subtract(red, green)
    painted = ImageChops.multiply(
        alpha.point(lambda v: 255 if v else 0), nearer.point(lambda v: 255 if v else 0)
    )
    out = Image.new("RGBA", rgba.size, (0, 0, 0, 0))
    out.putalpha(painted)
    return out


def _erase_op(values: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    try:
        mask = brushed(values["erase_editor"], size)
        require_nonempty(mask)
    except ImageInputError as exc:
        raise gr.Error(f"Erase: brush over what to remove first ({exc})") from None
    return {"op": "erase", "mask": encode_png(mask), **_sampling_values(values, "erase")}


def _remove_background_op(values: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "op": "remove_background", "method": values["bg_method"], "model": _choice(values["bg_model"]),
        "alpha_matting": values["alpha_matting"],
    }  # fmt: skip
    for name, colour in (("keep_mask", KEEP_COLOUR), ("remove_mask", REMOVE_COLOUR)):
        try:
            mask = brushed(values["cutout_brush"], size, colour)
        except ImageInputError as exc:
            raise gr.Error(f"Remove background: the brush strokes cannot be read ({exc})") from None
        if mask.getbbox() is not None:
            op[name] = encode_png(mask)
    return op


def _replace_background_op(values: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    return {
        "op": "replace_background", "prompt": values["bg_prompt"], "negative_prompt": values["bg_negative"],
        "method": values["rb_method"], "segmenter": _choice(values["rb_segmenter"]),
        "preset": _choice(values["bg_preset"]), "styles": list(values["bg_styles"] or []),
        **_sampling_values(values, "rb"),
    }  # fmt: skip


def _enhance_op(values: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    if values["enhance_auto"]:
        return {"op": "enhance", "auto": True}
    return {"op": "enhance", **{k: values[f"enhance_{k}"] for k in ENHANCE_STRENGTHS}}


def _sd_upscale_op(values: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    return {
        "op": "sd_upscale", "upscaler": values["sd_upscaler"], "scale": values["sd_scale"],
        "denoising_strength": values["sd_strength"], "tile_size": values["tile_size"], "overlap": values["overlap"],
        "prompt": values["sd_prompt"], **_sampling_values(values, "sd"),
    }  # fmt: skip


_OPS: dict[str, Callable[[dict[str, Any], tuple[int, int]], dict[str, Any]]] = {
    "erase": _erase_op,
    "remove_background": _remove_background_op,
    "replace_background": _replace_background_op,
    "restore_faces": lambda v, _: {
        "op": "restore_faces",
        "model": _choice(v["face_model"]),
        "visibility": v["face_visibility"],
    },
    "enhance": _enhance_op,
    "upscale": lambda v, _: {"op": "upscale", "upscaler": v["upscaler"], "scale": v["scale"]},
    "sd_upscale": _sd_upscale_op,
    "vectorize": lambda v, _: {"op": "vectorize", "colors": v["svg_colors"], "detail": v["svg_detail"]},
    "logo_pack": lambda v, _: {
        "op": "logo_pack",
        "sizes": sorted(int(s) for s in v["logo_sizes"] or []),
        "padding": v["logo_padding"],
    },
}


def ops_from_values(chain: list[str], values: dict[str, Any], size: tuple[int, int]) -> list[dict[str, Any]]:
    """The chain's operations, in its order, as request data (validated by RetouchRequest); `size` is the
    picture's (brushed masks are drawn on it)."""
    if not chain:
        raise gr.Error("Add a step first: pick a tool and press “Add step”.")
    return [_OPS[tool](values, size) for tool in chain]
