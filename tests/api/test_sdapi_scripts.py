"""A1111's scripts over /sdapi/v1 (sd upscale, x/y/z plot, prompts from file or textbox) with the unmodified
`webuiapi` client and plain HTTP; unknown scripts and always-on scripts are refused with 422."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import webuiapi
from PIL import Image

from api import scripts
from api.a1111_translate import BadRequest, Plan
from core.infotext import parse_infotext
from core.requests import Txt2ImgRequest
from tests.helpers import served_app

SMALL = {"steps": 2, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[Any, str, int]]:
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs"), api=True) as (app, url):
        yield app, url, app.settings.port


@pytest.fixture(scope="module")
def http(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{served[1]}/sdapi/v1", timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def webui(served) -> webuiapi.WebUIApi:
    return webuiapi.WebUIApi(host="127.0.0.1", port=served[2], steps=2)


def noise(size=(64, 48), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_scripts_lists_exactly_what_runs(http):
    assert http.get("/scripts").json() == {
        "txt2img": ["prompts from file or textbox", "x/y/z plot"],
        "img2img": ["prompts from file or textbox", "sd upscale", "x/y/z plot"],
    }


@pytest.mark.parametrize("route", ["/txt2img", "/img2img"])
def test_an_unknown_script_is_refused_naming_the_available_ones(http, served, route):
    before = served[0].studio.gallery.count()
    body = {"prompt": "x", "script_name": "Loopback", "script_args": [], **SMALL}
    if route == "/img2img":
        body["init_images"] = [b64(noise())]
    answer = http.post(route, json=body)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "'Loopback' not found" in detail and "x/y/z plot" in detail
    assert ("sd upscale" in detail) is (route == "/img2img")
    assert served[0].studio.gallery.count() == before


def test_always_on_scripts_are_refused_naming_them(http):
    body = {"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": []}}, **SMALL}
    answer = http.post("/txt2img", json=body)
    assert answer.status_code == 422 and "ControlNet" in answer.json()["detail"]
    ok = http.post("/txt2img", json={"prompt": "x", "alwayson_scripts": {}, "seed": 1, **SMALL})
    assert ok.status_code == 200


@pytest.mark.parametrize("upscaler", [1, "lanczos", "None"])  # an index into GET /upscalers, or a name
def test_sd_upscale_with_webuiapi_returns_the_picture_times_the_scale(webui, http, upscaler):
    assert http.get("/upscalers").json()[1]["name"] == "Lanczos"
    result = webui.img2img(
        images=[noise((64, 48))], prompt="detail", denoising_strength=0.5, seed=3, width=64, height=64,
        script_name="SD upscale", script_args=["", 16, upscaler, 2],
    )  # fmt: skip
    assert [image.size for image in result.images] == [(128, 96)]
    assert "sd_upscale ×2" in result.image.info["parameters"]
    assert result.info["all_seeds"] == [3]


def test_sd_upscale_refuses_an_unknown_upscaler_and_a_bad_overlap(http):
    body = {"init_images": [b64(noise())], "script_name": "sd upscale", **SMALL}
    unknown = http.post("/img2img", json={**body, "script_args": ["", 16, "Magic", 2]})
    assert unknown.status_code == 422 and "Magic" in unknown.json()["detail"]
    assert "1: Lanczos" in unknown.json()["detail"]
    overlap = http.post("/img2img", json={**body, "script_args": ["", 48, 1, 2]})
    assert overlap.status_code == 422 and "overlap" in overlap.json()["detail"]


def _xyz_args(x_type, x_values, y_type=0, y_values="", include_lone_images=True, **named) -> list[Any]:
    args = {
        "x_type": x_type, "x_values": x_values, "x_values_dropdown": [], "y_type": y_type, "y_values": y_values,
        "y_values_dropdown": [], "z_type": 0, "z_values": "", "z_values_dropdown": [], "draw_legend": True,
        "include_lone_images": include_lone_images, "include_sub_grids": False, "no_fixed_seeds": False,
        "vary_seeds_x": False, "vary_seeds_y": False, "vary_seeds_z": False, "margin_size": 0, "csv_mode": False,
        **named,
    }  # fmt: skip
    return list(args.values())


def test_xyz_plot_with_webuiapi_returns_the_grid_then_the_cells(webui):
    labels = scripts.axis_labels("txt2img")
    steps, cfg = labels.index("Steps"), labels.index("CFG Scale")
    assert (steps, cfg) == (4, 6)  # A1111's indices
    result = webui.txt2img(
        prompt="a badge", seed=9, width=64, height=64,
        script_name="X/Y/Z plot", script_args=_xyz_args(steps, "1-2", cfg, "5, 9"),
    )  # fmt: skip
    grid, *cells = result.images
    assert len(cells) == 4 and all(cell.size == (64, 64) for cell in cells)
    assert grid.size[0] > 128 and grid.size[1] > 128  # 2 × 2 cells and their labels
    texts = [parse_infotext(t).params for t in result.info["infotexts"][1:]]
    assert [(p["Steps"], p["CFG scale"]) for p in texts] == [
        ("1", "5"),
        ("2", "5"),
        ("1", "9"),
        ("2", "9"),
    ]
    assert {p["Seed"] for p in texts} == {"9"}


def test_xyz_plot_without_lone_images_returns_the_grid_and_takes_dropdown_values(webui):
    labels = scripts.axis_labels("img2img")
    sampler = labels.index("Sampler")
    result = webui.img2img(
        images=[noise((64, 64))], seed=4, width=64, height=64, denoising_strength=0.5,
        script_name="x/y/z plot",
        script_args=_xyz_args(sampler, "", include_lone_images=False, x_values_dropdown=["Euler", "DDIM"]),
    )  # fmt: skip
    assert len(result.images) == 1 and result.images[0].size[0] >= 128 and result.images[0].size[1] > 64


def test_xyz_plot_refuses_axes_it_cannot_run(http):
    eta = scripts.axis_labels("txt2img").index("Eta")
    body = {"prompt": "x", "script_name": "x/y/z plot", "script_args": _xyz_args(eta, "0, 1"), **SMALL}
    answer = http.post("/txt2img", json=body)
    assert answer.status_code == 422 and "'Eta' is not supported" in answer.json()["detail"]


def test_prompts_from_file_runs_one_job_per_line(http):
    text = 'a red fox\n\n--prompt "a blue owl" --negative_prompt "text" --steps 1 --seed 77\na green frog'
    body = {
        "prompt": "logo", "seed": 10, "script_name": "prompts from file or textbox",
        "script_args": [True, False, "start", text], **SMALL,
    }  # fmt: skip
    answer = http.post("/txt2img", json=body)
    assert answer.status_code == 200, answer.text
    info = json.loads(answer.json()["info"])
    parsed = [parse_infotext(t) for t in info["infotexts"]]
    assert len(answer.json()["images"]) == 3
    assert [p.prompt for p in parsed] == ["a red fox logo", "a blue owl logo", "a green frog logo"]
    assert parsed[1].negative_prompt == "text" and parsed[1].params["Steps"] == "1"
    assert [p.params["Seed"] for p in parsed] == ["10", "77", "12"]  # iterated: + 1 image per line


def test_prompt_lines_are_read_as_a1111_reads_them():
    plan = Plan(Txt2ImgRequest(prompt="", seed=5, **SMALL), script_args=[False, False, "end", ""])
    assert scripts.line_options('--prompt a cat "in a hat" --cfg_scale 4 --tiling true --n_iter 2') == {
        "prompt": "a cat in a hat",
        "cfg_scale": 4.0,
        "tiling": True,
        "batch_count": 2,
    }
    with pytest.raises(BadRequest, match="unknown option --eta"):
        scripts.line_options("--eta 1")
    plan.script_args[3] = "--steps 3\nplain words"
    first, second = scripts.prompt_requests(plan, lambda name: name)
    assert (first.steps, first.prompt, first.seed) == (3, "", 5)
    assert (second.prompt, second.steps) == ("plain words", 2)


ODD_SCRIPT_ARGS = [
    ("sd upscale", [None, "x", {}, []]),
    ("sd upscale", ["", -5, 1, 2]),
    ("sd upscale", ["", 16, 1, 1e9]),
    ("sd upscale", ["", 16, 1.5, 2]),
    ("sd upscale", ["", 16, True, 2]),
    ("sd upscale", ["", 16, 99, 2]),
    ("x/y/z plot", [{"a": 1}]),
    ("x/y/z plot", ["x"] * 18),
    ("x/y/z plot", [1.5] * 18),
    ("x/y/z plot", [99, "1-5"]),
    ("x/y/z plot", [4, "1-1000"]),
    ("x/y/z plot", [4, "a, b"]),
    ("x/y/z plot", [0] * 25),
    ("x/y/z plot", [10, "", "not a list"]),
    ("x/y/z plot", [10, "", [1, 2]]),
    ("x/y/z plot", [13, "no-such-model"]),
    ("prompts from file or textbox", [1, 2, 3, 4]),
    ("prompts from file or textbox", [False, False, "middle", "x"]),
    ("prompts from file or textbox", [False, False, "start", "--steps"]),
    ("prompts from file or textbox", [False, False, "start", '--prompt "unclosed']),
    ("prompts from file or textbox", [False, False, "start", "--steps 1e9"]),
    ("prompts from file or textbox", [False, False, "start", "--steps 100000"]),
    ("prompts from file or textbox", [False, False, "start", "x\n" * 100]),
    ("prompts from file or textbox", [False, False, "start", "--sd_model nowhere"]),
]


@pytest.mark.parametrize(("script", "args"), ODD_SCRIPT_ARGS)
def test_odd_script_args_are_refused_with_422_never_a_5xx(http, script, args):
    body = {"prompt": "x", "script_name": script, "script_args": args, "init_images": [b64(noise())], **SMALL}
    answer = http.post("/img2img", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_sd_upscale_applies_the_styles_and_refuses_what_it_cannot_do(http):
    style = http.get("/prompt-styles").json()[0]["name"]
    body = {"prompt": "x", "init_images": [b64(noise())], "script_name": "sd upscale", "seed": 2, **SMALL}
    body["script_args"] = ["", 8, "Lanczos", 1.5]
    styled = http.post("/img2img", json={**body, "styles": [style]})
    assert styled.status_code == 200, styled.text
    unknown = http.post("/img2img", json={**body, "styles": ["No such style"]})
    assert unknown.status_code == 422 and "No such style" in unknown.json()["detail"]
    tiling = http.post("/img2img", json={**body, "tiling": True})
    assert tiling.status_code == 422 and "tiling" in tiling.json()["detail"]
