"""CloudWatch collection: request building and batching, pagination, and the newest complete datapoint."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber

from tests.support.collectors import FakeClock, inject_error, mock_aws_for
from tidegauge.config import PRESETS, CloudWatchQuery, CloudWatchSource, MetricStatSpec
from tidegauge.sources.aws import ClientFactory, account_of_arn
from tidegauge.sources.cloudwatch import (
    PlannedQuery,
    SeriesResult,
    align_down,
    evaluate,
    fetch,
    plan_calls,
    plan_queries,
    rewrite_expression,
)
from tidegauge.sources.rounds import CloudWatchSampler

REGION = "eu-west-1"
ACCOUNT = "123456789012"
NOW = align_down(time.time(), 60) + 30.0
"""Half-way through a minute: the minute that started 30 s ago is still filling."""
MINUTE = align_down(NOW, 60)


def stat_query(metric: str = "orders_per_minute", value: str = "prod", **overrides: Any) -> CloudWatchQuery:
    settings: dict[str, Any] = {
        "metric": metric,
        "metric_stat": MetricStatSpec(
            namespace="Shop", metric_name="Orders", stat="Sum", dimensions=(("Env", value),)
        ),
    }
    settings.update(overrides)
    return CloudWatchQuery(**settings)


def ratio_query() -> CloudWatchQuery:
    return CloudWatchQuery(
        metric="error_ratio",
        expression="100 * errors / MAX([errors, requests])",
        metrics=(
            ("errors", MetricStatSpec(namespace="Shop", metric_name="Errors", stat="Sum")),
            ("requests", MetricStatSpec(namespace="Shop", metric_name="Requests", stat="Sum")),
        ),
    )


def cw_source(*queries: CloudWatchQuery, name: str = "shop-db", lookback: int = 600) -> CloudWatchSource:
    return CloudWatchSource(
        name=name, region=REGION, account=ACCOUNT, lookback_seconds=lookback, queries=tuple(queries)
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mock_aws_for(monkeypatch, REGION):
        yield


@pytest.fixture
def cloudwatch(aws: None) -> Any:
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


def put(cloudwatch: Any, timestamp: float, value: float, *, name: str = "Orders", env: str = "prod") -> None:
    cloudwatch.put_metric_data(
        Namespace="Shop",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "Env", "Value": env}],
                "Value": value,
                "Timestamp": datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC),
            }
        ],
    )


# --- request building -----------------------------------------------------------------------------


def test_member_ids_are_prefixed_outside_string_literals() -> None:
    # GIVEN an expression using member ids, a function, and a SEARCH string mentioning the same word
    expression = "IF(errors > 0, errors / requests, 0) + SEARCH('{Shop} errors', 'Sum', 60)"

    # WHEN it is rewritten for query q7
    rewritten = rewrite_expression(expression, "q7_", ["errors", "requests"])

    # THEN ids are renamed, functions and string literals are not
    assert rewritten == "IF(q7_errors > 0, q7_errors / q7_requests, 0) + SEARCH('{Shop} errors', 'Sum', 60)"


def test_metrics_function_is_narrowed_to_the_query_own_members() -> None:
    # GIVEN expressions that sum all metrics of the request, or those whose id starts with "m"
    # WHEN they are rewritten for query q2
    # THEN they only see q2's members
    assert rewrite_expression("SUM(METRICS())", "q2_", ["m1", "m2"]) == "SUM(METRICS('q2_'))"
    assert rewrite_expression("AVG(METRICS('m'))", "q2_", ["m1"]) == "AVG(METRICS('q2_m'))"


def test_expression_is_sent_with_its_members_hidden() -> None:
    # GIVEN a metric-math query as the fourth query of a request
    planned = PlannedQuery(cw_source(), ratio_query(), "q3")

    # WHEN its MetricDataQueries entries are built
    entries = planned.entries()

    # THEN the members come first with ReturnData false, and the expression refers to their new ids
    assert entries == [
        {
            "Id": "q3_errors",
            "MetricStat": {
                "Metric": {"Namespace": "Shop", "MetricName": "Errors", "Dimensions": []},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        },
        {
            "Id": "q3_requests",
            "MetricStat": {
                "Metric": {"Namespace": "Shop", "MetricName": "Requests", "Dimensions": []},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        },
        {
            "Id": "q3",
            "Expression": "100 * q3_errors / MAX([q3_errors, q3_requests])",
            "Period": 60,
            "ReturnData": True,
        },
    ]
    assert (planned.weight, planned.metrics_requested) == (3, 2)


def test_two_thousand_queries_take_four_calls_of_five_hundred() -> None:
    # GIVEN 2,000 metric-stat queries of two sources in one region
    first = cw_source(*(stat_query(f"m{i}", str(i)) for i in range(1200)), name="a")
    second = cw_source(*(stat_query(f"n{i}", str(i)) for i in range(800)), name="b")
    planned = plan_queries([(s, q) for s in (first, second) for q in s.queries])

    # WHEN the calls are planned
    calls = plan_calls(planned, NOW)

    # THEN there are ceil(2000/500) = 4 calls, each full, with unique ids across all of them
    assert [len(call.request()["MetricDataQueries"]) for call in calls] == [500, 500, 500, 500]
    ids = [entry["Id"] for call in calls for entry in call.request()["MetricDataQueries"]]
    assert len(set(ids)) == 2000
    assert sum(call.metrics_requested for call in calls) == 2000


def test_an_expression_is_never_split_from_its_members() -> None:
    # GIVEN 499 plain queries followed by an expression with two members (three entries)
    queries = [stat_query(f"m{i}", str(i)) for i in range(499)] + [ratio_query()]
    planned = plan_queries([(cw_source(*queries), q) for q in queries])

    # WHEN the calls are planned
    calls = plan_calls(planned, NOW)

    # THEN the expression and its members move to the second call together
    assert [len(call.request()["MetricDataQueries"]) for call in calls] == [499, 3]
    assert [entry["Id"] for entry in calls[1].request()["MetricDataQueries"]] == [
        "q499_errors",
        "q499_requests",
        "q499",
    ]


def test_window_excludes_the_filling_period_and_is_aligned_to_every_period() -> None:
    # GIVEN queries with periods of one and five minutes, with a ten-minute lookback
    queries = [stat_query("a", period_seconds=60), stat_query("b", "x", period_seconds=300)]
    planned = plan_queries([(cw_source(*queries), q) for q in queries])

    # WHEN the call is planned
    (call,) = plan_calls(planned, NOW)
    request = call.request()

    # THEN it ends where the current minute began and starts on a five-minute boundary
    assert request["EndTime"].timestamp() == MINUTE
    assert request["StartTime"].timestamp() % 300 == 0
    assert request["StartTime"].timestamp() <= NOW - 600
    assert request["ScanBy"] == "TimestampDescending"
    assert request["MaxDatapoints"] == math.ceil((call.end - call.start) / 60) + math.ceil(
        (call.end - call.start) / 300
    )


def test_periods_without_a_small_common_multiple_get_their_own_windows() -> None:
    # GIVEN periods whose least common multiple exceeds a day
    queries = [stat_query("a", period_seconds=3540), stat_query("b", "x", period_seconds=3600)]
    planned = plan_queries([(cw_source(*queries, lookback=7200), q) for q in queries])

    # WHEN the calls are planned
    calls = plan_calls(planned, NOW)

    # THEN each period has its own aligned window
    assert [(call.start % call.queries[0].query.period_seconds) for call in calls] == [0, 0]
    assert len(calls) == 2


# --- fetching ------------------------------------------------------------------------------------


class PagedClient:
    """Answers GetMetricData with prepared pages, recording the NextToken of each request."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.tokens: list[str | None] = []

    def get_metric_data(self, **request: Any) -> Any:
        self.tokens.append(request.get("NextToken"))
        return self.pages[len(self.tokens) - 1]


