"""The custom metrics provider: an object's value is the sum of exactly the series describing it."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_server_provider import NOW, Clock, FakeReader
from tidegauge.config import Config
from tidegauge.model import Sample
from tidegauge.selectors import EVERYTHING, parse_selector
from tidegauge.server.custom import CustomMetricsProvider, UnknownResource
from tidegauge.server.provider import ExternalMetricsProvider, MetricNotFound
from tidegauge.server.types import CustomMetricValue, label_selector

APPS = ("web", "api", "worker")
STATES = ("visible", "in_flight")


def config_with(*rules: dict[str, str]) -> Config:
    return Config.from_mapping(
        {
            "version": 1,
            "redis": {"url": "redis://127.0.0.1:1/0"},
            "sources": [{"name": "q", "type": "sqs", "region": "eu-west-1", "queues": {"names": ["q"]}}],
            "objects": list(rules),
        }
    )


CONFIG = config_with(
    {"metric": "sqs_messages", "resource": "deployments.apps", "namespace": "shop", "name": "{app}"},
    {
        "metric": "sqs_messages",
        "selector": "state=visible",
        "resource": "deployments.apps",
        "namespace": "shop",
        "name": "{app}",
    },
    {"metric": "sqs_messages", "resource": "services", "namespace": "{team}", "name": "{app}-svc"},
)


def custom_provider(samples: list[Sample], config: Config = CONFIG) -> CustomMetricsProvider:
    clock = Clock()
    external = ExternalMetricsProvider(
        FakeReader(samples), config, clock=clock, monotonic=clock, snapshot_seconds=0
    )
    return CustomMetricsProvider(external, config.objects)


def get(
    provider: CustomMetricsProvider, resource: str, namespace: str, name: str, selector: str = ""
) -> CustomMetricValue:
    return asyncio.run(
        provider.get_object_metric(
            provider.resource(resource), namespace, name, "sqs_messages", parse_selector(selector)
        )
    )


series = st.lists(
    st.tuples(
        st.sampled_from(APPS),
        st.sampled_from(STATES),
        st.sampled_from(("shop", "ops")),
        st.integers(0, 1000),
        st.integers(0, 60),
    ),
    max_size=12,
    unique_by=lambda item: item[:3],
)


@settings(max_examples=60, deadline=None)
@given(series, st.sampled_from(APPS), st.sampled_from(("", "state=visible", "team!=ops")))
def test_an_object_answer_is_the_sum_of_exactly_the_series_describing_it(
    rows: list[tuple[str, str, str, int, int]], app: str, selector: str
) -> None:
    # GIVEN series per app/state/team and two rules mapping label app to Deployments in shop (one
    # limited to state=visible, so visible series match both rules)
    samples = [
        Sample.of("sqs_messages", {"app": a, "state": s, "team": t}, value, NOW - age)
        for a, s, t, value, age in rows
    ]
    chosen = parse_selector(selector)
    describing = [
        (value, NOW - age)
        for a, s, t, value, age in rows
        if a == app and chosen.matches({"app": a, "state": s, "team": t})
    ]
    provider = custom_provider(samples)
    # WHEN Deployment shop/<app> is asked THEN each describing series counts once, at the oldest time
    if not describing:
        with pytest.raises(MetricNotFound):
            get(provider, "deployments.apps", "shop", app, selector)
        return
    answer = get(provider, "deployments.apps", "shop", app, selector)
    assert answer.value == sum(value for value, _ in describing)
    assert answer.timestamp == min(timestamp for _, timestamp in describing)
    assert answer.described.name == app


def test_templates_in_namespace_and_name_both_select() -> None:
    samples = [
        Sample.of("sqs_messages", {"app": "web", "team": "shop"}, 3, NOW),
        Sample.of("sqs_messages", {"app": "web", "team": "ops"}, 5, NOW),
    ]
    provider = custom_provider(samples)
    assert get(provider, "svc", "ops", "web-svc").value == 5
    with pytest.raises(MetricNotFound):
        get(provider, "svc", "ops", "web")  # the suffix does not match: no series can name it


def test_a_name_no_label_value_can_hold_selects_nothing() -> None:
    provider = custom_provider([Sample.of("sqs_messages", {"app": "web"}, 3, NOW)])
    with pytest.raises(MetricNotFound):
        get(provider, "deployments.apps", "shop", "x" * 100)


def test_an_unknown_resource_is_unknown() -> None:
    with pytest.raises(UnknownResource, match="'gadgets' is not known"):
        custom_provider([]).resource("gadgets")


def test_label_selector_is_upstreams_parse_to_label_selector_shape() -> None:
    assert label_selector(EVERYTHING) is None
    assert label_selector(parse_selector("b=2,a==1,c!=3,d in (y,x),e notin (z),f,!g")) == {
        "matchLabels": {"a": "1", "b": "2"},
        "matchExpressions": [
            {"key": "c", "operator": "NotIn", "values": ["3"]},
            {"key": "d", "operator": "In", "values": ["x", "y"]},
            {"key": "e", "operator": "NotIn", "values": ["z"]},
            {"key": "f", "operator": "Exists"},
            {"key": "g", "operator": "DoesNotExist"},
        ],
    }
