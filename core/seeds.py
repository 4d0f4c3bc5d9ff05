"""The seed rule: image i of a batch uses seed + i (its variation seed, subseed + i), and the random seed a
request with seed -1 gets leaves room for all of its images below the largest seed."""

from __future__ import annotations

import secrets

from core.requests import MAX_SEED


def image_seed(seed: int, index: int) -> int:
    """The seed (or variation seed) of the image at `index` (0-based) of a request whose seed is `seed`."""
    return seed + index


def image_seeds(seed: int, count: int, start: int = 0) -> list[int]:
    """The seeds of `count` images of a request whose seed is `seed`, from the image at `start` on."""
    return [image_seed(seed, index) for index in range(start, start + count)]


def matching_subseed(seed: int, subseed: int, seed_of_image: int) -> int:
    """The variation seed that goes with an image's seed: the image at index i has seed + i and subseed + i."""
    return image_seed(subseed, seed_of_image - seed)


def random_seed(count: int = 1) -> int:
    """A random seed for `count` images, so that every image's seed (seed + i) is a valid seed."""
    return secrets.randbelow(MAX_SEED + 1 - max(1, count))
