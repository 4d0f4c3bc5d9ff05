"""Request models: the one validated shape of every job, shared by the UI and the HTTP API.

Bad values are rejected with a readable message; nothing is clamped or corrected silently.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.hires import DEFAULT_HR_UPSCALER, HiresSize, hires_size, second_pass_steps

if TYPE_CHECKING:
    from core.masks import OutpaintFill
from core.samplers import (
    DEFAULT_SAMPLER,
    DEFAULT_SCHEDULE,
    SamplerName,
    ScheduleType,
    resolve_schedule,
    split_legacy_name,
)

MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 8000
MIN_SIZE = 64
MAX_SIZE = 2048
MAX_BATCH_SIZE = 8
MAX_BATCH_COUNT = 16
MAX_IMAGES_PER_JOB = 64
MAX_STYLES = 16
MAX_STYLE_NAME = 100
_BAD_STYLE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f,]")


def check_style_name(name: str) -> str:
    """A style name as requests and files may carry it: 1–100 characters, no control characters, no commas
    (the infotext lists styles comma-separated), no leading or trailing spaces."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a style name must not be empty")
    if name != name.strip():
        raise ValueError(f"style name {name!r} must not start or end with spaces")
    if len(name) > MAX_STYLE_NAME:
        raise ValueError(f"style name {name[:40]!r}… is longer than {MAX_STYLE_NAME} characters")
    bad = _BAD_STYLE_NAME_CHARS.search(name)
    if bad is not None:
        what = "a comma" if bad.group() == "," else "a control character"
        raise ValueError(f"style name {name!r} must not contain {what}")
    return name


Seed = Annotated[int, Field(ge=-1, le=MAX_SEED, description="-1 picks a random seed; otherwise 0..2^32-1")]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


PlainText = Annotated[str, AfterValidator(_no_nul)]  # text with no NUL characters


class GenerationRequest(BaseModel):
    """Fields every diffusion task shares."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, str_strip_whitespace=False)

    task: str = "txt2img"
    model: str = Field("", description="Model name as listed by the registry; empty = the default model")
    prompt: PlainText = Field("", max_length=MAX_PROMPT_CHARS)
    negative_prompt: PlainText = Field("", max_length=MAX_PROMPT_CHARS)
    sampler: SamplerName = DEFAULT_SAMPLER
    schedule_type: ScheduleType = DEFAULT_SCHEDULE
    steps: int = Field(20, ge=1, le=150)
    cfg_scale: float = Field(
        7.0, ge=0.0, le=30.0, description="How strictly to follow the prompt (5–9 is usual)"
    )
    width: int = Field(512, ge=MIN_SIZE, le=MAX_SIZE)
    height: int = Field(512, ge=MIN_SIZE, le=MAX_SIZE)
    seed: Seed = -1
    subseed: Seed = Field(-1, description="Variation seed; -1 picks a random one when subseed_strength > 0")
    subseed_strength: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Variation strength: 0 = the seed's picture, 1 = the variation seed's",
    )
    seed_resize_from_w: int = Field(
        0, ge=0, le=MAX_SIZE, description="Draw the noise at this width (0 = off)"
    )
    seed_resize_from_h: int = Field(
        0, ge=0, le=MAX_SIZE, description="Draw the noise at this height (0 = off)"
    )
    batch_size: int = Field(
        1, ge=1, le=MAX_BATCH_SIZE, description="Images made together (needs more memory)"
    )
    batch_count: int = Field(1, ge=1, le=MAX_BATCH_COUNT, description="Batches made one after another")
    styles: tuple[str, ...] = Field(
        (), max_length=MAX_STYLES, description="Prompt styles applied in order (names from styles.csv)"
    )
    vae: str = Field(
        "", max_length=200, description="A VAE from models/VAE/ instead of the model's own (empty = its own)"
    )
    clip_skip: int = Field(
        1,
        ge=1,
        le=12,
        description="Clip skip: stop the text encoder this many layers before its last (1 = off)",
    )
    eta_noise_seed_delta: int = Field(
        0, ge=0, le=MAX_SEED, description="Added to the seed of ancestral samplers' step noise (A1111's ENSD)"
    )
    restore_faces: bool = Field(
        False, description="Restore faces after generating, with a face restorer from models/face_restore/"
    )
    tiling: bool = Field(
        False, description="Tiling: the picture wraps around at its edges (seamless patterns and textures)"
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_sampler_name(cls, data: object) -> object:
        # "DPM++ 2M Karras" (A1111 before 1.9) names sampler and schedule in one string.
        if isinstance(data, dict) and isinstance(data.get("sampler"), str):
            sampler, schedule = split_legacy_name(data["sampler"])
            if schedule is not None:
                if data.get("schedule_type") not in (None, "Automatic", schedule):
                    raise ValueError(
                        f"sampler {data['sampler']!r} names schedule {schedule!r} but schedule_type "
                        f"is {data['schedule_type']!r}"
                    )
                data = {**data, "sampler": sampler, "schedule_type": schedule}
        return data

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int, info: ValidationInfo) -> int:
        if value % 8:
            lower = value - value % 8
            raise ValueError(
                f"{info.field_name} must be a multiple of 8 (got {value}; try {lower} or {lower + 8})"
            )
        return value

    @field_validator("styles")
    @classmethod
    def _style_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            check_style_name(name)
        return value

    @model_validator(mode="after")
    def _schedule_supported(self) -> GenerationRequest:
        resolve_schedule(self.sampler, self.schedule_type)
        return self

    @model_validator(mode="after")
    def _total_images(self) -> GenerationRequest:
        total = self.batch_size * self.batch_count
        if total > MAX_IMAGES_PER_JOB:
            raise ValueError(
                f"batch size × batch count = {total} images; at most {MAX_IMAGES_PER_JOB} per job"
            )
        if self.seed + total - 1 > MAX_SEED:
            raise ValueError(
                f"image i of the job uses seed + i, so the seed may be at most {MAX_SEED - total + 1} for {total} images"
            )
        if self.subseed + total - 1 > MAX_SEED:
            raise ValueError(
                f"image i of the job uses subseed + i, so the variation seed may be at most {MAX_SEED - total + 1} "
                f"for {total} images"
            )
        return self

    @model_validator(mode="after")
    def _seed_resize(self) -> GenerationRequest:
        w, h = self.seed_resize_from_w, self.seed_resize_from_h
        if (w == 0) != (h == 0):
            raise ValueError(
                f"seed resize: give both seed_resize_from_w and seed_resize_from_h, or neither (got {w}x{h})"
            )
        for name, value in (("seed_resize_from_w", w), ("seed_resize_from_h", h)):
            if value and (value % 8 or not MIN_SIZE <= value <= MAX_SIZE):
                raise ValueError(
                    f"{name} must be 0 (off) or a multiple of 8 within {MIN_SIZE}..{MAX_SIZE} (got {value})"
                )
        return self

    @property
    def image_count(self) -> int:
        return self.batch_size * self.batch_count

    @property
    def seed_resize_from(self) -> tuple[int, int] | None:
        """(width, height) the start noise is drawn at, or None when it is drawn at the picture's size."""
        return (self.seed_resize_from_w, self.seed_resize_from_h) if self.seed_resize_from_w else None

    @property
    def steps_per_batch(self) -> int:
        """Sampling steps one batch takes (hires fix adds its second pass)."""
        return self.steps


