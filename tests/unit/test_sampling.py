"""Sub-minute rounds in an invocation; adaptive sampling: one round while quiet, rounds on activity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import fakeredis
import pytest
from moto import mock_aws

import tidegauge
from tests.support.collectors import FakeClock
from tidegauge.config import Config, parse_config
from tidegauge.model import Sample
from tidegauge.redis_connection import SyncClient
from tidegauge.sources.aws import ClientFactory
from tidegauge.sources.collector import Collector
from tidegauge.sources.sampling import LAST_ACTIVE_MARKER, is_active, is_quiet, run_rounds, values_by_key
from tidegauge.store import Store

REGION = "eu-west-1"
START = 1_700_000_000.0


def rounds_at(clock: FakeClock, *, wants_more: bool = True, durations: tuple[float, ...] = (0.0,)) -> Any:
    """A round function that records when it ran and takes ``durations[i]`` seconds."""
    times: list[float] = []

    def take_round(index: int) -> bool:
        times.append(clock.now - START)
        clock.now += durations[min(index, len(durations) - 1)]
        return wants_more

    return take_round, times


# --- the loop ------------------------------------------------------------------------------------


def test_rounds_run_every_interval_until_the_deadline() -> None:
    # GIVEN a 60 s invocation with a 3 s margin and rounds every 15 s
    clock = FakeClock(START)
    take_round, times = rounds_at(clock, durations=(0.5,))

    # WHEN rounds are run
    report = run_rounds(take_round, interval_seconds=15, deadline=START + 57, clock=clock, sleep=clock.sleep)

    # THEN they start on the grid 0, 15, 30, 45; a round at 60 would not end before 57
    assert times == [0, 15, 30, 45]
    assert (report.rounds, report.stopped) == (4, "deadline")


def test_a_round_that_would_end_after_the_deadline_is_not_started() -> None:
    # GIVEN rounds that take 10 s and a deadline at 50 s
    clock = FakeClock(START)
    take_round, times = rounds_at(clock, durations=(10.0,))

    # WHEN rounds are run
    run_rounds(take_round, interval_seconds=15, deadline=START + 50, clock=clock, sleep=clock.sleep)

    # THEN the round at 45 s is skipped: it would end at 55 s
    assert times == [0, 15, 30]


def test_slots_missed_by_a_slow_round_are_skipped() -> None:
    # GIVEN a first round that takes 20 s
    clock = FakeClock(START)
    take_round, times = rounds_at(clock, durations=(20.0, 1.0))

    # WHEN rounds are run
    run_rounds(take_round, interval_seconds=15, deadline=START + 57, clock=clock, sleep=clock.sleep)

    # THEN the next round waits for the 30 s slot instead of running twice in a row
    assert times[:2] == [0, 30]


def test_a_quiet_round_ends_the_invocation() -> None:
    # GIVEN rounds that find nothing to watch
    clock = FakeClock(START)
    take_round, times = rounds_at(clock, wants_more=False)

    # WHEN rounds are run
    report = run_rounds(take_round, interval_seconds=15, deadline=START + 57, clock=clock, sleep=clock.sleep)

    # THEN only one round ran, and nothing was slept
    assert (times, report.stopped, clock.slept) == ([0], "quiet", [])


def test_single_takes_exactly_one_round_even_when_more_is_wanted() -> None:
    # GIVEN an event-driven collection
    clock = FakeClock(START)
    take_round, times = rounds_at(clock)

    # WHEN rounds are run with single=True
    report = run_rounds(
        take_round, interval_seconds=15, deadline=START + 57, clock=clock, sleep=clock.sleep, single=True
    )

    # THEN one round ran
    assert (times, report.stopped) == ([0], "single")


# --- activity -------------------------------------------------------------------------------------


def _sample(value: float, queue: str = "orders") -> Sample:
    return Sample.of("sqs_messages", {"queue": queue, "state": "visible"}, value, START)


@pytest.mark.parametrize(
    ("value", "previous", "active"),
    [
        (0.0, 0.0, False),  # empty and unchanged
        (5.0, 5.0, True),  # messages waiting, even if unchanged
        (0.0, 3.0, True),  # just drained: a change
        (0.0, None, True),  # a series never seen before
    ],
)
def test_activity_is_messages_or_change(value: float, previous: float | None, active: bool) -> None:
    # GIVEN a sample and the previous value of its series
    sample = _sample(value)
    before = {} if previous is None else {sample.key: previous}

    # WHEN activity is judged
    # THEN it is active when the queue has messages or its value changed
    assert is_active([sample], before) is active


@pytest.mark.parametrize(
    ("active", "last_active_at", "quiet"),
    [
        (True, None, False),
        (False, None, True),
        (False, START - 299, False),  # active 299 s ago: still within the 300 s quiet period
        (False, START - 300, True),
    ],
)
def test_quiet_needs_no_activity_for_the_quiet_period(
    active: bool, last_active_at: float | None, quiet: bool
) -> None:
    # GIVEN the activity of a round and when the source was last active
    # WHEN quietness is judged with a 300 s quiet period
    # THEN it is quiet only when nothing is active and the last activity is at least 300 s old
    assert (
        is_quiet(active=active, last_active_at=last_active_at, now=START, quiet_period_seconds=300) is quiet
    )


# --- adaptive sampling in an invocation ----------------------------------------------------------

CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:6379/0"}
sampling: {interval_seconds: 15, quiet_period_seconds: 300, deadline_margin_seconds: 3}
sources:
  - name: shop
    type: sqs
    region: eu-west-1
    queues: {names: [orders]}
"""


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


