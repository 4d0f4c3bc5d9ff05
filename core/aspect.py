"""Aspect ratios and the picture sizes that suit each model family.

A model draws best near the area it was trained at: about 512² pixels for SD 1.x, 768² for SD 2.x and
1024² for SDXL. `size_for` picks a width × height for a ratio that keeps that area and lands on the grid the
models were trained on:

1. candidates are sizes whose sides are multiples of 64 and whose area is 90–100 % of the family's native
   area — for SDXL exactly the resolution buckets SDXL was trained on (1024×1024, 1152×896, 1216×832,
   1344×768, 1536×640, ...);
2. the candidate whose aspect is nearest the ratio (in log scale; ties: the larger area) wins when it is
   within 3 % of the ratio;
3. otherwise the same search runs on multiples of 32, then of 8 (the smallest step the models accept),
   so a 3:2 picture on SD 1.x is 608×416 rather than a 64-grid size that is 11 % too wide.

Every size stays within the request limits (`MIN_SIZE`..`MAX_SIZE`).
"""

from __future__ import annotations

import math
import re

from core.errors import AspectError as AspectError  # importable from here too
from core.requests import MAX_SIZE, MIN_SIZE

RATIOS: tuple[str, ...] = ("1:1", "4:5", "3:2", "2:3", "16:9", "9:16", "21:9")
"""The ratios the picker offers, in its order."""

CUSTOM = "custom"
"""The picker's entry for a free width × height."""

NATIVE_EDGE: dict[str, int] = {"sd1": 512, "sd2": 768, "sdxl": 1024}
"""Side of the square each family was trained at; its area is the area sizes are chosen around."""

DEFAULT_FAMILY = "sd1"
MAX_RATIO = 4.0  # 4:1 at the widest (and 1:4 at the tallest)
TOLERANCE = 0.03  # aspect error accepted on a grid before a finer grid is tried
AREA_BAND = (0.90, 1.00)  # candidate areas, as fractions of the native area
GRIDS = (64, 32, 8)

_RATIO = re.compile(r"^\s*(\d{1,4}(?:\.\d{1,3})?)\s*[:x×/]\s*(\d{1,4}(?:\.\d{1,3})?)\s*$")


def parse_ratio(text: str) -> float:
    """Width / height for "W:H" ("16:9", "1.91:1"; "x", "×" and "/" also separate). Raises AspectError."""
    match = _RATIO.match(text or "")
    if match is None:
        raise AspectError(f"aspect ratio {text!r}: write it as W:H, for example 16:9")
    width, height = float(match.group(1)), float(match.group(2))
    if width <= 0 or height <= 0:
        raise AspectError(f"aspect ratio {text!r}: both sides must be above 0")
    ratio = width / height
    if not 1 / MAX_RATIO <= ratio <= MAX_RATIO:
        raise AspectError(
            f"aspect ratio {text!r} is too extreme; use one between 1:{MAX_RATIO:g} and {MAX_RATIO:g}:1"
        )
    return ratio


def native_edge(family: str | None) -> int:
    """The family's native square side (SD 1.x's 512 when the family is unknown)."""
    if family is None:
        return NATIVE_EDGE[DEFAULT_FAMILY]
    try:
        return NATIVE_EDGE[family]
    except KeyError:
        raise AspectError(f"unknown model family {family!r}; known: {', '.join(NATIVE_EDGE)}") from None


def _candidates(area: float, grid: int) -> list[tuple[int, int]]:
    low, high = AREA_BAND[0] * area, AREA_BAND[1] * area
    sizes = []
    for width in range(max(MIN_SIZE, grid), MAX_SIZE + 1, grid):
        # the tallest height on the grid that keeps the area in the band, then the ones below it
        height = min(MAX_SIZE, int(high // width) // grid * grid)
        while height >= MIN_SIZE and width * height >= low:
            sizes.append((width, height))
            height -= grid
    return sizes


def size_for(ratio: str | float, family: str | None = None, *, edge: int | None = None) -> tuple[int, int]:
    """(width, height) for `ratio` ("4:5" or width/height) around the family's native area.

    `edge` overrides the native square side (for instance a small one for quick drafts). Raises
    AspectError when the ratio cannot be read or no size within the limits has it.
    """
    target = parse_ratio(ratio) if isinstance(ratio, str) else float(ratio)
    if not (math.isfinite(target) and 1 / MAX_RATIO <= target <= MAX_RATIO):
        raise AspectError(f"aspect ratio {ratio!r} must lie between 1:{MAX_RATIO:g} and {MAX_RATIO:g}:1")
    side = native_edge(family) if edge is None else edge
    if not MIN_SIZE <= side <= MAX_SIZE:
        raise AspectError(f"native size {side} must lie within {MIN_SIZE}..{MAX_SIZE}")
    area = float(side * side)
    for grid in GRIDS:
        sizes = _candidates(area, grid)
        if not sizes:
            continue
        best = min(sizes, key=lambda s: (abs(math.log(s[0] / s[1] / target)), -s[0] * s[1]))
        if abs(best[0] / best[1] / target - 1) <= TOLERANCE:
            return best
    raise AspectError(
        f"no size within {MIN_SIZE}..{MAX_SIZE} px has the ratio {ratio!r} at this model's size"
    )


def ratio_of(width: int, height: int) -> str | None:
    """The picker ratio `width × height` has (within the tolerance), or None for a custom size."""
    if width <= 0 or height <= 0:
        return None
    for name in RATIOS:
        if abs(width / height / parse_ratio(name) - 1) <= TOLERANCE:
            return name
    return None
