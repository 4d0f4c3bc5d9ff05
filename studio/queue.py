"""A job queue that is fair across users: round-robin between users, first-in first-out within one.

The next job comes from the waiting user who was served least recently (users never served first,
in order of arrival), so a user with many jobs cannot starve the others.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable

from core.errors import QueueFull
from core.errors import TooManyQueued as TooManyQueued  # importable from here
from studio.jobs import Job


class FairQueue:
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._waiting: dict[str, deque[tuple[int, Job]]] = {}
        self._last_served: dict[str, int] = {}
        self._ticks = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return self._size()

    def _size(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def put(self, job: Job) -> None:
        with self._cond:
            if self._size() >= self.max_size:
                raise QueueFull(f"The queue is full ({self.max_size} jobs waiting). Try again in a moment.")
            self._waiting.setdefault(job.user, deque()).append((next(self._ticks), job))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Job | None:
        """The next job in fair order, or None on timeout or after close()."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._waiting, timeout) or self._closed:
                return None
            user = _next_user(self._waiting, self._last_served)
            _, job = self._waiting[user].popleft()
            if not self._waiting[user]:
                del self._waiting[user]
            self._last_served[user] = next(self._ticks)
            return job

    def take_matching(
        self, matches: Callable[[Job], bool], room: int, size: Callable[[Job], int]
    ) -> list[Job]:
        """Take waiting jobs that `matches` accepts, in the order get() would give them, while their sizes fit in
        `room`; each one's user counts as served (a user's jobs are still taken oldest first)."""
        taken: list[Job] = []
        with self._cond:
            for job in self._order():
                if room < 1:
                    break
                if size(job) > room or not matches(job) or not self._is_next_of_user(job):
                    continue
                self._remove(job)
                self._last_served[job.user] = next(self._ticks)
                taken.append(job)
                room -= size(job)
        return taken

    def _is_next_of_user(self, job: Job) -> bool:
        return self._waiting[job.user][0][1] is job

    def remove(self, job: Job) -> bool:
        with self._cond:
            return self._remove(job)

    def _remove(self, job: Job) -> bool:
        jobs = self._waiting.get(job.user, deque())
        for item in jobs:
            if item[1] is job:
                jobs.remove(item)
                if not jobs:
                    del self._waiting[job.user]
                return True
        return False

    def waiting(self, user: str) -> list[Job]:
        """The user's waiting jobs, oldest first."""
        with self._cond:
            return [job for _, job in self._waiting.get(user, ())]

    def position(self, job: Job) -> int | None:
        """1-based place of `job` in the order the worker will take jobs; None if not queued."""
        with self._cond:
            order = self._order()
        for place, queued in enumerate(order, start=1):
            if queued is job:
                return place
        return None

    def ahead_of(self, job: Job) -> list[Job]:
        """The waiting jobs the worker will take before `job` (empty if it is not queued)."""
        with self._cond:
            order = self._order()
        for place, queued in enumerate(order):
            if queued is job:
                return order[:place]
        return []

    def _order(self) -> list[Job]:
        """Simulate the coming get() calls without changing anything."""
        pending = {u: deque(q) for u, q in self._waiting.items()}
        served = dict(self._last_served)
        tick = itertools.count(10**18)
        order: list[Job] = []
        while pending:
            user = _next_user(pending, served)
            order.append(pending[user].popleft()[1])
            if not pending[user]:
                del pending[user]
            served[user] = next(tick)
        return order

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _next_user(waiting: dict[str, deque[tuple[int, Job]]], served: dict[str, int]) -> str:
    """Whose turn it is: the waiting user served least recently (never-served first, by arrival)."""
    return min(waiting, key=lambda u: (served.get(u, -1), waiting[u][0][0]))
