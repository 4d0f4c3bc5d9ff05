"""Finding add-on files (embeddings, VAEs, …) in a named sub-folder of models/, and reading safetensors headers
without loading any tensor."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_DEPTH = 4
MAX_HEADER_BYTES = 100 * 2**20


def addon_roots(models_dir: Path, names: frozenset[str]) -> list[Path]:
    """Sub-folders of `models_dir` whose name (any letter case) is in `names`."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if p.is_dir() and p.name.lower() in names)


def walk_files(root: Path, max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Files under `root` (hidden ones skipped), sorted, at most `max_depth` folders deep."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < max_depth)
        for filename in sorted(filenames):
            if not filename.startswith("."):
                yield here / filename


def relative_to(path: Path, models_dir: Path) -> str:
    """`path` below the models folder (never an absolute path), or its bare name."""
    try:
        return path.relative_to(models_dir).as_posix()
    except ValueError:
        return path.name


def safetensors_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The tensor shapes and the `__metadata__` of a safetensors file, read from its JSON header only."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("not a safetensors file (too short)")
        size = int.from_bytes(head, "little")
        if not 2 <= size <= MAX_HEADER_BYTES:
            raise ValueError("not a safetensors file (bad header size)")
        header: dict[str, Any] = json.loads(f.read(size))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (header is not an object)")
    metadata = header.pop("__metadata__", None) or {}
    shapes = {key: tuple(int(n) for n in value["shape"]) for key, value in header.items()}
    return shapes, {str(k): str(v) for k, v in dict(metadata).items()}
