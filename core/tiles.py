"""Overlapping tiles that cover a picture (SD upscale repaints one tile at a time)."""

from __future__ import annotations

import math


def tile_boxes(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Boxes (left, top, right, bottom) of overlapping tiles covering width × height.

    Tiles are `tile` px (or the whole side, where the picture is smaller), spread evenly so that
    neighbours overlap by at least `overlap` px; together they cover every pixel.
    """
    if tile <= overlap:
        raise ValueError(f"the tile size {tile} must be larger than the overlap {overlap}")
    xs = _spans(width, tile, overlap)
    ys = _spans(height, tile, overlap)
    return [(x0, y0, x1, y1) for y0, y1 in ys for x0, x1 in xs]


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    last = length - tile
    starts = [round(i * last / (count - 1)) for i in range(count)]
    return [(s, s + tile) for s in starts]
