"""Job groups: several requests run as consecutive jobs of one user — an X/Y/Z plot (then its grid image)
or a set of variations.

A group feeds its jobs to the Studio's queue one at a time, so it never fills the queue, other users'
jobs still take their turns between its jobs, and cancelling the group stops the running job and
submits no more. Each job's images are saved by the normal path; the group's progress adds up its jobs'.
`StudioGroups` is the part of the Studio that starts and tracks groups.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from core.grid import draw_grid
from core.infotext import format_infotext, parse_infotext
from core.requests import (
    MAX_SEED,
    GenerationRequest,
    Img2ImgRequest,
    InpaintRequest,
    Txt2ImgRequest,
)
from core.xyz import AxisContext, Cell, PlotError, PlotRequest, cells, plot_from_json, run_order
from gallery.store import GalleryImage
from studio.jobs import FINISHED, Job, JobState
from studio.queue import QueueFull

if TYPE_CHECKING:
    from studio.studio import Studio

log = logging.getLogger(__name__)

GRID_TASK = "grid"  # the gallery task of plot grid images
PLOT_KEY = "xyz_plot"  # the grid's JSON chunk field holding the whole plot definition
CELLS_KEY = "xyz_cells"  # ... and the gallery ids of its cells, in layout order
MAX_VARIATIONS = 16
_FINISHED_GROUPS_KEPT = 50
_POLL_SECONDS = 0.25
_REQUEST_CLASSES: dict[str, type[GenerationRequest]] = {
    "txt2img": Txt2ImgRequest,
    "img2img": Img2ImgRequest,
    "inpaint": InpaintRequest,
}


@dataclass
class JobGroup:
    """Consecutive jobs of one user. Reads like a Job (state, step/total, preview, images, error, wait)."""

    requests: list[GenerationRequest]  # in the order they run
    user: str
    kind: str  # "plot" or "variations"
    plot: PlotRequest | None = None
    id: str = field(default_factory=lambda: "group-" + uuid.uuid4().hex)
    created: float = field(default_factory=time.monotonic)
    state: JobState = JobState.QUEUED
    jobs: list[Job] = field(default_factory=list)
    error: str | None = None
    grid: GalleryImage | None = None  # a plot's grid image, once saved
    cell_images: list[GalleryImage] = field(default_factory=list)  # a plot's cells in layout order
    started: float | None = None
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def total(self) -> int:
        return sum(getattr(r, "steps_per_batch", r.steps) * r.batch_count for r in self.requests)

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

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace of the jobs so far (None until a step has been timed)."""
        if self.state is not JobState.RUNNING or self.started is None or self.step <= 0:
            return None
        return (time.monotonic() - self.started) / self.step * (self.total - self.step)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def check_owner(self, user: str) -> None:
        from studio.jobs import NotYourJob

        if user != self.user:
            raise NotYourJob("this job belongs to another user")

    def _finish(self, state: JobState, error: str | None = None) -> None:
        self.state, self.error, self.finished = state, error, time.monotonic()
        self._done.set()


