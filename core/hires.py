"""Hires fix, as data: the upscaler names it knows without looking at the disk, and the sizes it works at.

A1111's hires fix makes the picture at width × height (the first pass), upscales it and repaints it with
img2img at the larger size (the second pass). The size rules here are A1111's
(`StableDiffusionProcessingTxt2Img.calculate_target_resolution`); the pipelines do the work.
"""

from __future__ import annotations

from dataclasses import dataclass

# A1111's `shared.latent_upscale_modes`: name → (torch interpolation mode, antialias). These keep the latents
# (no decode); every other upscaler decodes the first pass, upscales the picture and encodes it again.
LATENT_UPSCALE_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
DEFAULT_HR_UPSCALER = "Latent"
LATENT_SCALE = 8  # pixels per latent cell
MAX_COVER_SIZE = 8192  # the intermediate size when both hr_resize_x and hr_resize_y are given (then cropped)


def is_latent_upscaler(name: str) -> bool:
    return name in LATENT_UPSCALE_MODES


@dataclass(frozen=True)
class HiresSize:
    """Where the second pass works: the first pass is upscaled to `upscale_to`, then centre-cropped to
    `target` (the output size; equal to `upscale_to` unless both resize values are given)."""

    upscale_to: tuple[int, int]
    target: tuple[int, int]

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of `target` inside `upscale_to`, on whole latent cells, as A1111 crops."""
        (uw, uh), (tw, th) = self.upscale_to, self.target
        left = (uw - tw) // LATENT_SCALE // 2 * LATENT_SCALE
        top = (uh - th) // LATENT_SCALE // 2 * LATENT_SCALE
        return left, top, left + tw, top + th


def hires_size(
    width: int,
    height: int,
    *,
    scale: float,
    resize_x: int = 0,
    resize_y: int = 0,
    min_size: int,
    max_size: int,
) -> HiresSize:
    """The second pass's size for a first pass of width × height. Raises ValueError with what to change.

    With no resize values the size is (int(width × scale), int(height × scale)); with one of them the other
    follows the picture's aspect; with both the picture is upscaled to cover that size and centre-cropped.
    """
    if resize_x == 0 and resize_y == 0:
        upscale_to = (int(width * scale), int(height * scale))
        where = f"{width}x{height} × hr_scale {scale:g}"
    elif resize_y == 0:
        upscale_to = (resize_x, resize_x * height // width)
        where = f"hr_resize_x {resize_x} at the aspect of {width}x{height}"
    elif resize_x == 0:
        upscale_to = (resize_y * width // height, resize_y)
        where = f"hr_resize_y {resize_y} at the aspect of {width}x{height}"
    else:
        target = (resize_x, resize_y)
        if width / height < resize_x / resize_y:
            cover = (resize_x, resize_x * height // width)
        else:
            cover = (resize_y * width // height, resize_y)
        _check_target(target, f"hr_resize_x × hr_resize_y {resize_x}x{resize_y}", min_size, max_size)
        if max(cover) > MAX_COVER_SIZE:
            raise ValueError(
                f"hires fix: covering {resize_x}x{resize_y} from {width}x{height} needs {cover[0]}x{cover[1]}, "
                f"over {MAX_COVER_SIZE} px; choose a target closer to the picture's aspect"
            )
        return HiresSize(upscale_to=cover, target=target)
    _check_target(upscale_to, where, min_size, max_size)
    return HiresSize(upscale_to=upscale_to, target=upscale_to)


def _check_target(size: tuple[int, int], where: str, min_size: int, max_size: int) -> None:
    w, h = size
    if w % LATENT_SCALE or h % LATENT_SCALE:
        raise ValueError(
            f"hires fix: the upscaled size {w}x{h} ({where}) must be a multiple of 8 in both directions; "
            "choose another scale, or set hr_resize_x / hr_resize_y"
        )
    if max(w, h) > max_size or min(w, h) < min_size:
        raise ValueError(
            f"hires fix: the upscaled size {w}x{h} ({where}) must lie within {min_size}..{max_size} px; "
            "choose a smaller scale or size"
        )


def second_pass_steps(steps: int, hr_second_pass_steps: int, denoising_strength: float) -> int:
    """Steps the second pass actually samples: img2img runs int(steps × strength) of its `steps`, as A1111."""
    asked = hr_second_pass_steps or steps
    return min(int(asked * denoising_strength), asked)
