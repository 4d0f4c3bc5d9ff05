"""The pipeline manager: a cache of loaded models with explicit budgets and LRU eviction.

One loaded model is one set of components. Task pipelines (txt2img today; img2img and inpaint
later) are derived from it with `from_pipe`, so they share the weights and never reload them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import DiffusionPipeline

from pipelines.device import DeviceChoice
from pipelines.registry import ModelEntry

log = logging.getLogger(__name__)

Loader = Callable[[ModelEntry, DeviceChoice], DiffusionPipeline]


@dataclass
class _Cached:
    entry: ModelEntry
    pipe: DiffusionPipeline
    derived: dict[str, DiffusionPipeline] = field(default_factory=dict)
    pins: int = 0
    # per-model state (its kept LoRA adapters): dropped with the model
    state: dict[str, Any] = field(default_factory=dict)


class PipelineManager:
    """Keeps up to `max_gpu_models` models on the compute device and `max_ram_models` more in CPU RAM.

    Least recently used models move from the device to RAM, then out of the cache. A model that a
    running job holds (see `lease`) is never evicted under it.
    """

    def __init__(
        self,
        load: Loader,
        device: DeviceChoice,
        *,
        max_gpu_models: int = 1,
        max_ram_models: int = 1,
        xformers: bool = False,
    ) -> None:
        if max_gpu_models < 1 or max_ram_models < 0:
            raise ValueError("max_gpu_models must be ≥ 1 and max_ram_models ≥ 0")
        self._load = load
        self.device = device
        self.max_gpu_models = max_gpu_models
        self.max_ram_models = max_ram_models
        self.xformers = xformers
        self._lock = threading.RLock()
        self._on_device: OrderedDict[str, _Cached] = OrderedDict()
        self._in_ram: OrderedDict[str, _Cached] = OrderedDict()
        self.load_count = 0

    # -- queries ---------------------------------------------------------------------------------
    def resident(self) -> tuple[list[str], list[str]]:
        """Names of models on the device and in RAM, least recently used first."""
        with self._lock:
            return list(self._on_device), list(self._in_ram)

    # -- use -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, entry: ModelEntry) -> Iterator[DiffusionPipeline]:
        """The model's base pipeline, on the device, pinned against eviction while the block runs."""
        with self._lock:
            cached = self._acquire(entry)
        try:
            yield cached.pipe
        finally:
            with self._lock:
                cached.pins -= 1
                self._enforce_budgets()

    def derive(self, base: DiffusionPipeline, name: str, pipeline_class: Any) -> DiffusionPipeline:
        """A task pipeline sharing `base`'s components (cached per model, built with `from_pipe`)."""
        with self._lock:
            for cached in self._on_device.values():
                if cached.pipe is base:
                    if name not in cached.derived:
                        cached.derived[name] = pipeline_class.from_pipe(base, dtype=base.dtype)
                    return cached.derived[name]
        raise KeyError("the base pipeline is not managed here")

    def model_state(self, base: DiffusionPipeline) -> dict[str, Any]:
        """A dict that lives as long as `base` stays cached: per-model state such as its loaded LoRA adapters."""
        with self._lock:
            for store in (self._on_device, self._in_ram):
                for cached in store.values():
                    if cached.pipe is base:
                        return cached.state
        raise KeyError("the base pipeline is not managed here")

    def _acquire(self, entry: ModelEntry) -> _Cached:
        """The model on the device, pinned (the caller unpins it), with the budgets enforced around it."""
        if entry.name in self._on_device:
            self._on_device.move_to_end(entry.name)
            cached = self._on_device[entry.name]
            cached.pins += 1
            return cached
        if entry.name in self._in_ram:
            cached = self._in_ram.pop(entry.name)
            log.info("moving %s back to %s", entry.name, self.device.device)
            cached.pipe.to(self.device.device)
        else:
            log.info("loading %s", entry.name)
            pipe = self._load(entry, self.device)
            self.load_count += 1
            self._configure(pipe)
            cached = _Cached(entry=entry, pipe=pipe)
        cached.pins += 1
        self._on_device[entry.name] = cached
        self._enforce_budgets()
        return cached

    def _configure(self, pipe: DiffusionPipeline) -> None:
        pipe.set_progress_bar_config(disable=True)
        if self.xformers:
            if not self.device.device.startswith("cuda"):
                log.warning(
                    "xformers has no kernels for %s; using PyTorch SDPA attention", self.device.device
                )
            else:
                try:
                    pipe.enable_xformers_memory_efficient_attention()
                except (ImportError, ModuleNotFoundError, ValueError) as exc:
                    log.warning("xformers unavailable (%s); using PyTorch SDPA attention", exc)

    def _enforce_budgets(self) -> None:
        moved = dropped = False
        for name in list(self._on_device):
            if len(self._on_device) <= self.max_gpu_models:
                break
            cached = self._on_device[name]
            if cached.pins:
                continue
            del self._on_device[name]
            if self.device.device != "cpu":
                _park_in_ram(cached.pipe)
            self._in_ram[name] = cached
            moved = True
            log.info("moved %s to CPU RAM", name)
        while len(self._in_ram) > self.max_ram_models:
            name, _ = self._in_ram.popitem(last=False)
            dropped = True
            log.info("dropped %s from the cache", name)
        if dropped:
            self._free_memory()
        elif moved and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def free_memory(self, keep: str | None = None) -> None:
        """Drop every unpinned model except `keep` (used after an out-of-memory error)."""
        with self._lock:
            for store in (self._in_ram, self._on_device):
                for name in list(store):
                    if name != keep and not store[name].pins:
                        del store[name]
            self._free_memory()

    def _free_memory(self) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _park_in_ram(pipe: DiffusionPipeline) -> None:
    """Move a pipeline's weights to CPU RAM to wait there, not to run there. Module by module: diffusers'
    ``pipe.to("cpu")`` warns on every fp16 pipeline that it cannot run on the CPU, which is beside the point."""
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.to("cpu")
