"""What a finished retouch job shows in the Retouch tab: each step's state (done, failed and why, not run), the
strip of step pictures, the before/after, the downloads and an SVG preview."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from core.infotext import parse_infotext
from core.retouch import failed_step
from core.retouch_ops import EXPORT_OPS
from studio import Job, JobState, Studio
from ui.retouch_steps import TOOLS

MAX_SVG_PREVIEW_BYTES = 2_000_000


@dataclass
class Outcome:
    """A finished job, as the tab shows it."""

    pictures: list[str]  # gallery files of the pictures the job kept, in step order
    strip: list[tuple[str, str]]  # (picture, caption) per step that made a picture
    states: dict[str, str]  # tool → its state line (HTML)
    result: str | None  # the last picture (None: the chain made none)
    exports: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: bool = False


def state_html(state: str, text: str) -> str:
    return f'<div class="retouch-step-state" data-state="{state}">{html.escape(text)}</div>'


def _reason(error: str) -> str:
    """The reason of a step failure without its "Step N (…): " prefix."""
    head, _, rest = error.partition("): ")
    return rest if rest and head.startswith("Step ") else error


def _warnings(infotext: str) -> list[str]:
    if not infotext:
        return []
    value = parse_infotext(infotext).params.get("Warnings")
    return [part.strip() for part in str(value).split("; ") if part.strip()] if value else []


def _step_states(chain: list[str], job: Job, warnings: list[str]) -> dict[str, str]:
    failed = job.state is JobState.FAILED
    failed_at = failed_step(job.error) if failed else None
    states = {}
    for index, tool in enumerate(chain, start=1):
        said = [w for w in warnings if failed_step(w) == index]
        if failed and failed_at is None:  # not a step's own failure (e.g. out of memory): the whole chain's
            states[tool] = state_html("failed", f"The chain failed: {job.error or 'no reason given'}")
        elif failed_at == index:
            states[tool] = state_html("failed", f"Failed: {_reason(job.error or '')}")
        elif failed_at is not None and index > failed_at:
            states[tool] = state_html("skipped", f"Not run: step {failed_at} failed")
        elif job.state is JobState.CANCELLED:
            states[tool] = state_html("skipped", "Interrupted")
        elif said:
            states[tool] = state_html("warning", "Done, but: " + "; ".join(_reason(w) for w in said))
        else:
            states[tool] = state_html("done", "Done ✓")
    return states


def outcome(studio: Studio, job: Job, chain: list[str]) -> Outcome:
    """The job's pictures and files, and each step's state; picture steps map in order to the kept pictures
    (the request kept every step's picture)."""
    pictures = [str(studio.gallery.file_path(image.id)) for image in job.images]
    last_info = job.images[-1].infotext if job.images else ""
    warnings = _warnings(last_info)
    failed_at = failed_step(job.error) if job.state is JobState.FAILED else None
    made = [
        (index, tool)
        for index, tool in enumerate(chain, start=1)
        if tool not in EXPORT_OPS and (failed_at is None or index < failed_at)
    ]
    strip = [
        (path, f"Step {index} · {TOOLS[tool]}") for (index, tool), path in zip(made, pictures, strict=False)
    ]
    return Outcome(
        pictures=pictures,
        strip=strip,
        states=_step_states(chain, job, warnings),
        result=strip[-1][0] if strip else None,
        exports=[str(path) for path in job.exports],
        warnings=warnings,
        failed=job.state is JobState.FAILED,
    )


def svg_preview(paths: list[str]) -> str:
    """An <img> of the first SVG among `paths` (as a data URL: an image, so nothing in it runs), or ""."""
    svg = next((Path(p) for p in paths if p.endswith(".svg")), None)
    if svg is None or not svg.is_file() or svg.stat().st_size > MAX_SVG_PREVIEW_BYTES:
        return ""
    data = base64.b64encode(svg.read_bytes()).decode("ascii")
    return (
        f'<figure style="margin:0"><img alt="SVG preview" src="data:image/svg+xml;base64,{data}" '
        f'style="max-width:100%;max-height:320px;display:block"><figcaption>{html.escape(svg.name)}'
        "</figcaption></figure>"
    )
