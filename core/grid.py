"""A labelled grid image of plot cells: column labels on top, row labels on the left, one grid per z value
side by side, each under its z title. Labels are drawn with DejaVu Sans or Noto Sans when the system has one
(Debian: fonts-dejavu-core, fonts-noto-core), which cover what users type (em dashes, accents, arrows, ×);
without one, with Pillow's scalable built-in font, which draws only ASCII and a few more. `covers` tells
whether a font draws every character of a text (rather than its missing-glyph box).

Size: each grid is `left + columns × cell width` wide and `title + top + rows × cell height` high (the
margins are 0 where an axis has no labels), with `GAP` pixels between z grids. Cells of different sizes
are centred in the largest cell's box.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

# Fonts that cover Latin, Greek, Cyrillic and the usual punctuation, looked for in this order.
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
)
_NOT_A_CHARACTER = "\uffff"  # never in a font: drawn as the font's missing-glyph box
GAP = 16  # between the grids of two z values
PAD = 6  # around label text
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
MIN_FONT = 14
MIN_ROW_LABEL_WIDTH = 160  # row labels wrap within at most max(this, cell width)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class GridLayout:
    """Where everything goes: the cell box, the label margins and the font size."""

    columns: int
    rows: int
    planes: int  # z values
    cell_width: int
    cell_height: int
    left: int  # row-label margin of each grid
    top: int  # column-label margin
    title: int  # z-title margin
    font_size: int

    @property
    def plane_width(self) -> int:
        return self.left + self.columns * self.cell_width

    @property
    def size(self) -> tuple[int, int]:
        width = self.planes * self.plane_width + (self.planes - 1) * GAP
        return width, self.title + self.top + self.rows * self.cell_height

    def cell_origin(self, x: int, y: int, z: int) -> tuple[int, int]:
        """Top-left corner of cell (x, y, z)'s box."""
        return (
            z * (self.plane_width + GAP) + self.left + x * self.cell_width,
            self.title + self.top + y * self.cell_height,
        )


def font_file(files: Sequence[str | Path] = FONT_FILES) -> Path | None:
    """The first of `files` that exists and is a font Pillow can read (None: use the built-in font)."""
    for name in files:
        path = Path(name)
        if not path.is_file():
            continue
        try:
            ImageFont.truetype(str(path), size=12)
        except OSError as exc:
            log.warning("grid label font %s skipped: %s", path, exc)
            continue
        return path
    return None


def font(size: int, files: Sequence[str | Path] = FONT_FILES) -> Font:
    """The label font at `size` px: the first usable of `files`, else Pillow's built-in font."""
    path = font_file(files)
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size=size)


def _glyph(face: Font, char: str) -> bytes:
    left, top, right, bottom = (int(v) for v in face.getbbox(char))
    image = Image.new("L", (max(1, right - min(left, 0)) + 2, max(1, bottom - min(top, 0)) + 2))
    ImageDraw.Draw(image).text((-min(left, 0), -min(top, 0)), char, font=face, fill=255)
    return f"{image.size}".encode() + image.tobytes()


def covers(face: Font, text: str) -> bool:
    """Whether `face` draws every character of `text` with a glyph of its own, none as the missing-glyph box."""
    missing = _glyph(face, _NOT_A_CHARACTER)
    return all(char.isspace() or _glyph(face, char) != missing for char in set(text))


def _warn_uncovered(face: Font, labels: Sequence[str]) -> None:
    if not covers(face, "".join(labels)):
        log.warning("some grid label characters are not in the label font; install fonts-dejavu-core")