class Txt2ImgRequest(GenerationRequest):
    """txt2img, optionally with A1111's hires fix: a first pass at width × height, upscaled (`hr_upscaler`) and
    repainted by img2img at `denoising_strength` with `hr_second_pass_steps` (0 = steps) at the larger size."""

    task: Literal["txt2img"] = "txt2img"
    enable_hr: bool = False
    hr_scale: float = Field(2.0, ge=1.0, le=4.0, description="Hires fix: upscale by this factor")
    hr_upscaler: str = Field(
        DEFAULT_HR_UPSCALER,
        min_length=1,
        max_length=200,
        description="Hires fix: a latent mode or an upscaler",
    )
    hr_second_pass_steps: int = Field(0, ge=0, le=150, description="Hires fix: second pass steps (0 = steps)")
    hr_resize_x: int = Field(0, ge=0, le=MAX_SIZE, description="Hires fix: target width (0 = from hr_scale)")
    hr_resize_y: int = Field(0, ge=0, le=MAX_SIZE, description="Hires fix: target height (0 = from hr_scale)")
    denoising_strength: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Hires fix: how much the second pass repaints (0 = none: the upscaled picture is kept)",
    )

    @model_validator(mode="after")
    def _hires(self) -> Txt2ImgRequest:
        if not self.enable_hr:
            return self
        for name in ("hr_resize_x", "hr_resize_y"):
            value = getattr(self, name)
            if value and (value % 8 or value < MIN_SIZE):
                raise ValueError(
                    f"{name} must be 0 (from hr_scale) or a multiple of 8 within {MIN_SIZE}..{MAX_SIZE}"
                )
        self.hires_size  # noqa: B018 - raises ValueError when the target is not a valid size
        # strength 0 (as in A1111): no second pass, the upscaled picture is the result
        second = second_pass_steps(self.steps, self.hr_second_pass_steps, self.denoising_strength)
        if self.denoising_strength > 0 and second < 1:
            raise ValueError(
                f"hires fix: denoising strength {self.denoising_strength} × {self.hr_second_pass_steps or self.steps} "
                "steps leaves the second pass no step; raise the strength or the hires steps"
            )
        return self

    @property
    def hires_size(self) -> HiresSize:
        """The hires fix's sizes (the output is `.target`); ValueError when they are not valid."""
        return hires_size(
            self.width, self.height, scale=self.hr_scale, resize_x=self.hr_resize_x, resize_y=self.hr_resize_y,
            min_size=MIN_SIZE, max_size=MAX_SIZE,
        )  # fmt: skip

    @property
    def output_size(self) -> tuple[int, int]:
        return self.hires_size.target if self.enable_hr else (self.width, self.height)

    @property
    def steps_per_batch(self) -> int:
        if not self.enable_hr:
            return self.steps
        return self.steps + second_pass_steps(self.steps, self.hr_second_pass_steps, self.denoising_strength)


