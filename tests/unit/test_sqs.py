"""SQS collection over moto: discovery, one GetQueueAttributes per queue, and per-queue failures."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from tests.support.collectors import FakeClock, body_contains, inject_error, mock_aws_for
from tidegauge.config import SqsSource
from tidegauge.sources import sqs as sqs_module
from tidegauge.sources.aws import ClientFactory
from tidegauge.sources.rounds import SqsSampler
from tidegauge.sources.sqs import Queue, QueueDiscovery

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mock_aws_for(monkeypatch, REGION):
        yield


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def factory(aws: None) -> ClientFactory:
    return ClientFactory(max_attempts=2)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


def source(**overrides: Any) -> SqsSource:
    settings: dict[str, Any] = {"name": "shop", "region": REGION, "queue_names": ("orders",)}
    settings.update(overrides)
    return SqsSource(**settings)


def values(rounds: Any, name: str = "shop") -> dict[tuple[str, str], float]:
    return {(s.labels["queue"], s.labels["state"]): s.value for s in rounds[name].samples}


def test_reads_visible_in_flight_and_delayed_counts_of_each_queue(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a queue with 3 visible, 2 received (in flight) and 1 delayed message
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    for body in "abcde":
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=120)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=300)
    clock = FakeClock(1_700_000_000.0)
    collector = SqsSampler(factory, clock=clock)

    # WHEN one round is taken
    rounds = collector.round([source(labels=(("team", "shop"),))], executor)

    # THEN each state is one series labelled with queue, region, account and the source's labels
    assert values(rounds) == {("orders", "visible"): 3, ("orders", "in_flight"): 2, ("orders", "delayed"): 1}
    sample = rounds["shop"].samples[0]
    assert sample.labels == {
        "queue": "orders",
        "region": REGION,
        "account": "123456789012",
        "state": sample.labels["state"],
        "team": "shop",
    }
    assert sample.timestamp == clock.now
    assert sample.source == "shop"
    assert rounds["shop"].series_failed == 0


def test_fifo_queues_are_sampled_like_standard_queues(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a FIFO queue with one message, selected by prefix
    url = sqs.create_queue(
        QueueName="payments.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")

    # WHEN a round is taken
    rounds = SqsSampler(factory).round([source(queue_names=(), queue_prefixes=("payments",))], executor)

    # THEN the FIFO queue's series carry its full name
    assert values(rounds) == {
        ("payments.fifo", "visible"): 1,
        ("payments.fifo", "in_flight"): 0,
        ("payments.fifo", "delayed"): 0,
    }


def test_queue_given_by_url_needs_no_lookup(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a queue configured by its URL
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    collector = SqsSampler(factory)

    # WHEN a round is taken
    rounds = collector.round([source(queue_names=(url,))], executor)

    # THEN exactly one GetQueueAttributes call was made, and no GetQueueUrl
    assert factory.counter.snapshot().totals == {"GetQueueAttributes": 1}
    assert values(rounds)[("orders", "visible")] == 0


def test_one_get_queue_attributes_per_queue_per_round_after_discovery(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN five queues selected by prefix and one by name
    for index in range(5):
        sqs.create_queue(QueueName=f"jobs-{index}")
    sqs.create_queue(QueueName="orders")
    collector = SqsSampler(factory)
    selection = [source(queue_prefixes=("jobs-",))]
    collector.round(selection, executor)
    before = factory.counter.snapshot()

    # WHEN a second round is taken within the listing cache time
    rounds = collector.round(selection, executor)

    # THEN only the six GetQueueAttributes calls were made
    assert factory.counter.snapshot().minus(before).totals == {"GetQueueAttributes": 6}
    assert len(rounds["shop"].samples) == 18


def test_prefix_listing_follows_next_token(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN five matching queues and a page size of two
    monkeypatch.setattr(sqs_module, "LIST_PAGE_SIZE", 2)
    for index in range(5):
        sqs.create_queue(QueueName=f"jobs-{index}")
    sqs.create_queue(QueueName="other")

    # WHEN the source is discovered
    discovery = QueueDiscovery().discover(source(queue_names=(), queue_prefixes=("jobs-",)), sqs, executor)

    # THEN all five were found over three ListQueues pages
    assert [queue.name for queue in discovery.queues] == [f"jobs-{index}" for index in range(5)]
    assert discovery.complete


def test_tags_select_queues_and_list_queue_tags_is_cached(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN queues with and without the wanted tags, the prefix matching only some
    sqs.create_queue(QueueName="jobs-a", tags={"team": "shop", "env": "prod"})
    sqs.create_queue(QueueName="jobs-b", tags={"team": "shop", "env": "dev"})
    sqs.create_queue(QueueName="misc", tags={"team": "shop", "env": "prod"})
    clock = FakeClock(0.0)
    discovery = QueueDiscovery(clock=clock)
    wanted = source(queue_names=(), queue_prefixes=("jobs-",), queue_tags=(("env", "prod"), ("team", "shop")))
    client = factory.client("sqs", REGION)

    # WHEN it is discovered twice, the listing cache expiring in between but not the tag cache
    first = discovery.discover(wanted, client, executor)
    clock.now += sqs_module.LIST_CACHE_SECONDS + 1
    second = discovery.discover(wanted, client, executor)

    # THEN only the queue matching the prefix AND the tags is selected, and tags were read once per queue
    assert [q.name for q in first.queues] == ["jobs-a"] == [q.name for q in second.queues]
    assert factory.counter.snapshot().totals == {"ListQueues": 2, "ListQueueTags": 2}


def test_access_denied_on_one_queue_is_counted_and_the_others_are_written(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN three queues, and GetQueueAttributes denied on one of them
    for name in ("jobs-a", "jobs-b", "jobs-c"):
        sqs.create_queue(QueueName=name)
    client = factory.client("sqs", REGION)
    inject_error(
        client,
        "GetQueueAttributes",
        "com.amazon.coral.service#AccessDeniedException",
        status=403,
        message="not authorized to perform sqs:GetQueueAttributes",
        when=body_contains("jobs-b"),
    )

    # WHEN a round is taken
    rounds = SqsSampler(factory).round([source(queue_names=(), queue_prefixes=("jobs-",))], executor)

    # THEN jobs-b is one failed series with a readable error, and the other two queues are sampled
    result = rounds["shop"]
    assert result.series_failed == 1
    assert result.errors == [
        "queue jobs-b: AccessDeniedException: not authorized to perform sqs:GetQueueAttributes"
    ]
    assert {queue for queue, _ in values(rounds)} == {"jobs-a", "jobs-c"}
    assert result.known_queues == {"jobs-a", "jobs-b", "jobs-c"}


def test_queue_throttled_past_its_retries_fails_alone(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN two queues, one of which is always throttled
    for name in ("jobs-a", "jobs-b"):
        sqs.create_queue(QueueName=name)
    client = factory.client("sqs", REGION)
    injected = inject_error(
        client, "GetQueueAttributes", "com.amazonaws.sqs#RequestThrottled", when=body_contains("jobs-a")
    )

    # WHEN a round is taken
    rounds = SqsSampler(factory).round([source(queue_names=(), queue_prefixes=("jobs-",))], executor)

    # THEN it was tried twice (the bounded attempts), then counted failed; the other queue is sampled
    assert len(injected) == 2
    assert rounds["shop"].series_failed == 1
    assert rounds["shop"].errors[0].startswith("queue jobs-a: RequestThrottled")
    assert {queue for queue, _ in values(rounds)} == {"jobs-b"}


def test_throttling_within_the_retry_budget_still_samples(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a queue whose first GetQueueAttributes is throttled
    sqs.create_queue(QueueName="orders")
    client = factory.client("sqs", REGION)
    injected = inject_error(client, "GetQueueAttributes", "com.amazonaws.sqs#RequestThrottled", times=1)

    # WHEN a round is taken
    rounds = SqsSampler(factory).round([source()], executor)

    # THEN the retry succeeded: sampled, nothing failed, and one API call counted (retries are not calls)
    assert len(injected) == 1
    assert rounds["shop"].series_failed == 0
    assert len(rounds["shop"].samples) == 3
    assert factory.counter.snapshot().totals["GetQueueAttributes"] == 1


def test_deleted_queue_is_reported_and_forgotten(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN two listed queues, one of them deleted after the listing was cached
    sqs.create_queue(QueueName="jobs-a")
    doomed = sqs.create_queue(QueueName="jobs-b")["QueueUrl"]
    collector = SqsSampler(factory)
    selection = [source(queue_names=(), queue_prefixes=("jobs-",))]
    collector.round(selection, executor)
    sqs.delete_queue(QueueUrl=doomed)

    # WHEN the next two rounds are taken
    failed = collector.round(selection, executor)
    after = collector.round(selection, executor)

    # THEN the first reports the missing queue and leaves it out of the known queues; the next skips it
    assert failed["shop"].series_failed == 1
    assert "queue jobs-b: QueueDoesNotExist" in failed["shop"].errors[0]
    assert failed["shop"].known_queues == {"jobs-a"}
    assert after["shop"].series_failed == 0
    assert {queue for queue, _ in values(after)} == {"jobs-a"}


def test_named_queue_that_does_not_exist_is_retried_only_after_the_listing_time(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a configured queue name that does not exist
    clock = FakeClock(0.0)
    collector = SqsSampler(factory, discovery=QueueDiscovery(clock=clock))

    # WHEN three rounds are taken, the last after the listing cache time
    first = collector.round([source(queue_names=("ghost",))], executor)
    collector.round([source(queue_names=("ghost",))], executor)
    clock.now += sqs_module.LIST_CACHE_SECONDS + 1
    collector.round([source(queue_names=("ghost",))], executor)

    # THEN every round reports it failed, but GetQueueUrl was called only twice
    assert first["shop"].series_failed == 1
    assert first["shop"].errors == ["queue ghost: QueueDoesNotExist: The specified queue does not exist."]
    assert factory.counter.snapshot().totals == {"GetQueueUrl": 2}


def test_failed_listing_keeps_the_previous_queues_and_marks_discovery_incomplete(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a cached listing that has expired, and ListQueues now denied
    sqs.create_queue(QueueName="jobs-a")
    clock = FakeClock(0.0)
    collector = SqsSampler(factory, discovery=QueueDiscovery(clock=clock))
    selection = [source(queue_names=(), queue_prefixes=("jobs-",))]
    collector.round(selection, executor)
    clock.now += sqs_module.LIST_CACHE_SECONDS + 1
    inject_error(factory.client("sqs", REGION), "ListQueues", "AccessDenied", status=403, message="denied")

    # WHEN a round is taken
    rounds = collector.round(selection, executor)

    # THEN the known queue is still sampled, the failure reported, and retirement would be skipped
    assert {queue for queue, _ in values(rounds)} == {"jobs-a"}
    assert rounds["shop"].step_failures == 1
    assert rounds["shop"].errors == ["listing queues failed: AccessDenied: denied"]
    assert rounds["shop"].known_queues is None


def test_queue_url_names_the_owning_account() -> None:
    # GIVEN a queue URL of another account
    queue = Queue.from_url("https://sqs.eu-west-1.amazonaws.com/210987654321/orders.fifo")

    # THEN name and account come from it
    assert (queue.name, queue.account) == ("orders.fifo", "210987654321")


def test_named_queue_that_cannot_be_resolved_for_lack_of_access_is_not_taken_for_gone(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a configured queue whose GetQueueUrl is denied, and one that does not exist
    sqs.create_queue(QueueName="orders")
    inject_error(
        factory.client("sqs", REGION),
        "GetQueueUrl",
        "com.amazon.coral.service#AccessDeniedException",
        status=403,
        when=body_contains('"orders"'),
    )

    # WHEN a round is taken
    rounds = SqsSampler(factory).round([source(queue_names=("orders", "ghost"))], executor)

    # THEN both failed, but only the missing one is left out of the known queues (so only it retires)
    assert rounds["shop"].series_failed == 2
    assert rounds["shop"].known_queues == {"orders"}


def test_changed_prefixes_are_listed_afresh(
    sqs: Any, factory: ClientFactory, executor: ThreadPoolExecutor
) -> None:
    # GIVEN a source listed with one prefix
    sqs.create_queue(QueueName="jobs-a")
    sqs.create_queue(QueueName="tasks-a")
    discovery = QueueDiscovery()
    discovery.discover(source(queue_names=(), queue_prefixes=("jobs-",)), sqs, executor)

    # WHEN its prefixes change within the listing cache time (a new configuration)
    changed = discovery.discover(source(queue_names=(), queue_prefixes=("tasks-",)), sqs, executor)

    # THEN the new prefix is listed at once
    assert [queue.name for queue in changed.queues] == ["tasks-a"]
