"""The SQS collector handler on recorded events: mock AWS (SSM, Secrets Manager, SQS), real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
import redis

from tests.functional.conftest import PARAMETER, REGION, lambda_environment_for
from tests.support.collectors import FakeClock, FakeLambdaContext, emf_records, load_event, load_handler
from tidegauge.localredis import RedisServer, find_server_binary, free_port
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.sources.exceptions import CollectionError, UnrecognisedEventError
from tidegauge.store import Store

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:6379/0"}
sampling: {interval_seconds: 15, quiet_period_seconds: 300, deadline_margin_seconds: 3}
sources:
  - name: orders
    type: sqs
    region: eu-west-1
    queues: {names: [orders]}
  - name: billing
    type: sqs
    region: eu-west-1
    queues: {prefixes: [billing-]}
  - name: shop-db
    type: cloudwatch
    region: eu-west-1
    queries:
      - preset: aurora_db_load
        identifier: shop
"""


@pytest.fixture
def lambda_environment(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, restore_logging: None
) -> Iterator[None]:
    with lambda_environment_for(monkeypatch, redis_server.url, service="collect-sqs", config=CONFIG):
        yield


@pytest.fixture
def sqs(lambda_environment: None) -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def app(lambda_environment: None, clock: FakeClock) -> ModuleType:
    return load_handler("collect_sqs", clock)


def context(clock: FakeClock) -> FakeLambdaContext:
    return FakeLambdaContext(clock=clock, function_name="tidegauge-collect-sqs")


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    (record,) = emf_records(capsys.readouterr().out)
    return record


