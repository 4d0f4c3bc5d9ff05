"""Prompt styles: named prompt/negative templates, applied as AUTOMATIC1111 applies them, composed.

A style's prompt that contains `{prompt}` has it replaced by the user's prompt; any other style prompt is
appended with ", ". Several styles apply one after another, and the negative prompt follows the same rules.
Where a part is empty no stray comma is left ("" + "flat vector" is "flat vector", not ", flat vector").
`apply_styles` composes rather than pastes (`core.compose`): no doubled words ("minimal logo for a coffee
brand" with "flat vector logo of {prompt}" is "flat vector minimal logo for a coffee brand"), no "of on"
before a scene, and a scene replaces the styles' own backgrounds. `merge_prompt` is A1111's literal rule.

Files: A1111's `styles.csv` (header `name,prompt,negative_prompt`; UTF-8 with or without BOM; rows whose
name starts with `#` are comments; the old `text` column is read as `prompt`) and Fooocus's style JSON (a
list of `{"name", "prompt", "negative_prompt"}`). Nothing read from a file is evaluated.

A styles.csv is often opened in a spreadsheet, which runs a cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return as a formula. Written files put a `'` before such a cell (OWASP's advice for CSV injection),
and reading takes that `'` off again, so an exported file imports back unchanged. The store of the team's
own styles carries one more column, `owner` (who may change the style; empty: only admins).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.compose import compose_all, uncompose, uncompose_negative
from core.errors import StylesFileError as StylesFileError  # importable from here too
from core.requests import MAX_PROMPT_CHARS, MAX_STYLES, check_style_name

PLACEHOLDER = "{prompt}"
MAX_STYLES_PER_REQUEST = MAX_STYLES
MAX_STYLES_FILE_BYTES = 2 * 2**20
MAX_STYLES_IN_FILE = 5000

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
OWNER_COLUMN = "owner"


class Style(BaseModel):
    """One style: a name, a prompt template and a negative prompt template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_style_name(value)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


# --- applying -----------------------------------------------------------------------------------------


def merge_prompt(template: str, prompt: str) -> str:
    """One style template applied to one prompt (A1111's `merge_prompts`, without stray commas)."""
    if PLACEHOLDER in template:
        if prompt.strip():
            return template.replace(PLACEHOLDER, prompt)
        # An empty prompt: join the template's pieces so that no ", ," or leading comma is left behind.
        pieces = [p.strip(" ,") for p in template.split(PLACEHOLDER)]
        return ", ".join(p for p in pieces if p)
    return ", ".join(part for part in (prompt.strip(), template.strip()) if part)


def apply_styles(
    prompt: str, negative: str, styles: Iterable[Style], *, scene: bool = False
) -> tuple[str, str]:
    """(prompt, negative prompt) with each style applied in order, composed by the rules of `core.compose`
    (`scene`: the prompt is a scene, as Replace background's text is)."""
    templates = [(style.prompt, style.negative_prompt) for style in styles]
    return compose_all(prompt, negative, templates, scene=scene)


def _unmerge(template: str, merged: str) -> str | None:
    """The prompt that `merge_prompt(template, prompt)` turned into `merged`, or None if it cannot have."""
    if PLACEHOLDER in template:
        left, _, right = template.partition(PLACEHOLDER)
        if merged.startswith(left) and merged.endswith(right) and len(merged) >= len(left) + len(right):
            candidate = merged[len(left) : len(merged) - len(right)]
            if candidate.strip() and merge_prompt(template, candidate) == merged:
                return candidate
        return "" if merge_prompt(template, "") == merged else None
    style_text = template.strip()
    if not style_text:
        return merged.strip()
    if merged == style_text:
        return ""
    suffix = ", " + style_text
    if merged.endswith(suffix):
        return merged[: -len(suffix)]
    return None


def _strip_literally(prompt: str, negative: str, styles: Sequence[Style]) -> tuple[str, str] | None:
    for style in reversed(styles):
        before = _unmerge(style.prompt, prompt)
        before_negative = _unmerge(style.negative_prompt, negative)
        if before is None or before_negative is None:
            return None
        prompt, negative = before, before_negative
    return prompt, negative


