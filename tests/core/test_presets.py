"""Presets: every shipped one loads and generates; validation; the book's files; Studio, infotext and API."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.aspect import NATIVE_EDGE, parse_ratio, size_for
from core.infotext import parse_infotext, request_fields_from_infotext
from core.pnginfo import read_text_chunks
from core.presets import (
    MAX_PRESET_BYTES,
    Preset,
    PresetBook,
    PresetError,
    apply_preset,
    read_preset,
    slug,
)
from core.requests import Img2ImgRequest, Txt2ImgRequest
from core.styles import Style, apply_styles, read_styles_csv, write_styles_csv
from studio import JobState, StyleProblem, UnknownStyle
from tests.helpers import served_app

SHIPPED = Path(__file__).resolve().parents[2] / "presets"
FAST = {"steps": 2, "width": 64, "height": 64}
ISSUE_PRESETS = [
    "Logo — flat vector (1:1)",
    "Logo — emblem",
    "Logo — mascot",
    "Logo — monogram",
    "Logo — 3D glossy",
    "Product — studio white (1:1)",
    "Product — lifestyle scene (4:5)",
    "Product — flat lay",
    "Product — luxury dark",
    "Product — packaging mockup",
    "Banner (16:9)",
    "Social post (4:5)",
    "Story (9:16)",
    "Photo",
    "Illustration",
    "Cinematic",
]


@pytest.fixture
def book(tmp_path: Path) -> PresetBook:
    return PresetBook(SHIPPED, tmp_path / "user")


def _names(book: PresetBook) -> list[str]:
    return [p.name for p in book.presets()]


# --- the shipped presets ------------------------------------------------------------------------------


def test_every_shipped_preset_loads_and_its_styles_exist(book: PresetBook) -> None:
    assert book.problems() == []
    presets = book.presets()
    assert len(presets) >= 16
    names = [p.name for p in presets]
    for wanted in ISSUE_PRESETS:
        assert any(name.startswith(wanted) for name in names), wanted
    styles = {s.name for s in book.styles()}
    for path in sorted(SHIPPED.glob("*.json")):
        preset = read_preset(path.read_bytes(), path.name)
        assert path.stem == slug(preset.name)  # file names are safe slugs of the names
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", path.stem)
        assert preset.styles and set(preset.styles) <= styles, preset.name
        assert preset.description and preset.aspect and preset.sampler and preset.steps and preset.cfg_scale
        # a style's text is applied: the prompt is built around the user's words
        prompt, negative = book.expand("a red fox", "", preset.styles)
        assert "a red fox" in prompt and len(prompt) > len("a red fox") and negative


def test_shipped_styles_csv_is_a_valid_a1111_file() -> None:
    data = (SHIPPED / "styles.csv").read_bytes()
    styles = read_styles_csv(data)
    assert len(styles) >= 16
    assert write_styles_csv(styles) == data  # written exactly as we write styles.csv


@pytest.mark.parametrize("family", sorted(NATIVE_EDGE))
def test_each_preset_size_has_its_aspect_near_the_family_area(book: PresetBook, family: str) -> None:
    for preset in book.presets():
        fields = apply_preset(preset, Txt2ImgRequest().model_dump(), family=family)
        width, height = fields["width"], fields["height"]
        assert isinstance(width, int) and isinstance(height, int)
        assert width % 8 == 0 and height % 8 == 0
        assert abs(width / height / parse_ratio(preset.aspect or "") - 1) <= 0.03, preset.name
        assert 0.9 <= width * height / NATIVE_EDGE[family] ** 2 <= 1.0
        request = Txt2ImgRequest(**fields)
        assert request.styles == preset.styles and request.sampler == preset.sampler


def test_every_shipped_preset_generates_with_the_tiny_model(make_studio) -> None:
    """Through a real Studio: the preset's styles, sampler, schedule and CFG; its aspect at a small edge
    (128 px instead of the family's 512) and 2 steps, so that all of them run in seconds."""
    studio = make_studio()
    jobs = []
    for preset in studio.presets_book.presets():
        fields = apply_preset(preset, {"prompt": "a red fox", "seed": 7}, family="sd1")
        fields.update(steps=2, width=None, height=None)
        fields["width"], fields["height"] = size_for(preset.aspect or "1:1", edge=128)
        jobs.append((preset, studio.jobs.submit(Txt2ImgRequest(**fields))))
    for preset, job in jobs:
        assert job.wait(120), preset.name
        assert job.state is JobState.DONE, (preset.name, job.error)
        image = job.images[0]
        with Image.open(studio.gallery.file_path(image.id)) as picture:
            assert picture.size == (job.request.width, job.request.height)
        params = parse_infotext(image.infotext).params
        assert params["Styles"] == ", ".join(preset.styles)
        assert params["Sampler"] == preset.sampler
        expected = apply_styles("a red fox", "", studio.presets_book.styles_named(preset.styles))
        assert (job.request.prompt, job.request.negative_prompt) == expected
        assert image.infotext.startswith(expected[0] + "\n")


# --- validation ---------------------------------------------------------------------------------------

GOOD = {"name": "Mine", "styles": ["Cinematic"], "sampler": "Euler a", "steps": 20, "aspect": "4:5"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"sampler": "Euler b"}, "unknown sampler"),
        ({"sampler": "DDIM", "schedule_type": "Karras"}, "does not support"),
        ({"steps": 1000}, "steps"),
        ({"cfg_scale": float("nan")}, "cfg_scale"),
        ({"width": 513, "height": 512}, "multiple of 8"),
        ({"width": 512}, "both width and height"),
        ({"width": 512, "height": 512, "aspect": "16:9"}, "does not have the aspect"),
        ({"aspect": "16/0"}, "aspect"),
        ({"batch_size": 99}, "batch_size"),
        ({"styles": ["a, b"]}, "comma"),
        ({"styles": ["A", "A"]}, "twice"),
        ({"name": "../x"}, "not a path"),
        ({"name": "/etc/passwd"}, "not a path"),
        ({"name": "a\\b"}, "not a path"),
        ({"name": "a\x00b"}, "NUL"),
        ({"name": "C:evil"}, "not a path"),
        ({"name": ""}, "empty"),
        ({"name": "x" * 81}, "longer"),
        ({"prompt": "x" * 8001}, "prompt"),
    ],
)
def test_bad_presets_are_rejected_with_a_reason(change: dict, message: str) -> None:
    data = json.dumps({**GOOD, **change}, allow_nan=True).encode()
    with pytest.raises(PresetError, match=re.escape(message)):
        read_preset(data, "mine.json")


