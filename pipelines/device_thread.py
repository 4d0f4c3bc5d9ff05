"""One long-lived thread per device that runs every job of that device, one after another.

A job used to get a thread of its own. Per-thread state then died with each job: the CUDA graphs torch.compile
records (kept per thread), the current CUDA stream, thread-local caches. The device thread keeps them from one
job to the next. It starts with the first job (nothing runs at import or construction) and, being a daemon,
never holds up the process's exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
_STOP = object()


class DeviceThread:
    """Runs submitted callables in order on one thread of its own."""

    def __init__(self, name: str = "easel-device") -> None:
        self.name = name
        self._tasks: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Queue `work`; its Future gives its result or raises its exception. A Future cancelled before its work
        started is skipped."""
        future: Future[T] = Future()
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        self._tasks.put((future, work))
        return future

    def close(self) -> None:
        """Stop the thread once the work queued so far has run (a later submit starts a new one)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._tasks.put(_STOP)
            if thread is not threading.current_thread():
                thread.join(timeout=60)

    @property
    def ident(self) -> int | None:
        """The thread's id once it has started (jobs run there), else None."""
        return self._thread.ident if self._thread is not None else None

    def _loop(self) -> None:
        while (task := self._tasks.get()) is not _STOP:
            future, work = task  # type: ignore[misc]
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)
