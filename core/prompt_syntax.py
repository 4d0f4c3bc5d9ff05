"""AUTOMATIC1111's prompt syntax: attention weights, BREAK, and ``<lora:name:weight>`` tags.

Attention (the semantics of A1111's ``modules/prompt_parser.parse_prompt_attention``):

- ``(text)`` multiplies the weight of ``text`` by 1.1, ``((text))`` by 1.21, ``(text:1.3)`` by 1.3;
- ``[text]`` divides it by 1.1;
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the literal characters;
- ``BREAK`` (a word of its own, in capitals) starts a new 77-token chunk: it becomes the marker
  ``("BREAK", -1.0)``;
- an unclosed ``(`` or ``[`` applies its multiplier to the rest of the prompt; a stray ``)`` or ``]`` is
  literal text;
- neighbouring pieces of equal weight are merged.

One deliberate difference: A1111 multiplies a BREAK marker that sits inside brackets like any other piece,
so ``(a BREAK b)`` yields ``("BREAK", -1.1)``, which its encoder then reads as the word "BREAK". Here the
marker keeps its weight, so BREAK inside brackets still starts a new chunk.

Nothing here imports torch: the pipelines turn these pieces into embeddings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import cast

BREAK = "BREAK"
BREAK_WEIGHT = -1.0
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
MAX_LORA_WEIGHT = 10.0

# One token of attention syntax per match, in A1111's order of alternatives.
_RE_ATTENTION = re.compile(
    r"""
    \\\(|
    \\\)|
    \\\[|
    \\]|
    \\\\|
    \\|
    \(|
    \[|
    :\s*([+-]?[.\d]+)\s*\)|
    \)|
    ]|
    [^\\()\[\]:]+|
    :
    """,
    re.X,
)
_RE_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
# A1111's extra-network tag: <kind:arg[:arg...]>; only the "lora" kind is taken out here.
_RE_LORA = re.compile(r"<lora:([^>]*)>")


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split ``text`` into (piece, weight) pairs; BREAK markers are ``("BREAK", -1.0)``.

    Raises ValueError for a weight that is not a number (``(a:1.2.3)``, ``(a:.)``) or not finite.
    """
    pieces: list[list[object]] = []  # [text, weight, is_marker]
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply_from(start: int, multiplier: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:
                piece[1] = float(cast(float, piece[1])) * multiplier

    for match in _RE_ATTENTION.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0, False])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif weight is not None and round_open:
            multiply_from(round_open.pop(), _weight(weight, token))
        elif token == ")" and round_open:
            multiply_from(round_open.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_open:
            multiply_from(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            for i, part in enumerate(_RE_BREAK.split(token)):
                if i > 0:
                    pieces.append([BREAK, BREAK_WEIGHT, True])
                pieces.append([part, 1.0, False])

    for start in round_open:
        multiply_from(start, ROUND_MULTIPLIER)
    for start in square_open:
        multiply_from(start, SQUARE_MULTIPLIER)

    return _merged(pieces)


def _merged(pieces: list[list[object]]) -> list[tuple[str, float]]:
    """Neighbouring pieces of the same weight joined (BREAK markers stay apart); `[("", 1.0)]` for none."""
    if not pieces:
        return [("", 1.0)]
    merged: list[list[object]] = [pieces[0]]
    for piece in pieces[1:]:
        last = merged[-1]
        if not piece[2] and not last[2] and piece[1] == last[1]:
            last[0] = f"{last[0]}{piece[0]}"
        else:
            merged.append(piece)
    return [(str(piece[0]), float(cast(float, piece[1]))) for piece in merged]


def _weight(number: str, token: str) -> float:
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"bad attention weight {token!r}: {number!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"bad attention weight {token!r}: must be a finite number")
    return value


def is_break(piece: tuple[str, float]) -> bool:
    return piece[0] == BREAK and piece[1] == BREAK_WEIGHT


@dataclass(frozen=True)
class LoraTag:
    """One ``<lora:name:weight>`` tag of a prompt."""

    name: str
    weight: float = 1.0


def validate_lora_name(name: str) -> str:
    """A LoRA name as a prompt tag may carry it: a file stem, no folders, no ``..``, no NUL."""
    if not name or not name.strip():
        raise ValueError("LoRA tag without a name: write <lora:name> or <lora:name:0.8>")
    if name != name.strip():
        raise ValueError(f"LoRA name {name!r} has leading or trailing spaces")
    if "/" in name or "\\" in name or "\x00" in name or ".." in name:
        raise ValueError(f"bad LoRA name {name!r}: a LoRA is named by its file name, without folders or '..'")
    return name


def _lora_weight(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"bad weight {text!r} in <lora:{name}:{text}>: expected a number like 0.8") from None
    if not math.isfinite(value) or abs(value) > MAX_LORA_WEIGHT:
        raise ValueError(
            f"bad weight {text!r} in <lora:{name}:{text}>: expected a number "
            f"between -{MAX_LORA_WEIGHT:g} and {MAX_LORA_WEIGHT:g}"
        )
    return value


def extract_loras(prompt: str) -> tuple[str, list[LoraTag]]:
    """Take the ``<lora:name>`` / ``<lora:name:weight>`` tags out of ``prompt``.

    Returns the prompt without the tags (the text around them is left as it is, as A1111 does) and the tags
    in order. A name used twice, a bad name or a bad weight raises ValueError with a readable message.
    """
    tags: list[LoraTag] = []
    for match in _RE_LORA.finditer(prompt):
        args = match.group(1).split(":")
        if len(args) > 2:
            raise ValueError(
                f"{match.group(0)!r}: expected <lora:name> or <lora:name:weight> "
                "(separate text-encoder and UNet weights are not supported)"
            )
        name = validate_lora_name(args[0])
        weight = _lora_weight(name, args[1].strip()) if len(args) == 2 else 1.0
        if any(tag.name == name for tag in tags):
            raise ValueError(f"LoRA {name!r} appears more than once in the prompt; keep one tag")
        tags.append(LoraTag(name, weight))
    return _RE_LORA.sub("", prompt), tags
