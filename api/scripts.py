"""AUTOMATIC1111's scripts over `/sdapi/v1` (`script_name` + positional `script_args`), mapped onto Easel's own
tools: *sd upscale* → the Retouch SD upscale, *x/y/z plot* → an X/Y/Z plot (core/xyz.py), *prompts from file or
textbox* → one job per line. Nothing here runs anything: each function turns a mapped request (api/a1111_translate.py's
Plan) and the script's arguments into what the Studio runs, refusing what it cannot honour with BadRequest (422)
naming the argument.
"""

from __future__ import annotations

import csv
import io
import secrets
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from api.a1111_translate import (
    BadRequest,
    ModelResolver,
    Plan,
    describe,
    sampler_from_a1111,
    schedule_from_a1111,
)
from core.requests import GenerationRequest, Img2ImgRequest, InpaintRequest
from core.retouch import RetouchRequest
from core.retouch_ops import SdUpscaleOp
from core.styles import Style, apply_styles
from core.xyz import MAX_CELLS, Axis, PlotRequest

NO_UPSCALER = "None"  # first in A1111's (and `GET /upscalers`') list: a plain resize

# --- sd upscale: ["", overlap, upscaler (index or name), scale] --------------------------------------------


def _arg(args: Sequence[Any], index: int, default: Any) -> Any:
    return args[index] if len(args) > index and args[index] is not None else default


def sd_upscale_request(plan: Plan, upscalers: Sequence[str], styles: Sequence[Style] = ()) -> RetouchRequest:
    """The Retouch SD upscale of the img2img request's picture: upscaled by `scale` with the upscaler (an index
    into `upscalers`, as `GET /upscalers` lists them, or a name), repainted tile by tile (tiles of the request's
    size, `overlap` px apart) at its denoising strength, with the request's prompts (its styles, from the known
    `styles`, applied). The result is the picture's size × scale."""
    request = plan.request
    if not isinstance(request, Img2ImgRequest) or isinstance(request, InpaintRequest):
        raise BadRequest("script_name: sd upscale runs in img2img, on a picture without a mask")
    for name in ("tiling", "restore_faces"):
        if getattr(request, name):
            raise BadRequest(f"{name}: not available with the sd upscale script; leave it false")
    prompt, negative = request.prompt, request.negative_prompt
    if request.styles:
        known = {style.name: style for style in styles}
        unknown = [name for name in request.styles if name not in known]
        if unknown:
            raise BadRequest(
                f"styles: unknown style {unknown[0]!r}. Available: {', '.join(sorted(known)) or 'none'}"
            )
        prompt, negative = apply_styles(prompt, negative, [known[name] for name in request.styles])
    args = plan.script_args
    overlap, chosen, scale = _arg(args, 1, 64), _arg(args, 2, NO_UPSCALER), _arg(args, 3, 2.0)
    upscaler = _upscaler(chosen, upscalers)
    op_fields = {
        "model": request.model, "prompt": prompt, "negative_prompt": negative,
        "sampler": request.sampler, "schedule_type": request.schedule_type, "steps": request.steps,
        "cfg_scale": request.cfg_scale, "seed": request.seed, "denoising_strength": request.denoising_strength,
        "upscaler": "Lanczos" if upscaler == NO_UPSCALER else upscaler, "scale": scale, "overlap": overlap,
        "tile_size": min(request.width, request.height),
    }  # fmt: skip
    try:
        op = SdUpscaleOp(**op_fields)
        return RetouchRequest(image=request.init_image, ops=[op], seed=request.seed)
    except ValidationError as exc:
        names = {
            "tile_size": "tile size (the request's width and height)",
            "overlap": "script_args[1] (overlap)",
        }
        raise BadRequest(f"sd upscale: {describe(exc, names)}") from None


def _upscaler(chosen: Any, upscalers: Sequence[str]) -> str:
    listed = f"Available (by index or name): {', '.join(f'{i}: {n}' for i, n in enumerate(upscalers))}"
    if isinstance(chosen, bool) or not isinstance(chosen, int | str):
        raise BadRequest(f"script_args[2]: the upscaler is an index or a name. {listed}")
    if isinstance(chosen, int) or chosen.strip().isdigit():
        index = int(chosen)
        if not 0 <= index < len(upscalers):
            raise BadRequest(f"script_args[2]: no upscaler number {index}. {listed}")
        return upscalers[index]
    by_name = {name.casefold(): name for name in upscalers}
    if chosen.strip().casefold() not in by_name:
        raise BadRequest(f"script_args[2]: unknown upscaler {chosen!r}. {listed}")
    return by_name[chosen.strip().casefold()]


