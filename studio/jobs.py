"""Jobs: one submitted request, its state, progress and result, as both front ends see it.

`Work` is what a job and a job group (studio.groups) share: an owner, a state, a cancel flag, a finish
that wakes the waiters. `Tracked` is what the front ends read from either while they wait.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from PIL import Image

from core.errors import NotYourJob
from core.requests import GenerationRequest
from core.resolved import ResolvedGeneration
from core.retouch import RetouchRequest
from core.seeds import image_seeds
from core.xyz import PlotRequest
from gallery.records import GalleryImage


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Tracked(Protocol):
    """What a front end reads from a job or a job group while it waits for it."""

    id: str
    user: str
    state: JobState
    error: str | None

    @property
    def step(self) -> int: ...

    @property
    def total(self) -> int: ...

    @property
    def preview(self) -> Image.Image | None: ...

    @property
    def images(self) -> list[GalleryImage]: ...

    @property
    def cancel_requested(self) -> bool: ...

    def eta_seconds(self) -> float | None: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def check_owner(self, user: str) -> None: ...


@dataclass(kw_only=True)
class Work:
    """Something of one user's that runs and finishes once: its state, cancel flag and the finish waiters see."""

    user: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: float = field(default_factory=time.monotonic)
    state: JobState = JobState.QUEUED
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished_ok(self) -> bool:
        return self.state is JobState.DONE

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        """Ask it to stop: a running job stops within one step, a group submits no further job."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it has finished (or timeout); True when finished."""
        return self._done.wait(timeout)

    def check_owner(self, user: str) -> None:
        if user != self.user:
            raise NotYourJob("this job belongs to another user")

    def finish(self, state: JobState, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self.finished = time.monotonic()
        self._done.set()


@dataclass(kw_only=True)
class Job(Work):
    """A request on its way through the queue. Fields are updated by the worker thread only.

    `request` is fully resolved (studio.resolve) and, for a generation, `resolved` is what it comes to (prompt
    without LoRA tags, the tags, the concrete schedule, every image's seed): the backend only executes them."""

    request: GenerationRequest | RetouchRequest
    resolved: ResolvedGeneration | None = None
    step: int = 0
    total: int = 0
    preview: Image.Image | None = None
    images: list[GalleryImage] = field(default_factory=list)
    exports: list[Path] = field(default_factory=list)  # retouch files that are not gallery pictures
    group_id: str = ""  # the job group (plot, variations) it belongs to, if any
    _pace_from: tuple[float, int] | None = field(default=None, repr=False)  # (time, step) of the first step

    @property
    def seeds(self) -> list[int]:
        if self.resolved is not None:
            return list(self.resolved.seeds)
        return image_seeds(self.request.seed, self.request.image_count)

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


@dataclass(kw_only=True)
class JobGroup(Work):
    """Consecutive jobs of one user (an X/Y/Z plot, variations, a prompts file); reads like a Job."""

    requests: list[GenerationRequest]  # in the order they run
    kind: str  # "plot", "variations" or "prompts"
    plot: PlotRequest | None = None
    id: str = field(default_factory=lambda: "group-" + uuid.uuid4().hex)
    jobs: list[Job] = field(default_factory=list)
    grid: GalleryImage | None = None  # a plot's grid image, once saved
    cell_images: list[GalleryImage] = field(default_factory=list)  # a plot's cells in layout order

    @property
    def total(self) -> int:
        return sum(r.steps_per_batch * r.batch_count for r in self.requests)

    @property
    def step(self) -> int:
        return sum(j.total if j.state in FINISHED else j.step for j in self.jobs)

    @property
    def current(self) -> Job | None:
        """The job running or waiting now (None before the first and after the last)."""
        job = self.jobs[-1] if self.jobs else None
        return job if job is not None and job.state not in FINISHED else None

    @property
    def preview(self) -> Image.Image | None:
        job = self.current
        return job.preview if job is not None else None

    @property
    def images(self) -> list[GalleryImage]:
        """Every saved image of the group's jobs, in the order they ran."""
        return [image for job in self.jobs for image in job.images]

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace of the jobs so far (None until a step has been timed)."""
        if self.state is not JobState.RUNNING or self.started is None or self.step <= 0:
            return None
        return (time.monotonic() - self.started) / self.step * (self.total - self.step)