def validation_message(error: Exception) -> str:
    """A short, user-facing message for a pydantic ValidationError (one line per problem)."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "__root__")
        msg = item.get("msg", "invalid value")
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{where}: {msg}" if where else msg)
    return "; ".join(lines)


ResizeMode = Literal["just resize", "crop and resize", "resize and fill"]
MaskedContent = Literal["original", "fill", "latent noise", "latent nothing"]
InpaintArea = Literal["whole picture", "only masked"]
IMAGE_FIELDS = frozenset({"init_image", "mask"})


def check_image(value: bytes, name: str) -> bytes:
    """`value` when it decodes as a picture we accept; ValueError naming the field `name` otherwise."""
    from core.errors import ImageInputError
    from core.images import decode_image

    try:
        decode_image(value)
    except ImageInputError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return value


class SourceImageRequest(GenerationRequest):
    """Fields of the tasks that start from an image: its bytes and how strongly to repaint it."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    init_image: bytes = Field(repr=False, description="The source image: PNG, JPEG or WebP bytes")
    denoising_strength: float = Field(
        0.75, ge=0.0, le=1.0, description="0 keeps the image, 1 repaints it completely"
    )

    @field_validator("init_image")
    @classmethod
    def _valid_init_image(cls, value: bytes) -> bytes:
        return check_image(value, "init_image")

    @model_validator(mode="after")
    def _some_sampling(self) -> SourceImageRequest:
        if 0 < self.denoising_strength and int(self.steps * self.denoising_strength) < 1:
            raise ValueError(
                f"denoising strength {self.denoising_strength} × {self.steps} steps leaves no step to sample; "
                "raise the steps or the strength"
            )
        return self


class Img2ImgRequest(SourceImageRequest):
    """img2img: the image is resized to width × height by `resize_mode`, re-noised to the strength and
    denoised toward the prompt."""

    task: Literal["img2img"] = "img2img"
    resize_mode: ResizeMode = "just resize"


class InpaintRequest(SourceImageRequest):
    """inpaint: only where `mask` is white changes; every pixel outside it is kept exactly. The output has
    the source image's size; width × height is the resolution the masked region is painted at."""

    task: Literal["inpaint"] = "inpaint"
    mask: bytes = Field(repr=False, description="White = repaint; the same size as init_image")
    mask_blur: int = Field(4, ge=0, le=64, description="Feathering inside the mask edge, px")
    invert_mask: bool = False
    masked_content: MaskedContent = "original"
    inpaint_area: InpaintArea = "whole picture"
    only_masked_padding: int = Field(32, ge=0, le=256, description="Context kept around the mask, px")

    @field_validator("mask")
    @classmethod
    def _valid_mask(cls, value: bytes) -> bytes:
        return check_image(value, "mask")


def request_summary(request: GenerationRequest) -> dict[str, object]:
    """The request as JSON-ready data without its (large) image fields, for metadata and logs."""
    return request.model_dump(mode="json", exclude=set(IMAGE_FIELDS) & set(type(request).model_fields))


def working_size(width: int, height: int) -> tuple[int, int]:
    """A model resolution for a picture: its own size in multiples of 8, scaled down to fit the limits."""
    scale = min(1.0, MAX_SIZE / max(width, height))
    w, h = (max(MIN_SIZE, round(v * scale / 8) * 8) for v in (width, height))
    return w, h


def outpaint_request(
    source: bytes,
    *,
    left: int = 0,
    right: int = 0,
    top: int = 0,
    bottom: int = 0,
    fill: OutpaintFill = "edge stretch",
    aspect: float | None = None,
    **fields: object,
) -> InpaintRequest:
    """An inpaint request that extends `source` by the given pixels on each side and paints only the new area.

    With `aspect` (width / height), the sides are chosen to reach that aspect instead.

    The new area is pre-filled (edge stretch or noise) and repainted with a soft seam that lies inside the
    new area, so every original pixel stays exact. The result has the extended canvas's size.
    """
    from core.errors import ImageInputError
    from core.images import decode_image, encode_png
    from core.masks import extend_canvas, extension_for_aspect

    seed = fields.get("seed", -1)
    try:
        picture = decode_image(source)
        if aspect is not None:
            left, right, top, bottom = extension_for_aspect(picture.size, aspect)
        canvas, mask = extend_canvas(
            picture, left=left, right=right, top=top, bottom=bottom, fill=fill,
            seed=seed if isinstance(seed, int) and seed >= 0 else 0,
        )  # fmt: skip
    except (ImageInputError, ValueError) as exc:
        raise ValueError(f"outpaint: {exc}") from None
    width, height = working_size(*canvas.size)
    return InpaintRequest(
        **{
            "mask_blur": 8,
            "denoising_strength": 1.0,
            **fields,
            "init_image": encode_png(canvas),
            "mask": encode_png(mask),
            "width": width,
            "height": height,
            "masked_content": "original",
            "inpaint_area": "whole picture",
            "invert_mask": False,
        }
    )
