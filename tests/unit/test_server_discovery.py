"""Content negotiation of GET /apis and the pre-rendered discovery documents."""

from __future__ import annotations

import json

import pytest

from tidegauge.server.discovery import EXTERNAL_METRICS, Discovery, GroupListFormat, negotiate_group_list
from tidegauge.server.errors import ApiError

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, GroupListFormat.LEGACY),
        ("", GroupListFormat.LEGACY),
        ("application/json", GroupListFormat.LEGACY),
        ("*/*", GroupListFormat.LEGACY),
        (f"{V2},{V2BETA1},application/json", GroupListFormat.AGGREGATED_V2),
        (V2BETA1, GroupListFormat.AGGREGATED_V2BETA1),
        (f"application/json;q=0.5, {V2}", GroupListFormat.AGGREGATED_V2),
        (f"{V2};q=0, application/json", GroupListFormat.LEGACY),
        ("application/vnd.kubernetes.protobuf, */*", GroupListFormat.LEGACY),
        (
            "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList",
            GroupListFormat.AGGREGATED_V2,
        ),
    ],
)
def test_accept_header_picks_the_group_list_format(accept: str | None, expected: GroupListFormat) -> None:
    assert negotiate_group_list(accept) is expected


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.kubernetes.protobuf",
        "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
        "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        "text/html",
    ],
)
def test_unsupported_accept_is_406(accept: str) -> None:
    with pytest.raises(ApiError) as raised:
        negotiate_group_list(accept)
    assert (raised.value.code, raised.value.reason) == (406, "NotAcceptable")


def test_only_served_groups_are_discovered() -> None:
    # GIVEN only external metrics served WHEN discovery is rendered THEN custom metrics appears nowhere
    discovery = Discovery((EXTERNAL_METRICS,))
    assert set(discovery.documents) == {
        "/apis/external.metrics.k8s.io",
        "/apis/external.metrics.k8s.io/v1beta1",
    }
    for accept in (None, V2, V2BETA1):
        body, _ = discovery.group_list(accept)
        assert b"custom.metrics" not in body
        json.loads(body)
