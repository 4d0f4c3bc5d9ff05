"""Studio: the services both front ends call (jobs and the fair queue, groups, catalog, gallery and preset
changes), held by the `Studio` container."""

from core.errors import (
    AdminOnly,
    JobFailed,
    NotAllowed,
    NotYourJob,
    OptionsError,
    QueueFull,
    RequestRefused,
    StyleProblem,
    TooManyQueued,
    UnknownLora,
    UnknownModel,
    UnknownPreset,
    UnknownStyle,
    UnknownTool,
)
from studio.jobs import Job, JobGroup, JobState
from studio.studio import LOCAL_USER, Studio

__all__ = [
    "LOCAL_USER",
    "AdminOnly",
    "Job",
    "JobGroup",
    "JobFailed",
    "JobState",
    "NotAllowed",
    "NotYourJob",
    "OptionsError",
    "QueueFull",
    "RequestRefused",
    "Studio",
    "StyleProblem",
    "TooManyQueued",
    "UnknownLora",
    "UnknownModel",
    "UnknownPreset",
    "UnknownStyle",
    "UnknownTool",
]
