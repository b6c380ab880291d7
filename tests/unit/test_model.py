"""Series identity and the canonical label string."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidegauge.model import (
    EARLIEST_TIMESTAMP,
    MAX_FUTURE_SECONDS,
    InvalidSeriesError,
    Sample,
    SeriesKey,
    format_labels,
    parse_labels,
)

label_names = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True)
label_values = st.text(max_size=40)


@given(st.dictionaries(label_names, label_values, max_size=6))
def test_label_string_round_trips_any_values(labels: dict[str, str]) -> None:
    key = SeriesKey.of("sqs_messages", labels)
    assert parse_labels(key.label_string) == labels


def test_label_order_does_not_change_identity() -> None:
    a = SeriesKey.of("m", {"queue": "orders", "state": "visible"})
    b = SeriesKey.of("m", {"state": "visible", "queue": "orders"})
    assert a == b
    assert a.label_string == "queue=orders,state=visible"
    assert a.series_id == b.series_id
    assert a.series_id != SeriesKey.of("m", {"queue": "orders"}).series_id


def test_separators_in_values_are_escaped() -> None:
    assert format_labels((("expr", "a=b,c%"),)) == "expr=a%3Db%2Cc%25"


@pytest.mark.parametrize("metric", ["", "has space", "{tag}", "a" * 201, "9starts_with_digit", "x/y"])
def test_unusable_metric_names_are_refused(metric: str) -> None:
    with pytest.raises(InvalidSeriesError, match="invalid metric name"):
        SeriesKey.of(metric, {})


def test_bad_label_names_are_refused_with_the_rule() -> None:
    with pytest.raises(InvalidSeriesError, match="Kubernetes label key"):
        SeriesKey.of("m", {"bad key": "v"})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_samples_refuse_non_finite_values(value: float) -> None:
    with pytest.raises(InvalidSeriesError, match="not finite"):
        Sample.of("m", {}, value, 1.0)


def now_plus(seconds: float) -> Callable[[], float]:
    """A timestamp relative to the clock when the test runs (not when it was collected)."""
    return lambda: time.time() + seconds


@pytest.mark.parametrize(
    ("timestamp", "problem"),
    [
        (lambda: math.inf, "not a finite number"),
        (lambda: -math.inf, "not a finite number"),
        (lambda: math.nan, "not a finite number"),
        (lambda: 1e20, "in the future"),
        (lambda: time.time() * 1000, "in the future"),  # milliseconds since the epoch
        (lambda: 253_402_300_800.0, "in the future"),  # year 10000
        (now_plus(MAX_FUTURE_SECONDS + 60), "in the future"),
        (lambda: EARLIEST_TIMESTAMP - 1, "before 2000-01-01"),
        (lambda: 0.0, "before 2000-01-01"),
    ],
)
def test_samples_refuse_implausible_timestamps(timestamp: Callable[[], float], problem: str) -> None:
    with pytest.raises(InvalidSeriesError, match=f"^timestamp of m a=b is .*{problem}.*Unix seconds"):
        Sample.of("m", {"a": "b"}, 1, timestamp())


def test_samples_refuse_an_implausible_collection_time() -> None:
    with pytest.raises(InvalidSeriesError, match=r"^collected_at of m a=b is inf"):
        Sample.of("m", {"a": "b"}, 1, time.time(), collected_at=math.inf)


@pytest.mark.parametrize(
    "timestamp", [lambda: EARLIEST_TIMESTAMP, now_plus(-86400), now_plus(0), now_plus(MAX_FUTURE_SECONDS - 9)]
)
def test_samples_accept_timestamps_from_2000_to_a_little_ahead(timestamp: Callable[[], float]) -> None:
    value = timestamp()
    assert Sample.of("m", {"a": "b"}, 1, value).timestamp == value


def test_collected_at_defaults_to_source_time() -> None:
    sample = Sample.of("m", {"a": "b"}, 2, 1_700_000_000.0)
    assert (sample.timestamp, sample.collected_at, sample.age(1_700_000_030.0)) == (
        1_700_000_000.0,
        1_700_000_000.0,
        30.0,
    )
