"""A scripted Backend for tests of the queue and cancel logic: each sampling step waits for the test.

`GatedBackend` implements the `core.backend.Backend` protocol without any model. A job's `run` yields one
`Progress` event per `release()` (or freely once `open()` was called), and after each batch's steps one
plain `GeneratedImage` per picture of the batch. Closing the iterator early is a cancel, and is recorded. So a test decides exactly
when a job starts, how far it gets and when it ends — no long real job and no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from PIL import Image

from core.backend import (
    BackendEvent,
    BackendStatus,
    EmbeddingInfo,
    GeneratedImage,
    JobFailed,
    LoraInfo,
    ModelInfo,
    Progress,
    RetouchTools,
    VaeInfo,
)
from core.requests import GenerationRequest
from core.resolved import ResolvedGeneration
from core.retouch import RetouchRequest

WAIT = 30.0  # seconds a gated step or a test's wait gives up after, so that a broken test fails, never hangs


@dataclass
class Run:
    """One call of `GatedBackend.run`, as the backend saw it."""

    request: GenerationRequest | RetouchRequest
    resolved: ResolvedGeneration | None = None  # what the Studio worked out at submit (generations)
    steps_done: int = 0
    total: int = 0
    closed_early: bool = False  # the caller closed the iterator before the last event: a cancel
    finished: bool = False  # every event was yielded
    ended: threading.Event = field(default_factory=threading.Event, repr=False)


class GatedBackend:
    """A Backend whose jobs advance one sampling step per `release()`; records every run."""

    def __init__(self, models: Sequence[str] = ("tiny-sd1", "tiny-sd1-other")) -> None:
        self._models = [ModelInfo(name=name, label=name, family="sd1") for name in models]
        self._steps = threading.Semaphore(0)
        self._open = threading.Event()
        self._changed = threading.Condition()
        self.runs: list[Run] = []

    # -- what a test drives ---------------------------------------------------------------------
    def release(self, steps: int = 1) -> None:
        """Let `steps` more sampling steps happen (across whichever jobs run)."""
        self._steps.release(steps)

    def open(self) -> None:
        """Let every step of every job, now and later, run without waiting."""
        self._open.set()
        self._steps.release(1)  # wake a step that is waiting now

    def wait_for_runs(self, count: int, timeout: float = WAIT) -> list[Run]:
        """Block until `count` runs have started; the runs so far."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.runs) >= count, timeout):
                raise AssertionError(f"{count} runs expected, {len(self.runs)} started")
            return list(self.runs)

    def wait_for_step(self, run: Run, step: int, timeout: float = WAIT) -> None:
        """Block until `run` has yielded its `step`-th Progress event."""
        with self._changed:
            if not self._changed.wait_for(lambda: run.steps_done >= step or run.ended.is_set(), timeout):
                raise AssertionError(f"run did not reach step {step} (at {run.steps_done})")

    # -- the Backend protocol -------------------------------------------------------------------
    def run(
        self, request: GenerationRequest | RetouchRequest, resolved: ResolvedGeneration | None = None
    ) -> Iterator[BackendEvent]:
        run = Run(request, resolved)
        return self._events(run)

    def _events(self, run: Run) -> Iterator[BackendEvent]:
        # as the local backend does: batch after batch, each one's steps, then its pictures
        request = run.request
        batches, batch_size = getattr(request, "batch_count", 1), getattr(request, "batch_size", 1)
        steps = getattr(request, "steps", 1)
        run.total = steps * batches
        with self._recorded(run):
            for batch in range(batches):
                for step in range(batch * steps + 1, (batch + 1) * steps + 1):
                    yield self._step(run, step)
                for i in range(batch * batch_size, (batch + 1) * batch_size):
                    seed = run.resolved.seeds[i] if run.resolved is not None else request.seed + i
                    yield self._picture(request, seed, shade=i * 40)
            run.finished = True

    @contextmanager
    def _recorded(self, run: Run) -> Iterator[None]:
        """Around a run's events: it is listed in `runs`, a close before its end is recorded, its end is told."""
        with self._changed:
            self.runs.append(run)
            self._changed.notify_all()
        try:
            yield
        except GeneratorExit:
            run.closed_early = True
            raise
        finally:
            with self._changed:
                run.ended.set()
                self._changed.notify_all()

    def _step(self, run: Run, step: int) -> Progress:
        """One sampling step, once the test lets it happen."""
        self._wait_for_gate()
        with self._changed:
            run.steps_done = step
            self._changed.notify_all()
        return Progress(step=step, total=run.total)

    def _picture(
        self, request: GenerationRequest | RetouchRequest, seed: int, *, shade: int, slot: int = 0
    ) -> GeneratedImage:
        width, height = getattr(request, "width", 64), getattr(request, "height", 64)
        model = getattr(request, "model", "") or self._models[0].name
        steps = getattr(request, "steps", 1)
        return GeneratedImage(
            image=Image.new("RGB", (width, height), (shade % 256, 0, 0)),
            seed=seed,
            infotext=f"{getattr(request, 'prompt', '')}\nSteps: {steps}, Seed: {seed}, Model: {model}",
            model=model,
            slot=slot,
        )

    def _wait_for_gate(self) -> None:
        if self._open.is_set():
            return
        if not self._steps.acquire(timeout=WAIT):
            raise JobFailed("the test never released this step")
        if self._open.is_set():
            self._steps.release(1)  # pass the wake-up on to any other waiting step

    def models(self, refresh: bool = False) -> list[ModelInfo]:
        return list(self._models)

    def loras(self, refresh: bool = False) -> list[LoraInfo]:
        return []

    def check_loras(self, names: Sequence[str]) -> None:
        if names:
            raise ValueError(f"Unknown LoRA {names[0]!r}. Available: none")

    def embeddings(self, refresh: bool = False) -> list[EmbeddingInfo]:
        return []

    def vaes(self, refresh: bool = False) -> list[VaeInfo]:
        return []

    def default_model(self) -> str | None:
        return self._models[0].name if self._models else None

    def status(self) -> BackendStatus:
        return BackendStatus(device="cpu (gated test backend)")

    def retouch_tools(self, refresh: bool = False) -> RetouchTools:
        return RetouchTools()


