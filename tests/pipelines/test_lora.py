"""LoRA: listing, <lora:name:weight> applied for one job through diffusers' load_lora_weights, the cached model
left byte-identical afterwards (also after a failed or cancelled job), infotext hashes, the A1111 routes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from core.backend import JobCancelled
from core.infotext import parse_infotext
from core.prompt_syntax import LoraTag
from core.requests import Img2ImgRequest, Txt2ImgRequest
from pipelines.lora import LoraAdapters, LoraError, LoraLibrary, applied_loras
from pipelines.prompt_weighting import prompt_embeddings
from pipelines.tiny import build_tiny_components, save_tiny, save_tiny_lora
from pipelines.txt2img import run_txt2img
from studio import LOCAL_USER, JobState, UnknownLora
from tests.helpers import served_app

FAST = {"steps": 2, "width": 64, "height": 64, "seed": 11}
CANARY = "lora-pickle-canary"


class _Canary:
    """Pickling this makes a file that, once unpickled, would create CANARY next to it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """tiny-sd1 plus LoRAs: Lora/grain (UNet), lora/styles/ink (UNet + text encoder), Lora/xl-style (for SDXL),
    and Lora/old.pt, a pickle that must never be opened."""
    import pickle

    root = tmp_path_factory.mktemp("lora-models")
    save_tiny(root / "tiny-sd1.safetensors", arch="sd1", seed=0)
    sd1 = build_tiny_components("sd1", seed=0)
    save_tiny_lora(root / "Lora" / "grain.safetensors", sd1, seed=1)
    save_tiny_lora(root / "lora" / "styles" / "ink.safetensors", sd1, seed=2, text_encoder=True)
    save_tiny_lora(
        root / "Lora" / "xl-style.safetensors",
        build_tiny_components("sdxl", seed=0),
        seed=3,
        text_encoder=True,
    )
    (root / "Lora" / "old.pt").write_bytes(pickle.dumps(_Canary(str(root / CANARY))))
    return root


@pytest.fixture(scope="module")
def library(models_dir) -> LoraLibrary:
    return LoraLibrary(models_dir)


@pytest.fixture
def pipe():
    return fresh_pipe()


def snapshot(pipe) -> dict[str, torch.Tensor]:
    """Every UNet and text-encoder parameter and buffer, copied."""
    return {
        f"{name}.{key}": value.detach().clone()
        for name in ("unet", "text_encoder", "text_encoder_2")
        if getattr(pipe, name, None) is not None
        for key, value in getattr(pipe, name).state_dict().items()
    }


def assert_unchanged(pipe, before: dict[str, torch.Tensor]) -> None:
    after = snapshot(pipe)
    assert set(after) == set(before), "LoRA layers left behind: " + ", ".join(
        sorted(set(after) ^ set(before))[:3]
    )
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    assert not changed, f"weights changed: {changed[:3]}"
    assert not any("lora" in type(m).__name__.lower() for m in pipe.unet.modules())
    assert not any("lora" in type(m).__name__.lower() for m in pipe.text_encoder.modules())


def base_snapshot(pipe) -> dict[str, torch.Tensor]:
    """The base weights only, named as in a model without LoRA layers (peft keeps them as ``base_layer``)."""
    return {
        key.replace(".base_layer.", "."): value
        for key, value in snapshot(pipe).items()
        if ".lora_" not in key
    }


def assert_base_unchanged(pipe, before: dict[str, torch.Tensor]) -> None:
    after = base_snapshot(pipe)
    assert set(after) == set(before)
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    assert not changed, f"base weights changed: {changed[:3]}"


def fresh_pipe():
    from diffusers import StableDiffusionPipeline

    fresh = StableDiffusionPipeline(
        **build_tiny_components("sd1", seed=0),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    fresh.set_progress_bar_config(disable=True)
    return fresh


def image(pipe, prompt: str = "a red fox logo", on_step=lambda *_: True, steps: int = 1) -> np.ndarray:
    """One picture straight from `pipe`; one step is enough to tell a LoRA's effect (or its absence)."""
    request = Txt2ImgRequest(prompt=prompt, **{**FAST, "steps": steps})
    return np.asarray(run_txt2img(pipe, request, [FAST["seed"]], on_step)[0])


def file_addnet_hash(path: Path) -> str:
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header :]).hexdigest()[:12]


