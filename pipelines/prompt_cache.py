"""Prompt embeddings kept between jobs: a team iterating on one prompt (new seeds, a tweak to CFG, a plot over
steps) encodes it once.

`PromptCache` is a small LRU per loaded model (it lives in the model's state and goes with it). The backend opens
`caching_prompts(cache, scope)` around a job; `prompt_weighting.prompt_embeddings` then answers from the cache.
The key is the job's `scope` — what else changes the text encoders' output: the LoRAs applied (names, weights and
file hashes), the textual-inversion embeddings loaded (their hashes) — with the text encoders themselves, the
prompt, the negative prompt and clip skip. Outside such a block nothing is cached.

The scope is held in a ContextVar, so it belongs to the job being run on the device thread and to nothing else.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_ACTIVE: ContextVar[tuple[PromptCache, Hashable] | None] = ContextVar("easel_prompt_cache", default=None)


class PromptCache:
    """The `size` most recently used prompt embeddings of one model."""

    def __init__(self, size: int = 32) -> None:
        if size < 1:
            raise ValueError("a prompt cache holds at least one entry")
        self.size = size
        self.hits = self.misses = 0
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]  # type: ignore[return-value]
        value = make()
        with self._lock:
            self.misses += 1
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)


@contextlib.contextmanager
def caching_prompts(cache: PromptCache, scope: Hashable) -> Iterator[None]:
    """Within the block, prompt embeddings come from `cache` under `scope` (see the module's docstring)."""
    token = _ACTIVE.set((cache, scope))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def cached(key: Hashable, make: Callable[[], T]) -> T:
    """`make()`, or its value from the active cache when a job opened one (the key joined with its scope)."""
    active = _ACTIVE.get()
    if active is None:
        return make()
    cache, scope = active
    return cache.get_or_make((scope, key), make)
