import numpy as np
import pytest
import torch

from core.backend import JobCancelled
from core.requests import Txt2ImgRequest
from core.samplers import SAMPLERS
from pipelines.schedulers import make_scheduler, with_scheduler
from pipelines.txt2img import run_txt2img


def _run(pipe, seeds, **fields):
    fields = {"prompt": "a red fox logo", "steps": 3, "width": 64, "height": 64, "seed": seeds[0], **fields}
    images = run_txt2img(pipe, Txt2ImgRequest(**fields), seeds, lambda *_: True)
    return [np.asarray(i) for i in images]


def test_output_size_and_count(tiny_sd1_pipe):
    images = _run(tiny_sd1_pipe, [5, 6], width=96, height=64)
    assert [i.shape for i in images] == [(64, 96, 3), (64, 96, 3)]


def test_same_seed_same_pixels_different_seed_different(tiny_sd1_pipe):
    a = _run(tiny_sd1_pipe, [42])[0]
    b = _run(tiny_sd1_pipe, [42])[0]
    c = _run(tiny_sd1_pipe, [43])[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("sampler", ["DPM++ 2M", "Euler a", "DPM2 a"])
def test_a_seed_gives_the_same_image_in_any_batch_slot(tiny_sd1_pipe, sampler):
    alone = _run(tiny_sd1_pipe, [8], sampler=sampler)[0]
    in_batch = _run(tiny_sd1_pipe, [7, 8], sampler=sampler)[1]
    # batched matmuls may round differently in the last bit; the composition must be the same
    assert np.abs(alone.astype(int) - in_batch.astype(int)).max() <= 2


def test_start_noise_does_not_depend_on_the_device_generator(tiny_sd1_pipe):
    from pipelines.txt2img import initial_latents

    gens = [torch.Generator("cpu").manual_seed(s) for s in (1, 2)]
    batch = initial_latents(tiny_sd1_pipe, gens, 64, 64)
    single = initial_latents(tiny_sd1_pipe, [torch.Generator("cpu").manual_seed(2)], 64, 64)
    assert torch.equal(batch[1], single[0])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_and_is_deterministic(tiny_sd1_pipe, sampler):
    a = _run(tiny_sd1_pipe, [3], sampler=sampler, steps=2)[0]
    b = _run(tiny_sd1_pipe, [3], sampler=sampler, steps=2)[0]
    assert a.shape == (64, 64, 3)
    assert np.array_equal(a, b)


def test_schedule_types_change_the_scheduler_config(tiny_sd1_pipe):
    base = tiny_sd1_pipe.scheduler.config
    karras = make_scheduler("DPM++ 2M", "Karras", base)
    uniform = make_scheduler("DPM++ 2M", "Uniform", base)
    sgm = make_scheduler("Euler", "SGM Uniform", base)
    assert type(karras).__name__ == "DPMSolverMultistepScheduler"
    assert karras.config.use_karras_sigmas and not uniform.config.use_karras_sigmas
    assert sgm.config.timestep_spacing == "trailing"
    assert make_scheduler("Euler a", "Automatic", base).config.timestep_spacing != "trailing"


def test_scheduler_keeps_the_models_prediction_type(tiny_sd1_pipe):
    v_config = {**tiny_sd1_pipe.scheduler.config, "prediction_type": "v_prediction"}
    for sampler in SAMPLERS:
        scheduler = make_scheduler(sampler, "Automatic", v_config)
        assert scheduler.config.get("prediction_type", "v_prediction") == "v_prediction", sampler


def test_each_run_gets_its_own_scheduler_and_the_cached_pipeline_is_untouched(tiny_sd1_pipe):
    before = tiny_sd1_pipe.scheduler
    scheduler = make_scheduler("Euler a", "Automatic", before.config)
    run_pipe = with_scheduler(tiny_sd1_pipe, scheduler)
    assert run_pipe.scheduler is scheduler and tiny_sd1_pipe.scheduler is before
    assert run_pipe.unet is tiny_sd1_pipe.unet
    _run(tiny_sd1_pipe, [1], sampler="Euler a")
    assert tiny_sd1_pipe.scheduler is before


def test_callback_returning_false_cancels_within_one_step(tiny_sd1_pipe):
    seen = []

    def on_step(step, total, latents):
        seen.append(step)
        return step < 2

    with pytest.raises(JobCancelled):
        run_txt2img(
            tiny_sd1_pipe, Txt2ImgRequest(prompt="x", steps=10, width=64, height=64, seed=1), [1], on_step
        )
    assert seen == [1, 2]
