"""Variation seeds and seed resize: A1111's start noise, pixel-exact at the ends, per image, validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.images import encode_png
from core.infotext import parse_infotext, request_fields_from_infotext
from core.requests import Img2ImgRequest, InpaintRequest, Txt2ImgRequest
from pipelines.sampling import generators_for
from pipelines.txt2img import initial_latents, run_txt2img
from pipelines.variation_noise import (
    image_noise,
    replace_start_noise,
    skip_draws_before_first_step,
    slerp,
    vary_batch_noise,
)

FAST = {"steps": 3, "width": 64, "height": 64, "sampler": "DPM++ 2M", "prompt": "a fox"}


def _pixels(pipe, seeds, **fields) -> list[np.ndarray]:
    request = Txt2ImgRequest(**{**FAST, "seed": seeds[0], **fields})
    return [np.asarray(image) for image in run_txt2img(pipe, request, seeds, lambda *a: True)]


def _randn(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))


# --- pixels ----------------------------------------------------------------------------------------------


def test_strength_0_is_the_seed_and_strength_1_is_the_variation_seed(tiny_sd1_pipe):
    base = _pixels(tiny_sd1_pipe, [5])[0]
    other = _pixels(tiny_sd1_pipe, [99])[0]
    assert np.array_equal(_pixels(tiny_sd1_pipe, [5], subseed=99, subseed_strength=0.0)[0], base)
    assert np.array_equal(_pixels(tiny_sd1_pipe, [5], subseed=99, subseed_strength=1.0)[0], other)
    middle = _pixels(tiny_sd1_pipe, [5], subseed=99, subseed_strength=0.5)[0]
    assert not np.array_equal(middle, base) and not np.array_equal(middle, other)
    assert np.array_equal(_pixels(tiny_sd1_pipe, [5], subseed=99, subseed_strength=0.5)[0], middle)


def test_image_i_uses_seed_plus_i_and_subseed_plus_i(tiny_sd1_pipe):
    fields = {"subseed": 40, "subseed_strength": 0.3}
    # the start noise of batch slot 1 is exactly that of a job whose first image has seed 6 / subseed 41
    batch = initial_latents(
        tiny_sd1_pipe, generators_for([5, 6]), 64, 64, seeds=[5, 6], subseeds=[40, 41], subseed_strength=0.3
    )
    single = initial_latents(
        tiny_sd1_pipe, generators_for([6]), 64, 64, seeds=[6], subseeds=[41], subseed_strength=0.3
    )
    assert torch.equal(batch[1], single[0])
    # the pictures: a batch of two and the second one alone (batched matmuls may round the last bit)
    in_batch = _pixels(tiny_sd1_pipe, [5, 6], **fields)[1]
    alone = _pixels(tiny_sd1_pipe, [6], subseed=41, subseed_strength=0.3)[0]
    assert np.abs(in_batch.astype(int) - alone.astype(int)).max() <= 2


def test_a_variation_keeps_the_step_noise_of_the_seed():
    # with strength 1 the start noise is the variation seed's, but the generator (ancestral step noise) has
    # advanced exactly as for the base seed alone
    g_plain, g_varied = generators_for([5]), generators_for([5])
    image_noise(g_varied[0], 5, 99, 1.0, (4, 8, 8))
    torch.randn((1, 4, 8, 8), generator=g_plain[0])
    assert torch.equal(torch.randn(16, generator=g_plain[0]), torch.randn(16, generator=g_varied[0]))


# --- the noise itself ------------------------------------------------------------------------------------


def test_slerp_ends_and_unit_columns():
    low, high = _randn(1, (4, 8, 8)), _randn(2, (4, 8, 8))
    assert torch.equal(slerp(0.0, low, high), low) and torch.equal(slerp(1.0, low, high), high)
    unit_low, unit_high = (t / torch.norm(t, dim=1, keepdim=True) for t in (low, high))
    mixed = slerp(0.3, unit_low, unit_high)  # spherical: columns of unit length stay unit length
    assert torch.allclose(torch.norm(mixed, dim=1), torch.ones(4, 8), atol=1e-5)


def test_seed_resize_keeps_the_centre_of_the_smaller_seeds_noise(tiny_sd1_pipe):
    # 128×96 picture, noise drawn as for 96×96: latents 12×16, the 12×12 noise pasted at columns 2..14
    latents = initial_latents(
        tiny_sd1_pipe, generators_for([7]), 128, 96, seeds=[7], subseeds=[0], resize_from=(96, 96)
    )
    small = _randn(7, (1, 4, 12, 12))
    assert latents.shape == (1, 4, 12, 16)
    assert torch.equal(latents[0, :, :, 2:14], small[0])
    assert not torch.equal(
        latents[0, :, :, :2], small[0, :, :, :2]
    )  # the border comes from the full-size draw
    # the other way: a 96×96 picture resized from 128×96 is the centre crop of the larger noise
    cropped = initial_latents(
        tiny_sd1_pipe, generators_for([7]), 96, 96, seeds=[7], subseeds=[0], resize_from=(128, 96)
    )
    assert torch.equal(cropped[0], _randn(7, (4, 12, 16))[:, :, 2:14])


def test_seed_resize_to_the_same_size_changes_nothing(tiny_sd1_pipe):
    plain = initial_latents(tiny_sd1_pipe, generators_for([3]), 64, 64)
    same = initial_latents(
        tiny_sd1_pipe, generators_for([3]), 64, 64, seeds=[3], subseeds=[0], resize_from=(64, 64)
    )
    assert torch.equal(plain, same)


# --- requests, infotext, Studio ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"subseed_strength": 1.5}, "subseed_strength"),
        ({"subseed_strength": float("nan")}, "subseed_strength"),
        ({"seed_resize_from_w": 64}, "both"),
        ({"seed_resize_from_w": 100, "seed_resize_from_h": 64}, "multiple of 8"),
        ({"seed_resize_from_w": 32, "seed_resize_from_h": 64}, "multiple of 8 within"),
        ({"subseed": 2**32 - 1, "batch_size": 2}, "variation seed may be at most"),
    ],
)
def test_bad_variation_fields_are_rejected(fields, needle):
    with pytest.raises(ValueError, match=needle):
        Txt2ImgRequest(**fields)


def test_studio_resolves_the_variation_seed_and_the_infotext_brings_it_back(make_studio):
    studio = make_studio(preview_every=0)
    request = Txt2ImgRequest(
        **FAST, seed=11, batch_size=2, subseed_strength=0.25, seed_resize_from_w=72, seed_resize_from_h=64
    )
    job = studio.jobs.submit(request, "local")
    assert job.wait(120) and job.error is None, job.error
    subseed = job.request.subseed
    assert subseed != -1
    for i, image in enumerate(job.images):
        params = parse_infotext(image.infotext).params
        assert params["Variation seed"] == str(subseed + i)
        assert params["Variation seed strength"] == "0.25"
        assert params["Seed resize from"] == "72x64"
        again = Txt2ImgRequest(**request_fields_from_infotext(parse_infotext(image.infotext)))
        assert (again.seed, again.subseed) == (11 + i, subseed + i)
        assert (again.subseed_strength, again.seed_resize_from) == (0.25, (72, 64))
    plain = studio.jobs.submit(Txt2ImgRequest(**FAST, seed=11), "local")
    assert plain.wait(120)
    assert plain.request.subseed == -1  # strength 0: no variation seed drawn, none written
    assert "Variation" not in plain.images[0].infotext and "Seed resize" not in plain.images[0].infotext


def test_an_a1111_infotext_with_variation_and_hires_pastes_into_a_request():
    text = (
        "castle\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Model hash: 6ce0161689, Variation seed: 2, Variation seed strength: 0.3, Seed resize from: 512x384, "
        "Denoising strength: 0.6, Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent (nearest-exact), "
        "Version: v1.6.0"
    )
    request = Txt2ImgRequest(**request_fields_from_infotext(parse_infotext(text)))
    assert (request.subseed, request.subseed_strength, request.seed_resize_from) == (2, 0.3, (512, 384))
    assert (request.enable_hr, request.hr_scale, request.hr_second_pass_steps) == (True, 1.5, 10)
    assert (request.hr_upscaler, request.denoising_strength, request.output_size) == (
        "Latent (nearest-exact)",
        0.6,
        (768, 768),
    )
    # pasting an infotext without them turns them off, whatever the tab had
    plain = request_fields_from_infotext(parse_infotext("p\nSteps: 20, Sampler: Euler, Seed: 1, Size: 64x64"))
    assert (plain["enable_hr"], plain["subseed_strength"], plain["seed_resize_from_w"]) == (False, 0.0, 0)


# --- img2img and inpaint ---------------------------------------------------------------------------------

SOURCE_FAST = {"steps": 4, "width": 64, "height": 64, "sampler": "Euler", "prompt": "a fox"}
# (task, model, denoising strength): below full strength the scheduler adds the mixed noise to the source;
# at full strength inpaint starts from the mixed noise itself (drawn first by 9-channel models, after the
# source's VAE sample by 4-channel ones)
SOURCE_CASES = [
    ("img2img", "tiny-sd1", 0.6),
    ("inpaint", "tiny-sd1", 0.75),
    ("inpaint", "tiny-sd1", 1.0),
    ("inpaint", "tiny-sd1-inpainting", 0.75),
    ("inpaint", "tiny-sd1-inpainting", 1.0),
]


def _source_picture(size=(64, 64)) -> Image.Image:
    rng = np.random.default_rng(0)
    base = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    base[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(255, 0, size[1], dtype=np.uint8)[:, None]
    base[..., 2] = rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)
    return Image.fromarray(base, "RGB")


def _source_mask(size=(64, 64)) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((16, 12, 47, 51), fill=255)
    return mask


def _source_request(task: str, model: str, denoising: float, **fields):
    common = {**SOURCE_FAST, "model": model, "denoising_strength": denoising, **fields}
    if task == "img2img":
        return Img2ImgRequest(init_image=encode_png(_source_picture()), **common)
    return InpaintRequest(
        init_image=encode_png(_source_picture()), mask=encode_png(_source_mask()), mask_blur=0, **common
    )


@pytest.fixture(scope="module")
def source_studio(tiny_models_dir, tmp_path_factory):
    from app import build_studio
    from core.settings import Settings

    settings = Settings(
        models_dir=tiny_models_dir, outputs_dir=tmp_path_factory.mktemp("out"), device="cpu",
        default_model="tiny-sd1", preview_every=0,
    )  # fmt: skip
    studio = build_studio(settings)
    studio.start()
    yield studio
    studio.close()


def _made(studio, request) -> tuple[np.ndarray, str]:
    job = studio.jobs.submit(request, "local")
    assert job.wait(120) and job.error is None, job.error
    image = job.images[0]
    return np.asarray(Image.open(studio.gallery.file_path(image.id))), image.infotext


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.mark.parametrize(("task", "model", "denoising"), SOURCE_CASES)
def test_variation_seeds_in_img2img_and_inpaint(source_studio, task, model, denoising):
    _check_source_variation(source_studio, task, model, denoising)


@pytest.fixture(scope="module")
def xl_studio(tmp_path_factory):
    from app import build_studio
    from core.settings import Settings
    from pipelines.tiny import save_tiny

    models = tmp_path_factory.mktemp("xl-models")
    save_tiny(models / "tiny-xl.safetensors", arch="sdxl", seed=0)
    save_tiny(models / "tiny-xl-inpainting.safetensors", arch="sdxl", inpaint=True, seed=0)
    settings = Settings(
        models_dir=models, outputs_dir=tmp_path_factory.mktemp("xl-out"), device="cpu",
        default_model="tiny-xl", preview_every=0,
    )  # fmt: skip
    studio = build_studio(settings)
    studio.start()
    yield studio
    studio.close()


@pytest.mark.parametrize(
    ("task", "model", "denoising"),
    [
        ("img2img", "tiny-xl", 0.6),
        ("inpaint", "tiny-xl", 1.0),
        ("inpaint", "tiny-xl-inpainting", 0.75),
        ("inpaint", "tiny-xl-inpainting", 1.0),
    ],
)
def test_variation_seeds_in_sdxl_img2img_and_inpaint(xl_studio, task, model, denoising):
    _check_source_variation(xl_studio, task, model, denoising)


def _check_source_variation(studio, task: str, model: str, denoising: float) -> None:
    def made(**fields):
        return _made(studio, _source_request(task, model, denoising, **fields))

    base, _ = made(seed=5)
    other, _ = made(seed=99)
    zero, _ = made(seed=5, subseed=99, subseed_strength=0.0)
    assert np.array_equal(zero, base)
    middle, infotext = made(seed=5, subseed=99, subseed_strength=0.5)
    assert not np.array_equal(middle, base) and not np.array_equal(middle, other)
    assert np.array_equal(made(seed=5, subseed=99, subseed_strength=0.5)[0], middle)
    params = parse_infotext(infotext).params
    assert (params["Variation seed"], params["Variation seed strength"]) == ("99", "0.5")
    # strength 1: exactly the variation seed's picture (its start noise and its VAE samples of the source)
    one, _ = made(seed=5, subseed=99, subseed_strength=1.0)
    assert np.array_equal(one, other), _diff(one, other)
    if task == "inpaint":
        outside = np.asarray(_source_mask()) == 0
        source = np.asarray(_source_picture())
        for picture in (middle, one):
            assert np.array_equal(picture[outside], source[outside])


def test_the_variation_noise_of_a_source_task_is_the_variation_seeds_own_start_noise():
    # img2img and inpaint pipelines draw the noise second (after the source's VAE sample, of the same shape):
    # at strength 1 the mix is exactly the noise the variation seed's own run draws there, and at 0 the seed's
    shape = (1, 4, 8, 8)
    own = [torch.Generator("cpu").manual_seed(s) for s in (5, 99)]
    for generator in own:
        torch.randn(shape, generator=generator)  # the VAE sample
    drawn_5, drawn_99 = (torch.randn(shape, generator=g) for g in own)
    assert torch.equal(vary_batch_noise(drawn_5, [5], [99], 1.0, draw=2), drawn_99)
    assert torch.equal(vary_batch_noise(drawn_5, [5], [99], 0.0, draw=2), drawn_5)
    assert not torch.equal(vary_batch_noise(drawn_5, [5], [99], 1.0, draw=1), drawn_99)


def test_the_swapped_start_noise_is_used_wherever_the_drawn_noise_is():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler()
    scheduler.set_timesteps(4)
    drawn, other = _randn(1, (1, 4, 8, 8)), _randn(2, (1, 4, 8, 8))
    replacement = _randn(3, (1, 4, 8, 8))
    source = torch.zeros(1, 4, 8, 8)
    t = scheduler.timesteps[:1]
    plain = EulerDiscreteScheduler()
    plain.set_timesteps(4)
    replace_start_noise(scheduler, lambda noise: replacement, every_use=True)
    first = scheduler.add_noise(source, drawn, t)
    # 4-channel inpaint re-noises the source at every step with the same tensor: the same replacement
    again = scheduler.add_noise(source, drawn, scheduler.timesteps[1:2])
    assert torch.equal(first, plain.add_noise(source, replacement, t))
    assert torch.equal(again, plain.add_noise(source, replacement, plain.timesteps[1:2]))
    assert torch.equal(scheduler.add_noise(source, other, t), plain.add_noise(source, other, t))


def test_skipping_a_draw_before_the_first_step_puts_the_generators_where_the_drawn_run_has_them():
    class Stepper:
        def step(self, *args, **kwargs):
            return "stepped"

    stepper = Stepper()
    generators = generators_for([5, 6])
    drawn = generators_for([5, 6])
    for generator in drawn:
        torch.randn((1, 4, 8, 8), generator=generator)
    skip_draws_before_first_step(stepper, generators, (1, 4, 8, 8), torch.float32)
    assert stepper.step() == "stepped"
    assert stepper.step() == "stepped"  # only once
    for mine, theirs in zip(generators, drawn, strict=True):
        assert torch.equal(torch.randn(16, generator=mine), torch.randn(16, generator=theirs))
