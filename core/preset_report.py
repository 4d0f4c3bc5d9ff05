"""What a preset changed and which settings it set, in words for the page.

`changes(before, after)` lists what applying a preset changed ("steps 10 → 30", "CFG 7 → 6.5", "size 512×512 →
640×512"); `settings_line(values, …)` is the one line of settings a request will really be sent with ("DPM++
2M (Karras), 30 steps, CFG 6.5, 512×512, 1 image"), naming the ones a preset set and that still have its value.
The values are request field values as widgets hold them (numbers may come as floats).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.presets import SETTING_FIELDS, Preset

# The settings in the order they are listed, with the words used for them ("size" is width × height).
LABELS: dict[str, str] = {
    "model": "model",
    "sampler": "sampler",
    "schedule_type": "schedule",
    "steps": "steps",
    "cfg_scale": "CFG",
    "size": "size",
    "batch_size": "images per batch",
    "batch_count": "batches",
    "styles": "styles",
}


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def shown(key: str, values: Mapping[str, Any]) -> str:
    """A setting as the page words it ("512×768", "6.5", "Flat vector logo + Base quality", "none")."""
    if key == "size":
        if values.get("width") is None or values.get("height") is None:
            return ""
        return f"{_number(values['width'])}×{_number(values['height'])}"
    value = values.get(key)
    if key == "styles":
        names = [str(name) for name in (value or ())]
        return " + ".join(names) if names else "none"
    if value is None or value == "":
        return ""
    return _number(value) if key in ("steps", "cfg_scale", "batch_size", "batch_count") else str(value)


def set_by(preset: Preset) -> list[str]:
    """The settings (keys of LABELS) a preset sets; its styles always (they replace the chosen ones)."""
    keys = [
        key for key in SETTING_FIELDS if getattr(preset, key) is not None and (key != "model" or preset.model)
    ]
    if preset.aspect or preset.width is not None:
        keys.append("size")
    keys.append("styles")
    return [key for key in LABELS if key in keys]


def preset_values(preset: Preset, applied: Mapping[str, Any]) -> dict[str, Any]:
    """The values the preset gave the settings it sets (`applied`: the fields after applying it)."""
    out: dict[str, Any] = {}
    for key in set_by(preset):
        if key == "size":
            out["width"], out["height"] = applied.get("width"), applied.get("height")
        else:
            out[key] = applied.get(key)
    return out


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What changed from `before` to `after`, one item per setting ("steps 10 → 30"); the prompts too."""
    out = []
    for key, label in LABELS.items():
        old, new = shown(key, before), shown(key, after)
        if old != new:
            out.append(f"{label} {old or 'unset'} → {new or 'unset'}")
    for key, label in (("prompt", "prompt"), ("negative_prompt", "negative prompt")):
        if (before.get(key) or "") != (after.get(key) or ""):
            out.append(f"{label}: the preset's template added")
    return out


def applied_message(name: str, items: Sequence[str]) -> str:
    """The sentence Apply says: "Preset 'X' applied: steps 10 → 30, CFG 7 → 6.5." (or that nothing changed)."""
    if not items:
        return f"Preset {name!r} applied: the settings already had its values."
    return f"Preset {name!r} applied: {', '.join(items)}."


def settings_line(
    values: Mapping[str, Any], preset: str | None = None, by_preset: Mapping[str, Any] | None = None
) -> str:
    """The settings the request will be sent with, and those still at the value preset `preset` gave them
    (`by_preset`: as `preset_values` returns)."""
    sampler, schedule = shown("sampler", values), shown("schedule_type", values)
    parts = [f"{sampler} ({schedule})" if sampler and schedule and schedule != "Automatic" else sampler]
    parts += [f"{shown('steps', values)} steps", f"CFG {shown('cfg_scale', values)}", shown("size", values)]
    if values.get("batch_size") is not None:
        count = int(float(values["batch_size"])) * int(float(values.get("batch_count") or 1))
        parts.append(f"{count} image{'s' if count != 1 else ''}")
    if shown("model", values):
        parts.append(f"model {shown('model', values)}")
    line = "Settings: " + ", ".join(part for part in parts if part.strip())
    if preset and by_preset:
        kept = [
            LABELS[key]
            for key in LABELS
            if key != "styles"
            and (key in by_preset or (key == "size" and "width" in by_preset))
            and shown(key, values) == shown(key, by_preset)
        ]
        if kept:
            line += f" — set by preset {preset!r}: {', '.join(kept)}"
    return line