def _result(query_id: str, *points: tuple[float, float], status: str = "Complete") -> dict[str, Any]:
    return {
        "Id": query_id,
        "Label": query_id,
        "Timestamps": [datetime.datetime.fromtimestamp(ts, tz=datetime.UTC) for ts, _ in points],
        "Values": [value for _, value in points],
        "StatusCode": status,
    }


def test_fetch_follows_next_token_and_merges_the_pages() -> None:
    # GIVEN two queries whose datapoints arrive over two pages
    queries = [stat_query("a"), stat_query("b", "x")]
    (call,) = plan_calls(plan_queries([(cw_source(*queries), q) for q in queries]), NOW)
    client = PagedClient(
        [
            {"MetricDataResults": [_result("q0", (MINUTE - 60, 5.0)), _result("q1")], "NextToken": "page2"},
            {"MetricDataResults": [_result("q1", (MINUTE - 120, 7.0))]},
        ]
    )

    # WHEN the call is fetched
    results, calls = fetch(client, call)

    # THEN both pages were requested and each id has its datapoints
    assert client.tokens == [None, "page2"]
    assert calls == 2
    assert results["q0"].points == [(MINUTE - 60, 5.0)]
    assert results["q1"].points == [(MINUTE - 120, 7.0)]


def test_fetch_stops_paginating_once_every_query_has_a_complete_datapoint() -> None:
    # GIVEN a first page that already holds a complete datapoint for the only query
    (call,) = plan_calls(plan_queries([(cw_source(stat_query()), stat_query())]), NOW)
    client = PagedClient([{"MetricDataResults": [_result("q0", (MINUTE - 60, 5.0))], "NextToken": "more"}])

    # WHEN it is fetched
    _, calls = fetch(client, call)

    # THEN older pages are not requested
    assert calls == 1


