"""Studio: jobs, the fair queue and the façade both front ends call."""

from studio.jobs import Job, JobState, NotYourJob
from studio.queue import QueueFull, TooManyQueued
from studio.roles import NotAllowed
from studio.studio import (
    LOCAL_USER,
    Studio,
    StyleProblem,
    UnknownLora,
    UnknownModel,
    UnknownPreset,
    UnknownStyle,
)

__all__ = [
    "LOCAL_USER",
    "Job",
    "JobState",
    "NotAllowed",
    "NotYourJob",
    "QueueFull",
    "Studio",
    "StyleProblem",
    "TooManyQueued",
    "UnknownLora",
    "UnknownModel",
    "UnknownPreset",
    "UnknownStyle",
]
