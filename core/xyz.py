"""X/Y/Z plots: up to three axes of settings over one base request, expanded into one request per cell.

Axis values are written as in AUTOMATIC1111's X/Y/Z plot: comma-separated (CSV quoting, so a value may
hold a comma inside double quotes), and for number axes also ranges:

- `1-5` → 1, 2, 3, 4, 5 (both ends included; `5-1` counts down)
- `5-30 (+5)` → 5, 10, …, 30 and `10-1 (-3)` → 10, 7, 4, 1 (a step; the end is included when reached)
- `0.1-0.9 [5]` → 0.1, 0.3, 0.5, 0.7, 0.9 (a count of evenly spaced values; whole numbers on int axes)

Every cell's request is built by applying the axis values to the base request's fields and validating
the result, so a bad value is reported with its axis before anything runs. A plot may have at most
`MAX_CELLS` cells.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import PlotError as PlotError  # importable from here too
from core.requests import (
    GenerationRequest,
    Img2ImgRequest,
    InpaintRequest,
    Txt2ImgRequest,
    validation_message,
)

MAX_CELLS = 64
"""The most cells one plot may have (x values × y values × z values)."""

MAX_VALUES_CHARS = 4000

ValueKind = Literal["int", "float", "str", "size"]


@dataclass(frozen=True)
class AxisType:
    """One kind of axis: what its values are and which request field(s) they set."""

    key: str
    label: str
    kind: ValueKind
    fields: tuple[str, ...] = ()  # request fields the axis sets (it applies only where they exist)
    name_value: bool = True  # label cells "Steps: 20" (True) or just "20"
    info: str = ""
    example: str = ""  # what the values box shows while empty
    picker: str = ""  # the names to pick values from: presets, styles, samplers, schedules, models, loras


_PICK = "pick below or type names, separated by commas"
AXIS_TYPES: dict[str, AxisType] = {
    a.key: a
    for a in (
        AxisType("nothing", "Nothing", "str"),
        AxisType(
            "seed", "Seed", "int", ("seed",), info="-1 = a random seed for that cell",
            example="e.g. 1, 2, 3 or 100-104",
        ),
        AxisType("variation_seed", "Var. seed", "int", ("subseed",), example="e.g. 1, 2, 3"),
        AxisType(
            "variation_strength", "Var. strength", "float", ("subseed_strength",),
            example="e.g. 0-0.3 [4] or 0.05, 0.1, 0.2",
        ),
        AxisType("steps", "Steps", "int", ("steps",), example="e.g. 10-30 (+10)"),
        AxisType("cfg_scale", "CFG Scale", "float", ("cfg_scale",), example="e.g. 4-10 (+2) or 5, 7.5"),
        AxisType(
            "sampler", "Sampler", "str", ("sampler",), name_value=False, example=_PICK, picker="samplers"
        ),
        AxisType("schedule_type", "Schedule type", "str", ("schedule_type",), example=_PICK, picker="schedules"),
        AxisType(
            "prompt_sr",
            "Prompt S/R",
            "str",
            ("prompt", "negative_prompt"),
            name_value=False,
            info="The first value is searched for; each value replaces it",
            example="e.g. fox, cat, owl (fox is searched for in the prompt)",
        ),
        AxisType(
            "styles", "Styles", "str", ("styles",), name_value=False, info="One style name per value",
            example=_PICK, picker="styles",
        ),
        AxisType(
            "preset", "Preset", "str", (), name_value=False, info="One preset name per value",
            example=_PICK, picker="presets",
        ),
        AxisType(
            "model", "Checkpoint name", "str", ("model",), name_value=False, example=_PICK, picker="models"
        ),
        AxisType(
            "lora", "LoRA", "str", (), name_value=False,
            info="Each value adds <lora:name:1> to the prompt (name:0.6 sets the weight; none: no LoRA)",
            example=_PICK, picker="loras",
        ),
        AxisType("denoising_strength", "Denoising", "float", ("denoising_strength",), example="e.g. 0.3-0.7 [3]"),
        AxisType("size", "Size", "size", ("width", "height"), info="Values like 512x768", example="e.g. 512x512, 512x768"),
        AxisType("hires_steps", "Hires steps", "int", ("hr_second_pass_steps",), example="e.g. 10-20 (+5)"),
        AxisType("hires_scale", "Hires upscale", "float", ("hr_scale",), example="e.g. 1.5, 2"),
    )
}  # fmt: skip
AxisKey = Literal[
    "nothing", "seed", "variation_seed", "variation_strength", "steps", "cfg_scale", "sampler",
    "schedule_type", "prompt_sr", "styles", "preset", "model", "lora", "denoising_strength", "size",
    "hires_steps", "hires_scale",
]  # fmt: skip


def axis_choices(request_cls: type[GenerationRequest]) -> list[tuple[str, str]]:
    """(label, key) of the axis types that apply to requests of `request_cls` (for a dropdown)."""
    fields = request_cls.model_fields
    return [(a.label, a.key) for a in AXIS_TYPES.values() if all(f in fields for f in a.fields)]


# -- value parsing ---------------------------------------------------------------------------------

_INT = r"[+-]?\d+"
_FLOAT = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE_HINT = "a list like 1, 2, 3 or a range like 1-5, 5-30 (+5), 10-1 (-3), 0.1-0.9 [5]"


def _range_patterns(number: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    n = rf"\s*({number})\s*"
    return (
        re.compile(rf"{n}"),
        re.compile(rf"{n}-{n}(?:\(\s*({number})\s*\)\s*)?"),
        re.compile(rf"{n}-{n}\[\s*(\d+)\s*\]\s*"),
    )


_INT_PATTERNS = _range_patterns(_INT)
_FLOAT_PATTERNS = _range_patterns(_FLOAT)
_SIZE = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")


def split_values(text: str) -> list[str]:
    """CSV items of `text` (commas or new lines separate; double quotes protect commas), stripped, empties
    dropped."""
    try:
        rows = list(csv.reader(io.StringIO(text), skipinitialspace=True, strict=True))
    except csv.Error as exc:
        raise PlotError(
            f"cannot read the values ({exc}); put a value holding a comma in double quotes"
        ) from None
    return [item.strip() for row in rows for item in row if item.strip()]


def _checked_count(count: int, item: str) -> int:
    if count < 1:
        raise PlotError(f"{item!r}: a range needs at least one value")
    if count > MAX_CELLS:
        raise PlotError(f"{item!r} gives {count} values; a plot has at most {MAX_CELLS} cells")
    return count


def _stepped(start: float, end: float, step: float | None, item: str) -> list[float]:
    """start, start + step, … up to end inclusive (step ±1 by default, toward end)."""
    if step is None:
        step = 1.0 if end >= start else -1.0
    if step == 0:
        raise PlotError(f"{item!r}: the step must not be 0")
    if (end - start) * step < 0:
        raise PlotError(f"{item!r}: a step of {step:g} never goes from {start:g} to {end:g}")
    count = _checked_count(math.floor((end - start) / step + 1e-9) + 1, item)
    return [start + i * step for i in range(count)]


def _spaced(start: float, end: float, count: int, item: str) -> list[float]:
    count = _checked_count(count, item)
    if count == 1:
        return [start]
    return [start + (end - start) * i / (count - 1) for i in range(count)]


def _numbers(item: str, kind: ValueKind) -> list[int] | list[float]:
    single, stepped, spaced = _INT_PATTERNS if kind == "int" else _FLOAT_PATTERNS
    cast: Callable[[str], float] = int if kind == "int" else float
    if m := single.fullmatch(item):
        return [cast(m.group(1))]
    if m := stepped.fullmatch(item):
        step = cast(m.group(3)) if m.group(3) is not None else None
        values = _stepped(cast(m.group(1)), cast(m.group(2)), step, item)
    elif m := spaced.fullmatch(item):
        values = _spaced(cast(m.group(1)), cast(m.group(2)), int(m.group(3)), item)
    else:
        what = "a whole number" if kind == "int" else "a number"
        raise PlotError(f"{item!r} is not {what}; write {_RANGE_HINT}")
    if kind == "int":
        return [int(v) for v in values]
    return [round(v, 6) for v in values]


def join_values(values: Sequence[str]) -> str:
    """Names as an axis's values text, which `split_values` reads back into them: ", " between them, and a
    name holding a comma, a double quote or a line break in double quotes."""

    def cell(value: str) -> str:
        value = value.strip()
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value

    return ", ".join(cell(value) for value in values if value.strip())


def parse_values(text: str, kind: ValueKind) -> list[Any]:
    """The values an axis text stands for (see the module docstring for the syntax)."""
    values: list[Any] = []
    for item in split_values(text):
        if kind in ("int", "float"):
            values.extend(_numbers(item, kind))
        elif kind == "size":
            m = _SIZE.fullmatch(item)
            if m is None:
                raise PlotError(f"{item!r} is not a size; write width x height, e.g. 512x768")
            values.append((int(m.group(1)), int(m.group(2))))
        else:
            values.append(item)
        if len(values) > MAX_CELLS:
            raise PlotError(f"more than {MAX_CELLS} values; a plot has at most {MAX_CELLS} cells")
    return values


def format_axis_value(value: Any) -> str:
    """A value as a cell label shows it (and as it can be typed back)."""
    if isinstance(value, tuple):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


# -- the plot --------------------------------------------------------------------------------------


class Axis(BaseModel):
    """One axis: its type and its values as typed (a list or ranges)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: AxisKey = "nothing"
    values: str = Field("", max_length=MAX_VALUES_CHARS)

    @model_validator(mode="after")
    def _parses(self) -> Axis:
        try:
            self.parsed()
        except PlotError as exc:
            raise ValueError(f"{self.axis_type.label}: {exc}") from None
        return self

    @property
    def axis_type(self) -> AxisType:
        return AXIS_TYPES[self.type]

    @property
    def active(self) -> bool:
        """False for "Nothing" and for an axis without values: it contributes one cell, the base."""
        return self.type != "nothing" and bool(split_values(self.values))

    def parsed(self) -> list[Any]:
        if self.type == "nothing":
            return []
        values = parse_values(self.values, self.axis_type.kind)
        if self.type == "prompt_sr" and len(values) < 1:
            raise PlotError("the first value is the text to search for")
        return values

    def labels(self) -> list[str]:
        kind = self.axis_type
        return [
            f"{kind.label}: {format_axis_value(v)}" if kind.name_value else format_axis_value(v)
            for v in self.parsed()
        ]