def test_expression_request_and_answer_round_trip_through_botocore(aws: None) -> None:
    # GIVEN a stubbed CloudWatch client expecting exactly the expression's request
    client = boto3.client("cloudwatch", region_name=REGION)
    source = cw_source(ratio_query())
    (call,) = plan_calls(plan_queries([(source, source.queries[0])]), NOW)
    stubber = Stubber(client)
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result("q0", (MINUTE - 60, 2.5), (MINUTE - 120, 1.5))]},
        call.request(),
    )

    # WHEN it is fetched and evaluated
    with stubber:
        results, _ = fetch(cast(Any, client), call)
    outcome = evaluate(call.queries[0], results["q0"], now=NOW, account=ACCOUNT, collected_at=NOW)

    # THEN the newest datapoint is served with its own timestamp
    stubber.assert_no_pending_responses()
    assert outcome.sample is not None
    assert (outcome.sample.value, outcome.sample.timestamp) == (2.5, MINUTE - 60)
    assert outcome.sample.labels == {"region": REGION, "account": ACCOUNT}


# --- evaluating ----------------------------------------------------------------------------------


def test_forbidden_status_is_an_error_of_that_query() -> None:
    # GIVEN a result CloudWatch marked Forbidden
    planned = PlannedQuery(cw_source(stat_query()), stat_query(), "q0")
    result = SeriesResult(status="Forbidden", labels={"q0"}, messages=["no access to namespace Shop"])

    # WHEN it is evaluated
    outcome = evaluate(planned, result, now=NOW, account=ACCOUNT, collected_at=NOW)

    # THEN it is an error naming the query
    assert outcome.error == "query orders_per_minute: Forbidden: no access to namespace Shop"


def test_expression_returning_several_series_is_an_error() -> None:
    # GIVEN an expression result with two labels (e.g. a SEARCH matching two metrics)
    planned = PlannedQuery(cw_source(ratio_query()), ratio_query(), "q0")
    result = SeriesResult(points=[(MINUTE - 60, 1.0), (MINUTE - 60, 2.0)], labels={"a", "b"})

    # WHEN it is evaluated
    outcome = evaluate(planned, result, now=NOW, account=ACCOUNT, collected_at=NOW)

    # THEN no ambiguous value is served
    assert outcome.sample is None
    assert outcome.error is not None
    assert "2 time series" in outcome.error


def test_missing_as_zero_is_zero_at_the_last_complete_period() -> None:
    # GIVEN DBLoad of an idle cluster: no datapoint at all
    preset = PRESETS["aurora_db_load"]
    query = CloudWatchQuery(
        metric=preset.metric,
        labels=(("cluster", "shop"),),
        metric_stat=MetricStatSpec(
            namespace=preset.namespace,
            metric_name=preset.metric_name,
            stat=preset.stat,
            dimensions=(("DBClusterIdentifier", "shop"),),
        ),
        missing_as_zero=True,
    )
    planned = PlannedQuery(cw_source(query), query, "q0")

    # WHEN the empty result is evaluated
    outcome = evaluate(planned, SeriesResult(), now=NOW, account=ACCOUNT, collected_at=NOW)

    # THEN 0 is served for the newest complete minute
    assert outcome.sample is not None
    assert (outcome.sample.value, outcome.sample.timestamp) == (0.0, MINUTE - 60)
    assert outcome.sample.labels == {"cluster": "shop", "region": REGION, "account": ACCOUNT}


