"""Load retouch model files (upscalers, face restorers) safely and keep the last ones loaded.

- ``.safetensors`` is read with :mod:`safetensors` (tensors only, no code).
- ``.pth`` / ``.pt`` are read only with ``torch.load(..., weights_only=True)``: torch's restricted unpickler,
  which accepts tensors and plain containers and refuses anything else — a file carrying a pickled callable fails
  to load and its payload never runs.

The architecture is then detected from the state dict by spandrel (``ModelLoader().load_from_state_dict``), which
never touches the file itself. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.retouch import MissingWeights, RetouchError
from pipelines.retouch.spandrel_compat import import_spandrel

if TYPE_CHECKING:
    import torch
    from spandrel import ImageModelDescriptor

logger = logging.getLogger(__name__)

__all__ = ["MODEL_SUFFIXES", "ModelCache", "find_model_files", "load_image_model", "load_state_dict"]

# Suffixes of model files the retouch operations accept, in order of preference for equal names.
MODEL_SUFFIXES = (".safetensors", ".pth", ".pt")


def find_model_files(models_dir: str | Path, folders: tuple[str, ...]) -> dict[str, Path]:
    """Model files in ``<models_dir>/<folder>/`` for each folder in order, by name (stem); first one wins."""
    found: dict[str, Path] = {}
    root = Path(models_dir)
    for folder in folders:
        directory = root / folder
        if not directory.is_dir():
            continue
        files = [p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES]
        files.sort(key=lambda p: (p.stem.lower(), MODEL_SUFFIXES.index(p.suffix.lower())))
        for path in files:
            found.setdefault(path.stem, path)
    return found


def pick_model_file(found: dict[str, Path], model: str, *, default: str, none: str, unknown: str) -> Path:
    """The file of `model` among `found` (name → path). With no name: `default` when it is there, else the
    first by name. MissingWeights saying `none` when nothing is installed, or `unknown` (with the names that
    are) for a name that is not."""
    if not model:
        if not found:
            raise MissingWeights(none)
        return found.get(default) or found[sorted(found, key=str.lower)[0]]
    path = found.get(model)
    if path is None:
        raise MissingWeights(unknown + (f" (found: {', '.join(sorted(found))})" if found else ""))
    return path


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth``/``.pt`` through torch's weights-only unpickler."""
    import torch

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise RetouchError(f"cannot read {path.name}: not a valid .safetensors file ({exc})") from exc
    if suffix in (".pth", ".pt"):
        try:
            data: Any = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
            raise RetouchError(
                f"refused to load {path.name}: it is not a plain weights file (a weights-only load failed: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). Convert it to .safetensors "
                "with a trusted tool, or use a .safetensors release of the model."
            ) from exc
        if not isinstance(data, dict):
            raise RetouchError(f"cannot use {path.name}: it holds a {type(data).__name__}, not a state dict")
        return data
    raise RetouchError(f"cannot load {path.name}: model files must be {', '.join(MODEL_SUFFIXES)}")


def load_image_model(path: str | Path, device: str = "cpu") -> ImageModelDescriptor[Any]:
    """Load an image-to-image model file (upscaler, face restorer) with spandrel, in eval mode on ``device``."""
    spandrel = import_spandrel()
    state_dict = spandrel.canonicalize_state_dict(load_state_dict(path))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError as exc:
        raise RetouchError(
            f"{Path(path).name}: unknown model architecture (spandrel {spandrel.__version__} does not recognise it)"
        ) from exc
    except (KeyError, RuntimeError, ValueError) as exc:
        raise RetouchError(f"{Path(path).name}: cannot build the model from its weights ({exc})") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise RetouchError(
            f"{Path(path).name}: a {descriptor.architecture.name} model is not an image-to-image model"
        )
    descriptor.to(device).eval()
    logger.info(
        "loaded %s (%s, %s, x%d) on %s",
        Path(path).name,
        descriptor.architecture.name,
        descriptor.purpose,
        descriptor.scale,
        device,
    )
    return descriptor


class ModelCache:
    """Keeps the last ``max_models`` loaded models, keyed by file (path, size, mtime) and device.

    The caller owns it (one per backend, say) and passes it to the operations; without one, every call loads its
    model afresh. Thread-safe: a load happens under the lock, so two jobs never load the same file twice at once.
    """

    def __init__(self, max_models: int = 1) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, int, int, str], ImageModelDescriptor[Any]] = OrderedDict()

    def get(self, path: str | Path, device: str = "cpu") -> ImageModelDescriptor[Any]:
        """The model in ``path`` on ``device``: from the cache, or loaded (evicting the least recently used)."""
        path = Path(path).resolve()
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, device)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            model = load_image_model(path, device)
            self._models[key] = model
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
            return model

    def clear(self) -> None:
        """Forget every cached model (the memory is freed once no job still uses one)."""
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


def get_model(path: Path, device: str, cache: ModelCache | None) -> ImageModelDescriptor[Any]:
    """The model in ``path``, through ``cache`` when the caller has one."""
    return cache.get(path, device) if cache is not None else load_image_model(path, device)
