"""Jobs of several users run as one batch: which jobs may, and how their prompt embeddings are stacked.

A GPU at batch 1 idles most of each step, so waiting jobs that would sample the same way — same model, size,
sampler, schedule, steps, CFG, LoRAs, embeddings, VAE, task — run together (Backend.run_together). Each image
keeps its own seed and its own prompt: the prompts are encoded one by one and stacked along the batch, and only
prompts whose embeddings have the same length share a batch, so that no prompt is padded beyond what it would
be alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch

from core.requests import GenerationRequest, Txt2ImgRequest
from core.resolved import ResolvedGeneration

# what differs between jobs that run together: each image's own prompt and seed
_PER_JOB = {"prompt", "negative_prompt", "styles", "seed", "subseed", "batch_size"}
# samplers whose step noise comes from one source per run (seeded by its first image), not one per image
_NOISE_PER_RUN = {"DPM++ SDE"}


def batch_key(
    request: GenerationRequest, resolved: ResolvedGeneration, embeddings: Sequence[object]
) -> Hashable:
    """What a job must share with others to run in one batch with them; None when it runs alone: another task
    than txt2img, several batches, hires fix, restore faces, variation seeds or a seed resize, a sampler with one
    noise source per run."""
    if type(request) is not Txt2ImgRequest or request.batch_count != 1 or request.enable_hr:
        return None
    if request.restore_faces or request.subseed_strength > 0 or request.seed_resize_from is not None:
        return None
    if request.sampler in _NOISE_PER_RUN:
        return None
    settings = request.model_dump(exclude=_PER_JOB)
    return (
        tuple(sorted((name, repr(value)) for name, value in settings.items())),
        resolved.schedule,
        tuple((tag.name, tag.weight) for tag in resolved.loras),
        tuple(sorted(getattr(entry, "name", str(entry)) for entry in embeddings)),
    )


def same_length_groups(embeds: Sequence[Mapping[str, torch.Tensor]]) -> list[list[int]]:
    """The jobs (indices) in groups whose prompt embeddings have the same length, in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for index, encoded in enumerate(embeds):
        groups.setdefault(int(encoded["prompt_embeds"].shape[1]), []).append(index)
    return list(groups.values())


def stacked_embeds(
    embeds: Sequence[Mapping[str, torch.Tensor]], counts: Sequence[int]
) -> dict[str, torch.Tensor]:
    """One row per image: job i's embeddings repeated counts[i] times, the jobs one after another."""
    if len(embeds) != len(counts) or not embeds:
        raise ValueError("one count per job's embeddings, and at least one job")
    return {
        name: torch.cat(
            [
                encoded[name].repeat_interleave(count, dim=0)
                for encoded, count in zip(embeds, counts, strict=True)
            ]
        )
        for name in embeds[0]
    }
