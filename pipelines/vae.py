"""VAEs from ``models/VAE/``: a job may decode (and encode) with one of them instead of its model's own.

A VAE is a single ``.safetensors`` file in the original (LDM) key layout, with or without the
``first_stage_model.`` prefix, or a diffusers ``AutoencoderKL`` folder (``config.json`` +
``diffusion_pytorch_model.safetensors``). Pickle formats are listed as refused and never opened. A single file
takes its model's VAE config (so its latent scaling factor) with the sizes read from its tensor shapes, as
checkpoints do (pipelines/config_from_shapes.py). Loaded VAEs are kept with their model in the manager's per-model state,
at most ``KEPT`` per model, so switching back and forth loads nothing, and the base model is never reloaded.
Names are A1111's: the file name with its extension (``vae-ft-mse-840000-ema-pruned.safetensors``); the stem
and any letter case are accepted too. ``Automatic`` and ``None`` mean the model's own VAE.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffusers import DiffusionPipeline

from core.errors import RequestRefused
from pipelines.addon_files import addon_roots, relative_to, safetensors_header, walk_files
from pipelines.checkpoint_info import VAE_PREFIX
from pipelines.registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, pickle_refusal

log = logging.getLogger(__name__)

VAE_DIRS = frozenset({"vae"})
OWN_VAE = frozenset({"", "automatic", "none"})
FOLDER_WEIGHTS = "diffusion_pytorch_model.safetensors"
STATE_KEY = "vaes"
KEPT = 2


class VaeError(RequestRefused):
    """A VAE cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class VaeEntry:
    name: str
    path: Path  # the file, or the diffusers folder
    refusal: str | None = None

    @property
    def weights(self) -> Path:
        return self.path / FOLDER_WEIGHTS if self.path.is_dir() else self.path


