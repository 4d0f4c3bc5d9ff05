"""img2img and inpaint on tiny checkpoints: sizes, determinism, strength, exact pixels outside the mask."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from core.images import encode_png
from core.requests import Img2ImgRequest, InpaintRequest
from studio import JobState

FAST = {"steps": 4, "width": 64, "height": 64}


def _photo(size=(96, 80), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    base[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(255, 0, size[1], dtype=np.uint8)[:, None]
    base[..., 2] = rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)
    return Image.fromarray(base, "RGB")


def _mask(size=(96, 80), box=(30, 20, 70, 60)) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def _done(studio, request, user="local"):
    job = studio.jobs.submit(request, user)
    assert job.wait(120)
    assert job.state is JobState.DONE, job.error
    return [np.asarray(Image.open(studio.gallery.file_path(i.id))) for i in job.images], job


@pytest.mark.parametrize("mode", ["just resize", "crop and resize", "resize and fill"])
def test_img2img_resize_modes_give_the_requested_size(studio, mode):
    request = Img2ImgRequest(
        init_image=encode_png(_photo()), resize_mode=mode, seed=1, **{**FAST, "width": 72}
    )
    images, job = _done(studio, request)
    assert images[0].shape == (64, 72, 3)
    assert "Denoising strength: 0.75" in job.images[0].infotext
    assert f"Resize mode: {mode.capitalize()}" in job.images[0].infotext


def test_img2img_same_seed_same_pixels_and_low_strength_stays_closer(studio):
    source = _photo((64, 64))
    src = np.asarray(source).astype(int)
    a, _ = _done(
        studio, Img2ImgRequest(init_image=encode_png(source), seed=5, denoising_strength=0.5, **FAST)
    )
    b, _ = _done(
        studio, Img2ImgRequest(init_image=encode_png(source), seed=5, denoising_strength=0.5, **FAST)
    )
    assert np.array_equal(a[0], b[0])
    distances = []
    for strength in (0.25, 0.5, 1.0):
        out, _ = _done(
            studio, Img2ImgRequest(init_image=encode_png(source), seed=5, denoising_strength=strength, **FAST)
        )
        distances.append(np.abs(out[0].astype(int) - src).mean())
    assert distances[0] < distances[1] < distances[2]


def test_img2img_strength_zero_returns_the_source(studio):
    source = _photo((64, 64))
    out, _ = _done(
        studio, Img2ImgRequest(init_image=encode_png(source), seed=5, denoising_strength=0, **FAST)
    )
    assert np.array_equal(out[0], np.asarray(source))


def test_img2img_seed_in_a_batch_slot_gives_the_same_picture(studio):
    png = encode_png(_photo((64, 64)))
    batch, _ = _done(studio, Img2ImgRequest(init_image=png, seed=30, batch_size=2, **FAST))
    alone, _ = _done(studio, Img2ImgRequest(init_image=png, seed=31, **FAST))
    assert np.abs(batch[1].astype(int) - alone[0].astype(int)).max() <= 2


@pytest.mark.parametrize("model", ["tiny-sd1", "tiny-sd1-inpainting"])
@pytest.mark.parametrize("area", ["whole picture", "only masked"])
def test_inpaint_keeps_every_pixel_outside_the_mask(studio, model, area):
    source, mask = _photo(), _mask()
    request = InpaintRequest(
        model=model,
        init_image=encode_png(source),
        mask=encode_png(mask),
        mask_blur=0,
        inpaint_area=area,
        only_masked_padding=8,
        denoising_strength=1.0,
        seed=3,
        batch_size=2,
        **FAST,
    )
    images, job = _done(studio, request)
    outside = np.asarray(mask) == 0
    for image in images:
        assert image.shape == (80, 96, 3)  # the source's size, whatever the working size
        assert np.array_equal(image[outside], np.asarray(source)[outside])
        assert not np.array_equal(image[~outside], np.asarray(source)[~outside])
    assert f"Inpaint area: {area.capitalize()}" in job.images[0].infotext


def test_inpaint_feather_band_blends_inside_the_mask_only(studio):
    source, mask = _photo(), _mask()
    request = InpaintRequest(
        init_image=encode_png(source),
        mask=encode_png(mask),
        mask_blur=6,
        denoising_strength=1.0,
        seed=4,
        **FAST,
    )
    images, job = _done(studio, request)
    out, src, hard = images[0].astype(int), np.asarray(source).astype(int), np.asarray(mask)
    assert np.array_equal(out[hard == 0], src[hard == 0])
    edge = (slice(20, 61), 30)  # the mask's left edge column: the soft band starts here
    centre = (40, 50)
    assert np.abs(out[edge] - src[edge]).mean() < np.abs(out[centre] - src[centre]).mean() + 1
    assert "Mask blur: 6" in job.images[0].infotext


@pytest.mark.parametrize("content", ["original", "fill", "latent noise", "latent nothing"])
def test_inpaint_masked_content_modes(studio, content):
    source, mask = _photo(), _mask()
    request = InpaintRequest(
        init_image=encode_png(source),
        mask=encode_png(mask),
        mask_blur=0,
        masked_content=content,
        denoising_strength=0.5,
        seed=6,
        **FAST,
    )
    images, job = _done(studio, request)
    outside = np.asarray(mask) == 0
    assert np.array_equal(images[0][outside], np.asarray(source)[outside])
    assert f"Masked content: {content}" in job.images[0].infotext


def test_inverted_mask_repaints_the_other_side(studio):
    source, mask = _photo(), _mask()
    request = InpaintRequest(
        init_image=encode_png(source),
        mask=encode_png(mask),
        mask_blur=0,
        invert_mask=True,
        denoising_strength=1.0,
        seed=7,
        **FAST,
    )
    images, _ = _done(studio, request)
    inside = np.asarray(mask) == 255
    assert np.array_equal(images[0][inside], np.asarray(source)[inside])


def test_rgba_source_keeps_its_alpha_outside_the_mask(studio):
    source = _photo().convert("RGBA")
    source.putalpha(Image.new("L", source.size, 200))
    mask = _mask()
    request = InpaintRequest(
        init_image=encode_png(source),
        mask=encode_png(mask.convert("RGBA")),
        mask_blur=0,
        denoising_strength=1.0,
        seed=8,
        **FAST,
    )
    images, _ = _done(studio, request)
    outside = np.asarray(mask) == 0
    assert images[0].shape == (80, 96, 4)
    assert np.array_equal(images[0][outside], np.asarray(source)[outside])


def test_empty_mask_is_a_clear_error_and_nothing_is_saved(studio):
    before = studio.gallery.count()
    request = InpaintRequest(
        init_image=encode_png(_photo()), mask=encode_png(Image.new("L", (96, 80), 0)), seed=1, **FAST
    )
    job = studio.jobs.submit(request, "local")
    assert job.wait(60) and job.state is JobState.FAILED
    assert "mask is empty" in job.error
    assert studio.gallery.count() == before


def test_mask_of_another_size_is_a_clear_error(studio):
    request = InpaintRequest(
        init_image=encode_png(_photo()), mask=encode_png(_mask((50, 50), (5, 5, 20, 20))), seed=1, **FAST
    )
    job = studio.jobs.submit(request, "local")
    assert job.wait(60) and job.state is JobState.FAILED
    assert "50" in job.error and "96" in job.error


def test_bad_images_are_rejected_at_the_boundary():
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    with pytest.raises(ValidationError, match="init_image"):
        Img2ImgRequest(init_image=gif.getvalue(), **FAST)
    with pytest.raises(ValidationError, match="init_image"):
        Img2ImgRequest(init_image=b"not an image", **FAST)
    with pytest.raises(ValidationError, match="no step to sample"):
        Img2ImgRequest(init_image=encode_png(_photo()), denoising_strength=0.1, steps=4)


def test_switching_tasks_never_loads_again_and_shares_weights(studio):
    manager = studio.backend.manager
    png = encode_png(_photo((64, 64)))
    _done(studio, Img2ImgRequest(init_image=png, seed=1, **FAST))
    _done(
        studio,
        InpaintRequest(init_image=png, mask=encode_png(_mask((64, 64), (10, 10, 40, 40))), seed=1, **FAST),
    )
    loads = manager.load_count
    _done(studio, Img2ImgRequest(init_image=png, seed=2, **FAST))
    assert manager.load_count == loads
    entry = studio.backend.registry.get("tiny-sd1")
    with manager.lease(entry) as base:
        cached = manager._on_device[entry.name].derived
        assert set(cached) >= {"img2img", "inpaint"}
        for derived in cached.values():
            assert derived.unet.conv_in.weight.data_ptr() == base.unet.conv_in.weight.data_ptr()
            assert derived.vae is base.vae and derived.text_encoder is base.text_encoder


@pytest.mark.parametrize("fill", ["edge stretch", "noise"])
def test_outpaint_makes_the_bigger_canvas_and_keeps_the_original_exact(studio, fill):
    from core.requests import outpaint_request

    source = _photo((64, 48))
    request = outpaint_request(
        encode_png(source), left=16, right=8, top=0, bottom=24, fill=fill, prompt="more sky", seed=9, steps=4
    )
    assert (request.width, request.height) == (88, 72)
    images, job = _done(studio, request)
    out = images[0]
    assert out.shape == (72, 88, 3)
    assert np.array_equal(out[0:48, 16:80], np.asarray(source))
    assert not np.array_equal(out[:, :16], np.zeros_like(out[:, :16]))
    assert "Inpaint area: Whole picture" in job.images[0].infotext


def test_outpaint_with_nothing_to_extend_is_a_clear_error():
    from core.requests import outpaint_request

    with pytest.raises(ValueError, match="outpaint"):
        outpaint_request(encode_png(_photo((64, 48))), prompt="x")


def test_outpaint_to_an_aspect_ratio(studio):
    from core.requests import outpaint_request

    request = outpaint_request(encode_png(_photo((64, 48))), aspect=1.0, prompt="x", seed=1, steps=4)
    images, _ = _done(studio, request)
    assert images[0].shape == (64, 64, 3)
    assert np.array_equal(images[0][8:56, :], np.asarray(_photo((64, 48))))


def test_full_mask_repaints_everything(studio):
    source = _photo((64, 64))
    request = InpaintRequest(
        init_image=encode_png(source), mask=encode_png(Image.new("L", (64, 64), 255)), mask_blur=0,
        denoising_strength=1.0, seed=2, **FAST,
    )  # fmt: skip
    images, _ = _done(studio, request)
    assert images[0].shape == (64, 64, 3)
    assert np.mean(np.any(images[0] != np.asarray(source), axis=2)) > 0.9


def test_deriving_task_pipelines_adds_no_weight_memory(tiny_models_dir):
    import gc

    import psutil
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

    from pipelines.device import choose_device
    from pipelines.loader import load_pipeline
    from pipelines.manager import PipelineManager
    from pipelines.registry import ModelRegistry

    device = choose_device("cpu", "fp32")
    manager = PipelineManager(lambda e, d: load_pipeline(e, device=d.device, dtype=d.dtype), device)
    entry = ModelRegistry(tiny_models_dir).get("tiny-sd1")
    process = psutil.Process()
    with manager.lease(entry) as base:
        weights = sum(
            p.numel() * p.element_size()
            for m in (base.unet, base.vae, base.text_encoder)
            for p in m.parameters()
        )
        gc.collect()
        before = process.memory_info().rss
        for task, cls in (
            ("img2img", StableDiffusionImg2ImgPipeline),
            ("inpaint", StableDiffusionInpaintPipeline),
        ):
            manager.derive(base, task, cls)
        gc.collect()
        grown = process.memory_info().rss - before
    assert manager.load_count == 1
    assert grown < weights / 4, (
        f"deriving grew RSS by {grown / 2**20:.1f} MiB (weights: {weights / 2**20:.1f} MiB)"
    )
