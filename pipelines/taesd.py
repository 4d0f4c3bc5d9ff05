"""Live previews: TAESD (a tiny VAE decoder) when its weights are on disk, else the cheap latent→RGB map.

TAESD weights are looked for, never downloaded, under ``models/taesd/`` (or A1111's ``models/VAE-approx/``):

- a diffusers ``AutoencoderTiny`` folder named ``taesd`` (SD 1.x/2.x) or ``taesdxl`` (SDXL), e.g.
  ``models/taesd/taesdxl/config.json`` + ``diffusion_pytorch_model.safetensors``; ``models/taesd/`` itself may
  be the SD 1.x/2.x folder;
- or the decoder alone as ``taesd_decoder.safetensors`` / ``taesdxl_decoder.safetensors`` (the layout of the
  TAESD repository, or diffusers' ``decoder.*`` keys). Pickle files (``.pth``) are never read.

A `Previewer` belongs to one backend: it loads each family's decoder once, on first use, and keeps it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
from diffusers import AutoencoderTiny
from PIL import Image

from pipelines.preview import latent_preview

log = logging.getLogger(__name__)

TAESD_FOLDERS = ("taesd", "VAE-approx")


def taesd_name(family: str | None) -> str:
    """ "taesdxl" for SDXL, "taesd" for SD 1.x/2.x (and unknown families)."""
    return "taesdxl" if family == "sdxl" else "taesd"


def find_taesd(models_dir: str | Path, family: str | None) -> Path | None:
    """The TAESD decoder for `family` under models_dir (a folder or a .safetensors file), or None."""
    name = taesd_name(family)
    for folder in (Path(models_dir) / f for f in TAESD_FOLDERS):
        candidates = [folder / name / "config.json", folder / f"{name}_decoder.safetensors"]
        if name == "taesd":
            candidates.append(folder / "config.json")
        for candidate in candidates:
            if candidate.is_file():
                return candidate.parent if candidate.name == "config.json" else candidate
    return None


def _decoder_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A decoder file's tensors with diffusers' `DecoderTiny` keys (`layers.N...`)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    if any(k.startswith("decoder.") for k in tensors):  # diffusers layout, maybe with the encoder too
        return {k.removeprefix("decoder."): v for k, v in tensors.items() if k.startswith("decoder.")}
    # TAESD's own layout: an nn.Sequential whose item 0 is a clamp without weights, so item N is layer N - 1
    converted = {}
    for key, value in tensors.items():
        index, _, rest = key.partition(".")
        converted[f"layers.{int(index) - 1}.{rest}"] = value
    return converted


def load_taesd(path: Path, device: torch.device | str = "cpu") -> AutoencoderTiny:
    """A TAESD model from a diffusers folder or a decoder-only .safetensors file (the standard TAESD sizes)."""
    if path.is_dir():
        model = AutoencoderTiny.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
    else:
        model = AutoencoderTiny()
        model.decoder.load_state_dict(_decoder_state_dict(path), strict=True)
    return model.to(device=device, dtype=torch.float32).eval().requires_grad_(False)


def taesd_preview(model: AutoencoderTiny, latents: torch.Tensor) -> Image.Image:
    """The first latent of a batch decoded with TAESD, at the picture's full size."""
    with torch.inference_mode():
        latent = latents[:1, :4].to(device=model.device, dtype=torch.float32)
        image = model.decode(latent).sample[0]
    rgb = ((image + 1.0) / 2.0).clamp(0.0, 1.0).mul(255).round().to(torch.uint8)
    return Image.fromarray(rgb.permute(1, 2, 0).cpu().numpy(), mode="RGB")


class Previewer:
    """Preview pictures for one backend: TAESD per family when present (loaded once), else the latent map."""

    def __init__(self, models_dir: str | Path, device: torch.device | str = "cpu") -> None:
        self.models_dir = Path(models_dir)
        self.device = device
        self._models: dict[str, AutoencoderTiny | None] = {}
        self._lock = threading.Lock()

    def decoder(self, family: str | None) -> AutoencoderTiny | None:
        """The family's TAESD model, loaded on first use; None when there are no (usable) weights."""
        name = taesd_name(family)
        with self._lock:
            if name not in self._models:
                path = find_taesd(self.models_dir, family)
                model = None
                if path is not None:
                    try:
                        model = load_taesd(path, self.device)
                        log.info("live previews use %s", path)
                    except Exception as exc:  # noqa: BLE001 - bad weights must not fail the job
                        log.warning(
                            "TAESD weights at %s cannot be used (%s); previews use the latent map", path, exc
                        )
                self._models[name] = model
            return self._models[name]

    def __call__(self, latents: torch.Tensor, family: str | None) -> Image.Image:
        model = self.decoder(family)
        return latent_preview(latents, family) if model is None else taesd_preview(model, latents)
