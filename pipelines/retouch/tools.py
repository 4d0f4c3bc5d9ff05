"""What the retouch operations can use here: resamplers and the model files found under models/."""

from __future__ import annotations

from pathlib import Path

from core.backend import RetouchTools


def retouch_tools_on_disk(models_dir: Path) -> RetouchTools:
    """The upscalers, face restorers and segmenters whose weights are in `models_dir`, and for a tool with none,
    what to download and where. Reads the folder only (the tools' modules, and torch with them, load here)."""
    from PIL import Image

    from pipelines.retouch import MissingWeights
    from pipelines.retouch.background import list_segmenters
    from pipelines.retouch.faces import list_face_restorers, restore_faces
    from pipelines.retouch.upscale import list_upscalers

    faces = tuple(list_face_restorers(models_dir))
    missing: dict[str, str] = {}
    if not faces:
        try:  # with no weights on disk this stops at the lookup, with the message saying what to get
            restore_faces(Image.new("RGB", (8, 8)), models_dir=models_dir)
        except MissingWeights as exc:
            missing["restore_faces"] = str(exc)
    return RetouchTools(
        upscalers=tuple(list_upscalers(models_dir)),
        face_restorers=faces,
        segmenters=tuple(list_segmenters(models_dir)),
        missing=missing,
    )
