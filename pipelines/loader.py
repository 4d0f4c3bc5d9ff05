"""Load a registry entry into a diffusers pipeline, offline-safe and without ever unpickling anything.

* Single ``.safetensors`` file: ``from_single_file(path, config=<folder>, local_files_only=True)``, where the
  folder is a temporary copy of the family's shipped config (``pipelines/configs/``) with the sizes that
  differ read from the checkpoint's tensor shapes (channel widths, layer counts, attention layout,
  cross-attention and text-encoder widths) — as ComfyUI's model detection does. A full-size checkpoint gets
  the shipped values back; a narrow test checkpoint gets its own; both take the same path
  (pipelines/config_from_shapes.py).
* Diffusers folder: ``from_pretrained(folder, local_files_only=True, use_safetensors=True)``.
* Hub id: ``from_pretrained(repo_id)``; when the network is not allowed and the files are not cached, a
  :class:`ModelLoadError` says so.
* Demo: the tiny random-weight model, written on first use, then loaded as a single file.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.errors import LoadFailed
from pipelines.checkpoint_info import UNET_PREFIX, VAE_PREFIX, Family, classify_shapes, read_shapes
from pipelines.config_folders import materialize_config
from pipelines.config_from_shapes import apply_overrides, derive_overrides
from pipelines.registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, ModelEntry, folder_family, pickle_refusal

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

logger = logging.getLogger(__name__)

_PIPELINES = {
    ("sd1", False): "StableDiffusionPipeline",
    ("sd2", False): "StableDiffusionPipeline",
    ("sdxl", False): "StableDiffusionXLPipeline",
    ("sd1", True): "StableDiffusionInpaintPipeline",
    ("sd2", True): "StableDiffusionInpaintPipeline",
    ("sdxl", True): "StableDiffusionXLInpaintPipeline",
}


class ModelLoadError(LoadFailed):
    """A model could not be loaded; the message says what went wrong and what to do."""


def pipeline_class(family: Family, inpaint: bool) -> type[DiffusionPipeline]:
    """The family's base pipeline class (text-to-image, or inpainting for inpaint checkpoints)."""
    import diffusers

    return getattr(diffusers, _PIPELINES[family, inpaint])


def _pipeline_kwargs(family: Family) -> dict[str, Any]:
    """No safety checker (SD 1/2) and no invisible watermark (SDXL), as in A1111."""
    if family == "sdxl":
        return {"add_watermarker": False}
    return {"safety_checker": None, "requires_safety_checker": False}


def load_pipeline(
    entry: ModelEntry,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    local_files_only: bool = True,
) -> DiffusionPipeline:
    """Load ``entry`` as its family's pipeline on ``device`` in ``dtype``; raises :class:`ModelLoadError`."""
    if entry.refusal:
        raise ModelLoadError(f"Model {entry.name!r} cannot be loaded: {entry.refusal}")
    started = time.perf_counter()
    if entry.source == "demo":
        pipe = _load_demo(entry, dtype)
    elif entry.source == "file":
        pipe = _load_single_file(entry, _require_path(entry), dtype)
    elif entry.source == "folder":
        pipe = _load_folder(entry, _require_path(entry), dtype)
    elif entry.source == "hub":
        pipe = _load_hub(entry, dtype, local_files_only)
    else:
        raise ModelLoadError(f"Model {entry.name!r} has an unknown source {entry.source!r}")
    try:
        pipe = pipe.to(device)
    except torch.cuda.OutOfMemoryError:
        raise  # the caller frees memory (evicts) and may retry
    except (RuntimeError, AssertionError) as error:
        raise ModelLoadError(
            f"Model {entry.name!r} loaded but could not be moved to {device}: {error}"
        ) from error
    logger.info(
        "loaded %s (%s) on %s in %.1fs",
        entry.name,
        type(pipe).__name__,
        device,
        time.perf_counter() - started,
    )
    return pipe


def shown_path(entry: ModelEntry) -> str:
    """Where a model lives as users see it, relative to models/ (never the server's absolute path)."""
    if entry.source == "hub" or entry.path is None:
        return f"the local Hub copy of {entry.name}"
    return f"models/{entry.name}{entry.path.suffix if entry.source == 'file' else ''}"


