"""Cut the subject out of an image: a mask (``L``, 255 = subject) or an RGBA image with a transparent background.

Two methods:

- ``"model"``: a u2net-family segmentation model (u2net, u2netp, u2net_human_seg, silueta, isnet-general-use,
  isnet-anime, birefnet-*) — an ONNX file the user put in ``models/rembg/`` (the files rembg downloads to
  ``~/.u2net/``). It runs with onnxruntime, with rembg's pre- and post-processing: RGB resized (Lanczos) to the
  model's input size, divided by its maximum, normalised with the family's mean/std; the first output's first
  channel (through a sigmoid for BiRefNet) min-max scaled to 0..255 and resized back (Lanczos).
- ``"key"``: no model — for logos and studio shots on a near-uniform background. The background colour is
  estimated from the border (a robust smooth fit, so gradients and vignetting are fine), pixels far from it in Lab
  colour space are the subject, GrabCut refines the boundary, specks are dropped and holes that match the
  background stay transparent (the inside of an "O"), and the edge is softened by about a pixel. A subject with
  large parts the colour of the background (a white label on a white sweep) loses those parts: use a model then.

``"auto"`` uses a model when one is on disk, else the key. Nothing is ever downloaded. ``alpha_matting`` refines the
edge with a guided filter (the image steers the mask's soft edge; rembg uses pymatting's closed-form matting,
which Easel does not ship).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from pipelines.retouch import RetouchError
from pipelines.retouch.pixels import split_alpha
from pipelines.retouch.weights import pick_model_file

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "SEGMENTER_FOLDER", "list_segmenters", "remove_background", "subject_mask"]

Method = Literal["auto", "model", "key"]
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

_WORK_SIDE = 640  # GrabCut runs at most at this size (its cost grows fast with pixels)
_GRABCUT_ITERATIONS = 4


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
) -> Image.Image:
    """The subject's mask, mode ``L``, the image's size: 255 = subject, 0 = background, soft in between."""
    # 1. check inputs, pick the method
    if method not in METHODS:
        raise RetouchError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    rgb, _ = split_alpha(image)
    segmenters = _segmenters(models_dir)
    if method == "auto":
        method = "model" if model or segmenters else "key"

    # 2. segment
    if method == "model":
        path = _find_segmenter(models_dir, segmenters, model)
        mask = _model_mask(rgb, path)
    else:
        mask = _key_mask(np.asarray(rgb))

    # 3. optional edge refinement
    if alpha_matting:
        mask = _guided_refine(np.asarray(rgb), mask)
    return Image.fromarray(mask, "L")


def remove_background(
    image: Image.Image,
    *,
    method: Method = "auto",
    model: str = "",
    models_dir: str | Path,
    alpha_matting: bool = False,
) -> Image.Image:
    """``image`` as RGBA whose alpha is :func:`subject_mask` (colours unchanged; the old alpha, if any, is
    multiplied in, so what was transparent stays transparent)."""
    rgb, alpha = split_alpha(image)
    mask = subject_mask(image, method=method, model=model, models_dir=models_dir, alpha_matting=alpha_matting)
    if alpha is not None:
        combined = np.asarray(mask, np.uint16) * np.asarray(alpha, np.uint16) // 255
        mask = Image.fromarray(combined.astype(np.uint8), "L")
    out = rgb.convert("RGBA")
    out.putalpha(mask)
    return out


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


# --- colour key + GrabCut ---------------------------------------------------------------------------------------


def _key_mask(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    if min(height, width) < 8:
        raise RetouchError(f"the image is too small to find a background in ({width}x{height})")

    # 1. distance of every pixel from the background colour fitted on the border (Lab, robust quadratic fit)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = max(2, round(min(height, width) * 0.01))
    ring = np.zeros((height, width), bool)
    ring[:border], ring[-border:], ring[:, :border], ring[:, -border:] = True, True, True, True
    background, residual = _fit_background(lab, ring)
    distance = np.sqrt(((lab - background) ** 2).sum(axis=2))
    tolerance = max(10.0, 4.0 * residual)

    # 2. first guess: far from the background = subject; specks removed
    subject = distance > tolerance
    subject = cv2.morphologyEx(subject.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    if not subject.any():
        logger.info("colour key: nothing differs from the background")
        return np.zeros((height, width), np.uint8)

    # 3. GrabCut at a working size, seeded from the distances
    mask = _grabcut(rgb, distance, tolerance, subject)

    # 4. full-resolution edge: near the GrabCut boundary, trust the colour key at full resolution
    edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0
    mask = np.where(edge, distance > tolerance, mask)

    # 5. drop specks (components much smaller than the largest), soften the edge slightly
    mask = _drop_specks(mask)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)
    return np.clip(np.rint(soft * 255), 0, 255).astype(np.uint8)


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


def _grabcut(rgb: np.ndarray, distance: np.ndarray, tolerance: float, subject: np.ndarray) -> np.ndarray:
    height, width = subject.shape
    factor = min(1.0, _WORK_SIDE / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if factor < 1 else rgb
    small_dist = cv2.resize(distance, size, interpolation=cv2.INTER_AREA) if factor < 1 else distance

    seeds = np.full(small_dist.shape, cv2.GC_PR_BGD, np.uint8)
    seeds[small_dist > tolerance] = cv2.GC_PR_FGD
    sure_fg = cv2.erode((small_dist > 2 * tolerance).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    seeds[sure_fg] = cv2.GC_FGD
    sure_bg = cv2.erode((small_dist < 0.5 * tolerance).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    seeds[sure_bg] = cv2.GC_BGD
    is_fg = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    if is_fg.all() or not is_fg.any():
        return subject  # GrabCut needs samples of both
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small_rgb[..., ::-1])
    try:
        cv2.grabCut(bgr, seeds, None, bgd, fgd, _GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:  # degenerate colour models (e.g. a handful of pixels)
        logger.info("GrabCut skipped: %s", exc)
        return subject
    result = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.float32)
    if factor < 1:
        result = cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)
    return result > 0.5


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
