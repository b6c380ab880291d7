"""The TTL cache: bounded by entries and by bytes, and expired entries leave without being asked for."""

from __future__ import annotations

from tidegauge.server.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_byte_bound_evicts_the_oldest_answers() -> None:
    cache: TtlCache[int, bytes] = TtlCache(
        60, 1_000_000, max_bytes=10_000, weigh=lambda key, value: len(value)
    )
    # GIVEN 100 answers of 1,000 bytes and room for 10,000 bytes
    for key in range(100):
        cache.put(key, b"x" * 1000)
    # THEN only the newest ten are kept
    assert cache.bytes == 10_000
    assert len(cache) == 10
    assert cache.get(99) is not None
    assert cache.get(89) is None


def test_an_answer_larger_than_the_bound_is_not_kept() -> None:
    cache: TtlCache[str, bytes] = TtlCache(60, 10, max_bytes=100, weigh=lambda key, value: len(value))
    cache.put("small", b"s")
    cache.put("big", b"b" * 101)
    assert cache.get("big") is None
    assert cache.get("small") == b"s"


def test_expired_entries_leave_on_the_next_insert_without_being_asked_again() -> None:
    clock = Clock()
    cache: TtlCache[str, bytes] = TtlCache(1.0, 10_000, clock, max_bytes=1 << 20, weigh=lambda k, v: len(v))
    for index in range(1000):
        cache.put(f"pretty={index}", b"y" * 100)
    # WHEN they expire and one new answer is stored THEN the expired ones are gone, bytes freed
    clock.now = 1.5
    cache.put("fresh", b"z")
    assert len(cache) == 1
    assert cache.bytes == 1


def test_replacing_a_key_keeps_the_byte_count_exact() -> None:
    cache: TtlCache[str, bytes] = TtlCache(60, 10, max_bytes=1000, weigh=lambda key, value: len(value))
    cache.put("a", b"1" * 300)
    cache.put("a", b"2" * 200)
    assert cache.bytes == 200
    assert cache.get("a") == b"2" * 200
