"""The registry finds models on disk, tells their family, and refuses pickles without opening them."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipelines.loader import ModelLoadError, load_pipeline
from pipelines.registry import (
    DEMO_LABEL,
    DEMO_NAME,
    ModelEntry,
    ModelRefusedError,
    ModelRegistry,
    UnknownModelError,
)
from pipelines.tiny import save_tiny


class CanaryPayload:
    """Unpickling this creates the canary file: the proof that a pickle was (not) loaded."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (open, (str(self.canary), "w"))


def write_pickle_checkpoint(path: Path, canary: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": {"weight": CanaryPayload(canary)}}))
    return path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("registry-models")
    os.symlink(tiny_models_dir / "tiny-sd1.safetensors", root / "tiny-sd1.safetensors")
    os.symlink(tiny_models_dir / "tiny-sd1-inpainting.safetensors", root / "tiny-sd1-inpainting.safetensors")
    shutil.copytree(tiny_models_dir / "tiny-sd1-folder", root / "tiny-sd1-folder")
    a1111 = root / "Stable-diffusion"
    save_tiny(a1111 / "xl" / "tiny-xl.safetensors", arch="sdxl")
    save_tiny(a1111 / "xl" / "tiny-xl_inpainting", arch="sdxl", inpaint=True)
    # Not checkpoints: skipped folders, add-ons, junk.
    for skipped in ("Lora", "VAE", ".cache", "embeddings", "face_restore", "upscalers", "rembg", "taesd"):
        (root / skipped).mkdir()
        os.symlink(tiny_models_dir / "tiny-sd1.safetensors", root / skipped / "ignored.safetensors")
    save_file(
        {"lora_unet_down_blocks_0.lora_up.weight": torch.zeros(4, 4)}, str(root / "some-lora.safetensors")
    )
    (root / "garbage.safetensors").write_bytes(b"\xff" * 64)
    (root / "notes.txt").write_text("not a model")
    # A diffusers folder with only pickle weights, and one of an unsupported pipeline.
    pickled = root / "pickled-folder"
    shutil.copytree(tiny_models_dir / "tiny-sd1-folder", pickled)
    for weights in pickled.glob("*/*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    mixed = root / "mixed-folder"  # one component only in a pickle format
    shutil.copytree(tiny_models_dir / "tiny-sd1-folder", mixed)
    for weights in (mixed / "text_encoder").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    other = root / "flux-folder"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    return root


@pytest.fixture(scope="module")
def registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry(models_dir, hub_ids=["stabilityai/stable-diffusion-xl-base-1.0", "not a repo id"])


def by_name(registry: ModelRegistry) -> dict[str, ModelEntry]:
    return {e.name: e for e in registry.entries()}


def test_finds_single_files_and_folders_of_each_family(registry: ModelRegistry, models_dir: Path) -> None:
    entries = by_name(registry)
    expected = {
        "tiny-sd1": ("file", "sd1", False),
        "tiny-sd1-inpainting": ("file", "sd1", True),
        "tiny-sd1-folder": ("folder", "sd1", False),
        "xl/tiny-xl": ("file", "sdxl", False),  # models/Stable-diffusion/ (A1111) with a sub-folder
        "xl/tiny-xl_inpainting": ("folder", "sdxl", True),
    }
    for name, (source, family, inpaint) in expected.items():
        entry = entries[name]
        assert (entry.source, entry.family, entry.inpaint, entry.refusal) == (
            source,
            family,
            inpaint,
            None,
        ), name
    assert entries["tiny-sd1"].path == models_dir / "tiny-sd1.safetensors"
    assert (
        entries["xl/tiny-xl_inpainting"].path == models_dir / "Stable-diffusion" / "xl" / "tiny-xl_inpainting"
    )
    assert entries["tiny-sd1"].label == "tiny-sd1 (SD 1.x)"
    assert entries["xl/tiny-xl_inpainting"].label == "xl/tiny-xl_inpainting (SDXL inpainting)"
    assert {e.name for e in registry.usable()} == set(expected) | {"stabilityai/stable-diffusion-xl-base-1.0"}


def test_skips_add_on_and_hidden_folders(registry: ModelRegistry) -> None:
    paths = [str(e.path) for e in registry.entries() if e.path is not None]
    assert not [p for p in paths if "ignored" in p]
    assert "notes" not in by_name(registry)


def test_inpaint_sibling(registry: ModelRegistry) -> None:
    base, inpaint = registry.get("tiny-sd1"), registry.get("tiny-sd1-inpainting")
    assert registry.inpaint_sibling(base) == inpaint
    assert registry.inpaint_sibling(inpaint) == base
    xl = registry.get("xl/tiny-xl")
    assert registry.inpaint_sibling(xl) == registry.get("xl/tiny-xl_inpainting")
    assert registry.inpaint_sibling(registry.get("tiny-sd1-folder")) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("some-lora", "no UNet weights"),
        ("garbage", "unreadable"),
        ("pickled-folder", "pickle format (.bin)"),
        ("mixed-folder", "pickle format (.bin)"),
        ("flux-folder", "unsupported pipeline (FluxPipeline)"),
        ("not a repo id", "not a hub repo id"),
    ],
)
def test_lists_unusable_models_with_a_reason(registry: ModelRegistry, name: str, reason: str) -> None:
    entry = by_name(registry)[name]
    assert entry.refusal and reason in entry.refusal
    assert entry.family is None
    assert entry not in registry.usable()
    with pytest.raises(ModelRefusedError, match="cannot be loaded"):
        registry.get(name)
    with pytest.raises(ModelLoadError):
        load_pipeline(entry)


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin"])
def test_pickles_are_listed_refused_and_never_unpickled(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "canary"
    write_pickle_checkpoint(tmp_path / f"evil{suffix}", canary)
    # The payload works: unpickling a copy of it does create a canary.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(CanaryPayload(proof)))
    assert proof.exists()

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    registry = ModelRegistry(tmp_path)
    entry = by_name(registry)["evil"]
    assert entry.source == "file" and entry.path == tmp_path / f"evil{suffix}"
    assert entry.refusal is not None
    assert f"pickle format ({suffix})" in entry.refusal and "convert it to .safetensors" in entry.refusal
    assert "cannot load" in entry.label
    with pytest.raises(ModelRefusedError, match="can run code"):
        registry.get("evil")
    with pytest.raises(ModelLoadError, match="can run code"):
        load_pipeline(entry)
    # Even an entry that claims to be usable is not unpickled by the loader.
    forged = ModelEntry("evil", "file", tmp_path / f"evil{suffix}", "sd1")
    with pytest.raises(ModelLoadError, match="pickle format"):
        load_pipeline(forged)
    assert not canary.exists()


def test_unknown_name_lists_known_models(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError, match="Known models: .*tiny-sd1") as error:
        registry.get("no-such-model")
    assert isinstance(error.value, ValueError)


def test_get_rescans_for_new_files(tmp_path: Path, tiny_models_dir: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert [e.name for e in registry.entries()] == [DEMO_NAME]
    os.symlink(tiny_models_dir / "tiny-sd1.safetensors", tmp_path / "late.safetensors")
    assert registry.get("late").family == "sd1"
    assert [e.name for e in registry.entries()] == ["late"]  # the demo goes once a real model is there


def test_demo_entry_when_no_usable_model(tmp_path: Path) -> None:
    (tmp_path / "old.ckpt").write_bytes(b"not even a pickle")
    demo_dir = tmp_path / "demo"
    registry = ModelRegistry(tmp_path, demo_dir=demo_dir)
    entries = registry.scan()
    demo = entries[-1]
    assert (demo.name, demo.source, demo.family, demo.inpaint, demo.refusal) == (
        DEMO_NAME,
        "demo",
        "sd1",
        False,
        None,
    )
    assert demo.label == DEMO_LABEL
    assert demo.path == demo_dir / "easel-demo-tiny-sd1.safetensors"
    assert not demo_dir.exists()  # created by the loader on first use, never by a scan
    assert registry.usable() == [demo]


def test_demo_flag_adds_demo_next_to_real_models(models_dir: Path) -> None:
    registry = ModelRegistry(models_dir, demo=True)
    names = [e.name for e in registry.scan()]
    assert names[-1] == DEMO_NAME and "tiny-sd1" in names
    assert registry.get(DEMO_NAME).path == models_dir / ".demo" / "easel-demo-tiny-sd1.safetensors"


def test_hub_entries(registry: ModelRegistry) -> None:
    hub = registry.get("stabilityai/stable-diffusion-xl-base-1.0")
    assert (hub.source, hub.path, hub.family) == ("hub", None, "sdxl")
    assert "hub" in hub.label


def test_duplicate_names_are_made_unique(tmp_path: Path, tiny_models_dir: Path) -> None:
    os.symlink(tiny_models_dir / "tiny-sd1.safetensors", tmp_path / "same.safetensors")
    shutil.copytree(tiny_models_dir / "tiny-sd1-folder", tmp_path / "same")
    (tmp_path / "Stable-diffusion").mkdir()
    os.symlink(tiny_models_dir / "tiny-sd1.safetensors", tmp_path / "Stable-diffusion" / "same.safetensors")
    entries = ModelRegistry(tmp_path).scan()
    names = [e.name for e in entries]
    assert len(names) == len(set(names)) == 3
    assert {"same", "same (folder)", "Stable-diffusion/same.safetensors"} == set(names)


def test_scan_reads_no_tensor_data(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors

    real_safe_open = safetensors.safe_open

    class HeaderOnly:
        def __init__(self, *args, **kwargs) -> None:
            self._f = real_safe_open(*args, **kwargs)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc) -> None:
            self._f.__exit__(*exc)

        def keys(self):
            return self._f.keys()

        def get_slice(self, key: str):
            return self._f.get_slice(key)

        def get_tensor(self, key: str):
            raise AssertionError(f"scan read tensor {key}")

    monkeypatch.setattr(safetensors, "safe_open", HeaderOnly)
    assert {e.name for e in registry.scan()} >= {"tiny-sd1", "xl/tiny-xl"}
