"""Per-user AUTOMATIC1111 options (`/sdapi/v1/options`), kept in `outputs/.easel-options.json`.

What a user reads is A1111's defaults, overlaid with the server-wide values admins set, overlaid with the
user's own. Only the values that differ from the defaults are stored. The file is written atomically on every
change and read once at start; a damaged file is set aside (renamed `*.bad`) and the defaults are used.
The model choice (`sd_model_checkpoint`) is not kept here: the Studio holds it per user.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.a1111_options import DEFAULTS, READ_ONLY, SERVER_WIDE, A1111Options, unknown_keys
from core.errors import AdminOnly, OptionsError

log = logging.getLogger(__name__)

OPTIONS_FILE = ".easel-options.json"
_NOT_STORED = frozenset({"sd_model_checkpoint", *READ_ONLY})


def validated(values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`values` checked against the option types and coerced to them; OptionsError naming each bad key."""
    unknown = unknown_keys(dict(values))
    if unknown:
        raise OptionsError(f"{where}unknown option(s): {', '.join(unknown)} (see GET /sdapi/v1/options)")
    try:
        checked = A1111Options.model_validate({**DEFAULTS, **values})
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            key = ".".join(str(p) for p in item.get("loc", ()))
            problems.append(
                f"{where}{key}: {str(item.get('msg', 'invalid value')).removeprefix('Value error, ')}"
            )
        raise OptionsError("; ".join(problems)) from None
    dumped = checked.model_dump()
    return {key: dumped[key] for key in values}


class OptionsStore:
    """Options per user and server-wide, persisted to one small JSON file (None: in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._server: dict[str, Any] = {}
        self._users: dict[str, dict[str, Any]] = {}
        if path is not None:
            self._load(path)

    def values(self, user: str) -> dict[str, Any]:
        """Every option as `user` sees it."""
        with self._lock:
            return {**DEFAULTS, **self._server, **self._users.get(user, {})}

    def update(self, user: str, changes: Mapping[str, Any], *, admin: bool) -> dict[str, Any]:
        """Keep `changes` for `user` (server-wide keys for everyone; admins only). Returns what was kept.

        OptionsError for unknown keys or bad values, AdminOnly when a non-admin changes a server-wide key
        (sending a server-wide key back with the value it has is fine: clients post whole option sets).
        Nothing is kept unless everything can be.
        """
        checked = validated(changes)
        current = self.values(user)
        changed = {k: v for k, v in checked.items() if k not in _NOT_STORED and current.get(k) != v}
        server = sorted(k for k in changed if k in SERVER_WIDE)
        if server and not admin:
            raise AdminOnly(f"only an admin may change server-wide option(s): {', '.join(server)}")
        with self._lock:
            mine = self._users.setdefault(user, {})
            for key, value in changed.items():
                target = self._server if key in SERVER_WIDE else mine
                if value == DEFAULTS[key]:
                    target.pop(key, None)
                else:
                    target[key] = value
            if not mine:
                self._users.pop(user, None)
            snapshot = {"server": dict(self._server), "users": {u: dict(v) for u, v in self._users.items()}}
        if changed:
            self._save(snapshot)
        return changed

    # -- the file ----------------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            server = _stored(data.get("server", {}), SERVER_WIDE, inside=True)
            users = {
                str(user): _stored(values, SERVER_WIDE, inside=False)
                for user, values in dict(data.get("users", {})).items()
            }
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            bad = path.with_name(path.name + ".bad")
            log.warning("%s is unreadable (%s); moved to %s, using the defaults", path, exc, bad.name)
            try:
                path.replace(bad)
            except OSError:
                pass
            return
        self._server, self._users = server, {u: v for u, v in users.items() if v}

    def _save(self, snapshot: dict[str, Any]) -> None:
        if self.path is None:
            return
        from gallery.files import write_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"version": 1, **snapshot}, indent=1, sort_keys=True).encode())


def _stored(values: object, server_wide: frozenset[str], *, inside: bool) -> dict[str, Any]:
    """One stored section, checked like a client's options; keys of the other section are dropped."""
    if not isinstance(values, dict):
        raise TypeError("a section of the options file is not an object")
    dropped = sorted(unknown_keys(values))
    if dropped:
        log.warning("options file: dropped option(s) this version does not know: %s", ", ".join(dropped))
    kept = {
        k: v
        for k, v in values.items()
        if k not in dropped and (k in server_wide) == inside and k not in _NOT_STORED
    }
    return validated(kept)
