"""Hires fix: sizes, the first pass equal to a plain txt2img, both passes in progress and infotext, upscalers,
errors, the A1111 API fields over a real server."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from PIL import Image

from core.hires import LATENT_UPSCALE_MODES, HiresSize
from core.infotext import parse_infotext, request_fields_from_infotext
from core.requests import Txt2ImgRequest
from pipelines.hires import run_hires, upscale_latents
from pipelines.txt2img import run_txt2img
from studio import UnknownTool
from tests.helpers import served_app

FAST = {"prompt": "a lighthouse", "steps": 3, "width": 64, "height": 64, "seed": 21, "sampler": "DPM++ 2M"}


@pytest.fixture(scope="module")
def img2img_pipe(tiny_sd1_pipe):
    return StableDiffusionImg2ImgPipeline.from_pipe(tiny_sd1_pipe)


def _hires(**fields) -> Txt2ImgRequest:
    return Txt2ImgRequest(
        **{**FAST, "enable_hr": True, "hr_second_pass_steps": 2, "denoising_strength": 0.5, **fields}
    )


# --- the module ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_first_pass_is_a_plain_txt2img_and_both_passes_report_steps(tiny_sd1_pipe, img2img_pipe, upscaler):
    request = _hires(hr_upscaler=upscaler, subseed=3, subseed_strength=0.4)
    first: list[Image.Image] = []
    steps: list[tuple[int, int, tuple[int, ...]]] = []
    images = run_hires(
        tiny_sd1_pipe, request, [21], lambda s, n, lat: steps.append((s, n, tuple(lat.shape))) or True,
        img2img_pipe=img2img_pipe, first_pass=first,
    )  # fmt: skip
    plain = run_txt2img(tiny_sd1_pipe, request, [21], lambda *a: True)  # variation included
    assert np.array_equal(np.asarray(first[0]), np.asarray(plain[0]))
    assert [im.size for im in images] == [(128, 128)]
    # 3 first-pass steps at 8×8 latents, then int(2 × 0.5) = 1 second-pass step at 16×16, counted as one run
    assert steps == [(1, 4, (1, 4, 8, 8)), (2, 4, (1, 4, 8, 8)), (3, 4, (1, 4, 8, 8)), (4, 4, (1, 4, 16, 16))]
    assert request.steps_per_batch == 4
    again = run_hires(tiny_sd1_pipe, request, [21], lambda *a: True, img2img_pipe=img2img_pipe)
    assert np.array_equal(np.asarray(again[0]), np.asarray(images[0]))


def _hires_pixels(pipe, img2img_pipe, seed: int, **fields) -> np.ndarray:
    request = _hires(**{"seed": seed, **fields})
    images = run_hires(pipe, request, [seed], lambda *a: True, img2img_pipe=img2img_pipe)
    return np.asarray(images[0])


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_the_variation_seed_shapes_the_second_pass_too(tiny_sd1_pipe, img2img_pipe, upscaler):
    # as A1111's sample_hr_pass: the second pass's noise mixes the seed's and the variation seed's; with a
    # picture upscaler the upscaled picture's VAE sample is mixed too, so both ends are exact either way
    fields = {"hr_upscaler": upscaler, "steps": 2, "hr_second_pass_steps": 4, "denoising_strength": 0.75}
    base = _hires_pixels(tiny_sd1_pipe, img2img_pipe, 5, **fields)
    other = _hires_pixels(tiny_sd1_pipe, img2img_pipe, 99, **fields)
    assert not np.array_equal(base, other)

    def varied(strength: float) -> np.ndarray:
        return _hires_pixels(tiny_sd1_pipe, img2img_pipe, 5, subseed=99, subseed_strength=strength, **fields)

    assert np.array_equal(varied(0.0), base)
    assert np.array_equal(varied(1.0), other)
    middle = varied(0.5)
    assert not np.array_equal(middle, base) and not np.array_equal(middle, other)
    assert np.array_equal(varied(0.5), middle)


def test_the_second_pass_noise_is_the_variation_mix_added_once():
    # replace_start_noise swaps the noise of the run scheduler's first add_noise call only
    from diffusers import DPMSolverMultistepScheduler

    from pipelines.variation_noise import replace_start_noise, slerp, vary_batch_noise

    scheduler = DPMSolverMultistepScheduler()
    scheduler.set_timesteps(4)
    t = scheduler.timesteps[:1]
    latents = torch.zeros(1, 4, 16, 16)
    drawn = torch.randn((1, 4, 16, 16), generator=torch.Generator("cpu").manual_seed(21))
    other = torch.randn((4, 16, 16), generator=torch.Generator("cpu").manual_seed(99))
    replace_start_noise(scheduler, lambda noise: vary_batch_noise(noise, [21], [99], 0.3))
    first = scheduler.add_noise(latents, drawn, t)
    second = scheduler.add_noise(latents, drawn, t)
    plain = DPMSolverMultistepScheduler()
    plain.set_timesteps(4)
    assert torch.equal(first, plain.add_noise(latents, slerp(0.3, drawn[0], other)[None], t))
    assert torch.equal(second, plain.add_noise(latents, drawn, t))
    replace_start_noise(scheduler, lambda noise: noise[:, :2])
    with pytest.raises(ValueError, match="start noise of shape"):
        scheduler.add_noise(latents, drawn, t)


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"hr_scale": 1.5}, (96, 96)),
        ({"hr_resize_x": 96}, (96, 96)),
        ({"hr_resize_x": 128, "hr_resize_y": 96}, (128, 96)),  # covered at 128×128, centre-cropped
    ],
)
def test_output_size(tiny_sd1_pipe, img2img_pipe, fields, size):
    request = _hires(**fields, steps=2)
    assert request.output_size == size
    images = run_hires(tiny_sd1_pipe, request, [21], lambda *a: True, img2img_pipe=img2img_pipe)
    assert images[0].size == size


def test_latent_upscale_interpolates_then_crops_the_centre():
    latents = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(1, 4, 1, 1)
    out = upscale_latents(latents, HiresSize(upscale_to=(128, 128), target=(128, 96)), "Latent (nearest)")
    assert out.shape == (1, 4, 12, 16)
    full = torch.nn.functional.interpolate(latents, size=(16, 16), mode="nearest")
    assert torch.equal(out, full[:, :, 2:14, :])
    assert set(LATENT_UPSCALE_MODES) >= {
        "Latent",
        "Latent (antialiased)",
        "Latent (bicubic)",
        "Latent (nearest)",
    }


@pytest.mark.parametrize(
    ("fields", "needle", "only_with_hires"),
    [
        ({"hr_scale": 1.3, "width": 512, "height": 512}, "multiple of 8", True),
        ({"hr_scale": 4, "width": 1024, "height": 512}, "within 64..2048", True),
        ({"hr_resize_x": 100}, "hr_resize_x must be", True),
        ({"denoising_strength": 0.1, "hr_second_pass_steps": 5}, "no step", True),
        ({"hr_scale": 0.5}, "hr_scale", False),
        ({"hr_upscaler": ""}, "hr_upscaler", False),
    ],
)
def test_invalid_hires_settings_are_rejected(fields, needle, only_with_hires):
    with pytest.raises(ValueError, match=needle):
        _hires(**fields)
    if only_with_hires:  # the sizes and steps are checked only when hires fix is on
        Txt2ImgRequest(**{**FAST, **fields})


# --- through the Studio -----------------------------------------------------------------------------------


def test_studio_job_counts_both_passes_and_writes_both_in_the_infotext(make_studio):
    studio = make_studio(preview_every=0)
    request = _hires(hr_scale=2, hr_second_pass_steps=4, denoising_strength=0.5, hr_upscaler="Lanczos")
    job = studio.jobs.submit(request, "local")
    assert job.total == 3 + 2
    assert job.wait(120) and job.error is None, job.error
    assert job.step == job.total == 5
    image = job.images[0]
    assert Image.open(studio.gallery.file_path(image.id)).size == (128, 128)
    params = parse_infotext(image.infotext).params
    assert params["Size"] == "64x64" and params["Steps"] == "3"  # the first pass, as A1111 writes it
    assert (params["Hires upscale"], params["Hires steps"], params["Hires upscaler"]) == ("2", "4", "Lanczos")
    assert params["Denoising strength"] == "0.5" and "Hires resize" not in params
    again = Txt2ImgRequest(**request_fields_from_infotext(parse_infotext(image.infotext)))
    assert again == request.model_copy(update={"schedule_type": "Karras", "model": "tiny-sd1"})


def test_resize_is_written_instead_of_scale_and_plain_txt2img_has_no_hires_keys(make_studio):
    studio = make_studio(preview_every=0)
    job = studio.jobs.submit(_hires(hr_resize_x=96, hr_second_pass_steps=0, steps=2), "local")
    assert job.wait(120) and job.error is None, job.error
    params = parse_infotext(job.images[0].infotext).params
    assert params["Hires resize"] == "96x0" and "Hires upscale" not in params and "Hires steps" not in params
    assert Txt2ImgRequest(
        **request_fields_from_infotext(parse_infotext(job.images[0].infotext))
    ).output_size == (96, 96)
    plain = studio.jobs.submit(Txt2ImgRequest(**{**FAST, "steps": 2}), "local")
    assert plain.wait(120)
    assert "Hires" not in plain.images[0].infotext and "Denoising strength" not in plain.images[0].infotext


def test_an_unknown_upscaler_is_refused_at_submit_with_the_list(make_studio):
    studio = make_studio(preview_every=0)
    with pytest.raises(UnknownTool) as refused:
        studio.jobs.submit(_hires(hr_upscaler="R-ESRGAN 4x+ (not here)"), "local")
    assert "Unknown hires upscaler" in str(refused.value) and "Latent (bicubic)" in str(refused.value)
    assert studio.jobs.latest_job("local") is None  # nothing was queued
    assert "Lanczos" in studio.catalog.hires_upscalers() and "Latent" in studio.catalog.hires_upscalers()


def test_the_txt2img_tab_sends_the_new_fields(make_studio):
    import gradio as gr

    from ui import txt2img
    from ui.hires import size_note

    with gr.Blocks():
        parts = txt2img.build(make_studio(preview_every=0))
    names = set(parts.controls.fields.values())
    assert names >= {"subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h"}
    assert names >= {
        "enable_hr",
        "hr_scale",
        "hr_upscaler",
        "hr_second_pass_steps",
        "hr_resize_x",
        "hr_resize_y",
    }
    assert "denoising_strength" in names and set(names) <= set(Txt2ImgRequest.model_fields)
    assert size_note(True, 512, 512, 2, 0, 0) == "512×512 → 1024×1024"
    assert "multiple of 8" in size_note(True, 512, 512, 1.3, 0, 0)


# --- over the A1111 API -----------------------------------------------------------------------------------


def test_a1111_api_hires_and_variation_fields(tiny_models_dir, tmp_path):
    body = {
        "prompt": "api", "seed": 5, "steps": 2, "width": 64, "height": 64, "sampler_name": "Euler",
        "subseed": 9, "subseed_strength": 0.5, "seed_resize_from_w": -1, "seed_resize_from_h": -1,
        "enable_hr": True, "hr_scale": 2, "hr_upscaler": "Latent (bicubic)", "hr_second_pass_steps": 2,
        "denoising_strength": 0.5,
    }  # fmt: skip
    with (
        served_app(tiny_models_dir, tmp_path / "out", api=True) as (_, url),
        httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as http,
    ):
        assert {"name": "Latent (bicubic)"} in http.get("/latent-upscale-modes").json()
        answer = http.post("/txt2img", json=body)
        assert answer.status_code == 200, answer.text
        image = Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0])))
        info = json.loads(answer.json()["info"])
        bad = http.post("/txt2img", json={**body, "hr_upscaler": "nope"})
        kept = http.post("/txt2img", json={**body, "denoising_strength": 0, "hr_upscaler": "Lanczos"})
        wrong_size = http.post("/txt2img", json={**body, "hr_scale": 1.3, "width": 512, "height": 512})
    assert image.size == (128, 128)
    text = info["infotexts"][0]
    for pair in ("Variation seed: 9", "Variation seed strength: 0.5", "Hires upscale: 2", "Hires steps: 2"):
        assert pair in text
    assert "Hires upscaler: Latent (bicubic)" in text and "Seed resize from" not in text
    assert (info["subseed"], info["all_subseeds"], info["subseed_strength"]) == (9, [9], 0.5)
    assert info["warnings"] == []
    assert bad.status_code == 422 and "Unknown hires upscaler 'nope'" in bad.text
    assert wrong_size.status_code == 422 and "multiple of 8" in wrong_size.text
    # A1111 accepts strength 0: no second pass, the upscaled picture is the result
    assert kept.status_code == 200, kept.text
    assert Image.open(io.BytesIO(base64.b64decode(kept.json()["images"][0]))).size == (128, 128)
    assert "Denoising strength: 0" in json.loads(kept.json()["info"])["infotexts"][0]


# --- denoising strength 0: no second pass (A1111 keeps the upscaled picture) -----------------------------


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_at_denoising_strength_0_keeps_the_upscaled_first_pass(tiny_sd1_pipe, img2img_pipe, upscaler):
    from pipelines.hires import decode_latents

    request = _hires(hr_upscaler=upscaler, denoising_strength=0)
    assert request.steps_per_batch == FAST["steps"]  # nothing is counted for a second pass
    steps: list[tuple[int, int]] = []
    first: list[Image.Image] = []
    images = run_hires(
        tiny_sd1_pipe, request, [21], lambda s, n, lat: steps.append((s, n)) or True,
        img2img_pipe=img2img_pipe, first_pass=first,
    )  # fmt: skip
    assert steps == [(1, 3), (2, 3), (3, 3)]  # the first pass's steps only
    assert [im.size for im in images] == [(128, 128)]
    if upscaler == "Lanczos":
        expected = first[0].resize((128, 128), Image.Resampling.LANCZOS)
    else:
        latents = run_txt2img(tiny_sd1_pipe, request, [21], lambda *a: True, output_type="latent")
        upscaled = upscale_latents(torch.stack(list(latents)), request.hires_size, "Latent")
        expected = decode_latents(tiny_sd1_pipe, upscaled)[0]
    assert np.array_equal(np.asarray(images[0]), np.asarray(expected))