# --- listing ---------------------------------------------------------------------------------------------


def test_listing_finds_both_folder_spellings_and_refuses_pickles(library, models_dir):
    entries = {e.name: e for e in library.scan()}
    assert set(entries) == {"grain", "ink", "xl-style", "old"}
    assert entries["ink"].relative_path(models_dir) == "lora/styles/ink.safetensors"
    assert entries["grain"].refusal is None
    assert "pickle" in (entries["old"].refusal or "")
    assert [e.name for e in library.usable()] == ["grain", "ink", "xl-style"]
    assert not (models_dir / CANARY).exists()


def test_unknown_refused_and_bad_names_are_clear_errors(library, models_dir):
    with pytest.raises(LoraError, match=r"Unknown LoRA 'nope'\. Available LoRAs: grain, ink, xl-style"):
        library.get("nope")
    with pytest.raises(LoraError, match="cannot be used: pickle format"):
        library.get("old")
    with pytest.raises(ValueError, match="bad LoRA name"):
        library.get("../tiny-sd1")
    assert not (models_dir / CANARY).exists()
    empty = LoraLibrary(models_dir / "Lora")  # no Lora folder inside
    with pytest.raises(LoraError, match="No LoRAs found: put .safetensors files in"):
        empty.get("grain")


def test_short_hash_is_a1111s_addnet_hash(library, models_dir):
    entry = library.get("grain")
    assert library.short_hash(entry) == file_addnet_hash(models_dir / "Lora" / "grain.safetensors")
    pairs = library.infotext_pairs([LoraTag("grain", 0.8), LoraTag("ink", 1.0)])
    assert pairs == {
        "Lora hashes": f"grain: {library.short_hash(entry)}, ink: {library.short_hash(library.get('ink'))}"
    }


# --- applying to a pipeline --------------------------------------------------------------------------------


def test_lora_changes_the_picture_deterministically_and_leaves_the_model_as_it_was(pipe, library):
    before = snapshot(pipe)
    plain = image(pipe)
    with applied_loras(pipe, [LoraTag("grain", 1.0)], library):
        with_lora = image(pipe)
        again = image(pipe)
    assert_unchanged(pipe, before)
    assert not np.array_equal(plain, with_lora)
    assert np.array_equal(with_lora, again)
    # and the same again after unloading and loading once more
    with applied_loras(pipe, [LoraTag("grain", 1.0)], library):
        assert np.array_equal(image(pipe), with_lora)
    assert np.array_equal(image(pipe), plain)
    assert_unchanged(pipe, before)


def test_weight_scales_the_lora(pipe, library):
    plain = image(pipe)
    with applied_loras(pipe, [LoraTag("grain", 0.0)], library):
        zero = image(pipe)
    with applied_loras(pipe, [LoraTag("grain", 0.5)], library):
        half = image(pipe)
    with applied_loras(pipe, [LoraTag("grain", 1.0)], library):
        full = image(pipe)
    # weight 0 adds exactly 0 * (B A x): the same picture as without the LoRA
    assert np.array_equal(zero, plain)
    assert not np.array_equal(half, plain) and not np.array_equal(half, full)


def test_text_encoder_lora_reaches_the_weighted_prompt_encoder(pipe, library):
    before = snapshot(pipe)
    with torch.inference_mode():
        plain = prompt_embeddings(pipe, "a (red:1.2) fox")["prompt_embeds"]
        with applied_loras(pipe, [LoraTag("ink", 1.0), LoraTag("grain", 0.7)], library):
            styled = prompt_embeddings(pipe, "a (red:1.2) fox")["prompt_embeds"]
        again = prompt_embeddings(pipe, "a (red:1.2) fox")["prompt_embeds"]
    assert not torch.allclose(plain, styled)
    assert torch.equal(plain, again)
    assert_unchanged(pipe, before)


