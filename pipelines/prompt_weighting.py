"""Prompt embeddings with A1111's syntax: attention weights, long prompts in 77-token chunks, BREAK.

``core.prompt_syntax.parse_prompt_attention`` splits a prompt into (text, weight) pieces; compel's
``EmbeddingsProvider`` tokenizes the pieces, chunks them (75 tokens + BOS/EOS per chunk, split at a word
boundary, never truncated) and applies the weights: a weight w moves each token's embedding along the line
from the empty prompt's embedding (``empty + w * (z - empty)``); for w < 1 it also blends toward the prompt
with that piece masked out. Each BREAK-separated part starts a chunk of its own.

The result is the embedding keyword arguments diffusers' SD 1.x/2.x/SDXL pipelines accept, positive and
negative padded to the same length with empty-prompt chunks. For a plain prompt (no weights, no BREAK,
at most 75 tokens) they equal what the pipeline's own ``encode_prompt`` makes.

Differences from A1111 worth knowing: SDXL's pooled embedding is that of the first chunk's text, unweighted
(A1111 also takes the first chunk's); a chunk boundary falls at the last word end within 75 tokens (A1111
backs up to a comma within 20 tokens).
"""

from __future__ import annotations

import logging

import torch
from compel import EmbeddingsProvider, ReturnedEmbeddingsType, SplitLongTextMode
from diffusers import DiffusionPipeline

from core.prompt_syntax import is_break, parse_prompt_attention
from pipelines.prompt_cache import cached

log = logging.getLogger(__name__)

Pieces = tuple[list[str], list[float]]


def prompt_embeddings(
    pipe: DiffusionPipeline, prompt: str, negative_prompt: str = "", *, clip_skip: int = 1
) -> dict[str, torch.Tensor]:
    """``prompt_embeds``/``negative_prompt_embeds`` (and SDXL's pooled pair) for one prompt and its negative.

    ``clip_skip`` N > 1 (SD 1.x/2.x; A1111's ``CLIP_stop_at_last_layers``): the hidden states N layers before the
    last, through the final layer norm, as A1111 does. SDXL already uses its encoders' penultimate layers and,
    as in A1111 by default, ignores it.
    Call under ``torch.inference_mode()`` or ``torch.no_grad()``. Inside a job's ``caching_prompts`` block
    (pipelines/prompt_cache.py) the result is kept for the next job with the same prompts and text encoders.
    """
    encoders = (id(getattr(pipe, "text_encoder", None)), id(getattr(pipe, "text_encoder_2", None)))
    return cached(
        (encoders, prompt, negative_prompt, clip_skip),
        lambda: _prompt_embeddings(pipe, prompt, negative_prompt, clip_skip=clip_skip),
    )


def _prompt_embeddings(
    pipe: DiffusionPipeline, prompt: str, negative_prompt: str, *, clip_skip: int
) -> dict[str, torch.Tensor]:
    # 1. one compel provider per text encoder (SDXL has two; its second also gives the pooled embedding)
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    providers = _providers(pipe, sdxl, 1 if sdxl else clip_skip)
    # 2. encode each prompt: chunks per BREAK part, concatenated along the token axis
    positive = _encode(providers, prompt)
    zero_negative = (
        sdxl and not negative_prompt and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
    )
    negative = torch.zeros_like(positive) if zero_negative else _encode(providers, negative_prompt)
    # 3. pad the shorter one with empty-prompt chunks (zeros where the negative is all zeros)
    if positive.shape[1] != negative.shape[1]:
        empty = _encode(providers, "")
        positive = _pad(positive, empty, negative.shape[1])
        negative = _pad(negative, torch.zeros_like(empty) if zero_negative else empty, positive.shape[1])
    embeds = {"prompt_embeds": positive, "negative_prompt_embeds": negative}
    # 4. SDXL: pooled embeddings from the second text encoder
    if sdxl:
        pooled = _pooled(providers[-1], prompt)
        embeds["pooled_prompt_embeds"] = pooled
        embeds["negative_pooled_prompt_embeds"] = (
            torch.zeros_like(pooled) if zero_negative else _pooled(providers[-1], negative_prompt)
        )
    return embeds


