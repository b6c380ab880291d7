"""The SQS collector's tick chain on mock AWS and real Redis: one round per tick, the next tick sent with
the interval as its delay, stale ticks dropped, and the schedule restarting a chain that stopped."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.functional.conftest import REGION, lambda_environment_for
from tests.support.collectors import (
    FakeClock,
    FakeLambdaContext,
    emf_records,
    inject_error,
    load_event,
    load_handler,
)
from tidegauge.localredis import RedisServer
from tidegauge.sources.exceptions import CollectionError
from tidegauge.sources.function import CollectorFunction
from tidegauge.store import Store

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:6379/0"}
sampling: {interval_seconds: 15, quiet_period_seconds: 300}
sources:
  - name: orders
    type: sqs
    region: eu-west-1
    queues: {names: [orders]}
"""


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, restore_logging: None) -> Iterator[Any]:
    with lambda_environment_for(monkeypatch, redis_server.url, service="collect-sqs", config=CONFIG):
        client = boto3.client("sqs", region_name=REGION)
        tick_url = client.create_queue(QueueName="tidegauge-ticks")["QueueUrl"]
        monkeypatch.setenv("TIDEGAUGE_TICK_QUEUE_URL", tick_url)
        client.send_message(QueueUrl=client.create_queue(QueueName="orders")["QueueUrl"], MessageBody="m")
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def app(sqs: Any, store: Store, clock: FakeClock) -> ModuleType:
    """The handler around ``clock``, over an empty Redis (``store`` flushes it: no chain yet)."""
    return load_handler("collect_sqs", clock)


@pytest.fixture
def sent(app: ModuleType) -> list[dict[str, Any]]:
    """The SendMessage requests the function's own SQS client makes (the ticks it hands on)."""
    requests: list[dict[str, Any]] = []
    client = app.function.factory.client("sqs", None)
    client.meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: requests.append(dict(params))
    )
    return requests


def context(clock: FakeClock) -> FakeLambdaContext:
    return FakeLambdaContext(clock=clock, function_name="tidegauge-collect-sqs")


def tick_event(body: str) -> dict[str, Any]:
    """What the event source mapping hands the function for one tick message."""
    return {
        "Records": [
            {
                "messageId": "0b5a9c3e-5d1f-4c55-9f5e-3f0d1b2a7c11",
                "receiptHandle": "handle",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:tidegauge-ticks",
                "awsRegion": REGION,
            }
        ]
    }


def delayed_ticks(sqs: Any) -> int:
    url = sqs.get_queue_url(QueueName="tidegauge-ticks")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_schedule_starts_a_chain_samples_once_and_sends_a_tick_delayed_by_the_interval(
    app: ModuleType, sqs: Any, store: Store, clock: FakeClock, sent: list[dict[str, Any]]
) -> None:
    # GIVEN no chain yet
    # WHEN the one-minute schedule fires
    summary = app.lambda_handler(load_event("scheduled.json"), context(clock))

    # THEN it sampled once without waiting (the chain, not a sleep, paces the rounds)
    assert (summary["rounds"], summary["stopped"], summary["samples_written"]) == (1, "single", 3)
    assert clock.slept == []
    # AND it started the chain: one tick sent, delayed by the 15 s interval
    assert summary["tick"] == {"action": "restarted", "next_tick_delay_seconds": 15}
    (request,) = sent
    assert request["DelaySeconds"] == 15
    assert json.loads(request["MessageBody"])["tidegauge"] == "tidegauge.tick"
    assert delayed_ticks(sqs) == 1
    assert summary["api_calls"]["SendMessage"] == 1


def test_tick_of_the_current_chain_samples_and_hands_on_a_fresh_token(
    app: ModuleType, store: Store, clock: FakeClock, sent: list[dict[str, Any]]
) -> None:
    # GIVEN a chain the schedule started
    app.lambda_handler(load_event("scheduled.json"), context(clock))
    first = sent[-1]["MessageBody"]

    # WHEN its tick arrives 15 s later
    clock.now += 15
    summary = app.lambda_handler(tick_event(first), context(clock))

    # THEN it sampled once and sent the next tick, with a token of its own
    assert summary["trigger"] == "tick"
    assert (summary["rounds"], summary["samples_written"]) == (1, 3)
    assert summary["tick"] == {"action": "accepted", "next_tick_delay_seconds": 15}
    assert len(sent) == 2
    assert sent[1]["DelaySeconds"] == 15
    assert json.loads(sent[1]["MessageBody"])["token"] != json.loads(first)["token"]
    latest = {s.labels["state"]: s for s in store.read_latest("sqs_messages")}
    assert latest["visible"].timestamp == clock.now


