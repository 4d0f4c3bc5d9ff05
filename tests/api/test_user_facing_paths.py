"""What users see of the server's files: errors name paths relative to models/ (never where the server keeps
them), and a LoRA whose safetensors header is broken is refused when the folder is scanned, not when used."""

from __future__ import annotations

import base64
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.helpers import served_app

SMALL = {"steps": 1, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[object, str, Path]]:
    models = tmp_path_factory.mktemp("models-with-addons")
    shutil.copy(tiny_models_dir / "tiny-sd1.safetensors", models / "tiny-sd1.safetensors")
    shutil.copy(tiny_models_dir / "tiny-sd1.safetensors", models / "soon-gone.safetensors")
    (models / "Lora").mkdir()
    # a header length of 2**60 bytes: no such header fits in any file
    (models / "Lora" / "broken.safetensors").write_bytes((2**60).to_bytes(8, "little") + b"{}" + bytes(64))
    with served_app(models, tmp_path_factory.mktemp("outputs"), api=True, preview_every=0) as (app, url):
        yield app, url, models


def test_a_lora_with_a_broken_header_is_refused_at_scan(served):
    app, url, _ = served
    refused = {lora.name: lora.refusal for lora in app.studio.catalog.loras(refresh=True)}
    assert "unreadable .safetensors file" in (refused["broken"] or "")
    with httpx.Client(base_url=url, timeout=60) as http:
        assert "broken" not in [lora["name"] for lora in http.get("/sdapi/v1/loras").json()]
        count = app.studio.gallery.count()
        response = http.post("/sdapi/v1/txt2img", json={"prompt": "a fox <lora:broken:0.8>", **SMALL})
        assert response.status_code == 422  # refused before anything is queued, not a failure in the worker
        assert "broken" in response.json()["detail"] and "unreadable" in response.json()["detail"]
        assert app.studio.gallery.count() == count


def test_errors_show_paths_relative_to_models_never_the_servers(served):
    _, url, models = served
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(picture, format="PNG")
    with httpx.Client(base_url=url, timeout=60) as http:
        faces = http.post(
            "/sdapi/v1/extra-single-image",
            json={"image": base64.b64encode(picture.getvalue()).decode(), "gfpgan_visibility": 1},
        )
        assert faces.status_code == 422
        assert "models/face_restore/" in faces.json()["detail"]
        # a checkpoint removed after the scan
        (models / "soon-gone.safetensors").unlink()
        gone = http.post(
            "/sdapi/v1/txt2img",
            json={"prompt": "x", "override_settings": {"sd_model_checkpoint": "soon-gone"}, **SMALL},
        )
        assert gone.status_code == 500
        assert "models/soon-gone.safetensors" in gone.json()["detail"]
        for answer in (faces, gone):
            assert str(models) not in answer.text and str(models.resolve()) not in answer.text