def test_oversized_and_non_json_files_are_rejected() -> None:
    big = json.dumps({**GOOD, "description": "x" * 400, "pad": " " * MAX_PRESET_BYTES}).encode()
    with pytest.raises(PresetError, match="at most"):
        read_preset(big)
    for data, message in ((b"{", "not valid JSON"), (b"[]", "JSON object"), (b"\xff", "UTF-8")):
        with pytest.raises(PresetError, match=message):
            read_preset(data)


def test_apply_preset_without_a_family_keeps_the_current_area() -> None:
    preset = Preset(name="Wide", aspect="16:9", steps=12)
    fields = apply_preset(preset, {"width": 1024, "height": 1024, "steps": 30, "styles": ("X",)}, family=None)
    assert (fields["width"], fields["height"]) == size_for("16:9", "sdxl")
    assert fields["steps"] == 12 and fields["styles"] == ()  # the preset's styles replace the current ones
    fixed = Preset(name="Fixed", width=640, height=384, prompt="{prompt}, logo", negative_prompt="blurry")
    fields = apply_preset(fixed, {"prompt": "a fox", "negative_prompt": "", "sampler": "DDIM"}, family="sdxl")
    assert (fields["width"], fields["height"]) == (640, 384)
    assert (fields["prompt"], fields["negative_prompt"], fields["sampler"]) == (
        "a fox, logo",
        "blurry",
        "DDIM",
    )


# --- the book -----------------------------------------------------------------------------------------


