"""Write CLIP's BPE tokenizer files (vocab.json, merges.txt) from open_clip's merges list.

Single-file checkpoints carry no tokenizer, and the hub is not always reachable, so Easel ships the CLIP
tokenizer as data. Its source is ``open_clip/bpe_simple_vocab_16e6.txt.gz`` inside the ``open_clip_torch``
wheel (``pip download --no-deps open_clip_torch``; never ``pip install`` it here: it pulls another torch).

CLIP's vocabulary is built exactly as OpenAI's ``SimpleTokenizer`` builds it:

1. the 256 byte-to-unicode symbols,
2. the same 256 symbols with ``</w>`` appended,
3. the first 48,894 merges (lines 1..48894 after the header line), each pair joined,
4. ``<|startoftext|>`` and ``<|endoftext|>`` — 49,408 tokens in all.

Usage::

    python pipelines/configs/make_clip_tokenizer.py open_clip_torch-3.3.0-py3-none-any.whl \
        [--out pipelines/configs/clip_tokenizer]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
NUM_MERGES = 49152 - 256 - 2  # 48,894: CLIP's vocab is 49,408 = 2 * 256 + 48,894 + 2
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
DEFAULT_OUT = Path(__file__).resolve().parent / "clip_tokenizer"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def read_merges(source: Path) -> list[tuple[str, str]]:
    """The first 48,894 merge pairs, from the open_clip wheel or from the ``.txt.gz`` itself."""
    if source.suffix == ".whl" or zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            raw = wheel.read(BPE_MEMBER)
    else:
        raw = source.read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
    if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{source}: expected {NUM_MERGES} merge pairs after the header line")
    return merges  # type: ignore[return-value]


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("duplicate tokens in the CLIP vocabulary")
    return vocab


def write_tokenizer(source: Path, out: Path, pad_token: str = EOS) -> Path:
    """Write vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json into ``out``."""
    merges = read_merges(source)
    vocab = build_vocab(merges)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (out / "merges.txt").write_text(merges_text, encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "add_prefix_space": False,
        "errors": "replace",
        **special,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %d tokens and %d merges to %s", len(vocab), len(merges), out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="open_clip_torch wheel, or bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_tokenizer(args.source, args.out)


if __name__ == "__main__":
    main()
