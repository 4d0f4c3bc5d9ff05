"""The job service: the fair queue, the worker thread that runs jobs through the backend, and what both front
ends do with jobs (submit, cancel, progress, wait estimates). Job groups queue through it too: it keeps their
table, so that a user's waiting work (jobs and groups) counts against one limit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

from core.backend import Backend, BackendEvent, ExportedFile, GeneratedImage, Progress, RunsTogether
from core.errors import JobCancelled, JobFailed, TooManyQueued
from core.requests import GenerationRequest
from core.resolved import ResolvedGeneration
from core.retouch import RetouchRequest
from gallery.files import EXPORTS_DIR as EXPORTS_DIR  # under outputs/: files retouch jobs export
from gallery.records import GalleryImage
from gallery.store import Gallery
from studio.jobs import FINISHED, Job, JobGroup, JobState
from studio.pictures import own_words, source_picture
from studio.queue import FairQueue
from studio.resolve import Resolver
from studio.roles import LOCAL_USER, Roles

log = logging.getLogger(__name__)

_FINISHED_JOBS_KEPT = 200
_FINISHED_GROUPS_KEPT = 50


class Jobs:
    """Queue, worker and job table over one backend (one device).

    `submit` resolves the request (studio.resolve) and queues the job; one worker thread runs jobs in fair order
    across users and saves their images to the gallery.
    """

    def __init__(
        self,
        backend: Backend,
        gallery: Gallery,
        resolver: Resolver,
        roles: Roles,
        *,
        queue_size: int = 32,
        max_queued_per_user: int | None = 4,
        max_batch: int | None = 1,
    ) -> None:
        if max_batch is not None and max_batch < 1:
            raise ValueError("max_batch must be at least 1 (or None: as the backend suggests)")
        self.backend = backend
        # images of several users' jobs sampled as one batch (1: each job alone; None: the backend's suggestion)
        self.max_batch = max_batch
        self.gallery = gallery
        self.resolver = resolver
        self.roles = roles
        self.max_queued_per_user = max_queued_per_user  # None: no limit per user
        self._queue = FairQueue(queue_size)
        self._admission = threading.Lock()  # a user's count and the queueing of their job happen as one step
        self._jobs: dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        self._groups: dict[str, JobGroup] = {}
        self._groups_lock = threading.Lock()
        self._running: list[Job] = []  # the jobs running now: one, or several run together as one batch
        self._seconds_per_unit: float | None = None  # moving average of seconds per (step × image)
        self._worker: threading.Thread | None = None
        self.stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="easel-worker", daemon=True)
            self._worker.start()

    def close(self) -> None:
        self.stopping.set()
        self._queue.close()
        for job in list(self._running):
            job.request_cancel()
        if self._worker is not None:
            self._worker.join(timeout=30)
            self._worker = None

    # -- submitting ------------------------------------------------------------------------------------
    def submit(
        self,
        request: GenerationRequest | RetouchRequest,
        user: str = LOCAL_USER,
        *,
        group: JobGroup | None = None,
    ) -> Job:
        """Queue a request, resolved first (RequestRefused when it names something that is not here).
        TooManyQueued when the user has as many jobs waiting as one may, QueueFull when the queue is full, with a
        user-facing message. A job group's jobs pass `group` (the group counts once)."""
        resolved_request, resolved = self.resolver.resolve(request, user)
        job = Job(request=resolved_request, resolved=resolved, user=user)
        job.total = _steps_per_batch(job.request) * request.batch_count  # a preset may set the steps
        with self._admission:
            if group is None:
                self._check_room(user)
            else:
                job.group_id = group.id
                if group.cancel_requested:  # its waiting jobs were cancelled meanwhile: queue nothing
                    job.request_cancel()
                    job.finish(JobState.CANCELLED)
                    return job
            self._queue.put(job)
        with self._jobs_lock:
            self._jobs[job.id] = job
            self._forget_old_jobs()
        return job

    def add_group(self, group: JobGroup) -> None:
        """Admit a job group: it counts as one waiting job of its user (TooManyQueued when there is no room)."""
        with self._admission:
            self._check_room(group.user)
            with self._groups_lock:
                self._groups[group.id] = group
                finished = [g for g in self._groups.values() if g.state in FINISHED]
                for old in finished[: max(0, len(finished) - _FINISHED_GROUPS_KEPT)]:
                    del self._groups[old.id]

    def waiting_count(self, user: str) -> int:
        """How many jobs of `user` have not started: waiting jobs, and each unfinished job group as one."""
        alone = [job for job in self._queue.waiting(user) if not job.group_id]
        groups = [group for group in self.unfinished_groups(user) if not group.cancel_requested]
        return len(alone) + len(groups)

    def _check_room(self, user: str) -> None:
        """TooManyQueued when `user` has `max_queued_per_user` jobs waiting already (admins are exempt)."""
        limit = self.max_queued_per_user
        if limit is None or self.roles.is_admin(user):
            return
        waiting = self.waiting_count(user)
        if waiting >= limit:
            raise TooManyQueued(
                f"You already have {waiting} jobs waiting (at most {limit} per person, so that everyone gets a "
                "turn). Wait until one starts, or cancel your queued jobs."
            )

    # -- looking up and cancelling -----------------------------------------------------------------------
    def job(self, job_id: str, user: str, *, admin: bool = False) -> Job:
        """The job with this id, if it belongs to `user` or `admin` is set (KeyError / NotYourJob otherwise)."""
        with self._jobs_lock:
            job = self._jobs[job_id]
        if not admin:
            job.check_owner(user)
        return job

    def group(self, group_id: str, user: str, *, admin: bool = False) -> JobGroup:
        """The group with this id, if it belongs to `user` or `admin` is set (KeyError / NotYourJob)."""
        with self._groups_lock:
            group = self._groups[group_id]
        if not admin:
            group.check_owner(user)
        return group

    def unfinished_groups(self, user: str) -> list[JobGroup]:
        """The groups of `user` that have not finished (waiting for a turn or running)."""
        with self._groups_lock:
            return [g for g in self._groups.values() if g.user == user and g.state not in FINISHED]

    def cancel(self, job_id: str, user: str, *, admin: bool = False) -> Job:
        """Cancel a queued or running job of `user` (any job for an admin). A running job stops within one step."""
        job = self.job(job_id, user, admin=admin)
        job.request_cancel()
        if self._queue.remove(job):
            job.finish(JobState.CANCELLED)
        return job

    def cancel_group(self, group_id: str, user: str, *, admin: bool = False) -> JobGroup:
        """Stop a group: its running job stops within a step and no further job is submitted."""
        group = self.group(group_id, user, admin=admin)
        group.request_cancel()
        job = group.current
        if job is not None:
            self.cancel(job.id, job.user, admin=True)
        return group

    def cancel_groups(self, user: str) -> int:
        """Cancel every unfinished group of `user`; returns how many."""
        mine = self.unfinished_groups(user)
        for group in mine:
            self.cancel_group(group.id, user)
        return len(mine)

    def cancel_all(self, user: str) -> int:
        """Cancel every unfinished job of `user`; returns how many."""
        self.cancel_groups(user)  # first, so that no group submits another job
        with self._jobs_lock:
            mine = [j for j in self._jobs.values() if j.user == user and j.state not in FINISHED]
        for job in mine:
            self.cancel(job.id, user)
        return len(mine)

    def cancel_queued(self, user: str) -> int:
        """Cancel what `user` has waiting: every queued job, and every job group (a group's running job finishes,
        then it submits no more). A running job of their own goes on. Returns how many were cancelled."""
        cancelled = 0
        with self._admission:
            for group in self.unfinished_groups(user):
                group.request_cancel()
                cancelled += 1
            for job in self._queue.waiting(user):
                if self._queue.remove(job):  # False when the worker took it meanwhile: it runs
                    job.request_cancel()
                    job.finish(JobState.CANCELLED)
                    cancelled += 0 if job.group_id else 1
        return cancelled

    # -- progress --------------------------------------------------------------------------------------
    def running_job(self) -> Job | None:
        """The job the worker is running now, whoever it belongs to (for admins)."""
        return self._running[0] if self._running else None

    def latest_job(self, user: str) -> Job | None:
        """The user's running job, else their oldest waiting one, else their most recent finished one."""
        with self._jobs_lock:
            mine = [j for j in self._jobs.values() if j.user == user]
        for state in (JobState.RUNNING, JobState.QUEUED):
            matching = [j for j in mine if j.state is state]
            if matching:
                return min(matching, key=lambda j: j.created)
        return max(mine, key=lambda j: j.created) if mine else None

    def wait_estimate(self, job: Job) -> float | None:
        """Seconds until a queued job starts, from the pace of recent jobs (None until one has finished)."""
        rate = self._seconds_per_unit
        if rate is None or job.state is not JobState.QUEUED:
            return None
        running = self.running_job()
        left = (running.eta_seconds() or 0.0) if running is not None else 0.0
        return left + sum(_work_units(j) * rate for j in self._queue.ahead_of(job))

    def queue_position(self, job: Job) -> int | None:
        """1-based place among waiting jobs (None once it runs or has finished)."""
        return self._queue.position(job)

    def exports_dir(self) -> Path:
        """Where retouch exports (SVG, zips) are written: a folder under outputs/, never indexed."""
        return self.gallery.outputs_dir / EXPORTS_DIR

    # -- the worker ------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self.stopping.is_set():
            job = self._queue.get(timeout=0.5)
            if job is None:
                continue
            batch = [job, *self._batchmates(job)]
            self._running = batch
            try:
                if len(batch) == 1:
                    self._run(job)
                else:
                    self._run_together(batch)
            finally:
                self._running = []

    def _batchmates(self, job: Job) -> list[Job]:
        """Waiting jobs (of any user, in fair order) that sample as `job` does, to run in one batch with it, up to
        `max_batch` images in all; none when batching is off or the backend cannot run jobs together."""
        backend = self.backend
        if self.max_batch == 1 or job.cancel_requested or not isinstance(backend, RunsTogether):
            return []
        if self.max_batch is None:  # asked once, of the real backend (it knows its device's free memory)
            self.max_batch = max(1, backend.suggested_batch())
        room = self.max_batch - job.request.image_count
        if room < 1:
            return []
        key = backend.batch_key(job.request, job.resolved)
        if key is None:
            return []
        return self._queue.take_matching(
            lambda other: (
                not other.cancel_requested and backend.batch_key(other.request, other.resolved) == key
            ),
            room,
            lambda other: other.request.image_count,
        )

    def _run(self, job: Job) -> None:
        if job.cancel_requested:
            job.finish(JobState.CANCELLED)
            return
        job.state = JobState.RUNNING
        job.started = time.monotonic()
        events = self.backend.run(job.request, job.resolved)
        exports: list[ExportedFile] = []
        try:
            self._follow(job, events, exports)
        except JobCancelled:
            pass
        except JobFailed as exc:
            # a retouch chain that stopped at a failing step keeps the files its earlier steps made
            if exports:
                job.exports.extend(self._write_exports(job, exports))
            job.finish(JobState.FAILED, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a job failing must never stop the worker
            log.exception("job %s failed", job.id)
            job.finish(JobState.FAILED, f"Generation failed: {type(exc).__name__}: {exc}")
            return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if exports and not job.cancel_requested:
            job.exports.extend(self._write_exports(job, exports))
        job.finish(JobState.CANCELLED if job.cancel_requested else JobState.DONE)
        if job.state is JobState.DONE and job.started is not None and job.finished is not None:
            self._record_pace(job.finished - job.started, _work_units(job))

    def _run_together(self, jobs: list[Job]) -> None:
        """Jobs of several users as one batch: progress for all, each image saved to its own job; cancelling one
        job drops its images and lets the others finish; the batch stops when every job is cancelled."""
        started = time.monotonic()
        for job in jobs:
            job.state, job.started = JobState.RUNNING, started
        backend = cast(RunsTogether, self.backend)  # _batchmates finds batchmates only for such a backend
        events = backend.run_together([_generation(job) for job in jobs])
        try:
            for event in events:
                live = [job for job in jobs if not job.cancel_requested]
                if not live:
                    break
                if isinstance(event, Progress):
                    for job in live:
                        job.record_progress(event.step, event.total)
                        if event.preview is not None:
                            job.preview = event.preview
                elif isinstance(event, GeneratedImage) and not jobs[event.slot].cancel_requested:
                    jobs[event.slot].images.append(self._save(jobs[event.slot], event))
        except JobCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - a batch failing must never stop the worker
            message = (
                str(exc) if isinstance(exc, JobFailed) else f"Generation failed: {type(exc).__name__}: {exc}"
            )
            if not isinstance(exc, JobFailed):
                log.exception("batch of jobs %s failed", ", ".join(job.id for job in jobs))
            for job in jobs:
                job.finish(JobState.CANCELLED if job.cancel_requested else JobState.FAILED, message)
            return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        for job in jobs:
            job.finish(JobState.CANCELLED if job.cancel_requested else JobState.DONE)
        done = [job for job in jobs if job.state is JobState.DONE]
        if done and done[0].finished is not None:
            self._record_pace(done[0].finished - started, sum(_work_units(job) for job in jobs))

    def _record_pace(self, seconds: float, units: int) -> None:
        """Fold a finished run's seconds per (step × image) into the moving average the wait estimates use."""
        pace = seconds / units
        previous = self._seconds_per_unit
        self._seconds_per_unit = pace if previous is None else 0.7 * previous + 0.3 * pace

    def _follow(self, job: Job, events: Iterator[BackendEvent], exports: list[ExportedFile]) -> None:
        """Take the backend's events into the job: progress, saved pictures, exports (until cancelled)."""
        for event in events:
            if isinstance(event, Progress):
                job.record_progress(event.step, event.total)
                if event.preview is not None:
                    job.preview = event.preview
            elif isinstance(event, GeneratedImage):
                job.images.append(self._save(job, event))
            elif isinstance(event, ExportedFile):
                exports.append(event)
            if job.cancel_requested:
                break

    def _save(self, job: Job, event: GeneratedImage) -> GalleryImage:
        # the chunk names the job (its exports folder) and keeps the author's own words (title, typed prompt)
        words = own_words(job.request, self.resolver.named_styles)
        return self.gallery.save(
            event.image,
            infotext=event.infotext,
            seed=event.seed,
            task=job.request.task,
            author=job.user,
            model=event.model,
            extra={**words, "job": job.id, **dict(event.extra)},
        )

    def _write_exports(self, job: Job, exports: Sequence[ExportedFile]) -> list[Path]:
        """Write a finished job's exports to outputs/retouch-exports/<job id>/ (atomic, like gallery files), listed
        in the gallery with the pictures the job saved (a chain that only exports saves its source picture)."""
        if not job.images and isinstance(job.request, RetouchRequest):
            job.images.append(self._save(job, source_picture(job.request)))
        return self.gallery.save_exports(
            job.id, [(e.name, e.data) for e in exports], [image.id for image in job.images]
        )

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - _FINISHED_JOBS_KEPT)]:
            del self._jobs[job.id]


def _steps_per_batch(request: GenerationRequest | RetouchRequest) -> int:
    """Sampling steps of one batch (hires fix counts both passes)."""
    return request.steps_per_batch if isinstance(request, GenerationRequest) else request.steps


def _work_units(job: Job) -> int:
    return max(1, _steps_per_batch(job.request) * job.request.image_count)


def _generation(job: Job) -> tuple[GenerationRequest, ResolvedGeneration]:
    """A job of a batch run together: always a resolved generation (only those have a batch key)."""
    if not isinstance(job.request, GenerationRequest) or job.resolved is None:
        raise TypeError(f"job {job.id} is not a resolved generation")
    return job.request, job.resolved
