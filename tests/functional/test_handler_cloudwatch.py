"""The CloudWatch collector handler on recorded events: mock AWS (SSM, CloudWatch), real Redis."""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.functional.conftest import REGION, lambda_environment_for
from tests.support.collectors import FakeClock, FakeLambdaContext, emf_records, load_event, load_handler
from tidegauge.localredis import RedisServer
from tidegauge.sources.cloudwatch import align_down
from tidegauge.store import Store

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:6379/0"}
sources:
  - name: orders
    type: sqs
    region: eu-west-1
    queues: {names: [orders]}
  - name: shop-db
    type: cloudwatch
    region: eu-west-1
    queries:
      - preset: aurora_db_load
        identifier: shop
      - preset: aurora_cpu
        identifier: shop
      - preset: aurora_connections
        identifier: shop
  - name: reports-db
    type: cloudwatch
    region: eu-west-1
    account: "210987654321"
    queries:
      - preset: rds_cpu
        identifier: reports
"""


@pytest.fixture
def cloudwatch(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, restore_logging: None
) -> Iterator[Any]:
    with lambda_environment_for(monkeypatch, redis_server.url, service="collect-cloudwatch", config=CONFIG):
        yield boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(align_down(time.time(), 60) + 20)


@pytest.fixture
def app(cloudwatch: Any, clock: FakeClock) -> ModuleType:
    return load_handler("collect_cloudwatch", clock)


def put_rds(
    cloudwatch: Any, name: str, dimension: str, identifier: str, timestamp: float, value: float
) -> None:
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": dimension, "Value": identifier}],
                "Value": value,
                "Timestamp": datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC),
            }
        ],
    )


def test_scheduled_event_fetches_all_queries_in_one_call(
    app: ModuleType, cloudwatch: Any, store: Store, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN CPU of both databases in the last complete minute, an idle cluster (no DBLoad) and no
    # connection data at all
    minute = align_down(clock.now, 60)
    put_rds(cloudwatch, "CPUUtilization", "DBClusterIdentifier", "shop", minute - 50, 41.5)
    put_rds(cloudwatch, "CPUUtilization", "DBInstanceIdentifier", "reports", minute - 50, 12.0)

    # WHEN the scheduled event is handled
    summary = app.lambda_handler(load_event("scheduled.json"), FakeLambdaContext(clock=clock))

    # THEN the four queries of both sources went into one GetMetricData call, in one round
    assert summary["api_calls"] == {"GetParameter": 1, "GetMetricData": 1}
    assert (summary["rounds"], summary["metrics_requested"], summary["series_no_data"]) == (1, 4, 1)
    # AND values carry the datapoint's own timestamp, labels, and idle DBLoad reads as 0
    cpu = store.read_latest("aurora_cpu_percent")[0]
    assert (cpu.value, cpu.timestamp) == (41.5, minute - 60)
    assert cpu.labels == {"cluster": "shop", "region": REGION, "account": "123456789012"}
    load = store.read_latest("aurora_db_load")[0]
    assert (load.value, load.timestamp) == (0.0, minute - 60)
    assert store.read_latest("rds_cpu_percent")[0].labels["account"] == "210987654321"
    assert store.read_latest("aurora_connections") == []
    # AND the status tells no data apart from failures, and what each source cost
    statuses = store.read_statuses()
    shop = statuses["shop-db"]
    assert (shop.ok, shop.samples_written, shop.series_no_data, shop.series_failed) == (True, 2, 1, 0)
    assert (shop.metrics_requested, statuses["reports-db"].metrics_requested) == (3, 1)
    assert shop.api_calls == {"GetMetricData": 1}
    (record,) = emf_records(capsys.readouterr().out)
    assert (record["MetricsRequested"], record["SeriesNoData"]) == ([4.0], [1.0])
    assert record["NewestSampleAgeSeconds"] == [80.0]


def test_db_load_alarm_collects_that_database_at_once_even_if_fetched(
    app: ModuleType, cloudwatch: Any, store: Store, clock: FakeClock
) -> None:
    # GIVEN a schedule that already fetched this minute, then new DBLoad data for the shop cluster
    minute = align_down(clock.now, 60)
    app.lambda_handler(load_event("scheduled.json"), FakeLambdaContext(clock=clock))
    put_rds(cloudwatch, "DBLoad", "DBClusterIdentifier", "shop", minute - 40, 6.1)
    clock.now += 5

    # WHEN the DBLoad alarm state change arrives
    summary = app.lambda_handler(load_event("alarm_state_change_dbload.json"), FakeLambdaContext(clock=clock))

    # THEN only shop-db is collected, forced, and the fresh value replaces the idle 0
    assert summary["sources"] == ["shop-db"]
    assert summary["metrics_requested"] == 3
    assert store.read_latest("aurora_db_load")[0].value == 6.1


def test_second_schedule_in_the_same_minute_fetches_nothing(
    app: ModuleType, cloudwatch: Any, store: Store, clock: FakeClock
) -> None:
    # GIVEN a scheduled invocation that fetched every query
    put_rds(cloudwatch, "CPUUtilization", "DBClusterIdentifier", "shop", align_down(clock.now, 60) - 50, 41.5)
    app.lambda_handler(load_event("scheduled.json"), FakeLambdaContext(clock=clock))

    # WHEN another scheduled invocation runs before a new minute completed
    clock.now += 10
    summary = app.lambda_handler(load_event("scheduled.json"), FakeLambdaContext(clock=clock))

    # THEN no metric was requested again: CloudWatch data only changes once per period
    assert summary["metrics_requested"] == 0
    assert "GetMetricData" not in summary["api_calls"]


@pytest.fixture
def no_sts_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """STS pointed at a loopback port that refuses connections: a VPC without an STS endpoint."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{closed.getsockname()[1]}")
        yield


