"""What Apply says it changed, and the one settings line the final prompt box shows."""

from __future__ import annotations

from pathlib import Path

from core.preset_report import applied_message, changes, preset_values, set_by, settings_line, shown
from core.presets import Preset, PresetBook, apply_preset

BOOK = PresetBook(Path(__file__).resolve().parents[2] / "presets", None)
CURRENT = {
    "model": "tiny-sd1",
    "prompt": "minimal logo for a coffee brand",
    "negative_prompt": "",
    "sampler": "Euler a",
    "schedule_type": "Automatic",
    "steps": 10.0,  # sliders may hand numbers over as floats
    "cfg_scale": 7,
    "width": 512,
    "height": 768,
    "batch_size": 1,
    "batch_count": 1,
    "styles": [],
}


def test_apply_says_every_setting_it_changed_and_nothing_else() -> None:
    preset = BOOK.get("Logo — flat vector (1:1)")
    after = apply_preset(preset, CURRENT, family="sd1")
    said = changes(CURRENT, after)
    assert said == [
        "sampler Euler a → DPM++ 2M",
        "schedule Automatic → Karras",
        "steps 10 → 30",
        "size 512×768 → 512×512",
        "styles none → Flat vector logo + Base quality",
    ]  # CFG was 7 already, the model is not the preset's
    message = applied_message(preset.name, said)
    assert message.startswith(f"Preset {preset.name!r} applied: sampler Euler a → DPM++ 2M, ")
    assert "steps 10 → 30" in message and "CFG" not in message
    again = apply_preset(preset, after, family="sd1")
    assert changes(after, again) == [] and "already had its values" in applied_message(preset.name, [])


def test_a_prompt_template_is_reported_as_added() -> None:
    templated = Preset(name="Wide", prompt="wide shot of {prompt}", cfg_scale=6.5)
    after = apply_preset(templated, CURRENT, family="sd1")
    assert changes(CURRENT, after) == ["CFG 7 → 6.5", "prompt: the preset's template added"]


def test_the_settings_line_names_what_the_preset_set_while_it_keeps_the_presets_value() -> None:
    preset = BOOK.get("Product — studio white (1:1)")
    after = apply_preset(preset, CURRENT, family="sd1")
    by_preset = preset_values(preset, after)
    assert set_by(preset) == ["sampler", "schedule_type", "steps", "cfg_scale", "size", "styles"]
    line = settings_line(after, preset.name, by_preset)
    assert line == (
        f"Settings: DPM++ 2M (Karras), {preset.steps} steps, CFG 6.5, 512×512, 1 image, model tiny-sd1"
        f" — set by preset {preset.name!r}: sampler, schedule, steps, CFG, size"
    )
    # a setting changed by hand is the one that is sent, and no longer the preset's
    by_hand = {**after, "steps": 12, "width": 640}
    line = settings_line(by_hand, preset.name, by_preset)
    assert "12 steps" in line and "640×512" in line
    assert line.endswith(f"set by preset {preset.name!r}: sampler, schedule, CFG")
    # without a preset: just the settings; an automatic schedule is the sampler's own
    plain = settings_line({**CURRENT, "batch_size": 2, "batch_count": 3})
    assert plain == "Settings: Euler a, 10 steps, CFG 7, 512×768, 6 images, model tiny-sd1"


def test_values_are_worded_as_the_page_shows_them() -> None:
    assert shown("size", {"width": 512.0, "height": 768}) == "512×768"
    assert shown("cfg_scale", {"cfg_scale": 6.50}) == "6.5" and shown("steps", {"steps": 30.0}) == "30"
    assert shown("styles", {"styles": []}) == "none" and shown("model", {"model": ""}) == ""