def test_a_broken_file_is_skipped_and_reported_while_the_rest_load(tmp_path: Path) -> None:
    shipped = tmp_path / "presets"
    shipped.mkdir()
    (shipped / "good.json").write_text(json.dumps(GOOD))
    (shipped / "broken.json").write_text('{"name": "Broken", "steps": ')
    (shipped / "unknown-key.json").write_text(json.dumps({**GOOD, "name": "Other", "exec": "rm -rf /"}))
    (shipped / "huge.json").write_bytes(b" " * (MAX_PRESET_BYTES + 1))
    (shipped / "styles.csv").write_bytes(write_styles_csv([Style(name="Cinematic", prompt="film still")]))
    user = tmp_path / "presets" / "user"
    user.mkdir()
    (user / "same-name.json").write_text(json.dumps(GOOD))  # a user file may not take a shipped name
    (user / "styles.csv").write_bytes(b"prompt\nno name column\n")
    book = PresetBook(shipped, user)
    assert _names(book) == ["Mine"]
    problems = {p.file: p.reason for p in book.problems()}
    assert set(problems) == {
        "broken.json",
        "unknown-key.json",
        "huge.json",
        "user/same-name.json",
        "user/styles.csv",
    }
    assert "not valid JSON" in problems["broken.json"]
    assert "exec: unknown key" in problems["unknown-key.json"]
    assert "at most" in problems["huge.json"]
    assert "already used by shipped preset good.json" in problems["user/same-name.json"]
    assert [s.name for s in book.styles()] == ["Cinematic"]  # the broken user styles file is skipped


def test_save_rename_delete_round_trip(book: PresetBook) -> None:
    shipped = _names(book)
    preset = Preset(
        name="Our brand — hero (16:9)", description="Team look", styles=("Cinematic",), aspect="16:9"
    )
    path = book.save(preset)
    assert path.parent == book.user_dir and path.name == "our-brand-hero-16-9.json"
    assert book.get(preset.name) == preset and not book.is_shipped(preset.name)
    assert _names(book) == [*shipped, preset.name]
    with pytest.raises(PresetError, match="exists already"):
        book.save(preset)
    book.save(preset.model_copy(update={"steps": 12}), replace=True)
    assert book.get(preset.name).steps == 12

    renamed = book.rename(preset.name, "Hero banner")
    assert renamed.name == "Hero banner" and renamed.steps == 12
    assert not path.exists() and (book.user_dir / "hero-banner.json").is_file()
    with pytest.raises(PresetError, match="Unknown preset"):
        book.get(preset.name)
    book.rename("Hero banner", "Hero Banner")  # the same file name: rewritten in place
    assert [p.name for p in book.user_dir.iterdir()] == ["hero-banner.json"]
    assert book.get("Hero Banner").steps == 12
    book.delete("Hero Banner")
    assert _names(book) == shipped
    assert [p.name for p in book.user_dir.iterdir()] == []  # no temp files left behind


def test_shipped_presets_cannot_be_changed(book: PresetBook) -> None:
    name = "Logo — flat vector (1:1)"
    assert book.is_shipped(name)
    with pytest.raises(PresetError, match="shipped preset and cannot be deleted"):
        book.delete(name)
    with pytest.raises(PresetError, match="shipped preset and cannot be renamed"):
        book.rename(name, "Mine")
    with pytest.raises(PresetError, match="shipped preset; save yours under another name"):
        book.save(book.get(name))
    book.save(Preset(name="Mine"))
    with pytest.raises(PresetError, match="exists already"):
        book.rename("Mine", name)
    for bad in ("../evil", "a/b", "x\x00"):
        with pytest.raises(PresetError, match="not a path|NUL"):
            book.rename("Mine", bad)
    assert (SHIPPED / "logo-flat-vector-1-1.json").is_file()


