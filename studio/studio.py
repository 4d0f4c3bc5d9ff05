"""The Studio: the one object the UI and the API talk to. Queue, worker, jobs, gallery access."""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from core.backend import (
    Backend,
    BackendStatus,
    EmbeddingInfo,
    ExportedFile,
    GeneratedImage,
    JobCancelled,
    JobFailed,
    LoraInfo,
    ModelInfo,
    Progress,
    RetouchTools,
    VaeInfo,
)
from core.errors import StyleProblem, UnknownLora, UnknownModel, UnknownPreset, UnknownStyle, UnknownTool
from core.hires import LATENT_UPSCALE_MODES
from core.presets import Preset, PresetBook, PresetError, Problem
from core.prompt_syntax import extract_loras
from core.requests import MAX_PROMPT_CHARS, MAX_SEED, GenerationRequest
from core.retouch import RemoveBackgroundOp, ReplaceBackgroundOp, RestoreFacesOp, RetouchRequest
from core.styles import Style, StylesFileError, apply_styles, read_styles
from core.users import UserBook
from gallery.query import GalleryPage, GalleryQuery
from gallery.store import Gallery, GalleryImage
from studio.groups import JobGroup, StudioGroups
from studio.jobs import FINISHED, Job, JobState
from studio.options import OPTIONS_FILE, OptionsStore
from studio.queue import FairQueue, TooManyQueued
from studio.roles import NotAllowed, may_change, refuse_pictures, whose

log = logging.getLogger(__name__)

