"""Inpainting checkpoints (9-channel UNets) in txt2img, img2img and hires fix, on A1111's blank-mask conditioning:
they run (never a refusal), deterministically per seed, through the Studio and over /sdapi/v1."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from core.images import encode_png
from core.infotext import parse_infotext
from core.requests import Img2ImgRequest, Txt2ImgRequest
from pipelines.inpaint_models import blank_mask_kwargs
from studio import JobState
from tests.helpers import served_app

MODEL = "tiny-sd1-inpainting"
FAST = {"prompt": "a ceramic mug", "steps": 2, "width": 64, "height": 64}


def _done(job, timeout: float = 120):
    assert job.wait(timeout)
    assert job.state is JobState.DONE, job.error
    return job


def _pixels(studio, request) -> list[np.ndarray]:
    job = _done(studio.jobs.submit(request, "local"))
    return [np.asarray(Image.open(studio.gallery.file_path(image.id)).convert("RGB")) for image in job.images]


def _source() -> bytes:
    rng = np.random.default_rng(4)
    return encode_png(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB"))


def test_blank_mask_conditioning_is_all_ones_and_a_zero_picture(make_studio):
    studio = make_studio()
    entry = studio.backend.registry.get(MODEL)
    with studio.backend.manager.lease(entry) as pipe:
        kwargs = blank_mask_kwargs(pipe, 2, 64, 48)
        vae = pipe.vae
        with torch.inference_mode():
            zero = vae.encode(torch.zeros(1, 3, 48, 64)).latent_dist.mode() * vae.config.scaling_factor
    assert [np.asarray(m).min() for m in kwargs["mask_image"]] == [255, 255]
    assert kwargs["masked_image_latents"].shape == (2, 4, 6, 8)
    assert torch.equal(kwargs["masked_image_latents"][1], zero[0])


@pytest.mark.parametrize(
    "make_request",
    [
        lambda seed: Txt2ImgRequest(model=MODEL, seed=seed, batch_size=2, **FAST),
        lambda seed: Img2ImgRequest(
            model=MODEL, seed=seed, init_image=_source(), denoising_strength=0.5, **FAST
        ),
        lambda seed: Img2ImgRequest(
            model=MODEL, seed=seed, init_image=_source(), denoising_strength=1.0, **FAST
        ),
        lambda seed: Txt2ImgRequest(
            model=MODEL,
            seed=seed,
            enable_hr=True,
            hr_upscaler="Lanczos",
            hr_second_pass_steps=2,
            denoising_strength=0.5,
            **FAST,
        ),  # fmt: skip
        lambda seed: Txt2ImgRequest(
            model=MODEL,
            seed=seed,
            enable_hr=True,
            hr_upscaler="Latent",
            hr_second_pass_steps=2,
            denoising_strength=0.5,
            **FAST,
        ),  # fmt: skip
    ],
    ids=["txt2img", "img2img", "img2img-full-strength", "hires-lanczos", "hires-latent"],
)
def test_an_inpainting_model_runs_in_the_studio_and_is_deterministic_per_seed(make_studio, make_request):
    studio = make_studio()
    first = _pixels(studio, make_request(11))
    again = _pixels(studio, make_request(11))
    other = _pixels(studio, make_request(12))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])
    expected = (128, 128) if make_request(11).task == "txt2img" and make_request(11).enable_hr else (64, 64)
    assert all(p.shape[:2] == expected[::-1] for p in first)
    infotext = studio.gallery.recent(1)[0].infotext
    assert f"Model: {MODEL}" in infotext


def _post(client: httpx.Client, route: str, body: dict) -> dict:
    response = client.post(route, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _decoded(answer: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")) for b in answer["images"]]


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_decoded(a), _decoded(b), strict=True))


def test_an_inpainting_model_over_sdapi_gives_200_and_the_same_picture_per_seed(tiny_models_dir, tmp_path):
    with (
        served_app(tiny_models_dir, tmp_path / "outputs", api=True) as (_, url),
        httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as client,
    ):
        model = {"override_settings": {"sd_model_checkpoint": MODEL}}
        txt = {"prompt": "a mug", "seed": 5, "steps": 2, "width": 64, "height": 64, **model}
        a, b = _post(client, "/txt2img", txt), _post(client, "/txt2img", txt)
        assert _same(a, b)
        assert json.loads(a["info"])["sd_model_name"] == MODEL
        source = base64.b64encode(_source()).decode()
        img = {**txt, "init_images": [source], "denoising_strength": 0.6}
        c, d = _post(client, "/img2img", img), _post(client, "/img2img", img)
        assert _same(c, d)
        picture = Image.open(io.BytesIO(base64.b64decode(c["images"][0])))
        assert picture.size == (64, 64)
        assert parse_infotext(picture.text["parameters"]).params["Model"] == MODEL
