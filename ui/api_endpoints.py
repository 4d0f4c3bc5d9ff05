"""Gradio API endpoints with stable names, for gradio_client users (`api_name="/txt2img"` and so on).

Each takes the tab's request fields by name; pictures go in and come out as base64 PNG/JPEG/WebP.
"""

from __future__ import annotations

import base64
import binascii

import gradio as gr
from pydantic import BaseModel

from core.hires import DEFAULT_HR_UPSCALER
from core.requests import Img2ImgRequest, InpaintRequest, Txt2ImgRequest
from core.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE
from studio import JobState, Studio
from ui import xyz
from ui.common import build_request, submit, user_of


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise gr.Error(f"{name} must be a base64-encoded PNG, JPEG or WebP image") from None


def _fields(arguments: dict, request_cls: type[BaseModel]) -> dict:
    """The endpoint's arguments that are fields of `request_cls` (the names are the request's own)."""
    fields = {name: value for name, value in arguments.items() if name in request_cls.model_fields}
    if fields.get("styles") is None:
        fields.pop("styles", None)  # none given: the request's default (no styles)
    return fields


def register(studio: Studio) -> None:
    def run(request_cls: type[BaseModel], values: dict, request: gr.Request | None) -> dict:
        job = submit(studio, build_request(request_cls, values), user_of(request))
        job.wait()
        if job.state is JobState.FAILED:
            raise gr.Error(job.error or "Generation failed")
        return {
            "state": job.state.value,
            "ids": [i.id for i in job.images],
            "seeds": [i.seed for i in job.images],
            "infotexts": [i.infotext for i in job.images],
            "images": [
                base64.b64encode(studio.gallery.file_path(i.id).read_bytes()).decode() for i in job.images
            ],
        }

    def txt2img(
        prompt: str,
        negative_prompt: str = "",
        model: str = "",
        sampler: str = DEFAULT_SAMPLER,
        schedule_type: str = DEFAULT_SCHEDULE,
        steps: int = 20,
        cfg_scale: float = 7.0,
        width: int = 512,
        height: int = 512,
        seed: int = -1,
        batch_size: int = 1,
        batch_count: int = 1,
        styles: list[str] | None = None,
        subseed: int = -1,
        subseed_strength: float = 0.0,
        seed_resize_from_w: int = 0,
        seed_resize_from_h: int = 0,
        enable_hr: bool = False,
        hr_scale: float = 2.0,
        hr_upscaler: str = DEFAULT_HR_UPSCALER,
        hr_second_pass_steps: int = 0,
        hr_resize_x: int = 0,
        hr_resize_y: int = 0,
        denoising_strength: float = 0.7,
        restore_faces: bool = False,
        tiling: bool = False,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Generate images from a prompt, optionally with a variation seed, hires fix, face restoration and tiling
        (A1111's field names).
        Returns gallery ids, seeds, infotexts and base64 PNGs (with metadata)."""
        return run(Txt2ImgRequest, _fields(locals(), Txt2ImgRequest), request)

    def img2img(
        init_image: str,
        prompt: str = "",
        negative_prompt: str = "",
        denoising_strength: float = 0.75,
        resize_mode: str = "just resize",
        model: str = "",
        sampler: str = DEFAULT_SAMPLER,
        schedule_type: str = DEFAULT_SCHEDULE,
        steps: int = 20,
        cfg_scale: float = 7.0,
        width: int = 512,
        height: int = 512,
        seed: int = -1,
        batch_size: int = 1,
        batch_count: int = 1,
        styles: list[str] | None = None,
        subseed: int = -1,
        subseed_strength: float = 0.0,
        seed_resize_from_w: int = 0,
        seed_resize_from_h: int = 0,
        restore_faces: bool = False,
        tiling: bool = False,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Push a base64 image toward the prompt. Returns ids, seeds, infotexts and base64 PNGs."""
        values = _fields(locals(), Img2ImgRequest)
        values["init_image"] = _b64(init_image, "init_image")
        return run(Img2ImgRequest, values, request)

    def inpaint(
        init_image: str,
        mask: str,
        prompt: str = "",
        negative_prompt: str = "",
        denoising_strength: float = 0.75,
        mask_blur: int = 4,
        invert_mask: bool = False,
        masked_content: str = "original",
        inpaint_area: str = "whole picture",
        only_masked_padding: int = 32,
        model: str = "",
        sampler: str = DEFAULT_SAMPLER,
        schedule_type: str = DEFAULT_SCHEDULE,
        steps: int = 20,
        cfg_scale: float = 7.0,
        width: int = 512,
        height: int = 512,
        seed: int = -1,
        batch_size: int = 1,
        batch_count: int = 1,
        styles: list[str] | None = None,
        subseed: int = -1,
        subseed_strength: float = 0.0,
        seed_resize_from_w: int = 0,
        seed_resize_from_h: int = 0,
        restore_faces: bool = False,
        tiling: bool = False,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Repaint where the base64 mask is white; everything else is kept exactly. Returns base64 PNGs."""
        values = _fields(locals(), InpaintRequest)
        values.update(init_image=_b64(init_image, "init_image"), mask=_b64(mask, "mask"))
        return run(InpaintRequest, values, request)

    for fn in (txt2img, img2img, inpaint):
        gr.api(fn, api_name=fn.__name__, concurrency_id="generate", concurrency_limit=None)
    xyz.register_api(studio)  # xyz (a whole plot) and variations

    from ui.retouch import register_api

    register_api(studio)  # `retouch`: an operation chain on a picture
