"""A job queue that is fair across users: round-robin between users, first-in first-out within one."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

from studio.jobs import Job


class QueueFull(RuntimeError):
    """The queue holds as many jobs as it may."""


class FairQueue:
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._by_user: OrderedDict[str, deque[Job]] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._by_user.values())

    def put(self, job: Job) -> None:
        with self._cond:
            if sum(len(q) for q in self._by_user.values()) >= self.max_size:
                raise QueueFull(f"The queue is full ({self.max_size} jobs waiting). Try again in a moment.")
            self._by_user.setdefault(job.user, deque()).append(job)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Job | None:
        """The next job in fair order, or None on timeout or after close()."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._by_user, timeout):
                return None
            if self._closed:
                return None
            user, jobs = next(iter(self._by_user.items()))
            job = jobs.popleft()
            # this user goes to the back of the round
            del self._by_user[user]
            if jobs:
                self._by_user[user] = jobs
            return job

    def remove(self, job: Job) -> bool:
        with self._cond:
            jobs = self._by_user.get(job.user)
            if jobs is None or job not in jobs:
                return False
            jobs.remove(job)
            if not jobs:
                del self._by_user[job.user]
            return True

    def position(self, job: Job) -> int | None:
        """1-based place of `job` in the order the worker will take jobs; None if not queued."""
        with self._cond:
            order = self._order()
        try:
            return order.index(job) + 1
        except ValueError:
            return None

    def _order(self) -> list[Job]:
        queues = [list(q) for q in self._by_user.values()]
        order: list[Job] = []
        depth = 0
        while any(depth < len(q) for q in queues):
            order.extend(q[depth] for q in queues if depth < len(q))
            depth += 1
        return order

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
