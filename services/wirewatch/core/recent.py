"""What a process remembers of its recent past, bounded: least recently used out first.

``RecentResults`` caches the last ``size`` values computed, by key. The same story reaches the
stream many times (wire copies, rewrites that keep most sentences), so a stage that remembers what
it computed for the last texts it saw spares the work on the next copy. Lookups are counted on
``wirewatch_cache_lookups_total`` by cache name.

``RecentKeys`` is the last ``size`` keys seen, without values (ids produced lately, deliveries
made lately): an in-process memory, not state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

from wirewatch.core import metrics

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentKeys(Generic[K]):
    """The ``size`` keys most recently added (``size`` 0: none kept)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, None] = OrderedDict()

    def add(self, key: K) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def update(self, keys: Iterable[K]) -> None:
        for key in keys:
            self.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class RecentResults(Generic[K, V]):
    """The values of the last ``size`` keys put (``size`` 0: none kept); thread-safe."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` (now the most recently used), or None; counted as a hit or
        a miss."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
        metrics.CACHE.labels(cache=self.name, outcome="miss" if found is None else "hit").inc()
        return found

    def get_many(
        self,
        keys: Iterable[K],
        compute: Callable[[list[K]], Sequence[V]],
        *,
        remember: bool | Callable[[K], bool] = True,
    ) -> dict[K, V]:
        """The value of each distinct key in ``keys``: the kept ones, and for the others what one
        call of ``compute`` (on those keys, in order) returns, kept too unless ``remember`` is
        False (or, a function, says False of the key: a text too long to be worth its memory)."""
        found: dict[K, V] = {}
        missing: list[K] = []
        with self._lock:  # one lock and one count per call: an article asks for dozens of keys
            items = self._items
            for key in dict.fromkeys(keys):
                value = items.get(key)
                if value is None:
                    missing.append(key)
                else:
                    items.move_to_end(key)
                    found[key] = value
        if found:
            metrics.CACHE.labels(cache=self.name, outcome="hit").inc(len(found))
        if missing:
            metrics.CACHE.labels(cache=self.name, outcome="miss").inc(len(missing))
            keep = remember if callable(remember) else (lambda _key: remember)
            for key, value in zip(missing, compute(missing), strict=True):
                found[key] = value
                if keep(key):
                    self.put(key, value)
        return found

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``; the least recently used go beyond ``size``."""
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every value (what they were computed from has changed)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
