"""The seam between the Studio (queue, users, gallery) and whatever runs the models.

A Backend turns one validated request into a stream of events. Today's backend runs the pipeline
manager in this process (pipelines/backend.py); a remote backend (GPU replicas) would yield the same
events, so nothing above this seam changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from core.requests import GenerationRequest


@dataclass(frozen=True)
class ModelInfo:
    """A model as the front ends see it."""

    name: str
    label: str
    family: str | None
    inpaint: bool = False
    refused: str | None = None
    demo: bool = False
    inpaint_sibling: str | None = None  # name of this model's inpainting version, when there is one


@dataclass(frozen=True)
class Progress:
    """Sampling progress of the running job. `step` counts finished steps across the whole job."""

    step: int
    total: int
    preview: Image.Image | None = None


@dataclass(frozen=True)
class GeneratedImage:
    """One finished image with everything the gallery needs to save it."""

    image: Image.Image
    seed: int
    infotext: str
    model: str
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendStatus:
    """What the header line shows: where the models run and what is loaded."""

    device: str
    loaded_models: tuple[str, ...] = ()
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None


BackendEvent = Progress | GeneratedImage


class Backend(Protocol):
    def run(self, request: GenerationRequest) -> Iterator[BackendEvent]:
        """Run a job. Closing the iterator early cancels it within one sampling step."""
        ...

    def models(self, refresh: bool = False) -> list[ModelInfo]:
        """Models this backend can run, including refused ones (with the reason)."""
        ...

    def default_model(self) -> str | None:
        """The model used when a request names none."""
        ...

    def status(self) -> BackendStatus: ...


class JobCancelled(Exception):
    """Raised inside a backend when the job's iterator was closed."""


class JobFailed(Exception):
    """A job could not run; the message is shown to the user as it is."""
