"""AUTOMATIC1111 "infotext": the generation parameters stored in a PNG's `parameters` text chunk.

The format, as A1111's `create_infotext` writes it and `parse_generation_parameters` reads it::

    a red fox logo, flat vector
    Negative prompt: blurry, text
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, ...

The prompt may span lines; the `Negative prompt:` line is present only when the negative prompt is not
empty (and may itself continue on following lines); the last line holds `Key: value` pairs joined by ", ".
A value containing `,`, `:`, a newline or a double quote is written as a JSON string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.requests import GenerationRequest, Txt2ImgRequest
from core.styles import Style, extract_styles, strip_styles

INFOTEXT_KEY = "parameters"
"""PNG text chunk that holds the A1111 infotext."""

EASEL_CHUNK_KEY = "easel"
"""PNG text chunk that holds our own JSON (fields A1111's infotext lacks: task, author, ...)."""

NEGATIVE_PREFIX = "Negative prompt:"

STYLES_KEY = "Styles"
"""The styles a picture was made with, comma-separated. A1111 writes only the expanded prompt and guesses the
styles back from it when an infotext is pasted; the explicit list makes that exact."""

# A1111's `re_param`: one `Key: value` pair, the value either a JSON string or anything up to a comma.
_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_RE_KEY = re.compile(r"\w[\w \-/]+")
_RE_SIZE = re.compile(r"^(\d+)x(\d+)$")
_NEEDS_QUOTES = (",", ":", "\n", '"')
_MIN_PARAM_PAIRS = 3  # A1111 treats the last line as parameters only with at least three pairs

# Optional request fields written between "Model" and "Version", in A1111's order. Task request models that
# carry one of these attributes (img2img's denoising_strength, inpaint's mask_blur, ...) get it written
# without a change here; a None value is skipped.
OPTIONAL_REQUEST_KEYS: tuple[tuple[str, str], ...] = (
    ("Denoising strength", "denoising_strength"),
    ("Mask blur", "mask_blur"),
)


@dataclass(frozen=True)
class ParsedInfotext:
    """An infotext split into its parts; `params` keeps every pair of the last line, in order."""

    prompt: str
    negative_prompt: str
    params: dict[str, str] = field(default_factory=dict)


def format_value(value: object) -> str:
    """One value as A1111 writes it: floats without a needless ".0", awkward strings JSON-quoted."""
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value)
    if any(ch in text for ch in _NEEDS_QUOTES):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_infotext(prompt: str, negative_prompt: str, params: Mapping[str, object]) -> str:
    """The A1111 infotext for one image. Pairs keep the given order; None values are skipped."""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if not _RE_KEY.fullmatch(key):
            raise ValueError(f"infotext key {key!r} must be a word followed by words, spaces, '-' or '/'")
        pairs.append(f"{key}: {format_value(value)}")
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    # A1111 strips the whole text, so an empty prompt does not leave a leading blank line.
    return f"{prompt}{negative}\n{', '.join(pairs)}".strip()


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        unquoted = json.loads(value)
    except ValueError:
        return value
    return unquoted if isinstance(unquoted, str) else value


def parse_infotext(text: str) -> ParsedInfotext:
    """Split an infotext into prompt, negative prompt and its `Key: value` pairs (A1111's algorithm).

    Lines are stripped as A1111 strips them. Unknown keys are kept; a pair with an empty value is kept
    with "" (A1111 drops it).
    """
    *lines, last_line = text.strip().split("\n")
    if len(_RE_PARAM.findall(last_line)) < _MIN_PARAM_PAIRS:
        lines.append(last_line)
        last_line = ""

    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)

    params = {key: _unquote(value) for key, value in _RE_PARAM.findall(last_line)}
    return ParsedInfotext("\n".join(prompt_lines), "\n".join(negative_lines), params)


