"""The provider's rules: freshness, fallback timing, exposure, shared reads and bounded reads."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.support.server_harness import server_config
from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.selectors import parse_selector
from tidegauge.server.provider import ExternalMetricsProvider, MetricNotFound
from tidegauge.store import StoreUnavailable

NOW = 1_700_000_000.0
CONFIG = server_config(
    "redis://127.0.0.1:1/0"
)  # sqs_messages: max age 120; db_load: 300, fallback 0.5 after 60


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeReader:
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.reads = 0
        self.delay = 0.0
        self.failure: Exception | None = None

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        self.reads += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return [s for s in self.samples if s.metric == metric]


def provider(reader: FakeReader, clock: Clock, **options: Any) -> ExternalMetricsProvider:
    options.setdefault("snapshot_seconds", 0.0)
    return ExternalMetricsProvider(reader, CONFIG, clock=clock, monotonic=clock, **options)


def get(
    p: ExternalMetricsProvider, selector: str = "", metric: str = "sqs_messages", namespace: str = "shop"
) -> Any:
    return asyncio.run(p.get_external_metric(namespace, parse_selector(selector), metric))


def sqs(queue: str, value: float, age: float) -> Sample:
    return Sample.of("sqs_messages", {"queue": queue}, value, NOW - age)


def test_series_exactly_at_max_age_is_fresh_and_older_is_left_out() -> None:
    reader = FakeReader([sqs("a", 1, 120), sqs("b", 2, 120.5)])
    values = get(provider(reader, Clock()))
    assert [(dict(v.labels), v.value) for v in values] == [({"queue": "a"}, 1)]


def test_all_stale_without_fallback_is_not_found_saying_stale() -> None:
    with pytest.raises(MetricNotFound, match="stale"):
        get(provider(FakeReader([sqs("a", 1, 500)]), Clock()))


def test_unknown_metric_and_unmatched_selector_are_not_found() -> None:
    p = provider(FakeReader([sqs("a", 1, 0)]), Clock())
    with pytest.raises(MetricNotFound, match="'nothing' not found"):
        get(p, metric="nothing")
    with pytest.raises(MetricNotFound, match="no series matching"):
        get(p, "queue=zzz")


def test_fallback_for_a_missing_series_waits_its_delay_then_serves_selector_labels() -> None:
    # GIVEN db_load (fallback 0.5 after 60 s) with no series at all
    clock = Clock()
    p = provider(FakeReader([]), clock)
    # WHEN first asked, and 59 s later THEN not found; AT 60 s THEN the fallback value, timestamp now
    with pytest.raises(MetricNotFound):
        get(p, "instance=main,env in (prod)", "db_load")
    clock.now += 59
    with pytest.raises(MetricNotFound):
        get(p, "instance=main,env in (prod)", "db_load")
    clock.now += 1
    (value,) = get(p, "instance=main,env in (prod)", "db_load")
    assert (dict(value.labels), value.value, value.timestamp) == (
        {"env": "prod", "instance": "main"},
        0.5,
        clock.now,
    )


def test_fallback_for_stale_series_counts_from_when_the_newest_went_stale() -> None:
    # GIVEN the newest db_load sample 359 s old (stale since 59 s: max age 300) THEN still not found
    reader = FakeReader([Sample.of("db_load", {"instance": "main"}, 3, NOW - 359)])
    clock = Clock()
    with pytest.raises(MetricNotFound, match="stale"):
        get(provider(reader, clock), metric="db_load")
    # WHEN one more second passes THEN the fallback is served
    clock.now += 1
    assert [v.value for v in get(provider(reader, clock), metric="db_load")] == [0.5]


def test_fresh_data_resets_the_missing_since_memory() -> None:
    clock = Clock()
    reader = FakeReader([])
    p = provider(reader, clock)
    with pytest.raises(MetricNotFound):
        get(p, metric="db_load")
    reader.samples = [Sample.of("db_load", {}, 7, clock.now)]
    assert [v.value for v in get(p, metric="db_load")] == [7]
    reader.samples = []
    clock.now += 61
    with pytest.raises(MetricNotFound):
        get(p, metric="db_load")


def test_namespace_without_exposure_sees_not_found_like_an_unknown_metric() -> None:
    p = provider(FakeReader([sqs("a", 1, 0)]), Clock())
    with pytest.raises(MetricNotFound) as hidden:
        get(p, namespace="elsewhere")
    assert str(hidden.value) == "external metric 'sqs_messages' not found"


def test_exposure_selector_applies_on_top_of_the_request_selector() -> None:
    p = provider(FakeReader([sqs("orders", 1, 0), sqs("payments", 2, 0)]), Clock())
    assert [v.value for v in get(p, namespace="team-x")] == [2]
    with pytest.raises(MetricNotFound):
        get(p, "queue=orders", namespace="team-x")


def test_concurrent_requests_share_one_read_within_the_snapshot_time() -> None:
    reader = FakeReader([sqs("a", 1, 0)])
    reader.delay = 0.01
    clock = Clock()
    p = provider(reader, clock, snapshot_seconds=1.0)

    async def many() -> None:
        selector = parse_selector("")
        await asyncio.gather(*(p.get_external_metric("shop", selector, "sqs_messages") for _ in range(5)))

    asyncio.run(many())
    assert reader.reads == 1
    clock.now += 1
    asyncio.run(many())
    assert reader.reads == 2


def test_slow_store_is_unavailable_within_the_read_timeout() -> None:
    reader = FakeReader([sqs("a", 1, 0)])
    reader.delay = 5
    with pytest.raises(StoreUnavailable, match="longer than"):
        get(provider(reader, Clock(), read_timeout_seconds=0.05))


def test_value_without_a_quantity_form_is_left_out_counted_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    dropped: list[tuple[str, str]] = []
    p = provider(
        FakeReader([sqs("a", 1, 0), sqs("b", 1e16, 0), sqs("c", -9.3e15, 0)]),
        clock,
        record_dropped=lambda metric, reason: dropped.append((metric, reason)),
    )
    caplog.set_level(logging.WARNING, logger="tidegauge.server.provider")
    # GIVEN values the HPA cannot read (|v| >= 9.2e15) WHEN read three times within a minute
    for _ in range(3):
        values = get(p)
        clock.now += 1
        # THEN the other series still answer
        assert [dict(v.labels)["queue"] for v in values] == ["a"]
    # THEN every series left out is counted, and logged once for the interval, not per read
    assert dropped == [("sqs_messages", "unservable")] * 6
    assert len(caplog.records) == 1
    assert "not serving series queue=b" in caplog.records[0].getMessage()
    clock.now += 60
    get(p)
    assert len(caplog.records) == 2
    assert "5 more like it" in caplog.records[1].getMessage()
