"""Who may change what: a picture, a preset or a user style belongs to its author; only the author or an admin
may delete, rename, overwrite or star it. Things without an author (shipped presets and styles, pictures copied
into outputs/ by hand, presets saved before authors were recorded) are the team's: only admins change them.
Without logins the one local user is an admin (`Roles.is_admin`).

The Studio asks these questions before every change and raises `NotAllowed` (with a message that says whose
the thing is and who may change it); the UI shows that message as an error, the HTTP API answers 403 with it.
"""

from __future__ import annotations

from core.errors import NotAllowed
from core.users import UserBook

LOCAL_USER = "local"  # the one user when there are no logins


class Roles:
    """Who is an admin: the logins marked so, and without logins the one local user."""

    def __init__(self, users: UserBook) -> None:
        self.users = users

    def is_admin(self, user: str) -> bool:
        """Admins may change or delete anyone's work. Without logins, the one local user is the admin."""
        return self.users.is_admin(user) or (user == LOCAL_USER and LOCAL_USER not in self.users)


def may_change(author: str, user: str, *, admin: bool) -> bool:
    """True when `user` may change (delete, rename, overwrite, star) something made by `author`."""
    return admin or (bool(author) and author == user)


def whose(author: str) -> str:
    """ "alice's" or "the team's" (no author), for messages."""
    return f"{author}'s" if author else "the team's"


def refuse_pictures(authors: list[str], verb: str) -> NotAllowed:
    """The refusal to `verb` ("delete", "restore", ...) pictures made by `authors` (the ones not the user's)."""
    names = sorted({whose(author) for author in authors})
    listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    count = "This picture is" if len(authors) == 1 else f"{len(authors)} of these pictures are"
    return NotAllowed(
        f"Not allowed: {count} {listed}; only a picture's author or an admin can {verb} it. Nothing was changed."
    )
