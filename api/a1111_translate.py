"""AUTOMATIC1111's API vocabulary mapped onto ours: sampler and scheduler names, model titles, request bodies,
base64 images, and the `info` a generation answers with.

Nothing here talks HTTP; `api.sdapi` does. A problem the client can fix raises :class:`BadRequest` with a
message that names the A1111 field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.schemas import GenerationBody, Img2ImgBody, Txt2ImgBody
from core.a1111_options import unknown_keys
from core.backend import ModelInfo
from core.errors import RequestRefused
from core.hires import LATENT_UPSCALE_MODES
from core.images import ImageInputError, decode_image
from core.infotext import FACE_RESTORATION_KEY, face_restoration_skipped, parse_infotext
from core.masks import invert_mask, mask_from_upload, require_nonempty
from core.requests import GenerationRequest, Img2ImgRequest, InpaintRequest, Txt2ImgRequest
from core.samplers import SAMPLER_SCHEDULES, SAMPLERS, SCHEDULE_TYPES
from core.seeds import matching_subseed
from core.version import INFOTEXT_VERSION

B = TypeVar("B", bound=BaseModel)
R = TypeVar("R", bound=GenerationRequest)


class BadRequest(RequestRefused):
    """A request the client has to change; the message says what and how (HTTP 422)."""


# --- samplers and schedulers --------------------------------------------------------------------------

DEFAULT_API_SAMPLER = "Euler"  # what A1111's API uses when a request names no sampler

# A1111's aliases for its samplers (k-diffusion function names of old API versions).
SAMPLER_ALIASES: dict[str, tuple[str, ...]] = {
    "DPM++ 2M": ("k_dpmpp_2m",),
    "DPM++ SDE": ("k_dpmpp_sde",),
    "DPM++ 2M SDE": ("k_dpmpp_2m_sde",),
    "DPM++ 3M SDE": ("k_dpmpp_3m_sde",),
    "Euler a": ("k_euler_a", "k_euler_ancestral"),
    "Euler": ("k_euler",),
    "LMS": ("k_lms",),
    "Heun": ("k_heun",),
    "DPM2": ("k_dpm_2",),
    "DPM2 a": ("k_dpm_2_a",),
    "DDIM": ("ddim",),
    "PLMS": ("plms",),
    "UniPC": ("unipc",),
    "DEIS": ("deis",),
    "LCM": ("k_lcm",),
}
_SCHEDULER_ALIASES: dict[str, tuple[str, ...]] = {"SGM Uniform": ("SGMUniform",)}
_SCHEDULER_RHO: dict[str, float] = {"Karras": 7.0}
_NEEDS_INNER_MODEL = frozenset({"Uniform", "SGM Uniform"})
_LEGACY_SUFFIXES = ("Karras", "Exponential")


def scheduler_name(label: str) -> str:
    """A1111's identifier for a schedule type label: "SGM Uniform" → "sgm_uniform"."""
    return label.lower().replace(" ", "_")


def sampler_items() -> list[dict[str, Any]]:
    """`GET /samplers`: name, aliases and options (the schedule "Automatic" picks, when it is not uniform)."""
    items = []
    for name in SAMPLERS:
        default = SAMPLER_SCHEDULES[name][0]
        options = {} if default == "Uniform" else {"scheduler": scheduler_name(default)}
        items.append({"name": name, "aliases": list(SAMPLER_ALIASES.get(name, ())), "options": options})
    return items


def scheduler_items() -> list[dict[str, Any]]:
    """`GET /schedulers`, in A1111's item shape."""
    return [
        {
            "name": scheduler_name(label),
            "label": label,
            "aliases": list(_SCHEDULER_ALIASES[label]) if label in _SCHEDULER_ALIASES else None,
            "default_rho": _SCHEDULER_RHO.get(label),
            "need_inner_model": label in _NEEDS_INNER_MODEL,
        }
        for label in SCHEDULE_TYPES
    ]


