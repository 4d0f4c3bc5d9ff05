"""Retouch operations on single images: enhance, upscale, face restoration, background removal, vectorising.

Each operation is a plain function taking a PIL image and keyword arguments and returning a new image (or
bytes/text for exports). Model-backed operations read weights the user put under ``models/`` — nothing is
ever downloaded — and load them without unpickling (see :mod:`pipelines.retouch.weights`).
"""

from __future__ import annotations

from core.errors import EaselError, RequestRefused

__all__ = ["MissingWeights", "RetouchError"]


class RetouchError(RequestRefused):
    """Bad input to a retouch operation (out-of-range strength, unknown model name, unusable file, ...)."""


class MissingWeights(EaselError):
    """An operation needs model weights that are not on disk; the message says what to download and where."""