def test_import_and_export_styles(book: PresetBook) -> None:
    shipped = book.styles()
    a1111 = '\ufeffname,prompt,negative_prompt\nCinematic,our cinematic {prompt},\nNew one,"x, y",z\n'
    imported = book.import_styles(a1111.encode(), "csv")
    assert [s.name for s in imported] == ["Cinematic", "New one"]
    styles = {s.name: s for s in book.styles()}
    assert styles["Cinematic"].prompt == "our cinematic {prompt}"  # a user style replaces the shipped one
    assert len(styles) == len(shipped) + 1
    fooocus = json.dumps([{"name": "sai-anime", "prompt": "anime artwork {prompt}"}]).encode()
    book.import_styles(fooocus)
    assert {"New one", "sai-anime"} <= {
        s.name for s in read_styles_csv((book.user_dir / "styles.csv").read_bytes())
    }
    exported = read_styles_csv(book.export_styles())
    assert exported == book.styles()
    with pytest.raises(ValueError, match="row 2"):
        book.import_styles(b"name,prompt\n,x\n", "csv")


# --- Studio, infotext, PNG info ------------------------------------------------------------------------


def test_styles_expand_once_and_the_infotext_records_them(make_studio, tmp_path: Path) -> None:
    studio = make_studio()
    request = Txt2ImgRequest(
        prompt="a red fox",
        negative_prompt="text",
        styles=("Flat vector logo", "Base quality"),
        seed=5,
        **FAST,
    )
    job = studio.jobs.submit(request)
    assert job.wait(60) and job.state is JobState.DONE, job.error
    expected = studio.presets_book.expand("a red fox", "text", request.styles)
    assert (job.request.prompt, job.request.negative_prompt) == expected
    assert job.request.styles == request.styles
    image = job.images[0]
    parsed = parse_infotext(image.infotext)
    assert (parsed.prompt, parsed.negative_prompt) == expected
    assert parsed.params["Styles"] == "Flat vector logo, Base quality"

    # pasting the PNG's infotext gives back the typed prompt and the styles, which make the same picture
    infotext, _ = read_text_chunks(studio.gallery.file_path(image.id).read_bytes())
    fields = request_fields_from_infotext(parse_infotext(infotext), studio.presets_book.styles())
    assert (fields["prompt"], fields["negative_prompt"], fields["styles"]) == (
        "a red fox",
        "text",
        ["Flat vector logo", "Base quality"],
    )
    again = studio.jobs.submit(Txt2ImgRequest(**fields))
    assert again.wait(60) and again.state is JobState.DONE
    assert again.request.prompt == job.request.prompt
    assert studio.gallery.file_path(again.images[0].id).read_bytes() != b""
    with (
        Image.open(studio.gallery.file_path(again.images[0].id)) as a,
        Image.open(studio.gallery.file_path(image.id)) as b,
    ):
        assert a.tobytes() == b.tobytes()

    # without the styles (or with a changed one) the expanded prompt comes back, with no styles
    bare = request_fields_from_infotext(parse_infotext(infotext))
    assert (bare["prompt"], bare["styles"]) == (expected[0], [])
    changed = [Style(name="Flat vector logo", prompt="other {prompt}"), Style(name="Base quality")]
    assert request_fields_from_infotext(parse_infotext(infotext), changed)["styles"] == []


def test_pasting_an_a1111_infotext_finds_its_styles_as_a1111_does(book: PresetBook) -> None:
    styles = book.styles()
    prompt, negative = book.expand("a mug", "", ["Studio product white", "Base quality"])
    a1111 = f"{prompt}\nNegative prompt: {negative}\nSteps: 20, Sampler: Euler a, Seed: 1, Version: v1.10.1"
    fields = request_fields_from_infotext(parse_infotext(a1111), styles)
    assert (fields["prompt"], fields["styles"]) == ("a mug", ["Studio product white", "Base quality"])
    assert book.expand("a mug", "", fields["styles"]) == (prompt, negative)
    # our own pictures name their styles; one that names none had none, whatever its text looks like
    ours = a1111.replace("v1.10.1", "easel-0.1.0")
    assert request_fields_from_infotext(parse_infotext(ours), styles)["styles"] == []