def sampler_from_a1111(text: str) -> str:
    """Our sampler name for an A1111 name or alias, in any letter case ("k_euler_a" → "Euler a").

    Old combined names ("dpm++ 2m karras") keep their schedule suffix for the request model to split;
    unknown names are returned as they are, so that the request model rejects them with the list.
    """
    known = {name.casefold(): name for name in SAMPLERS}
    for name, aliases in SAMPLER_ALIASES.items():
        known.update({alias.casefold(): name for alias in aliases})
    wanted = text.strip().casefold()
    if wanted in known:
        return known[wanted]
    for suffix in _LEGACY_SUFFIXES:
        ending = " " + suffix.casefold()
        if wanted.endswith(ending) and wanted[: -len(ending)] in known:
            return f"{known[wanted[: -len(ending)]]} {suffix}"
    return text


def schedule_from_a1111(text: str | None) -> str:
    """Our schedule type for an A1111 scheduler name, label or alias ("karras" → "Karras"); empty → Automatic."""
    if not text or not text.strip():
        return "Automatic"
    wanted = text.strip().casefold()
    for label in SCHEDULE_TYPES:
        names = {
            label.casefold(),
            scheduler_name(label),
            *(a.casefold() for a in _SCHEDULER_ALIASES.get(label, ())),
        }
        if wanted in names:
            return label
    return text


# --- models -------------------------------------------------------------------------------------------

_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$")
_CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def usable_models(models: Iterable[ModelInfo]) -> list[ModelInfo]:
    return [m for m in models if not m.refusal]


def resolve_model(text: str, models: Sequence[ModelInfo], hashes: Mapping[str, str]) -> str:
    """The model an A1111 `sd_model_checkpoint` value means.

    Accepts our name, an A1111 title ("name.safetensors [6ce0161689]"), the name with a checkpoint suffix,
    a known short hash, and any of these in another letter case. Raises BadRequest listing the choices.
    """
    usable = [m.name for m in usable_models(models)]
    raw = text.strip()
    candidates = [raw, _HASH_SUFFIX.sub("", raw)]
    for candidate in list(candidates):
        for suffix in _CHECKPOINT_SUFFIXES:
            if candidate.lower().endswith(suffix):
                candidates.append(candidate[: -len(suffix)])
    for candidate in candidates:
        if candidate in usable:
            return candidate
    folded = {name.casefold(): name for name in usable}
    for candidate in candidates:
        if candidate.casefold() in folded:
            return folded[candidate.casefold()]
    by_hash = {short.casefold(): name for name, short in hashes.items() if name in usable}
    if raw.casefold() in by_hash:
        return by_hash[raw.casefold()]
    raise BadRequest(
        f"sd_model_checkpoint: unknown model {text!r}. Available: {', '.join(sorted(usable)) or 'none'}"
    )


def model_item(model: ModelInfo, short_hash: str | None) -> dict[str, Any]:
    """`GET /sd-models` item. The title is our model name, which every route accepts back."""
    return {
        "title": model.name,
        "model_name": model.name,
        "hash": short_hash,
        "sha256": None,
        "filename": model.name,
        "config": None,
    }


# --- images -------------------------------------------------------------------------------------------

_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def decode_b64(text: str, where: str) -> bytes:
    """The bytes of a base64 image field; a `data:image/...;base64,` prefix is allowed, URLs are refused."""
    value = text.strip()
    if value.lower().startswith(("http://", "https://", "file:", "ftp://")):
        raise BadRequest(f"{where}: images are never fetched from URLs; send the image itself as base64")
    match = _DATA_URL.match(value)
    if match:
        value = value[match.end() :]
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: not valid base64; send the image file's bytes base64-encoded") from None
    if not data:
        raise BadRequest(f"{where}: empty; send a PNG, JPEG or WebP image as base64")
    return data


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- request bodies → request models ------------------------------------------------------------------

# Our field names as A1111 clients know them, for error messages.
_A1111_NAMES = {
    "batch_count": "n_iter",
    "sampler": "sampler_name",
    "schedule_type": "scheduler",
    "init_image": "init_images[0]",
    "invert_mask": "inpainting_mask_invert",
    "masked_content": "inpainting_fill",
    "inpaint_area": "inpaint_full_res",
    "only_masked_padding": "inpaint_full_res_padding",
    "model": "override_settings.sd_model_checkpoint",
}
RESIZE_MODES = ("just resize", "crop and resize", "resize and fill")
INPAINTING_FILL = ("fill", "original", "latent noise", "latent nothing")
_NO_EFFECT: dict[str, tuple[object, ...]] = {
    # A1111 features we do not have; a value other than these gets a warning in `info` (clients send 1.0 as
    # their default; work asked for by any other field we cannot do is refused with 422 instead)
    "initial_noise_multiplier": (None, 1, 1.0),
}

