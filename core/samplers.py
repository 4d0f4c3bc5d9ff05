"""A1111 sampler and schedule-type names (data only; the diffusers mapping lives in pipelines/schedulers.py)."""

from __future__ import annotations

# Sampler names as AUTOMATIC1111 shows them, in its order.
SAMPLERS: tuple[str, ...] = (
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM++ 2M SDE",
    "DPM++ 3M SDE",
    "DPM++ 2S a",
    "Euler a",
    "Euler",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DDIM",
    "PLMS",
    "UniPC",
    "DEIS",
    "LCM",
)

# Schedule types ("Schedule type" in infotext). "Automatic" = the sampler's own default.
SCHEDULE_TYPES: tuple[str, ...] = ("Automatic", "Uniform", "Karras", "Exponential", "SGM Uniform")

DEFAULT_SAMPLER = "DPM++ 2M"
DEFAULT_SCHEDULE = "Karras"


def split_legacy_name(name: str) -> tuple[str, str | None]:
    """Split an old-style combined A1111 name ("DPM++ 2M Karras") into (sampler, schedule type).

    Returns (name, None) when the name carries no schedule suffix. Unknown names are returned
    unchanged so that validation can reject them with the full list.
    """
    for schedule in ("Karras", "Exponential"):
        suffix = " " + schedule
        if name.endswith(suffix) and name[: -len(suffix)] in SAMPLERS:
            return name[: -len(suffix)], schedule
    return name, None
