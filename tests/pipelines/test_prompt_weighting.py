"""Prompt embeddings with A1111 syntax on tiny SD 1.x and SDXL pipelines (real text encoders, real compel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.requests import Txt2ImgRequest
from pipelines.prompt_weighting import prompt_embeddings
from pipelines.sampling import generators_for
from pipelines.schedulers import make_scheduler, with_scheduler
from pipelines.txt2img import initial_latents, run_txt2img

PLAIN = "a red fox logo, flat vector"
CHUNK = 77
# 100 one-token words: more than one 75-token chunk
LONG_WORDS = (
    "fox cat owl red blue green sky sea tree house car dog sun moon star rock leaf bird fish rain".split() * 5
)


@pytest.fixture(scope="module")
def tiny_sdxl_pipe():
    from diffusers import StableDiffusionXLPipeline

    from pipelines.tiny import build_tiny_components

    pipe = StableDiffusionXLPipeline(**build_tiny_components("sdxl", seed=0), add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(params=["sd1", "sdxl"])
def pipe(request, tiny_sd1_pipe, tiny_sdxl_pipe):
    return tiny_sd1_pipe if request.param == "sd1" else tiny_sdxl_pipe


def embeds(pipe, prompt: str, negative: str = "") -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return prompt_embeddings(pipe, prompt, negative)


def own_encoding(pipe, prompt: str, negative: str | None) -> dict[str, torch.Tensor]:
    """What the pipeline's own encode_prompt makes (the reference for plain prompts)."""
    with torch.inference_mode():
        out = pipe.encode_prompt(
            prompt,
            device="cpu",
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negative,
        )
    names = [
        "prompt_embeds",
        "negative_prompt_embeds",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    ]
    return dict(zip(names, out, strict=False))


@pytest.mark.parametrize("negative", ["blurry, text, watermark", ""])
def test_plain_prompt_equals_the_pipelines_own_encoding(pipe, negative):
    ours = embeds(pipe, PLAIN, negative)
    theirs = own_encoding(pipe, PLAIN, negative or None)
    assert set(ours) == set(theirs)
    for name, tensor in theirs.items():
        assert ours[name].shape == tensor.shape, name
        assert torch.allclose(ours[name], tensor, atol=1e-6, rtol=1e-5), name
    # SDXL's force_zeros_for_empty_prompt: an empty negative is all zeros, as the pipeline makes it
    if negative == "" and "pooled_prompt_embeds" in ours:
        assert not ours["negative_prompt_embeds"].any() and not ours["negative_pooled_prompt_embeds"].any()


def test_75_tokens_fit_one_chunk(pipe):
    prompt = " ".join(LONG_WORDS[:75])
    assert len(pipe.tokenizer(prompt).input_ids) == 77
    ours = embeds(pipe, prompt, "blurry")
    theirs = own_encoding(pipe, prompt, "blurry")
    assert ours["prompt_embeds"].shape[1] == CHUNK
    assert torch.allclose(ours["prompt_embeds"], theirs["prompt_embeds"], atol=1e-6, rtol=1e-5)


def test_weight_scales_the_token_away_from_the_empty_prompt(pipe):
    """compel's guarantee for w >= 1: token embedding = empty + w * (unweighted - empty); others unchanged."""
    plain = embeds(pipe, "a red fox")["prompt_embeds"][0]
    weighted = embeds(pipe, "a (red:1.5) fox")["prompt_embeds"][0]
    empty = embeds(pipe, "")["prompt_embeds"][0]
    red = 2  # <bos> a red fox <eos> ...
    expected = empty[red] + 1.5 * (plain[red] - empty[red])
    assert torch.allclose(weighted[red], expected, atol=1e-5)
    # it moved in the direction of (unweighted - empty), by half that vector
    shift = weighted[red] - plain[red]
    assert torch.dot(shift, plain[red] - empty[red]) > 0
    assert torch.allclose(shift, 0.5 * (plain[red] - empty[red]), atol=1e-5)
    others = [i for i in range(CHUNK) if i != red]
    assert torch.equal(weighted[others], plain[others])
    # A1111 spellings of the same weight give the same embedding; 1.1 via parentheses
    assert torch.equal(
        embeds(pipe, "a (red:1.1) fox")["prompt_embeds"], embeds(pipe, "a (red) fox")["prompt_embeds"]
    )


def test_downweighting_changes_the_embedding_and_weight_one_does_not(pipe):
    plain = embeds(pipe, "a red fox")["prompt_embeds"]
    assert torch.equal(embeds(pipe, "a (red:1) fox")["prompt_embeds"], plain)
    lower = embeds(pipe, "a [red] fox")["prompt_embeds"]
    assert lower.shape == plain.shape and torch.isfinite(lower).all()
    assert not torch.allclose(lower, plain)


