"""Running torch work the way the app does: off the main thread.

PyTorch's CPU build uses GNU OpenMP, which keeps one worker pool per calling thread; once two pools exist
with more threads than cores it stops spin-waiting and CPU generation gets about a third slower. The app
never runs torch on its main thread, so neither do the benchmarks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def off_main(fn: Callable[[], T]) -> T:
    """Run `fn` on a fresh thread and return its result (its exception is raised here)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