@pytest.fixture
def config() -> Config:
    return parse_config(CONFIG, environ={})


@pytest.fixture
def store() -> Store:
    return Store(cast(SyncClient, fakeredis.FakeRedis(decode_responses=True)))


def invoke(collector: Collector, store: Store, config: Config, clock: FakeClock) -> Any:
    started = clock.now
    return collector.collect(
        store, config, config.sources, remaining_time_ms=lambda: int((started + 60 - clock.now) * 1000)
    )


def test_queue_with_messages_is_sampled_every_fifteen_seconds(sqs: Any, store: Store, config: Config) -> None:
    # GIVEN a queue with a message
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    clock = FakeClock(START)
    collector = Collector(ClientFactory(), clock=clock, sleep=clock.sleep)

    # WHEN a scheduled invocation runs
    result = invoke(collector, store, config, clock)

    # THEN it takes four rounds, and its activity is remembered
    assert (result.rounds, result.stopped) == (4, "deadline")
    assert store.read_marker("shop", LAST_ACTIVE_MARKER) == START + 45


def test_empty_unchanged_queue_takes_one_round_once_the_quiet_period_passed(
    sqs: Any, store: Store, config: Config
) -> None:
    # GIVEN an empty queue, sampled before, last active 10 minutes ago
    sqs.create_queue(QueueName="orders")
    clock = FakeClock(START)
    collector = Collector(ClientFactory(), clock=clock, sleep=clock.sleep)
    invoke(collector, store, config, clock)
    store.write_marker("shop", LAST_ACTIVE_MARKER, START - 600)
    clock.now = START + 60

    # WHEN the next scheduled invocation runs
    result = invoke(collector, store, config, clock)

    # THEN it returns after one round (billing one round, not a minute)
    assert (result.rounds, result.stopped) == (1, "quiet")
    assert result.duration_seconds == 0


def test_recent_activity_keeps_the_rounds_going_for_the_quiet_period(
    sqs: Any, store: Store, config: Config
) -> None:
    # GIVEN an empty queue that was active two minutes ago, already sampled empty
    sqs.create_queue(QueueName="orders")
    clock = FakeClock(START)
    collector = Collector(ClientFactory(), clock=clock, sleep=clock.sleep)
    invoke(collector, store, config, clock)
    store.write_marker("shop", LAST_ACTIVE_MARKER, START - 120 + 60)
    clock.now = START + 60

    # WHEN the next invocation runs
    result = invoke(collector, store, config, clock)

    # THEN it keeps sampling every 15 s: a burst may come back within the quiet period
    assert result.rounds == 4


def test_quiet_invocation_switches_to_rounds_when_messages_arrive(
    sqs: Any, store: Store, config: Config
) -> None:
    # GIVEN a queue that has been quiet for long
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    clock = FakeClock(START)
    collector = Collector(ClientFactory(), clock=clock, sleep=clock.sleep)
    invoke(collector, store, config, clock)
    store.write_marker("shop", LAST_ACTIVE_MARKER, START - 3600)
    clock.now = START + 60
    assert invoke(collector, store, config, clock).rounds == 1

    # WHEN a message arrives before the next invocation
    sqs.send_message(QueueUrl=url, MessageBody="x")
    clock.now = START + 120
    result = invoke(collector, store, config, clock)

    # THEN that invocation samples in rounds again
    assert result.rounds == 4
    stored = values_by_key(store.read_latest("sqs_messages"))
    assert sorted(stored.values()) == [0.0, 0.0, 1.0]


def test_zero_quiet_period_slows_down_at_once_as_the_example_documents() -> None:
    # GIVEN a source idle for one second, and a quiet period of 0
    # THEN it is quiet already: 0 means "slow down at once", not "never"
    assert is_quiet(active=False, last_active_at=100, now=101, quiet_period_seconds=0)
    # AND the documented example says so
    example = (Path(tidegauge.__file__).parent / "examples" / "config.yaml").read_text()
    block = example.split("quiet_period_seconds:")[0].rsplit("\n\n", 1)[1]
    comment = " ".join(line.strip().lstrip("#").strip() for line in block.splitlines())
    assert "0 = slow down at once" in comment
    assert "never slow down" not in comment
