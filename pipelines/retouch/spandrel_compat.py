"""Import :mod:`spandrel` without torchvision.

spandrel declares torchvision as a dependency but imports it at import time in only two places:
``spandrel/architectures/LaMa/__arch/LaMa.py`` (``InterpolationMode``, ``rotate``) and
``spandrel/architectures/RestoreFormer/__init__.py`` (``normalize``). PyPI's torchvision wheels cannot be imported
beside the CPU torch build Easel pins (``operator torchvision::nms does not exist``), so spandrel is installed with
``--no-deps`` (requirements-nodeps.txt) and, only when torchvision itself cannot be imported, a minimal stand-in
module ``torchvision.transforms.functional`` is registered while spandrel is imported (spandrel imports every
architecture eagerly, binding the names it needs), and removed again right after, so nothing else in the process
ever sees a fake torchvision (libraries that probe for torchvision keep finding none):

- ``normalize`` is implemented (RestoreFormer uses it on every call);
- ``rotate`` and ``InterpolationMode`` raise a clear error when used (only LaMa, an inpainting model the retouch
  operations never load, uses them).

A working torchvision, when one is installed, is always preferred and left alone.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["import_spandrel"]

_STAND_IN_FLAG = "__easel_stand_in__"
_LAMA_MESSAGE = (
    "this model needs torchvision (LaMa uses torchvision.transforms.functional.rotate), "
    "which is not installed beside this torch build"
)


def import_spandrel() -> types.ModuleType:
    """Return the :mod:`spandrel` module, registering the torchvision stand-in first when needed."""
    if "spandrel" in sys.modules or _torchvision_importable():
        return importlib.import_module("spandrel")
    names = _register_stand_in()
    try:
        return importlib.import_module("spandrel")
    finally:
        for name in names:
            if getattr(sys.modules.get(name), _STAND_IN_FLAG, False):
                del sys.modules[name]


def _torchvision_importable() -> bool:
    module = sys.modules.get("torchvision.transforms.functional")
    if module is not None:
        return True
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:  # ImportError, or RuntimeError from a torchvision built for another torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]  # drop half-imported modules of a broken install
        return False
    return True


def _normalize(tensor: Any, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> Any:
    """torchvision's ``normalize`` for a float tensor ``(..., C, H, W)``: ``(x - mean) / std`` per channel."""
    import torch

    if not inplace:
        tensor = tensor.clone()
    dtype, device = tensor.dtype, tensor.device
    mean_t = torch.as_tensor(mean, dtype=dtype, device=device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=dtype, device=device).view(-1, 1, 1)
    if (std_t == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {dtype}, leading to division by zero.")
    return tensor.sub_(mean_t).div_(std_t)


def _rotate(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(_LAMA_MESSAGE)


class _InterpolationMode:
    """Stand-in for ``torchvision.transforms.InterpolationMode``: any use raises a clear error."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(_LAMA_MESSAGE)


def _register_stand_in() -> tuple[str, ...]:
    logger.debug(
        "torchvision is not importable; registering a minimal torchvision.transforms.functional for spandrel"
    )
    package = types.ModuleType("torchvision")
    package.__path__ = []  # a package, so the submodule imports resolve from sys.modules
    transforms = types.ModuleType("torchvision.transforms")
    transforms.__path__ = []
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.normalize = _normalize  # type: ignore[attr-defined]
    functional.rotate = _rotate  # type: ignore[attr-defined]
    functional.InterpolationMode = _InterpolationMode()  # type: ignore[attr-defined]
    for module in (package, transforms, functional):
        setattr(module, _STAND_IN_FLAG, True)
    package.transforms = transforms  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    sys.modules["torchvision"] = package
    sys.modules["torchvision.transforms"] = transforms
    sys.modules["torchvision.transforms.functional"] = functional
    return ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