BaseRequest = Annotated[Txt2ImgRequest | Img2ImgRequest | InpaintRequest, Field(discriminator="task")]
AXIS_NAMES = ("x", "y", "z")


class PlotRequest(BaseModel):
    """A base request and up to three axes; one image per cell."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: BaseRequest
    x: Axis | None = None
    y: Axis | None = None
    z: Axis | None = None

    @model_validator(mode="after")
    def _check(self) -> PlotRequest:
        if self.base.image_count != 1:
            raise ValueError("a plot makes one image per cell: set batch size and batch count to 1")
        fields = type(self.base).model_fields
        seen: dict[str, str] = {}
        for name, axis in self.axes():
            kind = axis.axis_type
            missing = [f for f in kind.fields if f not in fields]
            if missing:
                raise ValueError(f"{name.upper()} axis: {kind.label} does not apply to {self.base.task}")
            for f in kind.fields:
                if f in seen:
                    raise ValueError(f"{seen[f].upper()} and {name.upper()} axes both set {f}")
                seen[f] = name
        total = math.prod(len(v) for v in self.axis_values())
        if total > MAX_CELLS:
            counts = " × ".join(str(len(v)) for v in self.axis_values())
            raise ValueError(f"the plot would make {counts} = {total} cells; at most {MAX_CELLS}")
        return self

    def axes(self) -> list[tuple[str, Axis]]:
        """The active axes with their names ("x", "y", "z")."""
        return [(n, a) for n in AXIS_NAMES if (a := getattr(self, n)) is not None and a.active]

    def axis_values(self) -> tuple[list[Any], list[Any], list[Any]]:
        """Each axis's values; an inactive axis has one value, None (the base)."""
        out = []
        for name in AXIS_NAMES:
            axis = getattr(self, name)
            out.append(axis.parsed() if axis is not None and axis.active else [None])
        return out[0], out[1], out[2]

    def axis_labels(self) -> tuple[list[str], list[str], list[str]]:
        out = []
        for name in AXIS_NAMES:
            axis = getattr(self, name)
            out.append(axis.labels() if axis is not None and axis.active else [""])
        return out[0], out[1], out[2]

    @property
    def shape(self) -> tuple[int, int, int]:
        xs, ys, zs = self.axis_values()
        return len(xs), len(ys), len(zs)


