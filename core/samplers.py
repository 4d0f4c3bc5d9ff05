"""A1111 sampler and schedule-type names (data only; the diffusers mapping lives in pipelines/schedulers.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

# Sampler names as AUTOMATIC1111 shows them, in its order.
SAMPLERS: tuple[str, ...] = (
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM++ 2M SDE",
    "DPM++ 3M SDE",
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
DEFAULT_SCHEDULE = "Automatic"

_ALL = ("Uniform", "Karras", "Exponential", "SGM Uniform")
_TIMESTEP_ONLY = ("Uniform", "SGM Uniform")

# sampler -> (what "Automatic" means for it, the schedule types it supports). Defaults follow A1111.
SAMPLER_SCHEDULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "DPM++ 2M": ("Karras", _ALL),
    "DPM++ SDE": ("Karras", _ALL),
    "DPM++ 2M SDE": ("Exponential", _ALL),
    "DPM++ 3M SDE": ("Exponential", _ALL),
    "Euler a": ("Uniform", _TIMESTEP_ONLY),
    "Euler": ("Uniform", _ALL),
    "LMS": ("Uniform", _ALL),
    "Heun": ("Uniform", _ALL),
    "DPM2": ("Karras", _ALL),
    "DPM2 a": ("Karras", _ALL),
    "DDIM": ("Uniform", _TIMESTEP_ONLY),
    "PLMS": ("Uniform", _TIMESTEP_ONLY),
    "UniPC": ("Uniform", _ALL),
    "DEIS": ("Uniform", _ALL),
    "LCM": ("Uniform", _TIMESTEP_ONLY),
}


def resolve_schedule(sampler: str, schedule_type: str) -> str:
    """The concrete schedule type a request runs with ("Automatic" → the sampler's default).

    Raises ValueError when the sampler cannot run that schedule.
    """
    default, supported = SAMPLER_SCHEDULES[sampler]
    if schedule_type == "Automatic":
        return default
    if schedule_type not in supported:
        raise ValueError(
            f"sampler {sampler!r} does not support the {schedule_type!r} schedule; "
            f"use Automatic or one of: {', '.join(supported)}"
        )
    return schedule_type


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


def check_sampler(value: str) -> str:
    """`value` when it is an A1111 sampler name we run; ValueError listing the names otherwise."""
    if value not in SAMPLERS:
        raise ValueError(f"unknown sampler {value!r}; choose one of: {', '.join(SAMPLERS)}")
    return value


def check_schedule_type(value: str) -> str:
    """`value` when it is an A1111 schedule type; ValueError listing the types otherwise."""
    if value not in SCHEDULE_TYPES:
        raise ValueError(f"unknown schedule type {value!r}; choose one of: {', '.join(SCHEDULE_TYPES)}")
    return value


# Request fields: a sampler name and a schedule type, each checked against the lists above.
SamplerName = Annotated[str, AfterValidator(check_sampler), Field(description="A1111 sampler name")]
ScheduleType = Annotated[str, AfterValidator(check_schedule_type), Field(description="A1111 schedule type")]
