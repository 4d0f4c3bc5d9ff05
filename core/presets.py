"""Presets: named bundles of styles and settings ("Logo — flat vector (1:1)"), and the book that keeps them.

A preset is a small JSON file validated by the same rules as a generation request (unknown keys, unknown
samplers, out-of-range values and oversized files are rejected; nothing in it is evaluated). Shipped presets
live in `presets/*.json`, the team's own in `presets/user/*.json`; styles in `presets/styles.csv` (shipped)
and `presets/user/styles.csv` (imported or edited by the team).

Rules the book keeps:

- A broken file is reported (`problems`: file name and reason, also logged) and skipped; the rest load.
- Saving, renaming and deleting touch user presets only; shipped presets are read-only.
- A user preset cannot take a shipped preset's name (saving refuses; a file placed there by hand is reported
  as a problem), so a name always means one preset.
- A user style with the same name as a shipped style replaces it: that is how a team tunes a shipped style
  (remove it from `presets/user/styles.csv` to get the shipped one back).
- Files are re-read on every call, so what one teammate saves the others see; writes are atomic.
- Ownership is recorded here and decided by the Studio: a user preset keeps its `author`, a user style its
  `owner` (a column of `presets/user/styles.csv`); empty means the team's (only admins may change it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.aspect import parse_ratio, size_for
from core.compose import compose, compose_all, compose_negative
from core.errors import AspectError, StylesFileError
from core.errors import PresetError as PresetError  # importable from here too
from core.requests import (
    MAX_BATCH_COUNT,
    MAX_BATCH_SIZE,
    MAX_PROMPT_CHARS,
    GenerationRequest,
    check_style_name,
)
from core.styles import (
    MAX_STYLES_PER_REQUEST,
    Style,
    apply_styles,
    read_owned_styles_csv,
    read_styles,
    read_styles_csv,
    write_styles_csv,
)

log = logging.getLogger(__name__)

MAX_PRESET_BYTES = 64 * 1024
MAX_PRESET_NAME = 80
MAX_PRESETS = 500
STYLES_FILE = "styles.csv"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Preset fields that are request fields of the same name, set as they are.
SETTING_FIELDS = ("sampler", "schedule_type", "steps", "cfg_scale", "batch_size", "batch_count", "model")


def check_preset_name(name: str) -> str:
    """A preset name: 1–80 characters, no path parts (`/`, `\\`, `..`), no control characters or NUL."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a preset name must not be empty")
    if name != name.strip():
        raise ValueError(f"preset name {name!r} must not start or end with spaces")
    if len(name) > MAX_PRESET_NAME:
        raise ValueError(f"preset name is longer than {MAX_PRESET_NAME} characters")
    if "\x00" in name or _CONTROL.search(name):
        raise ValueError("a preset name must not contain NUL or control characters")
    if "/" in name or "\\" in name or ".." in name or os.path.isabs(name) or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"preset name {name!r} must not contain '/', '\\' or '..' (it is not a path)")
    return name


