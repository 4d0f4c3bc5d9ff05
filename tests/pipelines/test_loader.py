"""The loader: single files and folders of the same model give the same pipeline, offline, with no pickles."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from pipelines.checkpoint_info import classify_shapes
from pipelines.config_folders import CONFIGS_DIR, materialize_config
from pipelines.config_from_shapes import apply_overrides, derive_overrides
from pipelines.hashing import file_sha256_10
from pipelines.loader import SD2_V_PROBE, ModelLoadError, load_pipeline, sd2_prediction_type
from pipelines.registry import DEMO_NAME, ModelEntry, ModelRegistry
from pipelines.tiny import (
    clip_to_original,
    open_clip_to_original,
    save_tiny,
    unet_to_original,
    vae_to_original,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local loading never touches the network (HF_HUB_OFFLINE=1 is set by conftest as well)."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def xl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xl-models")
    save_tiny(root / "tiny-xl.safetensors", arch="sdxl", seed=0)
    save_tiny(root / "tiny-xl-folder", arch="sdxl", seed=0)
    save_tiny(root / "tiny-xl-inpainting.safetensors", arch="sdxl", inpaint=True, seed=0)
    return root


def entry(path: Path, family: str, inpaint: bool = False) -> ModelEntry:
    source = "file" if path.suffix == ".safetensors" else "folder"
    return ModelEntry(path.stem if source == "file" else path.name, source, path, family, inpaint)  # type: ignore[arg-type]


def generate(pipe, seed: int = 3, **kwargs) -> np.ndarray:
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(seed)
    args = {"height": 64, "width": 64, "num_inference_steps": 2, "output_type": "np", **kwargs}
    return pipe("a photo of a cat", generator=generator, **args).images


def public_config(config) -> dict:
    data = dict(config) if not hasattr(config, "to_dict") else config.to_dict()
    return {
        k: v for k, v in data.items() if not k.startswith("_") and k not in ("dtype", "transformers_version")
    }


@pytest.fixture(scope="module")
def sd1_pair(tiny_models_dir: Path):
    file_pipe = load_pipeline(entry(tiny_models_dir / "tiny-sd1.safetensors", "sd1"))
    folder_pipe = load_pipeline(entry(tiny_models_dir / "tiny-sd1-folder", "sd1"))
    return file_pipe, folder_pipe


@pytest.fixture(scope="module")
def xl_pair(xl_dir: Path):
    file_pipe = load_pipeline(entry(xl_dir / "tiny-xl.safetensors", "sdxl"))
    folder_pipe = load_pipeline(entry(xl_dir / "tiny-xl-folder", "sdxl"))
    return file_pipe, folder_pipe


@pytest.mark.parametrize("pair", ["sd1_pair", "xl_pair"])
def test_single_file_and_folder_give_identical_pixels(pair: str, request: pytest.FixtureRequest) -> None:
    file_pipe, folder_pipe = request.getfixturevalue(pair)
    assert type(file_pipe) is type(folder_pipe)
    a, b = generate(file_pipe), generate(folder_pipe)
    assert a.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, generate(file_pipe, seed=4))  # the seed matters: the check can fail


@pytest.mark.parametrize("pair", ["sd1_pair", "xl_pair"])
def test_single_file_configs_equal_folder_configs(pair: str, request: pytest.FixtureRequest) -> None:
    file_pipe, folder_pipe = request.getfixturevalue(pair)
    names = ["unet", "vae", "text_encoder", "text_encoder_2"]
    for name in names:
        a, b = getattr(file_pipe, name, None), getattr(folder_pipe, name, None)
        if a is None and b is None:
            continue
        assert public_config(a.config) == public_config(b.config), name
        assert a.dtype == b.dtype == torch.float32
    assert type(file_pipe.scheduler) is type(folder_pipe.scheduler)
    assert public_config(file_pipe.scheduler.config) == public_config(folder_pipe.scheduler.config)
    assert len(file_pipe.tokenizer) == 49408


def test_families_and_pipeline_classes(sd1_pair, xl_pair, tiny_models_dir: Path, xl_dir: Path) -> None:
    assert type(sd1_pair[0]).__name__ == "StableDiffusionPipeline"
    assert sd1_pair[0].safety_checker is None
    assert type(xl_pair[0]).__name__ == "StableDiffusionXLPipeline"
    assert xl_pair[0].tokenizer_2.pad_token == "!"
    inpaint = load_pipeline(entry(tiny_models_dir / "tiny-sd1-inpainting.safetensors", "sd1", inpaint=True))
    assert type(inpaint).__name__ == "StableDiffusionInpaintPipeline"
    assert inpaint.unet.config.in_channels == 9
    xl_inpaint = load_pipeline(entry(xl_dir / "tiny-xl-inpainting.safetensors", "sdxl", inpaint=True))
    assert type(xl_inpaint).__name__ == "StableDiffusionXLInpaintPipeline"
    from PIL import Image

    image = Image.new("RGB", (64, 64), (200, 30, 30))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    for pipe in (inpaint, xl_inpaint):
        out = generate(pipe, image=image, mask_image=mask, strength=1.0)
        assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()


def test_the_weights_decide_the_family_not_the_entry(tiny_models_dir: Path) -> None:
    stale = entry(tiny_models_dir / "tiny-sd1-inpainting.safetensors", "sd1", inpaint=False)
    assert load_pipeline(stale).unet.config.in_channels == 9


def _full_size_shapes(family: str, inpaint: bool) -> dict[str, tuple[int, ...]]:
    """Key → shape of a real full-size checkpoint, built on the meta device from the shipped configs."""
    folder = CONFIGS_DIR / (f"{family}-inpaint" if inpaint else family)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextConfig.from_pretrained(folder / "text_encoder")
        parts = {"model.diffusion_model.": unet_to_original(unet), "first_stage_model.": vae_to_original(vae)}
        if family == "sd1":
            parts["cond_stage_model.transformer."] = clip_to_original(CLIPTextModel(text))
        elif family == "sd2":  # the checkpoint has all 24 OpenCLIP blocks and the projection
            full = CLIPTextConfig(**{**text.to_dict(), "num_hidden_layers": 24, "projection_dim": 1024})
            parts["cond_stage_model.model."] = open_clip_to_original(CLIPTextModelWithProjection(full))
        else:
            parts["conditioner.embedders.0.transformer."] = clip_to_original(CLIPTextModel(text))
            big_g = CLIPTextConfig.from_pretrained(folder / "text_encoder_2")
            parts["conditioner.embedders.1.model."] = open_clip_to_original(
                CLIPTextModelWithProjection(big_g)
            )
    return {prefix + k: tuple(v.shape) for prefix, part in parts.items() for k, v in part.items()}


REAL_TYPES = {
    ("sd1", False): "v1",
    ("sd1", True): "inpainting",
    ("sd2", False): "v2",
    ("sd2", True): "inpainting_v2",
    ("sdxl", False): "xl_base",
    ("sdxl", True): "xl_inpaint",
}


@pytest.mark.parametrize(("family", "inpaint"), list(REAL_TYPES))
def test_full_size_checkpoint_gets_the_shipped_config_back(
    tmp_path: Path, family: str, inpaint: bool
) -> None:
    shapes = _full_size_shapes(family, inpaint)
    info = classify_shapes(shapes)
    assert (info.model_type, info.family, info.inpaint, info.refusal) == (
        REAL_TYPES[family, inpaint],
        family,
        inpaint,
        None,
    )
    config_dir = materialize_config(family, inpaint, tmp_path / "cfg")  # type: ignore[arg-type]
    apply_overrides(config_dir, derive_overrides(shapes, family))  # type: ignore[arg-type]
    source = CONFIGS_DIR / (f"{family}-inpaint" if inpaint else family)
    for file in source.rglob("config.json"):
        assert (config_dir / file.relative_to(source)).read_text() == file.read_text(), file


def test_narrow_checkpoint_gets_its_own_sizes(tiny_models_dir: Path, tmp_path: Path) -> None:
    shapes = {k: tuple(v.shape) for k, v in load_file(tiny_models_dir / "tiny-sd1.safetensors").items()}
    overrides = derive_overrides(shapes, "sd1")
    assert overrides["unet"]["block_out_channels"] == [32, 32, 64, 64]
    assert overrides["unet"]["cross_attention_dim"] == 64
    assert overrides["text_encoder"]["num_hidden_layers"] == 2
    assert overrides["text_encoder"]["num_attention_heads"] == 1
    config_dir = materialize_config("sd1", False, tmp_path / "cfg")
    apply_overrides(config_dir, overrides)
    unet = json.loads((config_dir / "unet" / "config.json").read_text())
    assert unet["layers_per_block"] == 1 and unet["attention_head_dim"] == 8  # SD 1.x: 8 heads


def test_weights_that_do_not_fit_are_an_error(tiny_models_dir: Path, tmp_path: Path) -> None:
    state = load_file(tiny_models_dir / "tiny-sd1.safetensors")
    # Weights the derived architecture has no place for would be dropped silently by diffusers.
    extra = dict(state)
    extra["model.diffusion_model.middle_block.1.transformer_blocks.1.attn1.to_q.weight"] = torch.zeros(64, 64)
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(ModelLoadError, match="UNET weights .* do not fit"):
        load_pipeline(entry(tmp_path / "extra.safetensors", "sd1"))
    # Weights missing for the derived architecture.
    del state["model.diffusion_model.middle_block.1.transformer_blocks.0.attn1.to_q.weight"]
    save_file(state, str(tmp_path / "missing.safetensors"))
    with pytest.raises(ModelLoadError, match="'missing' could not be loaded"):
        load_pipeline(entry(tmp_path / "missing.safetensors", "sd1"))


@pytest.mark.parametrize(
    ("spread", "expected"), [(0.3, "v_prediction"), (0.01, "epsilon"), (None, "v_prediction")]
)
def test_sd2_prediction_type_probe(tmp_path: Path, spread: float | None, expected: str) -> None:
    tensors = {"model.diffusion_model.out.2.bias": torch.zeros(4)}
    if spread is not None:
        generator = torch.Generator().manual_seed(0)
        tensors[SD2_V_PROBE] = torch.randn(320, generator=generator) * spread
    save_file(tensors, str(tmp_path / "probe.safetensors"))
    assert sd2_prediction_type(tmp_path / "probe.safetensors") == expected


def test_demo_model_is_written_on_first_load(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    registry = ModelRegistry(tmp_path / "models", demo_dir=demo_dir)
    demo = registry.get(DEMO_NAME)
    assert not demo_dir.exists()
    pipe = load_pipeline(demo)
    assert demo.path is not None and demo.path.is_file()
    assert not [p for p in demo_dir.iterdir() if p != demo.path]  # no partial file left behind
    first = generate(pipe)
    mtime = demo.path.stat().st_mtime_ns
    again = load_pipeline(demo)
    assert demo.path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first, generate(again))


def test_hub_model_offline_fails_fast_with_a_clear_message() -> None:
    hub = ModelEntry("someone/not-cached-model", "hub", None, "sd1")
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as error:
        load_pipeline(hub, local_files_only=False)  # HF_HUB_OFFLINE=1 still forbids the download
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "someone/not-cached-model" in message
    assert "HF_HUB_OFFLINE=1" in message and "models/" in message


def test_cached_hub_model_loads_offline(
    tmp_path: Path, tiny_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--someone--tiny-sd"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_models_dir / "tiny-sd1-folder", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    registry = ModelRegistry(tmp_path / "models", hub_ids=["someone/tiny-sd"])
    hub = registry.get("someone/tiny-sd")
    assert (hub.source, hub.family, hub.inpaint) == ("hub", "sd1", False)  # read from the cached configs
    pipe = load_pipeline(hub, local_files_only=False)  # HF_HUB_OFFLINE=1: the cache is enough
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    folder_pipe = load_pipeline(entry(tiny_models_dir / "tiny-sd1-folder", "sd1"))
    np.testing.assert_array_equal(generate(pipe), generate(folder_pipe))


def test_missing_file_and_refused_entry(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no longer exists"):
        load_pipeline(ModelEntry("gone", "file", tmp_path / "gone.safetensors", "sd1"))
    with pytest.raises(ModelLoadError, match="cannot be loaded: because"):
        load_pipeline(ModelEntry("nope", "file", tmp_path / "x.safetensors", None, refusal="because"))


def test_file_sha256_10(tiny_models_dir: Path) -> None:
    path = tiny_models_dir / "tiny-sd1.safetensors"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    assert file_sha256_10(path) == expected
    assert file_sha256_10(str(path)) == expected
    other = file_sha256_10(tiny_models_dir / "tiny-sd1-other.safetensors")
    assert len(other) == 10 and other != expected
