"""A backend that serves the page before torch is imported.

Importing torch, diffusers and transformers and choosing the device take most of a start, and telling what a
checkpoint is (SD 1.x, 2.x, XL, inpainting) needs diffusers. `DeferredBackend` answers what the page asks for
while it is built (models, default model, LoRAs, retouch tools, status) without them, and builds the real
backend on a background thread (`start()`, called once the page is up), which then scans the models. Jobs,
and anything else asked of it, wait until the real backend is there; from then on every question goes to it.

The model list comes from the last scan, kept in a small JSON file beside the gallery, as long as the models
folder holds the same files (names, sizes, modification times) and the same hub ids and demo flag are asked
for; otherwise (the first start, a model added) the folder is scanned before the page is built, as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from core.backend import Backend, BackendEvent, BackendStatus, LoraInfo, ModelInfo, RetouchTools
from core.errors import JobFailed
from core.version import VERSION
from pipelines.lora import LoraLibrary
from pipelines.registry import ModelRegistry
from pipelines.retouch.tools import retouch_tools_on_disk

log = logging.getLogger(__name__)

STARTING = "starting…"


class DeferredBackend:
    """The `Backend` made by `build` on a thread of its own; the page's lists are answered before it is done."""

    def __init__(
        self,
        registry: ModelRegistry,
        build: Callable[[], Backend],
        *,
        preferred: str = "",
        model_list_file: Path | None = None,
    ) -> None:
        self.registry = registry
        self.preferred = preferred
        self._build = build
        self._model_list_file = model_list_file
        self._early_models: list[ModelInfo] | None = None  # the list the page was built with
        self._loras = LoraLibrary(registry.models_dir)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._backend: Backend | None = None
        self._error: BaseException | None = None

    # -- the real backend ------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the real backend in the background (once)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._make, name="easel-backend-start", daemon=True)
            self._thread.start()
        log.info("loading PyTorch and the model backend in the background")

    def _make(self) -> None:
        try:
            backend = self._build()
            self._remember_models(backend.models())  # the scan, off the page's way
            self._backend = backend
        except BaseException as exc:  # noqa: BLE001 - kept and told to every job that needs the backend
            log.exception("the model backend could not start")
            self._error = exc
        finally:
            self._done.set()

    def ready(self) -> Backend | None:
        """The real backend when it is built, else None."""
        return self._backend if self._done.is_set() else None

    def wait(self) -> Backend:
        """The real backend, building it first if `start()` was not called yet; JobFailed if it cannot start."""
        self.start()
        self._done.wait()
        if self._backend is None:
            raise JobFailed(f"The model backend could not start: {self._error}") from self._error
        return self._backend

    def __getattr__(self, name: str) -> Any:
        """Anything else the local backend has (its pipeline manager, running jobs together, …) comes from the
        real backend, once it is built; none of it when it could not start."""
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            backend = self.wait()
        except JobFailed as exc:
            raise AttributeError(f"{name}: {exc}") from None
        return getattr(backend, name)

    def close(self) -> None:
        """Close the real backend (after its build, when one is under way); nothing to do when none was started."""
        with self._lock:
            started = self._thread is not None
        if not started:
            return
        self._done.wait()
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    # -- the Backend protocol ----------------------------------------------------------------------------
    def run(self, request: Any, *args: Any, **kwargs: Any) -> Iterator[BackendEvent]:
        yield from self.wait().run(request, *args, **kwargs)

    def models(self, refresh: bool = False) -> list[ModelInfo]:
        backend = self.ready()
        if backend is not None:
            return self._remember_models(backend.models(refresh=True)) if refresh else backend.models()
        if refresh or self._early_models is None:
            remembered = None if refresh else self._remembered_models()
            self._early_models = remembered or self._remember_models(self._scan(refresh))
        return list(self._early_models)

    def _scan(self, refresh: bool) -> list[ModelInfo]:
        """The registry's models as LocalBackend lists them (a scan imports diffusers)."""
        return self.registry.infos(refresh)

    def _remembered_models(self) -> list[ModelInfo] | None:
        """The last scan's list, when the file holds one made from the files there are now."""
        if self._model_list_file is None:
            return None
        try:
            kept = json.loads(self._model_list_file.read_text(encoding="utf-8"))
            if kept.get("fingerprint") != models_fingerprint(self.registry):
                return None
            return [ModelInfo(**item) for item in kept["models"]]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    def _remember_models(self, models: list[ModelInfo]) -> list[ModelInfo]:
        if self._model_list_file is not None:
            kept = {
                "fingerprint": models_fingerprint(self.registry),
                "models": [dataclasses.asdict(m) for m in models],
            }
            temporary = self._model_list_file.with_name(self._model_list_file.name + ".tmp")
            try:
                temporary.write_text(json.dumps(kept), encoding="utf-8")
                temporary.replace(self._model_list_file)
            except OSError as exc:
                log.warning("could not keep the model list in %s: %s", self._model_list_file, exc)
        return models

    def default_model(self) -> str | None:
        backend = self.ready()
        if backend is not None:
            return backend.default_model()
        usable = [m.name for m in self.models() if m.refusal is None and not m.inpaint]
        return self.preferred if self.preferred in usable else usable[0] if usable else None

    def loras(self, refresh: bool = False) -> list[LoraInfo]:
        backend = self.ready()
        if backend is not None:
            return backend.loras(refresh=refresh)
        entries = self._loras.scan() if refresh else self._loras.entries()
        return [LoraInfo(e.name, e.relative_path(self.registry.models_dir), e.refusal) for e in entries]

    def check_loras(self, names: Sequence[str]) -> None:
        self.wait().check_loras(names)

    def embeddings(self, refresh: bool = False) -> list[Any]:
        return self.wait().embeddings(refresh=refresh)

    def vaes(self, refresh: bool = False) -> list[Any]:
        return self.wait().vaes(refresh=refresh)

    def status(self) -> BackendStatus:
        backend = self.ready()
        if backend is not None:
            return backend.status()
        return BackendStatus(device=STARTING if self._error is None else "unavailable (see the log)")

    def retouch_tools(self, refresh: bool = False) -> RetouchTools:
        backend = self.ready()
        if backend is not None:
            return backend.retouch_tools(refresh=refresh)
        return retouch_tools_on_disk(self.registry.models_dir)


def models_fingerprint(registry: ModelRegistry) -> str:
    """A digest of what a model scan depends on: every file below the models folder (path, size, time of the
    last change; hidden ones aside), the hub ids, the demo flag and Easel's version."""
    root = registry.models_dir
    files: list[tuple[str, int, int]] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            try:
                stat = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            files.append((os.path.relpath(os.path.join(folder, name), root), stat.st_size, stat.st_mtime_ns))
    what = {
        "easel": VERSION,
        "root": str(root.resolve()),
        "files": files,
        "hub": registry.hub_ids,
        "demo": registry.demo,
    }
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()
