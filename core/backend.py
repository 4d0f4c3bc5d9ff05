"""The seam between the Studio (queue, users, gallery) and whatever runs the models.

A Backend turns one validated request into a stream of events. Today's backend runs the pipeline
manager in this process (pipelines/backend.py); a remote backend (GPU replicas) would yield the same
events, so nothing above this seam changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

from core.errors import JobCancelled as JobCancelled  # the backend's errors, importable from its contract
from core.errors import JobFailed as JobFailed
from core.requests import GenerationRequest
from core.resolved import ResolvedGeneration
from core.retouch import RetouchRequest


@dataclass(frozen=True)
class ModelInfo:
    """A model as the front ends see it."""

    name: str
    label: str
    family: str | None
    inpaint: bool = False
    refusal: str | None = None
    demo: bool = False
    inpaint_sibling: str | None = None  # name of this model's inpainting version, when there is one


@dataclass(frozen=True)
class LoraInfo:
    """A LoRA file a prompt can name with <lora:name:weight>."""

    name: str
    path: str  # below the models folder, e.g. "Lora/film-grain.safetensors"
    refusal: str | None = None  # why it cannot be used (pickle format, duplicate name)


@dataclass(frozen=True)
class EmbeddingInfo:
    """A textual-inversion embedding a prompt can use by its name (A1111's `/embeddings` item)."""

    name: str  # file stem: the word a prompt uses
    path: str  # below the models folder, e.g. "embeddings/my-style.safetensors"
    refusal: str | None = None  # why it cannot be used (pickle format, unreadable, duplicate name)
    vectors: int = 0  # tokens it stands for
    shape: int = 0  # width of each vector (SDXL: both encoders' widths added, as A1111 reports)
    sdxl: bool = False  # made for SDXL's two text encoders (clip_l + clip_g)
    step: int | None = None  # training step, when the file says
    sd_checkpoint: str | None = None  # hash of the model it was trained on, when the file says
    sd_checkpoint_name: str | None = None


@dataclass(frozen=True)
class VaeInfo:
    """A VAE file or folder under models/VAE/, selectable per job (A1111's `sd_vae`)."""

    name: str  # the file (or folder) name, as A1111 lists it, e.g. "vae-ft-mse.safetensors"
    path: str  # below the models folder
    refusal: str | None = None


@dataclass(frozen=True)
class Progress:
    """Sampling progress of the running job. `step` counts finished steps across the whole job."""

    step: int
    total: int
    preview: Image.Image | None = None


@dataclass(frozen=True)
class GeneratedImage:
    """One finished image with everything the gallery needs to save it."""

    image: Image.Image
    seed: int
    infotext: str
    model: str
    extra: Mapping[str, object] = field(default_factory=dict)
    slot: int = 0  # jobs run together (Backend.run_together): which of them the image belongs to


@dataclass(frozen=True)
class ExportedFile:
    """A file a job makes that is not a gallery picture (a retouch SVG, a zip of logo PNGs)."""

    name: str  # a plain file name, e.g. "logo.svg"
    data: bytes
    media_type: str


@dataclass(frozen=True)
class RetouchTools:
    """What the retouch operations can use here: resamplers and model files found under models/.

    `missing` maps an operation ("restore_faces", ...) to what to download and where, when it has no model.
    """

    upscalers: tuple[str, ...] = ("Lanczos", "Nearest")
    face_restorers: tuple[str, ...] = ()
    segmenters: tuple[str, ...] = ()
    missing: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendStatus:
    """What the header line shows: where the models run and what is loaded."""

    device: str
    loaded_models: tuple[str, ...] = ()
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None


BackendEvent = Progress | GeneratedImage | ExportedFile


class Backend(Protocol):
    def run(
        self, request: GenerationRequest | RetouchRequest, resolved: ResolvedGeneration | None = None
    ) -> Iterator[BackendEvent]:
        """Run a job. `resolved` is what a generation request comes to, as the Studio worked it out at submit
        (built from the request when not given). Closing the iterator early cancels it within one sampling
        step."""
        ...

    def models(self, refresh: bool = False) -> list[ModelInfo]:
        """Models this backend can run, including refused ones (with the reason)."""
        ...

    def loras(self, refresh: bool = False) -> list[LoraInfo]:
        """LoRA files prompts can use, including refused ones (with the reason)."""
        ...

    def check_loras(self, names: Sequence[str]) -> None:
        """ValueError (with the available names) when a LoRA is unknown or cannot be used."""
        ...

    def embeddings(self, refresh: bool = False) -> list[EmbeddingInfo]:
        """Textual-inversion embeddings prompts can name, including refused ones (with the reason)."""
        ...

    def vaes(self, refresh: bool = False) -> list[VaeInfo]:
        """VAEs a job can use instead of its model's own, including refused ones (with the reason)."""
        ...

    def default_model(self) -> str | None:
        """The model used when a request names none."""
        ...

    def status(self) -> BackendStatus: ...

    def retouch_tools(self, refresh: bool = False) -> RetouchTools:
        """Upscalers, face restorers and segmentation models the retouch operations can use."""
        ...


@runtime_checkable
class RunsTogether(Protocol):
    """A backend that can sample several users' jobs as one batch (the GPU idles at batch 1)."""

    def batch_key(
        self, request: GenerationRequest | RetouchRequest, resolved: ResolvedGeneration | None
    ) -> Hashable:
        """What jobs must share to run together; None when this one runs alone."""
        ...

    def run_together(
        self, items: Sequence[tuple[GenerationRequest, ResolvedGeneration]]
    ) -> Iterator[BackendEvent]:
        """Run jobs of one batch key as one batch; each GeneratedImage's `slot` is the index of its job."""
        ...

    def suggested_batch(self) -> int:
        """How many images one batch may hold here (from the device's free memory; 1 where batching gains
        nothing)."""
        ...