# --- collecting over moto ------------------------------------------------------------------------


def test_newest_complete_datapoint_is_taken_with_its_own_timestamp(
    cloudwatch: Any, executor: ThreadPoolExecutor
) -> None:
    # GIVEN datapoints in the last three complete minutes and in the still-filling one
    for offset, value in ((180, 10.0), (120, 20.0), (60, 30.0), (0, 99.0)):
        put(cloudwatch, MINUTE - offset + 5, value)
    collector = CloudWatchSampler(ClientFactory(), clock=FakeClock(NOW))

    # WHEN the source is collected
    rounds = collector.round([cw_source(stat_query())], executor)

    # THEN the newest complete minute is served, timestamped at its start
    (sample,) = rounds["shop-db"].samples
    assert (sample.value, sample.timestamp, sample.collected_at) == (30.0, MINUTE - 60, NOW)
    assert rounds["shop-db"].metrics_requested == 1


def test_query_without_data_is_counted_apart_from_errors(
    cloudwatch: Any, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a query for a metric that has no datapoints
    put(cloudwatch, MINUTE - 55, 1.0, env="dev")
    collector = CloudWatchSampler(ClientFactory(), clock=FakeClock(NOW))

    # WHEN it is collected
    rounds = collector.round([cw_source(stat_query())], executor)

    # THEN nothing is served, and it is "no data", not a failure
    assert rounds["shop-db"].samples == []
    assert (rounds["shop-db"].series_no_data, rounds["shop-db"].series_failed) == (1, 0)
    assert rounds["shop-db"].errors == []


def test_consumed_capacity_preset_is_served_per_second(cloudwatch: Any, executor: ThreadPoolExecutor) -> None:
    # GIVEN a DynamoDB table that consumed 1,200 read units in the last complete minute
    cloudwatch.put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ConsumedReadCapacityUnits",
                "Dimensions": [{"Name": "TableName", "Value": "carts"}],
                "Value": 1200.0,
                "Timestamp": datetime.datetime.fromtimestamp(MINUTE - 50, tz=datetime.UTC),
            }
        ],
    )
    preset = PRESETS["dynamodb_read_capacity"]
    query = CloudWatchQuery(
        metric=preset.metric,
        labels=(("table", "carts"),),
        metric_stat=MetricStatSpec(
            namespace=preset.namespace,
            metric_name=preset.metric_name,
            stat=preset.stat,
            dimensions=(("TableName", "carts"),),
        ),
        scale=preset.scale,
    )

    # WHEN it is collected
    rounds = CloudWatchSampler(ClientFactory(), clock=FakeClock(NOW)).round([cw_source(query)], executor)

    # THEN Sum/60 is served: 20 units per second
    (sample,) = rounds["shop-db"].samples
    assert sample.value == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("preset_name", "metric_name"),
    [("sqs_sent", "NumberOfMessagesSent"), ("sqs_deleted", "NumberOfMessagesDeleted")],
)
def test_sqs_throughput_presets_are_served_per_second(
    cloudwatch: Any, executor: ThreadPoolExecutor, preset_name: str, metric_name: str
) -> None:
    # GIVEN a queue that had 900 messages sent (or deleted) in the last complete minute
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": metric_name,
                "Dimensions": [{"Name": "QueueName", "Value": "orders"}],
                "Value": 900.0,
                "Timestamp": datetime.datetime.fromtimestamp(MINUTE - 50, tz=datetime.UTC),
            }
        ],
    )
    preset = PRESETS[preset_name]
    query = CloudWatchQuery(
        metric=preset.metric,
        labels=((preset.label, "orders"),),
        metric_stat=MetricStatSpec(
            namespace=preset.namespace,
            metric_name=preset.metric_name,
            stat=preset.stat,
            dimensions=((preset.dimension, "orders"),),
        ),
        scale=preset.scale,
        missing_as_zero=preset.missing_as_zero,
    )

    # WHEN it is collected
    rounds = CloudWatchSampler(ClientFactory(), clock=FakeClock(NOW)).round([cw_source(query)], executor)

    # THEN Sum/60 is served, labelled with the queue: 15 messages per second
    (sample,) = rounds["shop-db"].samples
    assert (sample.metric, sample.labels["queue"]) == (f"sqs_{preset_name[4:]}_per_second", "orders")
    assert sample.value == pytest.approx(15.0)


