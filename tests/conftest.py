"""Shared fixtures: tiny random-weight checkpoints of the real architectures, built once per session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.helpers import served_app  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models/ folder holding tiny checkpoints in each on-disk form the registry understands."""
    from pipelines.tiny import save_tiny

    root = tmp_path_factory.mktemp("models")
    save_tiny(root / "tiny-sd1.safetensors", arch="sd1", seed=0)
    save_tiny(root / "tiny-sd1-folder", arch="sd1", seed=0)
    save_tiny(root / "tiny-sd1-other.safetensors", arch="sd1", seed=1)
    save_tiny(root / "tiny-sd1-inpainting.safetensors", arch="sd1", inpaint=True, seed=0)
    return root


@pytest.fixture
def make_studio(tiny_models_dir: Path, tmp_path: Path):
    """Build Studios the way app.py does (real registry, loader, manager, backend, gallery); closed after."""
    from app import build_studio
    from core.settings import Settings

    made = []

    def make(**overrides):
        fields = {
            "models_dir": tiny_models_dir,
            "outputs_dir": tmp_path / "outputs",
            "device": "cpu",
            "default_model": "tiny-sd1",
            "user_presets_dir": tmp_path / "user-presets",  # shipped presets from the repo, user ones here
            **overrides,
        }
        studio = build_studio(Settings(**fields))
        studio.start()
        made.append(studio)
        return studio

    yield make
    for studio in made:
        studio.close()


@pytest.fixture(scope="module")
def studio_models_dir(tiny_models_dir: Path) -> Path:
    """The models folder the module-wide `studio` serves; a test module overrides this fixture to use its own."""
    return tiny_models_dir


@pytest.fixture(scope="module")
def studio(studio_models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One Studio per test module, built as app.py builds it, for tests that leave its settings alone."""
    from app import build_studio
    from core.settings import Settings

    settings = Settings(
        models_dir=studio_models_dir,
        outputs_dir=tmp_path_factory.mktemp("outputs"),
        device="cpu",
        default_model="tiny-sd1",
        user_presets_dir=tmp_path_factory.mktemp("user-presets"),
    )
    made = build_studio(settings)
    made.start()
    yield made
    made.close()


@pytest.fixture
def make_gated_studio(tmp_path: Path):
    """Build Studios over a GatedBackend (tests/fakes.py), wired as app.py wires them; closed after.

    Returns (studio, backend): the test releases each sampling step, so queue and cancel tests need no timing.
    """
    from core.presets import PresetBook
    from core.settings import Settings
    from gallery.store import Gallery
    from studio import Studio
    from tests.fakes import GatedBackend

    made = []

    def make(**overrides):
        settings = Settings(
            models_dir=tmp_path / "models", outputs_dir=tmp_path / "outputs", device="cpu", **overrides
        )
        backend = GatedBackend()
        settings.outputs_dir.mkdir(parents=True, exist_ok=True)
        studio = Studio(
            backend,
            Gallery(settings.outputs_dir),
            queue_size=settings.queue_size,
            max_queued_per_user=settings.max_queued_per_user,
            presets=PresetBook(settings.presets_dir, tmp_path / "user-presets"),
        )
        studio.start()
        made.append((studio, backend))
        return studio, backend

    yield make
    for studio, backend in made:
        backend.open()  # let any job still waiting on a step finish, so the worker stops at once
        studio.close()


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


@pytest.fixture(scope="module")
def running_app(tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app without logins, with a 1 MB upload limit."""
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs"), max_upload_mb=1) as served:
        yield served
