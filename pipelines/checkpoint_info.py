"""What a single-file ``.safetensors`` checkpoint is, read from its header only (key names and shapes).

Never loads tensors: ``safe_open`` parses the JSON header and ``get_slice(key).get_shape()`` gives a shape
without reading data, so a scan of many multi-GB files stays cheap. The family comes from diffusers'
``infer_diffusers_model_type`` — the same function ``from_single_file`` relies on — run on a mapping that
answers its key and shape questions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Family = Literal["sd1", "sd2", "sdxl"]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."

# diffusers model type → (family, inpaint)
_SUPPORTED: dict[str, tuple[Family, bool]] = {
    "v1": ("sd1", False),
    "inpainting": ("sd1", True),
    "v2": ("sd2", False),
    "inpainting_v2": ("sd2", True),
    "xl_base": ("sdxl", False),
    "xl_inpaint": ("sdxl", True),
}
_NOT_SUPPORTED = {
    "xl_refiner": "an SDXL refiner (a second img2img stage), not a base model",
    "playground-v2-5": "Playground v2.5 (needs EDM sampling), not supported",
    "instruct-pix2pix": "an InstructPix2Pix model, not supported",
    "upscale": "the SD x4 upscaler, not a text-to-image model",
}
# Text encoder keys diffusers' single-file loader reads, per family.
_TEXT_ENCODER_KEYS: dict[Family, tuple[str, ...]] = {
    "sd1": ("cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",),
    "sd2": ("cond_stage_model.model.token_embedding.weight",),
    "sdxl": (
        "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight",
        "conditioner.embedders.1.model.positional_embedding",
    ),
}


@dataclass(frozen=True)
class CheckpointInfo:
    """Family and inpaint flag of a checkpoint, or why it cannot be used (``refusal``)."""

    family: Family | None
    inpaint: bool = False
    model_type: str | None = None  # diffusers' name for it ("v1", "xl_base", ...)
    refusal: str | None = None


class _Shaped:
    __slots__ = ("shape", "ndim")

    def __init__(self, shape: tuple[int, ...]) -> None:
        import torch

        self.shape = torch.Size(shape)
        self.ndim = len(shape)


class ShapeMapping(Mapping[str, _Shaped]):
    """Key → object with ``.shape``, enough for ``infer_diffusers_model_type``'s questions."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        self._shapes = shapes

    def __getitem__(self, key: str) -> _Shaped:
        return _Shaped(self._shapes[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def __contains__(self, key: object) -> bool:
        return key in self._shapes


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape from a ``.safetensors`` header; no tensor data is read."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}


def classify_shapes(shapes: Mapping[str, tuple[int, ...]]) -> CheckpointInfo:
    """Family/inpaint of a checkpoint in the original (LDM / A1111) layout, from its key names and shapes."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    try:
        model_type = infer_diffusers_model_type(ShapeMapping(shapes))
    except Exception as error:  # a branch for some other architecture wanted tensor data
        logger.debug("infer_diffusers_model_type failed: %s", error)
        return CheckpointInfo(
            None, refusal="unknown architecture: not a Stable Diffusion 1.x, 2.x or XL checkpoint"
        )
    if model_type in _NOT_SUPPORTED:
        return CheckpointInfo(None, model_type=model_type, refusal=_NOT_SUPPORTED[model_type])
    if model_type not in _SUPPORTED:
        return CheckpointInfo(
            None,
            model_type=model_type,
            refusal=f"unsupported architecture ({model_type}); Easel runs SD 1.x, SD 2.x and SDXL checkpoints",
        )
    family, inpaint = _SUPPORTED[model_type]
    if not any(key.startswith(UNET_PREFIX) for key in shapes):
        return CheckpointInfo(
            None,
            model_type=model_type,
            refusal="not a full checkpoint (no UNet weights): a LoRA, VAE, embedding or other add-on?",
        )
    missing = []
    if not any(key.startswith(VAE_PREFIX) for key in shapes):
        missing.append("VAE")
    if not all(key in shapes for key in _TEXT_ENCODER_KEYS[family]):
        missing.append("text encoder")
    if missing:
        return CheckpointInfo(
            family,
            inpaint,
            model_type,
            refusal=f"checkpoint has no {' or '.join(missing)} weights (or stores them in a layout diffusers "
            "cannot read); use a full checkpoint",
        )
    return CheckpointInfo(family, inpaint, model_type)


def classify_file(path: Path) -> CheckpointInfo:
    """Classify a ``.safetensors`` file from its header; an unreadable file is refused, never raised."""
    try:
        shapes = read_shapes(path)
    except Exception as error:
        return CheckpointInfo(None, refusal=_unreadable(error))
    return classify_shapes(shapes)


def header_refusal(path: Path) -> str | None:
    """Why a ``.safetensors`` file (a checkpoint or an add-on such as a LoRA) cannot be used because its header
    cannot be read — a header length beyond the file or the format's limit, bad JSON, bad offsets — else None.
    Reads the header only, as a scan does for checkpoints."""
    try:
        read_shapes(path)
    except Exception as error:
        return _unreadable(error)
    return None


def _unreadable(error: Exception) -> str:
    return f"unreadable .safetensors file ({type(error).__name__}: {error})"