LOCAL_USER = "local"
_FINISHED_JOBS_KEPT = 200
EXPORTS_DIR = "retouch-exports"  # under outputs/: files retouch jobs make that are not gallery pictures
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class Studio(StudioGroups):
    """Façade over one backend (one device) and the gallery.

    `submit` validates what only the Studio can know (the model exists), fills in the default model
    and a concrete seed, and queues the job; one worker thread runs jobs in fair order across users.
    """

    def __init__(
        self,
        backend: Backend,
        gallery: Gallery,
        *,
        queue_size: int = 32,
        presets: PresetBook | None = None,
        users: UserBook | None = None,
        max_queued_per_user: int | None = 4,
    ) -> None:
        self.backend = backend
        self.gallery = gallery
        self.presets_book = presets or PresetBook(None, None)
        self.users = users or UserBook()
        self._queue = FairQueue(queue_size)
        self.max_queued_per_user = max_queued_per_user  # None: no limit per user
        self._admission = threading.Lock()  # a user's count and the queueing of their job happen as one step
        self._jobs: dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        self._current: Job | None = None
        self._preferred: dict[str, str] = {}  # user → model chosen for requests that name none
        self.options = OptionsStore(gallery.outputs_dir / OPTIONS_FILE)  # A1111 options, per user
        self._seconds_per_unit: float | None = None  # moving average of seconds per (step × image)
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()

    def is_admin(self, user: str) -> bool:
        """Admins may change or delete anyone's work. Without logins, the one local user is the admin."""
        return self.users.is_admin(user) or (user == LOCAL_USER and LOCAL_USER not in self.users)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="easel-worker", daemon=True)
            self._worker.start()

    def close(self) -> None:
        self._stopping.set()
        self._queue.close()
        if self._current is not None:
            self._current._cancel.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
            self._worker = None

    # -- jobs ------------------------------------------------------------------------------------
    def submit(
        self,
        request: GenerationRequest | RetouchRequest,
        user: str = LOCAL_USER,
        *,
        group: JobGroup | None = None,
    ) -> Job:
        """Queue a validated request. Raises UnknownModel, TooManyQueued (the user has as many jobs waiting as one
        may) or QueueFull, with a user-facing message. A job group's jobs pass `group` (the group counts once)."""
        if isinstance(request, RetouchRequest):
            job = Job(request=self._resolved_retouch(request, user), user=user)
        else:
            updates: dict[str, object] = {"model": self._model_for(request.model, user)}
            if request.styles:  # expanded once, here: the job carries the final prompt and the style names
                updates["prompt"], updates["negative_prompt"] = self._styled(request)
            self._check_loras(str(updates.get("prompt", request.prompt)))
            if request.seed == -1:
                updates["seed"] = secrets.randbelow(MAX_SEED + 1 - request.image_count)
            if request.subseed == -1 and request.subseed_strength > 0:  # image i uses subseed + i
                updates["subseed"] = secrets.randbelow(MAX_SEED + 1 - request.image_count)
            job = Job(request=request.model_copy(update=updates), user=user)
        job.total = _steps_per_batch(job.request) * request.batch_count  # a preset may set the steps
        with self._admission:
            if group is None:
                self._check_room(user)
            else:
                job.group_id = group.id
                if group.cancel_requested:  # its waiting jobs were cancelled meanwhile: queue nothing
                    job._cancel.set()
                    job._finish(JobState.CANCELLED)
                    return job
            self._queue.put(job)
        with self._jobs_lock:
            self._jobs[job.id] = job
            self._forget_old_jobs()
        return job

    def waiting_count(self, user: str) -> int:
        """How many jobs of `user` have not started: waiting jobs, and each unfinished job group as one."""
        alone = [job for job in self._queue.waiting(user) if not job.group_id]
        groups = [group for group in self.unfinished_groups(user) if not group.cancel_requested]
        return len(alone) + len(groups)

    def _check_room(self, user: str) -> None:
        """TooManyQueued when `user` has `max_queued_per_user` jobs waiting already (admins are exempt)."""
        limit = self.max_queued_per_user
        if limit is None or self.is_admin(user):
            return
        waiting = self.waiting_count(user)
        if waiting >= limit:
            raise TooManyQueued(
                f"You already have {waiting} jobs waiting (at most {limit} per person, so that everyone gets a "
                "turn). Wait until one starts, or cancel your queued jobs."
            )

    def _model_for(self, name: str, user: str) -> str:
        """The model a request naming `name` ("" = the user's choice or the default) runs on."""
        model = name or self._preferred.get(user) or self.backend.default_model()
        if not model:
            raise UnknownModel(
                "No model is available. Put a .safetensors checkpoint into models/ or start with --demo."
            )
        known = {m.name: m for m in self.backend.models()}
        if model not in known:
            names = ", ".join(sorted(n for n, m in known.items() if not m.refused)) or "none"
            raise UnknownModel(f"Unknown model {model!r}. Available: {names}")
        if known[model].refused:
            raise UnknownModel(f"Model {model!r} cannot be used: {known[model].refused}")
        return model

    def _check_loras(self, prompt: str) -> None:
        """Refuse a prompt's <lora:…> tags now, not when its job starts: a bad tag, an unknown or refused LoRA."""
        try:
            _, tags = extract_loras(prompt)
            self.backend.check_loras([tag.name for tag in tags])
        except ValueError as exc:
            raise UnknownLora(str(exc)) from exc

    def _styled(self, request: GenerationRequest) -> tuple[str, str]:
        styles = self._named_styles(request.styles)
        prompt, negative = apply_styles(request.prompt, request.negative_prompt, styles)
        for what, text in (("prompt", prompt), ("negative prompt", negative)):
            if len(text) > MAX_PROMPT_CHARS:
                raise StyleProblem(
                    f"With its styles the {what} has {len(text)} characters; at most {MAX_PROMPT_CHARS} fit"
                )
        return prompt, negative

    def _named_styles(self, names: Sequence[str]) -> list[Style]:
        try:
            return self.presets_book.styles_named(names)
        except KeyError as exc:
            known = ", ".join(sorted(s.name for s in self.presets_book.styles())) or "none"
            raise UnknownStyle(f"Unknown style {exc.args[0]!r}. Available: {known}") from None

    def styled_background(self, op: ReplaceBackgroundOp) -> ReplaceBackgroundOp:
        """The operation with its preset and styles applied (as `_styled` does for generation): `submit` does
        this once; the Retouch tab calls it to show the final prompt. UnknownPreset, UnknownStyle or
        StyleProblem when they cannot be applied."""
        preset = None
        if op.preset:
            try:
                preset = self.presets_book.get(op.preset)
            except PresetError:
                known = ", ".join(sorted(p.name for p in self.presets_book.presets())) or "none"
                raise UnknownPreset(f"Unknown preset {op.preset!r}. Available: {known}") from None
        styles = self._named_styles(op.style_names(preset))
        try:
            return op.styled(preset, styles)
        except ValueError as exc:
            raise StyleProblem(f"replace_background with its preset and styles: {exc}") from None

    def _resolved_retouch(self, request: RetouchRequest, user: str) -> RetouchRequest:
        """The chain with its tools checked, a model for each diffusion step (only those need one) and
        concrete seeds: the request's seed, and seed + i for the i-th diffusion step whose seed is -1."""
        self._check_tools(request)
        diffusion = len(request.diffusion_ops)
        seed = request.seed if request.seed != -1 else secrets.randbelow(MAX_SEED + 1 - max(1, diffusion))
        ops, nth = [], 0
        for op in request.ops:
            if isinstance(op, ReplaceBackgroundOp) and (op.preset or op.styles):
                op = self.styled_background(op)
            if op.needs_model:
                updates: dict[str, object] = {"model": self._model_for(op.model, user)}  # type: ignore[attr-defined]
                if op.seed == -1:  # type: ignore[attr-defined]
                    updates["seed"] = seed + nth
                nth += 1
                op = op.model_copy(update=updates)
            ops.append(op)
        return request.model_copy(update={"ops": ops, "seed": seed})

    def _check_tools(self, request: RetouchRequest) -> None:
        tools = self.backend.retouch_tools()
        for op in request.ops:
            upscaler = getattr(op, "upscaler", None)
            if upscaler is not None and upscaler not in tools.upscalers:
                raise UnknownTool(f"Unknown upscaler {upscaler!r}. Available: {', '.join(tools.upscalers)}")
            if isinstance(op, RestoreFacesOp) and op.model and op.model not in tools.face_restorers:
                names = ", ".join(tools.face_restorers) or "none (put a model file into models/)"
                raise UnknownTool(f"Unknown face restoration model {op.model!r}. Available: {names}")
            segmenter = op.model if isinstance(op, RemoveBackgroundOp) else getattr(op, "segmenter", "")
            if isinstance(op, RemoveBackgroundOp | ReplaceBackgroundOp) and segmenter:
                if segmenter not in tools.segmenters:
                    names = ", ".join(tools.segmenters) or "none (put a model file into models/)"
                    raise UnknownTool(f"Unknown background removal model {segmenter!r}. Available: {names}")

    def job(self, job_id: str, user: str, *, admin: bool = False) -> Job:
        """The job with this id, if it belongs to `user` or `admin` is set (KeyError / NotYourJob otherwise)."""
        with self._jobs_lock:
            job = self._jobs[job_id]
        if not admin:
            job.check_owner(user)
        return job

    def cancel(self, job_id: str, user: str, *, admin: bool = False) -> Job:
        """Cancel a queued or running job of `user` (any job for an admin). A running job stops within one step."""
        job = self.job(job_id, user, admin=admin)
        job._cancel.set()
        if self._queue.remove(job):
            job._finish(JobState.CANCELLED)
        return job

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
                group._cancel.set()
                cancelled += 1
            for job in self._queue.waiting(user):
                if self._queue.remove(job):  # False when the worker took it meanwhile: it runs
                    job._cancel.set()
                    job._finish(JobState.CANCELLED)
                    cancelled += 0 if job.group_id else 1
        return cancelled

    def running_job(self) -> Job | None:
        """The job the worker is running now, whoever it belongs to (for admins)."""
        return self._current

    def latest_job(self, user: str) -> Job | None:
        """The user's running job, else their oldest waiting one, else their most recent finished one."""
        with self._jobs_lock:
            mine = [j for j in self._jobs.values() if j.user == user]
        for state in (JobState.RUNNING, JobState.QUEUED):
            matching = [j for j in mine if j.state is state]
            if matching:
                return min(matching, key=lambda j: j.created)
        return max(mine, key=lambda j: j.created) if mine else None

    def prefer_model(self, user: str, name: str) -> None:
        """Use `name` for this user's requests that name no model (A1111's `sd_model_checkpoint` option)."""
        known = {m.name: m for m in self.backend.models()}
        if name not in known or known[name].refused:
            usable = ", ".join(sorted(n for n, m in known.items() if not m.refused)) or "none"
            raise UnknownModel(f"Unknown model {name!r}. Available: {usable}")
        self._preferred[user] = name

    def preferred_model(self, user: str) -> str | None:
        return self._preferred.get(user) or self.backend.default_model()

    def wait_estimate(self, job: Job) -> float | None:
        """Seconds until a queued job starts, from the pace of recent jobs (None until one has finished)."""
        rate = self._seconds_per_unit
        if rate is None or job.state is not JobState.QUEUED:
            return None
        running = self._current
        left = (running.eta_seconds() or 0.0) if running is not None else 0.0
        return left + sum(_work_units(j) * rate for j in self._queue.ahead_of(job))

    def queue_position(self, job: Job) -> int | None:
        """1-based place among waiting jobs (None once it runs or has finished)."""
        return self._queue.position(job)

    # -- models, status, gallery -----------------------------------------------------------------
    def models(self, refresh: bool = False) -> list[ModelInfo]:
        return self.backend.models(refresh=refresh)

    def loras(self, refresh: bool = False) -> list[LoraInfo]:
        """LoRA files a prompt can name with <lora:name:weight>, refused ones included (with the reason)."""
        return self.backend.loras(refresh=refresh)

    def embeddings(self, refresh: bool = False) -> list[EmbeddingInfo]:
        """Textual-inversion embeddings (models/embeddings/), refused ones included (with the reason)."""
        return self.backend.embeddings(refresh=refresh)

    def vaes(self, refresh: bool = False) -> list[VaeInfo]:
        """VAEs under models/VAE/ a job can use instead of its model's own, refused ones included."""
        return self.backend.vaes(refresh=refresh)

    def default_model(self) -> str | None:
        return self.backend.default_model()

    def status(self) -> BackendStatus:
        return self.backend.status()

    def retouch_tools(self, refresh: bool = False) -> RetouchTools:
        return self.backend.retouch_tools(refresh=refresh)

    def hires_upscalers(self, refresh: bool = False) -> list[str]:
        """Upscalers hires fix can use: A1111's latent modes, then Lanczos, Nearest and the model upscalers."""
        return [*LATENT_UPSCALE_MODES, *self.retouch_tools(refresh=refresh).upscalers]

    def exports_dir(self) -> Path:
        """Where retouch exports (SVG, zips) are written: a folder under outputs/, never indexed."""
        return self.gallery.outputs_dir / EXPORTS_DIR

    def recent_images(
        self, limit: int = 50, offset: int = 0, *, author: str | None = None
    ) -> list[GalleryImage]:
        return self.gallery.recent(limit=limit, offset=offset, author=author)

    def refresh_gallery(self) -> int:
        """Pick up images added to (or removed from) outputs/ by other means; returns how many changed."""
        return self.gallery.sync()

    def search_images(self, text: str, limit: int = 50, *, author: str | None = None) -> list[GalleryImage]:
        return self.gallery.search(text, limit=limit, author=author)

    def image_path(self, image_id: int) -> Path:
        return self.gallery.file_path(image_id)

    # -- the worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get(timeout=0.5)
            if job is None:
                continue
            self._current = job
            try:
                self._run(job)
            finally:
                self._current = None

    def _run(self, job: Job) -> None:
        if job.cancel_requested:
            job._finish(JobState.CANCELLED)
            return
        job.state = JobState.RUNNING
        job.started = time.monotonic()
        events = self.backend.run(job.request)
        exports: list[ExportedFile] = []
        try:
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
        except JobCancelled:
            pass
        except JobFailed as exc:
            job._finish(JobState.FAILED, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a job failing must never stop the worker
            log.exception("job %s failed", job.id)
            job._finish(JobState.FAILED, f"Generation failed: {type(exc).__name__}: {exc}")
            return
        finally:
            events.close()  # type: ignore[attr-defined]
        if exports and not job.cancel_requested:
            job.exports.extend(self._write_exports(job, exports))
        job._finish(JobState.CANCELLED if job.cancel_requested else JobState.DONE)
        if job.state is JobState.DONE and job.started is not None:
            pace = (job.finished - job.started) / _work_units(job)
            previous = self._seconds_per_unit
            self._seconds_per_unit = pace if previous is None else 0.7 * previous + 0.3 * pace

    def _save(self, job: Job, event: GeneratedImage) -> GalleryImage:
        return self.gallery.save(
            event.image,
            infotext=event.infotext,
            seed=event.seed,
            task=job.request.task,
            author=job.user,
            model=event.model,
            extra=dict(event.extra),
        )

    def _write_exports(self, job: Job, exports: Sequence[ExportedFile]) -> list[Path]:
        """Write a finished job's exports to outputs/retouch-exports/<job id>/ (atomic, like gallery files)."""
        from gallery.files import write_atomic

        folder = self.exports_dir() / job.id
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for export in exports:
            if not _SAFE_NAME.fullmatch(export.name):
                raise ValueError(f"export name {export.name!r} is not a plain file name")
            path = folder / export.name
            write_atomic(path, export.data)
            paths.append(path)
        return paths

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - _FINISHED_JOBS_KEPT)]:
            del self._jobs[job.id]

    # -- gallery actions --
    # Thin pass-throughs to the Gallery, so the UI and the API reach it only through the Studio.
    def gallery_query(self, q: GalleryQuery) -> GalleryPage:
        return self.gallery.query(q)

    def gallery_facets(self) -> dict[str, list[str]]:
        return self.gallery.facets()

    def gallery_image(self, image_id: int) -> GalleryImage:
        return self.gallery.get(image_id)

    # Changes are checked first (studio.roles): a picture is its author's; NotAllowed names whose it is.
    def check_pictures(self, ids: Sequence[int], user: str, verb: str) -> None:
        """NotAllowed unless `user` may `verb` ("delete", ...) every one of these pictures. The actions check
        this themselves; the page also asks first, so that a refusal leaves its widgets as they are."""
        if self.is_admin(user):
            return
        others = [
            image.author
            for image in map(self.gallery.get, ids)
            if not may_change(image.author, user, admin=False)
        ]
        if others:
            raise refuse_pictures(others, verb)

    def set_favourite(self, ids: Sequence[int], value: bool, *, user: str) -> int:
        """Star or unstar pictures. A star is the author's pick, seen by everyone: only the author (or an admin)
        may set it."""
        self.check_pictures(ids, user, "star or unstar")
        return self.gallery.set_favourite(ids, value)

    def delete_images(self, ids: Sequence[int], *, user: str) -> list[str]:
        """Move pictures to their author's trash; returns the keys `restore_images` takes to undo it. Only the
        author or an admin may (NotAllowed, before anything moves)."""
        self.check_pictures(ids, user, "delete")
        return self.gallery.delete(ids)

    def check_restore(self, keys: Sequence[str], user: str) -> None:
        """NotAllowed unless every trashed picture these keys name is `user`'s (or `user` is an admin)."""
        if not self.is_admin(user):
            others = [
                a for a in self.gallery.trash_authors(keys).values() if not may_change(a, user, admin=False)
            ]
            if others:
                raise refuse_pictures(others, "restore")

    def picture_files(self, image_id: int) -> list[Path]:
        """A picture's file and its thumbnails (so that a front end can drop copies it handed out)."""
        return self.gallery.picture_files(image_id)

    def restore_images(self, keys: Sequence[str], *, user: str) -> list[GalleryImage]:
        """Undo a delete: only pictures from `user`'s own trash (any trash for an admin)."""
        self.check_restore(keys, user)
        return self.gallery.restore(keys)

    def empty_trash(self, *, user: str, everyone: bool = False) -> int:
        """Delete `user`'s trashed pictures for good (everyone's with `everyone`, which only an admin may)."""
        if everyone and not self.is_admin(user):
            raise NotAllowed("Not allowed: only an admin can empty everyone's trash. Nothing was deleted.")
        return self.gallery.empty_trash(None if everyone else user)

    def trash_count(self, *, user: str, everyone: bool = False) -> int:
        """How many of `user`'s pictures (everyone's with `everyone`) wait in the trash."""
        return self.gallery.trash_count(None if everyone else user)

    def thumbnail(self, image_id: int, size: int = 256) -> Path:
        return self.gallery.thumbnail(image_id, size)

    def export_zip(self, ids: Sequence[int], dest: Path) -> Path:
        return self.gallery.export_zip(ids, dest)

    # -- presets and styles --
    # Pass-throughs to the PresetBook. PresetError / StylesFileError (ValueErrors) carry user-facing messages.
    def styles(self) -> list[Style]:
        return self.presets_book.styles()

    def presets(self) -> list[Preset]:
        return self.presets_book.presets()

    def preset(self, name: str) -> Preset:
        return self.presets_book.get(name)

    def preset_is_shipped(self, name: str) -> bool:
        return self.presets_book.is_shipped(name)

    def preset_problems(self) -> list[Problem]:
        return self.presets_book.problems()

    # A user preset or style is its author's: only they or an admin may change it (NotAllowed otherwise);
    # shipped ones are read-only here, and one without an author is the team's (admins only).
    def check_preset(self, name: str, user: str, verb: str) -> Preset:
        """The preset, if `user` may `verb` it (NotAllowed otherwise; PresetError when there is none)."""
        entry = self.presets_book.entry(name)
        if not entry.shipped and not may_change(entry.preset.author, user, admin=self.is_admin(user)):
            raise NotAllowed(
                f"Not allowed: the preset {name!r} is {whose(entry.preset.author)}; only its author or an admin "
                f"can {verb} it. Nothing was changed."
            )
        return entry.preset

    def save_preset(self, preset: Preset, *, user: str, replace: bool = False) -> Path:
        """Save `preset` as `user`'s. Replacing one is for its author or an admin (who leaves it its author)."""
        author = user
        if replace and preset.name in {p.name for p in self.presets_book.presets()}:
            author = self.check_preset(preset.name, user, "replace").author or user
        return self.presets_book.save(preset.model_copy(update={"author": author}), replace=replace)

    def rename_preset(self, old: str, new: str, *, user: str) -> Preset:
        self.check_preset(old, user, "rename")
        return self.presets_book.rename(old, new)

    def delete_preset(self, name: str, *, user: str) -> None:
        self.check_preset(name, user, "delete")
        self.presets_book.delete(name)

    def import_styles(self, data: bytes, fmt: str = "auto", *, user: str) -> list[Style]:
        """Add the file's new and changed styles to the team's styles, as `user`'s (unchanged ones are skipped);
        returns them. Changing a style that is not theirs (a shipped one, the team's or another user's) is for
        admins: otherwise NotAllowed, naming them, and nothing is imported."""
        changed = self.styles_to_import(data, fmt, user=user)
        return self.presets_book.add_styles(changed, owner=user) if changed else []

    def styles_to_import(self, data: bytes, fmt: str = "auto", *, user: str) -> list[Style]:
        """The file's new and changed styles, if `user` may import them (see `import_styles`); changes nothing."""
        incoming = read_styles(data, fmt)
        if not incoming:
            raise StylesFileError("the file has no styles")
        current = {style.name: style for style in self.presets_book.styles()}
        changed = [style for style in incoming if current.get(style.name) != style]
        if not self.is_admin(user):
            owners = self.presets_book.style_owners()
            taken = [s.name for s in changed if s.name in current and owners.get(s.name) != user]
            if taken:
                listed = ", ".join(
                    f"{name!r} ({'shipped' if name not in owners else whose(owners[name])})"
                    for name in taken[:5]
                )
                more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
                raise NotAllowed(
                    f"Not allowed: the file changes styles that are not yours: {listed}{more}. Only an admin can "
                    f"change those for the team. Nothing was imported; give your versions new names (e.g. "
                    f"'{taken[0]} ({user})')."
                )
        return changed

    def export_styles(self) -> bytes:
        return self.presets_book.export_styles()


def _steps_per_batch(request: GenerationRequest | RetouchRequest) -> int:
    """Sampling steps of one batch (hires fix counts both passes)."""
    return request.steps_per_batch if isinstance(request, GenerationRequest) else request.steps


def _work_units(job: Job) -> int:
    return max(1, _steps_per_batch(job.request) * job.request.image_count)
