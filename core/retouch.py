"""Retouch requests: an image and a chain of operations (`core.retouch_ops`), validated once at the boundary
for the UI and the HTTP API.

A chain runs in order, each operation's output feeding the next. The chain without the image (and without
picture-specific masks) is a *recipe*: JSON that can be replayed on other images. Bad values are refused with
a readable message, never clamped.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.images import MAX_PIXELS, decode_image
from core.requests import MAX_SEED, Seed, check_image, validation_message
from core.retouch_ops import EXPORT_OPS, BaseOp, EraseOp, Op, ReplaceBackgroundOp, SamplingOp

MAX_OPS = 8
MAX_OUTPUT_PIXELS = MAX_PIXELS  # no operation may make a picture larger than an upload may be
MAX_TITLE_CHARS = 200
RECIPE_VERSION: Final = 1
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_STEP_FAILURE = re.compile(r"^Step (\d+) \(")


class RetouchRequest(BaseModel):
    """A picture and the operations to apply to it, in order (1 to 8)."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, frozen=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    task: Literal["retouch"] = "retouch"
    image: bytes = Field(repr=False, description="The picture: PNG, JPEG or WebP bytes")
    ops: list[Op] = Field(..., min_length=1, max_length=MAX_OPS)
    seed: Seed = Field(-1, description="Seed of the first diffusion operation whose own seed is -1")
    title: str | None = Field(
        None, max_length=MAX_TITLE_CHARS, description="The picture's title (an upload keeps its file name)"
    )
    keep_steps: bool = Field(
        False,
        description="Save the picture of every step to the gallery, not only the last one (a chain that "
        "stops at a failing step always keeps the picture of the step before it)",
    )
    _size: tuple[int, int] = PrivateAttr((0, 0))

    @field_validator("image")
    @classmethod
    def _valid_image(cls, value: bytes) -> bytes:
        return check_image(value, "image")

    @field_validator("title")
    @classmethod
    def _plain_title(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("give some text, or leave the title out")
        if _CONTROL_CHARS.search(value):
            raise ValueError("must be one line of text without control characters")
        return value

    @model_validator(mode="after")
    def _chain(self) -> RetouchRequest:
        # the sizes through the chain: masks must fit, nothing may grow past the pixel cap
        with decode_image(self.image) as picture:
            size = picture.size
        self._size = size
        resized = None
        for index, op in enumerate(self.ops, start=1):
            if isinstance(op, EraseOp):
                if resized is not None:
                    raise ValueError(
                        f"ops[{index}] erase: put erase before {resized}; its mask is drawn on the original picture"
                    )
                with decode_image(op.mask) as mask:
                    if mask.size != size:
                        raise ValueError(
                            f"ops[{index}] erase: the mask is {mask.width}×{mask.height} but the picture is "
                            f"{size[0]}×{size[1]}; draw the mask on this picture"
                        )
            new = op.output_size(size)
            if new[0] * new[1] > MAX_OUTPUT_PIXELS:
                raise ValueError(
                    f"ops[{index}] {op.op}: the result would be {new[0]}×{new[1]}, more than "
                    f"{MAX_OUTPUT_PIXELS:,} pixels; ask for a smaller scale"
                )
            if new != size and resized is None:
                resized = op.op
            size = new
        if self.seed != -1 and self.seed + len(self.diffusion_ops) > MAX_SEED + 1:
            raise ValueError(
                f"the seed may be at most {MAX_SEED + 1 - len(self.diffusion_ops)} for this chain"
            )
        return self

    # -- what the Studio and the queue read ---------------------------------------------------------------
    @property
    def source_size(self) -> tuple[int, int]:
        return self._size

    @property
    def diffusion_ops(self) -> list[BaseOp]:
        return [op for op in self.ops if op.needs_model]

    @property
    def needs_model(self) -> bool:
        return bool(self.diffusion_ops)

    @property
    def model(self) -> str:
        """The model of the first diffusion operation ("" when none runs one)."""
        return next((op.model for op in self.diffusion_ops if isinstance(op, SamplingOp)), "")

    @property
    def image_count(self) -> int:
        return 1

    @property
    def batch_count(self) -> int:
        return 1

    @property
    def total_steps(self) -> int:
        """Progress steps of the whole chain: one per plain operation, the sampling steps of the others."""
        total, size = 0, self._size
        for op in self.ops:
            total += op.work_units(size)
            size = op.output_size(size)
        return max(1, total)

    @property
    def steps(self) -> int:
        return self.total_steps

    @property
    def output_size(self) -> tuple[int, int]:
        size = self._size
        for op in self.ops:
            size = op.output_size(size)
        return size

    @property
    def changes_image(self) -> bool:
        """False when the chain only exports (SVG, logo pack): nothing new for the gallery."""
        return any(op.op not in EXPORT_OPS for op in self.ops)

    def summary(self) -> str:
        """The chain in one line, for the infotext: "remove_background → upscale ×2"."""
        return " → ".join(op.label() for op in self.ops)

    def recipe(self) -> dict[str, Any]:
        """The chain as JSON-ready data without picture bytes; erase (drawn on this picture) is left out."""
        return make_recipe(self.ops)

    def file_stem(self) -> str:
        """The start of its download names: the title (else the new background's prompt as typed, else
        "retouch") as a slug, and 8 hex digits of the picture's hash, e.g. "mug-shot-3f2a9c1b"."""
        typed = ""
        background = next((op for op in self.ops if isinstance(op, ReplaceBackgroundOp)), None)
        if background is not None:
            typed = background.applied.prompt if background.applied is not None else background.prompt
        digest = hashlib.sha256(self.image).hexdigest()[:8]
        title = _IMAGE_SUFFIX.sub("", self.title or "")  # an upload's name: "mug-shot.png" → "mug-shot"
        return f"{file_slug(title or typed) or 'retouch'}-{digest}"


_IMAGE_SUFFIX = re.compile(r"\.(png|jpe?g|webp|gif|bmp|tiff?|avif)$", re.IGNORECASE)


def file_slug(text: str) -> str:
    """Text as a short safe file-name part: "Mug shot — café" → "mug-shot-cafe" ("" when nothing is left)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40].strip("-")


def make_recipe(ops: Sequence[BaseOp]) -> dict[str, Any]:
    """A recipe from operations (erase steps, being specific to their picture, are left out)."""
    return {
        "version": RECIPE_VERSION,
        "ops": [op.model_dump(mode="json") for op in ops if not isinstance(op, EraseOp)],
    }


def step_failure(index: int, label: str, reason: str) -> str:
    """The error of a chain that stopped at step `index` (1-based): "Step 3 (logo_pack …): reason"."""
    return f"Step {index} ({label}): {reason}"


def failed_step(error: str | None) -> int | None:
    """The step (1-based) a chain's error names (see step_failure); None when it names none."""
    found = _STEP_FAILURE.match(error or "")
    return int(found.group(1)) if found else None


def retouch_request(
    image: bytes, ops: Sequence[Mapping[str, Any] | BaseOp], *, seed: int = -1, title: str | None = None
) -> RetouchRequest:
    """Build a request; raises ValueError with a readable message (for callers that are not pydantic-aware)."""
    try:
        return RetouchRequest(image=image, ops=list(ops), seed=seed, title=title)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None