class StudioGroups:
    """The Studio's job groups: plots, variations, re-runs. Mixed into `Studio`."""

    def _group_table(self) -> tuple[threading.Lock, dict[str, JobGroup]]:
        table = self.__dict__.get("_groups")
        if table is None:
            table = self.__dict__.setdefault("_groups", (threading.Lock(), {}))
        return table

    # -- groups ------------------------------------------------------------------------------------
    def submit_group(
        self: Studio,  # type: ignore[misc]
        requests: Sequence[GenerationRequest],
        user: str,
        *,
        kind: str,
        plot: PlotRequest | None = None,
        on_done: Callable[[JobGroup], None] | None = None,
    ) -> JobGroup:
        """Run `requests` as consecutive jobs of `user`. Every model (and style) is checked first, so a bad
        one fails here, before anything runs. `on_done` runs after the last job (for a plot: the grid)."""
        if not requests:
            raise ValueError("a job group needs at least one request")
        for request in requests:
            self._model_for(request.model, user)
            if request.styles and hasattr(self, "_styled"):
                self._styled(request)
        group = JobGroup(requests=list(requests), user=user, kind=kind, plot=plot)
        lock, groups = self._group_table()
        with self._admission:  # a group counts as one waiting job of its user
            self._check_room(user)
            with lock:
                groups[group.id] = group
                finished = [g for g in groups.values() if g.state in FINISHED]
                for old in finished[: max(0, len(finished) - _FINISHED_GROUPS_KEPT)]:
                    del groups[old.id]
        threading.Thread(
            target=self._drive_group, args=(group, on_done), name=f"easel-{kind}", daemon=True
        ).start()
        return group

    def group(self, group_id: str, user: str, *, admin: bool = False) -> JobGroup:
        """The group with this id, if it belongs to `user` or `admin` is set (KeyError / NotYourJob)."""
        lock, groups = self._group_table()
        with lock:
            group = groups[group_id]
        if not admin:
            group.check_owner(user)
        return group

    def cancel_group(self: Studio, group_id: str, user: str, *, admin: bool = False) -> JobGroup:  # type: ignore[misc]
        """Stop a group: its running job stops within a step and no further job is submitted."""
        group = self.group(group_id, user, admin=admin)
        group._cancel.set()
        job = group.current
        if job is not None:
            self.cancel(job.id, job.user, admin=True)
        return group

    def unfinished_groups(self, user: str) -> list[JobGroup]:
        """The groups of `user` that have not finished (waiting for a turn or running)."""
        lock, groups = self._group_table()
        with lock:
            return [g for g in groups.values() if g.user == user and g.state not in FINISHED]

    def cancel_groups(self, user: str) -> int:
        """Cancel every unfinished group of `user`; returns how many."""
        mine = self.unfinished_groups(user)
        for group in mine:
            self.cancel_group(group.id, user)
        return len(mine)

    def _drive_group(self: Studio, group: JobGroup, on_done: Callable[[JobGroup], None] | None) -> None:  # type: ignore[misc]
        group.started = time.monotonic()
        try:
            for request in group.requests:
                job = self._submit_when_room(group, request)
                if job is None:
                    break
                group.jobs.append(job)
                if group.state is JobState.QUEUED:
                    group.state = JobState.RUNNING
                while not job.wait(_POLL_SECONDS):
                    if self._stopping.is_set():
                        group._cancel.set()
                        break
                if job.state is JobState.FAILED:
                    group._finish(JobState.FAILED, job.error)
                    return
                if job.state is JobState.CANCELLED or group.cancel_requested:
                    break
            if group.cancel_requested:
                group._finish(JobState.CANCELLED)
                return
            if on_done is not None:
                on_done(group)
        except Exception as exc:  # noqa: BLE001 - a group failing must leave a message, not a dead thread
            log.exception("job group %s failed", group.id)
            group._finish(JobState.FAILED, f"{type(exc).__name__}: {exc}")
            return
        group._finish(JobState.DONE)

    def _submit_when_room(self: Studio, group: JobGroup, request: GenerationRequest) -> Job | None:  # type: ignore[misc]
        """Submit the group's next job, waiting while the queue is full; None once cancelled."""
        while not group.cancel_requested and not self._stopping.is_set():
            try:
                return self.submit(request, group.user, group=group)
            except QueueFull:
                time.sleep(_POLL_SECONDS)
        group._cancel.set()
        return None

    # -- X/Y/Z plots -------------------------------------------------------------------------------
    def plot_cells(self: Studio, plot: PlotRequest) -> list[Cell]:  # type: ignore[misc]
        """The plot's cells (layout order), with presets and model families known to this Studio."""
        presets = {p.name: p for p in self.presets()}
        families = {m.name: m.family for m in self.models()}
        default = self.default_model() or ""
        context = AxisContext(presets=presets, family_of=lambda name: families.get(name or default))
        return cells(plot, context)

    def run_plot(self: Studio, plot: PlotRequest, user: str) -> JobGroup:  # type: ignore[misc]
        """Start a plot: every cell as its own job (grouped by model, so each model loads once), then the
        labelled grid saved to the gallery with the whole plot definition. Raises PlotError, UnknownModel."""
        plot = fixed_seeds(plot)
        plot_cells = self.plot_cells(plot)
        ordered = run_order(plot_cells)
        layout_of_run = [plot_cells.index(cell) for cell in ordered]

        def save_grid(group: JobGroup) -> None:
            by_layout: list[GalleryImage | None] = [None] * len(plot_cells)
            for job, index in zip(group.jobs, layout_of_run, strict=True):
                by_layout[index] = job.images[0] if job.images else None
            if any(image is None for image in by_layout):
                raise PlotError("a cell produced no image; the grid was not made")
            group.cell_images = [image for image in by_layout if image is not None]
            group.grid = self._save_grid(plot, group.cell_images, user)

        return self.submit_group(
            [c.request for c in ordered], user, kind="plot", plot=plot, on_done=save_grid
        )

    def _save_grid(self: Studio, plot: PlotRequest, images: list[GalleryImage], user: str) -> GalleryImage:  # type: ignore[misc]
        pictures = []
        for image in images:
            with Image.open(self.image_path(image.id)) as picture:
                pictures.append(picture.convert("RGB"))
        xs, ys, zs = plot.axis_labels()
        grid = draw_grid(
            pictures,
            plot.shape,
            x_labels=xs if plot.x is not None and plot.x.active else (),
            y_labels=ys if plot.y is not None and plot.y.active else (),
            z_labels=zs if plot.z is not None and plot.z.active else (),
        )
        first = images[0]
        return self.gallery.save(
            grid,
            infotext=grid_infotext(first.infotext, plot),
            seed=first.seed,
            task=GRID_TASK,
            author=user,
            model=first.model,
            extra={PLOT_KEY: json.loads(plot.model_dump_json()), CELLS_KEY: [i.id for i in images]},
        )

    def plot_of(self: Studio, image_id: int) -> PlotRequest:  # type: ignore[misc]
        """The plot definition stored with a grid image (ImageNotFound, PlotError when it has none)."""
        stored = self._easel_chunk(image_id).get(PLOT_KEY)
        if not isinstance(stored, dict):
            raise PlotError(f"image {image_id} is not an X/Y/Z plot grid")
        return plot_from_json(stored)

    def rerun_plot(self: Studio, image_id: int, user: str) -> JobGroup:  # type: ignore[misc]
        """Run the plot a grid image was made from again (same seeds → the same cells)."""
        return self.run_plot(self.plot_of(image_id), user)

    def _easel_chunk(self: Studio, image_id: int) -> dict[str, Any]:  # type: ignore[misc]
        from core.infotext import EASEL_CHUNK_KEY
        from core.pnginfo import read_text_chunks

        _, items = read_text_chunks(self.image_path(image_id).read_bytes())
        try:
            chunk = json.loads(items.get(EASEL_CHUNK_KEY, "{}"))
        except ValueError:
            return {}
        return chunk if isinstance(chunk, dict) else {}

    # -- variations --------------------------------------------------------------------------------
    def request_of(self: Studio, image_id: int) -> GenerationRequest:  # type: ignore[misc]
        """The request that made a gallery image (its exact, resolved settings). Source-image tasks keep no
        source picture in the gallery, so only txt2img images (and A1111 files) give a request here; for the
        others `variations` takes the request itself (see `request_from_metadata`)."""
        chunk = self._easel_chunk(image_id)
        return request_from_metadata(chunk, self.gallery_image(image_id).infotext, f"image {image_id}")

    def variations(
        self: Studio,  # type: ignore[misc]
        image_or_request: int | GenerationRequest,
        count: int,
        strength: float,
        user: str,
    ) -> JobGroup:
        """`count` candidates around an image (gallery id) or a request: its seed, a fresh random variation
        seed each, at variation strength `strength`. One job per image (a batch would step the seed too)."""
        if not 1 <= count <= MAX_VARIATIONS:
            raise ValueError(f"variations: count must be 1..{MAX_VARIATIONS} (got {count})")
        if not 0 < strength <= 1:
            raise ValueError(f"variations: strength must be above 0 and at most 1 (got {strength})")
        base = (
            image_or_request
            if isinstance(image_or_request, GenerationRequest)
            else self.request_of(image_or_request)
        )
        seed = base.seed if base.seed != -1 else secrets.randbelow(MAX_SEED + 1)
        subseeds: set[int] = set()
        while len(subseeds) < count:
            candidate = secrets.randbelow(MAX_SEED + 1)
            if candidate != seed:
                subseeds.add(candidate)
        fields = base.model_dump()
        fields.update(seed=seed, subseed_strength=strength, batch_size=1, batch_count=1)
        requests = [type(base)(**{**fields, "subseed": s}) for s in subseeds]
        return self.submit_group(requests, user, kind="variations")


