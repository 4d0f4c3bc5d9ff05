"""Live previews: every N steps (no extra one at the end), only to the job's owner, TAESD when its weights are
in models/ (a diffusers AutoencoderTiny folder or a decoder .safetensors), loaded once per backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny
from PIL import Image

from core.backend import Progress
from core.requests import Txt2ImgRequest
from pipelines.taesd import Previewer, find_taesd, load_taesd, taesd_preview
from studio.jobs import NotYourJob
from tests.helpers import wait_for

FAST = {"prompt": "preview", "width": 64, "height": 64, "seed": 4, "model": "tiny-sd1"}


def _previews(studio, request) -> list[Image.Image]:
    events = list(studio.backend.run(request))
    return [e.preview for e in events if isinstance(e, Progress) and e.preview is not None]


def _tiny_taesd(seed: int = 0) -> AutoencoderTiny:
    torch.manual_seed(seed)
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    )


@pytest.fixture
def models_with_taesd(tiny_models_dir: Path, tmp_path: Path) -> Path:
    """A models/ folder with the tiny SD 1.x checkpoint and a tiny random TAESD (diffusers folder)."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy(tiny_models_dir / "tiny-sd1.safetensors", root / "tiny-sd1.safetensors")
    _tiny_taesd().save_pretrained(root / "taesd" / "taesd")
    return root


@pytest.mark.parametrize(("steps", "expected"), [(5, 2), (4, 2), (1, 0)])
def test_every_2_steps_gives_floor_steps_over_2_previews(make_studio, steps, expected):
    studio = make_studio(preview_every=2)
    previews = _previews(studio, Txt2ImgRequest(**FAST, steps=steps))
    assert len(previews) == expected
    assert all(p.size == (8, 8) for p in previews)  # no TAESD here: the latent map at 1/8 size


def test_hires_counts_both_passes_for_previews(make_studio):
    studio = make_studio(preview_every=2)
    request = Txt2ImgRequest(**FAST, steps=3, enable_hr=True, hr_second_pass_steps=3, denoising_strength=1.0)
    previews = _previews(studio, request)
    assert len(previews) == 3  # steps 2, 4, 6 of 3 + 3
    assert [p.size for p in previews] == [(8, 8), (16, 16), (16, 16)]  # the second pass runs at 128×128


def test_previews_reach_only_the_jobs_owner(make_studio):
    studio = make_studio(preview_every=1)
    job = studio.jobs.submit(Txt2ImgRequest(**FAST, steps=40), "alice")
    try:
        wait_for(lambda: job.preview is not None)
        assert studio.jobs.job(job.id, "alice").preview is not None
        with pytest.raises(NotYourJob):
            studio.jobs.job(job.id, "bob")
        assert studio.jobs.latest_job("bob") is None
    finally:
        studio.jobs.cancel(job.id, "alice")
        job.wait(60)


# --- TAESD ------------------------------------------------------------------------------------------------


def test_taesd_is_used_when_present_and_loaded_once(make_studio, models_with_taesd):
    studio = make_studio(models_dir=models_with_taesd, preview_every=2)
    previews = _previews(studio, Txt2ImgRequest(**FAST, steps=2))
    assert [p.size for p in previews] == [(64, 64)]  # decoded at full size, not the 8×8 latent map
    previewer = studio.backend.previews
    model = previewer.decoder("sd1")
    assert model is not None and previewer.decoder("sd2") is model  # SD 1.x and 2.x share TAESD
    _previews(studio, Txt2ImgRequest(**FAST, steps=2))
    assert previewer.decoder("sd1") is model  # one load per backend
    # the picture is TAESD's decode of the latents, the same as decoding with the saved model directly
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    direct = AutoencoderTiny.from_pretrained(models_with_taesd / "taesd" / "taesd").decode(latents).sample[0]
    expected = (
        ((direct + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).detach().numpy()
    )
    assert np.array_equal(np.asarray(previewer(latents, "sd1")), expected)
    # an SDXL model would need taesdxl, which is not there: the latent map is used
    assert previewer.decoder("sdxl") is None
    assert previewer(latents, "sdxl").size == (8, 8)


def test_taesd_decoder_files_in_the_taesd_layout(tmp_path):
    # a decoder-only file as the TAESD repository ships it: nn.Sequential keys whose item 0 is the clamp
    reference = AutoencoderTiny()
    torch.manual_seed(3)
    for parameter in reference.decoder.parameters():
        parameter.data.normal_(0, 0.05)
    state = {}
    for key, value in reference.decoder.state_dict().items():
        index, _, rest = key.removeprefix("layers.").partition(".")
        state[f"{int(index) + 1}.{rest}"] = value.contiguous()
    from safetensors.torch import save_file

    folder = tmp_path / "VAE-approx"
    folder.mkdir()
    save_file(state, folder / "taesdxl_decoder.safetensors")
    assert find_taesd(tmp_path, "sd1") is None
    path = find_taesd(tmp_path, "sdxl")
    assert path == folder / "taesdxl_decoder.safetensors"
    loaded = load_taesd(path)
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    assert np.array_equal(
        np.asarray(taesd_preview(loaded, latents)), np.asarray(taesd_preview(reference, latents))
    )
    # pickles are never read, and a broken file falls back to the latent map
    (tmp_path / "taesd").mkdir()
    (tmp_path / "taesd" / "taesd_decoder.pth").write_bytes(b"not read")
    assert find_taesd(tmp_path, "sd1") is None
    (tmp_path / "taesd" / "taesd_decoder.safetensors").write_bytes(b"broken")
    previewer = Previewer(tmp_path)
    assert previewer.decoder("sd1") is None and previewer(latents, "sd1").size == (4, 4)