# --- x/y/z plot ---------------------------------------------------------------------------------------------

# A1111's axis list (scripts/xyz_grid.py): its script args name an axis by its index in this list, keeping the
# options of both tabs ("both") and those of the request's tab.
_A1111_AXES: tuple[tuple[str, str], ...] = (
    ("Nothing", "both"), ("Seed", "both"), ("Var. seed", "both"), ("Var. strength", "both"),
    ("Steps", "both"), ("Hires steps", "txt2img"), ("CFG Scale", "both"), ("Image CFG Scale", "img2img"),
    ("Prompt S/R", "both"), ("Prompt order", "both"), ("Sampler", "txt2img"), ("Hires sampler", "txt2img"),
    ("Sampler", "img2img"), ("Checkpoint name", "both"), ("Negative Guidance minimum sigma", "both"),
    ("Sigma Churn", "both"), ("Sigma min", "both"), ("Sigma max", "both"), ("Sigma noise", "both"),
    ("Schedule type", "both"), ("Schedule min sigma", "both"), ("Schedule max sigma", "both"),
    ("Schedule rho", "both"), ("Eta", "both"), ("Clip skip", "both"), ("Denoising", "both"),
    ("Initial noise multiplier", "both"), ("Extra noise", "both"), ("Hires upscaler", "txt2img"),
    ("Cond. Image Mask Weight", "img2img"), ("VAE", "both"), ("Styles", "both"), ("UniPC Order", "both"),
    ("Face restore", "both"), ("Token merging ratio", "both"), ("Token merging ratio high-res", "both"),
    ("Always discard next-to-last sigma", "both"), ("SGM noise multiplier", "both"),
    ("Refiner checkpoint", "both"), ("Refiner switch at", "both"), ("RNG source", "both"),
)  # fmt: skip
# A1111 axis label → core/xyz.py axis key (the axes that run here)
_SUPPORTED_AXES = {
    "Nothing": "nothing", "Seed": "seed", "Var. seed": "variation_seed", "Var. strength": "variation_strength",
    "Steps": "steps", "Hires steps": "hires_steps", "CFG Scale": "cfg_scale", "Prompt S/R": "prompt_sr",
    "Sampler": "sampler", "Checkpoint name": "model", "Schedule type": "schedule_type",
    "Denoising": "denoising_strength", "Styles": "styles", "Size": "size",
}  # fmt: skip
_CHOICE_AXES = frozenset(
    {"sampler", "model", "schedule_type", "styles"}
)  # A1111 sends these as a dropdown list
_XYZ_ARGS = (
    "x_type", "x_values", "x_values_dropdown", "y_type", "y_values", "y_values_dropdown",
    "z_type", "z_values", "z_values_dropdown", "draw_legend", "include_lone_images", "include_sub_grids",
    "no_fixed_seeds", "vary_seeds_x", "vary_seeds_y", "vary_seeds_z", "margin_size", "csv_mode",
)  # fmt: skip
_XYZ_ARGS_BEFORE_1_7 = (*_XYZ_ARGS[:13], "margin_size", "csv_mode")  # no vary_seeds_*


def axis_labels(task: str) -> list[str]:
    """A1111's axis labels for a tab, in the order its script args index them."""
    tab = "img2img" if task in ("img2img", "inpaint") else "txt2img"
    return [label for label, where in _A1111_AXES if where in ("both", tab)]


def xyz_arguments(args: Sequence[Any]) -> dict[str, Any]:
    """The x/y/z script's positional arguments by name (A1111 1.7+ sends 18; earlier versions 14 or 15)."""
    names = _XYZ_ARGS if len(args) > len(_XYZ_ARGS_BEFORE_1_7) else _XYZ_ARGS_BEFORE_1_7
    if len(args) > len(names):
        raise BadRequest(
            f"script_args: the x/y/z plot takes at most {len(names)} arguments ({', '.join(names)})"
        )
    return dict(zip(names, args, strict=False))