def test_sdxl_lora_on_unet_and_both_text_encoders(library):
    from diffusers import StableDiffusionXLPipeline

    xl = StableDiffusionXLPipeline(**build_tiny_components("sdxl", seed=0), add_watermarker=False)
    xl.set_progress_bar_config(disable=True)
    before = snapshot(xl)
    assert any(key.startswith("text_encoder_2.") for key in before)
    plain = image(xl)
    with torch.inference_mode():
        plain_embeds = prompt_embeddings(xl, "a red fox logo")
    with applied_loras(xl, [LoraTag("xl-style", 0.9)], library):
        styled = image(xl)
        with torch.inference_mode():
            styled_embeds = prompt_embeddings(xl, "a red fox logo")
    assert not np.array_equal(plain, styled)
    width_1 = xl.text_encoder.config.hidden_size
    # both encoders' halves of the embedding and the pooled one (text_encoder_2) change
    for part in (slice(None, width_1), slice(width_1, None)):
        assert not torch.allclose(
            plain_embeds["prompt_embeds"][..., part], styled_embeds["prompt_embeds"][..., part]
        )
    assert not torch.allclose(plain_embeds["pooled_prompt_embeds"], styled_embeds["pooled_prompt_embeds"])
    assert_unchanged(xl, before)
    assert np.array_equal(image(xl), plain)


def test_a_lora_for_another_family_fails_cleanly(pipe, library):
    before = snapshot(pipe)
    with pytest.raises(LoraError, match="'xl-style' does not fit this model"):
        with applied_loras(pipe, [LoraTag("grain", 1.0), LoraTag("xl-style", 1.0)], library):
            pytest.fail("the block must not run")
    assert_unchanged(pipe, before)


def test_unknown_name_fails_before_the_model_is_touched(pipe, library):
    before = snapshot(pipe)
    with pytest.raises(LoraError, match="Unknown LoRA 'missing'"):
        with applied_loras(pipe, [LoraTag("grain", 1.0), LoraTag("missing", 1.0)], library):
            pytest.fail("the block must not run")
    assert_unchanged(pipe, before)


def test_a_cancelled_job_leaves_the_model_as_it_was(pipe, library):
    before = snapshot(pipe)
    with pytest.raises(JobCancelled), applied_loras(pipe, [LoraTag("ink", 0.8)], library):
        image(pipe, on_step=lambda step, *_: step < 1, steps=2)  # cancelled after the first of two steps
    assert_unchanged(pipe, before)


# --- LoRAs kept loaded on a cached model between jobs ------------------------------------------------------


def reference(tags: list[LoraTag], library: LoraLibrary, prompt: str = "a red fox logo") -> np.ndarray:
    """The picture a never-touched model gives with ``tags`` loaded for this one job and unloaded after."""
    fresh = fresh_pipe()
    with applied_loras(fresh, tags, library):
        return image(fresh, prompt)


def kept_job(pipe, adapters: LoraAdapters, tags: list[LoraTag], library: LoraLibrary) -> np.ndarray:
    with applied_loras(pipe, tags, library, adapters):
        return image(pipe)


def present_adapters(pipe) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


@pytest.fixture
def own_library(models_dir, tmp_path) -> LoraLibrary:
    """A models folder of its own (files here may be rewritten): Lora/grain, ink, third (all for SD1)."""
    (tmp_path / "Lora").mkdir()
    shutil.copy(models_dir / "Lora" / "grain.safetensors", tmp_path / "Lora" / "grain.safetensors")
    shutil.copy(models_dir / "lora" / "styles" / "ink.safetensors", tmp_path / "Lora" / "ink.safetensors")
    save_tiny_lora(tmp_path / "Lora" / "third.safetensors", build_tiny_components("sd1", seed=0), seed=4)
    return LoraLibrary(tmp_path)


