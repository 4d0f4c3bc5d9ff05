"""Every listing route A1111 serves answers here in A1111's shape (raw HTTP and the unmodified `webuiapi`), with
empty lists where Easel has nothing of the kind; routes that would stop the server do not exist."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import webuiapi
from PIL import Image

from api.listings import fits, upscaler_scale
from api.sdapi import build_router
from core.backend import EmbeddingInfo, ModelInfo
from core.users import User, UserBook
from tests.addon_models import addon_models_dir
from tests.helpers import served_app

PASSWORDS = {"alice": "pw"}


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[Any, str]]:
    models = addon_models_dir(tmp_path_factory.mktemp("route-models"), tiny_models_dir)
    (models / "upscalers").mkdir()
    (models / "upscalers" / "4x-UltraSharp.safetensors").write_bytes(b"\0" * 16)  # listed, never loaded here
    with served_app(models, tmp_path_factory.mktemp("outputs"), auth=["alice:pw"]) as (app, url):
        users = UserBook([User("alice", "pw")])
        app.page.app.include_router(build_router(app.studio, users, settings=app.settings))
        yield app, url


@pytest.fixture(scope="module")
def alice(served) -> Iterator[httpx.Client]:
    _, url = served
    with httpx.Client(base_url=f"{url}/sdapi/v1", auth=("alice", "pw"), timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def api(served) -> webuiapi.WebUIApi:
    app, _ = served
    client = webuiapi.WebUIApi(host="127.0.0.1", port=app.settings.port)
    client.set_auth("alice", "pw")
    return client


def png_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


ROUTES = [
    ("GET", "/cmd-flags"),
    ("GET", "/embeddings"),
    ("POST", "/refresh-embeddings"),
    ("GET", "/hypernetworks"),
    ("GET", "/realesrgan-models"),
    ("GET", "/sd-vae"),
    ("POST", "/refresh-vae"),
    ("GET", "/sd-modules"),
    ("GET", "/script-info"),
    ("GET", "/scripts"),
    ("GET", "/extensions"),
    ("GET", "/face-restorers"),
    ("GET", "/upscalers"),
    ("GET", "/prompt-styles"),
    ("GET", "/sd-models"),
    ("GET", "/samplers"),
    ("GET", "/schedulers"),
    ("GET", "/latent-upscale-modes"),
    ("GET", "/loras"),
    ("POST", "/refresh-loras"),
    ("GET", "/memory"),
    ("GET", "/progress"),
    ("GET", "/options"),
    ("POST", "/unload-checkpoint"),
    ("POST", "/reload-checkpoint"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_listing_route_answers_200_with_a_login_and_401_without(served, alice, method, path):
    _, url = served
    assert alice.request(method, path).status_code == 200
    assert httpx.request(method, f"{url}/sdapi/v1{path}").status_code == 401


def test_shapes_through_webuiapi(api):
    flags = api.get_cmd_flags()
    assert flags["api"] is False and flags["listen"] is False and isinstance(flags["port"], int)
    embeddings = api.get_embeddings()
    assert set(embeddings) == {"loaded", "skipped"}
    assert set(embeddings["loaded"]["tinyemb"]) == {
        "step",
        "sd_checkpoint",
        "sd_checkpoint_name",
        "shape",
        "vectors",
    }
    assert api.get_hypernetworks() == []
    assert api.get_realesrgan_models() == [{"name": "4x-UltraSharp", "path": None, "scale": 4}]
    vaes = api.get_sd_vae()
    assert all(set(v) == {"model_name", "filename"} for v in vaes)
    assert {v["model_name"] for v in vaes} == {"tiny-vae.safetensors", "same-as-model.safetensors"}
    assert api.get_scripts() == {
        "txt2img": api.get_scripts()["txt2img"],
        "img2img": api.get_scripts()["img2img"],
    }


def test_script_info_lists_what_scripts_lists(alice):
    scripts = alice.get("/scripts").json()
    info = alice.get("/script-info").json()
    for item in info:
        assert set(item) == {"name", "is_alwayson", "is_img2img", "args"}
        assert isinstance(item["args"], list) and item["is_alwayson"] is False
    assert sorted(i["name"] for i in info if not i["is_img2img"]) == sorted(
        n.lower() for n in scripts["txt2img"]
    )
    assert sorted(i["name"] for i in info if i["is_img2img"]) == sorted(n.lower() for n in scripts["img2img"])


def test_empty_lists_where_easel_has_nothing_of_the_kind(alice):
    for path in ("/hypernetworks", "/sd-modules", "/extensions"):
        assert alice.get(path).json() == []


def test_cmd_flags_show_no_logins_and_no_absolute_paths(served, alice):
    app, _ = served
    flags = alice.get("/cmd-flags").json()
    assert flags["gradio_auth"] is None and flags["api_auth"] is None and flags["gradio_auth_path"] is None
    text = repr(flags)
    assert "alice" not in text and "pw" not in flags.values()
    assert str(app.settings.models_dir) not in text and str(app.settings.outputs_dir) not in text
    for value in flags.values():
        assert not (isinstance(value, str) and value.startswith("/")), value


def test_internal_ping_needs_no_login(served):
    _, url = served
    response = httpx.get(f"{url}/internal/ping")
    assert response.status_code == 200 and response.json() == {}


def test_interrogate_refuses_with_501_naming_what_is_missing(alice, api):
    response = alice.post("/interrogate", json={"image": png_b64(), "model": "clip"})
    assert response.status_code == 501
    assert "captioning model" in response.json()["detail"]
    with pytest.raises(RuntimeError, match="501"):
        api.interrogate(Image.new("RGB", (16, 16)))
    assert alice.post("/interrogate", json={"model": "clip"}).status_code == 422  # no image
    assert alice.post("/interrogate", json={"image": "!!", "model": "clip"}).status_code == 422
    bad_model = alice.post("/interrogate", json={"image": png_b64(), "model": "blip9"})
    assert bad_model.status_code == 422 and "model" in bad_model.json()["detail"]


@pytest.mark.parametrize("path", ["/server-kill", "/server-restart", "/server-stop"])
def test_routes_that_stop_the_server_do_not_exist(alice, path):
    assert alice.post(path).status_code == 404


def test_unload_and_reload_checkpoint_leave_the_cache_alone(served, alice):
    app, _ = served
    before = app.studio.backend.manager.resident()
    assert alice.post("/unload-checkpoint").json() == {} and alice.post("/reload-checkpoint").json() == {}
    assert app.studio.backend.manager.resident() == before


@pytest.mark.parametrize(
    ("name", "scale"),
    [("4x-UltraSharp", 4), ("RealESRGAN_x2plus", 2), ("x4", 4), ("SwinIR", None), ("16x9", None)],
)
def test_upscaler_scales_from_names(name, scale):
    assert upscaler_scale(name) == scale


def test_which_embeddings_fit_which_models():
    sd1 = ModelInfo("m", "m", "sd1")
    xl = ModelInfo("x", "x", "sdxl")
    assert fits(EmbeddingInfo("a", "a", vectors=1, shape=768), sd1)
    assert not fits(EmbeddingInfo("a", "a", vectors=1, shape=1024), sd1)
    assert not fits(EmbeddingInfo("a", "a", vectors=1, shape=768), xl)
    assert fits(EmbeddingInfo("a", "a", vectors=1, shape=2048, sdxl=True), xl)
    assert not fits(EmbeddingInfo("a", "a", refusal="pickle"), sd1)