@dataclass(frozen=True)
class Cell:
    """One cell of a plot: its place (x, y, z) and the request that makes its image."""

    x: int
    y: int
    z: int
    request: GenerationRequest


@dataclass(frozen=True)
class AxisContext:
    """What some axes need from outside core: presets by name and a model's family ("sd1", "sdxl", …)."""

    presets: Mapping[str, Any] | None = None
    family_of: Callable[[str], str | None] | None = None


def _apply(
    axis: Axis, values: Sequence[Any], index: int, fields: dict[str, Any], context: AxisContext
) -> dict[str, Any]:
    """`fields` with the axis's value number `index` applied."""
    value = values[index]
    key = axis.type
    if key == "prompt_sr":
        search = values[0]
        return {
            **fields,
            "prompt": fields.get("prompt", "").replace(search, value),
            "negative_prompt": fields.get("negative_prompt", "").replace(search, value),
        }
    if key == "size":
        return {**fields, "width": value[0], "height": value[1]}
    if key == "styles":
        return {**fields, "styles": (*fields.get("styles", ()), value)}
    if key == "preset":
        return _apply_preset(value, fields, context)
    if key == "lora":
        return {**fields, "prompt": with_lora(str(fields.get("prompt", "")), value)}
    (name,) = axis.axis_type.fields
    return {**fields, name: value}


