"""Retouch operations: each a small model in a union discriminated on `op` (upscale, restore faces, enhance,
cut out, replace the background, erase, vectorise, logo pack), validated once at the boundary for the UI and
the HTTP API. A chain of them, with its picture, is a `core.retouch.RetouchRequest`; bad values are refused
with a readable message, never clamped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.presets import Preset, apply_preset, check_preset_name, compose_scene
from core.requests import (
    MAX_PROMPT_CHARS,
    MAX_SIZE,
    MAX_STYLES,
    MIN_SIZE,
    PlainText,
    Seed,
    check_image,
    check_style_name,
    validation_message,
)
from core.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE, SamplerName, ScheduleType, resolve_schedule
from core.styles import Style
from core.tiles import tile_boxes

MAX_UPSCALE = 8.0
_Size = TypeVar("_Size", int, int | None)
DEFAULT_LOGO_SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)  # favicon sizes, then icon and print sizes
DEFAULT_LOGO_PADDING = 8.0  # % of the square's side left clear around the logo
DIFFUSION_OPS = frozenset({"sd_upscale", "replace_background", "erase"})
_NAME_CHARS = 200

ModelName = Annotated[PlainText, Field(max_length=_NAME_CHARS, description="Empty = the default")]
StyleName = Annotated[str, AfterValidator(check_style_name)]


class BaseOp(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    op: str

    @property
    def needs_model(self) -> bool:
        """True for operations that run a Stable Diffusion model."""
        return self.op in DIFFUSION_OPS

    def label(self) -> str:
        """A short description for the infotext and the UI ("upscale ×2")."""
        return self.op

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The picture's size after this operation, for a picture of `size` before it."""
        return size

    def work_units(self, size: tuple[int, int]) -> int:
        """Progress steps this operation reports on a picture of `size`."""
        return 1


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


class SamplingOp(BaseOp):
    """Fields of the operations that sample with a Stable Diffusion model."""

    model: ModelName = ""
    sampler: SamplerName = DEFAULT_SAMPLER
    schedule_type: ScheduleType = DEFAULT_SCHEDULE
    steps: int = Field(20, ge=1, le=150)
    cfg_scale: float = Field(7.0, ge=0.0, le=30.0)
    seed: Seed = -1

    @model_validator(mode="after")
    def _schedule_supported(self) -> SamplingOp:
        resolve_schedule(self.sampler, self.schedule_type)
        return self

    def sampling_fields(self) -> dict[str, Any]:
        """The generation-request fields this operation sets: model, prompts, sampler, steps, CFG, seed."""
        return {
            "model": self.model,
            "prompt": getattr(self, "prompt", ""),
            "negative_prompt": getattr(self, "negative_prompt", ""),
            "sampler": self.sampler,
            "schedule_type": self.schedule_type,
            "steps": self.steps,
            "cfg_scale": self.cfg_scale,
            "seed": self.seed,
        }


class _Diffusion(SamplingOp):
    """A sampling operation that follows a prompt."""

    prompt: PlainText = Field("", max_length=MAX_PROMPT_CHARS)
    negative_prompt: PlainText = Field("", max_length=MAX_PROMPT_CHARS)


def _check_working_size(value: _Size, info: ValidationInfo) -> _Size:
    if value is not None and value % 8:
        lower = value - value % 8
        raise ValueError(
            f"{info.field_name} must be a multiple of 8 (got {value}; try {lower} or {lower + 8})"
        )
    return value


# --- the operations -------------------------------------------------------------------------------------


