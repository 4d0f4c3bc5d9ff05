"""`/sdapi/v1/options`: every A1111 key with A1111's default and type, kept per user (server-wide keys by admins
only), persisted in outputs/.easel-options.json; the keys Easel honours change what a job does or answers."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import webuiapi
from PIL import Image

from api.options import read_user_comment
from api.sdapi import build_router
from core.a1111_options import DEFAULTS, HONOURED, OPTION_KEYS, SERVER_WIDE
from core.users import User, UserBook
from studio.options import OPTIONS_FILE, AdminOnly, OptionsError, OptionsStore
from tests.helpers import served_app

PASSWORDS = {"alice": "pw", "bob": "pw2", "root": "pw3"}
SMALL = {"steps": 2, "width": 64, "height": 64, "seed": 3, "prompt": "a green owl badge"}

# What A1111 clients read, with A1111's defaults (modules/shared_options.py).
A1111_DEFAULTS: dict[str, Any] = {
    "sd_vae": "Automatic",
    "CLIP_stop_at_last_layers": 1,
    "eta_noise_seed_delta": 0,
    "eta_ancestral": 1.0,
    "send_seed": True,
    "send_size": True,
    "samples_save": True,
    "samples_format": "png",
    "jpeg_quality": 80,
    "webp_lossless": False,
    "export_for_4chan": True,
    "grid_save": True,
    "grid_format": "png",
    "save_images_add_number": True,
    "outdir_samples": "",
    "outdir_txt2img_samples": "outputs/txt2img-images",
    "outdir_img2img_samples": "outputs/img2img-images",
    "outdir_extras_samples": "outputs/extras-images",
    "outdir_grids": "",
    "outdir_save": "log/images",
    "save_to_dirs": True,
    "directories_filename_pattern": "[date]",
    "samples_filename_pattern": "",
    "enable_pnginfo": True,
    "save_txt": False,
    "img2img_color_correction": False,
    "img2img_fix_steps": False,
    "enable_quantization": False,
    "show_progressbar": True,
    "live_previews_enable": True,
    "show_progress_every_n_steps": 10,
    "show_progress_type": "Approx NN",
    "live_preview_content": "Prompt",
    "interrogate_keep_models_in_memory": False,
    "interrogate_return_ranks": False,
    "interrogate_clip_num_beams": 1,
    "interrogate_clip_min_length": 24,
    "interrogate_clip_max_length": 48,
    "interrogate_deepbooru_score_threshold": 0.5,
    "face_restoration_model": "CodeFormer",
    "code_former_weight": 0.5,
    "upscaler_for_img2img": None,
    "sd_vae_as_default": True,
    "initial_noise_multiplier": 1.0,
    "s_churn": 0.0,
    "s_tmin": 0.0,
    "s_noise": 1.0,
    "always_discard_next_to_last_sigma": False,
    "sd_unet": "Automatic",
    "tiling": False,
    "dont_fix_second_order_samplers_schedule": False,
    "token_merging_ratio": 0.0,
    "sdxl_crop_top": 0,
    "sdxl_crop_left": 0,
    "return_grid": True,
    "do_not_show_images": False,
    "js_modal_lightbox": True,
    "samples_log_stdout": False,
    "multiple_tqdm": True,
    "memmon_poll_rate": 8,
    "hide_samplers": [],
    "uni_pc_variant": "bh1",
    "uni_pc_skip_type": "time_uniform",
    "uni_pc_order": 3,
}


@dataclass
class Served:
    app: Any
    url: str

    def http(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/sdapi/v1", auth=(user, PASSWORDS[user]), timeout=120)

    def webui(self, user: str) -> webuiapi.WebUIApi:
        client = webuiapi.WebUIApi(host="127.0.0.1", port=self.app.settings.port, steps=2)
        client.set_auth(user, PASSWORDS[user])
        return client


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[Served]:
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs")) as (app, url):
        users = UserBook([User("alice", "pw"), User("bob", "pw2"), User("root", "pw3", admin=True)])
        app.page.app.include_router(build_router(app.studio, users, settings=app.settings))
        yield Served(app, url)


def answer_image(answer: dict) -> tuple[bytes, Image.Image]:
    data = base64.b64decode(answer["images"][0])
    image = Image.open(io.BytesIO(data))
    image.load()
    return data, image


# --- reading and writing --------------------------------------------------------------------------------


def test_get_options_has_every_key_with_a1111s_defaults_and_types(served):
    with served.http("alice") as alice:
        options = alice.get("/options").json()
    assert set(options) >= OPTION_KEYS and len(options) > 250
    for key, default in A1111_DEFAULTS.items():
        assert options[key] == default, key
        assert type(options[key]) is type(default), key
    assert options["sd_model_checkpoint"] == "tiny-sd1"


def test_post_then_get_round_trips_per_user(served):
    alice_api, bob_api = served.webui("alice"), served.webui("bob")
    changes = {
        "send_seed": False,
        "samples_save": False,
        "jpeg_quality": 55,
        "live_preview_content": "Combined",
    }
    try:
        answered = alice_api.set_options(changes)
        assert {k: answered[k] for k in changes} == changes  # POST answers with the options
        assert {k: alice_api.get_options()[k] for k in changes} == changes
        assert {k: bob_api.get_options()[k] for k in changes} == {k: DEFAULTS[k] for k in changes}
    finally:
        alice_api.set_options({k: DEFAULTS[k] for k in changes})


def test_a_client_may_post_back_the_whole_option_set(served):
    with served.http("bob") as bob:
        options = bob.get("/options").json()
        options["send_size"] = False
        response = bob.post("/options", json=options)
        assert response.status_code == 200, response.text
        assert bob.get("/options").json()["send_size"] is False
        bob.post("/options", json={"send_size": True})


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"no_such_option": 1}, "no_such_option"),
        ({"send_seed": True, "bogus_a": 1, "bogus_b": 2}, "bogus_a, bogus_b"),
        ({"jpeg_quality": "high"}, "jpeg_quality"),
        ({"jpeg_quality": 1000}, "jpeg_quality"),
        ({"send_seed": {"x": 1}}, "send_seed"),
        ({"samples_format": "tiff"}, "samples_format"),
        ({"CLIP_stop_at_last_layers": 0}, "CLIP_stop_at_last_layers"),
        ({"eta_noise_seed_delta": -1}, "eta_noise_seed_delta"),
        ({"hide_samplers": "Euler"}, "hide_samplers"),
        ({"sd_model_checkpoint": 5}, "sd_model_checkpoint"),
        ({"sd_vae": "missing.safetensors"}, "sd_vae"),
    ],
)
def test_unknown_keys_and_wrong_types_get_422_naming_them_and_nothing_is_kept(served, body, needle):
    with served.http("alice") as alice:
        before = alice.get("/options").json()
        response = alice.post("/options", json={"send_size": False, **body})
        assert response.status_code == 422, response.text
        assert needle in response.json()["detail"]
        assert alice.get("/options").json() == before


def test_server_wide_keys_are_for_admins_only(served):
    assert "outdir_samples" in SERVER_WIDE and "send_seed" not in SERVER_WIDE
    with served.http("alice") as alice, served.http("root") as root, served.http("bob") as bob:
        refused = alice.post("/options", json={"outdir_samples": "elsewhere", "send_seed": False})
        assert refused.status_code == 403
        assert "outdir_samples" in refused.json()["detail"]
        assert alice.get("/options").json()["send_seed"] is True  # nothing kept
        assert alice.post("/options", json={"outdir_samples": ""}).status_code == 200  # unchanged: fine
        try:
            assert root.post("/options", json={"outdir_samples": "team-out"}).status_code == 200
            assert bob.get("/options").json()["outdir_samples"] == "team-out"  # for everyone
        finally:
            root.post("/options", json={"outdir_samples": ""})


def test_options_persist_in_a_dot_file_under_outputs(served):
    path = served.app.settings.outputs_dir / OPTIONS_FILE
    with served.http("bob") as bob:
        bob.post("/options", json={"show_progress_every_n_steps": 4})
        try:
            stored = json.loads(path.read_text())
            assert stored["users"]["bob"] == {"show_progress_every_n_steps": 4}
            assert OptionsStore(path).values("bob")["show_progress_every_n_steps"] == 4  # as after a restart
        finally:
            bob.post("/options", json={"show_progress_every_n_steps": 10})
    assert "bob" not in json.loads(path.read_text())["users"]  # back to the defaults: nothing stored


def test_the_store_on_its_own(tmp_path):
    path = tmp_path / OPTIONS_FILE
    store = OptionsStore(path)
    assert store.update("ann", {"jpeg_quality": "70"}, admin=False) == {"jpeg_quality": 70}  # coerced
    with pytest.raises(AdminOnly):
        store.update("ann", {"temp_dir": "/tmp"}, admin=False)
    with pytest.raises(OptionsError, match="nope"):
        store.update("ann", {"nope": 1}, admin=True)
    store.update("boss", {"outdir_grids": "grids"}, admin=True)
    again = OptionsStore(path)
    assert again.values("ann")["jpeg_quality"] == 70 and again.values("ann")["outdir_grids"] == "grids"
    path.write_text("{not json")
    assert OptionsStore(path).values("ann") == DEFAULTS  # a damaged file is set aside
    assert path.with_name(OPTIONS_FILE + ".bad").exists()
    assert set(HONOURED) <= OPTION_KEYS


# --- honoured keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpg", "JPEG"), ("webp", "WEBP")])
def test_samples_format_sets_the_answer_format_with_the_infotext_in_exif(served, fmt, pil_format):
    with served.http("alice") as alice:
        response = alice.post("/txt2img", json={**SMALL, "override_settings": {"samples_format": fmt}})
        assert response.status_code == 200, response.text
        answer = response.json()
        data, image = answer_image(answer)
        assert image.format == pil_format
        assert read_user_comment(data) == json.loads(answer["info"])["infotexts"][0]
        assert (
            Image.open(served.app.studio.gallery.file_path(served.app.studio.gallery.recent(1)[0].id)).format
            == "PNG"
        )


def test_jpeg_quality_and_enable_pnginfo(served):
    with served.http("bob") as bob:
        small = bob.post(
            "/txt2img", json={**SMALL, "override_settings": {"samples_format": "jpg", "jpeg_quality": 5}}
        )
        large = bob.post(
            "/txt2img", json={**SMALL, "override_settings": {"samples_format": "jpg", "jpeg_quality": 95}}
        )
        assert len(answer_image(small.json())[0]) < len(answer_image(large.json())[0])
        bare = bob.post("/txt2img", json={**SMALL, "override_settings": {"enable_pnginfo": False}}).json()
        assert "parameters" not in answer_image(bare)[1].info
        assert json.loads(bare["info"])["infotexts"][0]  # the info still says what was made


def test_samples_save_false_still_answers_and_the_gallery_keeps_the_picture(served):
    studio = served.app.studio
    with served.http("alice") as alice:
        before = studio.gallery.count()
        answer = alice.post("/txt2img", json={**SMALL, "override_settings": {"samples_save": False}}).json()
    assert len(answer["images"]) == 1
    assert studio.gallery.count() == before + 1  # nothing made is lost


def test_clip_skip_changes_the_encoding_and_is_recorded(served):
    with served.http("alice") as alice:
        plain = alice.post("/txt2img", json=SMALL).json()
        skipped = alice.post(
            "/txt2img", json={**SMALL, "override_settings": {"CLIP_stop_at_last_layers": 2}}
        ).json()
    info = json.loads(skipped["info"])
    assert "Clip skip: 2" in info["infotexts"][0] and info["clip_skip"] == 2
    assert "Clip skip" not in json.loads(plain["info"])["infotexts"][0]
    a, b = (np.asarray(answer_image(x)[1].convert("RGB"), dtype=np.int16) for x in (plain, skipped))
    assert np.abs(a - b).max() > 0


def test_the_clip_skip_option_applies_to_the_callers_jobs(served):
    with served.http("bob") as bob:
        bob.post("/options", json={"CLIP_stop_at_last_layers": 2})
        try:
            answer = bob.post("/txt2img", json=SMALL).json()
            assert "Clip skip: 2" in json.loads(answer["info"])["infotexts"][0]
        finally:
            bob.post("/options", json={"CLIP_stop_at_last_layers": 1})


@pytest.mark.parametrize(("sampler", "changes"), [("Euler a", True), ("Euler", False)])
def test_eta_noise_seed_delta_moves_only_ancestral_step_noise(served, sampler, changes):
    body = {**SMALL, "steps": 3, "sampler_name": sampler}
    with served.http("alice") as alice:
        plain = alice.post("/txt2img", json=body).json()
        delta = alice.post(
            "/txt2img", json={**body, "override_settings": {"eta_noise_seed_delta": 31337}}
        ).json()
    assert "ENSD: 31337" in json.loads(delta["info"])["infotexts"][0]
    a, b = (np.asarray(answer_image(x)[1].convert("RGB"), dtype=np.int16) for x in (plain, delta))
    assert bool(np.abs(a - b).max() > 0) is changes


def test_override_settings_with_bad_values_get_422_and_ineffective_ones_a_warning(served):
    with served.http("alice") as alice:
        bad = alice.post("/txt2img", json={**SMALL, "override_settings": {"CLIP_stop_at_last_layers": "two"}})
        assert bad.status_code == 422 and "override_settings.CLIP_stop_at_last_layers" in bad.json()["detail"]
        warned = alice.post(
            "/txt2img", json={**SMALL, "override_settings": {"s_churn": 0.5, "not_an_option": 1}}
        )
        warnings = " | ".join(json.loads(warned.json()["info"])["warnings"])
        assert "s_churn" in warnings and "not_an_option" in warnings
