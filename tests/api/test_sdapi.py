"""The AUTOMATIC1111 API (/sdapi/v1) on the running app: raw HTTP and the unmodified `webuiapi` client.

One app serves two routers over one Studio: `/sdapi/v1` with logins (alice, bob, root), and the same
routes without logins under `/local/sdapi/v1` (the local, single-user case).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import webuiapi
from PIL import Image

from api import a1111_translate
from api.http import MAX_BODY_BYTES
from api.sdapi import build_router
from core.backend import JobFailed, ModelInfo, Progress
from core.infotext import INFOTEXT_KEY
from core.samplers import SAMPLERS
from core.users import User, UserBook
from studio import JobState, QueueFull
from studio.jobs import FINISHED
from tests.fakes import GatedBackend
from tests.helpers import open_b64, png_b64, served_app, wait_for

PASSWORDS = {"alice": "pw", "bob": "pw2", "root": "pw3"}
SMALL = {"steps": 2, "width": 64, "height": 64}


@dataclass
class Served:
    app: Any
    url: str
    port: int

    @property
    def studio(self) -> Any:
        return self.app.studio

    def http(self, user: str | None = "alice", *, local: bool = False) -> httpx.Client:
        base = f"{self.url}/local/sdapi/v1" if local else f"{self.url}/sdapi/v1"
        auth = (user, PASSWORDS[user]) if user else None
        return httpx.Client(base_url=base, auth=auth, timeout=120)

    def webui(self, user: str) -> webuiapi.WebUIApi:
        client = webuiapi.WebUIApi(host="127.0.0.1", port=self.port, steps=2)
        client.set_auth(user, PASSWORDS[user])
        return client


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[Served]:
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs"), queue_size=4) as (app, url):
        users = UserBook([User("alice", "pw"), User("bob", "pw2"), User("root", "pw3", admin=True)])
        app.page.app.include_router(build_router(app.studio, users))
        app.page.app.include_router(build_router(app.studio, None), prefix="/local")
        yield Served(app, url, app.settings.port)


@pytest.fixture(scope="module")
def alice(served) -> Iterator[httpx.Client]:
    with served.http("alice") as client:
        yield client


def noise(size: tuple[int, int] = (64, 64), seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def box_mask(
    size: tuple[int, int] = (64, 64), box: tuple[int, int, int, int] = (16, 16, 48, 48)
) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


# --- logins -------------------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/txt2img"),
    ("POST", "/img2img"),
    ("GET", "/progress"),
    ("POST", "/interrupt"),
    ("POST", "/skip"),
    ("GET", "/options"),
    ("POST", "/options"),
    ("GET", "/sd-models"),
    ("POST", "/refresh-checkpoints"),
    ("GET", "/samplers"),
    ("GET", "/schedulers"),
    ("GET", "/upscalers"),
    ("GET", "/prompt-styles"),
    ("GET", "/scripts"),
    ("GET", "/memory"),
    ("POST", "/png-info"),
    ("POST", "/extra-single-image"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_login(served, method, path):
    with served.http(None) as anonymous:
        response = anonymous.request(method, path, json={"prompt": "x", **SMALL})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "Basic auth" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"alice:wrong").decode(),
        "Basic " + base64.b64encode(b"mallory:pw").decode(),
        "Basic " + base64.b64encode(b"alice").decode(),
        "Basic !!!not-base64",
        "Bearer " + base64.b64encode(b"alice:pw").decode(),
    ],
)
def test_wrong_or_malformed_credentials_are_refused(served, header):
    with served.http(None) as anonymous:
        response = anonymous.get("/options", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_right_credentials_are_accepted_every_time(served):
    for user in PASSWORDS:
        with served.http(user) as client:
            assert client.get("/options").status_code == 200
            assert client.get("/options").status_code == 200  # the remembered login


def test_without_users_no_login_is_needed_and_jobs_belong_to_the_local_user(served):
    with served.http(None, local=True) as local:
        response = local.post("/txt2img", json={"prompt": "local badge", "seed": 11, **SMALL})
    assert response.status_code == 200
    assert served.studio.gallery.recent(1)[0].author == "local"


# --- txt2img ------------------------------------------------------------------------------------------


def test_txt2img_answers_like_a1111_with_the_saved_files(served, alice):
    body = {
        "prompt": "a red fox logo",
        "negative_prompt": "blurry",
        "seed": 7,
        "batch_size": 2,
        "sampler_name": "Euler a",
        "scheduler": "automatic",
        "cfg_scale": 6.5,
        "denoising_strength": 0.7,  # hires-fix only in A1111: accepted, unused
        "some_extension_field": {"x": 1},  # unknown fields are ignored, as A1111 ignores them
        **SMALL,
    }
    response = alice.post("/txt2img", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    info = json.loads(answer["info"])

    assert info["all_seeds"] == [7, 8] and info["seed"] == 7
    assert info["sampler_name"] == "Euler a" and info["cfg_scale"] == 6.5 and info["steps"] == 2
    assert info["sd_model_name"] == "tiny-sd1" and info["warnings"] == []
    assert info["prompt"] == "a red fox logo" and info["all_negative_prompts"] == ["blurry", "blurry"]
    assert len(info["job_timestamp"]) == 14
    assert answer["parameters"]["prompt"] == "a red fox logo" and answer["parameters"]["seed"] == 7
    assert "some_extension_field" not in answer["parameters"]

    saved = {served.studio.gallery.file_path(g.id).read_bytes() for g in served.studio.gallery.recent(2)}
    assert {base64.b64decode(b) for b in answer["images"]} == saved
    for encoded, infotext in zip(answer["images"], info["infotexts"], strict=True):
        image = open_b64(encoded)
        assert image.format == "PNG" and image.size == (64, 64)
        assert image.text[INFOTEXT_KEY] == infotext
    assert "Sampler: Euler a" in info["infotexts"][0] and "Seed: 8" in info["infotexts"][1]
    assert info["sd_model_hash"] and f"Model hash: {info['sd_model_hash']}" in info["infotexts"][0]
    assert all(g.author == "alice" for g in served.studio.gallery.recent(2))


def test_send_images_false_answers_without_images(alice):
    response = alice.post("/txt2img", json={"prompt": "quiet", "send_images": False, "seed": 1, **SMALL})
    assert response.status_code == 200
    assert response.json()["images"] == [] and len(json.loads(response.json()["info"])["infotexts"]) == 1


def test_unsupported_a1111_features_are_ignored_with_warnings(alice):
    body = {
        "prompt": "warned",
        "seed": 3,
        "restore_faces": True,
        "override_settings": {
            "sd_model_checkpoint": "tiny-sd1-other.safetensors [0123456789]",
            "token_merging_ratio": 0.5,
        },
        **SMALL,
    }
    response = alice.post("/txt2img", json=body)
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    warnings = " | ".join(info["warnings"])
    for name in (
        "restore_faces",  # honoured, but no face restorer is installed here: the answer says so
        "token_merging_ratio",
    ):
        assert name in warnings
    assert info["sd_model_name"] == "tiny-sd1-other"
    assert "Model: tiny-sd1-other" in info["infotexts"][0]


TOO_BIG_PROMPT = "x" * 2**20


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"steps": 1e6}, "steps"),
        ({"steps": 20.5}, "steps"),
        ({"steps": "many"}, "steps"),
        ({"width": 513}, "multiple of 8"),
        ({"height": 4096}, "height"),
        ({"batch_size": 1000}, "batch_size"),
        ({"n_iter": 0}, "n_iter"),
        ({"seed": -5}, "seed"),
        ({"prompt": TOO_BIG_PROMPT}, "prompt"),
        ({"sampler_name": "Bogus"}, "unknown sampler"),
        ({"scheduler": "bogus"}, "scheduler"),
        ({"sampler_name": "Euler a", "scheduler": "karras"}, "does not support"),
        ({"override_settings": {"sd_model_checkpoint": "nope"}}, "tiny-sd1-other"),
    ],
)
def test_bad_txt2img_values_get_422_and_nothing_runs(served, alice, body, needle):
    before = served.studio.gallery.count()
    response = alice.post("/txt2img", json={"prompt": "x", **SMALL, **body})
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert served.studio.gallery.count() == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"prompt": "x", "steps": 2, "width": 64, "height": 64, "cfg_scale": NaN}', "cfg_scale"),
        (b'{"prompt": "x", "steps": 2, "width": 64, "height": 64, "cfg_scale": Infinity}', "cfg_scale"),
        (b'{"prompt": ', "not valid JSON"),
        (b'["prompt"]', "JSON object"),
    ],
)
def test_bodies_that_are_not_a1111_requests_get_422(alice, content, needle):
    response = alice.post("/txt2img", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert needle in response.json()["detail"]


def test_a_body_over_the_cap_gets_413(alice):
    response = alice.post("/txt2img", content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert "MB" in response.json()["detail"]


def test_a_chunked_body_over_the_cap_gets_413_too(served):
    chunk = b" " * 2**20
    with served.http("alice") as client:  # a connection of its own: the server drops it after refusing
        response = client.post("/txt2img", content=iter([chunk] * (MAX_BODY_BYTES // len(chunk) + 2)))
    assert response.status_code == 413  # no Content-Length: counted while reading


def test_a_failed_job_answers_500_with_its_message(served, alice, monkeypatch):
    def failing_run(request, resolved=None):
        raise JobFailed("Out of GPU memory at 64×64, batch size 1. Try a smaller size.")
        yield  # a generator, like the real backend

    monkeypatch.setattr(served.studio.backend, "run", failing_run)
    response = alice.post("/txt2img", json={"prompt": "doomed", **SMALL})
    assert response.status_code == 500
    assert response.json() == {
        "error": "GenerationFailed",
        "detail": "Out of GPU memory at 64×64, batch size 1. Try a smaller size.",
    }


def test_a_full_queue_answers_503(served, alice, monkeypatch):
    studio = served.studio
    release, started = threading.Event(), threading.Event()

    def blocking_run(request, resolved=None):
        started.set()
        while not release.wait(0.01):
            yield Progress(step=0, total=1)

    monkeypatch.setattr(studio.backend, "run", blocking_run)
    from core.requests import Txt2ImgRequest

    try:
        first = studio.jobs.submit(Txt2ImgRequest(prompt="filler", **SMALL), "filler")
        assert started.wait(30), "the job did not start"
        assert first.state is JobState.RUNNING
        with pytest.raises(QueueFull):
            for _ in range(10):
                studio.jobs.submit(Txt2ImgRequest(prompt="filler", **SMALL), "filler")
        response = alice.post("/txt2img", json={"prompt": "one too many", **SMALL})
        assert response.status_code == 503
        assert "queue is full" in response.json()["detail"]
    finally:
        studio.jobs.cancel_all("filler")
        release.set()
    assert first.wait(30)


# --- img2img and inpaint --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"init_images": None}, "init_images"),
        ({"init_images": []}, "init_images"),
        ({"init_images": ["https://example.com/cat.png"]}, "never fetched"),
        ({"init_images": ["not base64 at all!"]}, "base64"),
        ({"init_images": [base64.b64encode(b"GIF89a" + b"\0" * 64).decode()]}, "PNG, JPEG or WebP"),
        ({"resize_mode": 3}, "latent upscale"),
        ({"resize_mode": 7}, "resize_mode"),
        ({"denoising_strength": 1.5}, "denoising_strength"),
        ({"mask": png_b64(box_mask((32, 32)))}, "mask"),
        ({"mask": png_b64(Image.new("L", (64, 64), 0))}, "empty"),
        ({"mask": png_b64(box_mask()), "inpainting_fill": 9}, "inpainting_fill"),
        ({"mask": png_b64(box_mask()), "inpainting_mask_invert": 2}, "inpainting_mask_invert"),
        ({"mask": png_b64(box_mask()), "mask_blur": 1000}, "mask_blur"),
    ],
)
def test_bad_img2img_requests_get_422(served, alice, changes, needle):
    before = served.studio.gallery.count()
    body = {"prompt": "x", "init_images": [png_b64(noise())], **SMALL, **changes}
    response = alice.post("/img2img", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert served.studio.gallery.count() == before


def test_webuiapi_img2img(served):
    api = served.webui("alice")
    result = api.img2img(
        images=[noise((96, 64))],
        denoising_strength=0.5,
        resize_mode=1,
        width=64,
        height=64,
        seed=5,
        include_init_images=True,
    )
    assert result.image.size == (64, 64)
    assert result.info["all_seeds"] == [5] and result.info["warnings"] == []
    assert "Denoising strength: 0.5" in result.image.info["parameters"]
    assert "Resize mode: Crop and resize" in result.image.info["parameters"]
    assert result.parameters["init_images"][0].startswith("data:image/png;base64,")
    assert served.studio.gallery.recent(1)[0].task == "img2img"


def test_webuiapi_inpaint_keeps_every_pixel_outside_the_mask(served):
    api = served.webui("alice")
    source, mask = noise(seed=3), box_mask()
    result = api.img2img(
        images=[source],
        mask_image=mask,
        inpainting_fill=1,
        denoising_strength=1.0,
        width=64,
        height=64,
        seed=9,
    )
    assert result.parameters["init_images"] is None and result.parameters["mask"] is None
    out = np.asarray(result.image.convert("RGB"))
    original = np.asarray(source)
    outside = np.asarray(mask) == 0
    assert result.image.size == (64, 64)
    assert (out[outside] == original[outside]).all()
    assert (out[~outside] != original[~outside]).any()
    infotext = result.image.info["parameters"]
    assert "Masked content: original" in infotext and "Inpaint area: Only masked" in infotext
    assert served.studio.gallery.recent(1)[0].task == "inpaint"


# --- the webuiapi client, unchanged -----------------------------------------------------------------------


def test_webuiapi_txt2img(served):
    api = served.webui("alice")
    result = api.txt2img(prompt="a blue owl badge", negative_prompt="text", seed=3, width=64, height=64)
    assert len(result.images) == 1 and result.image.size == (64, 64)
    assert result.info["all_seeds"] == [3] and result.info["sampler_name"] == "Euler a"
    assert result.info["warnings"] == []  # nothing webuiapi sends by default is lost
    assert result.parameters["prompt"] == "a blue owl badge"
    assert result.image.info["parameters"] == result.info["infotexts"][0]
    assert "Negative prompt: text" in result.image.info["parameters"]


def test_webuiapi_lists(served):
    api = served.webui("bob")
    assert api.util_get_sampler_names() == sorted(SAMPLERS)
    assert "karras" in api.util_get_scheduler_names()
    karras = next(s for s in api.get_schedulers() if s["name"] == "karras")
    assert karras["label"] == "Karras" and karras["default_rho"] == 7.0
    dpm = next(s for s in api.get_samplers() if s["name"] == "DPM++ 2M")
    assert dpm["aliases"] == ["k_dpmpp_2m"] and dpm["options"] == {"scheduler": "karras"}
    names = api.util_get_model_names()
    assert {"tiny-sd1", "tiny-sd1-other", "tiny-sd1-inpainting"} <= set(names)
    assert {"None", "Lanczos"} <= {u["name"] for u in api.get_upscalers()}
    assert "Cinematic" in {s["name"] for s in api.get_prompt_styles()}  # the shipped styles.csv
    assert api.refresh_checkpoints() == {}
    memory = api.get_memory()
    assert memory["ram"]["total"] > memory["ram"]["used"] > 0
    assert "error" in memory["cuda"]  # models run on the CPU here


def test_sd_models_learn_the_hash_from_generations(served, alice):
    answer = alice.post("/txt2img", json={"prompt": "hash", "seed": 1, **SMALL}).json()
    model_hash = json.loads(answer["info"])["sd_model_hash"]
    models = {m["title"]: m for m in alice.get("/sd-models").json()}
    assert models["tiny-sd1"]["hash"] == model_hash
    assert set(models["tiny-sd1"]) == {"title", "model_name", "hash", "sha256", "filename", "config"}
    assert alice.get("/options").json()["sd_checkpoint_hash"] == model_hash


def test_options_switch_the_model_of_the_caller_only(served):
    alice_api, bob_api = served.webui("alice"), served.webui("bob")
    assert alice_api.util_get_current_model() == "tiny-sd1"
    try:
        alice_api.util_set_model("tiny-sd1-other")
        assert alice_api.get_options()["sd_model_checkpoint"] == "tiny-sd1-other"
        assert bob_api.util_get_current_model() == "tiny-sd1"
        result = alice_api.txt2img(prompt="switched", seed=2, width=64, height=64)
        assert "Model: tiny-sd1-other" in result.image.info["parameters"]
    finally:
        served.studio.catalog.prefer_model("alice", "tiny-sd1")


def test_post_options_answers_json_ignores_unknown_keys_and_refuses_unknown_models(served):
    with served.http("bob") as bob:
        response = bob.post(
            "/options", json={"sd_model_checkpoint": "TINY-SD1.safetensors", "show_progressbar": False}
        )
        assert response.status_code == 200 and response.json()["sd_model_checkpoint"] == "tiny-sd1"
        refused = bob.post("/options", json={"sd_model_checkpoint": "sd_xl_base_1.0"})
        assert refused.status_code == 422
        assert "tiny-sd1-other" in refused.json()["detail"]
        assert bob.get("/options").json()["sd_model_checkpoint"] == "tiny-sd1"


def test_png_info_reads_our_files_and_refuses_other_formats(served, alice):
    api = served.webui("alice")
    made = api.txt2img(prompt="a green frog sticker", negative_prompt="photo", seed=4, width=64, height=72)
    result = api.png_info(made.image)
    assert result.info == made.image.info["parameters"]
    assert result.parameters["Prompt"] == "a green frog sticker"
    assert result.parameters["Negative prompt"] == "photo"
    assert result.parameters["Seed"] == "4" and result.parameters["Size-1"] == "64"
    assert result.parameters["Size-2"] == "72"
    assert "easel" in result.json["items"] and INFOTEXT_KEY not in result.json["items"]

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + "a jpeg\nSteps: 3, Sampler: Euler, Seed: 1".encode(
        "utf-16-be"
    )
    noise().save(buffer, format="JPEG", exif=exif)
    jpeg = alice.post("/png-info", json={"image": base64.b64encode(buffer.getvalue()).decode()}).json()
    assert jpeg["info"].startswith("a jpeg") and jpeg["parameters"]["Steps"] == "3"

    gif = base64.b64encode(b"GIF89a" + b"\0" * 64).decode()
    response = alice.post("/png-info", json={"image": gif})
    assert response.status_code == 422 and "PNG, JPEG or WebP" in response.json()["detail"]
    assert alice.post("/png-info", json={}).status_code == 422


def test_extra_single_image_resizes_with_lanczos_and_keeps_the_infotext(served, alice):
    api = served.webui("alice")
    source = noise((40, 30))
    source.info["parameters"] = "a cat\nSteps: 2, Sampler: Euler, Seed: 1"
    doubled = api.extra_single_image(source, upscaler_1="Lanczos", upscaling_resize=2)
    assert doubled.image.size == (80, 60)
    assert doubled.image.info["parameters"] == source.info["parameters"]
    unchanged = api.extra_single_image(source)  # upscaler_1 "None", as in A1111: nothing to do
    assert np.array_equal(np.asarray(unchanged.image.convert("RGB")), np.asarray(source))

    body = {"image": png_b64(source, prefix=True), "upscaler_1": "Lanczos", "resize_mode": 1}
    cropped = alice.post(
        "/extra-single-image", json={**body, "upscaling_resize_w": 100, "upscaling_resize_h": 50}
    )
    assert cropped.status_code == 200 and open_b64(cropped.json()["image"]).size == (100, 50)
    assert cropped.json()["html_info"] == ""
    uncropped = alice.post(
        "/extra-single-image",
        json={**body, "upscaling_resize_w": 100, "upscaling_resize_h": 50, "upscaling_crop": False},
    )
    assert open_b64(uncropped.json()["image"]).size == (100, 75)

    unknown = alice.post("/extra-single-image", json={**body, "upscaler_1": "R-ESRGAN 4x+"})
    assert unknown.status_code == 422 and "Lanczos" in unknown.json()["detail"]
    huge = alice.post(
        "/extra-single-image", json={"image": body["image"], "upscaler_1": "Lanczos", "upscaling_resize": 100}
    )
    assert huge.status_code == 422 and "upscaling_resize" in huge.json()["detail"]


# --- progress and interrupt -----------------------------------------------------------------------------


def _in_thread(call) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", call()), daemon=True)
    thread.start()
    return thread, box


@pytest.fixture
def no_jobs_left(served) -> Iterator[None]:
    """Whatever a failed test leaves running is cancelled, so that it cannot slow down the next tests."""
    yield
    for user in PASSWORDS:
        served.studio.jobs.cancel_all(user)
    wait_for(
        lambda: all(j is None or j.state in FINISHED for j in map(served.studio.jobs.latest_job, PASSWORDS))
    )


def test_progress_and_interrupt_only_ever_touch_the_callers_own_job(served, no_jobs_left):
    alice_api = served.webui("alice")
    studio = served.studio
    with served.http("alice") as alice, served.http("bob") as bob:
        # 1. alice starts a long job and watches it, preview included
        long_job = {"prompt": "long", "seed": 1, "steps": 150, "width": 256, "height": 256}  # stopped early
        alice_thread, alice_box = _in_thread(lambda: alice.post("/txt2img", json=long_job))
        running = wait_for(
            lambda: (
                (p := alice.get("/progress").json())["state"]["sampling_step"] >= 3
                and p["current_image"]
                and p
            )
        )
        assert 0 < running["progress"] < 1 and running["state"]["job_count"] == 1
        assert running["state"]["sampling_steps"] == 150 and running["eta_relative"] >= 0
        assert open_b64(running["current_image"]).format == "PNG"
        assert alice.get("/progress", params={"skip_current_image": True}).json()["current_image"] is None

        # 2. bob sees nothing of it; his own job waits behind it, and his interrupt stops only his
        assert bob.get("/progress").json()["state"]["job_count"] == 0
        assert bob.get("/progress").json()["current_image"] is None
        bob_thread, bob_box = _in_thread(lambda: bob.post("/txt2img", json={"prompt": "bob's", **SMALL}))
        waiting = wait_for(lambda: (p := bob.get("/progress").json())["state"]["job_count"] and p)
        assert waiting["textinfo"].startswith("Waiting in the queue") and waiting["progress"] == 0
        assert bob.post("/interrupt").json() == {}
        bob_thread.join(60)
        bob_answer = bob_box["result"]
        assert bob_answer.status_code == 200 and bob_answer.json()["images"] == []
        assert "interrupted: 0 of 1" in json.loads(bob_answer.json()["info"])["warnings"][-1]
        assert studio.jobs.latest_job("alice").state is JobState.RUNNING

        # 3. alice interrupts through webuiapi: her request answers with what was finished (nothing yet)
        assert alice_api.interrupt() == {}
        alice_thread.join(60)
        answer = alice_box["result"]
        assert answer.status_code == 200 and answer.json()["images"] == []
        assert studio.jobs.latest_job("alice").state is JobState.CANCELLED
        after = alice_api.get_progress()
        assert after["progress"] == 0 and after["state"]["job_count"] == 0 and after["state"]["interrupted"]
        alice_api.util_wait_for_ready(check_interval=0.1)


def test_an_admin_with_no_job_of_their_own_stops_the_running_job(served, no_jobs_left, monkeypatch):
    studio = served.studio
    gated = GatedBackend()  # each sampling step waits for this test: no timing
    monkeypatch.setattr(studio.backend, "run", gated.run)
    with served.http("alice") as alice, served.http("root") as root, served.http("bob") as bob:
        long_job = {"prompt": "long", "seed": 1, **SMALL, "steps": 150}
        thread, box = _in_thread(lambda: alice.post("/txt2img", json=long_job))
        (run,) = gated.wait_for_runs(1)
        gated.release()
        wait_for(lambda: alice.get("/progress").json()["state"]["sampling_step"] >= 1)
        assert bob.post("/interrupt").json() == {}  # not an admin: alice's job goes on
        job = studio.jobs.latest_job("alice")
        assert job.state is JobState.RUNNING and not job.cancel_requested
        gated.release()
        gated.wait_for_step(run, 2)  # and it goes on to its next step
        assert root.post("/interrupt").json() == {}
        gated.open()
        thread.join(60)
        assert box["result"].status_code == 200
        assert studio.jobs.latest_job("alice").state is JobState.CANCELLED
        assert run.closed_early and run.steps_done < 150


def test_skip_stops_the_callers_job_and_keeps_finished_images(served, no_jobs_left, monkeypatch):
    gated = GatedBackend()  # each sampling step waits for this test: no timing
    monkeypatch.setattr(served.studio.backend, "run", gated.run)
    with served.http("root") as root:
        body = {"prompt": "skip", "seed": 1, "n_iter": 3, **SMALL}
        thread, box = _in_thread(lambda: root.post("/txt2img", json=body))
        (run,) = gated.wait_for_runs(1)
        gated.release(SMALL["steps"])  # the first of three pictures is made and saved
        wait_for(lambda: served.studio.jobs.latest_job("root").images)
        assert root.post("/skip").json() == {}
        gated.open()
        thread.join(60)
    answer = box["result"].json()
    assert len(answer["images"]) == 1 and run.closed_early
    assert len(json.loads(answer["info"])["all_seeds"]) == len(answer["images"])
    assert served.studio.jobs.latest_job("root").state in FINISHED


# --- the A1111 vocabulary, without a server -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Euler a", "Euler a"),
        ("euler A", "Euler a"),
        ("k_euler_a", "Euler a"),
        ("k_dpmpp_2m", "DPM++ 2M"),
        ("DPM++ 2M Karras", "DPM++ 2M Karras"),
        ("dpm++ 2m karras", "DPM++ 2M Karras"),
        ("Bogus", "Bogus"),
    ],
)
def test_sampler_names_and_aliases(given, expected):
    assert a1111_translate.sampler_from_a1111(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "Automatic"), ("", "Automatic"), ("automatic", "Automatic"), ("karras", "Karras"),
     ("SGM Uniform", "SGM Uniform"), ("sgm_uniform", "SGM Uniform"), ("SGMUniform", "SGM Uniform"), ("beta", "beta")],
)  # fmt: skip
def test_scheduler_names(given, expected):
    assert a1111_translate.schedule_from_a1111(given) == expected


def test_legacy_names_map_onto_a_sampler_and_a_schedule():
    plan = a1111_translate.txt2img_plan(
        {"sampler_index": "k_dpmpp_2m", "scheduler": "Karras", **SMALL}, lambda m: m
    )
    assert (plan.request.sampler, plan.request.schedule_type) == ("DPM++ 2M", "Karras")
    plan = a1111_translate.txt2img_plan({"sampler_name": "DPM++ 2M Karras", **SMALL}, lambda m: m)
    assert (plan.request.sampler, plan.request.schedule_type) == ("DPM++ 2M", "Karras")
    assert a1111_translate.txt2img_plan(SMALL, lambda m: m).request.sampler == "Euler"  # A1111's API default


def test_model_titles_resolve_to_model_names():
    models = [
        ModelInfo("tiny-sd1", "tiny-sd1 (SD 1.x)", "sd1"),
        ModelInfo("sub/Other", "sub/Other", "sd1"),
        ModelInfo("bad", "bad", None, refusal="pickle"),
    ]
    hashes = {"tiny-sd1": "abcdef0123"}
    for title in (
        "tiny-sd1",
        "tiny-sd1.safetensors",
        "tiny-sd1 [abcdef0123]",
        "TINY-SD1.safetensors [abcdef0123]",
        "abcdef0123",
    ):
        assert a1111_translate.resolve_model(title, models, hashes) == "tiny-sd1"
    assert a1111_translate.resolve_model("sub/other.safetensors", models, hashes) == "sub/Other"
    with pytest.raises(a1111_translate.BadRequest, match="Available: sub/Other, tiny-sd1"):
        a1111_translate.resolve_model("bad", models, hashes)


def test_base64_fields_accept_data_urls_and_refuse_urls():
    data = b"\x89PNG\r\n\x1a\nrest"
    encoded = base64.b64encode(data).decode()
    assert a1111_translate.decode_b64(encoded, "x") == data
    assert a1111_translate.decode_b64(f"data:image/png;base64,{encoded}", "x") == data
    assert a1111_translate.decode_b64(encoded[:8] + "\n" + encoded[8:], "x") == data
    for bad, needle in (("http://10.0.0.1/x.png", "URLs"), ("%%%", "base64"), ("", "empty")):
        with pytest.raises(a1111_translate.BadRequest, match=needle):
            a1111_translate.decode_b64(bad, "x")
