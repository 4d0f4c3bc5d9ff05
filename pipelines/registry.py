"""Find the models a user has: diffusers folders and single-file ``.safetensors`` checkpoints under
``models/`` (and ``models/Stable-diffusion/``, AUTOMATIC1111's layout), configured hub repo ids, and the
offline demo model.

Scanning is cheap: single files are classified from their ``.safetensors`` header (key names and shapes),
folders from their JSON configs. Pickle-based formats (``.ckpt``, ``.pt``, ``.pth``, ``.bin``) can run code
when loaded, so they are listed as refused, with how to convert them — and never opened.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.backend import ModelInfo
from core.errors import UnknownModel
from pipelines.checkpoint_info import Family, classify_file

logger = logging.getLogger(__name__)

__all__ = [
    "DEMO_FILENAME",
    "DEMO_LABEL",
    "DEMO_NAME",
    "Family",
    "ModelEntry",
    "ModelRefusedError",
    "ModelRegistry",
    "UnknownModelError",
]

Source = Literal["file", "folder", "hub", "demo"]

DEMO_NAME = "demo-tiny"
DEMO_FILENAME = "easel-demo-tiny-sd1.safetensors"
DEMO_LABEL = "Demo — tiny random weights (not a real model)"
A1111_SUBFOLDER = "Stable-diffusion"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
INPAINT_SUFFIXES = ("-inpainting", "_inpainting", "-inpaint", "_inpaint")
MAX_DEPTH = 4
# Sub-folders of a models/ tree that hold add-ons, not checkpoints (A1111, ComfyUI, InvokeAI names).
NON_CHECKPOINT_DIRS = frozenset(
    name.lower()
    for name in (
        "Lora",
        "LyCORIS",
        "loras",
        "VAE",
        "vae",
        "VAE-approx",
        "vae_approx",
        "embeddings",
        "hypernetworks",
        "ControlNet",
        "controlnet",
        "t2i_adapter",
        "ESRGAN",
        "RealESRGAN",
        "SwinIR",
        "GFPGAN",
        "Codeformer",
        "face_restore",
        "LDSR",
        "ScuNET",
        "BSRGAN",
        "DAT",
        "HAT",
        "upscalers",
        "upscale_models",
        "rembg",
        "deepbooru",
        "BLIP",
        "karlo",
        "clip",
        "clip_vision",
        "text_encoders",
        "style_models",
        "gligen",
        "photomaker",
        "insightface",
        "ipadapter",
        "ip_adapter",
        "animatediff_models",
        "motion_lora",
        "taesd",
        "onnx",
        "__pycache__",
    )
)
SUPPORTED_PIPELINES = frozenset(
    f"StableDiffusion{xl}{task}Pipeline" for xl in ("", "XL") for task in ("", "Img2Img", "Inpaint")
)
FAMILY_NAMES: dict[str, str] = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")


class UnknownModelError(UnknownModel):
    """No model of that name."""


class ModelRefusedError(UnknownModel):
    """The model is listed but cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelEntry:
    """One model the user can pick."""

    name: str  # unique id: path below the models folder without suffix, hub id, or "demo-tiny"
    source: Source
    path: Path | None  # file or folder; None for hub models
    family: Family | None  # None when refused or not known before loading (hub)
    inpaint: bool = False
    refusal: str | None = None  # why it cannot be loaded, in one line
    label: str = ""  # what a model picker shows


def pickle_refusal(suffix: str) -> str:
    return (
        f"pickle format ({suffix}) can run code when loaded; convert it to .safetensors (e.g. with diffusers' "
        "convert script or A1111's model converter) and put that file here"
    )


def _label(name: str, family: Family | None, inpaint: bool, refusal: str | None, source: Source) -> str:
    if source == "demo":
        return DEMO_LABEL
    if refusal:
        return f"{name} — cannot load: {refusal}"
    kind = FAMILY_NAMES.get(family or "", "")
    if kind and inpaint:
        kind += " inpainting"
    if source == "hub":
        kind = f"hub, {kind}" if kind else "hub"
    return f"{name} ({kind})" if kind else name


def _entry(
    name: str,
    source: Source,
    path: Path | None,
    family: Family | None,
    inpaint: bool = False,
    refusal: str | None = None,
) -> ModelEntry:
    return ModelEntry(
        name=name,
        source=source,
        path=path,
        family=family,
        inpaint=inpaint,
        refusal=refusal,
        label=_label(name, family, inpaint, refusal, source),
    )


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def folder_weights(folder: Path) -> tuple[bool, bool]:
    """(every component with weights has .safetensors ones, some component has pickle weights)."""
    components = safe = 0
    pickled = False
    for sub in folder.iterdir():
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        names = [f.name for f in sub.iterdir()]
        has_safe = any(n.endswith(SAFETENSORS_SUFFIX) for n in names)
        has_pickle = any(Path(n).suffix in PICKLE_SUFFIXES for n in names)
        pickled |= has_pickle
        if has_safe or has_pickle:
            components += 1
            safe += has_safe
    return components > 0 and safe == components, pickled