def xyz_plot(plan: Plan, resolve_model: ModelResolver) -> tuple[PlotRequest, bool]:
    """The plot the x/y/z script's arguments describe over the plan's request, and whether A1111 would return
    the cells after the grid (`include_lone_images`)."""
    named = xyz_arguments(plan.script_args)
    for flag in ("vary_seeds_x", "vary_seeds_y", "vary_seeds_z"):
        if named.get(flag):
            raise BadRequest(f"script_args: {flag} is not supported here; leave it false")
    axes: dict[str, Axis | None] = {}
    for axis in ("x", "y", "z"):
        axes[axis] = _axis(
            axis, named.get(f"{axis}_type", 0), named.get(f"{axis}_values") or "",
            named.get(f"{axis}_values_dropdown") or [], bool(named.get("csv_mode")), plan.request.task,
            resolve_model,
        )  # fmt: skip
    try:
        plot = PlotRequest(base=plan.request, **axes)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise BadRequest(f"x/y/z plot: {describe(exc)}") from None
    return plot, bool(named.get("include_lone_images"))


def _axis(
    name: str,
    kind: Any,
    text: Any,
    dropdown: Any,
    csv_mode: bool,
    task: str,
    resolve_model: ModelResolver,
) -> Axis | None:
    labels = axis_labels(task)
    where = f"script_args: {name.upper()} type"
    if isinstance(kind, bool) or not isinstance(kind, int | str):
        raise BadRequest(f"{where} must be an index into A1111's axis list or an axis name")
    if isinstance(kind, int) or kind.strip().isdigit():
        if not 0 <= int(kind) < len(labels):
            raise BadRequest(f"{where} {kind} is not an axis of {task} (0..{len(labels) - 1})")
        label = labels[int(kind)]
    else:
        folded = {key.casefold(): key for key in _SUPPORTED_AXES} | {v: k for k, v in _SUPPORTED_AXES.items()}
        label = folded.get(kind.strip().casefold(), kind.strip())
    if label not in _SUPPORTED_AXES:
        supported = ", ".join(label for label in _SUPPORTED_AXES if label in labels or label == "Size")
        raise BadRequest(f"{where} {label!r} is not supported here. Supported: {supported}")
    key = _SUPPORTED_AXES[label]
    if key == "nothing":
        return None
    values: list[str]
    if key in _CHOICE_AXES and dropdown and not csv_mode:
        if not isinstance(dropdown, list) or not all(isinstance(v, str) for v in dropdown):
            raise BadRequest(f"script_args: {name}_values_dropdown must be a list of names")
        values = list(dropdown)
    else:
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise BadRequest(f"script_args: {name}_values must be text")
        values = _csv_items(str(text))
        if key not in _CHOICE_AXES:
            return _built_axis(name, key, str(text)) if values else None  # ranges as A1111 writes them
    mapped = [_choice(key, value, resolve_model) for value in values]
    return _built_axis(name, key, _csv_line(mapped)) if mapped else None