def test_a_repeated_lora_job_loads_nothing_and_gives_the_same_pixels(pipe, library):
    before = base_snapshot(pipe)
    plain = image(fresh_pipe())
    adapters = LoraAdapters(pipe)
    tags = [LoraTag("ink", 0.8)]
    first = kept_job(pipe, adapters, tags, library)
    assert adapters.loads == 1
    second = kept_job(pipe, adapters, tags, library)
    assert adapters.loads == 1, "the second job loaded the file again"
    assert np.array_equal(first, second)
    assert np.array_equal(first, reference(tags, library))
    assert not np.array_equal(first, plain)
    # the adapter stays, switched off: base weights untouched, a plain job as on a never-touched model
    assert present_adapters(pipe)
    assert_base_unchanged(pipe, before)
    assert np.array_equal(kept_job(pipe, adapters, [], library), plain)
    assert np.array_equal(image(pipe), plain)  # also outside applied_loras: off between jobs
    with torch.inference_mode():
        assert torch.equal(
            prompt_embeddings(pipe, "a (red:1.2) fox")["prompt_embeds"],
            prompt_embeddings(fresh_pipe(), "a (red:1.2) fox")["prompt_embeds"],
        )
    assert np.array_equal(kept_job(pipe, adapters, tags, library), first) and adapters.loads == 1
    adapters.clear()
    assert adapters.loaded() == []
    assert_unchanged(pipe, snapshot(fresh_pipe()))


def test_two_loras_with_weights_in_one_prompt_and_kept_ones_stay_out(pipe, library):
    adapters = LoraAdapters(pipe)
    both = [LoraTag("ink", 0.8), LoraTag("grain", 0.5)]
    assert np.array_equal(kept_job(pipe, adapters, both, library), reference(both, library))
    assert adapters.loads == 2
    # ink (UNet + text encoder) is still loaded but must not act on a job that names only grain
    grain = [LoraTag("grain", 0.5)]
    assert np.array_equal(kept_job(pipe, adapters, grain, library), reference(grain, library))
    reweighted = [LoraTag("grain", 1.0), LoraTag("ink", 0.3)]
    assert np.array_equal(kept_job(pipe, adapters, reweighted, library), reference(reweighted, library))
    assert adapters.loads == 2
    # the same file twice adds up, as two copies of it would
    twice = kept_job(pipe, adapters, [LoraTag("grain", 0.5), LoraTag("grain", 0.5)], library)
    once = kept_job(pipe, adapters, [LoraTag("grain", 1.0)], library)
    assert np.allclose(twice.astype(int), once.astype(int), atol=1) and adapters.loads == 2


