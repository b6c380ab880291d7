"""End to end over real HTTP and a real Redis: ``tidegauge collect`` against a moto server on 127.0.0.1."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.collectors import FakeClock, moto_server, reset_moto
from tidegauge.cli import main
from tidegauge.config import parse_config
from tidegauge.localredis import RedisServer, free_port
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.sources.aws import ClientFactory
from tidegauge.sources.cloudwatch import align_down
from tidegauge.sources.collector import Collector
from tidegauge.store import Store

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:6379/0"}
sampling: {interval_seconds: 15, deadline_margin_seconds: 0}
sources:
  - name: shop
    type: sqs
    region: eu-west-1
    queues: {names: [orders], prefixes: [jobs-]}
    disappeared_grace_seconds: 600
  - name: shop-db
    type: cloudwatch
    region: eu-west-1
    queries:
      - preset: aurora_cpu
        identifier: shop
      - preset: aurora_db_load
        identifier: shop
"""


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    reset_moto(moto_endpoint)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("TIDEGAUGE_REDIS_SECRET", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[Store]:
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    yield store
    store.close()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tidegauge.yaml"
    path.write_text(CONFIG)
    return path


def client(service: str) -> Any:
    """A test-side client; it reaches the moto server through AWS_ENDPOINT_URL like the collector."""
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]  # stubs want a literal


def summaries(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_collect_once_writes_queue_depth_with_labels_timestamps_and_status(
    aws: str, store: Store, redis_server: RedisServer, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN queues on the moto server: orders with 2 messages, jobs-a with 1 in flight, other (not selected)
    sqs = client("sqs")
    orders = sqs.create_queue(QueueName="orders")["QueueUrl"]
    jobs = sqs.create_queue(QueueName="jobs-a")["QueueUrl"]
    sqs.create_queue(QueueName="other")
    sqs.send_message(QueueUrl=orders, MessageBody="1")
    sqs.send_message(QueueUrl=orders, MessageBody="2")
    sqs.send_message(QueueUrl=jobs, MessageBody="3")
    sqs.receive_message(QueueUrl=jobs, VisibilityTimeout=300)
    before = time.time()

    # WHEN one invocation runs outside Lambda (AWS_ENDPOINT_URL leads to the moto server)
    arguments = [
        "--kind",
        "sqs",
        "--timeout",
        "1",
        "--config",
        str(config_file),
        "--redis-url",
        redis_server.url,
    ]
    code = main(["collect", "--once", *arguments])
    after = time.time()

    # THEN it succeeded in one round (the 1 s budget allows no second one)
    assert code == 0
    (summary,) = summaries(capsys.readouterr().out)
    assert (summary["sources"], summary["rounds"], summary["samples_written"]) == (["shop"], 1, 6)
    assert summary["api_calls"] == {"GetQueueUrl": 1, "ListQueues": 1, "GetQueueAttributes": 2}
    # AND Redis holds each state with labels and the time SQS answered
    latest = {(s.labels["queue"], s.labels["state"]): s for s in store.read_latest("sqs_messages")}
    assert {key: s.value for key, s in latest.items()} == {
        ("jobs-a", "delayed"): 0,
        ("jobs-a", "in_flight"): 1,
        ("jobs-a", "visible"): 0,
        ("orders", "delayed"): 0,
        ("orders", "in_flight"): 0,
        ("orders", "visible"): 2,
    }
    sample = latest[("orders", "visible")]
    assert sample.labels == {
        "queue": "orders",
        "state": "visible",
        "region": REGION,
        "account": "123456789012",
    }
    assert before <= sample.timestamp <= sample.collected_at <= after
    assert sample.source == "shop"
    # AND the collector status records the run and its cost
    status = store.read_statuses()["shop"]
    assert (status.ok, status.samples_written, status.series_failed) == (True, 6, 0)
    assert status.api_calls == {"GetQueueUrl": 1, "ListQueues": 1, "GetQueueAttributes": 2}
    assert store.read_usage("shop")["api_calls.GetQueueAttributes"] == 2


def test_collect_once_reads_cloudwatch_over_http(
    aws: str, store: Store, redis_server: RedisServer, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN Aurora CPU in the last complete minute, and no DBLoad (an idle cluster)
    minute = align_down(time.time(), 60)
    client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "DBClusterIdentifier", "Value": "shop"}],
                "Value": 63.0,
                "Timestamp": datetime.datetime.fromtimestamp(minute - 30, tz=datetime.UTC),
            }
        ],
    )

    # WHEN the CloudWatch sources are collected once
    arguments = [
        "--source",
        "shop-db",
        "--timeout",
        "1",
        "--config",
        str(config_file),
        "--redis-url",
        redis_server.url,
    ]
    code = main(["collect", "--once", *arguments])

    # THEN one GetMetricData call served both queries, with the datapoint's own timestamp
    assert code == 0
    (summary,) = summaries(capsys.readouterr().out)
    assert summary["api_calls"] == {"GetCallerIdentity": 1, "GetMetricData": 1}
    cpu = store.read_latest("aurora_cpu_percent")[0]
    assert (cpu.value, cpu.timestamp) == (63.0, minute - 60)
    assert cpu.labels == {"cluster": "shop", "region": REGION, "account": "123456789012"}
    assert store.read_latest("aurora_db_load")[0].value == 0.0


