"""The pipeline manager with the real loader on tiny checkpoints: caching, budgets, sharing."""

import pytest
from diffusers import StableDiffusionImg2ImgPipeline

from pipelines.device import choose_device
from pipelines.loader import load_pipeline
from pipelines.manager import PipelineManager
from pipelines.registry import ModelRegistry


@pytest.fixture
def registry(tiny_models_dir):
    return ModelRegistry(tiny_models_dir)


def _manager(**budgets) -> PipelineManager:
    device = choose_device("cpu", "fp32")
    return PipelineManager(
        lambda entry, where: load_pipeline(entry, device=where.device, dtype=where.dtype), device, **budgets
    )


def _use(manager, entry):
    with manager.lease(entry) as pipe:
        return pipe


def test_second_use_of_a_model_loads_nothing(registry):
    manager = _manager()
    first = _use(manager, registry.get("tiny-sd1"))
    second = _use(manager, registry.get("tiny-sd1"))
    assert manager.load_count == 1 and first is second


def test_lru_eviction_follows_the_budgets(registry):
    manager = _manager(max_gpu_models=1, max_ram_models=1)
    a, b, c = (registry.get(n) for n in ("tiny-sd1", "tiny-sd1-other", "tiny-sd1-folder"))
    _use(manager, a)
    _use(manager, b)
    assert manager.resident() == (["tiny-sd1-other"], ["tiny-sd1"])
    _use(manager, c)  # a was least recently used: it leaves the cache
    assert manager.resident() == (["tiny-sd1-folder"], ["tiny-sd1-other"])
    assert manager.load_count == 3
    _use(manager, b)  # back from RAM, no load
    assert manager.load_count == 3
    assert manager.resident() == (["tiny-sd1-other"], ["tiny-sd1-folder"])
    _use(manager, a)  # dropped earlier: loads again
    assert manager.load_count == 4


def test_a_model_in_use_is_never_evicted_under_its_job(registry):
    manager = _manager(max_gpu_models=1, max_ram_models=0)
    a, b = registry.get("tiny-sd1"), registry.get("tiny-sd1-other")
    with manager.lease(a) as pipe_a:
        with manager.lease(b):
            on_device, _ = manager.resident()
            assert set(on_device) == {"tiny-sd1", "tiny-sd1-other"}  # over budget while both are pinned
        assert pipe_a.unet is not None
        # b's job ended while a's still runs: b is the one that leaves, a stays for its job
        assert manager.resident() == (["tiny-sd1"], [])
    assert manager.resident() == (["tiny-sd1"], [])


def test_derived_task_pipelines_share_the_weights(registry):
    manager = _manager()
    with manager.lease(registry.get("tiny-sd1")) as base:
        derived = manager.derive(base, "img2img", StableDiffusionImg2ImgPipeline)
        again = manager.derive(base, "img2img", StableDiffusionImg2ImgPipeline)
    assert derived is again
    assert manager.load_count == 1
    for name in ("unet", "vae", "text_encoder"):
        ours = dict(getattr(derived, name).named_parameters())
        for key, param in getattr(base, name).named_parameters():
            assert ours[key].data_ptr() == param.data_ptr(), f"{name}.{key} was copied"
    assert base.unet.dtype == derived.unet.dtype


def test_budgets_must_make_sense():
    with pytest.raises(ValueError, match="max_gpu_models"):
        _manager(max_gpu_models=0)
