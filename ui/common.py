"""Helpers shared by the tabs: the user behind a request, job progress text, error translation."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr
from pydantic import BaseModel, ValidationError

from core.requests import validation_message
from studio import LOCAL_USER, Job, JobState, NotAllowed, QueueFull, RequestRefused, Studio

POLL_SECONDS = 0.2
# the errors a user can act on: shown as a message that says why (NotAllowed has its own, in `refusals`)
REFUSED = (RequestRefused, QueueFull)
FAILED_REASON_CHARS = 160


def user_of(request: gr.Request | None) -> str:
    """The logged-in user, or "local" when the app runs without auth."""
    name = getattr(request, "username", None) if request is not None else None
    return name or LOCAL_USER


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Show the Studio's refusals (NotAllowed: not yours to change) as an error toast that says why."""
    try:
        yield
    except NotAllowed as exc:
        raise gr.Error(str(exc), title="Not allowed") from None


def build_request(model_cls: Callable[..., BaseModel], values: Mapping[str, Any]) -> BaseModel:
    """A validated request model, or a gr.Error saying what to change."""
    try:
        return model_cls(**values)
    except ValidationError as exc:
        raise gr.Error(validation_message(exc), title="Check the settings") from None


def submit(studio: Studio, request: BaseModel, user: str) -> Job:
    try:
        return studio.jobs.submit(request, user)  # type: ignore[arg-type]
    except REFUSED as exc:
        raise gr.Error(str(exc)) from None


def progress_html(job: Job, position: int | None, wait: float | None = None) -> str:
    """One status line: queue place (and the expected wait), or step count with a bar and ETA, or the outcome."""
    if job.state is JobState.QUEUED:
        where = f"#{position}" if position else "next"
        expected = f" · starts in about {wait:.0f}s" if wait is not None else ""
        return f'<div class="easel-status" data-state="queued">Waiting in the queue: {where}{expected}</div>'
    if job.state is JobState.RUNNING:
        if not job.step:
            return '<div class="easel-status" data-state="loading">Loading the model…</div>'
        pct = 100 * job.step / max(job.total, 1)
        eta = job.eta_seconds()
        eta_text = f" · about {eta:.0f}s left" if eta is not None else ""
        return (
            f'<div class="easel-status" data-state="running">Step {job.step}/{job.total}{eta_text}'
            f'<div class="easel-bar"><div style="width:{pct:.0f}%"></div></div></div>'
        )
    if job.state is JobState.CANCELLED:
        kept = f" ({len(job.images)} finished image(s) kept)" if job.images else ""
        return f'<div class="easel-status" data-state="cancelled">Interrupted{kept}</div>'
    if job.state is JobState.FAILED:
        return failed_html(job.error or "")
    took = (job.finished or 0) - (job.started or 0)
    # a chain with no diffusion operation (e.g. remove background only) used no seed: say none
    seeded = getattr(getattr(job, "request", None), "needs_model", True)
    seeds = ", ".join(str(i.seed) for i in job.images)
    seed_text = f" · seed {html.escape(seeds)}" if seeded and seeds else ""
    return (
        f'<div class="easel-status" data-state="done">Done in {took:.1f}s · '
        f"{len(job.images)} image(s){seed_text}</div>"
    )


def failed_html(reason: str) -> str:
    """The status line of a run that failed, with its reason cut to one short line."""
    first = (reason or "").strip().splitlines()[0] if (reason or "").strip() else ""
    short = first if len(first) <= FAILED_REASON_CHARS else first[: FAILED_REASON_CHARS - 1] + "…"
    text = f"Failed: {short}" if short else "Failed"
    return f'<div class="easel-status" data-state="failed">{html.escape(text)}</div>'


def follow(job: Job) -> Iterator[Job]:
    """Yield the job every POLL_SECONDS until it has finished (then once more)."""
    while not job.wait(POLL_SECONDS):
        yield job
    yield job
