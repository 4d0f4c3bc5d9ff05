"""Aspect ratios → sizes per model family: on the grid, near the native area, the ratio kept."""

from __future__ import annotations

import pytest

from core.aspect import NATIVE_EDGE, RATIOS, AspectError, parse_ratio, ratio_of, size_for
from core.requests import MAX_SIZE, MIN_SIZE, Txt2ImgRequest

# The resolution buckets SDXL was trained on (Podell et al. 2023, appendix), for the picker's ratios.
SDXL_BUCKETS = {
    "1:1": (1024, 1024),
    "4:5": (896, 1152),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "21:9": (1536, 640),
}


@pytest.mark.parametrize("family", sorted(NATIVE_EDGE))
@pytest.mark.parametrize("ratio", RATIOS)
def test_sizes_keep_the_ratio_and_the_native_area(family: str, ratio: str) -> None:
    width, height = size_for(ratio, family)
    assert width % 8 == 0 and height % 8 == 0
    assert MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE
    assert abs(width / height / parse_ratio(ratio) - 1) <= 0.03
    native = NATIVE_EDGE[family] ** 2
    assert 0.9 * native <= width * height <= native
    Txt2ImgRequest(width=width, height=height)  # a size every request accepts


def test_sdxl_sizes_are_sdxls_training_buckets() -> None:
    assert {ratio: size_for(ratio, "sdxl") for ratio in RATIOS} == SDXL_BUCKETS


def test_the_64_grid_is_preferred_where_it_fits_the_ratio() -> None:
    assert size_for("1:1", "sd1") == (512, 512)
    assert size_for("4:5", "sd1") == (448, 576)
    assert size_for("16:9", "sd2") == (1024, 576)
    assert size_for("1:1", "sd2") == (768, 768)
    # no 64-grid size near 512² is within 3 % of 3:2; a finer grid is used instead of a wrong shape
    width, height = size_for("3:2", "sd1")
    assert (width % 64, height % 64) != (0, 0) and width % 8 == 0 and height % 8 == 0


def test_portrait_is_landscape_transposed() -> None:
    for family in NATIVE_EDGE:
        for wide, tall in (("3:2", "2:3"), ("16:9", "9:16")):
            assert size_for(tall, family) == size_for(wide, family)[::-1]


def test_sizes_grow_with_the_family() -> None:
    for ratio in RATIOS:
        areas = [size_for(ratio, f)[0] * size_for(ratio, f)[1] for f in ("sd1", "sd2", "sdxl")]
        assert areas == sorted(areas) and len(set(areas)) == 3


def test_custom_ratios_and_edges() -> None:
    assert parse_ratio("1.91:1") == pytest.approx(1.91)
    assert parse_ratio(" 3 x 4 ") == pytest.approx(0.75)
    w, h = size_for("5:4", "sdxl")
    assert abs(w / h - 1.25) <= 0.03 * 1.25
    w, h = size_for(1.0, edge=128)
    assert (w, h) == (128, 128)
    w, h = size_for("21:9", edge=128)
    assert w % 8 == 0 and h % 8 == 0 and abs(w / h / (21 / 9) - 1) <= 0.03
    assert size_for("4:5") == size_for("4:5", "sd1")  # unknown family: SD 1.x's size


@pytest.mark.parametrize("text", ["", "16", "16:0", "0:9", "a:b", "-1:2", "1:2:3", "16:9; rm -rf /", "9:1"])
def test_bad_ratios_are_rejected_clearly(text: str) -> None:
    with pytest.raises(AspectError, match="aspect ratio|too extreme"):
        size_for(text, "sd1")


def test_unknown_family_and_edges_out_of_range() -> None:
    with pytest.raises(AspectError, match="family"):
        size_for("1:1", "sd3")
    with pytest.raises(AspectError, match="native size"):
        size_for("1:1", edge=4096)


def test_ratio_of_a_size() -> None:
    for family in NATIVE_EDGE:
        for ratio in RATIOS:
            assert ratio_of(*size_for(ratio, family)) == ratio
    assert ratio_of(512, 200) is None
    assert ratio_of(0, 10) is None
