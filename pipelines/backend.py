"""The local backend: runs jobs on this machine's device through the pipeline manager."""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from core.backend import (
    BackendEvent,
    BackendStatus,
    EmbeddingInfo,
    GeneratedImage,
    JobCancelled,
    JobFailed,
    LoraInfo,
    ModelInfo,
    Progress,
    RetouchTools,
    VaeInfo,
)
from core.hires import LATENT_UPSCALE_MODES
from core.infotext import FACE_RESTORATION_KEY, NO_FACE_RESTORER, format_infotext, request_params
from core.prompt_syntax import LoraTag
from core.requests import GenerationRequest, Img2ImgRequest, InpaintRequest, Txt2ImgRequest, request_summary
from core.resolved import ResolvedGeneration
from core.retouch import RetouchRequest
from core.seeds import matching_subseed
from core.version import INFOTEXT_VERSION
from pipelines.device_thread import DeviceThread
from pipelines.embeddings import EmbeddingEntry, EmbeddingLibrary, load_embeddings, rewrite_prompt
from pipelines.hashing import file_sha256_10
from pipelines.hires_runner import hires_runner
from pipelines.loader import ModelLoadError
from pipelines.lora import LoraAdapters, LoraLibrary, applied_loras
from pipelines.manager import PipelineManager
from pipelines.prompt_cache import PromptCache, caching_prompts
from pipelines.prompt_weighting import prompt_embeddings
from pipelines.registry import ModelEntry, ModelRegistry
from pipelines.retouch.run import RetouchResources, run_retouch
from pipelines.retouch.tools import retouch_tools_on_disk
from pipelines.retouch.upscale import UpscalerCache
from pipelines.retouch.weights import ModelCache
from pipelines.taesd import Previewer
from pipelines.tasks import Runner, runner_for, task_pipeline
from pipelines.tiling import tiled
from pipelines.together import batch_key, same_length_groups, stacked_embeds
from pipelines.txt2img import run_txt2img
from pipelines.vae import VaeEntry, VaeLibrary, cached_vae, swapped_vae

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_END = object()
PROMPT_CACHE_KEY = "prompt_cache"  # in a model's state (PipelineManager.model_state)


@dataclass
class _Generation:
    """One generation on its way through `_execute`: what was found before the model loads, and the prompt
    and runner as the embeddings and the hires pass leave them."""

    request: GenerationRequest
    entry: ModelEntry
    resolved: ResolvedGeneration  # worked out at submit: prompt without tags, tags, schedule, every seed
    counter: _StepCounter
    run: Runner
    hires: Txt2ImgRequest | None  # set when the hires fix runs (its upscaler was checked at submit)
    encoded: GenerationRequest  # the request the text encoder sees: LoRA tags out, embeddings as tokens
    lora_tags: list[LoraTag]
    lora_params: dict[str, object]
    vae_entry: VaeEntry | None
    embeddings: list[EmbeddingEntry]
    addon_params: dict[str, object]


class _StepCounter:
    """Steps done and expected across a job's batches (some samplers report more steps than asked)."""

    def __init__(self, steps: int, batches: int) -> None:
        self.per_batch = steps
        self.batches_left = batches
        self.done = 0

    def at(self, step: int, steps: int) -> tuple[int, int]:
        self.per_batch = steps
        return self.done + step, self.done + steps * self.batches_left

    def next_batch(self) -> None:
        self.done += self.per_batch
        self.batches_left -= 1


