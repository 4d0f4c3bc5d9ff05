"""CLIP's tokenizer, built offline from the shipped vocab/merges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import CLIPTokenizer

from pipelines.config_folders import TOKENIZER_DATA_DIR, load_clip_tokenizer, materialize_config

A_PHOTO_OF_A_CAT = [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.fixture(scope="module")
def tokenizer() -> CLIPTokenizer:
    return load_clip_tokenizer()


def test_known_ids(tokenizer: CLIPTokenizer) -> None:
    assert tokenizer("a photo of a cat").input_ids == A_PHOTO_OF_A_CAT
    assert tokenizer("A photo of a CAT").input_ids == A_PHOTO_OF_A_CAT  # CLIP lower-cases


def test_vocab_size_and_specials(tokenizer: CLIPTokenizer) -> None:
    assert len(tokenizer) == 49408
    assert tokenizer.vocab_size == 49408
    assert tokenizer.bos_token_id == 49406
    assert tokenizer.eos_token_id == 49407
    assert tokenizer.model_max_length == 77


def test_shipped_data_layout() -> None:
    vocab = json.loads((TOKENIZER_DATA_DIR / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 49408
    assert vocab["!"] == 0 and vocab["!</w>"] == 256
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    merges = (TOKENIZER_DATA_DIR / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version")
    assert len(merges) == 1 + 48894
    assert vocab["".join(merges[1].split())] == 512  # the first merge follows the 2 * 256 byte symbols


def test_truncates_and_pads_to_77(tokenizer: CLIPTokenizer) -> None:
    ids = tokenizer("cat " * 200, padding="max_length", truncation=True, max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == 49406 and ids[-1] == 49407
    short = tokenizer("a cat", padding="max_length", max_length=tokenizer.model_max_length).input_ids
    assert len(short) == 77 and short[4:] == [49407] * 73  # SD 1.x pads with <|endoftext|>


@pytest.mark.parametrize(("sub", "pad_id"), [("tokenizer", 49407), ("tokenizer_2", 0)])
def test_sdxl_tokenizers_from_config_folder(tmp_path: Path, sub: str, pad_id: int) -> None:
    folder = materialize_config("sdxl", False, tmp_path / "sdxl")
    tok = CLIPTokenizer.from_pretrained(folder, subfolder=sub, local_files_only=True)
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert tok.pad_token_id == pad_id  # tokenizer_2 pads with "!" (id 0), as SDXL's OpenCLIP does
    ids = tok("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert ids[:7] == A_PHOTO_OF_A_CAT and ids[7:] == [pad_id] * 70


def test_sd2_tokenizer_pads_with_exclamation(tmp_path: Path) -> None:
    folder = materialize_config("sd2", False, tmp_path / "sd2")
    tok = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)
    assert tok.pad_token == "!" and tok.pad_token_id == 0


def test_script_regenerates_identical_files(tmp_path: Path) -> None:
    wheel = Path("/tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl")
    if not wheel.is_file():
        pytest.skip("open_clip_torch wheel not present (pip download --no-deps open_clip_torch)")
    from pipelines.configs.make_clip_tokenizer import write_tokenizer

    out = write_tokenizer(wheel, tmp_path / "tok")
    for name in ("vocab.json", "merges.txt"):
        assert (out / name).read_bytes() == (TOKENIZER_DATA_DIR / name).read_bytes()
