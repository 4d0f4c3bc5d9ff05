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

img2img and inpaint (diffusers draws their noise, and the VAE samples of the source, inside the call from each
image's generator): the run's scheduler swaps the drawn noise for the mix (`replace_start_noise`), the run's
pipeline object gets a VAE whose samples are mixed the same way (`VariedVaeSample`), each drawn where the
variation seed's own run draws it — so the ends are exact there too (pipelines/img2img.py, pipelines/inpaint.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import torch
from diffusers.utils.torch_utils import randn_tensor


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


def _randn(
    seed: int, shape: tuple[int, ...], draw: int = 1, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The `draw`-th tensor of `shape` drawn (in `dtype`) from a fresh CPU generator seeded with `seed`, as float32.

    img2img and inpaint pipelines draw their start noise second (after the source's VAE sample, of the same
    shape): `draw=2` is then the noise the seed's own run starts from.
    """
    generator = torch.Generator("cpu").manual_seed(seed)
    for _ in range(draw - 1):
        torch.randn(shape, generator=generator, dtype=dtype)
    return torch.randn(shape, generator=generator, dtype=dtype).float()


def vary_noise(
    noise: torch.Tensor,
    seed: int,
    subseed: int,
    strength: float,
    resize_from: tuple[int, int] | None = None,
    scale: int = 8,
    *,
    draw: int = 1,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A1111's start noise (C, H, W) of one image, given `noise`: the full-size noise drawn from the seed's
    generator (see the module docstring). Unchanged when there is neither a variation nor a seed resize.

    `draw` and `dtype`: how the pipeline drew `noise` from the seed's generator (its `draw`-th tensor of that
    shape, in `dtype`); the variation seed's noise is drawn the same way, so that it is exactly the noise the
    variation seed's own run starts from."""
    channels, height, width = noise.shape
    shape = (channels, height, width)
    noise_shape = (
        shape if resize_from is None else (channels, resize_from[1] // scale, resize_from[0] // scale)
    )
    subnoise = _randn(subseed, noise_shape, draw, dtype) if strength != 0 else None
    mixed = noise if noise_shape == shape else _randn(seed, noise_shape, draw, dtype)
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
    *,
    draw: int = 1,
) -> torch.Tensor:
    """`vary_noise` for a batch: `noise` (N, C, H, W), image k the `draw`-th tensor drawn from seeds[k]'s
    generator (in `noise`'s dtype)."""
    if noise.shape[0] != len(seeds):
        raise ValueError(f"noise for {noise.shape[0]} images, {len(seeds)} seeds")
    varied = [
        vary_noise(n.float().cpu(), seed, subseed, strength, resize_from, scale, draw=draw, dtype=noise.dtype)
        for n, seed, subseed in zip(noise, seeds, subseeds, strict=True)
    ]
    return torch.stack(varied).to(device=noise.device, dtype=noise.dtype)


def replace_start_noise(
    scheduler: object, make_noise: Callable[[torch.Tensor], torch.Tensor], *, every_use: bool = False
) -> None:
    """Make the img2img / inpaint start noise of one run `make_noise(drawn noise)`.

    diffusers' img2img and inpaint pipelines draw the start noise inside the call and hand it to the run's own
    scheduler (`scheduler.add_noise(latents, noise, timestep)`); this wraps `add_noise` on that scheduler object.
    The first call's noise tensor is the drawn start noise: it is replaced by `make_noise(noise)`. Later calls
    pass through unchanged, except, with `every_use`, those that pass that same tensor again: 4-channel inpaint
    models re-noise the source with it at every step, and the area outside the mask must see the same noise as
    the start, or the mask border would meet two different noises.
    """
    add_noise = scheduler.add_noise  # type: ignore[attr-defined]
    swap: list[tuple[torch.Tensor, torch.Tensor]] = []  # (drawn, replacement), set by the first call

    def add_start_noise(original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if not swap:
            if not every_use:
                scheduler.add_noise = add_noise  # type: ignore[attr-defined]  # only the start noise
            replaced = make_noise(noise)
            if replaced.shape != noise.shape:
                raise ValueError(
                    f"start noise of shape {tuple(replaced.shape)}, expected {tuple(noise.shape)}"
                )
            swap.append((noise, replaced.to(device=noise.device, dtype=noise.dtype)))
        drawn, replacement = swap[0]
        return add_noise(original, replacement if noise is drawn else noise, timesteps)

    scheduler.add_noise = add_start_noise  # type: ignore[attr-defined]


def skip_draws_before_first_step(
    scheduler: object, generators: Sequence[torch.Generator], shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    """Advance each generator by one draw of `shape` just before the run's first `scheduler.step`.

    For a run given its start latents although the pipeline would have drawn them between other draws (an
    inpaint at full denoising strength, whose source is encoded first): the step noise of ancestral samplers
    then comes from the same place in the seed's stream as in the run that drew them.
    """
    step = scheduler.step  # type: ignore[attr-defined]

    def first_step(*args: object, **kwargs: object) -> object:
        scheduler.step = step  # type: ignore[attr-defined]
        for generator in generators:
            torch.randn(shape, generator=generator, dtype=dtype)
        return step(*args, **kwargs)

    scheduler.step = first_step  # type: ignore[attr-defined]


class VariedVaeSample:
    """The run's VAE, whose encodings are sampled with the variation mix: A1111 adds no seeded randomness when
    it encodes a source, but diffusers draws the VAE sample from each image's generator — so the variation
    seed's share must be mixed there too, or strength 1 could not give the variation seed's picture.

    Stands in for the VAE of one run's pipeline object only (see `vary_vae_samples`); everything else is the
    real VAE's. diffusers encodes a batch one image at a time, in order, each with its own generator: call k
    is image k mod N of encoding pass k // N; `draws[pass]` is where that pass draws in a seed's own stream, so
    the variation seed's sample is the one its own run draws there.
    """

    def __init__(
        self,
        vae: Any,
        generators: Sequence[torch.Generator],
        subseeds: Sequence[int],
        strength: float,
        draws: Sequence[int],
    ) -> None:
        self._vae, self._generators, self._subseeds = vae, list(generators), list(subseeds)
        self._strength, self._draws, self._calls = strength, list(draws), 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vae, name)

    def encode(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        output = self._vae.encode(x, *args, **kwargs)
        index, encoding = self._calls % len(self._generators), self._calls // len(self._generators)
        self._calls += 1
        if x.shape[0] != 1 or encoding >= len(self._draws):
            raise ValueError(
                "the variation VAE sample expects one image per encode call, in the known passes"
            )
        dist = output.latent_dist
        shape, dtype = tuple(dist.mean.shape), dist.parameters.dtype
        drawn = randn_tensor(
            shape, generator=self._generators[index], device=dist.parameters.device, dtype=dtype
        )
        other = _randn(self._subseeds[index], shape, self._draws[encoding], dtype)
        mixed = slerp(self._strength, drawn[0].float().cpu(), other[0])[None].to(
            device=drawn.device, dtype=dtype
        )
        return SimpleNamespace(latents=dist.mean + dist.std * mixed)  # as `dist.sample` computes it


def vary_vae_samples(
    pipe: Any,
    generators: Sequence[torch.Generator],
    subseeds: Sequence[int],
    strength: float,
    draws: Sequence[int],
) -> None:
    """Give one run's pipeline object a `VariedVaeSample` (the cached pipeline and its VAE are untouched)."""
    object.__setattr__(pipe, "vae", VariedVaeSample(pipe.vae, generators, subseeds, strength, draws))
