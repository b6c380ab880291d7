"""The demo's HPA-side client: request paths as client-go encodes them, sums as the HPA computes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tidegauge.demo.aggregator import (
    QuantityParseError,
    external_metric_path,
    parse_quantity,
    parse_timestamp,
    sum_items,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal(0)),
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("1500m", Decimal("1.5")),
        ("2k", Decimal(2000)),
        ("2500k", Decimal(2500000)),
        ("3G", Decimal(3000000000)),
        ("-2", Decimal(-2)),
        ("7n", Decimal("7e-9")),
    ],
)
def test_quantities_in_canonical_form_parse_exactly(text: str, expected: Decimal) -> None:
    # GIVEN a quantity as the server writes it
    # WHEN it is parsed
    # THEN the value is exact
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "k", "1.5x", "NaN", "Infinity"])
def test_anything_else_is_not_a_quantity(text: str) -> None:
    # GIVEN a string that is no decimal-SI quantity
    # WHEN it is parsed
    # THEN the error names it
    with pytest.raises(QuantityParseError):
        parse_quantity(text)


def test_the_selector_is_url_encoded_with_spaces_as_plus() -> None:
    # GIVEN a set-based selector with spaces and parentheses
    selector = "env in (prod,stage),queue=worker"

    # WHEN the HPA's request path is built
    path = external_metric_path("shop", "sqs_messages", selector)

    # THEN it is the path client-go sends
    assert path == (
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/sqs_messages"
        "?labelSelector=env+in+%28prod%2Cstage%29%2Cqueue%3Dworker"
    )


def test_no_selector_means_no_parameter() -> None:
    assert external_metric_path("demo", "m", "") == "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/m"


def item(value: str, timestamp: str) -> dict[str, object]:
    return {"metricName": "m", "metricLabels": {}, "timestamp": timestamp, "window": 60, "value": value}


def test_items_are_summed_in_milli_values_and_the_newest_timestamp_gives_the_age() -> None:
    # GIVEN a list of three series, the newest sampled at 10:30:00Z
    body = {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            item("1500m", "2026-11-26T10:29:50Z"),
            item("2k", "2026-11-26T10:30:00Z"),
            item("1n", "2026-11-26T10:29:00Z"),
        ],
    }
    now = parse_timestamp("2026-11-26T10:30:12Z")

    # WHEN it is read as the HPA reads it
    reading = sum_items(body, now)

    # THEN 1n counts as 1m (MilliValue rounds up), and the age is that of the newest item
    assert reading.value == 2001.501
    assert reading.items == 3
    assert reading.age_seconds == 12.0


def test_an_empty_list_is_a_failed_fetch() -> None:
    # GIVEN an answer without items
    body = {"kind": "ExternalMetricValueList", "items": []}

    # WHEN it is read
    # THEN it fails with the HPA's own message
    with pytest.raises(ValueError, match="no metrics returned from external metrics API"):
        sum_items(body, 0.0)


def test_a_timestamp_without_a_zone_is_rejected() -> None:
    with pytest.raises(ValueError, match="without a zone"):
        parse_timestamp("2026-11-26T10:30:00")
