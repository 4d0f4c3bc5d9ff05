"""Face restoration with GFPGAN / RestoreFormer-family weights (any face model spandrel recognises) that the user
put in ``models/face_restore/`` (or A1111's ``GFPGAN/`` and ``Codeformer/`` folders).

**Limit — no face detector.** Face restorers are trained on aligned face crops (FFHQ, 512×512). Detecting and
aligning faces needs a detector's weights (A1111 downloads RetinaFace through facexlib; OpenCV 5 no longer ships
Haar cascades), and Easel never downloads at run time. So the restorer runs on the **largest centred square** of
the image, resized to the model's 512×512 input, and the result is resized back and blended in with a feathered
edge. That suits what the tab is used for — portraits and headshots where the face fills the centre of the frame
— and does little good for small faces in a wide shot: crop to the face first. ``visibility`` blends the
restored square with the original (0 = unchanged, 1 = fully restored). An alpha channel is kept as it was.

CodeFormer weights are recognised by spandrel only with the ``spandrel-extra-arches`` package, which Easel does
not ship (its licence forbids commercial use); such a file is refused with a clear message.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pipelines.retouch import RetouchError
from pipelines.retouch.pixels import merge_alpha, rgb_to_tensor, split_alpha, tensor_to_rgb
from pipelines.retouch.weights import ModelCache, find_model_files, get_model, pick_model_file

if TYPE_CHECKING:
    import torch
    from spandrel import ImageModelDescriptor

logger = logging.getLogger(__name__)

__all__ = ["FACE_FOLDERS", "FACE_INPUT_SIZE", "list_face_restorers", "restore_faces"]

# Where face restorer weights are looked for, under models_dir (Easel's folder first, then A1111's).
FACE_FOLDERS = ("face_restore", "GFPGAN", "Codeformer")
FACE_INPUT_SIZE = 512
# Files in A1111's GFPGAN/ folder that are facexlib's detection/parsing helpers, not restorers.
_HELPER_PREFIXES = ("detection_", "parsing_")
SUGGESTED = "GFPGANv1.4"


def list_face_restorers(models_dir: str | Path) -> list[str]:
    """Face restorer model files found under ``models_dir`` (names without extension)."""
    return sorted(_restorers(models_dir), key=str.lower)


def restore_faces(
    image: Image.Image,
    *,
    model: str = "",
    visibility: float = 1.0,
    models_dir: str | Path,
    device: str = "cpu",
    cache: ModelCache | None = None,
) -> Image.Image:
    """Restore the face in the centre of ``image`` with the face model ``model`` (default: the first found).

    Raises :class:`MissingWeights` when no such weights are on disk (the message says what to download and where),
    :class:`RetouchError` for a bad ``visibility`` or a file that is not a face restoration model.
    """
    # 1. check inputs
    if (
        isinstance(visibility, bool)
        or not isinstance(visibility, int | float)
        or not math.isfinite(visibility)
    ):
        raise RetouchError(f"visibility must be a number from 0 to 1, got {visibility!r}")
    if not 0.0 <= visibility <= 1.0:
        raise RetouchError(f"visibility must be from 0 to 1, got {visibility:g}")
    path = _find(models_dir, model)
    rgb, alpha = split_alpha(image)
    if visibility == 0.0:
        return merge_alpha(rgb, alpha)

    # 2. load the restorer
    restorer = get_model(path, device, cache)
    if restorer.purpose != "FaceSR" or restorer.input_channels != 3 or restorer.output_channels != 3:
        raise RetouchError(
            f"{path.name} is not a face restoration model (spandrel sees a {restorer.architecture.name} "
            f"{restorer.purpose} model); upscalers go in models/upscalers/"
        )

    # 3. the centred square, at the model's input size
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    box = (left, top, left + side, top + side)
    crop = rgb.crop(box)
    face_in = crop.resize((FACE_INPUT_SIZE, FACE_INPUT_SIZE), Image.Resampling.LANCZOS)

    # 4. restore
    import torch

    dtype = torch.float16 if device.startswith("cuda") and restorer.supports_half else torch.float32
    if dtype != next(restorer.model.parameters()).dtype:
        restorer.to(dtype)
    with torch.inference_mode():
        out = tensor_to_rgb(_run(restorer, rgb_to_tensor(np.asarray(face_in), device, dtype)))
    restored = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")
    restored = restored.resize((side, side), Image.Resampling.LANCZOS)

    # 5. blend back: visibility × a mask feathered towards the square's edges (inside the image only)
    weight = _feather(side, box, rgb.size) * np.float32(visibility)
    original = np.asarray(crop, np.float32)
    blended = original + (np.asarray(restored, np.float32) - original) * weight[..., None]
    result = rgb.copy()
    result.paste(Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), "RGB"), box[:2])
    logger.info(
        "restored the centred %dx%d square with %s (visibility %g)", side, side, path.name, visibility
    )
    return merge_alpha(result, alpha)


def _run(restorer: ImageModelDescriptor[Any], x: torch.Tensor) -> torch.Tensor:
    """One restoration of a ``(1, 3, 512, 512)`` batch in [0, 1].

    spandrel's GFPGAN call passes [0, 1] pixels straight to the network, but GFPGAN works in [-1, 1] (as its own
    inference code and A1111's wrapper normalise); so GFPGAN runs here on the module directly, with the fixed noise
    buffers of its StyleGAN decoder (deterministic). Other architectures (RestoreFormer) normalise in spandrel.
    """
    if restorer.architecture.id == "GFPGAN":
        out = restorer.model(x * 2 - 1, return_rgb=False, randomize_noise=False)[0]
        return ((out + 1) / 2).clamp(0, 1)
    return restorer(x)


def _restorers(models_dir: str | Path) -> dict[str, Path]:
    found = find_model_files(models_dir, FACE_FOLDERS)
    return {n: p for n, p in found.items() if not n.lower().startswith(_HELPER_PREFIXES)}


def _find(models_dir: str | Path, model: str) -> Path:
    restorers = _restorers(models_dir)
    folder = f"models/{FACE_FOLDERS[0]}"  # as users see it: never the server's absolute path
    return pick_model_file(
        restorers,
        model,
        default="",  # the first by name
        none=f"Face restoration needs {SUGGESTED} weights: put {SUGGESTED}.safetensors (or .pth) into {folder}/ "
        "(GFPGAN and RestoreFormer weights work; A1111's models/GFPGAN/ folder is read too)",
        unknown=f"Face restoration model {model!r} is not on disk: put {model}.safetensors (or .pth) into {folder}/",
    )


def _feather(side: int, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Weights for the square: 1 inside, ramping to 0 over ~1/16 of the side at edges that lie inside the image."""
    ramp = max(1, side // 16)
    edge = np.minimum((np.arange(side, dtype=np.float32) + 0.5) / ramp, 1.0)
    ones = np.ones(side, np.float32)
    left, top, right, bottom = box
    wx = np.minimum(edge if left > 0 else ones, edge[::-1] if right < size[0] else ones)
    wy = np.minimum(edge if top > 0 else ones, edge[::-1] if bottom < size[1] else ones)
    return wy[:, None] * wx[None, :]
