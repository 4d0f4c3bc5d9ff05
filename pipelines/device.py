"""Choosing the compute device and dtype once, when the app starts (never at import time)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    dtype: torch.dtype
    name: str  # human-readable, for the header line

    def memory_mb(self) -> tuple[float | None, float | None]:
        """(allocated, total) memory of the device in MB, or (None, None) where unknown (CPU)."""
        if self.device.startswith("cuda") and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return (total - free) / 2**20, total / 2**20
        return None, None


def choose_device(device: str = "auto", dtype: str = "auto") -> DeviceChoice:
    """Resolve "auto" choices: cuda, then mps, then cpu; fp16 on accelerators, fp32 on cpu."""
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
    if dtype == "auto":
        chosen = torch.float32 if device == "cpu" else torch.float16
    else:
        chosen = _DTYPES[dtype]
    if device == "cpu" and chosen == torch.float16:
        raise RuntimeError("fp16 is not supported on the CPU; use --dtype fp32 or bf16")
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
    elif device == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    log.info("compute device: %s, dtype %s", name, chosen)
    return DeviceChoice(device=device, dtype=chosen, name=name)
