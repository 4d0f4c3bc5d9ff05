"""Retouch recipes: a replayable chain of operations, as JSON and in a retouched PNG's `easel` chunk."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import RecipeError
from core.requests import validation_message
from core.retouch import MAX_OPS, RECIPE_VERSION, RetouchRequest
from core.retouch_ops import RecipeOp

MAX_RECIPE_CHARS = 64_000


class RetouchRecipe(BaseModel):
    """A replayable chain: `{"version": 1, "ops": [{"op": "upscale", "scale": 2}, ...]}`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    version: Literal[1] = RECIPE_VERSION
    ops: list[RecipeOp] = Field(..., min_length=1, max_length=MAX_OPS)

    def request(self, image: bytes, *, seed: int = -1) -> RetouchRequest:
        """This recipe applied to `image` (ValidationError when the picture does not suit it)."""
        return RetouchRequest(image=image, ops=self.ops, seed=seed)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1)


def parse_recipe(source: str | bytes | Mapping[str, Any]) -> RetouchRecipe:
    """A recipe from JSON text or data, with a readable error (RecipeError) when it is not one."""
    if isinstance(source, str | bytes):
        if len(source) > MAX_RECIPE_CHARS:
            raise RecipeError(f"the recipe is longer than {MAX_RECIPE_CHARS:,} characters")
        if not source.strip():
            raise RecipeError(
                "the recipe is empty: paste a recipe's JSON, or take one from a retouched image"
            )
        try:
            data = json.loads(source)
        except ValueError as exc:
            raise RecipeError(f"the recipe is not valid JSON: {exc}") from None
    else:
        data = source
    if isinstance(data, list):
        data = {"version": RECIPE_VERSION, "ops": data}
    if not isinstance(data, dict):
        raise RecipeError('a recipe is a JSON object: {"version": 1, "ops": [...]}')
    try:
        return RetouchRecipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(f"recipe: {validation_message(exc)}") from None


RECIPE_CHUNK_FIELD = "retouch_recipe"  # where a retouched image's recipe lives in our PNG chunk


def recipe_from_chunk(chunk: Mapping[str, Any]) -> RetouchRecipe | None:
    """The recipe stored in an image's `easel` metadata, or None when it has none."""
    raw = chunk.get(RECIPE_CHUNK_FIELD)
    if raw is None:
        return None
    return parse_recipe(raw)


def recipe_from_png(data: bytes) -> RetouchRecipe | None:
    """The recipe a retouched PNG carries in its `easel` chunk, or None (RecipeError when damaged)."""
    from core.pnginfo import read_metadata

    _, chunk = read_metadata(data)
    return recipe_from_chunk(chunk) if chunk else None
