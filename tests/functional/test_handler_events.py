"""Which sources the recorded EventBridge events select."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.collectors import load_event
from tidegauge.config import CloudWatchQuery, CloudWatchSource, MetricStatSpec, Source, SqsSource
from tidegauge.sources.events import AlarmMetric, parse_event, select_sources
from tidegauge.sources.exceptions import UnrecognisedEventError

ORDERS = SqsSource(name="orders", region="eu-west-1", queue_names=("orders",))
JOBS = SqsSource(name="jobs", region="eu-west-1", queue_prefixes=("jobs-",))
TAGGED = SqsSource(name="tagged", region="eu-west-1", queue_tags=(("team", "shop"),))
SHOP_DB = CloudWatchSource(
    name="shop-db",
    region="eu-west-1",
    queries=(
        CloudWatchQuery(
            metric="aurora_db_load",
            metric_stat=MetricStatSpec(
                namespace="AWS/RDS",
                metric_name="DBLoad",
                stat="Average",
                dimensions=(("DBClusterIdentifier", "shop"),),
            ),
        ),
    ),
)
RATIO_DB = CloudWatchSource(
    name="ratio-db",
    region="eu-west-1",
    queries=(
        CloudWatchQuery(
            metric="load_per_vcpu",
            expression="load / 4",
            metrics=(
                (
                    "load",
                    MetricStatSpec(
                        namespace="AWS/RDS",
                        metric_name="DBLoad",
                        stat="Average",
                        dimensions=(("DBClusterIdentifier", "shop"),),
                    ),
                ),
            ),
        ),
    ),
)
SQS_SOURCES: tuple[Source, ...] = (ORDERS, JOBS, TAGGED)
ALL_NAMES = ("orders", "jobs", "tagged", "shop-db", "ratio-db")


def names(sources: tuple[Source, ...]) -> list[str]:
    return [source.name for source in sources]


def test_scheduled_event_selects_every_source_and_samples_in_rounds() -> None:
    # GIVEN the every-minute scheduled event
    trigger = parse_event(load_event("scheduled.json"))

    # WHEN sources are selected
    selection = select_sources(trigger, SQS_SOURCES, configured_names=ALL_NAMES)

    # THEN all of them, in rounds
    assert (trigger.kind, trigger.single_round) == ("schedule", False)
    assert names(selection.sources) == ["orders", "jobs", "tagged"]


def test_queue_alarm_selects_the_sources_that_watch_that_queue() -> None:
    # GIVEN an alarm on the orders queue, and a tag-selected source that discovered it earlier
    trigger = parse_event(load_event("alarm_state_change_sqs.json"))

    # WHEN sources are selected
    selection = select_sources(
        trigger,
        SQS_SOURCES,
        configured_names=ALL_NAMES,
        known_queues=lambda source: {"orders"} if source == "tagged" else set(),
    )

    # THEN the source naming it and the one that discovered it, in one round
    assert trigger.alarm_metrics == (
        AlarmMetric(
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions=(("QueueName", "orders"),),
        ),
    )
    assert (trigger.alarm_name, trigger.alarm_state, trigger.single_round) == (
        "orders-backlog-high",
        "ALARM",
        True,
    )
    assert names(selection.sources) == ["orders", "tagged"]


def test_queue_alarm_matches_a_prefix_source() -> None:
    # GIVEN an alarm on a queue that only a prefix selects
    event = load_event("alarm_state_change_sqs.json")
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "QueueName": "jobs-eu"
    }

    # WHEN sources are selected
    selection = select_sources(parse_event(event), SQS_SOURCES, configured_names=ALL_NAMES)

    # THEN the prefix source
    assert names(selection.sources) == ["jobs"]


def test_database_alarm_selects_queries_and_expression_members_of_that_metric() -> None:
    # GIVEN the DBLoad alarm of the shop cluster
    trigger = parse_event(load_event("alarm_state_change_dbload.json"))

    # WHEN CloudWatch sources are selected
    selection = select_sources(trigger, (SHOP_DB, RATIO_DB), configured_names=ALL_NAMES)

    # THEN the source querying it directly and the one using it in an expression
    assert names(selection.sources) == ["shop-db", "ratio-db"]


def test_alarm_on_an_unrelated_metric_selects_nothing() -> None:
    # GIVEN a DBLoad alarm seen by the SQS function
    trigger = parse_event(load_event("alarm_state_change_dbload.json"))

    # WHEN SQS sources are selected
    # THEN none: collecting unrelated sources would only cost money
    assert select_sources(trigger, SQS_SOURCES, configured_names=ALL_NAMES).sources == ()


def test_composite_alarm_without_metrics_selects_every_source() -> None:
    # GIVEN a composite alarm state change (it names a rule, not metrics)
    event = load_event("alarm_state_change_sqs.json")
    event["detail"]["configuration"] = {"alarmRule": "ALARM(orders-backlog-high) OR ALARM(shop-db-load-high)"}

    # WHEN sources are selected
    selection = select_sources(parse_event(event), SQS_SOURCES, configured_names=ALL_NAMES)

    # THEN all of them
    assert names(selection.sources) == ["orders", "jobs", "tagged"]


def test_collect_event_selects_named_sources_and_reports_unknown_ones() -> None:
    # GIVEN a tidegauge.collect event naming an SQS source, a CloudWatch source and a typo
    event = load_event("custom_collect.json")
    event["detail"]["sources"] = ["orders", "shop-db", "odrers"]
    trigger = parse_event(event)

    # WHEN the SQS function selects its sources
    selection = select_sources(trigger, SQS_SOURCES, configured_names=ALL_NAMES)

    # THEN it takes orders; shop-db belongs to the other function; the typo is unknown
    assert (trigger.kind, trigger.single_round) == ("collect", True)
    assert names(selection.sources) == ["orders"]
    assert selection.unknown_names == ("odrers",)


@pytest.mark.parametrize("detail", [{}, {"sources": []}, {"sources": "orders"}, {"sources": [1]}])
def test_collect_event_without_a_list_of_names_is_rejected(detail: dict[str, Any]) -> None:
    # GIVEN a tidegauge.collect event with a missing or malformed source list
    event = load_event("custom_collect.json")
    event["detail"] = detail

    # WHEN it is parsed
    # THEN the error says what the detail must hold
    with pytest.raises(UnrecognisedEventError, match=r"detail\.sources, a non-empty list of source names"):
        parse_event(event)


@pytest.mark.parametrize("event", [{}, {"detail-type": "Object Created"}, ["not", "an", "object"]])
def test_other_events_are_rejected_naming_the_accepted_ones(event: Any) -> None:
    # GIVEN an event that is none of the three
    # WHEN it is parsed
    # THEN the error lists the accepted detail-types
    with pytest.raises(UnrecognisedEventError, match=r"tidegauge\.collect"):
        parse_event(event)
