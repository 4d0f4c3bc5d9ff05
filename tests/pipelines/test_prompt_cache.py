"""Prompt embeddings are kept between jobs of a model, keyed by everything that shapes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import CLIPTextModel

from core.backend import GeneratedImage
from core.requests import Txt2ImgRequest
from pipelines.backend import PROMPT_CACHE_KEY
from pipelines.prompt_cache import PromptCache, cached, caching_prompts
from pipelines.tiny import build_tiny_components, save_tiny, save_tiny_lora

SMALL = {"width": 64, "height": 64, "steps": 2, "model": "tiny-sd1", "sampler": "Euler a"}


@pytest.fixture(scope="module")
def studio_models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prompt-cache-models")
    save_tiny(root / "tiny-sd1.safetensors", arch="sd1", seed=0)
    save_tiny_lora(
        root / "Lora" / "ink.safetensors", build_tiny_components("sd1", seed=0), seed=2, text_encoder=True
    )
    return root


@pytest.fixture
def encoder_calls() -> Iterator[list[int]]:
    calls: list[int] = []

    def count(module, args, output):
        if isinstance(module, CLIPTextModel):
            calls.append(1)

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    yield calls
    handle.remove()


def _pictures(studio, **fields) -> list[bytes]:
    request = Txt2ImgRequest(**{"prompt": "a mug", "seed": 1, **SMALL, **fields})
    events = studio.backend.run(request)
    return [e.image.tobytes() for e in events if isinstance(e, GeneratedImage)]


def _cache(studio) -> PromptCache:
    manager = studio.backend.manager
    entry = studio.backend.registry.get("tiny-sd1")
    with manager.lease(entry) as base:
        return manager.model_state(base)[PROMPT_CACHE_KEY]


def test_a_second_job_with_the_same_prompts_encodes_nothing_and_gives_the_same_pixels(studio, encoder_calls):
    first = _pictures(studio, prompt="a red mug, (studio light:1.2)", seed=5)
    assert encoder_calls  # the first job encoded its prompts
    encoder_calls.clear()
    again = _pictures(studio, prompt="a red mug, (studio light:1.2)", seed=5)
    other_seed = _pictures(studio, prompt="a red mug, (studio light:1.2)", seed=6, cfg_scale=5)
    assert encoder_calls == []  # new seed, new CFG: the same embeddings
    assert again == first and other_seed != first
    _cache(studio)._entries.clear()  # encoded afresh, the picture is the same
    assert _pictures(studio, prompt="a red mug, (studio light:1.2)", seed=5) == first
    assert encoder_calls


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a blue mug"},
        {"negative_prompt": "blurry"},
        {"clip_skip": 2},
        {"prompt": "a mug <lora:ink:0.8>"},
        {"prompt": "a mug <lora:ink:0.3>"},
    ],
)
def test_whatever_shapes_the_embeddings_encodes_again(studio, encoder_calls, change):
    _pictures(studio)
    _pictures(studio, **change)  # a first job with this change encodes ...
    encoder_calls.clear()
    _pictures(studio, **change)
    assert encoder_calls == []  # ... and the next one with it does not
    before = len(_cache(studio))
    _pictures(studio, **{**change, "prompt": f"{change.get('prompt', 'a mug')}, again"})
    assert encoder_calls and len(_cache(studio)) >= min(before + 1, _cache(studio).size)


def test_a_lora_on_the_text_encoder_gives_other_embeddings_than_without(studio):
    with_lora = _pictures(studio, prompt="a mug <lora:ink:1>", seed=9)
    without = _pictures(studio, prompt="a mug", seed=9)
    assert with_lora != without  # not served the cached embeddings of the other


def test_the_cache_keeps_the_most_recently_used_and_nothing_outside_a_job():
    cache = PromptCache(size=2)
    made: list[str] = []

    def make(value: str):
        return lambda: made.append(value) or value

    assert cached("k", make("outside")) == "outside" and cached("k", make("outside")) == "outside"
    assert made == ["outside", "outside"]  # no job opened a cache: nothing kept
    with caching_prompts(cache, scope="job"):
        for key in ("a", "b", "a", "c", "a", "b"):
            cached(key, make(key))
    assert made[2:] == ["a", "b", "c", "b"]  # b was the least recently used when c came
    assert (cache.hits, cache.misses, len(cache)) == (2, 4, 2)
    with caching_prompts(cache, scope="another job"):
        cached("a", make("a"))
    assert made[-1] == "a"  # another scope: its own entries
    with pytest.raises(ValueError):
        PromptCache(size=0)