def request_from_metadata(
    chunk: dict[str, Any],
    infotext: str,
    what: str = "this image",
    images: dict[str, bytes] | None = None,
) -> GenerationRequest:
    """The request stored in an image's JSON chunk (its infotext for files from elsewhere).

    The gallery keeps no source picture: an img2img or inpaint result gives its request only with `images`
    (the picture fields, e.g. the img2img tab's source picture as `init_image`); without them, and for plot
    grids, ValueError says what to do instead."""
    from core.infotext import request_fields_from_infotext

    stored = chunk.get("request")
    task = chunk.get("task") or ""
    if task == GRID_TASK or PLOT_KEY in chunk:
        raise ValueError(f"{what} is an X/Y/Z plot grid; pick one of its cells")
    source_task = task in _REQUEST_CLASSES and task != "txt2img"
    if source_task and (images is None or not isinstance(stored, dict)):
        raise ValueError(_source_task_advice(task, what))
    if isinstance(stored, dict) and (source_task or stored.get("task", "txt2img") == "txt2img"):
        cls = _REQUEST_CLASSES[task] if source_task else Txt2ImgRequest
        fields = {k: v for k, v in stored.items() if k in cls.model_fields}
        fields["styles"] = ()  # the stored prompt has its styles applied already
        return cls(**{**fields, **(images if source_task and images else {})})
    return Txt2ImgRequest(**request_fields_from_infotext(parse_infotext(infotext)))


