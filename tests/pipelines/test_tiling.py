"""Tiling: circular padding in the UNet and the VAE for one job only. With it the models are translation
equivariant around the picture's edges (what leaves one side comes back on the other), so the edges wrap; a
tiling job leaves nothing behind in the shared, cached pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.infotext import parse_infotext, request_fields_from_infotext
from core.requests import Txt2ImgRequest
from pipelines.tiling import padding_modes, tiled
from studio import JobState

FAST = {"prompt": "a seamless leaf pattern", "steps": 2, "width": 64, "height": 64, "seed": 31}


def _decode(pipe, latents: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        out = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return out[0].permute(1, 2, 0).float().numpy()


def test_the_padding_is_circular_inside_the_block_and_restored_after_it_even_on_error(tiny_sd1_pipe):
    assert padding_modes(tiny_sd1_pipe) == {"zeros"}
    with tiled(tiny_sd1_pipe):
        assert padding_modes(tiny_sd1_pipe) == {"circular"}
    assert padding_modes(tiny_sd1_pipe) == {"zeros"}
    with pytest.raises(RuntimeError), tiled(tiny_sd1_pipe):
        raise RuntimeError("a failing job")
    assert padding_modes(tiny_sd1_pipe) == {"zeros"}
    with tiled(tiny_sd1_pipe, enabled=False):
        assert padding_modes(tiny_sd1_pipe) == {"zeros"}


def test_a_tiled_vae_decode_wraps_at_the_edges(tiny_sd1_pipe):
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    shifted = torch.roll(latents, shifts=8, dims=3)  # half the width, in latent cells (8 px each)
    with tiled(tiny_sd1_pipe):
        picture, picture_of_shifted = _decode(tiny_sd1_pipe, latents), _decode(tiny_sd1_pipe, shifted)
    # the decode of the shifted latents is the shifted picture: the edge columns meet as neighbours do
    assert np.abs(picture_of_shifted - np.roll(picture, 64, axis=1)).max() < 1e-4
    columns = np.abs(np.diff(picture, axis=1)).mean(axis=(0, 2))
    assert np.abs(picture[:, 0] - picture[:, -1]).mean() <= 1.5 * np.median(columns)
    # without tiling the borders are zero-padded: shifting is not the same
    plain, plain_of_shifted = _decode(tiny_sd1_pipe, latents), _decode(tiny_sd1_pipe, shifted)
    assert np.abs(plain_of_shifted - np.roll(plain, 64, axis=1)).max() > 1e-2


def test_a_tiled_unet_is_translation_equivariant(tiny_sd1_pipe):
    unet = tiny_sd1_pipe.unet
    sample = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    context = torch.randn(1, 77, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(2))

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return unet(x, 500, encoder_hidden_states=context, return_dict=False)[0]

    # shifted by whole cells of the deepest level (the UNet halves the size three times)
    with tiled(tiny_sd1_pipe):
        gap = (run(torch.roll(sample, 8, dims=3)) - torch.roll(run(sample), 8, dims=3)).abs().max()
    assert gap < 1e-4
    plain_gap = (run(torch.roll(sample, 8, dims=3)) - torch.roll(run(sample), 8, dims=3)).abs().max()
    assert plain_gap > 1e-3


def _pixels(studio, request) -> tuple[np.ndarray, str]:
    job = studio.jobs.submit(request, "local")
    assert job.wait(120) and job.state is JobState.DONE, job.error
    image = job.images[0]
    return np.asarray(Image.open(studio.gallery.file_path(image.id)).convert("RGB")), image.infotext


def test_a_tiling_job_leaves_the_next_job_exactly_as_on_a_fresh_model(make_studio):
    fresh_plain, _ = _pixels(make_studio(), Txt2ImgRequest(**FAST))
    studio = make_studio()
    tiled_pixels, infotext = _pixels(studio, Txt2ImgRequest(tiling=True, **FAST))
    plain_after, plain_infotext = _pixels(studio, Txt2ImgRequest(**FAST))
    assert not np.array_equal(tiled_pixels, fresh_plain)  # tiling changed the picture
    assert np.array_equal(plain_after, fresh_plain)  # and nothing of it stayed in the cached pipeline
    entry = studio.backend.registry.get("tiny-sd1")
    with studio.backend.manager.lease(entry) as pipe:
        assert padding_modes(pipe) == {"zeros"}
    assert "Tiling: True" in infotext and "Tiling" not in plain_infotext
    parsed = parse_infotext(infotext)
    assert request_fields_from_infotext(parsed)["tiling"] is True
    assert request_fields_from_infotext(parse_infotext(plain_infotext))["tiling"] is False
    assert Txt2ImgRequest(**request_fields_from_infotext(parsed)).tiling is True


def test_tiling_in_img2img_and_with_hires(make_studio):
    from core.images import encode_png
    from core.requests import Img2ImgRequest

    studio = make_studio()
    source = encode_png(Image.new("RGB", (64, 64), (40, 120, 200)))
    pixels, infotext = _pixels(
        studio, Img2ImgRequest(init_image=source, denoising_strength=0.6, tiling=True, **FAST)
    )
    assert pixels.shape == (64, 64, 3) and "Tiling: True" in infotext
    hires = Txt2ImgRequest(
        enable_hr=True, hr_second_pass_steps=2, denoising_strength=0.5, tiling=True, **FAST
    )
    pixels, infotext = _pixels(studio, hires)
    assert pixels.shape == (128, 128, 3) and "Tiling: True" in infotext