def test_a_file_changed_on_disk_is_loaded_again(pipe, own_library):
    adapters = LoraAdapters(pipe)
    path = own_library.get("grain").path
    tags = [LoraTag("grain", 1.0)]
    old = kept_job(pipe, adapters, tags, own_library)
    assert adapters.loads == 1
    stat = path.stat()
    shutil.copy(own_library.get("third").path, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    new = kept_job(pipe, adapters, tags, own_library)
    assert adapters.loads == 2
    assert not np.array_equal(old, new)
    assert np.array_equal(new, reference(tags, own_library))
    assert adapters.loaded() == [str(path)], "the old version's adapter was kept"
    assert len(present_adapters(pipe)) == 1


def test_at_most_capacity_loras_stay_loaded_least_recently_used_go_first(pipe, own_library):
    before = base_snapshot(pipe)
    adapters = LoraAdapters(pipe, capacity=2)
    path = {name: str(own_library.get(name).path) for name in ("grain", "ink", "third")}
    for name in ("grain", "ink", "grain", "third"):
        kept_job(pipe, adapters, [LoraTag(name, 1.0)], own_library)
    assert adapters.loads == 3
    assert adapters.loaded() == [path["grain"], path["third"]]  # ink was the least recently used
    assert len(present_adapters(pipe)) == 2
    ink = kept_job(pipe, adapters, [LoraTag("ink", 0.7)], own_library)
    assert adapters.loads == 4 and adapters.loaded() == [path["third"], path["ink"]]
    assert np.array_equal(ink, reference([LoraTag("ink", 0.7)], own_library))
    assert_base_unchanged(pipe, before)
    assert np.array_equal(image(pipe), image(fresh_pipe()))
    with pytest.raises(ValueError, match="capacity"):
        LoraAdapters(pipe, capacity=0)


def test_a_failed_load_leaves_no_half_loaded_adapter(pipe, library):
    before = base_snapshot(pipe)
    adapters = LoraAdapters(pipe)
    grain = [LoraTag("grain", 1.0)]
    with_grain = kept_job(pipe, adapters, grain, library)
    kept = present_adapters(pipe)
    with pytest.raises(LoraError, match="'xl-style' does not fit this model"):
        kept_job(pipe, adapters, [LoraTag("grain", 1.0), LoraTag("xl-style", 1.0)], library)
    assert present_adapters(pipe) == kept and adapters.loaded() == [str(library.get("grain").path)]
    assert_base_unchanged(pipe, before)
    assert np.array_equal(image(pipe), image(fresh_pipe()))
    assert np.array_equal(kept_job(pipe, adapters, grain, library), with_grain) and adapters.loads == 1
    # a fresh LoRA loaded before another one fails is kept, but switched off like every kept one
    other = fresh_pipe()
    other_adapters = LoraAdapters(other)
    with pytest.raises(LoraError, match="'xl-style' does not fit"):
        kept_job(other, other_adapters, [LoraTag("ink", 1.0), LoraTag("xl-style", 1.0)], library)
    assert np.array_equal(image(other), image(fresh_pipe()))
    assert other_adapters.loaded() == [str(library.get("ink").path)]
    ink = kept_job(other, other_adapters, [LoraTag("ink", 1.0)], library)
    assert other_adapters.loads == 1 and np.array_equal(ink, reference([LoraTag("ink", 1.0)], library))
    # failing with nothing kept: the model is left with no LoRA layers at all
    empty = fresh_pipe()
    pristine = snapshot(empty)
    with pytest.raises(LoraError, match="does not fit"):
        kept_job(empty, LoraAdapters(empty), [LoraTag("xl-style", 1.0)], library)
    assert_unchanged(empty, pristine)


def test_a_one_job_lora_on_a_model_with_kept_ones_leaves_them_in_place(pipe, library):
    adapters = LoraAdapters(pipe)
    ink = kept_job(pipe, adapters, [LoraTag("ink", 0.8)], library)
    kept = present_adapters(pipe)
    with applied_loras(pipe, [LoraTag("grain", 1.0)], library):
        assert np.array_equal(image(pipe), reference([LoraTag("grain", 1.0)], library))
    assert present_adapters(pipe) == kept
    assert (
        np.array_equal(kept_job(pipe, adapters, [LoraTag("ink", 0.8)], library), ink) and adapters.loads == 1
    )
    assert np.array_equal(image(pipe), image(fresh_pipe()))


def test_evicting_a_model_drops_its_loras(models_dir, library):
    from pipelines.device import choose_device
    from pipelines.loader import load_pipeline
    from pipelines.manager import PipelineManager
    from pipelines.registry import ModelRegistry

    registry = ModelRegistry(models_dir)
    entry = registry.get("tiny-sd1")
    manager = PipelineManager(
        lambda e, where: load_pipeline(e, device=where.device, dtype=where.dtype),
        choose_device("cpu", "fp32"),
        max_gpu_models=1,
        max_ram_models=0,
    )
    with manager.lease(entry) as base:
        adapters = LoraAdapters.of(manager.model_state(base), base)
        assert LoraAdapters.of(manager.model_state(base), base) is adapters
        with applied_loras(base, [LoraTag("grain", 1.0)], library, adapters):
            pass
        assert adapters.loads == 1 and present_adapters(base)
    manager.free_memory()
    assert manager.resident() == ([], [])
    with manager.lease(entry) as reloaded:
        assert reloaded is not base and manager.load_count == 2
        assert LoraAdapters.of(manager.model_state(reloaded), reloaded).loaded() == []
        assert not any("lora" in type(m).__name__.lower() for m in reloaded.unet.modules())
    with pytest.raises(KeyError):
        manager.model_state(base)


# --- through the Studio and the local backend -----------------------------------------------------------------


@pytest.fixture(scope="module")
def studio_models_dir(models_dir):
    """The module's `studio` (tests/conftest.py) serves these models, LoRAs included."""
    return models_dir


def run_job(studio, request):
    job = studio.jobs.submit(request, "local")
    assert job.wait(120), "job did not finish"
    return job


def cached_model_snapshot(studio) -> dict[str, torch.Tensor]:
    backend = studio.backend
    with backend.manager.lease(backend.registry.get("tiny-sd1")) as base:
        return base_snapshot(base)


def test_job_applies_the_lora_and_records_it_as_a1111_does(studio, models_dir):
    from PIL import Image

    plain = run_job(studio, Txt2ImgRequest(prompt="a red fox logo", **FAST))
    before = cached_model_snapshot(studio)
    prompt = "a red fox logo <lora:grain:0.8>"
    job = run_job(studio, Txt2ImgRequest(prompt=prompt, negative_prompt="blurry", **FAST))
    assert job.state is JobState.DONE, job.error
    infotext = job.images[0].infotext
    assert infotext.startswith(prompt + "\nNegative prompt: blurry\n")
    hash12 = file_addnet_hash(models_dir / "Lora" / "grain.safetensors")
    assert f'Lora hashes: "grain: {hash12}"' in infotext
    assert re.search(r'Lora hashes: "grain: [0-9a-f]{12}", Version: ', infotext)
    parsed = parse_infotext(infotext)
    assert parsed.prompt == prompt and parsed.params["Lora hashes"] == f"grain: {hash12}"
    pixels = [np.asarray(Image.open(studio.gallery.file_path(j.images[0].id))) for j in (plain, job)]
    assert not np.array_equal(*pixels)
    # the tags went to the LoRA loader, not to the text encoder: weight 0 gives the plain picture
    zero = run_job(studio, Txt2ImgRequest(prompt="a red fox logo <lora:grain:0>", **FAST))
    assert np.array_equal(np.asarray(Image.open(studio.gallery.file_path(zero.images[0].id))), pixels[0])
    after = cached_model_snapshot(studio)
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)


