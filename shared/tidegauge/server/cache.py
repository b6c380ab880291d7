"""A small bounded cache whose entries expire: authentication and authorization decisions, answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """At most ``size`` entries (and ``max_bytes`` by ``weigh``), each kept ``ttl_seconds``.

    Every entry lives equally long, so insertion order is expiry order: expired entries are dropped
    from the front at every call, and memory is freed without waiting for the same key to be asked
    again. When full, the oldest entry goes first.
    """

    def __init__(
        self,
        ttl_seconds: float,
        size: int,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        max_bytes: int | None = None,
        weigh: Callable[[K, V], int] = lambda key, value: 0,
    ) -> None:
        self._ttl = ttl_seconds
        self._size = size
        self._monotonic = monotonic
        self._max_bytes = max_bytes
        self._weigh = weigh
        self._entries: dict[K, tuple[float, V, int]] = {}
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """The weight of the entries held."""
        return self._bytes

    def get(self, key: K) -> V | None:
        self._expire(self._monotonic())
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0 or self._size <= 0:
            return
        now = self._monotonic()
        self._expire(now)
        self._discard(key)
        weight = self._weigh(key, value)
        limit = self._max_bytes
        if limit is not None and weight > limit:
            return
        while self._entries and (
            len(self._entries) >= self._size or (limit is not None and self._bytes + weight > limit)
        ):
            self._discard(next(iter(self._entries)))
        self._entries[key] = (now + self._ttl, value, weight)
        self._bytes += weight

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][0] > now:
                return
            self._discard(oldest)

    def _discard(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]
