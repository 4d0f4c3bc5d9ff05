"""Retouch over HTTP on a real server: extra-single-image, /rembg, /easel/v1/retouch, logins and bad input."""

from __future__ import annotations

import base64
import functools
import io
import zipfile

import httpx
import numpy as np
import pytest

from core.infotext import parse_infotext
from tests.helpers import flat_product, open_b64, png_b64, served_app

# a blue box on a light grey background
product = functools.partial(
    flat_product,
    (80, 60),
    box=(25, 15, 55, 45),
    colour=(20, 60, 200),
    background=(240, 240, 240),
    shape="rectangle",
)


@pytest.fixture(scope="module")
def server(tiny_models_dir, tmp_path_factory):
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), api=True, auth=["ann:pw-ann-123"]
    ) as served:
        yield served


@pytest.fixture(scope="module")
def ann(server):
    _, url = server
    with httpx.Client(base_url=url, auth=("ann", "pw-ann-123"), timeout=120) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/easel/v1/retouch"),
        ("POST", "/rembg"),
        ("POST", "/sdapi/v1/extra-single-image"),
        ("GET", "/sdapi/v1/upscalers"),
        ("GET", "/sdapi/v1/face-restorers"),
    ],
)
def test_retouch_routes_need_a_login_when_there_are_users(server, method, path):
    _, url = server
    response = httpx.request(method, url + path, json={}, timeout=30)
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_native_retouch_runs_a_chain_and_answers_pictures_exports_and_recipe(server, ann):
    app, _ = server
    before = app.studio.gallery.count()
    body = {
        "image": png_b64(product()),
        "ops": [
            {"op": "remove_background", "method": "key"},
            {"op": "upscale", "scale": 2},
            {"op": "logo_pack", "sizes": [32, 64]},
        ],
    }
    response = ann.post("/easel/v1/retouch", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    picture = open_b64(answer["images"][0])
    assert picture.mode == "RGBA" and picture.size == (160, 120)
    assert picture.getchannel("A").getpixel((0, 0)) == 0 and "Retouch:" in picture.info["parameters"]
    assert [op["op"] for op in answer["recipe"]["ops"]] == ["remove_background", "upscale", "logo_pack"]
    export = answer["exports"][0]
    assert export["name"].endswith(".zip") and export["media_type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(export["data"]))) as archive:
        assert len(archive.namelist()) == 2
    assert app.studio.gallery.count() == before + 1
    assert app.studio.gallery.get(answer["ids"][0]).author == "ann"
    # the recipe replays on another picture
    again = ann.post("/easel/v1/retouch", json={"image": png_b64(product()), "recipe": answer["recipe"]})
    assert again.status_code == 200 and open_b64(again.json()["images"][0]).size == (160, 120)


def test_native_retouch_keeps_every_step_and_names_downloads_after_the_title(server, ann):
    app, _ = server
    before = app.studio.gallery.count()
    body = {
        "image": png_b64(product()),
        "ops": [
            {"op": "remove_background", "method": "key"},
            {"op": "upscale", "scale": 2},
            {"op": "vectorize"},
        ],
        "title": "Mug shot",
        "keep_steps": True,
    }
    response = ann.post("/easel/v1/retouch", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    # one picture per step that made one, in step order, each in the gallery
    assert [open_b64(image).size for image in answer["images"]] == [(80, 60), (160, 120)]
    assert app.studio.gallery.count() == before + 2
    (export,) = answer["exports"]
    assert export["name"].startswith("mug-shot-") and export["name"].endswith("-vector.svg")
    assert 'viewBox="0 0 160 120"' in base64.b64decode(export["data"]).decode()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"ops": [{"op": "upscale"}]}, "image"),
        ({"image": "bm90IGFuIGltYWdl", "ops": [{"op": "upscale"}]}, "PNG, JPEG or WebP"),
        ({"image": "http://example.com/a.png", "ops": [{"op": "upscale"}]}, "never fetched"),
        ({"image": "PNG", "ops": [{"op": "upscale", "scale": 1e6}]}, "less than or equal to 8"),
        ({"image": "PNG", "ops": [{"op": "upscale", "scale": "NaN"}]}, "finite"),
        ({"image": "PNG", "ops": []}, "at least 1"),
        ({"image": "PNG", "ops": [{"op": "teleport"}]}, "does not match"),
        ({"image": "PNG", "ops": [{"op": "upscale"}], "recipe": {"ops": [{"op": "upscale"}]}}, "not both"),
        ({"image": "PNG", "recipe": {"version": 9, "ops": [{"op": "upscale"}]}}, "version"),
        ({"image": "PNG", "ops": [{"op": "upscale"}], "colour": "red"}, "unknown field"),
        ({"image": "PNG", "ops": [{"op": "upscale"}], "title": "x" * 201}, "at most 200"),
        ({"image": "PNG", "ops": [{"op": "upscale"}], "title": "a\nb"}, "control characters"),
        ({"image": "PNG", "ops": [{"op": "upscale", "upscaler": "4x-Nothing"}]}, "Unknown upscaler"),
        ({"image": "PNG", "ops": [{"op": "restore_faces"}]}, "face_restore"),
        (
            {"image": "PNG", "ops": [{"op": "replace_background", "prompt": "x", "preset": "Nope"}]},
            "Unknown preset",
        ),
        (
            {"image": "PNG", "ops": [{"op": "replace_background", "prompt": "x", "styles": ["Nope"]}]},
            "Unknown style",
        ),
        ({"image": "PNG", "ops": [{"op": "replace_background", "prompt": "x", "styles": ["a,b"]}]}, "comma"),
    ],
)
def test_bad_native_requests_get_422_and_nothing_is_saved(server, ann, body, needle):
    app, _ = server
    before = app.studio.gallery.count()
    if body.get("image") == "PNG":
        body = {**body, "image": png_b64(product())}
    response = ann.post("/easel/v1/retouch", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert app.studio.gallery.count() == before


def test_native_retouch_applies_a_preset_and_styles_to_a_new_background_and_its_recipe_replays(server, ann):
    app, _ = server
    preset = app.studio.presets_book.get("Logo — line art (1:1)")
    extra = next(s.name for s in app.studio.presets_book.styles() if s.prompt and s.name not in preset.styles)
    op = {
        "op": "replace_background",
        "prompt": "sand",
        "method": "key",
        "preset": preset.name,
        "styles": [extra],
    }
    response = ann.post("/easel/v1/retouch", json={"image": png_b64(product()), "ops": [op], "seed": 5})
    assert response.status_code == 200, response.text
    answer = response.json()
    applied = answer["recipe"]["ops"][0]
    expected = app.studio.presets_book.expand(
        "sand", "", [*preset.styles, extra], scene=True
    )  # "sand" is the scene
    assert (applied["prompt"], applied["negative_prompt"]) == expected
    assert applied["steps"] == preset.steps and applied["preset"] == "" and applied["styles"] == []
    assert applied["applied"]["preset"] == preset.name and applied["applied"]["prompt"] == "sand"
    first = open_b64(answer["images"][0])
    assert parse_infotext(first.info["parameters"]).params["Styles"] == ", ".join([*preset.styles, extra])
    subject = np.asarray(product()) != 240
    assert np.array_equal(np.asarray(first.convert("RGB"))[subject], np.asarray(product())[subject])
    again = ann.post("/easel/v1/retouch", json={"image": png_b64(product()), "recipe": answer["recipe"]})
    assert again.status_code == 200, again.text
    assert again.json()["recipe"] == answer["recipe"]
    assert np.array_equal(np.asarray(open_b64(again.json()["images"][0])), np.asarray(first))


def test_rembg_answers_a_transparent_png_or_its_mask(ann):
    response = ann.post(
        "/rembg", json={"input_image": png_b64(product()), "model": "", "alpha_matting": False}
    )
    assert response.status_code == 200, response.text
    cut = open_b64(response.json()["image"])
    alpha = np.asarray(cut.getchannel("A"))
    assert cut.mode == "RGBA" and alpha[0, 0] == 0 and alpha[30, 40] == 255
    mask = open_b64(
        ann.post("/rembg", json={"input_image": png_b64(product()), "return_mask": True}).json()["image"]
    )
    assert mask.mode == "L" and np.array_equal(np.asarray(mask), alpha)
    unknown = ann.post("/rembg", json={"input_image": png_b64(product()), "model": "u2net"})
    assert unknown.status_code == 422 and "models/rembg" in unknown.json()["detail"]
    assert ann.post("/rembg", json={}).status_code == 422


def test_extra_single_image_upscales_as_a_job_and_refuses_face_restoration_without_weights(server, ann):
    app, _ = server
    source = png_b64(product(), parameters="a blue box\nSteps: 2, Sampler: Euler, Seed: 1")
    before = app.studio.gallery.count()
    response = ann.post("/sdapi/v1/extra-single-image", json={"image": source, "upscaler_1": "Nearest"})
    assert response.status_code == 200, response.text
    picture = open_b64(response.json()["image"])
    assert picture.size == (160, 120) and picture.info["parameters"].startswith("a blue box")
    assert app.studio.gallery.count() == before + 1  # it went through the queue into the gallery
    faces = ann.post("/sdapi/v1/extra-single-image", json={"image": source, "gfpgan_visibility": 0.5})
    assert faces.status_code == 422 and "face_restore" in faces.json()["detail"]
    assert app.studio.gallery.count() == before + 1


def test_lists_of_upscalers_and_face_restorers(ann):
    names = [u["name"] for u in ann.get("/sdapi/v1/upscalers").json()]
    assert names[:3] == ["None", "Lanczos", "Nearest"]
    assert ann.get("/sdapi/v1/face-restorers").json() == []