def _built_axis(name: str, key: str, values: str) -> Axis:
    try:
        return Axis(type=key, values=values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise BadRequest(f"script_args: {name.upper()} values: {describe(exc)}") from None


def _choice(key: str, value: str, resolve_model: ModelResolver) -> str:
    if key == "model":
        return resolve_model(value)
    if key == "sampler":
        return sampler_from_a1111(value)
    if key == "schedule_type":
        return schedule_from_a1111(value)
    return value


def _csv_items(text: str) -> list[str]:
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return [item.strip() for row in rows for item in row if item.strip()]


def _csv_line(values: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


# --- prompts from file or textbox: [iterate seed, same seed for all lines, prompt position, text] ------------

MAX_PROMPT_LINES = MAX_CELLS


def _text(value: str) -> str:
    return value


def _flag(value: str) -> bool:
    return value.strip().lower() == "true"


# A1111's options a line may carry (--name value) → (request field or None: accepted, no effect; its parser)
_PROMPT_TAGS: dict[str, tuple[str | None, Callable[[str], Any]]] = {
    "sd_model": ("model", _text), "outpath_samples": (None, _text), "outpath_grids": (None, _text),
    "prompt_for_display": (None, _text), "prompt": ("prompt", _text), "negative_prompt": ("negative_prompt", _text),
    "styles": ("styles", lambda v: [s.strip() for s in v.split(",") if s.strip()]), "seed": ("seed", int),
    "subseed_strength": ("subseed_strength", float), "subseed": ("subseed", int),
    "seed_resize_from_h": ("seed_resize_from_h", int), "seed_resize_from_w": ("seed_resize_from_w", int),
    "sampler_index": ("sampler", sampler_from_a1111), "sampler_name": ("sampler", sampler_from_a1111),
    "batch_size": ("batch_size", int), "n_iter": ("batch_count", int), "steps": ("steps", int),
    "cfg_scale": ("cfg_scale", float), "width": ("width", int), "height": ("height", int),
    "restore_faces": ("restore_faces", _flag), "tiling": ("tiling", _flag),
    "do_not_save_samples": (None, _flag), "do_not_save_grid": (None, _flag),
}  # fmt: skip


def line_options(line: str) -> dict[str, Any]:
    """A1111's `cmdargs`: `--name value` pairs (`--prompt` and `--negative_prompt` take every word up to the next
    option) as request fields. BadRequest naming the line when it cannot be read."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise BadRequest(f"prompts: cannot read the line {line!r}: {exc}") from None
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(words):
        word = words[pos]
        if not word.startswith("--"):
            raise BadRequest(f"prompts: {word!r} in {line!r} must start with --")
        tag = word[2:]
        if tag not in _PROMPT_TAGS:
            raise BadRequest(
                f"prompts: unknown option {word} in {line!r}. Known: --{', --'.join(_PROMPT_TAGS)}"
            )
        if pos + 1 >= len(words):
            raise BadRequest(f"prompts: {word} in {line!r} has no value")
        field_name, parse = _PROMPT_TAGS[tag]
        if tag in ("prompt", "negative_prompt"):
            end = pos + 2
            while end < len(words) and not words[end].startswith("--"):
                end += 1
            value: Any = " ".join(words[pos + 1 : end])
            pos = end
        else:
            try:
                value = parse(words[pos + 1])
            except ValueError:
                raise BadRequest(
                    f"prompts: {word} {words[pos + 1]!r} in {line!r} is not a valid value"
                ) from None
            pos += 2
        if field_name is not None:
            fields[field_name] = value
    return fields


def prompt_requests(plan: Plan, resolve_model: ModelResolver) -> list[GenerationRequest]:
    """One request per non-empty line of the script's text, as A1111 runs them: a line is a prompt, or options
    (`--prompt "…" --steps 10 …`); the request's own prompt is kept before (`prompt_position` "start": after)
    the line's. With `checkbox_iterate` the seed goes up by the images of each line; with either checkbox a
    random seed is fixed first (the same for all lines unless iterated)."""
    args = plan.script_args
    if len(args) == 3:  # A1111 before 1.6: [iterate, iterate batch, text]
        args = [args[0], args[1], "start", args[2]]
    iterate, same_seed, position, text = (_arg(args, i, d) for i, d in enumerate((False, False, "start", "")))
    if not isinstance(text, str):
        raise BadRequest("script_args[3]: the prompts, one a line, as text")
    if position not in ("start", "end"):
        raise BadRequest("script_args[2]: the prompt position is 'start' or 'end'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise BadRequest("script_args[3]: no prompts; write one a line")
    if len(lines) > MAX_PROMPT_LINES:
        raise BadRequest(f"script_args[3]: {len(lines)} lines; at most {MAX_PROMPT_LINES}")
    base = plan.request
    seed = base.seed
    if (iterate or same_seed) and seed == -1:
        seed = secrets.randbelow(2**31)
    requests = []
    for line in lines:
        options = line_options(line) if "--" in line else {"prompt": line}
        fields: dict[str, Any] = {**dict(base), "seed": seed}
        fields.update(options)
        for key in ("prompt", "negative_prompt"):
            ours, theirs = getattr(base, key), options.get(key)
            if theirs and ours:
                fields[key] = f"{theirs} {ours}" if position == "start" else f"{ours} {theirs}"
        if "model" in options:
            fields["model"] = resolve_model(options["model"])
        requests.append(_request(type(base), fields, line))
        if iterate:
            seed += base.image_count
    return requests


def _request(cls: type[GenerationRequest], fields: Mapping[str, Any], line: str) -> GenerationRequest:
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise BadRequest(f"prompts: the line {line!r}: {describe(exc)}") from None