def test_repeated_lora_jobs_reuse_the_loaded_adapter(studio):
    from PIL import Image

    backend = studio.backend
    with backend.manager.lease(backend.registry.get("tiny-sd1")) as base:
        adapters = LoraAdapters.of(backend.manager.model_state(base), base)
    plain = run_job(studio, Txt2ImgRequest(prompt="a fox", **FAST))
    request = Txt2ImgRequest(prompt="a fox <lora:ink:0.6>", **FAST)
    first = run_job(studio, request)
    loads = adapters.loads
    assert loads >= 1 and str(backend.lora_library.get("ink").path) in adapters.loaded()
    second = run_job(studio, request)
    after = run_job(studio, Txt2ImgRequest(prompt="a fox", **FAST))
    assert all(j.state is JobState.DONE for j in (plain, first, second, after))
    assert adapters.loads == loads, "the second job loaded the LoRA file again"
    pixels = [
        np.asarray(Image.open(studio.gallery.file_path(j.images[0].id)))
        for j in (plain, first, second, after)
    ]
    assert np.array_equal(pixels[1], pixels[2]) and not np.array_equal(pixels[0], pixels[1])
    assert np.array_equal(pixels[0], pixels[3])


def test_lora_reaches_the_derived_img2img_pipeline(studio):
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
    common = {**FAST, "steps": 3, "init_image": buffer.getvalue(), "denoising_strength": 0.7}
    plain = run_job(studio, Img2ImgRequest(prompt="a fox", **common))
    styled = run_job(studio, Img2ImgRequest(prompt="a fox <lora:grain:1>", **common))
    assert plain.state is JobState.DONE and styled.state is JobState.DONE, styled.error
    pixels = [np.asarray(Image.open(studio.gallery.file_path(j.images[0].id))) for j in (plain, styled)]
    assert not np.array_equal(*pixels)


