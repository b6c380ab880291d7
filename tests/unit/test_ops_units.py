"""Small pure helpers of the operator commands: quantities, selectors, human units, findings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tidegauge.errors import UsageError
from tidegauge.ops.cluster import label_selector
from tidegauge.ops.findings import Finding, exit_code
from tidegauge.ops.series_view import human_value
from tidegauge.quantity import QuantityError, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", "0.5"),
        ("2222m", "2.222"),
        ("2k", "2000"),
        ("1Gi", str(2**30)),
        ("1e3", "1000"),
        ("1.5", "1.5"),
        ("2E", "2000000000000000000"),
        ("100u", "0.0001"),
    ],
)
def test_parse_quantity_reads_kubernetes_quantities(text: str, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "Mi", "abc", "1.2.3m", "NaN", "inf"])
def test_parse_quantity_rejects_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(QuantityError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_label_selector_is_what_client_go_sends() -> None:
    # GIVEN a metav1.LabelSelector with labels and every operator
    selector = {
        "matchLabels": {"queue": "orders", "env": "prod"},
        "matchExpressions": [
            {"key": "state", "operator": "In", "values": ["visible", "delayed"]},
            {"key": "tier", "operator": "NotIn", "values": ["b"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    # WHEN it is rendered / THEN requirements are sorted as LabelSelectorAsSelector sorts them
    expected = "env=prod,!legacy,queue=orders,state in (delayed,visible),team,tier notin (b)"
    assert label_selector(selector) == expected
    assert label_selector(None) == ""
    with pytest.raises(UsageError, match="Near"):
        label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]})


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1536, "Bytes", "1.5 KiB"),
        (512, "bytes", "512 B"),
        (2_500_000, "messages", "2.5M messages"),
        (42, "", "42"),
        (73.25, "Percent", "73.2%"),
        (-3000, "Count", "-3k"),
    ],
)
def test_human_value_scales_by_unit(value: float, unit: str, expected: str) -> None:
    assert human_value(value, unit) == expected


def test_exit_code_is_the_worst_finding() -> None:
    assert exit_code([]) == 0
    assert exit_code([Finding("a", "PASS", ""), Finding("b", "WARN", "")]) == 1
    assert exit_code([Finding("a", "FAIL", ""), Finding("b", "WARN", "")]) == 2
