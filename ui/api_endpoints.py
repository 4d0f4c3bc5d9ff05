"""Gradio API endpoints with stable names, for gradio_client users (`api_name="/txt2img"`)."""

from __future__ import annotations

import base64

import gradio as gr

from core.requests import Txt2ImgRequest
from core.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE
from studio import JobState, Studio
from ui.common import build_request, submit, user_of


def register(studio: Studio) -> None:
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
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Generate images from a prompt. Returns gallery ids, seeds, infotexts and base64 PNGs (with metadata)."""
        values = {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "model": model,
            "sampler": sampler,
            "schedule_type": schedule_type,
            "steps": steps,
            "cfg_scale": cfg_scale,
            "width": width,
            "height": height,
            "seed": seed,
            "batch_size": batch_size,
            "batch_count": batch_count,
        }
        req = build_request(Txt2ImgRequest, values)
        job = submit(studio, req, user_of(request))
        job.wait()
        if job.state is JobState.FAILED:
            raise gr.Error(job.error or "Generation failed")
        return {
            "state": job.state.value,
            "ids": [i.id for i in job.images],
            "seeds": [i.seed for i in job.images],
            "infotexts": [i.infotext for i in job.images],
            "images": [base64.b64encode(studio.image_path(i.id).read_bytes()).decode() for i in job.images],
        }

    gr.api(txt2img, api_name="txt2img", concurrency_id="generate", concurrency_limit=None)
