"""Tiny add-on files for tests: VAEs (single file or diffusers folder) and textual-inversion embeddings."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_vae(seed: int = 0):
    """The VAE of the tiny SD 1.x model built with `seed` (the same weights as that checkpoint's)."""
    from pipelines.tiny import build_tiny_components

    return build_tiny_components("sd1", seed=seed)["vae"]


def write_tiny_vae(path: Path, seed: int = 0, *, prefix: str = "") -> Path:
    """A single-file VAE in the original (LDM) layout, fp16 as the tiny checkpoints store their weights."""
    from safetensors.torch import save_file

    from pipelines.tiny import vae_to_original

    state = {prefix + k: v.to(torch.float16).contiguous() for k, v in vae_to_original(tiny_vae(seed)).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def write_embedding(
    path: Path,
    *,
    vectors: int = 2,
    width: int = 64,
    seed: int = 0,
    key: str = "emb_params",
    scale: float = 1.0,
) -> torch.Tensor:
    """A textual-inversion embedding of random vectors (the tiny SD 1.x text encoder is 64 wide)."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensor = torch.randn(vectors, width, generator=generator) * scale
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: tensor}, str(path), metadata={"step": "500", "sd_checkpoint_name": "tiny-sd1"})
    return tensor


def addon_models_dir(root: Path, tiny_models_dir: Path) -> Path:
    """A models/ folder with the shared tiny checkpoints (linked) plus VAEs and embeddings."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("tiny-sd1.safetensors", "tiny-sd1-other.safetensors"):
        (root / name).symlink_to(tiny_models_dir / name)
    write_tiny_vae(root / "VAE" / "tiny-vae.safetensors", seed=7)
    write_tiny_vae(root / "VAE" / "same-as-model.safetensors", seed=0, prefix="first_stage_model.")
    (root / "VAE" / "old-vae.pt").write_bytes(b"not opened")
    write_embedding(root / "embeddings" / "tinyemb.safetensors", vectors=2, scale=5.0)
    write_embedding(root / "embeddings" / "wide-one.safetensors", vectors=1, width=768)
    (root / "embeddings" / "pickled.pt").write_bytes(b"not opened")
    return root