class UpscaleOp(BaseOp):
    """Enlarge by `scale`, or to exactly `target_width` × `target_height`, with a resampler or a model."""

    op: Literal["upscale"] = "upscale"
    upscaler: str = Field("Lanczos", min_length=1, max_length=_NAME_CHARS, description="From list_upscalers")
    scale: float | None = Field(None, ge=1.0, le=MAX_UPSCALE, description="×1 to ×8; default ×2")
    target_width: int | None = Field(None, ge=1, le=16384)
    target_height: int | None = Field(None, ge=1, le=16384)
    crop: bool = Field(False, description="With a target: keep the aspect, cover the target, cut the centre")

    @model_validator(mode="before")
    @classmethod
    def _default_scale(cls, data: Any) -> Any:
        if isinstance(data, dict) and all(
            data.get(k) is None for k in ("scale", "target_width", "target_height")
        ):
            return {**data, "scale": 2.0}
        return data

    @model_validator(mode="after")
    def _scale_or_target(self) -> UpscaleOp:
        targets = (self.target_width, self.target_height)
        if any(t is not None for t in targets):
            if None in targets:
                raise ValueError("give both target_width and target_height, or a scale")
            if self.scale is not None:
                raise ValueError("give a scale or a target size (target_width × target_height), not both")
        elif self.crop:
            raise ValueError("crop needs a target size (target_width × target_height)")
        return self

    @property
    def target(self) -> tuple[int, int] | None:
        if self.target_width is None or self.target_height is None:
            return None
        return self.target_width, self.target_height

    def label(self) -> str:
        how = f"to {self.target_width}x{self.target_height}" if self.target else f"×{self.scale:g}"
        how += " cropped" if self.crop else ""
        return f"upscale {how}" + ("" if self.upscaler == "Lanczos" else f" ({self.upscaler})")

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return self.target or _scaled(size, self.scale or 1.0)


class SdUpscaleOp(_Diffusion):
    """Upscale, then repaint at low strength tile by tile (overlapping tiles, feathered seams) for detail."""

    op: Literal["sd_upscale"] = "sd_upscale"
    upscaler: str = Field("Lanczos", min_length=1, max_length=_NAME_CHARS)
    scale: float = Field(2.0, ge=1.0, le=MAX_UPSCALE)
    denoising_strength: float = Field(0.2, gt=0.0, le=1.0, description="How much each tile is repainted")
    tile_size: int = Field(512, ge=MIN_SIZE, le=MAX_SIZE, description="Tile side in px (multiple of 8)")
    overlap: int = Field(64, ge=0, le=MAX_SIZE // 2, description="Overlap of neighbouring tiles, px")

    @field_validator("tile_size")
    @classmethod
    def _tile_multiple_of_8(cls, value: int, info: ValidationInfo) -> int:
        return _check_working_size(value, info)

    @model_validator(mode="after")
    def _tiles_and_steps(self) -> SdUpscaleOp:
        if self.overlap * 2 > self.tile_size:
            raise ValueError(
                f"overlap {self.overlap} is more than half the tile size {self.tile_size}; lower the overlap"
            )
        if int(self.steps * self.denoising_strength) < 1:
            raise ValueError(
                f"denoising strength {self.denoising_strength} × {self.steps} steps leaves no step to sample; "
                "raise the steps or the strength"
            )
        return self

    def label(self) -> str:
        extra = "" if self.upscaler == "Lanczos" else f", {self.upscaler}"
        return f"sd_upscale ×{self.scale:g} (strength {self.denoising_strength:g}{extra})"

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return _scaled(size, self.scale)

    def work_units(self, size: tuple[int, int]) -> int:
        width, height = self.output_size(size)
        tiles = len(tile_boxes(width, height, self.tile_size, self.overlap))
        return tiles * int(self.steps * self.denoising_strength) + 1


class RestoreFacesOp(BaseOp):
    op: Literal["restore_faces"] = "restore_faces"
    model: ModelName = ""
    visibility: float = Field(1.0, gt=0.0, le=1.0, description="How much of the restored faces shows")


class EnhanceOp(BaseOp):
    """Model-free corrections, each with a strength 0..1; `auto` picks the strengths from the picture."""

    op: Literal["enhance"] = "enhance"
    auto: bool = False
    levels: float = Field(0.0, ge=0.0, le=1.0)
    white_balance: float = Field(0.0, ge=0.0, le=1.0)
    contrast: float = Field(0.0, ge=0.0, le=1.0)
    saturation: float = Field(0.0, ge=0.0, le=1.0)
    denoise: float = Field(0.0, ge=0.0, le=1.0)
    sharpen: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _something_to_do(self) -> EnhanceOp:
        strengths = self.strengths()
        if self.auto and any(strengths.values()):
            raise ValueError("auto picks the strengths itself: leave them at 0, or turn auto off")
        if not self.auto and not any(strengths.values()):
            raise ValueError("set at least one strength above 0, or turn on auto")
        return self

    def strengths(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in ENHANCE_STRENGTHS}

    def label(self) -> str:
        return "enhance (auto)" if self.auto else "enhance"


ENHANCE_STRENGTHS = ("levels", "white_balance", "contrast", "saturation", "denoise", "sharpen")
SegmentMethod = Literal["auto", "model", "key"]


class RemoveBackgroundOp(BaseOp):
    """Cut the subject out: a transparent PNG. `keep_mask` / `remove_mask` are brush strokes on the picture
    this step works on (PNG bytes or base64 text, white or painted = brushed, that picture's size, checked when
    the step runs): they force the subject / the background after the automatic cut; where both are brushed,
    keep wins. Being drawn on one picture, they are left out of recipes (and of every dump)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    op: Literal["remove_background"] = "remove_background"
    method: SegmentMethod = Field("auto", description="model, key (uniform background colour), or auto")
    model: ModelName = ""
    alpha_matting: bool = False
    keep_mask: bytes | None = Field(
        None, repr=False, exclude=True, description="Brushed = always the subject; the picture's size"
    )
    remove_mask: bytes | None = Field(
        None, repr=False, exclude=True, description="Brushed = always background; the picture's size"
    )

    @field_validator("keep_mask", "remove_mask", mode="before")
    @classmethod
    def _base64_text(cls, value: Any, info: ValidationInfo) -> Any:
        return decode_base64_image(value, str(info.field_name)) if isinstance(value, str) else value

    @field_validator("keep_mask", "remove_mask")
    @classmethod
    def _valid_stroke(cls, value: bytes | None, info: ValidationInfo) -> bytes | None:
        return None if value is None else check_image(value, str(info.field_name))

    def label(self) -> str:
        brushed = [name for name in ("keep", "remove") if getattr(self, f"{name}_mask") is not None]
        return self.op + (f" (brushed: {', '.join(brushed)})" if brushed else "")


def decode_base64_image(text: str, name: str) -> bytes:
    """Image bytes from base64 text (a `data:image/...;base64,` prefix allowed); ValueError naming `name`."""
    payload = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name}: send the picture as PNG bytes or as base64 text") from None


def _preset_name(value: str) -> str:
    return check_preset_name(value) if value else value  # "" = no preset


class AppliedStyling(BaseModel):
    """What a preset and styles made of a replace-background operation, recorded once they are applied: the
    operation then carries the final prompt and settings, so replaying it applies nothing a second time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = Field("", max_length=_NAME_CHARS, description='The preset applied ("" = none)')
    styles: list[StyleName] = Field(default_factory=list, max_length=MAX_STYLES, description="In order")
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="The prompt as typed, before")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="The negative, before")