def test_a_duplicate_or_superseded_tick_is_dropped_without_sampling(
    app: ModuleType, clock: FakeClock, sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a chain whose tick was delivered and handed on once
    app.lambda_handler(load_event("scheduled.json"), context(clock))
    first = sent[-1]["MessageBody"]
    clock.now += 15
    app.lambda_handler(tick_event(first), context(clock))
    calls_before = app.function.factory.counter.snapshot().totals

    # WHEN the same tick is delivered again (SQS delivers at least once)
    summary = app.lambda_handler(tick_event(first), context(clock))

    # THEN it is dropped: no round, no AWS call, and no second chain
    assert summary["tick"]["action"] == "dropped"
    assert (summary["sources"], summary["samples_written"], summary["ok"]) == ([], 0, True)
    assert app.function.factory.counter.snapshot().totals == calls_before
    assert len(sent) == 2
    assert emf_records(capsys.readouterr().out)[-1]["TicksDropped"] == [1.0]
    # AND the chain's own next tick still carries on
    clock.now += 15
    assert app.lambda_handler(tick_event(sent[-1]["MessageBody"]), context(clock))["tick"]["action"] == (
        "accepted"
    )


def test_schedule_leaves_a_live_chain_alone(
    app: ModuleType, clock: FakeClock, sent: list[dict[str, Any]]
) -> None:
    # GIVEN a chain that handed on a tick 15 s ago
    app.lambda_handler(load_event("scheduled.json"), context(clock))
    clock.now += 15
    app.lambda_handler(tick_event(sent[-1]["MessageBody"]), context(clock))
    clock.now += 15

    # WHEN the schedule fires
    summary = app.lambda_handler(load_event("scheduled.json"), context(clock))

    # THEN it starts no second chain, and takes no round of its own (the chain's ticks sample)
    assert summary["tick"] == {"action": "alive", "next_tick_delay_seconds": 0}
    assert (summary["sources"], summary["samples_written"]) == ([], 0)
    assert "GetQueueAttributes" not in summary["api_calls"]
    assert len(sent) == 2


def test_schedule_restarts_a_chain_that_stopped_and_the_old_one_dies(
    app: ModuleType, clock: FakeClock, sent: list[dict[str, Any]]
) -> None:
    # GIVEN a chain whose tick was lost: nothing handed on for more than two intervals and 10 s
    app.lambda_handler(load_event("scheduled.json"), context(clock))
    lost = sent[-1]["MessageBody"]
    clock.now += 41

    # WHEN the schedule fires
    summary = app.lambda_handler(load_event("scheduled.json"), context(clock))

    # THEN it starts a new chain
    assert summary["tick"]["action"] == "restarted"
    assert len(sent) == 2
    # AND should the lost tick turn up after all, it is dropped: one chain, never two
    assert app.lambda_handler(tick_event(lost), context(clock))["tick"]["action"] == "dropped"
    assert app.lambda_handler(tick_event(sent[-1]["MessageBody"]), context(clock))["tick"]["action"] == (
        "accepted"
    )
    assert len(sent) == 3


def test_a_failed_send_is_counted_and_the_round_still_runs(
    app: ModuleType, clock: FakeClock, sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN SendMessage failing (e.g. the queue policy was changed)
    client = app.function.factory.client("sqs", None)
    inject_error(client, "SendMessage", "AccessDenied", status=403, message="not allowed")

    # WHEN the schedule fires
    summary = app.lambda_handler(load_event("scheduled.json"), context(clock))

    # THEN the queues were still sampled, and the failure is counted for the errors alarm
    assert summary["tick"]["action"] == "send_failed"
    assert summary["samples_written"] == 3
    (record,) = emf_records(capsys.readouterr().out)
    assert record["CollectionErrors"] == [1.0, 0.0]


def test_a_tick_without_the_queue_variable_fails_naming_it(
    app: ModuleType, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDEGAUGE_TICK_QUEUE_URL")
    body = json.dumps({"tidegauge": "tidegauge.tick", "token": 1})
    with pytest.raises(CollectionError, match="TIDEGAUGE_TICK_QUEUE_URL is not set"):
        app.lambda_handler(tick_event(body), context(clock))


def test_two_stacks_sharing_a_redis_keep_a_chain_each(
    app: ModuleType, sqs: Any, clock: FakeClock, sent: list[dict[str, Any]]
) -> None:
    # GIVEN a second stack's SQS collector with its own tick queue, on the same Redis
    other_queue = sqs.create_queue(QueueName="prod-ticks")["QueueUrl"]
    other = CollectorFunction(
        "sqs",
        metrics=app.function.metrics,
        environ={**os.environ, "TIDEGAUGE_TICK_QUEUE_URL": other_queue},
        clock=clock,
        sleep=clock.sleep,
    )

    # WHEN both schedules start their chains
    app.lambda_handler(load_event("scheduled.json"), context(clock))
    assert other.handle(load_event("scheduled.json"), context(clock))["tick"]["action"] == "restarted"

    # THEN neither superseded the other: the first stack's tick is still its chain's
    clock.now += 15
    assert app.lambda_handler(tick_event(sent[0]["MessageBody"]), context(clock))["tick"]["action"] == (
        "accepted"
    )


def test_the_next_tick_is_delivered_after_its_delay_and_carries_the_chain_on(
    app: ModuleType, sqs: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a 1 s interval (so the tick's DelaySeconds is 1)
    fast = CONFIG.replace("interval_seconds: 15", "interval_seconds: 1")
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/tidegauge/fast", Value=fast, Type="String")
    monkeypatch.setenv("TIDEGAUGE_CONFIG_PARAMETER", "/tidegauge/fast")
    tick_url = sqs.get_queue_url(QueueName="tidegauge-ticks")["QueueUrl"]

    # WHEN the schedule starts the chain
    assert app.lambda_handler(load_event("scheduled.json"), context(clock))["tick"] == {
        "action": "restarted",
        "next_tick_delay_seconds": 1,
    }

    # THEN the tick is not deliverable at once, only after its delay (a long poll waits for it)
    assert sqs.receive_message(QueueUrl=tick_url, WaitTimeSeconds=0).get("Messages", []) == []
    (message,) = sqs.receive_message(QueueUrl=tick_url, WaitTimeSeconds=5)["Messages"]
    # AND delivered as the event source mapping delivers it, it samples and sends the next one
    clock.now += 1
    summary = app.lambda_handler(tick_event(message["Body"]), context(clock))
    assert (summary["tick"]["action"], summary["samples_written"]) == ("accepted", 3)
    assert delayed_ticks(sqs) == 1


def test_concurrent_duplicate_deliveries_leave_exactly_one_chain(
    app: ModuleType, sqs: Any, clock: FakeClock, sent: list[dict[str, Any]]
) -> None:
    # GIVEN a chain, and its tick delivered twice at the same moment to two execution environments
    app.lambda_handler(load_event("scheduled.json"), context(clock))
    duplicate = tick_event(sent[-1]["MessageBody"])
    environments = [
        CollectorFunction("sqs", metrics=app.function.metrics, clock=clock, sleep=clock.sleep)
        for _ in range(2)
    ]
    handed_on: list[str] = []
    for environment in environments:
        client = environment.factory.client("sqs", None)
        client.meta.events.register(
            "provide-client-params.sqs.SendMessage",
            lambda params, **_: handed_on.append(params["MessageBody"]),
        )
    start = threading.Barrier(2, timeout=30)

    def deliver(environment: CollectorFunction) -> None:
        start.wait()
        environment.handle(duplicate, context(clock))

    threads = [threading.Thread(target=deliver, args=(e,)) for e in environments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # WHEN every tick they handed on (one or two, depending on the interleaving) is delivered
    actions = [app.lambda_handler(tick_event(body), context(clock))["tick"]["action"] for body in handed_on]

    # THEN exactly one of them carries the chain on: never two chains
    assert 1 <= len(handed_on) <= 2
    assert actions.count("accepted") == 1
