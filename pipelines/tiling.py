"""Tiling (A1111's): seamless pictures whose edges wrap around, for patterns, textures and packaging.

Every 2-D convolution of the UNet and of the VAE pads circularly instead of with zeros, so what leaves the
picture on one side comes back on the other. Cached pipelines are shared by every job, so the padding is set
for one job only and put back afterwards, even when the job fails or is cancelled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from diffusers import DiffusionPipeline
from torch import nn

log = logging.getLogger(__name__)

CIRCULAR = "circular"


def _convolutions(pipe: DiffusionPipeline) -> list[nn.Conv2d]:
    modules = [getattr(pipe, name, None) for name in ("unet", "vae")]
    return [
        m for module in modules if module is not None for m in module.modules() if isinstance(m, nn.Conv2d)
    ]


@contextlib.contextmanager
def tiled(pipe: DiffusionPipeline, enabled: bool = True) -> Iterator[None]:
    """Within the block, `pipe`'s UNet and VAE pad circularly (nothing changes when `enabled` is False)."""
    if not enabled:
        yield
        return
    convolutions = _convolutions(pipe)
    before = [conv.padding_mode for conv in convolutions]
    for conv in convolutions:
        conv.padding_mode = CIRCULAR
    log.debug("tiling: %d convolutions pad circularly", len(convolutions))
    try:
        yield
    finally:
        for conv, mode in zip(convolutions, before, strict=True):
            conv.padding_mode = mode


def padding_modes(pipe: DiffusionPipeline) -> set[str]:
    """The padding modes `pipe`'s UNet and VAE convolutions use now (for checks and tests)."""
    return {conv.padding_mode for conv in _convolutions(pipe)}
