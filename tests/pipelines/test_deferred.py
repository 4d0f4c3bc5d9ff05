"""The deferred backend: the page's lists before torch, jobs once the real backend is built, a kept model list
that is used only while the models folder is unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.backend import JobFailed
from core.requests import Txt2ImgRequest
from core.settings import Settings
from pipelines.deferred import STARTING, DeferredBackend
from pipelines.registry import ModelRegistry

LIST_FILE = ".easel-models.json"


@pytest.fixture
def models_dir(tiny_models_dir: Path, tmp_path: Path) -> Path:
    """A models folder of its own (the tests add files to it), with one tiny checkpoint."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy2(tiny_models_dir / "tiny-sd1.safetensors", root / "tiny-sd1.safetensors")
    return root


def deferred_studio(models_dir: Path, outputs: Path):
    from app import build_studio

    settings = Settings(
        models_dir=models_dir, outputs_dir=outputs, device="cpu", default_model="tiny-sd1",
        user_presets_dir=outputs.with_name("user-presets"),
    )  # fmt: skip
    studio = build_studio(settings, deferred=True)
    assert isinstance(studio.backend, DeferredBackend)
    return studio


def test_the_page_lists_come_before_the_backend_and_the_first_job_waits_for_it(models_dir, tmp_path):
    studio = deferred_studio(models_dir, tmp_path / "outputs")
    backend = studio.backend
    try:
        models = studio.catalog.models()
        assert [m.name for m in models if not m.refusal] == ["tiny-sd1"]
        assert studio.catalog.default_model() == "tiny-sd1"
        assert studio.catalog.loras() == []
        assert "Lanczos" in studio.catalog.retouch_tools().upscalers
        assert studio.catalog.status().device == STARTING
        assert backend.ready() is None  # nothing above built the real backend
        studio.start()
        job = studio.jobs.submit(
            Txt2ImgRequest(prompt="a mug", steps=1, width=64, height=64, seed=3), "local"
        )
        assert job.wait(300) and job.state.value == "done", job.error
        assert backend.ready() is not None
        assert studio.catalog.status().device != STARTING
        assert studio.catalog.models() == models  # the real backend lists what the page was built with
        assert backend.manager.load_count == 1  # the local backend's own parts are reached through it
    finally:
        studio.close()
    kept = json.loads((tmp_path / "outputs" / LIST_FILE).read_text())
    assert [m["name"] for m in kept["models"]] == [m.name for m in models]


def test_the_kept_model_list_is_used_only_while_the_models_folder_is_the_same(models_dir, tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    first = DeferredBackend(ModelRegistry(models_dir), _no_backend, model_list_file=outputs / LIST_FILE)
    scanned = first.models()
    kept = json.loads((outputs / LIST_FILE).read_text())
    kept["models"][0]["label"] = "as kept"  # to tell the kept list from a new scan
    (outputs / LIST_FILE).write_text(json.dumps(kept))

    again = DeferredBackend(ModelRegistry(models_dir), _no_backend, model_list_file=outputs / LIST_FILE)
    assert again.models()[0].label == "as kept"

    shutil.copy2(models_dir / "tiny-sd1.safetensors", models_dir / "tiny-sd1-copy.safetensors")
    changed = DeferredBackend(ModelRegistry(models_dir), _no_backend, model_list_file=outputs / LIST_FILE)
    names = [m.name for m in changed.models()]
    assert "tiny-sd1-copy" in names and changed.models()[0].label != "as kept"
    assert len(names) == len(scanned) + 1

    hub = DeferredBackend(
        ModelRegistry(models_dir, hub_ids=["org/model"]), _no_backend, model_list_file=outputs / LIST_FILE
    )
    assert "org/model" in [m.name for m in hub.models()]  # other flags, another list


def test_a_backend_that_cannot_start_fails_jobs_with_the_reason(models_dir):
    backend = DeferredBackend(ModelRegistry(models_dir), _no_backend)
    backend.close()  # nothing was started: nothing is built to be closed
    assert backend.ready() is None
    with pytest.raises(JobFailed, match="could not start: no CUDA GPU here"):
        next(backend.run(Txt2ImgRequest(prompt="x", steps=1, width=64, height=64, seed=1)))
    assert "unavailable" in backend.status().device
    assert not hasattr(
        backend, "manager"
    )  # the local backend's parts are not there (AttributeError, as usual)
    backend.close()
    assert [m.name for m in backend.models() if not m.refusal] == ["tiny-sd1"]  # the lists still answer


def _no_backend():
    raise RuntimeError("no CUDA GPU here")