def _require_path(entry: ModelEntry) -> Path:
    if entry.path is None or not entry.path.exists():
        raise ModelLoadError(
            f"Model {entry.name!r}: {shown_path(entry)} no longer exists; rescan the models folder"
        )
    return entry.path


# -- single file -------------------------------------------------------------------------------------------


def _load_single_file(entry: ModelEntry, path: Path, dtype: torch.dtype) -> DiffusionPipeline:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelLoadError(f"Model {entry.name!r} cannot be loaded: {pickle_refusal(path.suffix.lower())}")
    if path.suffix.lower() != SAFETENSORS_SUFFIX:
        raise ModelLoadError(
            f"Model {entry.name!r}: only .safetensors single files are loaded, not {path.name}"
        )
    try:
        shapes = read_shapes(path)
    except Exception as error:
        raise ModelLoadError(f"Model {entry.name!r}: cannot read {path.name} ({error})") from error
    info = classify_shapes(shapes)  # the file may have changed since the scan: trust the weights
    if info.refusal or info.family is None:
        raise ModelLoadError(f"Model {entry.name!r} cannot be loaded: {info.refusal}")
    family, inpaint = info.family, info.inpaint
    try:
        overrides = derive_overrides(shapes, family)
    except (KeyError, IndexError, ValueError) as error:
        raise ModelLoadError(
            f"Model {entry.name!r}: its weights do not have the usual {family.upper()} layout ({error})"
        ) from error
    cls = pipeline_class(family, inpaint)
    with tempfile.TemporaryDirectory(prefix="easel-config-") as tmp:
        config_dir = materialize_config(family, inpaint, Path(tmp) / "config")
        apply_overrides(config_dir, overrides)
        if family == "sd2" and not inpaint and sd2_prediction_type(path) == "epsilon":
            _use_sd2_base_settings(config_dir)
        try:
            pipe = cls.from_single_file(
                str(path),
                config=str(config_dir),
                local_files_only=True,
                dtype=dtype,
                **_pipeline_kwargs(family),
            )
        except Exception as error:
            raise ModelLoadError(
                f"Model {entry.name!r} could not be loaded from {path.name}: {error}"
            ) from error
    _check_all_weights_used(entry, pipe, shapes)
    return pipe


SD2_V_PROBE = UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"