def family_from_configs(
    model_index: dict, unet_config: dict | None
) -> tuple[Family | None, bool, str | None]:
    """(family, inpaint, refusal) of a diffusers pipeline from model_index.json and unet/config.json."""
    class_name = str(model_index.get("_class_name", ""))
    if class_name not in SUPPORTED_PIPELINES:
        return (
            None,
            False,
            f"unsupported pipeline ({class_name or 'no _class_name'}); Easel runs SD 1.x, 2.x, SDXL",
        )
    if unet_config is None:
        return None, False, "diffusers folder without unet/config.json"
    if unet_config.get("in_channels") not in (4, 9):
        return None, False, f"unsupported UNet ({unet_config.get('in_channels')} input channels)"
    inpaint = unet_config.get("in_channels") == 9
    if unet_config.get("addition_embed_type") == "text_time":
        text_encoder = model_index.get("text_encoder")
        if not text_encoder or text_encoder[0] is None:
            return None, False, "an SDXL refiner (a second img2img stage), not a base model"
        return "sdxl", inpaint, None
    family: Family = "sd2" if unet_config.get("cross_attention_dim") == 1024 else "sd1"
    return family, inpaint, None


def folder_family(folder: Path) -> tuple[Family | None, bool, str | None]:
    """(family, inpaint, refusal) of a diffusers folder, from its JSON configs and weight file names."""
    try:
        model_index = _read_json(folder / "model_index.json")
        unet_file = folder / "unet" / "config.json"
        unet_config = _read_json(unet_file) if unet_file.is_file() else None
    except (OSError, ValueError) as error:
        return None, False, f"unreadable model_index.json or unet config: {error}"
    family, inpaint, refusal = family_from_configs(model_index, unet_config)
    if refusal is None:
        has_safetensors, has_pickle = folder_weights(folder)
        if not has_safetensors:
            refusal = (
                pickle_refusal(".bin")
                if has_pickle
                else "diffusers folder without .safetensors weights for every component"
            )
    return (family, inpaint, None) if refusal is None else (None, False, refusal)


def guess_family_from_id(hub_id: str) -> tuple[Family | None, bool]:
    lowered = hub_id.lower()
    inpaint = "inpaint" in lowered
    if "xl" in lowered:
        return "sdxl", inpaint
    if re.search(r"stable-diffusion-2|sd-?2\b|sd2[.-]", lowered):
        return "sd2", inpaint
    if re.search(r"stable-diffusion-v1|v1-[45]|sd-?1[.-]?5|sd15", lowered):
        return "sd1", inpaint
    return None, inpaint


