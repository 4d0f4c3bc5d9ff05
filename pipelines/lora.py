"""LoRA files and applying them to one job.

Files: ``<models_dir>/Lora/`` (A1111's folder; also ``lora/`` and ComfyUI's ``loras/``), searched to a small
depth; a LoRA is named by its file stem, as in A1111's ``<lora:name:weight>``. ``.safetensors`` only: pickle
formats are listed as refused and never opened.

A prompt's ``<lora:...>`` tags apply for that job only: ``load_lora_weights`` (diffusers + peft; kohya and
diffusers layouts) with one adapter per file, ``set_adapters`` with the tags' weights. Loading is the
expensive part (peft wraps every target layer), so a cached model keeps its last few LoRAs loaded between jobs
(``LoraAdapters``), switched off with ``disable_lora`` when a job does not use them: the base weights are never
written to, and a job without LoRAs gives exactly the pixels it gave before any LoRA was used. A failed load
leaves no half-loaded adapter behind. Without a model's ``LoraAdapters``, ``applied_loras`` unloads after the
block (``unload_lora_weights``), leaving the model exactly as it was.

The infotext records each LoRA as A1111 does: ``Lora hashes: "name: <hash>"`` where the hash is the first 12
hex digits of the SHA-256 of the file's tensor data (after the safetensors header: kohya's "addnet" hash,
the one A1111 writes and sites like Civitai look up).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import RequestRefused
from core.prompt_syntax import LoraTag, validate_lora_name
from pipelines.checkpoint_info import header_refusal
from pipelines.registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, pickle_refusal

if TYPE_CHECKING:  # the LoRA list is read before diffusers is imported (the page starts without it)
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

LORA_DIRS = frozenset({"lora", "loras"})  # matched case-insensitively: A1111's "Lora", ComfyUI's "loras"
MAX_DEPTH = 4
HASH_DIGITS = 12
ADAPTER_PREFIX = "easel_lora_"
DEFAULT_ADAPTERS = 4  # LoRAs kept loaded (disabled) on a cached model between jobs
STATE_KEY = "lora_adapters"  # where a cached model's LoraAdapters live in the manager's per-model state


class LoraError(RequestRefused):
    """A LoRA cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class LoraEntry:
    name: str  # file stem: what <lora:name> refers to
    path: Path
    refusal: str | None = None

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
        for entry in sorted(found, key=lambda e: (e.refusal is not None, e.name.lower(), str(e.path))):
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
        return [e for e in self.entries() if e.refusal is None]

    def get(self, name: str) -> LoraEntry:
        """The usable LoRA called ``name`` (rescanning once if it is not known yet)."""
        validate_lora_name(name)
        entry = _find(self.entries(), name) or _find(self.scan(), name)
        if entry is None:
            usable = ", ".join(e.name for e in self.usable())
            where = "models/Lora"  # as users see it: never the server's absolute path
            raise LoraError(
                f"Unknown LoRA {name!r}. "
                + (
                    f"Available LoRAs: {usable}"
                    if usable
                    else f"No LoRAs found: put .safetensors files in {where}"
                )
            )
        if entry.refusal:
            raise LoraError(f"LoRA {name!r} cannot be used: {entry.refusal}")
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
                entries.append(LoraEntry(path.stem, path, header_refusal(path)))  # a bad header: refused now
            elif suffix in PICKLE_SUFFIXES:
                entries.append(LoraEntry(path.stem, path, pickle_refusal(suffix)))
    return entries