class ReplaceBackgroundOp(_Diffusion):
    """Cut the subject out and paint a new background around it from the prompt; the subject stays exact.

    `preset` and `styles` are applied when the job is submitted (the preset's styles first, then the
    operation's own): the queued operation carries the final prompt, sampler, steps and CFG, with `preset`
    and `styles` emptied and what was applied recorded in `applied`.
    """

    op: Literal["replace_background"] = "replace_background"
    prompt: PlainText = Field("", max_length=MAX_PROMPT_CHARS, description="The new background")
    method: SegmentMethod = "auto"
    segmenter: ModelName = ""
    width: int | None = Field(
        None, ge=MIN_SIZE, le=MAX_SIZE, description="Working width; default: the picture's"
    )
    height: int | None = Field(None, ge=MIN_SIZE, le=MAX_SIZE, description="Working height")
    edge_blur: int = Field(
        4, ge=0, le=64, description="Soft edge of the new background next to the subject, px"
    )
    preset: Annotated[str, AfterValidator(_preset_name)] = Field(
        "", description="A preset's styles and settings"
    )
    styles: list[StyleName] = Field(
        default_factory=list, max_length=MAX_STYLES, description="Applied in order"
    )
    applied: AppliedStyling | None = Field(
        None, description="Recorded when the preset and styles are applied"
    )

    @field_validator("width", "height")
    @classmethod
    def _size_multiple_of_8(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _check_working_size(value, info)

    @model_validator(mode="after")
    def _both_or_neither(self) -> ReplaceBackgroundOp:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither (the picture's own size)")
        if not self.prompt.strip() and not (self.preset or self.styles):
            raise ValueError("prompt: describe the new background (or pick a preset or styles that do)")
        if self.applied is not None and (self.preset or self.styles):
            raise ValueError(
                "the prompt already has its preset and styles applied (see applied); "
                "leave preset and styles empty, or remove applied"
            )
        return self

    def styled(self, preset: Preset | None, styles: Sequence[Style]) -> ReplaceBackgroundOp:
        """This operation with `preset` (its settings, and its prompt templates) and then `styles` applied, as
        a generating tab applies them; the size and batch of a preset do not apply (the picture keeps its
        size), nor its model when this operation names one. `styles` are the Style objects of
        :meth:`style_names`. Raises ValueError (readable) when the result is not a valid operation."""
        fields = self.sampling_fields()
        if preset is not None:
            applied = apply_preset(preset, fields, family=None)
            fields = {key: applied[key] for key in fields}
            fields["model"] = self.model or fields["model"]
        # the text is the scene: the preset's and styles' own backgrounds give way to it
        fields["prompt"], fields["negative_prompt"] = compose_scene(
            preset, styles, self.prompt, self.negative_prompt
        )
        record = AppliedStyling(
            preset=self.preset,
            styles=[style.name for style in styles],
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
        )
        data = {**self.model_dump(), **fields, "preset": "", "styles": [], "applied": record}
        try:
            return ReplaceBackgroundOp.model_validate(data)
        except ValidationError as exc:
            raise ValueError(validation_message(exc)) from None

    def style_names(self, preset: Preset | None) -> list[str]:
        """The styles to apply: the preset's, then this operation's own that the preset does not list."""
        names = list(preset.styles) if preset is not None else []
        return names + [name for name in self.styles if name not in names]

    def work_units(self, size: tuple[int, int]) -> int:
        return self.steps + 1


class EraseOp(SamplingOp):
    """Refill the brushed area from its surroundings (inpaint with masked content "fill", no prompt)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    op: Literal["erase"] = "erase"
    mask: bytes = Field(repr=False, description="White (or painted) = erase; the picture's size")
    mask_blur: int = Field(4, ge=0, le=64)

    @field_validator("mask")
    @classmethod
    def _valid_mask(cls, value: bytes) -> bytes:
        return check_image(value, "mask")

    @property
    def prompt(self) -> str:
        return ""

    @property
    def negative_prompt(self) -> str:
        return ""

    def work_units(self, size: tuple[int, int]) -> int:
        return self.steps


class VectorizeOp(BaseOp):
    """Trace the picture into an SVG file (a download; the picture itself is unchanged)."""

    op: Literal["vectorize"] = "vectorize"
    colors: Literal["color", "binary"] = "color"
    detail: float = Field(0.5, ge=0.0, le=1.0, description="0 = few smooth shapes, 1 = every speck")


class LogoPackOp(BaseOp):
    """A zip of transparent square PNGs of the picture at several sizes (a download)."""

    op: Literal["logo_pack"] = "logo_pack"
    sizes: list[Annotated[int, Field(ge=16, le=2048)]] = Field(
        default_factory=lambda: list(DEFAULT_LOGO_SIZES), min_length=1, max_length=10
    )
    padding: float = Field(
        DEFAULT_LOGO_PADDING, ge=0.0, le=40.0, description="Clear margin on each side, % of the square's side"
    )

    @field_validator("sizes")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each size may appear once")
        return value

    def label(self) -> str:
        padding = "" if self.padding == DEFAULT_LOGO_PADDING else f" (padding {self.padding:g}%)"
        return f"logo_pack {'/'.join(str(s) for s in self.sizes)}{padding}"


_REPLAYABLE = (
    UpscaleOp | SdUpscaleOp | RestoreFacesOp | EnhanceOp | RemoveBackgroundOp | ReplaceBackgroundOp | VectorizeOp
    | LogoPackOp
)  # fmt: skip
Op = Annotated[_REPLAYABLE | EraseOp, Field(discriminator="op")]
RecipeOp = Annotated[_REPLAYABLE, Field(discriminator="op")]  # erase is drawn on one picture: not in recipes
OP_NAMES = (
    "erase",
    "remove_background",
    "replace_background",
    "restore_faces",
    "enhance",
    "upscale",
    "sd_upscale",
    "vectorize",
    "logo_pack",
)  # the order the UI's chain builder runs them in
EXPORT_OPS = frozenset({"vectorize", "logo_pack"})
RESIZING_OPS = frozenset({"upscale", "sd_upscale"})

_OP_ADAPTER: TypeAdapter[BaseOp] = TypeAdapter(Op)


def parse_op(data: Mapping[str, Any]) -> BaseOp:
    """One operation from JSON-ready data (ValidationError on bad input)."""
    return _OP_ADAPTER.validate_python(dict(data))
