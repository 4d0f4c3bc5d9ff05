"""LoRA files and applying them to one job.

Files: ``<models_dir>/Lora/`` (A1111's folder; also ``lora/`` and ComfyUI's ``loras/``), searched to a small
depth; a LoRA is named by its file stem, as in A1111's ``<lora:name:weight>``. ``.safetensors`` only: pickle
formats are listed as refused and never opened.

A prompt's ``<lora:...>`` tags apply for that job only: ``load_lora_weights`` (diffusers + peft; kohya and
diffusers layouts) with one adapter per tag, ``set_adapters`` with the tags' weights, and afterwards
``unload_lora_weights``, which takes the adapter layers out again, so the cached model is left exactly as
it was (also when loading fails or the job is cancelled).

The infotext records each LoRA as A1111 does: ``Lora hashes: "name: <hash>"`` where the hash is the first 12
hex digits of the SHA-256 of the file's tensor data (after the safetensors header: kohya's "addnet" hash,
the one A1111 writes and sites like Civitai look up).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from diffusers import DiffusionPipeline

from core.prompt_syntax import LoraTag, validate_lora_name
from pipelines.registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, pickle_refusal

log = logging.getLogger(__name__)

LORA_DIRS = frozenset({"lora", "loras"})  # matched case-insensitively: A1111's "Lora", ComfyUI's "loras"
MAX_DEPTH = 4
HASH_DIGITS = 12
ADAPTER_PREFIX = "easel_lora_"


class LoraError(ValueError):
    """A LoRA cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class LoraEntry:
    name: str  # file stem: what <lora:name> refers to
    path: Path
    refused: str | None = None

    def relative_path(self, models_dir: Path) -> str:
        try:
            return self.path.relative_to(models_dir).as_posix()
        except ValueError:
            return self.path.name


def addnet_hash(path: Path) -> str:
    """SHA-256 (hex) of a safetensors file's tensor data, skipping its JSON header."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        header = f.read(8)
        if len(header) != 8:
            raise LoraError(f"{path.name} is not a safetensors file (too short)")
        f.seek(8 + int.from_bytes(header, "little"))
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LoraLibrary:
    """The LoRA files under a models folder; ``scan()`` refreshes the list, hashes are computed once per file."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._entries: list[LoraEntry] | None = None
        self._hashes: dict[tuple[Path, int, int], str] = {}

    def scan(self) -> list[LoraEntry]:
        found: list[LoraEntry] = []
        roots = (
            sorted(p for p in self.models_dir.iterdir() if p.is_dir() and p.name.lower() in LORA_DIRS)
            if self.models_dir.is_dir()
            else []
        )
        for root in roots:
            found += _scan_folder(root)
        seen: set[str] = set()
        entries = []
        for entry in sorted(found, key=lambda e: (e.refused is not None, e.name.lower(), str(e.path))):
            if entry.name in seen:
                entry = LoraEntry(
                    entry.name, entry.path, f"another LoRA is also called {entry.name!r}; rename one"
                )
            seen.add(entry.name)
            entries.append(entry)
        with self._lock:
            self._entries = entries
        log.info(
            "found %d LoRA file(s) in %s", len(entries), ", ".join(str(r) for r in roots) or "no Lora folder"
        )
        return list(entries)

    def entries(self) -> list[LoraEntry]:
        with self._lock:
            entries = self._entries
        return list(entries) if entries is not None else self.scan()

    def usable(self) -> list[LoraEntry]:
        return [e for e in self.entries() if e.refused is None]

    def get(self, name: str) -> LoraEntry:
        """The usable LoRA called ``name`` (rescanning once if it is not known yet)."""
        validate_lora_name(name)
        entry = _find(self.entries(), name) or _find(self.scan(), name)
        if entry is None:
            usable = ", ".join(e.name for e in self.usable())
            where = self.models_dir / "Lora"
            raise LoraError(
                f"Unknown LoRA {name!r}. "
                + (
                    f"Available LoRAs: {usable}"
                    if usable
                    else f"No LoRAs found: put .safetensors files in {where}"
                )
            )
        if entry.refused:
            raise LoraError(f"LoRA {name!r} cannot be used: {entry.refused}")
        return entry

    def short_hash(self, entry: LoraEntry) -> str:
        stat = entry.path.stat()
        key = (entry.path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = addnet_hash(entry.path)[:HASH_DIGITS]
            with self._lock:
                self._hashes[key] = known
        return known

    def infotext_pairs(self, tags: Sequence[LoraTag]) -> dict[str, object]:
        """``{"Lora hashes": "name: hash, ..."}`` for the tags of a prompt (empty without tags)."""
        if not tags:
            return {}
        return {"Lora hashes": ", ".join(f"{t.name}: {self.short_hash(self.get(t.name))}" for t in tags)}


def _find(entries: list[LoraEntry], name: str) -> LoraEntry | None:
    return next((e for e in entries if e.name == name), None)


def _scan_folder(root: Path) -> list[LoraEntry]:
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < MAX_DEPTH)
        for filename in sorted(filenames):
            path = here / filename
            suffix = path.suffix.lower()
            if filename.startswith("."):
                continue
            if suffix == SAFETENSORS_SUFFIX:
                entries.append(LoraEntry(path.stem, path))
            elif suffix in PICKLE_SUFFIXES:
                entries.append(LoraEntry(path.stem, path, pickle_refusal(suffix)))
    return entries


@contextmanager
def applied_loras(pipe: DiffusionPipeline, tags: Sequence[LoraTag], library: LoraLibrary) -> Iterator[None]:
    """Apply the prompt's LoRAs to ``pipe``'s UNet and text encoders while the block runs; remove them after.

    Every name is resolved before the model is touched. Pipelines derived with ``from_pipe`` share these
    modules, so the LoRAs reach them too.
    """
    if not tags:
        yield
        return
    entries = [library.get(tag.name) for tag in tags]
    adapters = [f"{ADAPTER_PREFIX}{i}" for i in range(len(tags))]
    try:
        for entry, adapter in zip(entries, adapters, strict=True):
            try:
                pipe.load_lora_weights(str(entry.path), adapter_name=adapter)
            except (RuntimeError, ValueError, KeyError, OSError) as error:
                first_line = (
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                )
                raise LoraError(
                    f"LoRA {entry.name!r} does not fit this model (made for another model family?): {first_line}"
                ) from error
        pipe.set_adapters(adapters, adapter_weights=[tag.weight for tag in tags])
        log.info("applied LoRA %s", ", ".join(f"{t.name}:{t.weight:g}" for t in tags))
        yield
    finally:
        pipe.unload_lora_weights()
