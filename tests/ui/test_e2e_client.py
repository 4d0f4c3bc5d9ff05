"""The running app driven over HTTP with gradio_client, as a script or another tool would."""

import base64
import io

import httpx
import pytest
from gradio_client import Client
from PIL import Image

from core.infotext import INFOTEXT_KEY


@pytest.fixture(scope="module")
def client(running_app):
    _, url = running_app
    client = Client(url, verbose=False)
    yield client
    client.close()


def test_txt2img_endpoint_generates_and_saves(running_app, client):
    app, _ = running_app
    before = app.studio.gallery.count()
    result = client.predict(
        prompt="a red fox logo",
        negative_prompt="blurry",
        steps=2,
        width=64,
        height=72,
        seed=321,
        batch_size=2,
        api_name="/txt2img",
    )
    assert result["state"] == "done"
    assert result["seeds"] == [321, 322]
    assert app.studio.gallery.count() == before + 2
    for image_id, b64, infotext in zip(result["ids"], result["images"], result["infotexts"], strict=True):
        png = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert png.format == "PNG" and png.size == (64, 72)
        assert png.text[INFOTEXT_KEY] == infotext
        assert app.studio.gallery.file_path(image_id).read_bytes() == base64.b64decode(b64)


def test_same_seed_over_the_api_gives_identical_files(client):
    first = client.predict(prompt="badge", steps=2, width=64, height=64, seed=5, api_name="/txt2img")
    second = client.predict(prompt="badge", steps=2, width=64, height=64, seed=5, api_name="/txt2img")
    a = Image.open(io.BytesIO(base64.b64decode(first["images"][0])))
    b = Image.open(io.BytesIO(base64.b64decode(second["images"][0])))
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"width": 513}, "multiple of 8"),
        ({"steps": 0}, "steps"),
        ({"cfg_scale": 31}, "cfg_scale"),
        ({"sampler": "Bogus"}, "unknown sampler"),
        ({"model": "not-a-model"}, "Unknown model"),
    ],
)
def test_bad_requests_get_a_clear_error_and_nothing_is_saved(running_app, client, fields, needle):
    app, _ = running_app
    before = app.studio.gallery.count()
    with pytest.raises(Exception, match=needle):
        client.predict(
            **{"prompt": "x", "steps": 2, "width": 64, "height": 64, **fields}, api_name="/txt2img"
        )
    assert app.studio.gallery.count() == before


def test_api_lists_the_stable_endpoint_name(client):
    assert "/txt2img" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]


def test_files_outside_outputs_are_not_served(running_app):
    _, url = running_app
    for path in (
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../etc/passwd",
        "/gradio_api/file=%2e%2e/app.py",
    ):
        response = httpx.get(url + path, timeout=10)
        assert response.status_code in (403, 404), path
        assert b"root:" not in response.content


def test_nan_sent_as_raw_json_is_rejected(running_app):
    """gradio_client refuses to encode NaN, but a hand-made request can carry it: the server must reject it."""
    app, url = running_app
    before = app.studio.gallery.count()
    body = '{"data": ["x", "", "", "Euler", "Automatic", 2, NaN, 64, 64, 1, 1, 1]}'
    posted = httpx.post(
        url + "/gradio_api/call/txt2img",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    if posted.status_code == 200:
        event_id = posted.json()["event_id"]
        stream = httpx.get(url + f"/gradio_api/call/txt2img/{event_id}", timeout=60).text
        assert "event: error" in stream and "complete" not in stream.split("event: error")[0]
    else:
        assert 400 <= posted.status_code < 500
    assert app.studio.gallery.count() == before


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_cross_origin_post_is_refused(running_app, origin):
    app, url = running_app
    before = app.studio.gallery.count()
    body = {"data": ["x", "", "", "Euler", "Automatic", 2, 7.0, 64, 64, 1, 1, 1]}
    response = httpx.post(url + "/gradio_api/call/txt2img", json=body, headers={"Origin": origin}, timeout=30)
    assert response.status_code == 403
    assert app.studio.gallery.count() == before


def test_same_origin_post_is_accepted(running_app):
    _, url = running_app
    body = {"data": ["x", "", "", "Euler", "Automatic", 2, 7.0, 64, 64, 1, 1, 1]}
    response = httpx.post(url + "/gradio_api/call/txt2img", json=body, headers={"Origin": url}, timeout=30)
    assert response.status_code == 200 and "event_id" in response.json()


def _png_b64(size=(64, 64), color=(200, 40, 40)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_img2img_and_inpaint_endpoints(running_app, client):
    app, _ = running_app
    result = client.predict(
        init_image=_png_b64(), prompt="a badge", steps=4, width=64, height=64, seed=2, api_name="/img2img"
    )
    assert result["state"] == "done" and "Denoising strength: 0.75" in result["infotexts"][0]
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    result = client.predict(
        init_image=_png_b64(), mask=base64.b64encode(buffer.getvalue()).decode(), prompt="a dot", steps=4,
        width=64, height=64, seed=3, mask_blur=0, api_name="/inpaint",
    )  # fmt: skip
    out = Image.open(io.BytesIO(base64.b64decode(result["images"][0]))).convert("RGB")
    assert out.getpixel((2, 2)) == (200, 40, 40) and out.getpixel((63, 63)) == (200, 40, 40)
    with pytest.raises(Exception, match="base64"):
        client.predict(init_image="not base64!", prompt="x", api_name="/img2img")


def test_file_route_refuses_traversal_encodings_and_symlinks_out_of_outputs(running_app, tmp_path):
    app, url = running_app
    outputs = app.studio.gallery.outputs_dir
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = outputs / "link.png"
    link.symlink_to(secret)
    try:
        for path in (
            f"/gradio_api/file={link}",
            f"/gradio_api/file={outputs}/..%2f..%2f{secret.name}",
            f"/gradio_api/file={outputs}/%2e%2e/%2e%2e/etc/passwd",
            f"/gradio_api/file={secret}",
        ):
            response = httpx.get(url + path, timeout=10)
            assert response.status_code in (403, 404), path
            assert b"top secret" not in response.content and b"root:" not in response.content
    finally:
        link.unlink()


def test_a_saved_image_is_served_by_id_path(running_app, client):
    app, url = running_app
    result = client.predict(prompt="served", steps=2, width=64, height=64, seed=8, api_name="/txt2img")
    path = app.studio.gallery.file_path(result["ids"][0])
    response = httpx.get(f"{url}/gradio_api/file={path}", timeout=10)
    assert response.status_code == 200 and response.content == path.read_bytes()


def test_uploads_over_the_size_limit_are_refused(running_app):
    _, url = running_app
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 2**20)
    response = httpx.post(
        url + "/gradio_api/upload", files={"files": ("big.png", big, "image/png")}, timeout=30
    )
    assert response.status_code == 413


def test_a_decompression_bomb_is_a_clean_error(running_app, client):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    app, _ = running_app
    before = app.studio.gallery.count()
    with pytest.raises(Exception, match="pixels|too large|large"):
        client.predict(init_image=base64.b64encode(bomb).decode(), prompt="x", api_name="/img2img")
    assert app.studio.gallery.count() == before