def slug(name: str) -> str:
    """A safe file stem for a preset name: "Logo — flat vector (1:1)" → "logo-flat-vector-1-1"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return stem or "preset"


class Preset(BaseModel):
    """A named bundle of styles and settings. Settings left out (None) leave the current value alone.

    Size: `aspect` ("4:5") gives a size around the model family's native area; `width`/`height` give a
    fixed size (both or neither). With both, the fixed size is used and must have the aspect.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    description: str = Field("", max_length=500)
    styles: tuple[str, ...] = Field((), max_length=MAX_STYLES_PER_REQUEST)
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="Template applied to the prompt box")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    sampler: str | None = None
    schedule_type: str | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    aspect: str | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_SIZE)
    batch_count: int | None = Field(None, ge=1, le=MAX_BATCH_COUNT)
    author: str = Field("", max_length=200, description="Who saved it (user presets); empty: the team's")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_preset_name(value)

    @field_validator("styles")
    @classmethod
    def _styles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            check_style_name(name)
        if len(set(value)) != len(value):
            raise ValueError("a style is listed twice")
        return value

    @field_validator("aspect")
    @classmethod
    def _aspect(cls, value: str | None) -> str | None:
        if value is not None:
            parse_ratio(value)
        return value

    @model_validator(mode="after")
    def _valid_settings(self) -> Preset:
        # The settings must make a valid request: the request model's own rules (ranges, multiples of 8,
        # known sampler, schedule the sampler supports) are applied to them.
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither (and an aspect ratio)")
        values = {
            key: getattr(self, key)
            for key in (*SETTING_FIELDS, "width", "height", "prompt", "negative_prompt")
            if getattr(self, key) is not None
        }
        if "schedule_type" in values and "sampler" not in values:
            raise ValueError("a schedule type needs the sampler it goes with")
        try:
            GenerationRequest(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ValueError(problems) from None
        if self.aspect and self.width is not None and self.height is not None:
            if abs(self.width / self.height / parse_ratio(self.aspect) - 1) > 0.03:
                raise ValueError(
                    f"width × height {self.width}×{self.height} does not have the aspect {self.aspect}"
                )
        return self


def apply_preset(preset: Preset, fields: Mapping[str, object], *, family: str | None) -> dict[str, object]:
    """Request `fields` with the preset's settings applied over them.

    Its styles replace the fields' styles; its prompt templates are composed into the prompt and negative
    prompt as a style's are (`core.compose`); its size is its fixed width × height, or the aspect ratio's size for `family`
    (with no family: around the area of the fields' current size).
    """
    result = dict(fields)
    for key in SETTING_FIELDS:
        value = getattr(preset, key)
        if value is not None and (key != "model" or value):
            result[key] = value
    result["styles"] = tuple(preset.styles)
    if preset.prompt:
        result["prompt"] = compose(preset.prompt, str(result.get("prompt") or ""))
    if preset.negative_prompt:
        result["negative_prompt"] = compose_negative(
            preset.negative_prompt, str(result.get("negative_prompt") or "")
        )
    if preset.width is not None and preset.height is not None:
        result["width"], result["height"] = preset.width, preset.height
    elif preset.aspect:
        if family is None:
            width, height = result.get("width", 512), result.get("height", 512)
            edge = round(math.sqrt(int(cast(float, width)) * int(cast(float, height))))
            result["width"], result["height"] = size_for(preset.aspect, edge=edge)
        else:
            result["width"], result["height"] = size_for(preset.aspect, family)
    return result


def compose_scene(
    preset: Preset | None, styles: Sequence[Style], scene: str, negative: str = ""
) -> tuple[str, str]:
    """(prompt, negative) for Replace background: the user's `scene` ("on a white marble kitchen counter")
    with the preset's own prompt templates and then `styles` (the Style objects the operation applies: the
    preset's styles and its own) composed around it as a scene. The scene replaces the templates' default
    background, which stays only when no scene is given."""
    templates = [(preset.prompt, preset.negative_prompt)] if preset is not None else []
    templates += [(style.prompt, style.negative_prompt) for style in styles]
    return compose_all(scene, negative, templates, scene=True)


def read_preset(data: bytes, where: str = "preset") -> Preset:
    """A preset from JSON bytes. Raises PresetError with a readable reason."""
    if len(data) > MAX_PRESET_BYTES:
        raise PresetError(f"{where}: {len(data)} bytes; a preset file may have at most {MAX_PRESET_BYTES}")
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PresetError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PresetError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise PresetError(f"{where}: a preset is a JSON object")
    try:
        return Preset.model_validate(raw)
    except (ValidationError, AspectError) as exc:
        raise PresetError(f"{where}: {_describe(exc)}") from None


def preset_json(preset: Preset) -> bytes:
    """The preset as the JSON a preset file holds (settings left out are not written)."""
    data = preset.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data = {"name": preset.name, **data}
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _describe(exc: Exception) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()))
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "unknown key"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Problem:
    """A preset or styles file that was skipped, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class PresetEntry:
    preset: Preset
    path: Path
    shipped: bool


class PresetBook:
    """Shipped and user presets and styles, read from their folders (see the module notes for the rules)."""

    def __init__(self, shipped_dir: Path | None, user_dir: Path | None) -> None:
        self.shipped_dir = shipped_dir
        self.user_dir = user_dir

    # -- reading ---------------------------------------------------------------------------------
    def _scan(self) -> tuple[dict[str, PresetEntry], list[Problem]]:
        entries: dict[str, PresetEntry] = {}
        problems: list[Problem] = []
        for folder, shipped in ((self.shipped_dir, True), (self.user_dir, False)):
            if folder is None or not folder.is_dir():
                continue
            files = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
            for path in files[:MAX_PRESETS]:
                label = path.name if shipped else f"user/{path.name}"
                try:
                    if path.is_symlink() or not path.is_file():
                        raise PresetError(f"{label}: not a regular file")
                    if path.stat().st_size > MAX_PRESET_BYTES:
                        raise PresetError(
                            f"{label}: {path.stat().st_size} bytes; a preset file may have at most {MAX_PRESET_BYTES}"
                        )
                    preset = read_preset(path.read_bytes(), label)
                    if preset.name in entries:
                        other = entries[preset.name]
                        raise PresetError(
                            f"{label}: the name {preset.name!r} is already used by "
                            f"{'shipped preset ' if other.shipped else ''}{other.path.name}"
                        )
                except (PresetError, OSError) as exc:
                    reason = str(exc).removeprefix(f"{label}: ")
                    log.warning("preset file %s skipped: %s", label, reason)
                    problems.append(Problem(label, reason))
                    continue
                entries[preset.name] = PresetEntry(preset, path, shipped)
            if len(files) > MAX_PRESETS:
                problems.append(
                    Problem(str(folder.name), f"more than {MAX_PRESETS} presets; the rest are skipped")
                )
        return entries, problems

    def presets(self) -> list[Preset]:
        """Every preset that loaded: shipped ones first, then the user's, each in file-name order."""
        return [entry.preset for entry in self._scan()[0].values()]

    def get(self, name: str) -> Preset:
        entries = self._scan()[0]
        if name not in entries:
            raise PresetError(f"Unknown preset {name!r}")
        return entries[name].preset

    def entry(self, name: str) -> PresetEntry:
        """The preset with this name, with its file and whether it is shipped. PresetError when unknown."""
        entry = self._scan()[0].get(name)
        if entry is None:
            raise PresetError(f"Unknown preset {name!r}")
        return entry

    def is_shipped(self, name: str) -> bool:
        entry = self._scan()[0].get(name)
        return entry is not None and entry.shipped

    def problems(self) -> list[Problem]:
        """Files that were skipped and why (presets and styles)."""
        problems = self._scan()[1]
        for path in self._style_files():
            try:
                self._read_style_file(path)
            except (StylesFileError, OSError) as exc:
                problems.append(Problem(self._label(path), str(exc)))
        return problems

    # -- changing user presets -------------------------------------------------------------------
    def _user_folder(self) -> Path:
        if self.user_dir is None:
            raise PresetError("No folder for user presets is configured")
        return self.user_dir

    def save(self, preset: Preset, *, replace: bool = False) -> Path:
        """Write `preset` to the user folder (atomically). A shipped preset's name is refused; an existing
        user preset of that name is replaced only with `replace`."""
        folder = self._user_folder()
        entries, _ = self._scan()
        existing = entries.get(preset.name)
        if existing is not None and existing.shipped:
            raise PresetError(f"{preset.name!r} is a shipped preset; save yours under another name")
        if existing is not None and not replace:
            raise PresetError(
                f"A preset named {preset.name!r} exists already; pick another name or replace it"
            )
        path = existing.path if existing is not None else self._free_path(folder, preset.name, entries)
        _write_atomic(path, preset_json(preset))
        log.info("preset %r saved to %s", preset.name, path)
        return path

    def _free_path(self, folder: Path, name: str, entries: Mapping[str, PresetEntry]) -> Path:
        stem = slug(name)
        taken = {e.path.name for e in entries.values() if not e.shipped}
        path, n = folder / f"{stem}.json", 2
        while path.name in taken or path.exists():
            path, n = folder / f"{stem}-{n}.json", n + 1
        return path

    def _user_entry(self, name: str, action: str) -> PresetEntry:
        entry = self._scan()[0].get(name)
        if entry is None:
            raise PresetError(f"Unknown preset {name!r}")
        if entry.shipped:
            raise PresetError(
                f"{name!r} is a shipped preset and cannot be {action}; only your own presets can"
            )
        return entry

    def rename(self, old: str, new: str) -> Preset:
        """Give a user preset a new name (its file is renamed to match)."""
        try:
            check_preset_name(new)
        except ValueError as exc:
            raise PresetError(str(exc)) from None
        entry = self._user_entry(old, "renamed")
        if new == old:
            return entry.preset
        if new in self._scan()[0]:
            raise PresetError(f"A preset named {new!r} exists already")
        renamed = entry.preset.model_copy(update={"name": new})
        if slug(new) == entry.path.stem:  # the same file name: rewrite in place
            _write_atomic(entry.path, preset_json(renamed))
            return renamed
        others = {k: v for k, v in self._scan()[0].items() if k != old}
        target = self._free_path(self._user_folder(), new, others)
        _write_atomic(target, preset_json(renamed))
        entry.path.unlink(missing_ok=True)
        log.info("preset %r renamed to %r (%s)", old, new, target.name)
        return renamed

    def delete(self, name: str) -> None:
        """Remove a user preset's file. Shipped presets refuse."""
        entry = self._user_entry(name, "deleted")
        entry.path.unlink(missing_ok=True)
        log.info("preset %r deleted", name)

    # -- styles ----------------------------------------------------------------------------------
    def _style_files(self) -> list[Path]:
        folders = (self.shipped_dir, self.user_dir)
        return [
            folder / STYLES_FILE
            for folder in folders
            if folder is not None and (folder / STYLES_FILE).is_file()
        ]

    def _label(self, path: Path) -> str:
        return (
            f"user/{path.name}" if self.user_dir is not None and path.parent == self.user_dir else path.name
        )

    def _read_style_file(self, path: Path) -> list[Style]:
        return read_styles_csv(path.read_bytes())

    def _user_styles(self) -> dict[str, tuple[Style, str]]:
        if self.user_dir is None or not (self.user_dir / STYLES_FILE).is_file():
            return {}
        return read_owned_styles_csv((self.user_dir / STYLES_FILE).read_bytes())

    def style_owners(self) -> dict[str, str]:
        """{name: owner} of the user styles (`presets/user/styles.csv`); "" for a style without an owner.
        Shipped styles are not listed."""
        try:
            return {name: owner for name, (_, owner) in self._user_styles().items()}
        except (StylesFileError, OSError):
            return {}

    def styles(self) -> list[Style]:
        """Every style: shipped ones (replaced by a user style of the same name), then the user's own.
        A styles file that cannot be read is skipped (and listed in `problems`)."""
        merged: dict[str, Style] = {}
        for path in self._style_files():
            try:
                styles = self._read_style_file(path)
            except (StylesFileError, OSError) as exc:
                log.warning("styles file %s skipped: %s", self._label(path), exc)
                continue
            for style in styles:
                merged[style.name] = style
        return list(merged.values())

    def styles_named(self, names: Iterable[str]) -> list[Style]:
        """The styles with these names, in this order. Raises KeyError naming the first unknown one."""
        known = {style.name: style for style in self.styles()}
        found = []
        for name in names:
            if name not in known:
                raise KeyError(name)
            found.append(known[name])
        return found

    def expand(
        self, prompt: str, negative: str, names: Iterable[str], *, scene: bool = False
    ) -> tuple[str, str]:
        """(prompt, negative) with the named styles applied (`scene`: the prompt is a scene, as Replace
        background's text is). KeyError for an unknown style name."""
        return apply_styles(prompt, negative, self.styles_named(names), scene=scene)

    def import_styles(self, data: bytes, fmt: str = "auto", *, owner: str = "") -> list[Style]:
        """Add the styles in an A1111 styles.csv or a Fooocus style JSON to the user's styles file; a style
        of the same name is replaced. Returns the styles imported. StylesFileError for a bad file."""
        incoming = read_styles(data, fmt)
        if not incoming:
            raise StylesFileError("the file has no styles")
        return self.add_styles(incoming, owner=owner)

    def add_styles(self, styles: Iterable[Style], *, owner: str = "") -> list[Style]:
        """Write `styles` into the user styles file, replacing those of the same name (which keep their
        owner); new ones get `owner`. Returns the styles written."""
        added = list(styles)
        folder = self._user_folder()
        merged = self._user_styles()
        for style in added:
            merged[style.name] = (style, merged[style.name][1] if style.name in merged else owner)
        data = write_styles_csv([s for s, _ in merged.values()], {n: o for n, (_, o) in merged.items()})
        _write_atomic(folder / STYLES_FILE, data)
        log.info("%d style(s) imported into %s", len(added), folder / STYLES_FILE)
        return added

    def export_styles(self) -> bytes:
        """Every style as an A1111 styles.csv."""
        return write_styles_csv(self.styles())