_LORA_VALUE = re.compile(r"(?P<name>[^<>:]+?)(?:\s*:\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+)))?")


def with_lora(prompt: str, value: str) -> str:
    """`prompt` with the LoRA of an axis value added: "name" → <lora:name:1>, "name:0.6" → <lora:name:0.6>;
    "none" leaves it as it is. PlotError for a value that is not a LoRA name."""
    if value.strip().lower() == "none":
        return prompt
    match = _LORA_VALUE.fullmatch(value.strip())
    if match is None:
        raise PlotError(f"{value!r} is not a LoRA; write its name, or name:weight such as name:0.6")
    tag = f"<lora:{match['name'].strip()}:{match['weight'] or 1}>"
    return f"{prompt} {tag}" if prompt.strip() else tag


def _apply_preset(name: str, fields: dict[str, Any], context: AxisContext) -> dict[str, Any]:
    from core.presets import apply_preset

    presets = context.presets or {}
    if name not in presets:
        known = ", ".join(sorted(presets)) or "none"
        raise PlotError(f"unknown preset {name!r}; available: {known}")
    family = context.family_of(fields.get("model", "")) if context.family_of else None
    applied = apply_preset(presets[name], fields, family=family)
    # a plot makes one image per cell, whatever batch the preset asks for
    return {**applied, "batch_size": fields["batch_size"], "batch_count": fields["batch_count"]}


def _check_prompt_sr(plot: PlotRequest) -> None:
    base = plot.base
    for name, axis in plot.axes():
        if axis.type == "prompt_sr":
            search = axis.parsed()[0]
            if search not in base.prompt and search not in base.negative_prompt:
                raise PlotError(
                    f"{name.upper()} axis: Prompt S/R did not find {search!r} in the prompt or negative prompt"
                )


def _validated(request_cls: type[GenerationRequest], fields: dict[str, Any], where: str) -> GenerationRequest:
    try:
        return request_cls(**fields)
    except ValidationError as exc:
        raise PlotError(f"{where}: {validation_message(exc)}") from None


def cells(plot: PlotRequest, context: AxisContext | None = None) -> list[Cell]:
    """Every cell of the plot in layout order (z, then y, then x), each with its validated request.

    Each axis value is first checked on its own (so an error names the axis and the value), then every
    combination. Raises PlotError.
    """
    context = context or AxisContext()
    base = plot.base
    request_cls = type(base)
    base_fields = base.model_dump()
    _check_prompt_sr(plot)
    axes = {name: getattr(plot, name) for name in AXIS_NAMES}
    values = dict(zip(AXIS_NAMES, plot.axis_values(), strict=True))

    def with_values(indices: Mapping[str, int]) -> dict[str, Any]:
        fields = dict(base_fields)
        for name, index in indices.items():
            axis = axes[name]
            if axis is not None and axis.active:
                fields = _apply(axis, values[name], index, fields, context)
        return fields

    # 1. each value alone
    for name, axis in plot.axes():
        for index, value in enumerate(values[name]):
            where = f"{name.upper()} axis, {axis.axis_type.label} {format_axis_value(value)!r}"
            try:
                fields = with_values({name: index})
            except PlotError as exc:
                raise PlotError(f"{where}: {exc}") from None
            _validated(request_cls, fields, where)
    # 2. every combination, in layout order
    out = []
    for iz in range(len(values["z"])):
        for iy in range(len(values["y"])):
            for ix in range(len(values["x"])):
                indices = {"x": ix, "y": iy, "z": iz}
                where = ", ".join(
                    f"{n.upper()} {format_axis_value(values[n][i])!r}"
                    for n, i in indices.items()
                    if axes[n] is not None and axes[n].active
                )
                request = _validated(request_cls, with_values(indices), f"cell {where or '(base)'}")
                out.append(Cell(ix, iy, iz, request))
    return out


def run_order(plot_cells: Sequence[Cell]) -> list[Cell]:
    """The cells in the order to run them: grouped by model (each model in order of first appearance), so
    every model is loaded once; layout order within a model."""
    first_seen: dict[str, int] = {}
    for cell in plot_cells:
        first_seen.setdefault(cell.request.model, len(first_seen))
    return sorted(plot_cells, key=lambda c: first_seen[c.request.model])  # sorted() is stable


def plot_from_json(data: str | bytes | Mapping[str, Any]) -> PlotRequest:
    """A plot definition read back from its JSON (as stored with a grid image). Raises PlotError."""
    try:
        if isinstance(data, Mapping):
            data = json.dumps(data)  # JSON mode: image bytes are base64 there
        return PlotRequest.model_validate_json(data)
    except ValidationError as exc:
        raise PlotError(f"not a usable plot definition: {validation_message(exc)}") from None
