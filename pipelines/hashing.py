"""A1111's model hash of a weights file."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256_10(path: str | Path) -> str:
    """A1111's "AutoV2" model hash: the first 10 hex digits of the file's SHA-256 (streamed).

    Hashing a multi-GB checkpoint takes seconds: callers cache the result (e.g. by path, size and mtime).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:10]
