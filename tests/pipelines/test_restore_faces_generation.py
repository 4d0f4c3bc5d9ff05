"""restore_faces in generation: the first face restorer in models/ is applied after the picture is made and
named in the infotext; with none installed nothing is changed, the infotext says so and the API answer warns."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from core.infotext import parse_infotext, request_fields_from_infotext
from core.requests import Txt2ImgRequest
from studio import JobState
from tests.helpers import served_app
from tests.pipelines.test_retouch_models import tiny_restoreformer

FAST = {"prompt": "a portrait", "steps": 2, "width": 64, "height": 64, "seed": 8}


@pytest.fixture(scope="module")
def models_with_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.tiny import save_tiny

    root = tmp_path_factory.mktemp("models-faces")
    save_tiny(root / "tiny-sd1.safetensors", arch="sd1", seed=0)
    (root / "face_restore").mkdir()
    save_file(tiny_restoreformer(), str(root / "face_restore" / "tiny-restoreformer.safetensors"))
    return root


def _made(studio, request) -> tuple[np.ndarray, str]:
    job = studio.jobs.submit(request, "local")
    assert job.wait(120) and job.state is JobState.DONE, job.error
    image = job.images[0]
    return np.asarray(Image.open(studio.gallery.file_path(image.id)).convert("RGB")), image.infotext


def test_restore_faces_uses_the_installed_restorer_and_says_which(make_studio, models_with_faces):
    studio = make_studio(models_dir=models_with_faces)
    plain, plain_text = _made(studio, Txt2ImgRequest(**FAST))
    restored, text = _made(studio, Txt2ImgRequest(restore_faces=True, **FAST))
    assert restored.shape == plain.shape and not np.array_equal(restored, plain)
    params = parse_infotext(text).params
    assert params["Face restoration"] == "tiny-restoreformer"
    assert list(params).index("Face restoration") < list(params).index("Size")  # A1111's order
    assert "Face restoration" not in plain_text
    assert request_fields_from_infotext(parse_infotext(text))["restore_faces"] is True
    again, _ = _made(studio, Txt2ImgRequest(**FAST))
    assert np.array_equal(again, plain)


def test_without_a_restorer_nothing_is_claimed(make_studio):
    studio = make_studio()  # the shared tiny models: no face restorer
    plain, _ = _made(studio, Txt2ImgRequest(**FAST))
    asked, text = _made(studio, Txt2ImgRequest(restore_faces=True, **FAST))
    assert np.array_equal(asked, plain)
    assert parse_infotext(text).params["Face restoration"] == "none installed"
    assert request_fields_from_infotext(parse_infotext(text))["restore_faces"] is False


def _answer(client: httpx.Client, body: dict) -> tuple[dict, Image.Image]:
    response = client.post("/txt2img", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    return json.loads(answer["info"]), Image.open(io.BytesIO(base64.b64decode(answer["images"][0])))


def test_restore_faces_over_sdapi(tiny_models_dir, models_with_faces, tmp_path):
    body = {"prompt": "a portrait", "seed": 8, "steps": 2, "width": 64, "height": 64, "restore_faces": True}
    with (
        served_app(models_with_faces, tmp_path / "with", api=True) as (_, url),
        httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as client,
    ):
        info, picture = _answer(client, body)
        assert info["restore_faces"] is True and info["face_restoration_model"] == "tiny-restoreformer"
        assert info["warnings"] == []
        assert "Face restoration: tiny-restoreformer" in picture.text["parameters"]
    with (
        served_app(tiny_models_dir, tmp_path / "without", api=True) as (_, url),
        httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as client,
    ):
        info, picture = _answer(client, body)
        assert info["face_restoration_model"] is None
        assert any("no face restorer is installed" in w for w in info["warnings"])
        assert "Face restoration: none installed" in picture.text["parameters"]
