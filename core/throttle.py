"""Login back-off: after repeated wrong passwords for a user name, or from an address, logins wait.

Each user name and each client address has its own count of recent failures. From `max_failures` on, that
name (or address) is locked for `base_seconds`, doubling with every further failure up to `max_seconds`; while
locked, attempts are refused without checking the password (so guessing stays slow and costs the server
nothing). A success clears the user name's count, not the address's (a valid login must not reset an
attacker's count on a shared address). Counts are forgotten `forget_seconds` after the last failure. Unknown
user names are counted like known ones, so the back-off says nothing about which names exist.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 10
BASE_SECONDS = 30.0
MAX_SECONDS = 3600.0
FORGET_SECONDS = 3600.0
MAX_TRACKED = 10_000  # names and addresses remembered at most (the oldest unlocked ones are dropped first)


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Thread-safe failure counts per user name and per address; `retry_after` says how long to wait."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        base_seconds: float = BASE_SECONDS,
        max_seconds: float = MAX_SECONDS,
        forget_seconds: float = FORGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self.max_failures = max_failures
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.forget_seconds = forget_seconds
        self._clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, user: str, address: str) -> int | None:
        """Whole seconds until `user` may try again from `address`, or None when they may try now."""
        now = self._clock()
        with self._lock:
            waits = [
                record.locked_until - now
                for record in (self._records.get(("user", user)), self._records.get(("address", address)))
                if record is not None and record.locked_until > now
            ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, user: str, address: str) -> None:
        """Count a wrong password for `user` from `address`."""
        now = self._clock()
        with self._lock:
            for key in (("user", user), ("address", address)):
                record = self._records.get(key)
                if record is None or now - record.last_failure > self.forget_seconds:
                    record = self._records[key] = _Record()
                record.failures += 1
                record.last_failure = now
                beyond = record.failures - self.max_failures
                if beyond >= 0:
                    record.locked_until = now + min(
                        self.max_seconds, self.base_seconds * 2 ** min(beyond, 32)
                    )
            if len(self._records) > MAX_TRACKED:
                self._forget(now)

    def succeeded(self, user: str) -> None:
        """A right password for `user`: their count starts again."""
        with self._lock:
            self._records.pop(("user", user), None)

    def _forget(self, now: float) -> None:
        """Drop records that are stale, then the oldest unlocked ones, to stay within MAX_TRACKED."""
        for key, record in list(self._records.items()):
            if now - record.last_failure > self.forget_seconds:
                del self._records[key]
        unlocked = sorted(
            (record.last_failure, key) for key, record in self._records.items() if record.locked_until <= now
        )
        for _, key in unlocked[: max(0, len(self._records) - MAX_TRACKED)]:
            del self._records[key]