def request_params(
    request: GenerationRequest,
    *,
    seed: int,
    model_name: str,
    model_hash: str | None,
    version: str,
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The ordered A1111 pairs for one image of `request` (its own, resolved `seed`).

    `extra` pairs (task-specific ones A1111 keeps in `extra_generation_params`) go after the optional
    request keys and before "Version"; an extra key may fill a standard key left empty, not override one.
    """
    params: dict[str, object] = {
        "Steps": request.steps,
        "Sampler": request.sampler,
        "Schedule type": None if request.schedule_type == "Automatic" else request.schedule_type,
        "CFG scale": request.cfg_scale,
        "Seed": seed,
        "Face restoration": None,  # the backend fills it in (the restorer used, or that none is installed)
        "Size": f"{request.width}x{request.height}",
        "Model hash": model_hash,
        "Model": model_name or None,
    }
    params.update(_variation_params(request))
    for key, attribute in OPTIONAL_REQUEST_KEYS:
        params[key] = getattr(request, attribute, None)
    if getattr(request, "enable_hr", None) is False:
        params["Denoising strength"] = None  # txt2img uses it only for hires fix
    params.update(_hires_params(request))
    params["Tiling"] = True if getattr(request, "tiling", False) else None
    params[STYLES_KEY] = ", ".join(request.styles) or None
    for key, value in (extra or {}).items():
        if params.get(key) is not None or key == "Version":
            raise ValueError(f"extra infotext key {key!r} clashes with a value already set")
        params[key] = value  # a standard key left empty above keeps its place in A1111's order
    params["Version"] = version
    return {key: value for key, value in params.items() if value is not None}


def _variation_params(request: GenerationRequest) -> dict[str, object]:
    """A1111's variation seed and seed resize pairs, present only when used."""
    varied = request.subseed_strength > 0
    resize = request.seed_resize_from
    return {
        "Variation seed": request.subseed if varied else None,
        "Variation seed strength": request.subseed_strength if varied else None,
        "Seed resize from": f"{resize[0]}x{resize[1]}" if resize else None,
    }


def _hires_params(request: GenerationRequest) -> dict[str, object]:
    """A1111's hires fix pairs (txt2img with enable_hr): scale or resize, steps when set, upscaler."""
    if not isinstance(request, Txt2ImgRequest) or not request.enable_hr:
        return {}
    resize_x, resize_y = request.hr_resize_x, request.hr_resize_y
    resized = bool(resize_x or resize_y)
    return {
        "Hires upscale": None if resized else request.hr_scale,
        "Hires resize": f"{resize_x}x{resize_y}" if resized else None,
        "Hires steps": request.hr_second_pass_steps or None,
        "Hires upscaler": request.hr_upscaler,
    }


_HIRES_KEYS = ("Hires upscale", "Hires resize", "Hires steps", "Hires upscaler")


def _variation_and_hires_fields(params: Mapping[str, str]) -> dict[str, object]:
    """Request fields from the variation, seed resize, hires fix and denoising strength pairs.

    As in A1111's paste, an infotext without them turns them off (variation strength 0, no seed resize, hires
    fix off), so that pasting it into a tab makes the same picture whatever was set there before.
    """
    fields: dict[str, object] = {"subseed_strength": 0.0, "seed_resize_from_w": 0, "seed_resize_from_h": 0}
    fields["enable_hr"] = False
    if "Variation seed" in params:
        fields["subseed"] = _number(params["Variation seed"], int)
    if "Variation seed strength" in params:
        fields["subseed_strength"] = _number(params["Variation seed strength"], float)
    if "Seed resize from" in params:
        fields["seed_resize_from_w"], fields["seed_resize_from_h"] = _size_pair(params["Seed resize from"])
    if "Denoising strength" in params:
        fields["denoising_strength"] = _number(params["Denoising strength"], float)
    if any(key in params for key in _HIRES_KEYS):
        fields["enable_hr"] = True
        if "Hires upscale" in params:
            fields["hr_scale"] = _number(params["Hires upscale"], float)
        if "Hires resize" in params:
            fields["hr_resize_x"], fields["hr_resize_y"] = _size_pair(params["Hires resize"])
        if "Hires steps" in params:
            fields["hr_second_pass_steps"] = _number(params["Hires steps"], int)
        if params.get("Hires upscaler"):
            fields["hr_upscaler"] = params["Hires upscaler"]
    return fields


def _size_pair(text: str) -> tuple[object, object]:
    """ "WxH" as two ints (A1111 writes -1x-1 for "off", which is 0x0 here); other text is left to the model."""
    size = re.fullmatch(r"(-?\d+)x(-?\d+)", text.strip())
    if size is None:
        return text, text
    w, h = int(size.group(1)), int(size.group(2))
    return max(w, 0), max(h, 0)


def _number(text: str, kind: type[int] | type[float]) -> object:
    """`text` as an int/float, or the text itself so that the request model reports it."""
    try:
        return kind(text)
    except ValueError:
        return text


def request_fields_from_infotext(parsed: ParsedInfotext, styles: Sequence[Style] = ()) -> dict[str, object]:
    """GenerationRequest field values from an infotext (numbers parsed, ranges left to the request model).

    Keys without a request field are ignored here (they stay in `parsed.params`). A missing
    "Schedule type" means "Automatic", which is also what lets an old combined sampler name such as
    "DPM++ 2M Karras" be split by the request model.

    The prompt in an infotext is the one the styles made. With the known `styles`, the "Styles" pair gives
    back the style names and the prompt as typed before them; when a named style is unknown or has changed
    since (so that it cannot be taken off), the expanded prompt is returned with no styles, which makes
    the same picture.
    """
    params = parsed.params
    fields: dict[str, object] = {"prompt": parsed.prompt, "negative_prompt": parsed.negative_prompt}
    fields["styles"] = []
    names = [n.strip() for n in params.get(STYLES_KEY, "").split(",") if n.strip()]
    if names:
        known = {style.name: style for style in styles}
        if all(name in known for name in names):
            typed = strip_styles(parsed.prompt, parsed.negative_prompt, [known[n] for n in names])
            if typed is not None:
                fields.update(prompt=typed[0], negative_prompt=typed[1], styles=names)
    elif styles and not params.get("Version", "").startswith("easel"):
        # A1111 writes no style names: like its paste ("Apply if any"), find the styles the text carries
        found, prompt, negative = extract_styles(parsed.prompt, parsed.negative_prompt, styles)
        if found:
            fields.update(prompt=prompt, negative_prompt=negative, styles=found)
    if "Steps" in params:
        fields["steps"] = _number(params["Steps"], int)
    if "Sampler" in params:
        fields["sampler"] = params["Sampler"]
        fields["schedule_type"] = params.get("Schedule type", "Automatic")
    elif "Schedule type" in params:
        fields["schedule_type"] = params["Schedule type"]
    if "CFG scale" in params:
        fields["cfg_scale"] = _number(params["CFG scale"], float)
    if "Seed" in params:
        fields["seed"] = _number(params["Seed"], int)
    size = _RE_SIZE.match(params.get("Size", "").strip())
    if size is not None:
        fields["width"], fields["height"] = int(size.group(1)), int(size.group(2))
    if params.get("Model"):
        fields["model"] = params["Model"]
    fields.update(_variation_and_hires_fields(params))
    # as in A1111's paste, absent pairs turn these off
    fields["tiling"] = params.get("Tiling", "").strip().lower() == "true"
    fields["restore_faces"] = bool(params.get("Face restoration")) and not face_restoration_skipped(params)
    return fields


FACE_RESTORATION_KEY = "Face restoration"
NO_FACE_RESTORER = "none installed"  # its value when restoration was asked for but no restorer was on disk


def face_restoration_skipped(params: Mapping[str, str]) -> bool:
    """True when the infotext says face restoration was asked for but not done (no restorer installed)."""
    return params.get(FACE_RESTORATION_KEY, "").strip() == NO_FACE_RESTORER
