"""The diffusers config folders shipped in ``pipelines/configs/`` (no weights) and the CLIP tokenizer data.

Each folder describes the real, full-size model of one family (SD 1.x, SD 2.x 768-v, SDXL base 1.0 and their
inpainting variants) with ``model_index.json``, every component's ``config.json``,
``scheduler/scheduler_config.json`` and the tokenizer settings. The tokenizer's vocabulary and merges are
stored once, in ``configs/clip_tokenizer/`` (made by ``configs/make_clip_tokenizer.py``);
:func:`materialize_config` assembles a complete folder that diffusers'
``from_single_file(..., config=folder)`` reads without the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
TOKENIZER_DATA_DIR = CONFIGS_DIR / "clip_tokenizer"
TOKENIZER_DATA_FILES = ("vocab.json", "merges.txt")
TOKENIZER_SUBFOLDERS = ("tokenizer", "tokenizer_2")
CLIP_MAX_LENGTH = 77

ConfigFamily = Literal["sd1", "sd2", "sdxl"]


def shipped_config_dir(family: ConfigFamily, inpaint: bool = False) -> Path:
    """The shipped folder for a family: ``configs/sd1``, ``configs/sdxl-inpaint``, …"""
    if family not in ("sd1", "sd2", "sdxl"):
        raise ValueError(f"unknown model family {family!r}; expected one of sd1, sd2, sdxl")
    folder = CONFIGS_DIR / (f"{family}-inpaint" if inpaint else family)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"shipped config folder is missing: {folder}")
    return folder


def materialize_config(family: ConfigFamily, inpaint: bool, dest: Path) -> Path:
    """Copy the shipped folder to ``dest`` (which must not exist) and add the tokenizer vocab/merges."""
    dest = Path(dest)
    shutil.copytree(shipped_config_dir(family, inpaint), dest)
    for sub in TOKENIZER_SUBFOLDERS:
        if (dest / sub).is_dir():
            for name in TOKENIZER_DATA_FILES:
                shutil.copyfile(TOKENIZER_DATA_DIR / name, dest / sub / name)
    return dest


def load_clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """CLIP's BPE tokenizer (49,408 tokens, max length 77) from the shipped data.

    SD 1.x and SDXL's first tokenizer pad with ``<|endoftext|>``; SD 2.x and SDXL's ``tokenizer_2``
    with ``!``.
    """
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(
        str(TOKENIZER_DATA_DIR), model_max_length=CLIP_MAX_LENGTH, pad_token=pad_token, local_files_only=True
    )