def test_long_prompt_is_chunked_not_truncated(pipe):
    head, tail = " ".join(LONG_WORDS), " ".join([*LONG_WORDS[:-1], "zebra"])
    a = embeds(pipe, head, "blurry")
    b = embeds(pipe, tail, "blurry")
    assert a["prompt_embeds"].shape[1] == 2 * CHUNK
    # the negative is padded to the same length
    assert a["negative_prompt_embeds"].shape == a["prompt_embeds"].shape
    # the tail word reaches the second chunk and only that chunk
    assert torch.equal(a["prompt_embeds"][:, :CHUNK], b["prompt_embeds"][:, :CHUNK])
    assert not torch.allclose(a["prompt_embeds"][:, CHUNK:], b["prompt_embeds"][:, CHUNK:])
    # a truncating encoder could not tell them apart
    own_a, own_b = own_encoding(pipe, head, None), own_encoding(pipe, tail, None)
    assert torch.equal(own_a["prompt_embeds"], own_b["prompt_embeds"])


def test_long_negative_pads_the_positive(pipe):
    out = embeds(pipe, PLAIN, " ".join(LONG_WORDS))
    assert out["prompt_embeds"].shape[1] == out["negative_prompt_embeds"].shape[1] == 2 * CHUNK
    # the padding is the empty prompt's chunk
    empty = embeds(pipe, "")["prompt_embeds"]
    assert torch.equal(out["prompt_embeds"][:, CHUNK:], empty)


def test_break_starts_a_new_chunk(pipe):
    out = embeds(pipe, "a red fox BREAK flat vector")["prompt_embeds"]
    assert out.shape[1] == 2 * CHUNK
    # each chunk is encoded on its own, exactly like that part alone
    assert torch.allclose(out[:, :CHUNK], own_encoding(pipe, "a red fox", None)["prompt_embeds"], atol=1e-6)
    assert torch.allclose(out[:, CHUNK:], own_encoding(pipe, "flat vector", None)["prompt_embeds"], atol=1e-6)
    # A1111: BREAK at the end adds nothing, BREAK at the start (or twice) adds an empty chunk
    assert embeds(pipe, "a red fox BREAK")["prompt_embeds"].shape[1] == CHUNK
    assert embeds(pipe, "BREAK a red fox")["prompt_embeds"].shape[1] == 2 * CHUNK
    assert embeds(pipe, "a BREAK BREAK b")["prompt_embeds"].shape[1] == 3 * CHUNK


def test_pieces_without_tokens_are_harmless(pipe):
    out = embeds(pipe, "a [ ] ( ) (:0.5) fox")
    assert out["prompt_embeds"].shape[1] == CHUNK and torch.isfinite(out["prompt_embeds"]).all()


def test_bad_weight_is_a_value_error(pipe):
    with pytest.raises(ValueError, match="bad attention weight"):
        embeds(pipe, "a (red:1.2.3) fox")


def _txt2img(pipe, prompt: str, negative: str = "", seeds=(4,)) -> list[np.ndarray]:
    request = Txt2ImgRequest(
        prompt=prompt, negative_prompt=negative, steps=2, width=64, height=64, seed=seeds[0]
    )
    return [np.asarray(i) for i in run_txt2img(pipe, request, list(seeds), lambda *_: True)]


def test_txt2img_with_plain_prompt_matches_the_pipelines_own_prompt_path(pipe):
    ours = _txt2img(pipe, PLAIN, "blurry")[0]
    request = Txt2ImgRequest(prompt=PLAIN, steps=2, width=64, height=64, seed=4)
    generators = generators_for([4])
    scheduler = make_scheduler(request.sampler, request.schedule_type, pipe.scheduler.config, seed=4)
    with torch.inference_mode():
        theirs = with_scheduler(pipe, scheduler)(
            prompt=PLAIN,
            negative_prompt="blurry",
            num_inference_steps=2,
            guidance_scale=request.cfg_scale,
            width=64,
            height=64,
            latents=initial_latents(pipe, generators, 64, 64),
            generator=generators,
        ).images[0]
    assert np.abs(ours.astype(int) - np.asarray(theirs).astype(int)).max() <= 1


def test_txt2img_with_weights_long_prompt_and_break(pipe):
    prompt = "a (red:1.4) fox, [blurry] BREAK " + " ".join(LONG_WORDS)
    first, second = _txt2img(pipe, prompt, "ugly", seeds=(4, 5))
    again = _txt2img(pipe, prompt, "ugly", seeds=(4,))[0]
    assert first.shape == (64, 64, 3)
    assert np.abs(first.astype(int) - again.astype(int)).max() <= 2  # same seed, same image
    assert not np.array_equal(first, second)
    # the weighting reaches the picture
    unweighted = _txt2img(pipe, "a red fox, blurry BREAK " + " ".join(LONG_WORDS), "ugly")[0]
    assert not np.array_equal(first, unweighted)
