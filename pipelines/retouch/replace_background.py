"""Replace background (product shots) and erase: both repaint part of a picture through the inpaint path.

Replace background finds the subject (its transparency when the picture has some, else `subject_mask`), and
inpaints everything else from the prompt. The inpaint path composites through a mask that is 0 on the subject,
so every subject pixel comes back byte-identical. Erase refills a brushed area from its surroundings
(masked content "fill", no prompt), with every pixel outside the brush unchanged.
"""

from __future__ import annotations

from pathlib import Path

from diffusers import DiffusionPipeline
from PIL import Image, ImageOps

from core.images import encode_png, flatten
from core.requests import InpaintRequest, MaskedContent, working_size
from core.retouch_ops import EraseOp, ReplaceBackgroundOp
from pipelines.inpaint import run_inpaint
from pipelines.retouch import RetouchError
from pipelines.retouch.background import subject_mask
from pipelines.sampling import StepCallback

_SUBJECT_THRESHOLD = 128  # subject mask values at or above this are subject (kept exactly)


def _has_transparency(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255


def subject_area(image: Image.Image, op: ReplaceBackgroundOp, models_dir: Path) -> Image.Image:
    """Hard "L" mask of the subject (255 = keep exactly): the opaque pixels of a cut-out, else the segmenter's."""
    if _has_transparency(image):
        soft = image.getchannel("A")
        return soft.point(lambda v: 255 if v == 255 else 0)
    soft = subject_mask(image, method=op.method, model=op.segmenter, models_dir=models_dir)
    return soft.point(lambda v: 255 if v >= _SUBJECT_THRESHOLD else 0)


def replace_background(
    pipe: DiffusionPipeline,
    op: ReplaceBackgroundOp,
    image: Image.Image,
    *,
    models_dir: Path,
    on_step: StepCallback,
) -> Image.Image:
    """A new background painted around the subject from `op.prompt` (`pipe`: the family's inpaint pipeline).

    Returns an opaque RGB picture of the same size; subject pixels are exactly those of `image`.
    """
    # 1. check inputs, find the subject
    if op.preset or op.styles:  # the Studio applies them when the job is submitted
        raise RetouchError("the preset and styles were not applied; submit the operation through the Studio")
    subject = subject_area(image, op, models_dir)
    if subject.getbbox() is None:
        raise RetouchError("no subject was found in the picture; try another method or segmentation model")
    background = ImageOps.invert(subject)
    if background.getbbox() is None:
        raise RetouchError("the subject fills the whole picture: there is no background to replace")

    # 2. inpaint everything but the subject (the feathered edge lies in the background)
    size = (op.width, op.height) if op.width and op.height else working_size(*image.size)
    painted = _repaint(
        pipe, op, flatten(image), encode_png(background), size=size, blur=op.edge_blur, content="original",
        on_step=on_step,
    ).convert("RGB")  # fmt: skip

    # 3. a cut-out's semi-transparent edge is laid over the new background; opaque pixels stay exact
    if _has_transparency(image):
        canvas = painted.convert("RGBA")
        canvas.alpha_composite(image)
        return canvas.convert("RGB")
    return painted


def erase(pipe: DiffusionPipeline, op: EraseOp, image: Image.Image, *, on_step: StepCallback) -> Image.Image:
    """The brushed area refilled from its surroundings (`pipe`: inpaint); the rest is unchanged."""
    size = working_size(*image.size)
    return _repaint(pipe, op, image, op.mask, size=size, blur=op.mask_blur, content="fill", on_step=on_step)


def _repaint(
    pipe: DiffusionPipeline,
    op: ReplaceBackgroundOp | EraseOp,
    image: Image.Image,
    mask: bytes,
    *,
    size: tuple[int, int],
    blur: int,
    content: MaskedContent,
    on_step: StepCallback,
) -> Image.Image:
    """`image` repainted where `mask` is white (the whole picture worked at `size`), the rest kept exactly."""
    request = InpaintRequest(
        **op.sampling_fields(),
        init_image=encode_png(image),
        mask=mask,
        width=size[0],
        height=size[1],
        denoising_strength=1.0,
        mask_blur=blur,
        masked_content=content,
        inpaint_area="whole picture",
    )
    return run_inpaint(pipe, request, [op.seed], on_step)[0]
