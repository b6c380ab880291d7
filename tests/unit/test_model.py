"""Series identity and the canonical label string."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidegauge.model import InvalidSeriesError, Sample, SeriesKey, format_labels, parse_labels

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


def test_collected_at_defaults_to_source_time() -> None:
    sample = Sample.of("m", {"a": "b"}, 2, 100.0)
    assert (sample.timestamp, sample.collected_at, sample.age(130.0)) == (100.0, 100.0, 30.0)
