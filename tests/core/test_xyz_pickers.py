"""X/Y/Z axes of names are picked, not typed: picked names (em dashes, commas and all) become a values text that
reads back into the same names; each axis type shows an example of its own kind; a LoRA axis adds tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.presets import PresetBook
from core.requests import Txt2ImgRequest
from core.xyz import (
    AXIS_TYPES,
    Axis,
    AxisContext,
    PlotError,
    PlotRequest,
    cells,
    join_values,
    parse_values,
    split_values,
    with_lora,
)

BOOK = PresetBook(Path(__file__).resolve().parents[2] / "presets", None)
BASE = Txt2ImgRequest(prompt="a mug", steps=2, width=64, height=64)


def test_the_axes_of_names_have_pickers() -> None:
    pickers = {key: kind.picker for key, kind in AXIS_TYPES.items() if kind.picker}
    assert pickers == {
        "sampler": "samplers",
        "schedule_type": "schedules",
        "styles": "styles",
        "preset": "presets",
        "model": "models",
        "lora": "loras",
    }
    assert all(kind.kind == "str" for key, kind in AXIS_TYPES.items() if key in pickers)


@pytest.mark.parametrize("key", [k for k in AXIS_TYPES if k != "nothing"])
def test_each_axis_type_shows_an_example_of_its_own_kind(key: str) -> None:
    kind = AXIS_TYPES[key]
    assert kind.example
    if kind.kind in ("int", "float", "size"):
        # every example given ("e.g. 4-10 (+2) or 5, 7.5") is a valid values text of that axis
        for example in kind.example.removeprefix("e.g. ").split(" or "):
            assert parse_values(example, kind.kind), example
    else:
        assert "10-30" not in kind.example and "(+" not in kind.example


NAMES = [
    *(preset.name for preset in BOOK.presets()),
    *(style.name for style in BOOK.styles()),
    "Team, with a comma",
    'A "quoted" name',
]


def test_picked_names_read_back_as_the_same_names() -> None:
    assert any("—" in name for name in NAMES)
    text = join_values(NAMES)
    assert split_values(text) == NAMES
    assert (
        join_values(["Logo — flat vector (1:1)", "Banner (16:9)"])
        == "Logo — flat vector (1:1), Banner (16:9)"
    )
    assert join_values([]) == "" and join_values([" x "]) == "x"


def test_a_preset_axis_of_picked_presets_applies_each_of_them() -> None:
    presets = {preset.name: preset for preset in BOOK.presets()}
    picked = ["Logo — flat vector (1:1)", "Product — studio white (1:1)", "Banner (16:9)"]
    plot = PlotRequest(base=BASE, x=Axis(type="preset", values=join_values(picked)))
    assert plot.axis_labels()[0] == picked  # the grid's labels are the names, em dashes and all
    made = cells(plot, AxisContext(presets=presets, family_of=lambda model: "sd1"))
    assert [cell.request.steps for cell in made] == [presets[name].steps for name in picked]
    assert [cell.request.styles for cell in made] == [presets[name].styles for name in picked]
    assert all(cell.request.image_count == 1 for cell in made)


def test_a_lora_axis_adds_one_lora_per_cell() -> None:
    plot = PlotRequest(base=BASE, x=Axis(type="lora", values="none, detail, detail:0.6"))
    prompts = [cell.request.prompt for cell in cells(plot)]
    assert prompts == ["a mug", "a mug <lora:detail:1>", "a mug <lora:detail:0.6>"]
    assert with_lora("", "x") == "<lora:x:1>"
    with pytest.raises(PlotError, match="not a LoRA"):
        with_lora("a mug", "<evil>")
    with pytest.raises(PlotError, match="not a LoRA"):
        cells(PlotRequest(base=BASE, x=Axis(type="lora", values="name:heavy")))
