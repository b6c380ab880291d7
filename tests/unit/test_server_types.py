"""Rendering of ExternalMetricValue items: RFC 3339 source timestamps, canonical quantities."""

from __future__ import annotations

import json

import pytest

from tidegauge.quantity import QuantityError
from tidegauge.server.types import ExternalMetricValue, encode_external_list, format_timestamp


def test_timestamp_is_utc_with_z_and_whole_seconds() -> None:
    assert format_timestamp(1_795_689_000.75) == "2026-11-26T10:30:00Z"


def test_list_document_has_kind_api_version_and_canonical_values() -> None:
    values = [
        ExternalMetricValue("m", {"q": "a"}, 1_795_689_000.0, 1.5),
        ExternalMetricValue("m", {}, 0, 2e3),
    ]
    document = json.loads(encode_external_list(values))
    assert document["kind"] == "ExternalMetricValueList"
    assert document["apiVersion"] == "external.metrics.k8s.io/v1beta1"
    assert document["metadata"] == {}
    assert [item["value"] for item in document["items"]] == ["1500m", "2k"]
    assert document["items"][0] == {
        "metricName": "m",
        "metricLabels": {"q": "a"},
        "timestamp": "2026-11-26T10:30:00Z",
        "window": 60,
        "value": "1500m",
    }


def test_empty_list_is_valid_json() -> None:
    assert json.loads(encode_external_list([]))["items"] == []


def test_unservable_value_raises_quantity_error() -> None:
    with pytest.raises(QuantityError):
        ExternalMetricValue("m", {}, 0, 1e16).encoded()