def _strip_composed(
    prompt: str, negative: str, styles: Sequence[Style], drop: bool
) -> tuple[str, str] | None:
    for style in reversed(styles):
        before = uncompose(style.prompt, prompt, drop_background=drop)
        before_negative = uncompose_negative(style.negative_prompt, negative, drop_background=drop)
        if before is None or before_negative is None:
            return None
        prompt, negative = before, before_negative
    return prompt, negative


def strip_styles(
    prompt: str, negative: str, styles: Sequence[Style], *, search: bool = True
) -> tuple[str, str] | None:
    """The user's (prompt, negative) before `styles` were applied, or None when the text does not carry
    them (edited by hand, or the styles changed since). A1111 does this when an infotext is pasted.

    What is returned gives back the text exactly through `apply_styles`. The text is first taken apart as
    A1111's literal rule made it; with `search`, also as the composing rules may have (several ways of
    taking it apart are tried and checked)."""
    typed = _strip_literally(prompt, negative, styles)
    if typed is not None and apply_styles(*typed, styles) == (prompt, negative):
        return typed
    if not search:
        return None
    for drop in (False, True):  # whether the typed prompt brought its own background
        typed = _strip_composed(prompt, negative, styles, drop)
        if typed is not None and apply_styles(*typed, styles) == (prompt, negative):
            return typed
    return None


def extract_styles(prompt: str, negative: str, styles: Sequence[Style]) -> tuple[list[str], str, str]:
    """Guess which of `styles` made (prompt, negative), as A1111 does when an infotext without style names
    is pasted: take off one matching style at a time (a style must match both its parts and have text).
    Returns (style names in the order they were applied, prompt, negative); applying them gives back the
    text exactly."""
    found: list[Style] = []
    left = [style for style in styles if style.prompt.strip() or style.negative_prompt.strip()]
    while True:
        for style in left:
            typed = strip_styles(prompt, negative, [style], search=False)
            if typed is not None and typed != (prompt, negative):
                prompt, negative = typed
                found.append(style)
                left.remove(style)
                break
        else:
            break
    return [style.name for style in reversed(found)], prompt, negative


# --- files --------------------------------------------------------------------------------------------


def _check_size(data: bytes, what: str) -> None:
    if len(data) > MAX_STYLES_FILE_BYTES:
        raise StylesFileError(
            f"{what} is {len(data) / 2**20:.1f} MB; at most {MAX_STYLES_FILE_BYTES // 2**20} MB is read"
        )


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StylesFileError(f"{what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _style(where: str, **fields: object) -> Style:
    try:
        return Style(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            if e["loc"]
            else str(e["msg"])
            for e in exc.errors()
        )
        raise StylesFileError(f"{where}: {problems}") from None


def _dedupe(styles: list[Style]) -> list[Style]:
    """A later style of the same name replaces an earlier one (as in A1111), keeping the first position."""
    by_name: dict[str, Style] = {}
    for style in styles:
        by_name[style.name] = style
    return list(by_name.values())


def escape_cell(text: str) -> str:
    """`text` safe to open in a spreadsheet: a `'` before a cell that would start a formula (after any `'`
    it starts with, so that `unescape_cell` can tell an added quote from one that was there)."""
    return "'" + text if text.lstrip("'").startswith(FORMULA_STARTS) else text


def unescape_cell(text: str) -> str:
    """The text `escape_cell` was given."""
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS) else text


def read_styles_csv(data: bytes) -> list[Style]:
    """Styles from an A1111 `styles.csv`. Raises StylesFileError naming the row for a malformed one
    (rows are CSV records, the header is row 1; a quoted value may span several lines)."""
    return [style for style, _ in read_owned_styles_csv(data).values()]