def test_explicit_endpoint_beats_the_environment(
    aws: str, store: Store, redis_server: RedisServer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN AWS_ENDPOINT_URL pointing nowhere, and the moto server given with --endpoint-url
    client("sqs").create_queue(QueueName="orders")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")

    # WHEN the collector runs
    code = main(
        [
            "collect",
            "--once",
            "--kind",
            "sqs",
            "--timeout",
            "1",
            "--config",
            str(config_file),
            "--redis-url",
            redis_server.url,
            "--endpoint-url",
            aws,
        ]
    )

    # THEN it reached the moto server
    assert code == 0
    assert len(store.read_latest("sqs_messages")) == 3


def test_loop_starts_an_invocation_every_period_until_the_duration(
    aws: str, store: Store, redis_server: RedisServer, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a queue
    client("sqs").create_queue(QueueName="orders")

    # WHEN the collector loops every 0.2 s for 0.5 s
    code = main(
        [
            "collect",
            "--loop",
            "--every",
            "0.2",
            "--duration",
            "0.5",
            "--timeout",
            "0.1",
            "--kind",
            "sqs",
            "--config",
            str(config_file),
            "--redis-url",
            redis_server.url,
        ]
    )

    # THEN three invocations ran (at 0, 0.2 and 0.4 s), each recorded
    assert code == 0
    assert len(summaries(capsys.readouterr().out)) == 3
    assert store.read_usage("shop")["runs"] == 3


def test_redis_down_fails_with_a_clear_message(
    aws: str, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Redis URL nothing listens on
    client("sqs").create_queue(QueueName="orders")
    url = f"redis://127.0.0.1:{free_port()}/0"

    # WHEN the collector runs
    code = main(["collect", "--once", "--config", str(config_file), "--redis-url", url])

    # THEN it fails with status 1 (a run-time failure) and says why, never a silent success
    assert code == 1
    error = capsys.readouterr().err
    assert "Redis unreachable" in error
    assert "127.0.0.1" in error


def test_disappeared_queue_is_retired_after_its_grace_period(aws: str, store: Store) -> None:
    # GIVEN the named queue and two listed queues, collected once
    sqs = client("sqs")
    sqs.create_queue(QueueName="orders")
    sqs.create_queue(QueueName="jobs-a")
    doomed = sqs.create_queue(QueueName="jobs-b")["QueueUrl"]
    config = parse_config(CONFIG, environ={})
    (source,) = [s for s in config.sources if s.name == "shop"]
    # An hour in the past, so that the 660 s this test moves the clock on stay in the past too.
    clock = FakeClock(time.time() - 3600)
    collector = Collector(ClientFactory(), clock=clock, sleep=clock.sleep)

    def invoke() -> Any:
        return collector.collect(store, config, [source], remaining_time_ms=lambda: 0)

    invoke()

    # WHEN jobs-b is deleted, and the collector runs a minute later, then after the 600 s grace
    sqs.delete_queue(QueueUrl=doomed)
    clock.now += 60
    within_grace = invoke()
    kept = {s.labels["queue"] for s in store.read_latest("sqs_messages")}
    clock.now += 600
    after_grace = invoke()

    # THEN its series are served until the grace period ends, then retired; jobs-a stays
    assert within_grace.series_failed == 1
    assert within_grace.retired == 0
    assert "jobs-b" in kept
    assert after_grace.retired == 3
    assert {s.labels["queue"] for s in store.read_latest("sqs_messages")} == {"orders", "jobs-a"}


def test_assumed_role_credentials_are_reused_and_label_the_account(aws: str, store: Store) -> None:
    # GIVEN a queue in another account, reachable through a role there
    role_arn = "arn:aws:iam::210987654321:role/tidegauge-reader"
    assumed = client("sts").assume_role(RoleArn=role_arn, RoleSessionName="setup")["Credentials"]
    boto3.client(
        "sqs",
        region_name=REGION,
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    ).create_queue(QueueName="partner-orders")
    config = parse_config(
        CONFIG.replace(
            "queues: {names: [orders], prefixes: [jobs-]}",
            f"role_arn: {role_arn}\n    queues: {{prefixes: [partner-]}}",
        ),
        environ={},
    )
    (source,) = [s for s in config.sources if s.name == "shop"]
    factory = ClientFactory()
    collector = Collector(factory)

    # WHEN it is collected twice
    for _ in range(2):
        collector.collect(store, config, [source], remaining_time_ms=lambda: 0)

    # THEN the role was assumed once, and the series carry the other account
    assert factory.counter.snapshot().by_source["shop"]["AssumeRole"] == 1
    (account,) = {s.labels["account"] for s in store.read_latest("sqs_messages")}
    assert account == "210987654321"
