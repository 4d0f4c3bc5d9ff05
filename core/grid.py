"""A labelled grid image of plot cells: column labels on top, row labels on the left, one grid per z value
side by side, each under its z title. Labels use Pillow's scalable built-in font (no system fonts).

Size: each grid is `left + columns × cell width` wide and `title + top + rows × cell height` high (the
margins are 0 where an axis has no labels), with `GAP` pixels between z grids. Cells of different sizes
are centred in the largest cell's box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from PIL import Image, ImageDraw, ImageFont

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


def font(size: int) -> Font:
    return ImageFont.load_default(size=size)


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
