"""AUTOMATIC1111 request bodies as its `/sdapi/v1` clients send them.

These models are deliberately permissive, as A1111's are: fields we do not know are ignored, types are
coerced the way pydantic's lax mode does ("20" → 20). They only give the body a shape; the limits (steps,
sizes, prompt length, NaN, ...) are checked by the request models in `core.requests`, the same ones the
UI uses, after the A1111 names have been mapped onto ours.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class A1111Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GenerationBody(A1111Body):
    """Fields txt2img and img2img share (A1111's `StableDiffusionProcessing`)."""

    prompt: str | None = ""
    negative_prompt: str | None = ""
    styles: list[str] | None = None
    seed: int | None = -1
    subseed: int | None = -1
    subseed_strength: float | None = 0.0
    seed_resize_from_h: int | None = -1
    seed_resize_from_w: int | None = -1
    sampler_name: str | None = None
    sampler_index: str | None = None  # the older name of sampler_name
    scheduler: str | None = None
    batch_size: int | None = 1
    n_iter: int | None = 1
    steps: int | None = 50
    cfg_scale: float | None = 7.0
    width: int | None = 512
    height: int | None = 512
    restore_faces: bool | None = None
    tiling: bool | None = None
    override_settings: dict[str, Any] | None = None
    override_settings_restore_afterwards: bool | None = True
    script_name: str | None = None
    script_args: list[Any] | None = None
    alwayson_scripts: dict[str, Any] | None = None
    send_images: bool | None = True
    save_images: bool | None = False


class Txt2ImgBody(GenerationBody):
    enable_hr: bool | None = False
    denoising_strength: float | None = None  # only used by hires fix in A1111
    hr_scale: float | None = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = 0
    hr_resize_x: int | None = 0
    hr_resize_y: int | None = 0


class Img2ImgBody(GenerationBody):
    init_images: list[str] | None = None
    resize_mode: int | None = 0
    denoising_strength: float | None = 0.75
    image_cfg_scale: float | None = None
    mask: str | None = None
    mask_blur: int | None = 4
    inpainting_fill: int | None = 0
    inpaint_full_res: bool | None = True
    inpaint_full_res_padding: int | None = 0
    inpainting_mask_invert: int | None = 0
    initial_noise_multiplier: float | None = None
    include_init_images: bool | None = False


class OptionsBody(A1111Body):
    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = None


class PngInfoBody(A1111Body):
    image: str = Field(description="Base64 PNG, JPEG or WebP (a data: URL prefix is allowed)")


class ExtraSingleImageBody(A1111Body):
    image: str = Field(description="Base64 PNG, JPEG or WebP (a data: URL prefix is allowed)")
    resize_mode: int | None = 0  # 0: scale by upscaling_resize, 1: to upscaling_resize_w × upscaling_resize_h
    upscaling_resize: float | None = 2.0
    upscaling_resize_w: int | None = 512
    upscaling_resize_h: int | None = 512
    upscaling_crop: bool | None = True
    upscaler_1: str | None = "None"
    upscaler_2: str | None = "None"
    extras_upscaler_2_visibility: float | None = 0.0
    gfpgan_visibility: float | None = 0.0
    codeformer_visibility: float | None = 0.0
    codeformer_weight: float | None = 0.0
    upscale_first: bool | None = False
    show_extras_results: bool | None = True


class RembgBody(A1111Body):
    """The A1111 rembg extension's `POST /rembg` body (its alpha-matting thresholds are accepted and unused)."""

    input_image: str = Field(description="Base64 PNG, JPEG or WebP (a data: URL prefix is allowed)")
    model: str | None = ""
    return_mask: bool | None = False
    alpha_matting: bool | None = False
