"""Studio: jobs, the fair queue and the façade both front ends call."""

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
from studio.jobs import Job, JobState
from studio.studio import LOCAL_USER, Studio

__all__ = [
    "LOCAL_USER",
    "AdminOnly",
    "Job",
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
