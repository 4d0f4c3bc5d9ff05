"""VAEs from models/VAE/: listed by /sd-vae, picked per job (override_settings.sd_vae or the sd_vae option),
cached with their model (no reload of the model), recorded in the infotext; the model's own VAE is untouched."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from api.sdapi import build_router
from pipelines.hashing import file_sha256_10
from pipelines.vae import VaeError, VaeLibrary
from tests.addon_models import addon_models_dir, write_tiny_vae
from tests.helpers import served_app

SMALL = {"steps": 2, "width": 64, "height": 64, "seed": 5, "prompt": "a red fox logo"}


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[object, httpx.Client]]:
    models = addon_models_dir(tmp_path_factory.mktemp("vae-models"), tiny_models_dir)
    with served_app(models, tmp_path_factory.mktemp("outputs")) as (app, url):
        app.page.app.include_router(build_router(app.studio, None, settings=app.settings))
        with httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as client:
            yield app, client


def pixels(answer: dict) -> np.ndarray:
    return np.asarray(
        Image.open(io.BytesIO(base64.b64decode(answer["images"][0]))).convert("RGB"), dtype=np.int16
    )


def txt2img(client: httpx.Client, **extra: object) -> dict:
    response = client.post("/txt2img", json={**SMALL, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_sd_vae_lists_usable_vaes_in_a1111_shape(served):
    _, client = served
    listed = client.get("/sd-vae").json()
    assert listed == [
        {"model_name": "same-as-model.safetensors", "filename": "VAE/same-as-model.safetensors"},
        {"model_name": "tiny-vae.safetensors", "filename": "VAE/tiny-vae.safetensors"},
    ]  # old-vae.pt is refused (never opened); paths are relative to the models folder
    assert client.post("/refresh-vae").status_code == 200


def test_a_vae_per_job_changes_the_picture_and_is_recorded_without_reloading_the_model(served):
    app, client = served
    plain = txt2img(client)
    loads = app.studio.backend.manager.load_count
    other = txt2img(client, override_settings={"sd_vae": "tiny-vae.safetensors"})
    again = txt2img(client, override_settings={"sd_vae": "tiny-vae"})  # the stem works too
    after = txt2img(client, override_settings={"sd_vae": "Automatic"})
    assert app.studio.backend.manager.load_count == loads  # the base model is never reloaded
    assert np.abs(pixels(plain) - pixels(other)).max() > 0
    assert np.array_equal(pixels(other), pixels(again))
    assert np.array_equal(pixels(plain), pixels(after))  # the model's own VAE was put back
    infotext = json.loads(other["info"])["infotexts"][0]
    vae_file = app.settings.models_dir / "VAE" / "tiny-vae.safetensors"
    assert f"VAE hash: {file_sha256_10(vae_file)}, VAE: tiny-vae.safetensors" in infotext
    assert "VAE" not in json.loads(plain["info"])["infotexts"][0]
    state = app.studio.backend.manager.model_state(app.studio.backend.manager._on_device["tiny-sd1"].pipe)
    assert len(state["vaes"]) == 1  # loaded once, kept with the model


def test_a_vae_file_with_the_models_own_weights_gives_the_same_pixels(served):
    _, client = served
    plain = txt2img(client, seed=9)
    same = txt2img(client, seed=9, override_settings={"sd_vae": "same-as-model.safetensors"})
    assert np.array_equal(pixels(plain), pixels(same))  # the single-file conversion is exact


def test_the_sd_vae_option_applies_to_the_callers_jobs(served):
    _, client = served
    plain = txt2img(client, seed=11)
    assert (
        client.post("/options", json={"sd_vae": "TINY-VAE.safetensors"}).json()["sd_vae"]
        == "tiny-vae.safetensors"
    )
    try:
        chosen = txt2img(client, seed=11)
        assert "VAE: tiny-vae.safetensors" in json.loads(chosen["info"])["infotexts"][0]
        assert np.abs(pixels(plain) - pixels(chosen)).max() > 0
    finally:
        client.post("/options", json={"sd_vae": "Automatic"})


@pytest.mark.parametrize("name", ["nope.safetensors", "old-vae.pt"])
def test_unknown_or_refused_vaes_get_422_naming_sd_vae(served, name):
    _, client = served
    for response in (
        client.post("/txt2img", json={**SMALL, "override_settings": {"sd_vae": name}}),
        client.post("/options", json={"sd_vae": name}),
    ):
        assert response.status_code == 422, response.text
        assert "sd_vae" in response.json()["detail"]


def test_the_library_lists_folders_and_refuses_what_is_not_a_vae(tmp_path):
    import torch
    from safetensors.torch import save_file

    from tests.addon_models import tiny_vae

    tiny_vae(3).save_pretrained(tmp_path / "VAE" / "folder-vae")
    write_tiny_vae(tmp_path / "VAE" / "sub" / "nested.safetensors")
    save_file({"model.diffusion_model.x": torch.zeros(1)}, str(tmp_path / "VAE" / "checkpoint.safetensors"))
    library = VaeLibrary(tmp_path)
    entries = {e.name: e for e in library.scan()}
    assert set(entries) == {"folder-vae", "nested.safetensors", "checkpoint.safetensors"}
    assert entries["folder-vae"].refusal is None and entries["nested.safetensors"].refusal is None
    assert "not a VAE" in entries["checkpoint.safetensors"].refusal
    assert library.get("Automatic") is None and library.get("none") is None
    with pytest.raises(VaeError, match="Available: Automatic, None, folder-vae, nested.safetensors"):
        library.get("missing")
