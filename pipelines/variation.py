"""Variation seeds and seed resize: the start noise of an image, as AUTOMATIC1111 makes it.

A1111 (`modules/processing.py::create_random_tensors`, later `modules/rng.py::ImageRNG.first`) draws, for
image i of a job with seed s and variation seed t:

1. the base noise from s, and (when the variation strength is not 0) the variation noise from t;
2. mixes them with `slerp(strength, base, variation)` — strength 0 is the base noise, 1 the variation noise;
3. with "resize seed from W×H", both are drawn at W×H (in latent cells) and the mix is pasted, centred and
   cropped or padded, into noise drawn from s at the picture's size — so a composition survives a size change.

What ancestral samplers do with step noise: samplers such as "Euler a", "DPM2 a" or the SDE ones add fresh
noise at every step. That noise comes from the base seed's generator (after the start noise was drawn from
it), never from the variation seed — as in A1111. So with an ancestral sampler strength 1 is *close* to the
variation seed's picture but not identical; with a non-ancestral sampler (DPM++ 2M, Euler, DDIM, UniPC, ...)
strength 1 gives exactly the picture the variation seed makes as the seed, and strength 0 exactly the seed's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's spherical interpolation of two noise tensors of shape (C, H, W), normalised along dim 1.

    Kept exactly as A1111 has it (including the linear fallback for nearly parallel inputs, whose weights are
    swapped there too), so that a variation seed gives the same start noise as in A1111.
    """
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(
        1
    ) * high


def _randn(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


def vary_noise(
    noise: torch.Tensor,
    seed: int,
    subseed: int,
    strength: float,
    resize_from: tuple[int, int] | None = None,
    scale: int = 8,
) -> torch.Tensor:
    """A1111's start noise (C, H, W) of one image, given `noise`: the full-size noise drawn from the seed's
    generator (see the module docstring). Unchanged when there is neither a variation nor a seed resize."""
    channels, height, width = noise.shape
    shape = (channels, height, width)
    noise_shape = (
        shape if resize_from is None else (channels, resize_from[1] // scale, resize_from[0] // scale)
    )
    subnoise = _randn(subseed, noise_shape) if strength != 0 else None
    mixed = noise if noise_shape == shape else _randn(seed, noise_shape)
    if subnoise is not None:
        mixed = slerp(strength, mixed, subnoise)
    if noise_shape == shape:
        return mixed
    x = noise.clone()
    dx = (shape[2] - noise_shape[2]) // 2
    dy = (shape[1] - noise_shape[1]) // 2
    w = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
    h = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
    tx, ty = max(dx, 0), max(dy, 0)
    dx, dy = max(-dx, 0), max(-dy, 0)
    x[:, ty : ty + h, tx : tx + w] = mixed[:, dy : dy + h, dx : dx + w]
    return x


def image_noise(
    generator: torch.Generator,
    seed: int,
    subseed: int,
    strength: float,
    shape: tuple[int, int, int],
    resize_from: tuple[int, int] | None = None,
    scale: int = 8,
) -> torch.Tensor:
    """Start noise (C, H, W) of one image, A1111's algorithm (see the module docstring).

    `generator` is the image's own generator, seeded with `seed`: the noise at the picture's size is drawn
    from it, so that it then supplies the step noise exactly as without a variation.
    """
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    return vary_noise(noise, seed, subseed, strength, resize_from, scale)


def batch_noise(
    generators: Sequence[torch.Generator],
    seeds: Sequence[int],
    subseeds: Sequence[int],
    strength: float,
    shape: tuple[int, int, int],
    resize_from: tuple[int, int] | None = None,
    scale: int = 8,
) -> torch.Tensor:
    """Start noise (N, C, H, W) of a batch, image k from seeds[k] and subseeds[k] (see `image_noise`)."""
    return torch.stack(
        [
            image_noise(g, seed, subseed, strength, shape, resize_from, scale)
            for g, seed, subseed in zip(generators, seeds, subseeds, strict=True)
        ]
    )


def vary_batch_noise(
    noise: torch.Tensor,
    seeds: Sequence[int],
    subseeds: Sequence[int],
    strength: float,
    resize_from: tuple[int, int] | None = None,
    scale: int = 8,
) -> torch.Tensor:
    """`vary_noise` for a batch: `noise` (N, C, H, W), image k drawn from seeds[k]'s generator."""
    if noise.shape[0] != len(seeds):
        raise ValueError(f"noise for {noise.shape[0]} images, {len(seeds)} seeds")
    varied = [
        vary_noise(n.float().cpu(), seed, subseed, strength, resize_from, scale)
        for n, seed, subseed in zip(noise, seeds, subseeds, strict=True)
    ]
    return torch.stack(varied).to(device=noise.device, dtype=noise.dtype)


def replace_start_noise(scheduler: object, make_noise: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Make the img2img start noise of one run `make_noise(drawn noise)`.

    diffusers' img2img pipelines draw the start noise inside the call and hand it to the run's own scheduler
    (`scheduler.add_noise(latents, noise, timestep)`); this wraps that one call on that scheduler object.
    """
    add_noise = scheduler.add_noise  # type: ignore[attr-defined]

    def add_start_noise(original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        scheduler.add_noise = add_noise  # type: ignore[attr-defined]  # only the start noise
        replaced = make_noise(noise)
        if replaced.shape != noise.shape:
            raise ValueError(f"start noise of shape {tuple(replaced.shape)}, expected {tuple(noise.shape)}")
        return add_noise(original, replaced.to(device=noise.device, dtype=noise.dtype), timesteps)

    scheduler.add_noise = add_start_noise  # type: ignore[attr-defined]
