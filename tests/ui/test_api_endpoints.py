"""The Gradio API endpoints (/txt2img, /img2img, /inpaint) take the variation and hires fields, with the
request models' defaults, over a real server driven by gradio_client."""

from __future__ import annotations

import base64
import io

import pytest
from gradio_client import Client
from PIL import Image

from core.images import encode_png
from core.infotext import parse_infotext
from core.requests import Img2ImgRequest, InpaintRequest, Txt2ImgRequest
from tests.helpers import served_app

NEW_FIELDS = ("styles", "subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h")
HIRES_FIELDS = (
    "enable_hr",
    "hr_scale",
    "hr_upscaler",
    "hr_second_pass_steps",
    "hr_resize_x",
    "hr_resize_y",
    "denoising_strength",
)


@pytest.fixture(scope="module")
def client(tiny_models_dir, tmp_path_factory):
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs")) as (app, url):
        client = Client(url, verbose=False)
        yield app, client
        client.close()


def _png(size=(64, 64), colour=(200, 60, 40)) -> str:
    return base64.b64encode(encode_png(Image.new("RGB", size, colour))).decode()


@pytest.mark.parametrize(
    ("api_name", "request_cls", "fields"),
    [
        ("/txt2img", Txt2ImgRequest, NEW_FIELDS + HIRES_FIELDS),
        ("/img2img", Img2ImgRequest, NEW_FIELDS),
        ("/inpaint", InpaintRequest, NEW_FIELDS),
    ],
)
def test_endpoints_take_the_new_fields_with_the_request_defaults(client, api_name, request_cls, fields):
    _, gradio = client
    parameters = {
        p["parameter_name"]: p
        for p in gradio.view_api(return_format="dict")["named_endpoints"][api_name]["parameters"]
    }
    assert set(fields) <= set(parameters)
    for name, parameter in parameters.items():
        if name in ("init_image", "mask", "prompt"):
            continue
        assert name in request_cls.model_fields, name
        default = request_cls.model_fields[name].default
        if name == "styles":  # None: the request's default, no styles
            assert parameter["parameter_default"] is None and default == ()
        else:
            assert parameter["parameter_has_default"] and parameter["parameter_default"] == default, name


def test_hires_with_a_variation_seed_over_the_gradio_api(client):
    app, gradio = client
    fields = {
        "prompt": "a fox badge", "steps": 2, "width": 64, "height": 64, "seed": 11, "sampler": "DPM++ 2M",
        "subseed": 77, "subseed_strength": 0.4, "enable_hr": True, "hr_scale": 1.5,
        "hr_upscaler": "Latent (bicubic)", "hr_second_pass_steps": 2, "denoising_strength": 0.5,
    }  # fmt: skip
    result = gradio.predict(**fields, api_name="/txt2img")
    assert result["state"] == "done" and result["seeds"] == [11]
    png = Image.open(io.BytesIO(base64.b64decode(result["images"][0])))
    assert png.size == (96, 96)
    params = parse_infotext(result["infotexts"][0]).params
    assert (params["Seed"], params["Size"]) == ("11", "64x64")
    assert (params["Variation seed"], params["Variation seed strength"]) == ("77", "0.4")
    assert (params["Hires upscale"], params["Hires steps"], params["Hires upscaler"]) == (
        "1.5",
        "2",
        "Latent (bicubic)",
    )
    assert params["Denoising strength"] == "0.5"
    # the same call again: the same pixels; strength 0: another picture (the variation shapes both passes)
    again = gradio.predict(**fields, api_name="/txt2img")
    plain = gradio.predict(**{**fields, "subseed_strength": 0.0}, api_name="/txt2img")

    def pixels(answer: dict) -> bytes:
        return Image.open(io.BytesIO(base64.b64decode(answer["images"][0]))).tobytes()

    assert pixels(again) == pixels(result) and pixels(plain) != pixels(result)
    assert "Variation seed" not in plain["infotexts"][0]


def test_a_seed_resize_and_styles_over_the_gradio_api(client):
    _, gradio = client
    result = gradio.predict(
        prompt="a mug", steps=2, width=64, height=64, seed=3, seed_resize_from_w=96, seed_resize_from_h=64,
        styles=[], api_name="/txt2img",
    )  # fmt: skip
    assert parse_infotext(result["infotexts"][0]).params["Seed resize from"] == "96x64"
    with pytest.raises(Exception, match="seed_resize_from_w"):
        gradio.predict(
            prompt="a mug", steps=2, width=64, height=64, seed_resize_from_w=96, api_name="/txt2img"
        )
    with pytest.raises(Exception, match="Unknown style|unknown style"):
        gradio.predict(
            prompt="a mug", steps=2, width=64, height=64, styles=["no such style"], api_name="/txt2img"
        )


def test_img2img_takes_a_variation_seed(client):
    _, gradio = client
    varied = gradio.predict(
        init_image=_png(), prompt="x", steps=2, width=64, height=64, seed=4, subseed=9, subseed_strength=0.5,
        api_name="/img2img",
    )  # fmt: skip
    params = parse_infotext(varied["infotexts"][0]).params
    assert (params["Variation seed"], params["Variation seed strength"]) == ("9", "0.5")
    done = gradio.predict(
        init_image=_png(), prompt="x", steps=2, width=64, height=64, seed=4, subseed=9, api_name="/img2img"
    )
    assert done["state"] == "done" and "Variation seed" not in done["infotexts"][0]
