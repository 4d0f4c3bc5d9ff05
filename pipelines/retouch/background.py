"""Cut the subject out of an image: a mask (``L``, 255 = subject) or an RGBA image with a transparent background.

Two methods:

- ``"model"``: a u2net-family segmentation model (u2net, u2netp, u2net_human_seg, silueta, isnet-general-use,
  isnet-anime, birefnet-*) — an ONNX file the user put in ``models/rembg/`` (the files rembg downloads to
  ``~/.u2net/``). It runs with onnxruntime, with rembg's pre- and post-processing: RGB resized (Lanczos) to the
  model's input size, divided by its maximum, normalised with the family's mean/std; the first output's first
  channel (through a sigmoid for BiRefNet) min-max scaled to 0..255 and resized back (Lanczos).
- ``"key"``: no model — for product shots and logos on a near-uniform background. The background colour is
  estimated from the border (a robust smooth fit, so gradients and vignetting are fine) and the background is
  *grown from the border*: the pixels within the tolerance of that colour (Lab) that connect to the border.
  A region the subject encloses goes only when it matches the background closely (the hole of a mug's handle,
  the inside of an "O"); one that is merely light (a cream label on a light-grey sweep, with its text) stays.
  Specks are dropped and the edge is softened by about a pixel. A part of the subject that touches the
  background and is within the tolerance of its colour is lost: brush it with ``keep``, or use a model.

``"auto"`` uses a model when one is on disk, else the key. Nothing is ever downloaded. ``alpha_matting`` refines the
edge with a guided filter (the image steers the mask's soft edge; rembg uses pymatting's closed-form matting,
which Easel does not ship).

Whatever the method, brush strokes refine the result last: ``keep`` (white = brushed) forces the subject,
``remove`` forces the background; where both are brushed, keep wins. :func:`cut_out` also says when the result
keeps almost nothing or almost everything (:func:`coverage_warning`), so it is checked before anything is built
on it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from core.errors import ImageInputError
from core.images import decode_image
from core.masks import mask_from_upload
from pipelines.retouch import RetouchError
from pipelines.retouch.pixels import split_alpha
from pipelines.retouch.weights import pick_model_file

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_KEPT",
    "METHODS",
    "MIN_KEPT",
    "SEGMENTER_FOLDER",
    "CutOut",
    "coverage_warning",
    "cut_out",
    "list_segmenters",
    "remove_background",
    "subject_mask",
]

Method = Literal["auto", "model", "key"]
# A brushed mask: PNG/JPEG/WebP bytes or an image; white (or painted) = brushed.
Stroke = bytes | Image.Image | None
METHODS = ("auto", "model", "key")
SEGMENTER_FOLDER = "rembg"
DEFAULT_SEGMENTER = "u2net"

# rembg's per-family preprocessing: (mean, std, default input size, sigmoid on the output)
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_FAMILIES: dict[str, tuple[tuple[float, ...], tuple[float, ...], int, bool]] = {
    "birefnet": (*_IMAGENET, 1024, True),
    "isnet": ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0), 1024, False),
    "u2net": (*_IMAGENET, 320, False),  # u2net, u2netp, u2net_human_seg, u2net_cloth_seg, silueta
}

MIN_KEPT, MAX_KEPT = 0.03, 0.97  # a cut-out keeping less or more of the picture than this is flagged
# An enclosed region within the tolerance goes when its mean colour is this close to the background (a fraction of
# the tolerance), and is at least this part of the picture (smaller ones are pinholes in the subject).
_CLOSE_FRACTION = 0.4
_MIN_HOLE_FRACTION = 1e-4


@dataclass(frozen=True)
class CutOut:
    """A cut-out: the picture with its new alpha, the subject mask, and a warning ("" when it looks plausible)."""

    image: Image.Image  # RGBA: colours unchanged; alpha = the mask × the picture's own alpha
    mask: Image.Image  # L: 255 = subject
    warning: str = ""


def list_segmenters(models_dir: str | Path) -> list[str]:
    """Segmentation models (ONNX files) in ``<models_dir>/rembg/``, names without extension."""
    return sorted(_segmenters(models_dir), key=str.lower)


def subject_mask(
    image: Image.Image,
    *,
    method: Method = "auto",
    model: str = "",
    models_dir: str | Path,
    alpha_matting: bool = False,
    keep_mask: Stroke = None,
    remove_mask: Stroke = None,
) -> Image.Image:
    """The subject's mask, mode ``L``, the image's size: 255 = subject, 0 = background, soft in between.

    ``keep_mask`` / ``remove_mask`` (white or painted = brushed, the image's size) force the subject / the
    background after the automatic mask; RetouchError when one is not a picture of the image's size."""
    # 1. check inputs, pick the method
    if method not in METHODS:
        raise RetouchError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    rgb, _ = split_alpha(image)
    keep = _brushed(keep_mask, "keep_mask", rgb.size)
    remove = _brushed(remove_mask, "remove_mask", rgb.size)
    segmenters = _segmenters(models_dir)
    if method == "auto":
        method = "model" if model or segmenters else "key"

    # 2. segment
    if method == "model":
        path = _find_segmenter(models_dir, segmenters, model)
        mask = _model_mask(rgb, path)
    else:
        mask = _key_mask(np.asarray(rgb))

    # 3. optional edge refinement, then the brush strokes (keep wins where both are brushed)
    if alpha_matting:
        mask = _guided_refine(np.asarray(rgb), mask)
    if remove is not None:
        mask = np.where(remove, 0, mask).astype(np.uint8)
    if keep is not None:
        mask = np.where(keep, 255, mask).astype(np.uint8)
    return Image.fromarray(mask, "L")


def cut_out(
    image: Image.Image,
    *,
    method: Method = "auto",
    model: str = "",
    models_dir: str | Path,
    alpha_matting: bool = False,
    keep_mask: Stroke = None,
    remove_mask: Stroke = None,
) -> CutOut:
    """``image`` as RGBA whose alpha is :func:`subject_mask` (colours unchanged; the old alpha, if any, is
    multiplied in, so what was transparent stays transparent), with :func:`coverage_warning` of the mask."""
    rgb, alpha = split_alpha(image)
    mask = subject_mask(
        image, method=method, model=model, models_dir=models_dir, alpha_matting=alpha_matting,
        keep_mask=keep_mask, remove_mask=remove_mask,
    )  # fmt: skip
    combined = mask
    if alpha is not None:
        product = np.asarray(mask, np.uint16) * np.asarray(alpha, np.uint16) // 255
        combined = Image.fromarray(product.astype(np.uint8), "L")
    out = rgb.convert("RGBA")
    out.putalpha(combined)
    warning = coverage_warning(mask)
    if warning:
        logger.info("cut-out of %s: %s", rgb.size, warning)
    return CutOut(image=out, mask=mask, warning=warning)


def remove_background(
    image: Image.Image,
    *,
    method: Method = "auto",
    model: str = "",
    models_dir: str | Path,
    alpha_matting: bool = False,
    keep_mask: Stroke = None,
    remove_mask: Stroke = None,
) -> Image.Image:
    """The picture of :func:`cut_out` (RGBA, alpha = the subject mask)."""
    return cut_out(
        image, method=method, model=model, models_dir=models_dir, alpha_matting=alpha_matting,
        keep_mask=keep_mask, remove_mask=remove_mask,
    ).image  # fmt: skip


def coverage_warning(mask: Image.Image) -> str:
    """A warning when ``mask`` (255 = subject) keeps less than 3% or more than 97% of the picture, else ""."""
    kept = float((np.asarray(mask.convert("L")) >= 128).mean())
    if kept < MIN_KEPT:
        return (
            f"the cut-out keeps only {kept:.1%} of the picture: the subject was probably not found. Check it "
            "before building on it: brush what to keep, or try another method or segmentation model"
        )
    if kept > MAX_KEPT:
        return (
            f"the cut-out keeps {kept:.1%} of the picture: almost nothing was removed. Check it before building "
            "on it: brush what to remove, or try another method or segmentation model"
        )
    return ""


def _brushed(stroke: Stroke, name: str, size: tuple[int, int]) -> np.ndarray | None:
    """A brush stroke as a boolean array (True = brushed), checked to be a picture of ``size``."""
    if stroke is None:
        return None
    try:
        picture = decode_image(stroke) if isinstance(stroke, bytes) else stroke
    except ImageInputError as exc:
        raise RetouchError(f"{name}: {exc}") from None
    if picture.size != size:
        raise RetouchError(
            f"{name} is {picture.width}×{picture.height} but the picture is {size[0]}×{size[1]}: "
            "brush on this picture (a mask of its size)"
        )
    return np.asarray(mask_from_upload(picture, size)) > 0


# --- model -----------------------------------------------------------------------------------------------------


def _segmenters(models_dir: str | Path) -> dict[str, Path]:
    folder = Path(models_dir) / SEGMENTER_FOLDER
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".onnx"}