class LoraAdapters:
    """The LoRA adapters kept loaded on one cached model between jobs, at most ``capacity`` of them.

    Loading a LoRA (diffusers + peft wrapping every target layer) costs far more than switching adapters, so a
    LoRA stays on the model after its job, *disabled*: peft's wrapper then calls the untouched base layer and
    nothing else, so a job without LoRAs gives exactly the pixels of a never-touched model, and the base weights
    are never written to (nothing is fused). Adapters are keyed by file path, size and mtime: a file changed on
    disk is loaded again. The least recently used adapter beyond ``capacity`` is deleted; ``clear()`` takes
    every LoRA layer out. One instance per model (the pipeline manager keeps it with the cached model, so
    evicting the model drops its adapters too); ``loads`` counts files actually loaded.
    """

    def __init__(self, pipe: DiffusionPipeline, capacity: int = DEFAULT_ADAPTERS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.pipe = pipe
        self.capacity = capacity
        self.loads = 0
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[str, int, int], str] = OrderedDict()  # (path, size, mtime) → adapter
        self._serial = 0
        self._token = uuid.uuid4().hex[:8]  # adapter names never clash with another instance's on this model
        self._enabled = False

    @classmethod
    def of(cls, state: dict[str, object], pipe: DiffusionPipeline) -> LoraAdapters:
        """The adapters kept in a cached model's ``state`` dict (created there on first use)."""
        adapters = state.get(STATE_KEY)
        if not isinstance(adapters, cls) or adapters.pipe is not pipe:
            adapters = state[STATE_KEY] = cls(pipe)
        return adapters

    def loaded(self) -> list[str]:
        """Paths of the loaded LoRA files, least recently used first."""
        with self._lock:
            return [key[0] for key in self._loaded]

    @contextmanager
    def applied(self, entries: Sequence[LoraEntry], weights: Sequence[float]) -> Iterator[None]:
        """The model with exactly these LoRAs active at these weights while the block runs (none: all off)."""
        with self._lock:
            try:
                if entries:
                    self._activate(entries, weights)
                elif self._enabled:
                    self._disable()
                yield
            finally:
                if self._enabled:
                    self._disable()

    def clear(self) -> None:
        """Take these LoRAs out of the model (with no other adapters on it, it is then exactly as loaded)."""
        with self._lock:
            for key in list(self._loaded):
                self._delete(key)
            self._enabled = False

    def _activate(self, entries: Sequence[LoraEntry], weights: Sequence[float]) -> None:
        self._enabled = True  # from here on, whatever happens, the block's end switches every LoRA off again
        # the same file twice in one prompt adds up: a LoRA's change is linear in its weight
        wanted: dict[tuple[str, int, int], float] = {}
        names: dict[tuple[str, int, int], str] = {}
        for entry, weight in zip(entries, weights, strict=True):
            key = _file_key(entry.path)
            wanted[key] = wanted.get(key, 0.0) + weight
            names[key] = entry.name
        # a file changed on disk: its old adapter goes
        for key in [k for k in self._loaded if k[0] in {w[0] for w in wanted} and k not in wanted]:
            self._delete(key)
        for key in wanted:
            if key in self._loaded:
                self._loaded.move_to_end(key)
            else:
                self._load(key, names[key], keep=set(wanted))
        adapters = [self._loaded[key] for key in wanted]
        self.pipe.set_adapters(adapters, adapter_weights=list(wanted.values()))
        self.pipe.enable_lora()

    def _load(self, key: tuple[str, int, int], name: str, keep: set[tuple[str, int, int]]) -> None:
        for old in [k for k in self._loaded if k not in keep][
            : max(0, len(self._loaded) + 1 - self.capacity)
        ]:
            self._delete(old)
        self._serial += 1
        adapter = f"{ADAPTER_PREFIX}{self._token}_{self._serial}"
        try:
            with _expected_peft_warnings():
                self.pipe.load_lora_weights(key[0], adapter_name=adapter)
        except (RuntimeError, ValueError, KeyError, OSError) as error:
            self._remove(adapter)  # whatever the failed load left (e.g. the UNet half)
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise LoraError(
                f"LoRA {name!r} does not fit this model (made for another model family?): {first_line}"
            ) from error
        except BaseException:
            self._remove(adapter)  # whatever the failed load left (e.g. the UNet half)
            raise
        self.loads += 1
        self._loaded[key] = adapter
        log.info("loaded LoRA %s as %s (%d kept on this model)", name, adapter, len(self._loaded))

    def _delete(self, key: tuple[str, int, int]) -> None:
        adapter = self._loaded.pop(key)
        self._remove(adapter)
        log.info("dropped LoRA adapter %s (%s)", adapter, key[0])

    def _remove(self, adapter: str) -> None:
        """Delete one adapter; when it is the model's last, take the peft wrapper layers out too."""
        present = {a for names in self.pipe.get_list_adapters().values() for a in names}
        if not present - {adapter}:
            self.pipe.unload_lora_weights()  # nothing else on the model: every LoRA layer goes
        elif adapter in present:
            with _expected_peft_warnings():
                self.pipe.delete_adapters(adapter)

    def _disable(self) -> None:
        self.pipe.disable_lora()
        self._enabled = False


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError as error:
        raise LoraError(f"LoRA file {path.name} cannot be read: {error.strerror or error}") from error
    return (str(path), stat.st_size, stat.st_mtime_ns)


@contextmanager
def _expected_peft_warnings() -> Iterator[None]:
    """Silence what peft says of several adapters on one model, which is what kept adapters are for.
    (Jobs run one at a time, so the process-wide filter change does not race another job.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
        warnings.filterwarnings(
            "ignore", message="Adapter .* was active which is now deleted", category=UserWarning
        )
        yield


@contextmanager
def applied_loras(
    pipe: DiffusionPipeline,
    tags: Sequence[LoraTag],
    library: LoraLibrary,
    adapters: LoraAdapters | None = None,
) -> Iterator[None]:
    """Apply the prompt's LoRAs to ``pipe``'s UNet and text encoders while the block runs.

    Every name is resolved before the model is touched. Pipelines derived with ``from_pipe`` share these
    modules, so the LoRAs reach them too. With ``adapters`` (the model's kept adapters) the LoRAs stay loaded,
    disabled, for the next job; without, they are loaded for this block and unloaded after it.
    """
    entries = [library.get(tag.name) for tag in tags]
    weights = [tag.weight for tag in tags]
    if adapters is not None:
        with adapters.applied(entries, weights):
            if tags:
                log.info("applied LoRA %s", ", ".join(f"{t.name}:{t.weight:g}" for t in tags))
            yield
        return
    if not tags:
        yield
        return
    once = LoraAdapters(pipe, capacity=max(1, len(entries)))
    try:
        with once.applied(entries, weights):
            log.info("applied LoRA %s", ", ".join(f"{t.name}:{t.weight:g}" for t in tags))
            yield
    finally:
        once.clear()
