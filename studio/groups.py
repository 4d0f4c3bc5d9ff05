"""Job groups: several requests run as consecutive jobs of one user — an X/Y/Z plot (then its grid image)
or a set of variations.

A group feeds its jobs to the Studio's queue one at a time, so it never fills the queue, other users'
jobs still take their turns between its jobs, and cancelling the group stops the running job and
submits no more. Each job's images are saved by the normal path; the group's progress adds up its jobs'.
`JobGroup` itself lives with `Job` (studio.jobs): both are `Work`.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from core.errors import PlotError, QueueFull
from core.grid import draw_grid
from core.infotext import format_infotext, parse_infotext
from core.presets import PresetBook
from core.requests import (
    MAX_SEED,
    GenerationRequest,
    Img2ImgRequest,
    InpaintRequest,
    Txt2ImgRequest,
)
from core.xyz import AxisContext, Cell, PlotRequest, cells, plot_from_json, run_order
from gallery.records import GalleryImage
from gallery.store import Gallery
from studio.catalog import Catalog
from studio.jobs import Job, JobGroup, JobState
from studio.resolve import Resolver
from studio.worker import Jobs

log = logging.getLogger(__name__)

GRID_TASK = "grid"  # the gallery task of plot grid images
PLOT_KEY = "xyz_plot"  # the grid's JSON chunk field holding the whole plot definition
CELLS_KEY = "xyz_cells"  # ... and the gallery ids of its cells, in layout order
MAX_VARIATIONS = 16
_POLL_SECONDS = 0.25
_REQUEST_CLASSES: dict[str, type[GenerationRequest]] = {
    "txt2img": Txt2ImgRequest,
    "img2img": Img2ImgRequest,
    "inpaint": InpaintRequest,
}


class Groups:
    """Starts and drives job groups: X/Y/Z plots (then their grid), variations, prompts files.

    Each group queues through the job service one job at a time (`Jobs.add_group` admits it as one waiting job
    of its user); the group's thread waits for each job before it submits the next."""

    def __init__(
        self, jobs: Jobs, resolver: Resolver, catalog: Catalog, gallery: Gallery, presets: PresetBook
    ) -> None:
        self.jobs = jobs
        self.resolver = resolver
        self.catalog = catalog
        self.gallery = gallery
        self.presets = presets

    # -- groups ------------------------------------------------------------------------------------
    def submit_group(
        self,
        requests: Sequence[GenerationRequest],
        user: str,
        *,
        kind: str,
        plot: PlotRequest | None = None,
        on_done: Callable[[JobGroup], None] | None = None,
    ) -> JobGroup:
        """Run `requests` as consecutive jobs of `user`. Every request is resolved first, so a bad one fails
        here, before anything runs. `on_done` runs after the last job (for a plot: the grid)."""
        if not requests:
            raise ValueError("a job group needs at least one request")
        for request in requests:
            self.resolver.resolve_generation(request, user)
        group = JobGroup(requests=list(requests), user=user, kind=kind, plot=plot)
        self.jobs.add_group(group)
        threading.Thread(target=self._drive, args=(group, on_done), name=f"easel-{kind}", daemon=True).start()
        return group

    def _drive(self, group: JobGroup, on_done: Callable[[JobGroup], None] | None) -> None:
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
                    if self.jobs.stopping.is_set():
                        group.request_cancel()
                        break
                if job.state is JobState.FAILED:
                    group.finish(JobState.FAILED, job.error)
                    return
                if job.state is JobState.CANCELLED or group.cancel_requested:
                    break
            if group.cancel_requested:
                group.finish(JobState.CANCELLED)
                return
            if on_done is not None:
                on_done(group)
        except Exception as exc:  # noqa: BLE001 - a group failing must leave a message, not a dead thread
            log.exception("job group %s failed", group.id)
            group.finish(JobState.FAILED, f"{type(exc).__name__}: {exc}")
            return
        group.finish(JobState.DONE)

    def _submit_when_room(self, group: JobGroup, request: GenerationRequest) -> Job | None:
        """Submit the group's next job, waiting while the queue is full; None once cancelled."""
        while not group.cancel_requested and not self.jobs.stopping.is_set():
            try:
                return self.jobs.submit(request, group.user, group=group)
            except QueueFull:
                time.sleep(_POLL_SECONDS)
        group.request_cancel()
        return None

    # -- X/Y/Z plots -------------------------------------------------------------------------------
    def plot_cells(self, plot: PlotRequest) -> list[Cell]:
        """The plot's cells (layout order), with presets and model families known to this Studio."""
        presets = {p.name: p for p in self.presets.presets()}
        families = {m.name: m.family for m in self.catalog.models()}
        default = self.catalog.default_model() or ""
        context = AxisContext(presets=presets, family_of=lambda name: families.get(name or default))
        return cells(plot, context)

    def run_plot(self, plot: PlotRequest, user: str) -> JobGroup:
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

    def _save_grid(self, plot: PlotRequest, images: list[GalleryImage], user: str) -> GalleryImage:
        pictures = []
        for image in images:
            with Image.open(self.gallery.file_path(image.id)) as picture:
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

    def plot_of(self, image_id: int) -> PlotRequest:
        """The plot definition stored with a grid image (ImageNotFound, PlotError when it has none)."""
        stored = self.gallery.metadata(image_id).get(PLOT_KEY)
        if not isinstance(stored, dict):
            raise PlotError(f"image {image_id} is not an X/Y/Z plot grid")
        return plot_from_json(stored)

    def rerun_plot(self, image_id: int, user: str) -> JobGroup:
        """Run the plot a grid image was made from again (same seeds → the same cells)."""
        return self.run_plot(self.plot_of(image_id), user)

    # -- variations --------------------------------------------------------------------------------
    def request_of(self, image_id: int) -> GenerationRequest:
        """The request that made a gallery image (its exact, resolved settings). Source-image tasks keep no
        source picture in the gallery, so only txt2img images (and A1111 files) give a request here; for the
        others `variations` takes the request itself (see `request_from_metadata`)."""
        metadata = self.gallery.metadata(image_id)
        return request_from_metadata(metadata, self.gallery.get(image_id).infotext, f"image {image_id}")

    def variations(
        self,
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
    return Txt2ImgRequest.model_validate(request_fields_from_infotext(parse_infotext(infotext)))


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