def _find_segmenter(models_dir: str | Path, segmenters: dict[str, Path], model: str) -> Path:
    folder = f"models/{SEGMENTER_FOLDER}"  # as users see it: never the server's absolute path
    return pick_model_file(
        segmenters,
        model,
        default=DEFAULT_SEGMENTER,
        none=f"Background removal with a model needs a segmentation model: put {DEFAULT_SEGMENTER}.onnx "
        f"(from rembg's model releases, e.g. ~/.u2net/{DEFAULT_SEGMENTER}.onnx) into {folder}/, "
        'or use method "key" (no model; for logos and studio shots)',
        unknown=f"Segmentation model {model!r} is not on disk: put {model}.onnx into {folder}/",
    )


def _family(name: str) -> tuple[tuple[float, ...], tuple[float, ...], int, bool]:
    lowered = name.lower()
    for key in ("birefnet", "isnet"):
        if key in lowered:
            return _FAMILIES[key]
    return _FAMILIES["u2net"]


def _model_mask(rgb: Image.Image, path: Path) -> np.ndarray:
    import onnxruntime as ort

    # 1. open the model (CPU; onnxruntime never downloads)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RetouchError(f"cannot load segmentation model {path.name}: {exc}") from exc
    mean, std, default_side, sigmoid = _family(path.stem)
    model_input = session.get_inputs()[0]
    size = _input_size(model_input.shape, default_side)

    # 2. rembg's normalisation
    im = np.asarray(rgb.resize(size, Image.Resampling.LANCZOS), np.float32)
    im = im / max(float(im.max()), 1e-6)
    im = (im - np.array(mean, np.float32)) / np.array(std, np.float32)
    batch = im.transpose(2, 0, 1)[None].astype(np.float32)

    # 3. run, first output's first channel, min-max to 0..255, back to the image size
    try:
        outputs = session.run(None, {model_input.name: batch})
    except Exception as exc:
        raise RetouchError(f"segmentation model {path.name} failed on this image: {exc}") from exc
    pred = np.asarray(outputs[0], np.float32)
    if pred.ndim != 4 or pred.shape[0] != 1:
        raise RetouchError(f"{path.name} is not a segmentation model (output shape {pred.shape})")
    pred = pred[0, 0]
    if sigmoid:
        pred = 1.0 / (1.0 + np.exp(-pred))
    lo, hi = float(pred.min()), float(pred.max())
    pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
    mask = Image.fromarray((pred * 255).astype(np.uint8), "L").resize(rgb.size, Image.Resampling.LANCZOS)
    logger.info("segmented %s with %s (input %dx%d)", rgb.size, path.name, *size)
    return np.asarray(mask)