def test_each_query_is_fetched_once_per_period(cloudwatch: Any, executor: ThreadPoolExecutor) -> None:
    # GIVEN half a minute into a five-minute period, a one-minute and a five-minute query with data in
    # their newest complete periods
    now = align_down(time.time(), 300) + 30.0
    put(cloudwatch, align_down(now, 60) - 55, 3.0)
    put(cloudwatch, align_down(now, 300) - 290, 4.0, env="weekly")
    clock = FakeClock(now)
    factory = ClientFactory()
    collector = CloudWatchSampler(factory, clock=clock)
    source = cw_source(stat_query("a"), stat_query("b", "weekly", period_seconds=300))

    # WHEN it is collected twice within the same minute, then once in the next minute
    first = collector.round([source], executor)
    second = collector.round([source], executor)
    clock.now += 60
    third = collector.round([source], executor)

    # THEN the first round fetches both, the second nothing, the third only the one-minute query
    assert sorted(s.value for s in first["shop-db"].samples) == [3.0, 4.0]
    assert second["shop-db"].metrics_requested == 0
    assert third["shop-db"].metrics_requested == 1
    assert factory.counter.snapshot().totals["GetMetricData"] == 2


def test_throttled_call_fails_its_queries_and_is_reported(aws: None, executor: ThreadPoolExecutor) -> None:
    # GIVEN GetMetricData throttled beyond the retry budget
    factory = ClientFactory(max_attempts=2)
    inject_error(factory.client("cloudwatch", REGION), "GetMetricData", "Throttling", message="Rate exceeded")

    # WHEN two queries are collected
    rounds = CloudWatchSampler(factory, clock=FakeClock(NOW)).round(
        [cw_source(stat_query("a"), stat_query("b", "x"))], executor
    )

    # THEN both are failed series, with one error naming the cause
    assert rounds["shop-db"].series_failed == 2
    assert rounds["shop-db"].errors == ["GetMetricData failed: Throttling: Rate exceeded"]
    assert rounds["shop-db"].samples == []


def test_sources_sharing_region_and_credentials_share_calls(
    cloudwatch: Any, executor: ThreadPoolExecutor
) -> None:
    # GIVEN two sources in one region, with data for each
    put(cloudwatch, MINUTE - 55, 1.0)
    put(cloudwatch, MINUTE - 55, 2.0, env="x")
    factory = ClientFactory()
    first, second = cw_source(stat_query("a"), name="first"), cw_source(stat_query("b", "x"), name="second")

    # WHEN both are collected
    rounds = CloudWatchSampler(factory, clock=FakeClock(NOW)).round([first, second], executor)

    # THEN one GetMetricData call carried both, counted once in total and once for each source
    assert factory.counter.snapshot().totals == {"GetMetricData": 1}
    assert factory.counter.snapshot().by_source == {
        "first": {"GetMetricData": 1},
        "second": {"GetMetricData": 1},
    }
    assert [s.value for s in rounds["first"].samples + rounds["second"].samples] == [1.0, 2.0]


def test_nothing_due_plans_no_call() -> None:
    # GIVEN no due query
    # WHEN calls are planned
    # THEN no request is made at all
    assert plan_calls([], NOW) == []


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        ("arn:aws:lambda:eu-west-1:444455556666:function:collect", "444455556666"),
        ("arn:aws-cn:lambda:cn-north-1:444455556666:function:collect:live", "444455556666"),
        ("arn:aws:lambda:eu-west-1:4444:function:collect", None),
        ("not-an-arn", None),
        ("", None),
    ],
)
def test_account_of_arn_reads_the_account_or_nothing(arn: str, account: str | None) -> None:
    # a malformed ARN gives None, so the collector falls back to STS rather than mislabelling
    assert account_of_arn(arn) == account
