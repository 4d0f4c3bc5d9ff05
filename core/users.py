"""Who may use this instance: users from --auth, --auth-file and EASEL_AUTH, with optional hashed passwords.

An auth file has one user a line: `name:password`, or `name:pbkdf2_sha256$ITERATIONS$SALT_HEX$HASH_HEX`
(make one with `python -m core.users hash`), optionally followed by `:admin`. Blank lines and lines
starting with `#` are skipped. Admins may cancel anyone's job.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.errors import AuthConfigError as AuthConfigError  # importable from here too

_SCHEME = "pbkdf2_sha256"
_ITERATIONS = 200_000


@dataclass(frozen=True)
class User:
    name: str
    secret: str  # the plain password, or a pbkdf2_sha256$… hash
    admin: bool = False

    @property
    def hashed(self) -> bool:
        return self.secret.startswith(_SCHEME + "$")

    @property
    def iterations(self) -> int:
        """The hash's pbkdf2 iteration count (0 for a plain password)."""
        return int(self.secret.split("$")[1]) if self.hashed else 0

    def check(self, password: str) -> bool:
        if self.hashed:
            _, iterations, salt, digest = self.secret.split("$")
            computed = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
            return hmac.compare_digest(computed.hex(), digest)
        # digests of equal length: the time taken says nothing about the password's length either
        return hmac.compare_digest(_digest(password), _digest(self.secret))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def parse_entry(entry: str, where: str = "auth entry") -> User:
    """`name:password[:admin]`; the password may be a pbkdf2_sha256$… hash."""
    name, sep, rest = entry.strip().partition(":")
    admin = False
    if rest.endswith(":admin"):
        rest, admin = rest[: -len(":admin")], True
    if not sep or not name or not rest:
        raise AuthConfigError(f"{where}: expected name:password, got {entry.strip()[:40]!r}")
    if rest.startswith(_SCHEME + "$") and rest.count("$") != 3:
        raise AuthConfigError(f"{where}: malformed password hash for {name!r}")
    return User(name=name, secret=rest, admin=admin)


class UserBook:
    """The users allowed in, checked in constant time per password.

    A name that is not here is checked against a stand-in user with a hash of the same cost as the stored
    ones (a plain password when none is hashed), so a wrong name takes as long as a wrong password.
    """

    def __init__(self, users: Iterable[User] = ()) -> None:
        self._users: dict[str, User] = {}
        for user in users:
            self._users[user.name] = user
        iterations = max((u.iterations for u in self._users.values()), default=0)
        secret = (
            hash_password(secrets.token_hex(16), iterations=iterations)
            if iterations
            else secrets.token_hex(16)
        )
        self._stand_in = User(name="", secret=secret)

    @classmethod
    def from_sources(
        cls, entries: Iterable[str] = (), files: Iterable[Path] = (), env_value: str | None = None
    ) -> UserBook:
        """Users from `--auth` entries, auth files and EASEL_AUTH (comma-separated entries)."""
        users = [parse_entry(e, "--auth") for e in entries]
        if env_value:
            users += [parse_entry(e, "EASEL_AUTH") for e in env_value.split(",") if e.strip()]
        for path in files:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise AuthConfigError(f"cannot read auth file {path}: {exc.strerror}") from None
            for number, line in enumerate(lines, start=1):
                if line.strip() and not line.lstrip().startswith("#"):
                    users.append(parse_entry(line, f"{path}:{number}"))
        return cls(users)

    def __bool__(self) -> bool:
        return bool(self._users)

    def __contains__(self, name: str) -> bool:
        return name in self._users

    def names(self) -> list[str]:
        return sorted(self._users)

    def authenticate(self, name: str, password: str) -> bool:
        user = self._users.get(name)
        if user is None or (self._stand_in.hashed and not user.hashed):
            self._stand_in.check(password)  # the same work for every name, known or not, hashed or not
        return user is not None and user.check(password)

    def is_admin(self, name: str) -> bool:
        user = self._users.get(name)
        return bool(user and user.admin)

    def merged(self, other: UserBook) -> UserBook:
        return UserBook([*self._users.values(), *other._users.values()])


def main(argv: list[str]) -> int:
    """`python -m core.users hash` reads a password from stdin and prints its hash for an auth file."""
    if argv[:1] != ["hash"]:
        sys.stderr.write("usage: python -m core.users hash  (reads the password from standard input)\n")
        return 2
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        sys.stderr.write("empty password\n")
        return 2
    sys.stdout.write(hash_password(password) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
