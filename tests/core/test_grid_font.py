"""Grid labels are drawn with a font that covers what users type: an em dash in a preset name is a dash, not
the missing-glyph box; without a system font the built-in one is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from core.grid import FONT_FILES, covers, draw_grid, font, font_file, grid_layout
from core.presets import PresetBook

BOOK = PresetBook(Path(__file__).resolve().parents[2] / "presets", None)
NO_SUCH_FONT = "/nonexistent/NoSuchFont.ttf"


def test_covers_tells_a_drawn_character_from_the_missing_glyph_box() -> None:
    builtin = ImageFont.load_default(size=20)
    assert covers(builtin, "Steps: 20, CFG 6.5")
    assert not covers(builtin, "\U0010fffd")  # a private-use character no font has
    found = font_file()
    if found is not None:
        assert not covers(ImageFont.truetype(str(found), size=20), "\U0010fffd")


def test_without_a_system_font_the_built_in_font_draws_ascii_labels(tmp_path: Path) -> None:
    not_a_font = tmp_path / "broken.ttf"
    not_a_font.write_bytes(b"not a font")
    assert font_file([NO_SUCH_FONT, not_a_font]) is None
    face = font(18, [NO_SUCH_FONT, not_a_font])
    assert isinstance(face, ImageFont.FreeTypeFont) and face.size == 18
    assert covers(face, "Steps: 20 Seed: 1")


def test_the_grid_font_draws_every_shipped_preset_and_style_name() -> None:
    found = font_file()
    if found is None:
        pytest.skip(
            f"none of {', '.join(FONT_FILES)} is installed (Debian: apt-get install fonts-dejavu-core)"
        )
    face = font(16)
    assert isinstance(face, ImageFont.FreeTypeFont) and Path(face.path) == found
    names = [p.name for p in BOOK.presets()] + [s.name for s in BOOK.styles()]
    assert any("—" in name for name in names)
    for name in names:
        assert covers(face, name), name
    assert covers(face, "512×768 → café ±0.5 “quoted”")


def test_an_em_dash_in_a_label_is_drawn_as_a_dash() -> None:
    """The label "a — b" drawn on a grid: the dash is a thin horizontal stroke, not a box."""
    if font_file() is None:
        pytest.skip("no system font with an em dash; the built-in font draws it as a box")
    cells = [Image.new("RGB", (256, 64), "white") for _ in range(2)]
    labels = ["—", "A"]
    grid = draw_grid(cells, (2, 1, 1), x_labels=labels)
    layout = grid_layout([c.size for c in cells], (2, 1, 1), labels, [], [])
    ink = np.asarray(grid.convert("L").crop((0, 0, layout.cell_width, layout.top))) < 128
    rows, columns = np.nonzero(ink)
    assert rows.size > 0
    height, width = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
    assert width > 3 * height  # a dash is much wider than it is tall; the missing-glyph box is not
    assert ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1].all()  # a solid stroke
