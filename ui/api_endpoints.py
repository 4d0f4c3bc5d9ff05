"""Gradio API endpoints with stable names, for gradio_client users (`api_name="/txt2img"` and so on).

Each takes the tab's request fields by name; pictures go in and come out as base64 PNG/JPEG/WebP. The
endpoints' parameters, their types and defaults are read from the request models (`signature_of`).
"""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import gradio as gr
from pydantic import BaseModel

from core.requests import Img2ImgRequest, InpaintRequest, Txt2ImgRequest
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


# The fields each endpoint takes, in the order of its positional parameters (clients may pass them so).
_SHARED = (
    "model", "sampler", "schedule_type", "steps", "cfg_scale", "width", "height", "seed", "batch_size",
    "batch_count", "styles", "subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h",
)  # fmt: skip
_HIRES = (
    "enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y",
    "denoising_strength",
)  # fmt: skip
_FINISH = ("restore_faces", "tiling")
TXT2IMG_PARAMETERS = ("prompt", "negative_prompt", *_SHARED, *_HIRES, *_FINISH)
IMG2IMG_PARAMETERS = (
    "init_image", "prompt", "negative_prompt", "denoising_strength", "resize_mode", *_SHARED, *_FINISH,
)  # fmt: skip
INPAINT_PARAMETERS = (
    "init_image", "mask", "prompt", "negative_prompt", "denoising_strength", "mask_blur", "invert_mask",
    "masked_content", "inpaint_area", "only_masked_padding", *_SHARED, *_FINISH,
)  # fmt: skip


def _hint(annotation: Any) -> Any:
    """The type an API client sees for a field: pictures as base64 text, choices as text, styles as a list."""
    if annotation is bytes:
        return str
    if get_origin(annotation) is Literal:
        return type(get_args(annotation)[0])
    if get_origin(annotation) is tuple:
        return list[get_args(annotation)[0]] | None
    return annotation


def signature_of(
    request_cls: type[BaseModel], names: tuple[str, ...], *, required: tuple[str, ...] = ()
) -> inspect.Signature:
    """A Gradio API function's signature over the request's fields `names`, with the request's defaults (and
    types as clients send them: see `_hint`); pictures, and the fields in `required`, have no default. Styles
    default to None (no styles). Ends with the `request: gr.Request` Gradio fills in."""
    parameters = []
    for name in names:
        info = request_cls.model_fields[name]
        hint = _hint(info.annotation)
        if name in required or info.is_required():
            default: Any = inspect.Parameter.empty
        elif get_origin(info.annotation) is tuple:
            default = None
        else:
            default = info.get_default(call_default_factory=True)
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=hint)
        )
    parameters.append(
        inspect.Parameter(
            "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request
        )
    )
    # the answer's type as the hand-written endpoints declared it (a postponed annotation: the text "dict")
    return inspect.Signature(parameters, return_annotation="dict")


def _endpoint(
    name: str,
    doc: str,
    signature: inspect.Signature,
    handle: Callable[[dict[str, Any], gr.Request | None], dict],
) -> Callable[..., dict]:
    """A function Gradio reads as `def name(<signature>) -> dict` that hands `handle` its arguments by name."""

    def endpoint(*args: Any, **kwargs: Any) -> dict:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        return handle(arguments, arguments.pop("request"))

    endpoint.__name__ = endpoint.__qualname__ = name
    endpoint.__doc__ = doc
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    endpoint.__annotations__ = {
        **{p.name: p.annotation for p in signature.parameters.values()},
        "return": signature.return_annotation,
    }
    return endpoint


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

    def generate(request_cls: type[BaseModel]) -> Callable[[dict[str, Any], gr.Request | None], dict]:
        def handle(arguments: dict[str, Any], request: gr.Request | None) -> dict:
            values = _fields(arguments, request_cls)
            for name in ("init_image", "mask"):  # the pictures, sent as base64 text
                if name in values:
                    values[name] = _b64(values[name], name)
            return run(request_cls, values, request)

        return handle

    endpoints = (
        _endpoint(
            "txt2img",
            """Generate images from a prompt, optionally with a variation seed, hires fix, face restoration and tiling
        (A1111's field names).
        Returns gallery ids, seeds, infotexts and base64 PNGs (with metadata).""",
            signature_of(Txt2ImgRequest, TXT2IMG_PARAMETERS, required=("prompt",)),
            generate(Txt2ImgRequest),
        ),
        _endpoint(
            "img2img",
            "Push a base64 image toward the prompt. Returns ids, seeds, infotexts and base64 PNGs.",
            signature_of(Img2ImgRequest, IMG2IMG_PARAMETERS),
            generate(Img2ImgRequest),
        ),
        _endpoint(
            "inpaint",
            "Repaint where the base64 mask is white; everything else is kept exactly. Returns base64 PNGs.",
            signature_of(InpaintRequest, INPAINT_PARAMETERS),
            generate(InpaintRequest),
        ),
    )
    for fn in endpoints:
        gr.api(fn, api_name=fn.__name__, concurrency_id="generate", concurrency_limit=None)
    xyz.register_api(studio)  # xyz (a whole plot) and variations

    from ui.retouch import register_api

    register_api(studio)  # `retouch`: an operation chain on a picture