def _input_size(shape: list[Any], default_side: int) -> tuple[int, int]:
    """(width, height) from a static NCHW input shape, else the family's default square."""
    if len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[2:]):
        return int(shape[3]), int(shape[2])
    return default_side, default_side


# --- colour key: the background grown from the border -----------------------------------------------------------


def _key_mask(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    if min(height, width) < 8:
        raise RetouchError(f"the image is too small to find a background in ({width}x{height})")

    # 1. how far every pixel is from the background colour fitted on the border (Lab, robust quadratic fit)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = max(2, round(min(height, width) * 0.01))
    ring = np.zeros((height, width), bool)
    ring[:border], ring[-border:], ring[:, :border], ring[:, -border:] = True, True, True, True
    background, residual = _fit_background(lab, ring)
    offset = lab - background
    distance = np.sqrt((offset**2).sum(axis=2))
    tolerance = max(10.0, 4.0 * residual)

    # 2. the regions within the tolerance: those touching the border are background, enclosed ones only
    #    when they match the background closely; everything else is the subject
    count, labels = cv2.connectedComponents((distance <= tolerance).astype(np.uint8), connectivity=4)
    gone = _background_regions(labels, count, offset, tolerance)
    subject = ~gone[labels]

    # 3. drop specks (components much smaller than the largest), soften the edge slightly
    subject = _drop_specks(subject)
    if not subject.any():
        logger.info("colour key: nothing differs from the background")
        return np.zeros((height, width), np.uint8)
    soft = cv2.GaussianBlur(subject.astype(np.float32), (0, 0), 0.8)
    return np.clip(np.rint(soft * 255), 0, 255).astype(np.uint8)


def _background_regions(labels: np.ndarray, count: int, offset: np.ndarray, tolerance: float) -> np.ndarray:
    """For each label of the within-tolerance regions (0 = the pixels outside the tolerance), whether it is
    background: it touches the picture's edge, or it is enclosed, big enough not to be a pinhole, and its mean
    colour is within a small part of the tolerance of the background's there."""
    flat = labels.ravel()
    area = np.bincount(flat, minlength=count).astype(np.float64)
    sums = [np.bincount(flat, weights=offset[..., c].ravel(), minlength=count) for c in range(3)]
    mean_offset = np.sqrt(sum(s * s for s in sums)) / np.maximum(area, 1.0)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touches_edge = np.zeros(count, bool)
    touches_edge[np.unique(edge)] = True
    min_hole = max(9.0, labels.size * _MIN_HOLE_FRACTION)
    enclosed_match = (area >= min_hole) & (mean_offset <= _CLOSE_FRACTION * tolerance)
    gone = touches_edge | enclosed_match
    gone[0] = False
    return gone


def _fit_background(lab: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, float]:
    """Background colour at every pixel: a quadratic in (x, y) per channel, fitted to the border pixels with
    outliers (subject touching the border) dropped; and the fit's robust residual (noise level)."""
    height, width = ring.shape
    ys, xs = np.nonzero(ring)
    values = lab[ys, xs]

    def design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = x / max(width - 1, 1) - 0.5, y / max(height - 1, 1) - 0.5
        return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)

    a = design(xs.astype(np.float32), ys.astype(np.float32))
    # Start from the median colour: robust to a subject covering up to half of the border.
    residual = np.sqrt(((values - np.median(values, axis=0)) ** 2).sum(axis=1))
    keep = residual <= max(np.median(residual) * 3.0, 6.0)
    coef = np.zeros((6, 3), np.float32)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(a[keep], values[keep], rcond=None)
        residual = np.sqrt(((a @ coef - values) ** 2).sum(axis=1))
        mad = float(np.median(residual[keep]))
        keep = residual <= max(3.0 * mad * 1.4826, 3.0)
    # Evaluate the (smooth) fit on a coarse grid and resize: full-size design matrices would cost ~100 B/pixel.
    grid_w, grid_h = min(width, 64), min(height, 64)
    gy, gx = np.meshgrid(
        np.linspace(0, height - 1, grid_h, dtype=np.float32),
        np.linspace(0, width - 1, grid_w, dtype=np.float32),
        indexing="ij",
    )
    coarse = (design(gx, gy) @ coef).astype(np.float32)
    background = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    noise = float(np.median(residual[keep]) * 1.4826) if keep.any() else 0.0
    return background, noise


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    minimum = max(8, math.ceil(areas.max() * 0.002))
    keep = np.zeros(count, bool)
    keep[1:] = areas >= minimum
    return keep[labels]


def _guided_refine(
    rgb: np.ndarray, mask: np.ndarray, radius: int | None = None, eps: float = 1e-3
) -> np.ndarray:
    """Guided filter (He et al. 2010, grey guide): the mask's soft edge follows the image's edges."""
    radius = radius or max(2, round(min(mask.shape) / 200))
    guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    p = mask.astype(np.float32) / 255.0
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(p)
    var_i = box(guide * guide) - mean_i * mean_i
    cov_ip = box(guide * p) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    q = box(a) * guide + box(b)
    return np.clip(np.rint(q * 255), 0, 255).astype(np.uint8)