def sd2_prediction_type(path: Path) -> str:
    """SD 2.x comes as 768-v (v-prediction) and 512-base (epsilon); the weights do not say which.

    ComfyUI's test: one LayerNorm bias of the last output block is spread wider in v-prediction models
    (std > 0.09). Reads that one small tensor from the .safetensors file; defaults to v-prediction.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if SD2_V_PROBE not in f.keys():
                return "v_prediction"
            bias = f.get_tensor(SD2_V_PROBE).float()
    except Exception as error:  # unreadable here means unreadable for the loader too; let it report
        logger.debug("SD 2.x prediction probe failed: %s", error)
        return "v_prediction"
    return "v_prediction" if torch.std(bias, unbiased=False).item() > 0.09 else "epsilon"


def _use_sd2_base_settings(config_dir: Path) -> None:
    """Switch the shipped SD 2.x 768-v config to SD 2.x-base (512 px, epsilon prediction)."""
    import json

    for name, values in (
        ("scheduler/scheduler_config.json", {"prediction_type": "epsilon"}),
        ("unet/config.json", {"sample_size": 64}),
        ("vae/config.json", {"sample_size": 512}),
    ):
        file = config_dir / name
        config = json.loads(file.read_text(encoding="utf-8"))
        config.update(values)
        file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    logger.info("SD 2.x checkpoint looks like a 512-base (epsilon prediction) model")


def _count(shapes: Mapping[str, tuple[int, ...]], prefix: str, skip: str = "\0") -> int:
    total = 0
    for key, shape in shapes.items():
        if key.startswith(prefix) and not key.startswith(skip):
            n = 1
            for dim in shape:
                n *= dim
            total += n
    return total


def _check_all_weights_used(entry: ModelEntry, pipe: Any, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """diffusers loads single files non-strictly: a config that does not fit would leave random weights.
    The UNet and VAE of the built pipeline must hold exactly as many numbers as the checkpoint has."""
    for name, prefix, skip in (("unet", UNET_PREFIX, "\0"), ("vae", VAE_PREFIX, VAE_PREFIX + "loss.")):
        expected = _count(shapes, prefix, skip)
        actual = sum(p.numel() for p in getattr(pipe, name).parameters())
        if expected != actual:
            raise ModelLoadError(
                f"Model {entry.name!r}: its {name.upper()} weights ({expected:,} values) do not fit the "
                f"architecture read from them ({actual:,}); this checkpoint's layout is not supported"
            )


# -- folders, hub, demo ------------------------------------------------------------------------------------

_VARIANT_WEIGHTS = re.compile(r"^(?:diffusion_pytorch_model|model)\.(\w+)\.safetensors$")


def _folder_variant(folder: Path) -> str | None:
    """``"fp16"`` when the components only have variant weights (``*.fp16.safetensors``)."""
    plain = variants = 0
    found: set[str] = set()
    for file in folder.glob("*/*.safetensors"):
        match = _VARIANT_WEIGHTS.match(file.name)
        if match:
            variants += 1
            found.add(match.group(1))
        else:
            plain += 1
    if plain or not variants or len(found) != 1:
        return None
    return found.pop()


def _load_folder(entry: ModelEntry, folder: Path, dtype: torch.dtype) -> DiffusionPipeline:
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"Model {entry.name!r}: {shown_path(entry)} has no model_index.json (not a diffusers folder)"
        )
    family, inpaint, refusal = folder_family(folder)  # the folder may have changed since the scan
    if refusal or family is None:
        raise ModelLoadError(f"Model {entry.name!r} cannot be loaded: {refusal}")
    cls = pipeline_class(family, inpaint)
    try:
        return cls.from_pretrained(
            str(folder),
            local_files_only=True,
            use_safetensors=True,
            dtype=dtype,
            variant=_folder_variant(folder),
            **_pipeline_kwargs(family),
        )
    except Exception as error:
        reason = str(error).replace(str(folder), shown_path(entry))  # no server paths in what users see
        raise ModelLoadError(
            f"Model {entry.name!r} could not be loaded from {shown_path(entry)}: {reason}"
        ) from error


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _load_hub(entry: ModelEntry, dtype: torch.dtype, local_files_only: bool) -> DiffusionPipeline:
    """Download (huggingface_hub shows progress) or find in the cache, then load as a local folder."""
    from diffusers import DiffusionPipeline

    offline = local_files_only or _hub_offline()
    try:
        folder = DiffusionPipeline.download(entry.name, local_files_only=offline, use_safetensors=True)
    except Exception as error:
        if offline or _is_network_error(error):
            why = "no network / HF_HUB_OFFLINE=1" if offline else "the Hub could not be reached"
            raise ModelLoadError(
                f"Hub model {entry.name!r} is not in the local cache and could not be downloaded ({why}); "
                "download it on a machine with network (or allow the network here), or put its files in "
                "models/ as a diffusers folder or a .safetensors file"
            ) from error
        raise ModelLoadError(f"Hub model {entry.name!r} could not be downloaded: {error}") from error
    return _load_folder(entry, Path(folder), dtype)


def _is_network_error(error: BaseException) -> bool:
    names = {type(e).__name__ for e in _causes(error)}
    markers = {
        "ConnectionError",
        "ConnectError",
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "OfflineModeIsEnabled",
    }
    return bool(names & markers) or "LocalEntryNotFoundError" in names


def _causes(error: BaseException | None) -> list[BaseException]:
    chain = []
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _load_demo(entry: ModelEntry, dtype: torch.dtype) -> DiffusionPipeline:
    path = entry.path
    if path is None:
        raise ModelLoadError("the demo model has no file path")
    if not path.is_file():
        from pipelines.tiny import save_tiny

        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.partial.safetensors")
        save_tiny(partial, arch="sd1", seed=0)
        os.replace(partial, path)  # atomic: a concurrent loader sees no file or a whole one
        logger.info("wrote the demo model to %s", path)
    return _load_single_file(entry, path, dtype)