class _ClipSkipProvider(EmbeddingsProvider):
    """An SD 1.x/2.x provider whose embeddings are the hidden states `clip_skip` layers before the last, normalised."""

    clip_skip = 1

    def _encode_token_ids_to_embeddings(
        self, token_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        output = self.text_encoder(token_ids, attention_mask, output_hidden_states=True, return_dict=True)
        hidden = output.hidden_states  # the input embeddings, then each layer's output
        if self.clip_skip >= len(hidden):
            raise ValueError(
                f"clip skip {self.clip_skip}: this model's text encoder has only {len(hidden) - 1} layers"
            )
        encoder = self.text_encoder
        norm = (
            encoder.text_model.final_layer_norm
            if hasattr(encoder, "text_model")
            else encoder.final_layer_norm
        )
        return norm(hidden[-self.clip_skip])


def _providers(pipe: DiffusionPipeline, sdxl: bool, clip_skip: int = 1) -> list[EmbeddingsProvider]:
    if sdxl:
        # SDXL conditions on the penultimate hidden states of both encoders, without the final layer norm
        pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
        kind = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
    else:
        pairs = [(pipe.tokenizer, pipe.text_encoder)]
        kind = ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
    providers = [
        (_ClipSkipProvider if clip_skip > 1 else EmbeddingsProvider)(
            tokenizer=tokenizer,
            text_encoder=encoder,
            truncate=False,
            returned_embeddings_type=kind,
            split_long_text_mode=SplitLongTextMode.WORDS,
            device=encoder.device,
        )
        for tokenizer, encoder in pairs
        if tokenizer is not None and encoder is not None
    ]
    for provider in providers:
        if isinstance(provider, _ClipSkipProvider):
            provider.clip_skip = clip_skip
    return providers


def _parts(text: str) -> list[Pieces]:
    """The prompt's pieces, split at BREAK; pieces without tokens dropped later, per tokenizer."""
    parts: list[Pieces] = [([], [])]
    for piece in parse_prompt_attention(text):
        if is_break(piece):
            parts.append(([], []))
        else:
            parts[-1][0].append(piece[0])
            parts[-1][1].append(piece[1])
    # A1111: the text after the last BREAK makes a chunk only when it has something in it
    if len(parts) > 1 and not "".join(parts[-1][0]).strip():
        parts.pop()
    return parts


def _encode(providers: list[EmbeddingsProvider], text: str) -> torch.Tensor:
    """[1, 77 * chunks, width] (SDXL: both encoders' widths side by side)."""
    per_provider = []
    for provider in providers:
        chunks = [_encode_part(provider, texts, weights) for texts, weights in _parts(text)]
        per_provider.append(torch.cat(chunks, dim=1))
    if len(per_provider) > 1 and len({t.shape[1] for t in per_provider}) > 1:
        raise RuntimeError("the text encoders' tokenizers chunked the prompt differently")
    return torch.cat(per_provider, dim=-1)


def _encode_part(provider: EmbeddingsProvider, texts: list[str], weights: list[float]) -> torch.Tensor:
    # compel cannot place a piece that has no tokens (whitespace, an empty group): leave those out
    token_ids = provider.get_token_ids(texts, include_start_and_end_markers=False) if texts else []
    kept = [(t, w) for t, w, ids in zip(texts, weights, token_ids, strict=True) if ids]
    texts, weights = [t for t, _ in kept] or [""], [w for _, w in kept] or [1.0]
    return provider.get_embeddings_for_weighted_prompt_fragments(
        text_batch=[texts], fragment_weights_batch=[weights], device=provider.device
    )


def _pooled(provider: EmbeddingsProvider, text: str) -> torch.Tensor:
    """The pooled (projected EOS) embedding of the first chunk's text, without weights."""
    texts, _ = _parts(text)[0]
    return provider.get_pooled_embeddings(["".join(texts)], device=provider.device)


def _pad(embeds: torch.Tensor, empty: torch.Tensor, length: int) -> torch.Tensor:
    while embeds.shape[1] < length:
        embeds = torch.cat([embeds, empty.to(embeds.dtype)], dim=1)
    return embeds