class BatchingGatedBackend(GatedBackend):
    """A GatedBackend that also runs several users' jobs as one batch (core.backend.RunsTogether): txt2img jobs
    of one batch each with the same model, size and steps share a batch; `batches` records each batch's jobs."""

    def __init__(self, models: Sequence[str] = ("tiny-sd1", "tiny-sd1-other")) -> None:
        super().__init__(models)
        self.batches: list[list[GenerationRequest]] = []

    def batch_key(
        self, request: GenerationRequest | RetouchRequest, resolved: ResolvedGeneration | None
    ) -> object:
        if (
            not isinstance(request, GenerationRequest)
            or request.task != "txt2img"
            or request.batch_count != 1
        ):
            return None
        return (request.model, request.width, request.height, request.steps)

    def suggested_batch(self) -> int:
        return 3

    def run_together(
        self, items: Sequence[tuple[GenerationRequest, ResolvedGeneration]]
    ) -> Iterator[BackendEvent]:
        self.batches.append([request for request, _ in items])
        return self._together(list(items))

    def _together(self, items: list[tuple[GenerationRequest, ResolvedGeneration]]) -> Iterator[BackendEvent]:
        lead = items[0][0]
        run = Run(lead, items[0][1], total=lead.steps)
        with self._recorded(run):
            for step in range(1, lead.steps + 1):
                yield self._step(run, step)
            for slot, (request, resolved) in enumerate(items):
                for seed in resolved.seeds:
                    yield self._picture(request, seed, shade=slot * 60, slot=slot)
            run.finished = True
