"""Shared fixtures: tiny random-weight checkpoints of the real architectures, built once per session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models/ folder holding tiny checkpoints in each on-disk form the registry understands."""
    from pipelines.tiny import save_tiny

    root = tmp_path_factory.mktemp("models")
    save_tiny(root / "tiny-sd1.safetensors", arch="sd1", seed=0)
    save_tiny(root / "tiny-sd1-folder", arch="sd1", seed=0)
    save_tiny(root / "tiny-sd1-other.safetensors", arch="sd1", seed=1)
    return root


@pytest.fixture(scope="session")
def tiny_sd1_pipe():
    """A tiny SD 1.x pipeline built in memory (for tests of code that takes a loaded pipeline)."""
    from diffusers import StableDiffusionPipeline

    from pipelines.tiny import build_tiny_components

    components = build_tiny_components("sd1", seed=0)
    pipe = StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
