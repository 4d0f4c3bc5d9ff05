"""Textual-inversion embeddings from models/embeddings/: listed by /embeddings, used in a prompt by file name,
recorded as `TI hashes`; a prompt without the name gives exactly the picture it gave before any was loaded."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from api.sdapi import build_router
from pipelines.embeddings import EmbeddingLibrary, describe_file, file_hash, load_embeddings, rewrite_prompt
from tests.addon_models import addon_models_dir, write_embedding
from tests.helpers import served_app

SMALL = {"steps": 2, "width": 64, "height": 64, "seed": 21}


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[object, httpx.Client]]:
    models = addon_models_dir(tmp_path_factory.mktemp("ti-models"), tiny_models_dir)
    with served_app(models, tmp_path_factory.mktemp("outputs")) as (app, url):
        app.page.app.include_router(build_router(app.studio, None, settings=app.settings))
        with httpx.Client(base_url=f"{url}/sdapi/v1", timeout=120) as client:
            yield app, client


def generate(client: httpx.Client, prompt: str, negative: str = "") -> tuple[np.ndarray, str]:
    response = client.post("/txt2img", json={**SMALL, "prompt": prompt, "negative_prompt": negative})
    assert response.status_code == 200, response.text
    answer = response.json()
    image = Image.open(io.BytesIO(base64.b64decode(answer["images"][0]))).convert("RGB")
    return np.asarray(image, dtype=np.int16), json.loads(answer["info"])["infotexts"][0]


def test_embeddings_route_has_a1111s_shape(served):
    _, client = served
    listed = client.get("/embeddings").json()
    assert set(listed) == {"loaded", "skipped"}
    assert listed["loaded"]["tinyemb"] == {
        "step": 500, "sd_checkpoint": None, "sd_checkpoint_name": "tiny-sd1", "shape": 64, "vectors": 2,
    }  # fmt: skip
    assert "pickled" in listed["skipped"]  # a .pt file: refused, never opened
    assert listed["skipped"]["pickled"]["vectors"] == 0
    assert listed["loaded"]["wide-one"]["shape"] == 768  # SD 1.x width: listed for an SD 1.x model
    assert client.post("/refresh-embeddings").status_code == 200


def test_an_embedding_named_in_the_prompt_changes_the_picture_and_nothing_else(served):
    app, client = served
    plain, plain_info = generate(client, "a badge of a fox")
    used, info = generate(client, "a badge of a tinyemb fox")
    without, _ = generate(client, "a badge of a fox")
    assert np.abs(plain - used).max() > 0
    assert np.array_equal(plain, without)  # loading it changed nothing for prompts without it
    digest = file_hash(app.settings.models_dir / "embeddings" / "tinyemb.safetensors")
    assert f'TI hashes: "tinyemb: {digest}"' in info
    assert "TI hashes" not in plain_info
    assert info.startswith("a badge of a tinyemb fox")  # the infotext keeps the name, as A1111 does
    _, negative_info = generate(client, "a badge", "tinyemb")
    assert "TI hashes" in negative_info  # negative prompts use embeddings too


def test_an_embedding_that_does_not_fit_the_model_is_skipped_as_in_a1111(served):
    _, client = served
    _, info = generate(client, "a wide-one fox")  # 768 wide; the tiny model's text encoder is 64 wide
    assert info.startswith("a wide-one fox") and "TI hashes" not in info  # the name stayed plain text


def test_loaded_vectors_are_the_files_and_multi_vector_names_expand(tmp_path):
    from diffusers import StableDiffusionPipeline

    from pipelines.tiny import build_tiny_components

    vectors = write_embedding(tmp_path / "embeddings" / "my-style.safetensors", vectors=3, seed=4)
    library = EmbeddingLibrary(tmp_path)
    [entry] = library.named_in(["a cat in my-style, detailed"])
    assert library.named_in(["my-styles", "not-my-style"]) == []  # whole names only
    components = build_tiny_components("sd1", seed=0)
    pipe = StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    state: dict = {}
    tokens = load_embeddings(pipe, [entry], state)["my-style"]
    assert len(tokens) == 3 and load_embeddings(pipe, [entry], state)["my-style"] == tokens  # loaded once
    prompt = rewrite_prompt("a cat in my-style, detailed", {"my-style": tokens})
    ids = pipe.tokenizer(prompt).input_ids
    token_ids = [pipe.tokenizer.convert_tokens_to_ids(t) for t in tokens]
    assert all(t in ids for t in token_ids)
    table = pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(table[token_ids], vectors)


def test_layouts_are_read_from_the_header(tmp_path):
    from safetensors.torch import save_file

    save_file(
        {"clip_l": torch.zeros(4, 768), "clip_g": torch.zeros(4, 1280)}, str(tmp_path / "xl.safetensors")
    )
    save_file({"string_to_param.*": torch.zeros(8, 1024)}, str(tmp_path / "sd2.safetensors"))
    save_file({"<cat>": torch.zeros(768)}, str(tmp_path / "diffusers.safetensors"))
    save_file({"a": torch.zeros(2), "b": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    xl = describe_file(tmp_path / "xl.safetensors")
    assert (xl.sdxl, xl.vectors, xl.shape, xl.refusal) == (True, 4, 2048, None)
    sd2 = describe_file(tmp_path / "sd2.safetensors")
    assert (sd2.sdxl, sd2.vectors, sd2.shape, sd2.key) == (False, 8, 1024, "string_to_param.*")
    single = describe_file(tmp_path / "diffusers.safetensors")
    assert (single.vectors, single.shape, single.key) == (1, 768, "<cat>")
    assert "not a textual-inversion embedding" in describe_file(tmp_path / "other.safetensors").refusal


def test_sdxl_embeddings_load_into_both_text_encoders(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    from pipelines.tiny import build_tiny_components

    clip_l, clip_g = torch.randn(2, 64), torch.randn(2, 128)  # the tiny SDXL encoders' widths
    (tmp_path / "embeddings").mkdir()
    save_file({"clip_l": clip_l, "clip_g": clip_g}, str(tmp_path / "embeddings" / "xl-style.safetensors"))
    [entry] = EmbeddingLibrary(tmp_path).named_in(["xl-style"])
    pipe = StableDiffusionXLPipeline(**build_tiny_components("sdxl", seed=0), add_watermarker=False)
    tokens = load_embeddings(pipe, [entry], {})["xl-style"]
    for encoder, tokenizer, vectors in (
        (pipe.text_encoder, pipe.tokenizer, clip_l),
        (pipe.text_encoder_2, pipe.tokenizer_2, clip_g),
    ):
        ids = [tokenizer.convert_tokens_to_ids(t) for t in tokens]
        assert torch.equal(encoder.get_input_embeddings().weight[ids], vectors)
    sd1_file = tmp_path / "embeddings" / "sd1-style.safetensors"
    write_embedding(sd1_file, vectors=1)
    assert load_embeddings(pipe, [describe_file(sd1_file)], {}) == {}  # made for SD 1.x: skipped