# A1111's scripts that run here, by task, as `GET /scripts` lists them (A1111 matches `script_name` in any case).
SD_UPSCALE = "sd upscale"
XYZ_PLOT = "x/y/z plot"
PROMPTS_FROM_FILE = "prompts from file or textbox"
SCRIPTS: dict[str, tuple[str, ...]] = {
    "txt2img": (PROMPTS_FROM_FILE, XYZ_PLOT),
    "img2img": (PROMPTS_FROM_FILE, SD_UPSCALE, XYZ_PLOT),
}


def script_named(name: str | None, task: str) -> str:
    """The script `script_name` asks for ("" for none), matched in any letter case; BadRequest naming the
    scripts available when it is not one of them."""
    if not name or not name.strip():
        return ""
    available = SCRIPTS[task]
    wanted = name.strip().casefold()
    for script in available:
        if script.casefold() == wanted:
            return script
    raise BadRequest(f"script_name: script {name!r} not found in {task}. Available: {', '.join(available)}")


def describe(error: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """A one-line message for a ValidationError, with fields named as the client sent them."""
    lines = []
    for item in error.errors():
        loc = [str(p) for p in item.get("loc", ()) if p != "__root__"]
        if loc and names and loc[0] in names:
            loc[0] = names[loc[0]]
        where = ".".join(loc)
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def parse_body(model: type[B], body: Mapping[str, Any]) -> B:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None


@dataclass
class Plan:
    """A mapped request: what goes to the Studio, what the client is told about what was ignored."""

    request: GenerationRequest
    warnings: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    send_images: bool = True
    script: str = ""  # one of SCRIPTS, run over `request` with `script_args` (api/scripts.py)
    script_args: list[Any] = field(default_factory=list)


ModelResolver = Callable[[str], str]


def _warnings(body: GenerationBody) -> list[str]:
    warnings = []
    for name, harmless in _NO_EFFECT.items():
        value = getattr(body, name, None)
        if value not in harmless:
            warnings.append(f"{name}={value!r} is not supported here and was ignored")
    ignored = unknown_keys(body.override_settings or {})  # known options: api.options applies or reports them
    if ignored:
        warnings.append(f"override_settings {ignored} were ignored: they are not A1111 options")
    return warnings


def _check_scripts(body: GenerationBody, task: str) -> str:
    """The script the body asks for (""), refusing always-on scripts as A1111 refuses unknown ones (422)."""
    if body.alwayson_scripts:
        names = ", ".join(sorted(body.alwayson_scripts))
        raise BadRequest(f"alwayson_scripts: no always-on scripts run here ({names}); leave it empty")
    return script_named(body.script_name, task)


def _common_fields(body: GenerationBody, resolve_model: ModelResolver) -> dict[str, Any]:
    checkpoint = (body.override_settings or {}).get("sd_model_checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise BadRequest("override_settings.sd_model_checkpoint: must be a model name (a string)")
    fields: dict[str, Any] = {
        "model": resolve_model(checkpoint) if checkpoint else "",
        "prompt": body.prompt or "",
        "negative_prompt": body.negative_prompt or "",
        "sampler": sampler_from_a1111(body.sampler_name or body.sampler_index or DEFAULT_API_SAMPLER),
        "schedule_type": schedule_from_a1111(body.scheduler),
        "seed": -1 if body.seed is None else body.seed,
        "subseed": -1 if body.subseed is None else body.subseed,
        "subseed_strength": body.subseed_strength or 0.0,
        # A1111 sends -1 (or 0) for "no seed resize"
        "seed_resize_from_w": max(body.seed_resize_from_w or 0, 0),
        "seed_resize_from_h": max(body.seed_resize_from_h or 0, 0),
        "styles": body.styles or [],  # the Studio applies them (an unknown name → 422 naming it)
        "restore_faces": bool(body.restore_faces),
        "tiling": bool(body.tiling),
    }
    defaults = GenerationBody()
    for ours, theirs in (
        ("steps", "steps"),
        ("cfg_scale", "cfg_scale"),
        ("width", "width"),
        ("height", "height"),
        ("batch_size", "batch_size"),
        ("batch_count", "n_iter"),
    ):
        value = getattr(body, theirs)
        fields[ours] = getattr(defaults, theirs) if value is None else value
    return fields


def _build(model: type[R], fields: Mapping[str, Any]) -> R:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise BadRequest(describe(exc, _A1111_NAMES)) from None


def txt2img_plan(raw: Mapping[str, Any], resolve_model: ModelResolver) -> Plan:
    """A txt2img request from an A1111 `/txt2img` body."""
    body = parse_body(Txt2ImgBody, raw)
    script = _check_scripts(body, "txt2img")
    fields = _common_fields(body, resolve_model)
    if body.enable_hr:
        hires = {
            "enable_hr": True,
            "hr_scale": body.hr_scale,
            "hr_upscaler": body.hr_upscaler or None,
            "hr_second_pass_steps": body.hr_second_pass_steps,
            "hr_resize_x": body.hr_resize_x,
            "hr_resize_y": body.hr_resize_y,
            "denoising_strength": body.denoising_strength,
        }
        fields.update({k: v for k, v in hires.items() if v is not None})  # None: our default
    request = _build(Txt2ImgRequest, fields)
    send = body.send_images is not False
    return Plan(request, _warnings(body), body.model_dump(), send, script, list(body.script_args or []))


def img2img_plan(raw: Mapping[str, Any], resolve_model: ModelResolver) -> Plan:
    """An img2img request (or an inpaint request when the body has a mask) from an A1111 `/img2img` body."""
    # 1. shape, and the fields only this task has
    body = parse_body(Img2ImgBody, raw)
    script = _check_scripts(body, "img2img")
    script_args = list(body.script_args or [])
    warnings = _warnings(body)
    if not body.init_images:
        raise BadRequest("init_images: send one image (base64 PNG, JPEG or WebP)")
    if len(body.init_images) > 1:
        warnings.append(f"only the first of the {len(body.init_images)} init_images was used")
    resize_mode = 0 if body.resize_mode is None else body.resize_mode
    if resize_mode == 3:
        raise BadRequest(
            "resize_mode: 3 (latent upscale) is not supported; use 0 (just resize), 1 (crop and resize) "
            "or 2 (resize and fill)"
        )
    if not 0 <= resize_mode < len(RESIZE_MODES):
        raise BadRequest("resize_mode: must be 0 (just resize), 1 (crop and resize) or 2 (resize and fill)")

    # 2. the pictures: decoded here first, so that problems name the A1111 field
    init_image = decode_b64(body.init_images[0], "init_images[0]")
    try:
        picture = decode_image(init_image)
    except ImageInputError as exc:
        raise BadRequest(f"init_images[0]: {exc}") from None
    fields = _common_fields(body, resolve_model)
    strength = 0.75 if body.denoising_strength is None else body.denoising_strength
    fields.update(init_image=init_image, denoising_strength=strength)

    # 3. img2img, or inpaint when there is a mask
    parameters = body.model_dump()
    if not body.include_init_images:
        parameters.update(init_images=None, mask=None)
    send = body.send_images is not False
    if not body.mask:
        fields["resize_mode"] = RESIZE_MODES[resize_mode]
        return Plan(_build(Img2ImgRequest, fields), warnings, parameters, send, script, script_args)
    if script == SD_UPSCALE:
        raise BadRequest("script_name: sd upscale works on the whole picture; send no mask")

    mask = decode_b64(body.mask, "mask")
    fill = 0 if body.inpainting_fill is None else body.inpainting_fill
    if not 0 <= fill < len(INPAINTING_FILL):
        raise BadRequest(
            "inpainting_fill: must be 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)"
        )
    invert = 0 if body.inpainting_mask_invert is None else body.inpainting_mask_invert
    if invert not in (0, 1):
        raise BadRequest("inpainting_mask_invert: must be 0 (inpaint masked) or 1 (inpaint not masked)")
    try:
        hard_mask = mask_from_upload(decode_image(mask), picture.size)
        require_nonempty(invert_mask(hard_mask) if invert else hard_mask)
    except ImageInputError as exc:
        raise BadRequest(f"mask: {exc}") from None
    if resize_mode:
        warnings.append("resize_mode is not used when inpainting: the result keeps the picture's own size")
    fields.update(
        mask=mask,
        mask_blur=4 if body.mask_blur is None else body.mask_blur,
        invert_mask=bool(invert),
        masked_content=INPAINTING_FILL[fill],
        inpaint_area="whole picture" if body.inpaint_full_res is False else "only masked",
        only_masked_padding=body.inpaint_full_res_padding or 0,
    )
    return Plan(_build(InpaintRequest, fields), warnings, parameters, send, script, script_args)


def latent_upscale_mode_items() -> list[dict[str, Any]]:
    """`GET /latent-upscale-modes`, as A1111 lists them."""
    return [{"name": name} for name in LATENT_UPSCALE_MODES]


# --- the answer ---------------------------------------------------------------------------------------


def job_timestamp(moment: datetime | None = None) -> str:
    """A1111's `job_timestamp` format."""
    return (moment or datetime.now()).strftime("%Y%m%d%H%M%S")


def info_json(
    request: GenerationRequest,
    *,
    seeds: Sequence[int],
    infotexts: Sequence[str],
    timestamp: str,
    warnings: Sequence[str],
    typed: GenerationRequest | None = None,
) -> str:
    """The `info` string of a generation answer: A1111's `Processed.js()` fields (plus `warnings`).

    `seeds` and `infotexts` describe the images returned, in order. As in A1111, `prompt` and
    `negative_prompt` are the ones sent (`typed`, before styles) and `all_prompts` the ones used.
    """
    typed = typed or request
    count = len(infotexts)
    model_hash = parse_infotext(infotexts[0]).params.get("Model hash") if infotexts else None
    return json.dumps(
        {
            "prompt": typed.prompt,
            "all_prompts": [request.prompt] * count,
            "negative_prompt": typed.negative_prompt,
            "all_negative_prompts": [request.negative_prompt] * count,
            "seed": request.seed,
            "all_seeds": list(seeds),
            "subseed": request.subseed,
            "all_subseeds": [
                matching_subseed(request.seed, request.subseed, s) if request.subseed != -1 else -1
                for s in seeds
            ],
            "subseed_strength": request.subseed_strength,
            "width": request.width,
            "height": request.height,
            "sampler_name": request.sampler,
            "scheduler": request.schedule_type,
            "cfg_scale": request.cfg_scale,
            "steps": request.steps,
            "batch_size": request.batch_size,
            "n_iter": request.batch_count,
            "restore_faces": request.restore_faces,
            "face_restoration_model": _face_restorer(infotexts),
            "sd_model_name": request.model,
            "sd_model_hash": model_hash,
            "sd_vae_name": request.vae or None,
            "sd_vae_hash": parse_infotext(infotexts[0]).params.get("VAE hash") if infotexts else None,
            "seed_resize_from_w": request.seed_resize_from_w or -1,
            "seed_resize_from_h": request.seed_resize_from_h or -1,
            "denoising_strength": getattr(request, "denoising_strength", None),
            "extra_generation_params": {},
            "index_of_first_image": 0,
            "infotexts": list(infotexts),
            "styles": list(request.styles),
            "job_timestamp": timestamp,
            "clip_skip": request.clip_skip,
            "is_using_inpainting_conditioning": False,
            "version": INFOTEXT_VERSION,
            "warnings": list(warnings),
        }
    )


def _face_restorer(infotexts: Sequence[str]) -> str | None:
    """The face restorer the first image's infotext names (None when none was used)."""
    if not infotexts:
        return None
    params = parse_infotext(infotexts[0]).params
    return None if face_restoration_skipped(params) else params.get(FACE_RESTORATION_KEY)


def png_info_parameters(infotext: str) -> dict[str, Any]:
    """`parameters` of `POST /png-info`: A1111's `parse_generation_parameters` shape (Size → Size-1, Size-2)."""
    if not infotext:
        return {}
    parsed = parse_infotext(infotext)
    result: dict[str, Any] = {"Prompt": parsed.prompt, "Negative prompt": parsed.negative_prompt}
    for key, value in parsed.params.items():
        size = re.fullmatch(r"(\d+)x(\d+)", value.strip())
        if size is not None:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
        else:
            result[key] = value
    return result