class ModelRegistry:
    """The models found on disk and configured from the hub; ``scan()`` refreshes the list."""

    def __init__(
        self,
        models_dir: Path,
        hub_ids: Sequence[str] = (),
        demo: bool = False,
        demo_dir: Path | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.hub_ids = tuple(hub_ids)
        self.demo = demo
        self.demo_dir = Path(demo_dir) if demo_dir is not None else self.models_dir / ".demo"
        self._lock = threading.Lock()
        self._entries: list[ModelEntry] | None = None

    # -- public ----------------------------------------------------------------------------------
    def scan(self) -> list[ModelEntry]:
        """Rescan the models folder; reads only headers and JSON, never tensors or pickles."""
        found = self._scan_disk() + [self._hub_entry(hub_id) for hub_id in self.hub_ids]
        found = _unique_names(found, self.models_dir)
        found.sort(key=lambda e: (e.refusal is not None, e.name.lower()))
        if self.demo or not any(e.refusal is None for e in found):
            found.append(self.demo_entry())
        with self._lock:
            self._entries = found
        logger.info(
            "found %d model(s) (%d usable) in %s",
            len(found),
            sum(e.refusal is None for e in found),
            self.models_dir,
        )
        return list(found)

    def entries(self) -> list[ModelEntry]:
        """The last scan's entries (scanning on first use)."""
        with self._lock:
            entries = self._entries
        return list(entries) if entries is not None else self.scan()

    def usable(self) -> list[ModelEntry]:
        return [e for e in self.entries() if e.refusal is None]

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name``; rescans once if it is not known yet."""
        entry = self._find(self.entries(), name) or self._find(self.scan(), name)
        if entry is None:
            known = ", ".join(e.name for e in self.entries()) or "none"
            raise UnknownModelError(f"Unknown model {name!r}. Known models: {known}")
        if entry.refusal:
            raise ModelRefusedError(f"Model {name!r} cannot be loaded: {entry.refusal}")
        return entry

    def inpaint_sibling(self, entry: ModelEntry) -> ModelEntry | None:
        """``foo`` ↔ ``foo-inpainting`` (also ``_inpainting``, ``-inpaint``, ``_inpaint``), same family."""
        entries = [e for e in self.entries() if e.refusal is None and e.name != entry.name]
        if entry.inpaint:
            bases = [entry.name[: -len(s)] for s in INPAINT_SUFFIXES if entry.name.endswith(s)]
            candidates = [e for e in entries if not e.inpaint and e.name in bases]
        else:
            names = {entry.name + s for s in INPAINT_SUFFIXES}
            candidates = [e for e in entries if e.inpaint and e.name in names]
        candidates = [e for e in candidates if entry.family is None or e.family in (None, entry.family)]
        return candidates[0] if candidates else None

    def infos(self, refresh: bool = False) -> list[ModelInfo]:
        """The models as the front ends see them, refused ones with the reason (`refresh` scans the folder
        again)."""
        infos = []
        for e in self.scan() if refresh else self.entries():
            sibling = None if e.inpaint else self.inpaint_sibling(e)
            infos.append(
                ModelInfo(
                    name=e.name,
                    label=e.label or e.name,
                    family=e.family,
                    inpaint=e.inpaint,
                    refusal=e.refusal,
                    demo=e.source == "demo",
                    inpaint_sibling=sibling.name if sibling is not None else None,
                )
            )
        return infos

    def demo_entry(self) -> ModelEntry:
        return _entry(DEMO_NAME, "demo", self.demo_dir / DEMO_FILENAME, "sd1")

    # -- scanning --------------------------------------------------------------------------------
    @staticmethod
    def _find(entries: list[ModelEntry], name: str) -> ModelEntry | None:
        return next((e for e in entries if e.name == name), None)

    def _scan_disk(self) -> list[ModelEntry]:
        if not self.models_dir.is_dir():
            logger.warning("models folder %s does not exist", self.models_dir)
            return []
        entries = self._scan_root(self.models_dir, skip={A1111_SUBFOLDER.lower()})
        a1111 = next(
            (
                p
                for p in self.models_dir.iterdir()
                if p.is_dir() and p.name.lower() == A1111_SUBFOLDER.lower()
            ),
            None,
        )
        if a1111 is not None:
            entries += self._scan_root(a1111, skip=set())
        return entries

    def _scan_root(self, root: Path, skip: set[str]) -> list[ModelEntry]:
        entries: list[ModelEntry] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            here = Path(dirpath)
            depth = len(here.relative_to(root).parts)
            if here != root and (here / "model_index.json").is_file():
                entries.append(self._folder_entry(here, _name(here.relative_to(root))))
                dirnames[:] = []
                continue
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".")
                and d.lower() not in NON_CHECKPOINT_DIRS
                and not (here == root and d.lower() in skip)
                and depth < MAX_DEPTH
            )
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                path = here / filename
                suffix = path.suffix.lower()
                name = _name(path.relative_to(root).with_suffix(""))
                if suffix == SAFETENSORS_SUFFIX:
                    info = classify_file(path)
                    entries.append(_entry(name, "file", path, info.family, info.inpaint, info.refusal))
                elif suffix in PICKLE_SUFFIXES:
                    entries.append(_entry(name, "file", path, None, refusal=pickle_refusal(suffix)))
        return entries

    def _folder_entry(self, folder: Path, name: str) -> ModelEntry:
        family, inpaint, refusal = folder_family(folder)
        return _entry(name, "folder", folder, family, inpaint, refusal)

    def _hub_entry(self, hub_id: str) -> ModelEntry:
        if not _HUB_ID.match(hub_id):
            return _entry(hub_id, "hub", None, None, refusal="not a hub repo id (expected owner/name)")
        family, inpaint = _cached_hub_family(hub_id)
        if family is None:
            family, inpaint = guess_family_from_id(hub_id)
        return _entry(hub_id, "hub", None, family, inpaint)


def _name(relative: Path) -> str:
    return "/".join(relative.parts)


def _unique_names(entries: list[ModelEntry], models_dir: Path) -> list[ModelEntry]:
    """Later duplicates (same stem in models/ and models/Stable-diffusion/, a file next to a folder of the
    same name, a hub id equal to a local path) get a longer name: the path below models/, with suffix."""
    seen: set[str] = set()
    out = []
    for entry in entries:
        name = entry.name
        if name in seen:
            if entry.path is not None and entry.path.is_relative_to(models_dir):
                name = _name(entry.path.relative_to(models_dir))
                if entry.source == "folder":
                    name += " (folder)"
            if name in seen:
                name = f"{entry.source}:{entry.path or entry.name}"
            entry = _entry(name, entry.source, entry.path, entry.family, entry.inpaint, entry.refusal)
        seen.add(name)
        out.append(entry)
    return out


def _cached_hub_family(hub_id: str) -> tuple[Family | None, bool]:
    """Family from a hub model's configs if they are in the local cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        index_file = try_to_load_from_cache(hub_id, "model_index.json")
        if not isinstance(index_file, str):
            return None, False
        unet_file = try_to_load_from_cache(hub_id, "unet/config.json")
        unet_config = _read_json(Path(unet_file)) if isinstance(unet_file, str) else None
        family, inpaint, _ = family_from_configs(_read_json(Path(index_file)), unet_config)
        return family, inpaint
    except Exception as error:  # a broken cache never breaks the scan
        logger.debug("hub cache lookup for %s failed: %s", hub_id, error)
        return None, False