def test_unknown_styles_and_overlong_expansions_are_refused(make_studio, tmp_path: Path) -> None:
    studio = make_studio()
    with pytest.raises(UnknownStyle, match="Unknown style 'Nope'. Available: .*Cinematic"):
        studio.jobs.submit(Txt2ImgRequest(prompt="x", styles=("Cinematic", "Nope"), **FAST))
    studio.presets.import_styles(write_styles_csv([Style(name="Long", prompt="y" * 5000)]), user="local")
    with pytest.raises(StyleProblem, match="at most 8000"):
        studio.jobs.submit(Txt2ImgRequest(prompt="x" * 4000, styles=("Long",), **FAST))
    with pytest.raises(ValueError, match="comma"):
        Txt2ImgRequest(styles=("a,b",))
    with pytest.raises(ValueError, match="styles"):
        Txt2ImgRequest(styles=tuple(f"s{i}" for i in range(17)))


def test_studio_preset_pass_throughs(make_studio) -> None:
    studio = make_studio()
    assert (
        "Cinematic (21:9)" in [p.name for p in studio.presets_book.presets()]
        and studio.presets_book.problems() == []
    )
    studio.presets.save_preset(Preset(name="Ours", styles=("Cinematic",)), user="local")
    assert studio.presets_book.get("Ours").styles == ("Cinematic",) and not studio.presets_book.is_shipped(
        "Ours"
    )
    assert studio.presets_book.get("Ours").author == "local"
    studio.presets.rename_preset("Ours", "Ours 2", user="local")
    studio.presets.delete_preset("Ours 2", user="local")
    assert "Ours 2" not in [p.name for p in studio.presets_book.presets()]
    with pytest.raises(PresetError, match="shipped"):
        studio.presets.delete_preset("Cinematic (21:9)", user="local")
    assert read_styles_csv(studio.presets_book.export_styles()) == studio.presets_book.styles()


# --- the HTTP API -------------------------------------------------------------------------------------


def test_api_prompt_styles_and_the_styles_field(tiny_models_dir, tmp_path: Path) -> None:
    with served_app(tiny_models_dir, tmp_path / "outputs", api=True) as (app, url):
        with httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as http:
            listed = http.get("/prompt-styles").json()
            assert listed == [s.model_dump() for s in app.studio.presets_book.styles()]
            assert {"name", "prompt", "negative_prompt"} == set(listed[0])

            body = {"prompt": "a fox", "styles": ["Cinematic"], "seed": 9, **FAST}
            response = http.post("/txt2img", json=body)
            assert response.status_code == 200, response.text
            info = json.loads(response.json()["info"])
            assert info["styles"] == ["Cinematic"] and not info["warnings"]
            assert info["prompt"] == "a fox" and info["all_prompts"][0].startswith(
                "cinematic film still of a fox"
            )
            assert info["infotexts"][0].startswith("cinematic film still of a fox")
            assert "Styles: Cinematic" in info["infotexts"][0]
            picture = Image.open(io.BytesIO(__import__("base64").b64decode(response.json()["images"][0])))
            assert "Styles: Cinematic" in picture.info["parameters"]

            response = http.post("/txt2img", json={**body, "styles": ["Cinematic", "No such style"]})
            assert response.status_code == 422
            assert "No such style" in response.json()["detail"]
            response = http.post("/txt2img", json={**body, "styles": ["a, b"]})
            assert response.status_code == 422 and "comma" in response.json()["detail"]

        # the Gradio API endpoint takes styles too
        from gradio_client import Client

        client = Client(url, verbose=False)
        result = client.predict(prompt="a fox", styles=["Cinematic"], seed=9, **FAST, api_name="/txt2img")
        assert result["infotexts"][0].startswith("cinematic film still of a fox")
        assert "Styles: Cinematic" in result["infotexts"][0]
        with pytest.raises(Exception, match="Unknown style 'Nope'"):
            client.predict(prompt="a fox", styles=["Nope"], **FAST, api_name="/txt2img")


def test_img2img_request_carries_styles() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="PNG")
    request = Img2ImgRequest(init_image=buffer.getvalue(), styles=("Cinematic",), **FAST)
    assert request.styles == ("Cinematic",)