def read_owned_styles_csv(data: bytes) -> dict[str, tuple[Style, str]]:
    """{name: (style, owner)} from a styles.csv; the owner is the `owner` column ("" without one)."""
    _check_size(data, "the styles file")
    text = _decode(data, "the styles file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise StylesFileError(f"row 1: {exc}") from None
    if header is None:
        return {}
    columns = [c.strip().lower() for c in header]
    if "name" not in columns:
        raise StylesFileError(
            "row 1: the header must name the columns name,prompt,negative_prompt "
            f"(found {','.join(header)[:100]!r})"
        )
    prompt_column = "prompt" if "prompt" in columns else "text" if "text" in columns else None
    styles: list[Style] = []
    owners: dict[str, str] = {}
    row_number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise StylesFileError(f"row {row_number + 1}: {exc}") from None
        row_number += 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            raise StylesFileError(
                f"row {row_number}: {len(row)} values but the header has {len(columns)} columns "
                "(quote values that contain commas)"
            )
        values = {column: unescape_cell(cell) for column, cell in zip(columns, row, strict=False)}
        name = values.get("name", "").strip()
        if name.startswith("#"):
            continue
        style = _style(
            f"row {row_number}",
            name=name,
            prompt=values.get(prompt_column, "") if prompt_column else "",
            negative_prompt=values.get("negative_prompt", ""),
        )
        styles.append(style)
        owners[style.name] = values.get(OWNER_COLUMN, "").strip()
        if len(styles) > MAX_STYLES_IN_FILE:
            raise StylesFileError(f"more than {MAX_STYLES_IN_FILE} styles in one file")
    return {style.name: (style, owners[style.name]) for style in _dedupe(styles)}


def write_styles_csv(styles: Iterable[Style], owners: Mapping[str, str] | None = None) -> bytes:
    """An A1111 `styles.csv` (UTF-8 with BOM, as A1111 writes it; values quoted where needed, formula-like
    cells escaped). With `owners` ({style name: owner}), an `owner` column too."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    extra = [OWNER_COLUMN] if owners is not None else []
    writer.writerow(["name", "prompt", "negative_prompt", *extra])
    for style in styles:
        cells = [style.name, style.prompt, style.negative_prompt]
        if owners is not None:
            cells.append(owners.get(style.name, ""))
        writer.writerow([escape_cell(cell) for cell in cells])
    return out.getvalue().encode("utf-8-sig")


_FOOOCUS_KEYS = frozenset({"name", "prompt", "negative_prompt"})


def read_fooocus_styles(data: bytes) -> list[Style]:
    """Styles from a Fooocus style JSON file: a list of {"name", "prompt", "negative_prompt"}."""
    _check_size(data, "the style file")
    try:
        items = json.loads(_decode(data, "the style file"))
    except json.JSONDecodeError as exc:
        raise StylesFileError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(items, list):
        raise StylesFileError('a Fooocus style file is a JSON list of {"name", "prompt", "negative_prompt"}')
    if len(items) > MAX_STYLES_IN_FILE:
        raise StylesFileError(f"more than {MAX_STYLES_IN_FILE} styles in one file")
    styles = []
    for number, item in enumerate(items, start=1):
        where = f"entry {number}"
        if not isinstance(item, dict):
            raise StylesFileError(f"{where}: must be an object with name, prompt and negative_prompt")
        unknown = sorted(set(item) - _FOOOCUS_KEYS)
        if unknown:
            raise StylesFileError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        for key in _FOOOCUS_KEYS & set(item):
            if not isinstance(item[key], str):
                raise StylesFileError(f"{where}: {key} must be a string")
        styles.append(_style(where, **{"prompt": "", "negative_prompt": "", **item}))
    return _dedupe(styles)


def read_styles(data: bytes, fmt: str = "auto") -> list[Style]:
    """Styles from a file in `fmt` ("csv", "fooocus", or "auto": JSON when the text starts with "[")."""
    if fmt == "auto":
        fmt = "fooocus" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[") else "csv"
    if fmt == "csv":
        return read_styles_csv(data)
    if fmt == "fooocus":
        return read_fooocus_styles(data)
    raise StylesFileError(f"unknown styles format {fmt!r}; use csv or fooocus")