class LocalBackend:
    """Backend over the in-process pipeline manager. One job runs at a time per backend."""

    def __init__(
        self,
        registry: ModelRegistry,
        manager: PipelineManager,
        *,
        preview_every: int = 3,
        preferred: str = "",
    ) -> None:
        self.registry = registry
        self.preferred = preferred
        self.manager = manager
        self.preview_every = preview_every
        self._hashes: dict[str, str] = {}
        self._hash_lock = threading.Lock()
        self.upscalers = UpscalerCache()  # upscaler models loaded by retouch jobs, kept between jobs
        self.face_restorers = ModelCache()
        self.lora_library = LoraLibrary(registry.models_dir)
        self.embedding_library = EmbeddingLibrary(registry.models_dir)
        self.vae_library = VaeLibrary(registry.models_dir)
        self.device_thread = (
            DeviceThread()
        )  # runs the jobs: per-thread state (compiled graphs) outlives a job
        # live previews: TAESD when its weights are in models/, else the latent map
        self.previews = Previewer(registry.models_dir, manager.device.device)

    def close(self) -> None:
        """Stop the device thread (after the job it runs, which the Studio has cancelled)."""
        self.device_thread.close()

    # -- Backend protocol ------------------------------------------------------------------------
    def models(self, refresh: bool = False) -> list[ModelInfo]:
        return self.registry.infos(refresh)

    def loras(self, refresh: bool = False) -> list[LoraInfo]:
        entries = self.lora_library.scan() if refresh else self.lora_library.entries()
        models_dir = self.lora_library.models_dir
        return [LoraInfo(e.name, e.relative_path(models_dir), e.refusal) for e in entries]

    def embeddings(self, refresh: bool = False) -> list[EmbeddingInfo]:
        library = self.embedding_library
        return [
            EmbeddingInfo(
                name=e.name,
                path=library.relative_path(e),
                refusal=e.refusal,
                vectors=e.vectors,
                shape=e.shape,
                sdxl=e.sdxl,
                step=e.step,
                sd_checkpoint=e.sd_checkpoint,
                sd_checkpoint_name=e.sd_checkpoint_name,
            )
            for e in (library.scan() if refresh else library.entries())
        ]

    def vaes(self, refresh: bool = False) -> list[VaeInfo]:
        library = self.vae_library
        entries = library.scan() if refresh else library.entries()
        return [VaeInfo(e.name, library.relative_path(e), e.refusal) for e in entries]

    def check_loras(self, names: Sequence[str]) -> None:
        for name in names:
            self.lora_library.get(name)  # LoraError (a ValueError): unknown (after a rescan) or refused

    def default_model(self) -> str | None:
        usable = [e.name for e in self.registry.usable() if not e.inpaint]
        if self.preferred in usable:
            return self.preferred
        return usable[0] if usable else None

    def status(self) -> BackendStatus:
        used, total = self.manager.device.memory_mb()
        on_device, _ = self.manager.resident()
        return BackendStatus(
            device=self.manager.device.name,
            loaded_models=tuple(on_device),
            memory_used_mb=used,
            memory_total_mb=total,
        )

    def retouch_tools(self, refresh: bool = False) -> RetouchTools:
        return retouch_tools_on_disk(self.registry.models_dir)

    def run(
        self, request: GenerationRequest | RetouchRequest, resolved: ResolvedGeneration | None = None
    ) -> Iterator[BackendEvent]:
        """Runs the job on the device thread and streams its events; closing the iterator cancels."""
        if isinstance(request, RetouchRequest):
            return self._stream(request, lambda emit, cancelled: self._retouch(request, emit, cancelled))

        def execute(emit: Callable[[object], None], cancelled: threading.Event) -> None:
            self._execute([(request, resolved or ResolvedGeneration.of(request))], emit, cancelled)

        return self._stream(request, execute)

    def batch_key(
        self, request: GenerationRequest | RetouchRequest, resolved: ResolvedGeneration | None
    ) -> Hashable:
        """What jobs must share to run as one batch (`run_together`); None when this one runs alone."""
        if isinstance(request, RetouchRequest) or resolved is None:
            return None
        return batch_key(
            request, resolved, self.embedding_library.named_in([resolved.prompt, request.negative_prompt])
        )

    def suggested_batch(self) -> int:
        """On a GPU, one image per 2 GiB free (at most 8) once the models are in; on a CPU 1: its cores are busy
        at batch 1 already."""
        device = self.manager.device.device
        if not device.startswith("cuda"):
            return 1
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return max(1, min(8, int(free / 2**31)))

    def run_together(
        self, items: Sequence[tuple[GenerationRequest, ResolvedGeneration]]
    ) -> Iterator[BackendEvent]:
        """Run jobs of the same `batch_key` as one batch: every image keeps its own seed, prompt and infotext, and
        each GeneratedImage's `slot` says whose it is. Progress events are the batch's. Closing cancels all."""
        keys = {self.batch_key(request, resolved) for request, resolved in items}
        if not items or None in keys or len(keys) > 1:
            raise ValueError("only jobs with one and the same batch key run together")
        jobs = list(items)
        return self._stream(jobs[0][0], lambda emit, cancelled: self._execute(jobs, emit, cancelled))

    def _stream(
        self,
        request: GenerationRequest | RetouchRequest,
        execute: Callable[[Callable[[object], None], threading.Event], None],
    ) -> Iterator[BackendEvent]:
        events: queue.SimpleQueue[object] = queue.SimpleQueue()
        cancelled = threading.Event()

        def work() -> None:
            try:
                execute(events.put, cancelled)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                events.put(_Failure(exc))
            finally:
                events.put(_END)

        done = self.device_thread.submit(work)  # one thread runs every job of this device, in turn
        try:
            while (item := events.get()) is not _END:
                if isinstance(item, _Failure):
                    raise _user_facing(item.error, request) from item.error
                yield item  # type: ignore[misc]
        finally:
            cancelled.set()
            if not done.cancel():  # not started yet: it never will; else wait for it to stop
                done.result()

    # -- one job ---------------------------------------------------------------------------------
    def _retouch(
        self, request: RetouchRequest, emit: Callable[[object], None], cancelled: threading.Event
    ) -> None:
        run_retouch(request, self._retouch_resources(), emit, cancelled)

    def _execute(
        self,
        items: Sequence[tuple[GenerationRequest, ResolvedGeneration]],
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> None:
        # 1. find the model and what the prompt names (requests reach here resolved: a model that is here,
        #    concrete seeds, LoRAs and the hires upscaler checked, the tags and schedule worked out; studio.resolve)
        jobs = [self._prepare(request, resolved) for request, resolved in items]
        job = jobs[0]  # jobs run together share model, LoRAs, embeddings, VAE and settings (batch_key)
        with (
            self.manager.lease(job.entry) as base,
            applied_loras(
                base, job.lora_tags, self.lora_library, LoraAdapters.of(self.manager.model_state(base), base)
            ),
            contextlib.ExitStack() as scoped,
        ):
            # 2. the task's pipeline with the embeddings, the VAE and the hires pass the request asks for
            pipe = self._pipelines(job, base, scoped)
            for other in jobs[1:]:
                self._load_embeddings(other, base)
            # prompt embeddings kept between jobs, per model, for what else shapes the text encoders' output
            prompts = self.manager.model_state(base).setdefault(PROMPT_CACHE_KEY, PromptCache())
            scoped.enter_context(caching_prompts(prompts, _encoder_scope(job)))
            model_hash = self._model_hash(job.entry)
            if len(jobs) > 1:
                self._run_together(jobs, base, pipe, model_hash, emit, cancelled)
                return
            for batch in range(job.request.batch_count):
                self._run_batch(job, batch, base, pipe, model_hash, emit, cancelled)
                if cancelled.is_set():
                    raise JobCancelled

    def _prepare(self, request: GenerationRequest, resolved: ResolvedGeneration) -> _Generation:
        """The model entry, sampler schedule, runner, LoRAs, VAE and embeddings of one generation."""
        # <lora:name:weight> tags: hashed before loading; the encoder gets the prompt without them, with the
        # concrete schedule
        prompt, lora_tags = resolved.prompt, list(resolved.loras)
        # a VAE of models/VAE/ and the embeddings the prompts name (pipelines/vae.py, pipelines/embeddings.py)
        vae_entry = self.vae_library.get(request.vae) if request.vae else None
        return _Generation(
            request=request,
            entry=self.registry.get(request.model),
            resolved=resolved,
            counter=_StepCounter(request.steps_per_batch, request.batch_count),
            run=runner_for(request),
            hires=request if isinstance(request, Txt2ImgRequest) and request.enable_hr else None,
            encoded=request.model_copy(update={"prompt": prompt, "schedule_type": resolved.schedule}),
            lora_tags=lora_tags,
            lora_params=self.lora_library.infotext_pairs(lora_tags),
            vae_entry=vae_entry,
            embeddings=self.embedding_library.named_in([prompt, request.negative_prompt]),
            addon_params={**self.vae_library.infotext_pairs(vae_entry), **_option_params(request)},
        )

    def _pipelines(
        self, job: _Generation, base: DiffusionPipeline, scoped: contextlib.ExitStack
    ) -> DiffusionPipeline:
        """The task's pipeline; the embeddings are loaded (and the prompts rewritten), the VAE swapped in for the
        job and, with hires fix, the runner set to the two-pass one."""
        entry, request = job.entry, job.request
        pipe = task_pipeline(self.manager, base, entry, request.task)
        state = self.manager.model_state(base)
        self._load_embeddings(job, base)
        vae = cached_vae(job.vae_entry, base, state) if job.vae_entry is not None else None
        second: list[DiffusionPipeline] = []
        if job.hires is not None:  # the second pass runs on the model's img2img pipeline (shared weights)
            img2img = task_pipeline(self.manager, base, entry, "img2img")
            second.append(img2img)
            job.run = hires_runner(
                img2img,
                job.hires.hr_upscaler,
                models_dir=self.registry.models_dir,
                device=self.manager.device.device,
                cache=self.upscalers,
            )
        scoped.enter_context(swapped_vae([base, pipe, *second], vae))
        return pipe

    def _load_embeddings(self, job: _Generation, base: DiffusionPipeline) -> None:
        """Load the embeddings the job's prompts name (those that fit the model) and rewrite its prompts to them."""
        if not job.embeddings:
            return
        tokens = load_embeddings(base, job.embeddings, self.manager.model_state(base))
        job.addon_params.update(
            self.embedding_library.infotext_pairs([e for e in job.embeddings if e.name in tokens])
        )
        job.encoded = job.encoded.model_copy(
            update={
                "prompt": rewrite_prompt(job.encoded.prompt, tokens),
                "negative_prompt": rewrite_prompt(job.encoded.negative_prompt, tokens),
            }
        )

    def _run_batch(
        self,
        job: _Generation,
        batch: int,
        base: DiffusionPipeline,
        pipe: DiffusionPipeline,
        model_hash: str | None,
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> None:
        """Sample one batch of the job and hand over its images, each with its infotext."""
        request = job.request
        # 3. the seeds of this batch: image i of the job uses seed + i
        seeds = job.resolved.batch_seeds(batch, request.batch_size)

        on_step = self._step_reporter(job, job.counter, emit, cancelled)
        # 4. sample
        images = self._sampled(job, base, lambda: job.run(pipe, job.encoded, seeds, on_step))
        job.counter.next_batch()
        face_params: dict[str, object] = {}
        if request.restore_faces:
            images, face_params = self._restore_faces(images)
        self._hand_over(job, seeds, images, model_hash, emit, face_params=face_params)

    def _run_together(
        self,
        jobs: Sequence[_Generation],
        base: DiffusionPipeline,
        pipe: DiffusionPipeline,
        model_hash: str | None,
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> None:
        """Several users' jobs (one batch each, the same batch_key) sampled as one batch. Their prompts are
        encoded one by one and stacked; jobs whose embeddings differ in length run as separate batches, so every
        picture is the one it would be alone (within the rounding of batched maths)."""
        lead = jobs[0]
        with torch.inference_mode():
            embeds = [
                prompt_embeddings(
                    pipe, j.encoded.prompt, j.encoded.negative_prompt, clip_skip=j.request.clip_skip
                )
                for j in jobs
            ]
        groups = same_length_groups(embeds)
        counter = _StepCounter(lead.request.steps_per_batch, len(groups))
        for group in groups:
            seeds = [seed for slot in group for seed in jobs[slot].resolved.seeds]
            stacked = stacked_embeds(
                [embeds[slot] for slot in group], [len(jobs[slot].resolved.seeds) for slot in group]
            )
            on_step = self._step_reporter(lead, counter, emit, cancelled)
            images = self._sampled(
                lead, base, functools.partial(run_txt2img, pipe, lead.encoded, seeds, on_step, embeds=stacked)
            )
            counter.next_batch()
            start = 0
            for slot in group:
                count = len(jobs[slot].resolved.seeds)
                self._hand_over(
                    jobs[slot],
                    seeds[start : start + count],
                    images[start : start + count],
                    model_hash,
                    emit,
                    slot=slot,
                )
                start += count
            if cancelled.is_set():
                raise JobCancelled

    def _sampled(
        self, job: _Generation, base: DiffusionPipeline, sample: Callable[[], list[Image.Image]]
    ) -> list[Image.Image]:
        """`sample()` with the job's tiling set for this run only (the pipeline is shared); out of memory, what
        can be freed is freed before the next job."""
        try:
            with tiled(base, job.request.tiling):
                return sample()
        except torch.cuda.OutOfMemoryError:
            self.manager.free_memory(keep=job.entry.name)
            raise

    def _step_reporter(
        self,
        job: _Generation,
        counter: _StepCounter,
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> Callable[[int, int, torch.Tensor], bool]:
        def on_step(step: int, steps: int, latents: torch.Tensor) -> bool:
            if cancelled.is_set():
                return False
            preview = None
            # every N steps, none extra at the end: the finished image shows then
            if self.preview_every and step % self.preview_every == 0:
                preview = self.previews(latents, job.entry.family)
            done, total = counter.at(step, steps)
            emit(Progress(step=done, total=total, preview=preview))
            return True

        return on_step

    def _hand_over(
        self,
        job: _Generation,
        seeds: Sequence[int],
        images: Sequence[Image.Image],
        model_hash: str | None,
        emit: Callable[[object], None],
        *,
        face_params: Mapping[str, object] | None = None,
        slot: int = 0,
    ) -> None:
        """5. hand over each image with its infotext (slot: which of the jobs run together it belongs to)."""
        request, entry = job.request, job.entry
        for seed, image in zip(seeds, images, strict=True):
            subseed = matching_subseed(request.seed, request.subseed, seed) if request.subseed != -1 else -1
            resolved = request.model_copy(
                update={"seed": seed, "subseed": subseed, "schedule_type": job.resolved.schedule}
            )
            params = request_params(
                resolved,
                seed=seed,
                model_name=entry.name,
                model_hash=model_hash,
                version=INFOTEXT_VERSION,
                extra={**task_params(request), **(face_params or {}), **job.lora_params, **job.addon_params},
            )
            infotext = format_infotext(request.prompt, request.negative_prompt, params)
            extra = {"request": request_summary(resolved)}
            emit(
                GeneratedImage(
                    image=image, seed=seed, infotext=infotext, model=entry.name, extra=extra, slot=slot
                )
            )

    def _restore_faces(self, images: list[Image.Image]) -> tuple[list[Image.Image], dict[str, object]]:
        """Generated pictures with their faces restored by the first face restorer in models/ (A1111's
        restore_faces), and the infotext pair that says which; with none on disk, the pictures as they are and a
        pair that says so."""
        from pipelines.retouch.faces import list_face_restorers, restore_faces

        models_dir = self.registry.models_dir
        names = list_face_restorers(models_dir)
        if not names:
            return images, {FACE_RESTORATION_KEY: NO_FACE_RESTORER}
        device = str(self.manager.device.device)
        restored = [
            restore_faces(
                image, model=names[0], models_dir=models_dir, device=device, cache=self.face_restorers
            )
            for image in images
        ]
        return restored, {FACE_RESTORATION_KEY: names[0]}

    def hires_upscalers(self) -> list[str]:
        """Names hires fix accepts: the latent modes, then Lanczos, Nearest and the model upscalers on disk."""
        from pipelines.retouch.upscale import list_upscalers

        return [*LATENT_UPSCALE_MODES, *list_upscalers(self.registry.models_dir)]

    def _retouch_resources(self) -> RetouchResources:
        return RetouchResources(
            registry=self.registry,
            manager=self.manager,
            models_dir=self.registry.models_dir,
            device=self.manager.device.device,
            upscalers=self.upscalers,
            face_restorers=self.face_restorers,
            model_hash=self._model_hash,
            preview_every=self.preview_every,
        )

    def _model_hash(self, entry: ModelEntry) -> str | None:
        if entry.path is None or not entry.path.is_file():
            return None
        with self._hash_lock:
            if entry.name not in self._hashes:
                self._hashes[entry.name] = file_sha256_10(entry.path)
            return self._hashes[entry.name]


def _user_facing(error: BaseException, request: GenerationRequest | RetouchRequest) -> BaseException:
    """Turn an exception from a run into one whose message a user can act on."""
    if isinstance(error, JobCancelled | JobFailed):
        return error
    out_of_memory = isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()
    if out_of_memory and isinstance(request, RetouchRequest):
        width, height = request.output_size
        return JobFailed(
            f"Out of GPU memory retouching to {width}×{height}. Try a smaller scale or tile size, or keep fewer "
            "models loaded (--max-gpu-models)."
        )
    if out_of_memory:
        return JobFailed(
            f"Out of GPU memory at {request.width}×{request.height}, batch size {request.batch_size}. "
            "Try a smaller size or batch size, or keep fewer models loaded (--max-gpu-models)."
        )
    if isinstance(error, ModelLoadError | ValueError | KeyError):
        return JobFailed(str(error).strip("'\""))
    log.error("job failed", exc_info=error)
    return JobFailed(f"Generation failed: {type(error).__name__}: {error}")


def task_params(request: GenerationRequest) -> dict[str, object]:
    """A1111 infotext pairs that only image-to-image tasks have (denoising strength is written by core)."""
    if isinstance(request, InpaintRequest):
        pairs: dict[str, object] = {
            "Masked content": request.masked_content,
            "Inpaint area": request.inpaint_area.capitalize(),
        }
        if request.inpaint_area == "only masked":
            pairs["Masked area padding"] = request.only_masked_padding
        if request.invert_mask:
            pairs["Mask mode"] = "Inpaint not masked"
        return pairs
    if isinstance(request, Img2ImgRequest):
        return {"Resize mode": request.resize_mode.capitalize()}
    return {}


def _option_params(request: GenerationRequest) -> dict[str, object]:
    """A1111 infotext pairs of the options a request carries, present only when they are not the default."""
    pairs: dict[str, object] = {}
    if request.clip_skip > 1:
        pairs["Clip skip"] = request.clip_skip
    if request.eta_noise_seed_delta:
        pairs["ENSD"] = request.eta_noise_seed_delta
    return pairs


def _encoder_scope(job: _Generation) -> Hashable:
    """What changes the text encoders' output besides the prompts: the LoRAs applied (names, weights, file
    hashes) and the embeddings loaded (their infotext pairs carry their hashes)."""
    return (
        tuple((tag.name, tag.weight) for tag in job.lora_tags),
        tuple(sorted((str(k), str(v)) for k, v in {**job.lora_params, **job.addon_params}.items())),
    )
