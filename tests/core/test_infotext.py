"""A1111 infotext: exact format, A1111's parsing rules, round trips, and a third-party reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from core.infotext import (
    EASEL_CHUNK_KEY,
    INFOTEXT_KEY,
    ParsedInfotext,
    format_infotext,
    format_value,
    parse_infotext,
    request_fields_from_infotext,
    request_params,
)
from core.requests import Txt2ImgRequest

DESIGN_EXAMPLE = (
    "a red fox logo, flat vector\n"
    "Negative prompt: blurry, text\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: easel-0.1"
)


def _example_request(**changes: object) -> Txt2ImgRequest:
    fields: dict[str, object] = {
        "prompt": "a red fox logo, flat vector",
        "negative_prompt": "blurry, text",
        "sampler": "DPM++ 2M",
        "schedule_type": "Karras",
        "steps": 20,
        "cfg_scale": 7.0,
        "width": 512,
        "height": 512,
        "seed": -1,
        "model": "v1-5-pruned-emaonly",
    }
    fields.update(changes)
    return Txt2ImgRequest(**fields)


def _infotext_for(request: Txt2ImgRequest, seed: int) -> str:
    params = request_params(
        request, seed=seed, model_name=request.model, model_hash="6ce0161689", version="easel-0.1"
    )
    return format_infotext(request.prompt, request.negative_prompt, params)


# --- format ---------------------------------------------------------------------------------------


def test_format_matches_design_example_exactly() -> None:
    assert _infotext_for(_example_request(), seed=1234) == DESIGN_EXAMPLE


def test_request_params_order_and_omissions() -> None:
    request = _example_request(schedule_type="Automatic", cfg_scale=7.5, width=768, height=512)
    params = request_params(request, seed=42, model_name="m", model_hash=None, version="easel-0.1")
    assert list(params) == ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Version"]
    assert params["Size"] == "768x512"
    assert params["Seed"] == 42


def test_request_params_extra_goes_before_version_and_cannot_clash() -> None:
    request = _example_request()
    params = request_params(
        request,
        seed=1,
        model_name="m",
        model_hash="abc",
        version="v",
        extra={"Hires upscale": 2, "Mask blur": 4, "Hires steps": None},
    )
    assert list(params)[-3:] == ["Mask blur", "Hires upscale", "Version"]  # Mask blur keeps A1111's place
    assert "Hires steps" not in params
    with pytest.raises(ValueError, match="clashes"):
        request_params(request, seed=1, model_name="m", model_hash=None, version="v", extra={"Seed": 2})


@pytest.mark.parametrize(
    ("value", "text"),
    [(7.0, "7"), (7.5, "7.5"), (0.75, "0.75"), (20, "20"), ("Euler a", "Euler a"), (True, "True")],
)
def test_value_formatting(value: object, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a, b", '"a, b"'),
        ("lora: 0.5", '"lora: 0.5"'),
        ("two\nlines", '"two\\nlines"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("caf\u00e9, ok", '"caf\u00e9, ok"'),  # non-ASCII kept as is, like A1111 (ensure_ascii=False)
    ],
)
def test_awkward_values_are_json_quoted_and_parse_back(value: str, written: str) -> None:
    text = format_infotext("p", "", {"Steps": 20, "Sampler": "Euler", "Odd": value, "Seed": 1})
    assert text.splitlines()[-1] == f"Steps: 20, Sampler: Euler, Odd: {written}, Seed: 1"
    parsed = parse_infotext(text)
    assert parsed.params == {"Steps": "20", "Sampler": "Euler", "Odd": value, "Seed": "1"}


def test_format_skips_none_and_omits_empty_negative() -> None:
    text = format_infotext("just a prompt", "", {"Steps": 5, "Model hash": None, "Sampler": "LMS", "Seed": 3})
    assert text == "just a prompt\nSteps: 5, Sampler: LMS, Seed: 3"


def test_format_rejects_keys_that_cannot_be_parsed_back() -> None:
    with pytest.raises(ValueError, match="infotext key"):
        format_infotext("p", "", {"Bad: key": 1})


# --- parse: real A1111 strings --------------------------------------------------------------------


def test_parse_multiline_prompt_extra_keys_and_quoted_values() -> None:
    text = (
        "masterpiece, best quality, 1girl,\n"
        "looking at viewer, <lora:add_detail:0.5>\n"
        "Negative prompt: (worst quality:1.4), lowres, EasyNegative\n"
        "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3952343546, Size: 512x768, "
        "Model hash: 7f96a1a9ca, Model: anythingV5_PrtRE, Denoising strength: 0.55, Clip skip: 2, "
        "Hires upscale: 2, Hires steps: 10, Hires upscaler: R-ESRGAN 4x+ Anime6B, "
        'Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "EasyNegative: c74b4e810b03", Version: v1.6.0'
    )
    parsed = parse_infotext(text)
    assert parsed.prompt == "masterpiece, best quality, 1girl,\nlooking at viewer, <lora:add_detail:0.5>"
    assert parsed.negative_prompt == "(worst quality:1.4), lowres, EasyNegative"
    assert list(parsed.params) == [
        "Steps",
        "Sampler",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "Denoising strength",
        "Clip skip",
        "Hires upscale",
        "Hires steps",
        "Hires upscaler",
        "Lora hashes",
        "TI hashes",
        "Version",
    ]
    assert parsed.params["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert parsed.params["TI hashes"] == "EasyNegative: c74b4e810b03"
    assert parsed.params["Size"] == "512x768"
    assert parsed.params["Hires upscaler"] == "R-ESRGAN 4x+ Anime6B"

    fields = request_fields_from_infotext(parsed)
    request = Txt2ImgRequest(**fields)  # legacy "DPM++ 2M Karras" is split by the request model
    assert (request.sampler, request.schedule_type) == ("DPM++ 2M", "Karras")
    assert (request.steps, request.cfg_scale, request.seed) == (28, 7.5, 3952343546)
    assert (request.width, request.height, request.model) == (512, 768, "anythingV5_PrtRE")
    assert "Clip skip" not in fields and "clip_skip" not in fields


def test_parse_without_negative_line() -> None:
    text = (
        "a photo of an astronaut riding a horse on mars\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, "
        "Model: v1-5-pruned-emaonly, Version: v1.10.1"
    )
    parsed = parse_infotext(text)
    assert parsed.prompt == "a photo of an astronaut riding a horse on mars"
    assert parsed.negative_prompt == ""
    fields = request_fields_from_infotext(parsed)
    assert fields["schedule_type"] == "Automatic"  # no "Schedule type" pair: the sampler's own default
    assert Txt2ImgRequest(**fields).sampler == "Euler a"


def test_parse_negative_prompt_spanning_lines() -> None:
    text = (
        "portrait of a cat\n"
        "wearing a hat\n"
        "Negative prompt: blurry,\n"
        "  low quality  \n"
        "watermark\n"
        "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 77, Size: 640x448"
    )
    parsed = parse_infotext(text)
    assert parsed.prompt == "portrait of a cat\nwearing a hat"
    assert parsed.negative_prompt == "blurry,\nlow quality\nwatermark"  # lines stripped, as A1111 does
    assert parsed.params["Size"] == "640x448"


def test_parse_quoted_value_with_escaped_quotes() -> None:
    text = (
        "x\n"
        'Steps: 20, Sampler: Euler, Template: "a \\"quoted\\" word, then: more", CFG scale: 7, Seed: 5, '
        "Size: 64x64"
    )
    parsed = parse_infotext(text)
    assert parsed.params["Template"] == 'a "quoted" word, then: more'
    assert list(parsed.params) == ["Steps", "Sampler", "Template", "CFG scale", "Seed", "Size"]


def test_last_line_with_fewer_than_three_pairs_is_prompt() -> None:
    parsed = parse_infotext("style: watercolor\nmood: calm, light: soft")
    assert parsed == ParsedInfotext("style: watercolor\nmood: calm, light: soft", "", {})


def test_parse_only_parameters_and_empty_text() -> None:
    parsed = parse_infotext("Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 512x512")
    assert parsed.prompt == "" and parsed.negative_prompt == ""
    assert parsed.params["Seed"] == "9"
    assert parse_infotext("") == ParsedInfotext("", "", {})


def test_request_fields_pass_bad_numbers_to_the_request_model() -> None:
    parsed = parse_infotext("p\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512")
    fields = request_fields_from_infotext(parsed)
    assert fields["steps"] == "many"
    with pytest.raises(ValueError, match="steps"):
        Txt2ImgRequest(**fields)
    out_of_range = request_fields_from_infotext(parse_infotext("p\nSteps: 900, Sampler: Euler, Seed: 1"))
    assert out_of_range["steps"] == 900  # parsed, not clamped; the request model rejects it
    with pytest.raises(ValueError, match="steps"):
        Txt2ImgRequest(**out_of_range)


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"negative_prompt": "", "schedule_type": "Automatic", "sampler": "Euler a"},
        {"prompt": 'line one, with: colon\nline two "quoted"\n<lora:x:0.8>', "cfg_scale": 7.5},
        {"prompt": "", "negative_prompt": "only a negative\nover two lines", "width": 1024, "height": 64},
        {"sampler": "UniPC", "schedule_type": "Exponential", "steps": 150, "cfg_scale": 0.0},
        {"model": "my model, v2: final", "cfg_scale": 12.25},
    ],
)
def test_round_trip_to_request(changes: dict[str, object]) -> None:
    original = _example_request(**changes)
    seed = 4294967295
    text = _infotext_for(original, seed)
    parsed = parse_infotext(text)
    rebuilt = Txt2ImgRequest(**request_fields_from_infotext(parsed))
    assert rebuilt == original.model_copy(update={"seed": seed})
    assert format_infotext(parsed.prompt, parsed.negative_prompt, parsed.params) == text


# --- third-party reader ---------------------------------------------------------------------------


def test_sd_parsers_reads_our_png(tmp_path: Path) -> None:
    from sd_parsers import ParserManager
    from sd_parsers.data import Generators

    request = _example_request(prompt="a red fox logo, flat vector\nminimal", cfg_scale=7.5)
    text = _infotext_for(request, seed=1234)
    info = PngInfo()
    info.add_text(INFOTEXT_KEY, text)
    info.add_text(EASEL_CHUNK_KEY, json.dumps({"task": "txt2img", "seed": 1234}))
    path = tmp_path / "fox.png"
    Image.new("RGB", (64, 64), "orange").save(path, pnginfo=info)

    with Image.open(path) as image:
        result = ParserManager().parse(image)

    assert result is not None
    assert result.generator == Generators.AUTOMATIC1111
    assert result.full_prompt == "a red fox logo, flat vector\nminimal"
    assert result.full_negative_prompt == "blurry, text"
    (sampler,) = result.samplers
    assert sampler.name == "DPM++ 2M"
    assert sampler.parameters == {"cfg_scale": "7.5", "seed": "1234", "steps": "20", "scheduler": "Karras"}
    assert sampler.model is not None
    assert (sampler.model.name, sampler.model.hash) == ("v1-5-pruned-emaonly", "6ce0161689")
    assert result.metadata["Size"] == "512x512"
