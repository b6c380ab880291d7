"""Last known good: with nothing fresh, the newest values with their real timestamps, up to a limit."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.test_server_provider import NOW, Clock, FakeReader
from tidegauge.config import parse_config
from tidegauge.model import Sample
from tidegauge.selectors import parse_selector
from tidegauge.server.provider import ExternalMetricsProvider, MetricNotFound
from tidegauge.server.types import ExternalMetricValue

CONFIG = parse_config(
    """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
sources:
  - {name: orders, type: sqs, region: eu-west-1, queues: {names: [orders]}}
  - {name: jobs, type: sqs, region: eu-west-1, queues: {names: [jobs]}, metric: jobs_messages}
metrics:
  sqs_messages:
    max_age_seconds: 60
    fallback: {mode: last_known_good, max_age_seconds: 300}
  jobs_messages:
    max_age_seconds: 60
    fallback: {mode: last_known_good, max_age_seconds: 100, value: 2, after_seconds: 0}
""",
    environ={},
)


def answer(reader: FakeReader, clock: Clock, metric: str, counted: list[str]) -> list[ExternalMetricValue]:
    provider = ExternalMetricsProvider(
        reader,
        CONFIG,
        snapshot_seconds=0.0,
        clock=clock,
        monotonic=clock,
        record_last_known_good=counted.append,
    )
    return asyncio.run(provider.get_external_metric("shop", parse_selector(""), metric))


def test_stale_series_are_served_with_their_timestamps_until_the_limit() -> None:
    # GIVEN two series last written 100 s and 200 s ago (max age 60: both stale), limit 300 s past it
    samples = [
        Sample.of("sqs_messages", {"queue": "a"}, 4, NOW - 100),
        Sample.of("sqs_messages", {"queue": "b"}, 9, NOW - 200),
    ]
    clock, counted = Clock(), list[str]()
    # WHEN asked THEN both, with their own, older timestamps, and the answer is counted
    values = answer(FakeReader(samples), clock, "sqs_messages", counted)
    assert [(v.labels["queue"], v.value, v.timestamp) for v in values] == [
        ("a", 4, NOW - 100),
        ("b", 9, NOW - 200),
    ]
    assert counted == ["sqs_messages"]
    # WHEN b is 360 s old (exactly at the limit) and then 361 s THEN b is served, then only a
    clock.now = NOW + 160
    assert [v.labels["queue"] for v in answer(FakeReader(samples), clock, "sqs_messages", [])] == ["a", "b"]
    clock.now = NOW + 161
    assert [v.labels["queue"] for v in answer(FakeReader(samples), clock, "sqs_messages", [])] == ["a"]
    # WHEN a is past the limit too THEN 404 saying stale (no fixed fallback is configured)
    clock.now = NOW + 261
    with pytest.raises(MetricNotFound, match="stale"):
        answer(FakeReader(samples), clock, "sqs_messages", counted)
    assert counted == ["sqs_messages"]


def test_fixed_fallback_follows_once_the_last_known_good_is_too_old() -> None:
    samples = [Sample.of("jobs_messages", {"queue": "jobs"}, 7, NOW - 100)]
    clock = Clock()
    # GIVEN 100 s old (40 s past max age, limit 100) THEN the last known good, not the fixed 2
    assert [v.value for v in answer(FakeReader(samples), clock, "jobs_messages", [])] == [7]
    # WHEN 161 s old THEN the fixed fallback, timestamp now
    clock.now = NOW + 61
    (value,) = answer(FakeReader(samples), clock, "jobs_messages", [])
    assert (value.value, value.timestamp) == (2, clock.now)


def test_fresh_series_are_served_without_the_stale_ones() -> None:
    samples = [
        Sample.of("sqs_messages", {"queue": "a"}, 4, NOW - 10),
        Sample.of("sqs_messages", {"queue": "b"}, 9, NOW - 200),
    ]
    counted: list[str] = []

    values = answer(FakeReader(samples), Clock(), "sqs_messages", counted)

    assert ([v.labels["queue"] for v in values], counted) == (["a"], [])
