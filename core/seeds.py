"""The seed rule: image i of a batch uses seed + i (its variation seed, subseed + i), and the random seed a
request with seed -1 gets leaves room for all of its images below the largest seed."""

from __future__ import annotations

import secrets

from core.requests import MAX_SEED


def image_seed(seed: int, index: int) -> int:
    """The seed (or variation seed) of the image at `index` (0-based) of a request whose seed is `seed`."""
    return seed + index


def image_seeds(seed: int, count: int) -> list[int]:
    """The seeds of a request's `count` images."""
    return [image_seed(seed, index) for index in range(count)]


def random_seed(count: int = 1) -> int:
    """A random seed for `count` images, so that every image's seed (seed + i) is a valid seed."""
    return secrets.randbelow(MAX_SEED + 1 - max(1, count))
