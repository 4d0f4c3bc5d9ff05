"""Changing presets and styles with their ownership checked.

Reading them is the PresetBook's own (`studio.presets_book`). A user preset or style is its author's: only they
or an admin may change it (NotAllowed otherwise); shipped ones are read-only here, and one without an author is
the team's (admins only). PresetError / StylesFileError carry user-facing messages.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import NotAllowed, StylesFileError
from core.presets import Preset, PresetBook
from core.styles import Style, read_styles
from studio.roles import Roles, may_change, whose


class Presets:
    """Preset and style changes on behalf of a user."""

    def __init__(self, book: PresetBook, roles: Roles) -> None:
        self.book = book
        self.roles = roles

    def check_preset(self, name: str, user: str, verb: str) -> Preset:
        """The preset, if `user` may `verb` it (NotAllowed otherwise; PresetError when there is none)."""
        entry = self.book.entry(name)
        if not entry.shipped and not may_change(entry.preset.author, user, admin=self.roles.is_admin(user)):
            raise NotAllowed(
                f"Not allowed: the preset {name!r} is {whose(entry.preset.author)}; only its author or an admin "
                f"can {verb} it. Nothing was changed."
            )
        return entry.preset

    def save_preset(self, preset: Preset, *, user: str, replace: bool = False) -> Path:
        """Save `preset` as `user`'s. Replacing one is for its author or an admin (who leaves it its author)."""
        author = user
        if replace and preset.name in {p.name for p in self.book.presets()}:
            author = self.check_preset(preset.name, user, "replace").author or user
        return self.book.save(preset.model_copy(update={"author": author}), replace=replace)

    def rename_preset(self, old: str, new: str, *, user: str) -> Preset:
        self.check_preset(old, user, "rename")
        return self.book.rename(old, new)

    def delete_preset(self, name: str, *, user: str) -> None:
        self.check_preset(name, user, "delete")
        self.book.delete(name)

    def import_styles(self, data: bytes, fmt: str = "auto", *, user: str) -> list[Style]:
        """Add the file's new and changed styles to the team's styles, as `user`'s (unchanged ones are skipped);
        returns them. Changing a style that is not theirs (a shipped one, the team's or another user's) is for
        admins: otherwise NotAllowed, naming them, and nothing is imported."""
        changed = self.styles_to_import(data, fmt, user=user)
        return self.book.add_styles(changed, owner=user) if changed else []

    def styles_to_import(self, data: bytes, fmt: str = "auto", *, user: str) -> list[Style]:
        """The file's new and changed styles, if `user` may import them (see `import_styles`); changes nothing."""
        incoming = read_styles(data, fmt)
        if not incoming:
            raise StylesFileError("the file has no styles")
        current = {style.name: style for style in self.book.styles()}
        changed = [style for style in incoming if current.get(style.name) != style]
        if not self.roles.is_admin(user):
            owners = self.book.style_owners()
            taken = [s.name for s in changed if s.name in current and owners.get(s.name) != user]
            if taken:
                listed = ", ".join(
                    f"{name!r} ({'shipped' if name not in owners else whose(owners[name])})"
                    for name in taken[:5]
                )
                more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
                raise NotAllowed(
                    f"Not allowed: the file changes styles that are not yours: {listed}{more}. Only an admin can "
                    f"change those for the team. Nothing was imported; give your versions new names (e.g. "
                    f"'{taken[0]} ({user})')."
                )
        return changed