def test_scheduled_event_samples_every_queue_in_rounds(
    app: ModuleType, sqs: Any, store: Store, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a queue with two messages and an empty one matching a prefix
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    sqs.create_queue(QueueName="billing-eu")
    started = clock.now

    # WHEN the scheduled event is handled within a 60 s timeout
    summary = app.lambda_handler(load_event("scheduled.json"), context(clock))

    # THEN both SQS sources were sampled every 15 s (4 rounds x 2 queues x 3 states)
    assert summary["trigger"] == "schedule"
    assert sorted(summary["sources"]) == ["billing", "orders"]
    assert (summary["rounds"], summary["stopped"], summary["ok"]) == (4, "deadline", True)
    assert summary["samples_written"] == 24
    assert summary["api_calls"]["GetQueueAttributes"] == 8
    latest = {(s.labels["queue"], s.labels["state"]): s for s in store.read_latest("sqs_messages")}
    assert latest[("orders", "visible")].value == 2
    assert latest[("orders", "visible")].timestamp == started + 45
    assert latest[("billing-eu", "visible")].labels == {
        "queue": "billing-eu",
        "state": "visible",
        "region": REGION,
        "account": "123456789012",
    }
    # AND the status records the cost, including the compute seconds
    status = store.read_statuses()["orders"]
    assert (status.ok, status.kind, status.samples_written) == (True, "sqs", 12)
    assert status.api_calls == {"GetQueueUrl": 1, "GetQueueAttributes": 4}
    assert status.duration_share_seconds == pytest.approx(45 / 2)
    # AND the EMF document carries the metrics the template alarms on, with the service dimension
    record = emitted(capsys)
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "tidegauge"
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert record["service"] == "collect-sqs"
    assert (record["SamplesWritten"], record["CollectionErrors"]) == ([24.0], [0.0])
    assert record["NewestSampleAgeSeconds"] == [0.0]
    assert record["AwsApiCalls"] == [float(sum(summary["api_calls"].values()))]
    assert (record["MetricsRequested"], record["CollectionDuration"]) == ([0.0], [45.0])
    assert record["api_calls"] == summary["api_calls"]


def test_alarm_on_a_queue_collects_its_source_in_one_round(
    app: ModuleType, sqs: Any, store: Store, clock: FakeClock
) -> None:
    # GIVEN the orders queue (alarmed on) and a billing queue
    sqs.create_queue(QueueName="orders")
    sqs.create_queue(QueueName="billing-eu")

    # WHEN the alarm state change event is handled
    summary = app.lambda_handler(load_event("alarm_state_change_sqs.json"), context(clock))

    # THEN only the orders source was collected, at once and once
    assert summary["trigger"] == "alarm orders-backlog-high -> ALARM"
    assert (summary["sources"], summary["rounds"], summary["stopped"]) == (["orders"], 1, "single")
    assert {s.labels["queue"] for s in store.read_latest("sqs_messages")} == {"orders"}
    assert clock.slept == []


def test_collect_event_collects_the_named_sources_of_this_function(
    app: ModuleType, sqs: Any, store: Store, clock: FakeClock
) -> None:
    # GIVEN a custom event naming the SQS source orders and the CloudWatch source shop-db
    sqs.create_queue(QueueName="orders")

    # WHEN the SQS handler handles it
    summary = app.lambda_handler(load_event("custom_collect.json"), context(clock))

    # THEN it collected orders only; shop-db is the CloudWatch function's, so not unknown
    assert (summary["sources"], summary["unknown_sources"], summary["ok"]) == (["orders"], [], True)
    assert summary["rounds"] == 1


def test_collect_event_naming_an_unknown_source_reports_it(
    app: ModuleType, store: Store, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a custom event naming a source the config does not have
    event = load_event("custom_collect.json")
    event["detail"]["sources"] = ["odrers"]

    # WHEN it is handled
    summary = app.lambda_handler(event, context(clock))

    # THEN nothing is collected, the name is reported, and it counts as an error
    assert (summary["sources"], summary["unknown_sources"], summary["ok"]) == ([], ["odrers"], False)
    assert emitted(capsys)["CollectionErrors"] == [1.0]


def test_redis_unreachable_fails_the_invocation_and_still_emits_metrics(
    app: ModuleType,
    sqs: Any,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN Redis on a port nothing listens on
    sqs.create_queue(QueueName="orders")
    monkeypatch.setenv("TIDEGAUGE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")

    # WHEN the scheduled event is handled
    with pytest.raises(CollectionError, match="Redis") as raised:
        app.lambda_handler(load_event("scheduled.json"), context(clock))

    # THEN the invocation failed with a clear error, no AWS call was wasted, and the error was counted
    assert "127.0.0.1" in str(raised.value)
    assert app.function.factory.counter.snapshot().totals.get("GetQueueAttributes", 0) == 0
    assert emitted(capsys)["CollectionErrors"] == [1.0]


def test_missing_config_parameter_variable_names_the_fix(
    app: ModuleType, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function without TIDEGAUGE_CONFIG_PARAMETER
    monkeypatch.delenv("TIDEGAUGE_CONFIG_PARAMETER")

    # WHEN it is invoked
    # THEN it fails, naming the variable to set
    with pytest.raises(CollectionError, match="TIDEGAUGE_CONFIG_PARAMETER is not set"):
        app.lambda_handler(load_event("scheduled.json"), context(clock))


def test_invalid_config_in_ssm_fails_naming_the_field(app: ModuleType, clock: FakeClock) -> None:
    # GIVEN a config whose sampling interval is out of range
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=PARAMETER, Value=CONFIG.replace("interval_seconds: 15", "interval_seconds: 0"), Overwrite=True
    )

    # WHEN the function is invoked
    # THEN it fails with the field and the origin
    with pytest.raises(CollectionError, match=r"ssm:/tidegauge/config: sampling.interval_seconds"):
        app.lambda_handler(load_event("scheduled.json"), context(clock))


def test_unrecognised_event_fails_naming_the_accepted_events(app: ModuleType, clock: FakeClock) -> None:
    # GIVEN an event from an S3 notification
    event = {"Records": [{"eventSource": "aws:s3"}]}

    # WHEN it is handled
    # THEN the error lists what the function accepts
    with pytest.raises(UnrecognisedEventError, match="Scheduled Event"):
        app.lambda_handler(event, context(clock))


def test_config_is_read_from_ssm_once_while_cached(
    app: ModuleType, sqs: Any, store: Store, clock: FakeClock
) -> None:
    # GIVEN a queue
    sqs.create_queue(QueueName="orders")

    # WHEN two invocations run a minute apart
    app.lambda_handler(load_event("alarm_state_change_sqs.json"), context(clock))
    clock.now += 60
    app.lambda_handler(load_event("alarm_state_change_sqs.json"), context(clock))

    # THEN the parameter was read once, and the queue URL resolved once
    totals = app.function.factory.counter.snapshot().totals
    assert (totals["GetParameter"], totals["GetQueueUrl"], totals["GetQueueAttributes"]) == (1, 1, 2)


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    """A private server that requires AUTH (set after start, so start-up needs no password)."""
    with RedisServer(binary=find_server_binary()) as server:
        client = redis.Redis.from_url(server.url)
        client.config_set("requirepass", "tide-s3cret")
        client.close()
        yield server


@pytest.mark.parametrize("secret", ["tide-s3cret", json.dumps({"password": "tide-s3cret"})])
def test_redis_auth_token_comes_from_secrets_manager(
    app: ModuleType,
    sqs: Any,
    clock: FakeClock,
    password_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    secret: str,
) -> None:
    # GIVEN a Redis that requires AUTH, and its token in Secrets Manager (bare, or as JSON)
    sqs.create_queue(QueueName="orders")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="tidegauge/redis", SecretString=secret
    )
    monkeypatch.setenv("TIDEGAUGE_REDIS_URL", password_server.url)
    monkeypatch.setenv("TIDEGAUGE_REDIS_SECRET", "tidegauge/redis")

    # WHEN an invocation runs
    summary = app.lambda_handler(load_event("alarm_state_change_sqs.json"), context(clock))

    # THEN it authenticated and wrote
    assert summary["samples_written"] == 3
    authenticated = Store.connect(ConnectionSettings(password_server.url, password="tide-s3cret"))
    assert len(authenticated.read_latest("sqs_messages")) == 3
    authenticated.close()