def test_account_label_comes_from_the_function_arn_without_sts(
    cloudwatch: Any, no_sts_endpoint: None, store: Store, clock: FakeClock
) -> None:
    # GIVEN no STS endpoint at all, and a function deployed in account 444455556666
    app = load_handler("collect_cloudwatch", clock)
    minute = align_down(clock.now, 60)
    put_rds(cloudwatch, "CPUUtilization", "DBClusterIdentifier", "shop", minute - 50, 41.5)
    put_rds(cloudwatch, "CPUUtilization", "DBInstanceIdentifier", "reports", minute - 50, 12.0)
    arn = "arn:aws:lambda:eu-west-1:444455556666:function:tidegauge-dev-CollectCloudWatch"
    context = FakeLambdaContext(clock=clock, invoked_function_arn=arn)

    # WHEN the scheduled event is handled
    summary = app.lambda_handler(load_event("scheduled.json"), context)

    # THEN the source without account or role_arn is labelled with the function's account, no STS call
    # was made, and nothing failed
    assert "GetCallerIdentity" not in summary["api_calls"]
    assert summary["ok"], summary["errors"]
    assert store.read_latest("aurora_cpu_percent")[0].labels["account"] == "444455556666"
    # AND a configured account still wins
    assert store.read_latest("rds_cpu_percent")[0].labels["account"] == "210987654321"


# The same document without its CloudWatch sources.
SQS_ONLY_CONFIG = CONFIG[: CONFIG.index("  - name: shop-db")]


def test_function_without_sources_of_its_kind_emits_a_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,
    restore_logging: None,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a config with SQS sources only
    with lambda_environment_for(
        monkeypatch, redis_server.url, service="collect_cloudwatch", config=SQS_ONLY_CONFIG
    ):
        app = load_handler("collect_cloudwatch", clock)
        # WHEN the CloudWatch collector's schedule fires
        summary = app.lambda_handler(load_event("scheduled.json"), FakeLambdaContext(clock=clock))

    # THEN it wrote nothing, but its EMF record carries the heartbeat the no-samples alarm counts
    assert (summary["ok"], summary["samples_written"]) == (True, 0)
    (record,) = emf_records(capsys.readouterr().out)
    assert record["IdleHeartbeat"] == [1.0]
    assert record["service"] == "collect_cloudwatch"