def test_unknown_or_pickled_lora_is_refused_at_submit_with_a_clear_message(studio, models_dir):
    # what the prompt alone shows is refused before anything is queued; only loading shows a wrong family
    before = cached_model_snapshot(studio)
    latest = studio.jobs.latest_job(LOCAL_USER)
    refusals = {
        "a fox <lora:nope:1>": "Unknown LoRA 'nope'. Available LoRAs: grain, ink, xl-style",
        "a fox <lora:old>": "pickle",
        "a fox <lora:grain:lots>": "bad weight 'lots'",
    }
    for prompt, message in refusals.items():
        with pytest.raises(UnknownLora, match=re.escape(message)):
            studio.jobs.submit(Txt2ImgRequest(prompt=prompt, **FAST))
    assert studio.jobs.latest_job(LOCAL_USER) is latest  # nothing was queued
    job = run_job(studio, Txt2ImgRequest(prompt="a fox <lora:xl-style>", **FAST))
    assert job.state is JobState.FAILED and "does not fit this model" in str(job.error)
    assert not (models_dir / CANARY).exists()
    after = cached_model_snapshot(studio)
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)


def test_studio_lists_loras(studio):
    listed = {lora.name: lora for lora in studio.catalog.loras()}
    assert listed["grain"].path == "Lora/grain.safetensors" and listed["grain"].refusal is None
    assert listed["old"].refusal


# --- the A1111 routes -------------------------------------------------------------------------------------------


def test_sdapi_loras_and_refresh(models_dir, tmp_path):
    with served_app(models_dir, tmp_path / "outputs", api=True) as (_, url):
        with httpx.Client(base_url=f"{url}/sdapi/v1", timeout=30) as client:
            answer = client.get("/loras")
            assert answer.status_code == 200
            assert answer.json() == [
                {"name": "grain", "alias": "grain", "path": "Lora/grain.safetensors", "metadata": {}},
                {"name": "ink", "alias": "ink", "path": "lora/styles/ink.safetensors", "metadata": {}},
                {
                    "name": "xl-style",
                    "alias": "xl-style",
                    "path": "Lora/xl-style.safetensors",
                    "metadata": {},
                },
            ]
            # the page has a LoRA picker under each generating tab's prompts, offering the usable files
            config = httpx.get(f"{url}/config", timeout=30).json()
            pickers = {
                c["props"]["elem_id"]: c["props"]
                for c in config["components"]
                if str(c.get("props", {}).get("elem_id", "")).endswith("_lora")
            }
            assert {"txt2img_lora", "img2img_lora", "inpaint_lora"} <= set(pickers)
            choices = [choice[1] for choice in pickers["txt2img_lora"]["choices"]]
            assert choices == ["grain", "ink", "xl-style"]
            added = models_dir / "Lora" / "added.safetensors"
            added.write_bytes((models_dir / "Lora" / "grain.safetensors").read_bytes())
            try:
                assert "added" not in [item["name"] for item in client.get("/loras").json()]
                assert client.post("/refresh-loras").status_code == 200
                assert "added" in [item["name"] for item in client.get("/loras").json()]
            finally:
                added.unlink()
            # an unknown LoRA is refused before the job is queued, as an unknown model is
            refused = client.post("/txt2img", json={"prompt": "a fox <lora:nope:1>", "steps": 1})
            assert refused.status_code == 422 and "Unknown LoRA 'nope'" in refused.text
    assert not (models_dir / CANARY).exists()


def test_picking_a_lora_appends_its_tag():
    from ui.loras import add_lora_tag

    assert add_lora_tag("", "grain") == "<lora:grain:1>"
    assert add_lora_tag("a fox", "grain") == "a fox <lora:grain:1>"
    assert add_lora_tag("a fox\n", "grain") == "a fox\n<lora:grain:1>"
    assert add_lora_tag("a fox", None) == "a fox"