def _source_task_advice(task: str, what: str) -> str:
    """How to vary an img2img or inpaint result, whose source picture the gallery does not keep."""
    if task == "img2img":
        return (
            f"{what} is an img2img result and the gallery does not keep its source picture; in the img2img tab, "
            "with that source picture loaded, pick the result among the tab's results (or make it again with "
            "its seed) and click Variations there"
        )
    return (
        f"{what} is an {task} result and the gallery does not keep its source picture and mask; in the "
        f"{task} tab, load them, paste its seed and set a Variation seed and strength (the Variation seed "
        "section) to make variations"
    )


def fixed_seeds(plot: PlotRequest) -> PlotRequest:
    """The plot with a concrete seed and variation seed (as A1111 does), so cells differ only by their axes."""
    updates: dict[str, int] = {}
    if plot.base.seed == -1:
        updates["seed"] = secrets.randbelow(MAX_SEED + 1)
    if getattr(plot.base, "subseed", None) == -1:
        updates["subseed"] = secrets.randbelow(MAX_SEED + 1)
    if not updates:
        return plot
    base = type(plot.base)(**{**plot.base.model_dump(), **updates})
    return plot.model_copy(update={"base": base})


def grid_infotext(first_cell: str, plot: PlotRequest) -> str:
    """The first cell's infotext with the axes added (A1111's "X Type" / "X Values" keys)."""
    parsed = parse_infotext(first_cell)
    params: dict[str, object] = {k: v for k, v in parsed.params.items() if k != "Version"}
    for name, axis in plot.axes():
        params[f"{name.upper()} Type"] = axis.axis_type.label
        params[f"{name.upper()} Values"] = axis.values
    params["Version"] = parsed.params.get("Version")
    return format_infotext(parsed.prompt, parsed.negative_prompt, params)