def wrap(text: str, face: Font, width: int) -> list[str]:
    """`text` broken into lines no wider than `width` pixels (at words; inside a word only when it must)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:  # a word too long for a line of its own
                if line and face.getlength(line + char) > width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return lines


def _line_height(face: Font) -> int:
    return int(cast(ImageFont.FreeTypeFont, face).size * 1.25)


def _text_block_height(lines: Sequence[str], face: Font) -> int:
    return len(lines) * _line_height(face)


def grid_layout(
    cell_sizes: Sequence[tuple[int, int]],
    shape: tuple[int, int, int],
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    z_labels: Sequence[str],
) -> GridLayout:
    """The layout for cells of these sizes in a (columns, rows, planes) grid with these labels."""
    columns, rows, planes = shape
    cell_width = max(w for w, _ in cell_sizes)
    cell_height = max(h for _, h in cell_sizes)
    size = max(MIN_FONT, min(cell_width, cell_height) // 16)
    face = font(size)
    has = [any(label.strip() for label in labels) for labels in (x_labels, y_labels, z_labels)]
    top = left = title = 0
    if has[0]:
        lines = max(len(wrap(label, face, cell_width - 2 * PAD)) for label in x_labels)
        top = lines * _line_height(face) + 2 * PAD
    if has[1]:
        limit = max(MIN_ROW_LABEL_WIDTH, cell_width) - 2 * PAD
        widest = max(face.getlength(line) for label in y_labels for line in wrap(label, face, limit))
        left = int(widest) + 2 * PAD
    if has[2]:
        plane_width = left + columns * cell_width
        lines = max(len(wrap(label, face, plane_width - 2 * PAD)) for label in z_labels)
        title = lines * _line_height(face) + 2 * PAD
    return GridLayout(columns, rows, planes, cell_width, cell_height, left, top, title, size)


def draw_grid(
    images: Sequence[Image.Image],
    shape: tuple[int, int, int],
    x_labels: Sequence[str] = (),
    y_labels: Sequence[str] = (),
    z_labels: Sequence[str] = (),
) -> Image.Image:
    """The grid of `images` given in layout order (z, then y, then x) for a (columns, rows, planes) shape.

    Label lists are empty (no labels on that axis) or hold one label per column / row / plane.
    """
    # 1. check inputs
    columns, rows, planes = shape
    if min(shape) < 1 or len(images) != columns * rows * planes:
        raise ValueError(f"{len(images)} images do not fill a {columns}×{rows}×{planes} grid")
    for labels, count, name in (
        (x_labels, columns, "column"),
        (y_labels, rows, "row"),
        (z_labels, planes, "z"),
    ):
        if labels and len(labels) != count:
            raise ValueError(f"{len(labels)} {name} labels for {count} {name}s")
    # 2. lay out
    layout = grid_layout([i.size for i in images], shape, x_labels, y_labels, z_labels)
    face = font(layout.font_size)
    _warn_uncovered(face, [*x_labels, *y_labels, *z_labels])
    line = _line_height(face)
    canvas = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    def text_block(lines: Sequence[str], box: tuple[int, int, int, int]) -> None:
        """Centre the lines in box (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = box
        y = y0 + (y1 - y0 - _text_block_height(lines, face)) // 2
        for text in lines:
            x = x0 + (x1 - x0 - face.getlength(text)) / 2
            draw.text((x, y), text, font=face, fill=TEXT)
            y += line

    # 3. paste the cells, centred in their boxes
    index = 0
    for z in range(planes):
        for y in range(rows):
            for x in range(columns):
                picture = images[index].convert("RGB")
                ox, oy = layout.cell_origin(x, y, z)
                dx = (layout.cell_width - picture.width) // 2
                dy = (layout.cell_height - picture.height) // 2
                canvas.paste(picture, (ox + dx, oy + dy))
                index += 1
    # 4. labels
    for z in range(planes):
        plane_x = z * (layout.plane_width + GAP)
        if layout.title:
            limit = layout.plane_width - 2 * PAD
            text_block(
                wrap(z_labels[z], face, limit), (plane_x, 0, plane_x + layout.plane_width, layout.title)
            )
        if layout.top:
            for x, label in enumerate(x_labels):
                ox, _ = layout.cell_origin(x, 0, z)
                lines = wrap(label, face, layout.cell_width - 2 * PAD)
                text_block(lines, (ox, layout.title, ox + layout.cell_width, layout.title + layout.top))
        if layout.left:
            for y, label in enumerate(y_labels):
                _, oy = layout.cell_origin(0, y, z)
                lines = wrap(label, face, max(MIN_ROW_LABEL_WIDTH, layout.cell_width) - 2 * PAD)
                text_block(lines, (plane_x, oy, plane_x + layout.left, oy + layout.cell_height))
    return canvas
