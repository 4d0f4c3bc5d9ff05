"""Jobs: one submitted request, its state, progress and result, as both front ends see it."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from PIL import Image

from core.errors import NotYourJob
from core.requests import GenerationRequest
from core.retouch import RetouchRequest
from gallery.store import GalleryImage


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass
class Job:
    """A request on its way through the queue. Fields are updated by the worker thread only."""

    request: GenerationRequest | RetouchRequest
    user: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: float = field(default_factory=time.monotonic)
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    preview: Image.Image | None = None
    images: list[GalleryImage] = field(default_factory=list)
    exports: list[Path] = field(default_factory=list)  # retouch files that are not gallery pictures
    group_id: str = ""  # the job group (plot, variations) it belongs to, if any
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    _pace_from: tuple[float, int] | None = field(default=None, repr=False)  # (time, step) of the first step
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def seeds(self) -> list[int]:
        return [self.request.seed + i for i in range(self.request.image_count)]

    @property
    def finished_ok(self) -> bool:
        return self.state is JobState.DONE

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def record_progress(self, step: int, total: int) -> None:
        """Called by the worker after each sampling step."""
        self.step, self.total = step, total
        if self._pace_from is None:
            self._pace_from = (time.monotonic(), step)

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace since the first step (model loading excluded); None until known."""
        if self.state is not JobState.RUNNING or self._pace_from is None:
            return None
        since, first_step = self._pace_from
        if self.step <= first_step:
            return None
        per_step = (time.monotonic() - since) / (self.step - first_step)
        return per_step * (self.total - self.step)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (or timeout); True when finished."""
        return self._done.wait(timeout)

    def check_owner(self, user: str) -> None:
        if user != self.user:
            raise NotYourJob("this job belongs to another user")

    def _finish(self, state: JobState, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self.finished = time.monotonic()
        self._done.set()
