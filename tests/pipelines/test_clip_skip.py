"""Clip skip (A1111's CLIP_stop_at_last_layers): the hidden states N layers before the last, normalised."""

from __future__ import annotations

import pytest
import torch

from pipelines.prompt_weighting import prompt_embeddings


def test_clip_skip_1_is_the_plain_encoding_and_2_the_penultimate_layer_normalised(tiny_sd1_pipe):
    pipe = tiny_sd1_pipe
    with torch.no_grad():
        plain = prompt_embeddings(pipe, "a red fox")["prompt_embeds"]
        assert torch.equal(prompt_embeddings(pipe, "a red fox", clip_skip=1)["prompt_embeds"], plain)
        skipped = prompt_embeddings(pipe, "a red fox", clip_skip=2)["prompt_embeds"]
        ids = pipe.tokenizer("a red fox", padding="max_length", max_length=77, return_tensors="pt").input_ids
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states
        expected = pipe.text_encoder.final_layer_norm(hidden[-2])
    assert not torch.equal(skipped, plain)
    torch.testing.assert_close(skipped, expected)


def test_clip_skip_beyond_the_encoders_depth_says_so(tiny_sd1_pipe):
    with torch.no_grad(), pytest.raises(ValueError, match="only 2 layers"):
        prompt_embeddings(tiny_sd1_pipe, "a red fox", clip_skip=3)
