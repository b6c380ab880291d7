"""Full garbage-collection passes skip the series a server holds (``gc.freeze()`` after a large read),
yet a replaced view's series are still freed, and frozen cyclic garbage is collected once memory grows."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
from collections.abc import Iterator

import pytest

from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server import heap
from tidegauge.server.types import ExternalMetricValue
from tidegauge.server.view import FREEZE_EVERY, FollowedMetric
from tidegauge.store import Store

NOW = 1_790_000_000.0
QUEUES = 1_000
"""3,000 series: more than FREEZE_EVERY, so a full read freezes as it goes."""


@pytest.fixture
def frozen_heap() -> Iterator[None]:
    heap.enable()
    try:
        yield
    finally:
        heap.disable()


def write(redis: RedisServer, metric: str, value: float, queues: int = QUEUES) -> None:
    store = Store.connect(ConnectionSettings(redis.url), history_length=0)
    try:
        store.write(
            [
                Sample.of(metric, {"queue": f"q{n:04d}", "state": state}, value + n, NOW, source="test")
                for n in range(queues)
                for state in ("visible", "in_flight", "delayed")
            ]
        )
    finally:
        store.close()


def values_tracked(metric: str) -> int:
    """The metric's API values in the collector's generations (what its passes walk; not the frozen)."""
    return sum(1 for o in gc.get_objects() if isinstance(o, ExternalMetricValue) and o.metric_name == metric)


def test_full_read_leaves_the_held_series_out_of_collections(
    redis_server: RedisServer, frozen_heap: None
) -> None:
    # GIVEN a metric of 3,000 series and the freezing policy on (as in `tidegauge serve`)
    metric = "heap_held"
    write(redis_server, metric, 1.0)
    assert QUEUES * 3 > FREEZE_EVERY

    async def scenario() -> tuple[int, int]:
        reader = AsyncStore.connect(ConnectionSettings(redis_server.url), cluster=False)
        try:
            view = FollowedMetric(metric, reader, lambda *_: None)
            # WHEN the view reads the metric whole
            await view.refresh()
            return len(view.series), values_tracked(metric)
        finally:
            await reader.close()

    held, tracked = asyncio.run(scenario())
    # THEN it holds every series, and none of them is left for a full pass to walk
    assert held == QUEUES * 3
    assert tracked == 0


def test_large_delta_leaves_the_changed_series_out_of_collections(
    redis_server: RedisServer, frozen_heap: None
) -> None:
    # GIVEN a view of 3,000 series read whole (and frozen)
    metric = "heap_delta"
    write(redis_server, metric, 1.0)

    async def scenario() -> tuple[int, int, int]:
        reader = AsyncStore.connect(ConnectionSettings(redis_server.url), cluster=False)
        try:
            view = FollowedMetric(metric, reader, lambda *_: None)
            await view.refresh()
            full_reads = view.full_reads
            # WHEN 1,200 of them change (fewer than half: the delta is read, not the whole metric)
            write(redis_server, metric, 5.0, queues=400)
            await view.refresh()
            return view.full_reads - full_reads, len(view.series), values_tracked(metric)
        finally:
            await reader.close()

    full_reads, held, tracked = asyncio.run(scenario())
    # THEN the delta's new values were frozen too
    assert (full_reads, held) == (0, QUEUES * 3)
    assert tracked == 0


def test_replaced_series_are_freed_though_frozen(redis_server: RedisServer, frozen_heap: None) -> None:
    # GIVEN a view frozen after its first full read
    metric = "heap_replaced"
    write(redis_server, metric, 1.0)

    async def scenario() -> tuple[int, int, int, int, int]:
        reader = AsyncStore.connect(ConnectionSettings(redis_server.url), cluster=False)
        try:
            view = FollowedMetric(metric, reader, lambda *_: None)
            frozen_before = gc.get_freeze_count()
            await view.refresh()
            frozen_once, memory_once = gc.get_freeze_count(), tracemalloc.get_traced_memory()[0]
            passes = heap.full_passes()
            # WHEN every value changes and the view is read whole again, three times
            for round_ in range(3):
                write(redis_server, metric, 10.0 * (round_ + 2))
                view.position = None  # as after a gap: a full read that replaces the index
                await view.refresh()
            memory_after = tracemalloc.get_traced_memory()[0]
            assert heap.full_passes() == passes  # the same size again: no full collection was due
            return frozen_before, frozen_once, gc.get_freeze_count(), memory_once, memory_after
        finally:
            await reader.close()

    tracemalloc.start()
    try:
        frozen_before, frozen_once, frozen_after, memory_once, memory_after = asyncio.run(scenario())
    finally:
        tracemalloc.stop()
    # THEN the series were frozen, and each replaced index was freed by reference counting: neither the
    # permanent generation nor the memory grew by another index (each one is thousands of objects)
    assert frozen_once - frozen_before > QUEUES * 3
    assert frozen_after - frozen_once < QUEUES
    assert memory_after - memory_once < (memory_once // 4)


class Knot:
    """A reference cycle: only the collector can free it."""

    def __init__(self) -> None:
        self.me = self
        self.payload = [object() for _ in range(8)]


def test_frozen_cyclic_garbage_is_collected_once_memory_grows(frozen_heap: None) -> None:
    # GIVEN cycles that were alive when frozen, and became garbage afterwards
    start, knots = sys.getallocatedblocks(), list[Knot]()
    for _ in range(1_000):  # bounded: about 30,000 blocks a step
        if sys.getallocatedblocks() > start * (1.1 + heap.GROWTH_SHARE) + heap.GROWTH_SLACK:
            break
        knots.extend(Knot() for _ in range(3_000))
    heap.freeze_young()
    passes = heap.full_passes()
    del knots
    assert any(isinstance(o, Knot) for o in gc.get_objects()) is False  # frozen: no pass can see them
    # WHEN a large read settles
    heap.settle()
    # THEN memory had grown by more than a quarter, so one full collection freed the cycles
    assert heap.full_passes() == passes + 1
    gc.unfreeze()
    assert not any(isinstance(o, Knot) for o in gc.get_objects())
