"""Textual-inversion embeddings: files in ``models/embeddings/``, used in a prompt by their file name.

``.safetensors`` only (pickle formats are listed as refused and never opened). Layouts read: A1111's SD 1.x/2.x
``emb_params`` (or ``string_to_param.*``), diffusers' single ``{token: tensor}``, and SDXL's ``clip_l`` +
``clip_g`` pair. A prompt that names an embedding gets it loaded into the cached model once
(diffusers' ``load_textual_inversion`` under a private token, ``<easel-ti-…>``), and the name is replaced by
that token (one per vector) before the prompt is encoded; a prompt that names none encodes exactly as before.

The infotext records each embedding used as A1111 does: ``TI hashes: "name: <hash>"``, the hash being the first
12 hex digits of the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffusers import DiffusionPipeline

from pipelines.addon_files import addon_roots, relative_to, safetensors_header, walk_files
from pipelines.registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, pickle_refusal

log = logging.getLogger(__name__)

EMBEDDING_DIRS = frozenset({"embeddings"})
HASH_DIGITS = 12
STATE_KEY = "embeddings"  # where a cached model's loaded embeddings live in the manager's per-model state
_SDXL_KEYS = ("clip_l", "clip_g")


@dataclass(frozen=True)
class EmbeddingEntry:
    name: str
    path: Path
    refusal: str | None = None
    vectors: int = 0
    shape: int = 0
    sdxl: bool = False
    key: str = ""  # the tensor to read (SD 1.x/2.x)
    step: int | None = None
    sd_checkpoint: str | None = None
    sd_checkpoint_name: str | None = None


def describe_file(path: Path) -> EmbeddingEntry:
    """What an embedding file holds, from its header only; refused (with why) when it is not an embedding."""
    name = path.stem
    try:
        shapes, meta = safetensors_header(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return EmbeddingEntry(name, path, f"unreadable: {exc}")
    info: dict[str, Any] = {
        "step": int(meta["step"]) if meta.get("step", "").isdigit() else None,
        "sd_checkpoint": meta.get("sd_checkpoint") or None,
        "sd_checkpoint_name": meta.get("sd_checkpoint_name") or None,
    }
    if all(k in shapes for k in _SDXL_KEYS):
        clip_l, clip_g = shapes["clip_l"], shapes["clip_g"]
        if len(clip_l) != 2 or len(clip_g) != 2 or clip_l[0] != clip_g[0]:
            return EmbeddingEntry(name, path, "clip_l and clip_g must be [vectors, width] with equal vectors")
        return EmbeddingEntry(name, path, None, clip_g[0], clip_l[1] + clip_g[1], True, **info)
    candidates = [k for k in shapes if k == "emb_params" or k.startswith("string_to_param")]
    key = candidates[0] if candidates else (next(iter(shapes)) if len(shapes) == 1 else "")
    shape = shapes.get(key, ())
    if not key or len(shape) not in (1, 2) or 0 in shape:
        return EmbeddingEntry(
            name, path, f"not a textual-inversion embedding (tensors: {', '.join(sorted(shapes))})"
        )
    vectors = shape[0] if len(shape) == 2 else 1
    return EmbeddingEntry(name, path, None, vectors, shape[-1], False, key, **info)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:HASH_DIGITS]


class EmbeddingLibrary:
    """The embedding files under a models folder; ``scan()`` refreshes the list, hashes are taken once per file."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._entries: list[EmbeddingEntry] | None = None
        self._hashes: dict[tuple[Path, int, int], str] = {}

    def scan(self) -> list[EmbeddingEntry]:
        found: list[EmbeddingEntry] = []
        for root in addon_roots(self.models_dir, EMBEDDING_DIRS):
            for path in walk_files(root):
                suffix = path.suffix.lower()
                if suffix == SAFETENSORS_SUFFIX:
                    found.append(describe_file(path))
                elif suffix in PICKLE_SUFFIXES:
                    found.append(EmbeddingEntry(path.stem, path, pickle_refusal(suffix)))
        entries, seen = [], set()
        for entry in sorted(found, key=lambda e: (e.refusal is not None, e.name.lower(), str(e.path))):
            if entry.name in seen:
                entry = EmbeddingEntry(
                    entry.name, entry.path, f"another embedding is also called {entry.name!r}"
                )
            seen.add(entry.name)
            entries.append(entry)
        with self._lock:
            self._entries = entries
        return list(entries)

    def entries(self) -> list[EmbeddingEntry]:
        with self._lock:
            entries = self._entries
        return list(entries) if entries is not None else self.scan()

    def relative_path(self, entry: EmbeddingEntry) -> str:
        return relative_to(entry.path, self.models_dir)

    def named_in(self, texts: Iterable[str]) -> list[EmbeddingEntry]:
        """The usable embeddings whose name appears as a word in any of `texts`."""
        joined = "\n".join(texts)
        return [e for e in self.entries() if e.refusal is None and _name_pattern(e.name).search(joined)]

    def hash(self, entry: EmbeddingEntry) -> str:
        stat = entry.path.stat()
        key = (entry.path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = file_hash(entry.path)
            with self._lock:
                self._hashes[key] = known
        return known

    def infotext_pairs(self, entries: Sequence[EmbeddingEntry]) -> dict[str, str]:
        """A1111's ``TI hashes`` pair for the embeddings a job used (none: no pair)."""
        if not entries:
            return {}
        return {"TI hashes": ", ".join(f"{e.name}: {self.hash(e)}" for e in entries)}


def _name_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")


def _token(entry: EmbeddingEntry) -> str:
    stat = entry.path.stat()
    digest = hashlib.sha256(f"{entry.path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"<easel-ti-{digest}>"


def _text_width(encoder: Any) -> int:
    return int(encoder.get_input_embeddings().weight.shape[1])


def load_embeddings(
    pipe: DiffusionPipeline, entries: Sequence[EmbeddingEntry], state: dict[str, Any]
) -> dict[str, list[str]]:
    """Load `entries` into `pipe`'s text encoder(s), each once per model (kept in `state`, the manager's per-model
    dict); returns each loaded name's tokens. One that does not fit the model (another family, another width) is
    skipped, as A1111 skips it: its name stays plain text in the prompt."""
    from safetensors.torch import load_file

    loaded: dict[str, list[str]] = state.setdefault(STATE_KEY, {})
    tokens: dict[str, list[str]] = {}
    for entry in entries:
        token = _token(entry)
        if token not in loaded:
            problem = misfit(pipe, entry)
            if problem is not None:
                log.warning("%s; the name is left as text in the prompt", problem)
                continue
            tensors = load_file(entry.path)
            pairs = (
                [(tensors["clip_l"], pipe.text_encoder, pipe.tokenizer),
                 (tensors["clip_g"], pipe.text_encoder_2, pipe.tokenizer_2)]
                if entry.sdxl
                else [(tensors[entry.key], pipe.text_encoder, pipe.tokenizer)]
            )  # fmt: skip
            for vectors, encoder, tokenizer in pairs:
                vectors = vectors.reshape(-1, vectors.shape[-1]).to(encoder.dtype)
                pipe.load_textual_inversion(vectors, token=token, text_encoder=encoder, tokenizer=tokenizer)
            count = entry.vectors or 1
            loaded[token] = [token] + [f"{token}_{i}" for i in range(1, count)]
            log.info("loaded embedding %s (%d vector(s))", entry.name, count)
        tokens[entry.name] = loaded[token]
    return tokens


def misfit(pipe: DiffusionPipeline, entry: EmbeddingEntry) -> str | None:
    """Why `entry` cannot be used with `pipe` (another family, another text encoder width), else None."""
    sdxl_model = getattr(pipe, "text_encoder_2", None) is not None
    if entry.sdxl != sdxl_model:
        kind = "SDXL" if entry.sdxl else "SD 1.x/2.x"
        return f"embedding {entry.name!r} is made for {kind} models; this model is not one"
    width = _text_width(pipe.text_encoder) + (_text_width(pipe.text_encoder_2) if sdxl_model else 0)
    if entry.shape != width:
        return f"embedding {entry.name!r} is {entry.shape} wide; this model's text encoder takes {width}"
    return None


def rewrite_prompt(text: str, tokens: Mapping[str, Sequence[str]]) -> str:
    """`text` with each embedding name replaced by its tokens (longest names first)."""
    for name in sorted(tokens, key=len, reverse=True):
        text = _name_pattern(name).sub(" ".join(tokens[name]), text)
    return text