def _check_file(path: Path) -> str | None:
    try:
        shapes, _ = safetensors_header(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable: {exc}"
    if not any(k in shapes for k in ("encoder.conv_in.weight", VAE_PREFIX + "encoder.conv_in.weight")):
        return "not a VAE (no encoder.conv_in weights); put checkpoints into models/, not models/VAE/"
    return None


class VaeLibrary:
    """The VAEs under a models folder; ``scan()`` refreshes the list."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._entries: list[VaeEntry] | None = None
        self._hashes: dict[tuple[Path, int, int], str] = {}

    def scan(self) -> list[VaeEntry]:
        found: list[VaeEntry] = []
        for root in addon_roots(self.models_dir, VAE_DIRS):
            folders = {
                p.parent
                for p in walk_files(root)
                if p.name == "config.json" and (p.parent / FOLDER_WEIGHTS).is_file()
            }
            for path in walk_files(root):
                if any(folder in path.parents or folder == path.parent for folder in folders):
                    continue
                suffix = path.suffix.lower()
                if suffix == SAFETENSORS_SUFFIX:
                    found.append(VaeEntry(path.name, path, _check_file(path)))
                elif suffix in PICKLE_SUFFIXES:
                    found.append(VaeEntry(path.name, path, pickle_refusal(suffix)))
            found += [VaeEntry(folder.name, folder) for folder in sorted(folders)]
        entries, seen = [], set()
        for entry in sorted(found, key=lambda e: (e.refusal is not None, e.name.lower(), str(e.path))):
            if entry.name.lower() in seen:
                entry = VaeEntry(entry.name, entry.path, f"another VAE is also called {entry.name!r}")
            seen.add(entry.name.lower())
            entries.append(entry)
        with self._lock:
            self._entries = entries
        return list(entries)

    def entries(self) -> list[VaeEntry]:
        with self._lock:
            entries = self._entries
        return list(entries) if entries is not None else self.scan()

    def relative_path(self, entry: VaeEntry) -> str:
        return relative_to(entry.path, self.models_dir)

    def get(self, name: str) -> VaeEntry | None:
        """The VAE `name` means (None: the model's own); VaeError naming the choices when there is none."""
        wanted = name.strip()
        if wanted.casefold() in OWN_VAE:
            return None
        entries = self.entries()
        for matches in (
            lambda e: e.name == wanted,
            lambda e: e.name.casefold() == wanted.casefold(),
            lambda e: Path(e.name).stem.casefold() == wanted.casefold(),
        ):
            found = [e for e in entries if matches(e)]
            if found:
                if found[0].refusal:
                    raise VaeError(f"VAE {found[0].name!r} cannot be used: {found[0].refusal}")
                return found[0]
        usable = ", ".join(e.name for e in entries if e.refusal is None) or "none (put one into models/VAE/)"
        raise VaeError(f"Unknown VAE {name!r}. Available: Automatic, None, {usable}")

    def hash(self, entry: VaeEntry) -> str:
        from pipelines.hashing import file_sha256_10

        stat = entry.weights.stat()
        key = (entry.weights, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = file_sha256_10(entry.weights)
            with self._lock:
                self._hashes[key] = known
        return known

    def infotext_pairs(self, entry: VaeEntry | None) -> dict[str, str]:
        """A1111's ``VAE hash`` and ``VAE`` pairs (none for the model's own VAE)."""
        if entry is None:
            return {}
        return {"VAE hash": self.hash(entry), "VAE": entry.name}


def load_vae(entry: VaeEntry, base: DiffusionPipeline) -> Any:
    """`entry` as an AutoencoderKL on `base`'s VAE device and dtype (a single file takes `base`'s VAE config)."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import load_file

    from pipelines.config_from_shapes import vae_overrides

    own = base.vae
    try:
        if entry.path.is_dir():
            vae = AutoencoderKL.from_pretrained(entry.path, local_files_only=True, use_safetensors=True)
        else:
            tensors = load_file(entry.path)
            if not any(k.startswith(VAE_PREFIX) for k in tensors):
                tensors = {VAE_PREFIX + k: v for k, v in tensors.items()}
            shapes = {k: tuple(v.shape) for k, v in tensors.items()}
            config = {**dict(own.config), **vae_overrides(shapes)}
            vae = AutoencoderKL.from_config(config)
            vae.load_state_dict(convert_ldm_vae_checkpoint(tensors, config), strict=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise VaeError(f"VAE {entry.name!r} could not be loaded: {exc}") from exc
    if vae.config.latent_channels != own.config.latent_channels:
        raise VaeError(
            f"VAE {entry.name!r} has {vae.config.latent_channels} latent channels; this model's has "
            f"{own.config.latent_channels}"
        )
    vae = vae.to(device=own.device)
    if vae.dtype != own.dtype:
        vae = vae.to(dtype=own.dtype)
    return vae.eval()


def cached_vae(entry: VaeEntry, base: DiffusionPipeline, state: dict[str, Any]) -> Any:
    """`entry` loaded for `base`, from `state` (the manager's per-model dict) when it was loaded before."""
    kept: OrderedDict[tuple[Path, int, int], Any] = state.setdefault(STATE_KEY, OrderedDict())
    stat = entry.weights.stat()
    key = (entry.path, stat.st_size, stat.st_mtime_ns)
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    vae = load_vae(entry, base)
    kept[key] = vae
    while len(kept) > KEPT:
        kept.popitem(last=False)
    log.info("loaded VAE %s", entry.name)
    return vae


@contextlib.contextmanager
def swapped_vae(pipes: Sequence[DiffusionPipeline], vae: Any | None) -> Iterator[None]:
    """Within the block each of `pipes` uses `vae` (None: leaves them as they are); put back after."""
    if vae is None:
        yield
        return
    distinct = list({id(p): p for p in pipes}.values())
    own = [p.vae for p in distinct]
    try:
        for pipe in distinct:
            pipe.vae = vae
        yield
    finally:
        for pipe, original in zip(distinct, own, strict=True):
            pipe.vae = original
