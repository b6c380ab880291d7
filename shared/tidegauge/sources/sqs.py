"""SQS queue depth: which queues a source selects, and one GetQueueAttributes per queue per sample."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tidegauge.config import SqsSource
from tidegauge.model import Sample
from tidegauge.names import queue_name, queue_url
from tidegauge.sources.aws import ApiCallCounter, error_code, error_message

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import (
        GetQueueAttributesResultTypeDef,
        GetQueueUrlResultTypeDef,
        ListQueuesResultTypeDef,
        ListQueueTagsResultTypeDef,
    )

logger = logging.getLogger(__name__)

STATE_ATTRIBUTES: Mapping[QueueAttributeNameType, str] = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}
"""GetQueueAttributes attribute -> value of the ``state`` label."""
QUEUE_MISSING_CODES = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})
LIST_CACHE_SECONDS = 60.0
"""How long a ListQueues result is reused: about once per scheduled invocation."""
TAGS_CACHE_SECONDS = 900.0
"""How long a queue's tags are reused: ListQueueTags is rate limited and tags rarely change."""
LIST_PAGE_SIZE = 1000


class SqsClient(Protocol):
    """The part of boto3's SQS client the collector uses."""

    def get_queue_attributes(self, **kwargs: Any) -> GetQueueAttributesResultTypeDef: ...
    def get_queue_url(self, **kwargs: Any) -> GetQueueUrlResultTypeDef: ...
    def list_queues(self, **kwargs: Any) -> ListQueuesResultTypeDef: ...
    def list_queue_tags(self, **kwargs: Any) -> ListQueueTagsResultTypeDef: ...


@dataclass(frozen=True, slots=True)
class Queue:
    """One queue: its name (the ``queue`` label) and URL; the URL names the owning account."""

    name: str
    url: str

    @classmethod
    def from_url(cls, url: str) -> Queue:
        return cls(name=queue_name(url), url=url)

    @property
    def account(self) -> str:
        parts = queue_url(self.url)
        return parts.account if parts is not None else ""


@dataclass(frozen=True, slots=True)
class QueueFailure:
    """A queue that could not be read in this sample; ``missing`` when SQS says it does not exist."""

    queue: str
    code: str
    message: str

    @property
    def missing(self) -> bool:
        return self.code in QUEUE_MISSING_CODES

    def __str__(self) -> str:
        return f"queue {self.queue}: {self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class QueueReading:
    """The three approximate counts of one queue and when SQS answered."""

    queue: Queue
    counts: Mapping[str, int]
    timestamp: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Discovery:
    """The queues a source selects now; ``complete`` is False when a listing failed (stale or partial)."""

    queues: tuple[Queue, ...]
    failures: tuple[QueueFailure, ...] = ()
    errors: tuple[str, ...] = ()
    complete: bool = True


def read_queue(client: SqsClient, queue: Queue, clock: Callable[[], float] = time.time) -> QueueReading:
    """One GetQueueAttributes call; raises botocore's ClientError on failure."""
    response = client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=list(STATE_ATTRIBUTES))
    answered_at = clock()
    attributes = response.get("Attributes", {})
    counts = {state: int(attributes.get(name, "0")) for name, state in STATE_ATTRIBUTES.items()}
    return QueueReading(queue=queue, counts=counts, timestamp=answered_at)


def queue_samples(reading: QueueReading, source: SqsSource, collected_at: float) -> list[Sample]:
    """The ``state`` series of one reading, labelled queue, region, account plus the source's labels."""
    labels = dict(source.labels)
    labels.update(queue=reading.queue.name, region=source.region, account=reading.queue.account)
    return [
        Sample.of(
            source.metric,
            {**labels, "state": state},
            count,
            reading.timestamp,
            collected_at=collected_at,
            source=source.name,
        )
        for state, count in reading.counts.items()
    ]


@dataclass
class _SourceCache:
    urls_by_name: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, tuple[float, QueueFailure]] = field(default_factory=dict)
    listing: tuple[str, ...] | None = None
    listed_prefixes: tuple[str, ...] = ()
    listed_at: float = float("-inf")


class QueueDiscovery:
    """Which queues each SQS source selects, with the rate-limited lookups cached.

    Queue names are resolved once (GetQueueUrl) and kept until SQS says the queue is gone (a name that
    does not resolve is retried after ``list_cache_seconds``, and reported failed meanwhile); prefix and
    tag selections list the account's queues (ListQueues, paginated) at most once per
    ``list_cache_seconds``; a queue's tags (ListQueueTags) are kept ``tags_cache_seconds``. Names are
    always selected; with prefixes and/or tags, a listed queue is selected when it matches a prefix (if
    any are given) and carries every configured tag (if any are given).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        list_cache_seconds: float = LIST_CACHE_SECONDS,
        tags_cache_seconds: float = TAGS_CACHE_SECONDS,
    ) -> None:
        self._clock = clock
        self._list_cache_seconds = list_cache_seconds
        self._tags_cache_seconds = tags_cache_seconds
        self._sources: dict[str, _SourceCache] = {}
        self._tags: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._lock = threading.Lock()

    def known_queue_names(self, source: str) -> set[str]:
        """Names of the queues last discovered for ``source`` (for matching alarm events), without calls."""
        cache = self._sources.get(source)
        if cache is None:
            return set()
        names = set(cache.urls_by_name)
        names.update(Queue.from_url(url).name for url in cache.listing or ())
        return names

    def forget(self, source: str, queue: Queue) -> None:
        """Drop a queue SQS reported missing, so it is resolved or listed afresh next time."""
        cache = self._sources.get(source)
        if cache is None:
            return
        cache.urls_by_name.pop(queue.name, None)
        if cache.listing is not None and queue.url in cache.listing:
            cache.listing = tuple(url for url in cache.listing if url != queue.url)

    def discover(self, source: SqsSource, client: SqsClient, executor: Executor) -> Discovery:
        cache = self._sources.setdefault(source.name, _SourceCache())
        selected: dict[str, Queue] = {}
        failures: list[QueueFailure] = []
        errors: list[str] = []
        complete = True
        for configured in source.queue_names:
            if "://" in configured:
                queue = Queue.from_url(configured)
            else:
                resolved = self._resolve(cache, source, client, configured)
                if isinstance(resolved, QueueFailure):
                    failures.append(resolved)
                    continue
                queue = resolved
            selected[queue.url] = queue
        if source.queue_prefixes or source.queue_tags:
            listing, listing_error = self._listing(cache, source, client)
            if listing_error is not None:
                errors.append(listing_error)
                complete = False
            candidates = [Queue.from_url(url) for url in listing]
            if source.queue_prefixes:
                candidates = [q for q in candidates if q.name.startswith(tuple(source.queue_prefixes))]
            if source.queue_tags:
                candidates, tag_errors = self._with_tags(source, client, executor, candidates)
                if tag_errors:
                    errors.extend(tag_errors)
                    complete = False
            for queue in candidates:
                selected.setdefault(queue.url, queue)
        return Discovery(
            queues=tuple(sorted(selected.values(), key=lambda q: q.url)),
            failures=tuple(failures),
            errors=tuple(errors),
            complete=complete,
        )

    def _resolve(
        self, cache: _SourceCache, source: SqsSource, client: SqsClient, name: str
    ) -> Queue | QueueFailure:
        url = cache.urls_by_name.get(name)
        now = self._clock()
        failed = cache.unresolved.get(name)
        if url is None and failed is not None and now - failed[0] < self._list_cache_seconds:
            return failed[1]
        if url is None:
            request: dict[str, str] = {"QueueName": name}
            if source.account is not None:
                request["QueueOwnerAWSAccountId"] = source.account
            try:
                url = client.get_queue_url(**request)["QueueUrl"]
            except Exception as error:  # any failure is this queue's, and reported
                failure = QueueFailure(queue=name, code=error_code(error), message=error_message(error))
                cache.unresolved[name] = (now, failure)
                return failure
            cache.urls_by_name[name] = url
            cache.unresolved.pop(name, None)
        return Queue(name=name, url=url)

    def _listing(
        self, cache: _SourceCache, source: SqsSource, client: SqsClient
    ) -> tuple[tuple[str, ...], str | None]:
        now = self._clock()
        fresh = now - cache.listed_at < self._list_cache_seconds
        if cache.listing is not None and fresh and cache.listed_prefixes == source.queue_prefixes:
            return cache.listing, None
        try:
            urls: list[str] = []
            for prefix in source.queue_prefixes or ("",):
                urls.extend(list_queue_urls(client, prefix))
        except Exception as error:  # keep the previous listing, report it
            message = f"listing queues failed: {error_code(error)}: {error_message(error)}"
            logger.warning("source %s: %s", source.name, message)
            return cache.listing or (), message
        cache.listing = tuple(dict.fromkeys(urls))
        cache.listed_prefixes = source.queue_prefixes
        cache.listed_at = now
        return cache.listing, None

    def _with_tags(
        self, source: SqsSource, client: SqsClient, executor: Executor, candidates: Sequence[Queue]
    ) -> tuple[list[Queue], list[str]]:
        wanted = dict(source.queue_tags)
        now = self._clock()
        stale = [q for q in candidates if not self._fresh_tags(q.url, now)]
        futures = [(q, executor.submit(_in_source, source.name, _tags_of, client, q)) for q in stale]
        errors: list[str] = []
        for queue, future in futures:
            try:
                tags = future.result()
            except Exception as error:  # reported; the queue is left out this time
                errors.append(f"tags of queue {queue.name}: {error_code(error)}: {error_message(error)}")
                continue
            with self._lock:
                self._tags[queue.url] = (now, tags)
        selected = []
        for queue in candidates:
            entry = self._tags.get(queue.url)
            if entry is not None and all(entry[1].get(k) == v for k, v in wanted.items()):
                selected.append(queue)
        return selected, errors

    def _fresh_tags(self, url: str, now: float) -> bool:
        entry = self._tags.get(url)
        return entry is not None and now - entry[0] < self._tags_cache_seconds


def _tags_of(client: SqsClient, queue: Queue) -> Mapping[str, str]:
    return dict(client.list_queue_tags(QueueUrl=queue.url).get("Tags", {}))


def _in_source(source: str, function: Callable[..., Any], *arguments: Any) -> Any:
    """Run ``function`` on a worker thread with its API calls counted for ``source``."""
    with ApiCallCounter.attribute(source):
        return function(*arguments)


def list_queue_urls(client: SqsClient, prefix: str = "") -> list[str]:
    """Every queue URL with ``prefix`` (ListQueues, following NextToken)."""
    urls: list[str] = []
    token: str | None = None
    while True:
        request: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
        if prefix:
            request["QueueNamePrefix"] = prefix
        if token:
            request["NextToken"] = token
        response = client.list_queues(**request)
        urls.extend(response.get("QueueUrls", []))
        token = response.get("NextToken")
        if not token:
            return urls


@dataclass(frozen=True, slots=True)
class QueueJob:
    """One queue to read for one source."""

    source: SqsSource
    client: SqsClient
    queue: Queue


def read_queues(
    jobs: Iterable[QueueJob], executor: Executor, clock: Callable[[], float] = time.time
) -> list[tuple[QueueJob, QueueReading | QueueFailure]]:
    """Read every queue concurrently on ``executor``; a failing queue never stops the others."""
    futures = [(job, executor.submit(_in_source, job.source.name, _read_or_fail, job, clock)) for job in jobs]
    return [(job, future.result()) for job, future in futures]


def _read_or_fail(job: QueueJob, clock: Callable[[], float]) -> QueueReading | QueueFailure:
    try:
        return read_queue(job.client, job.queue, clock)
    except Exception as error:  # counted and reported, never raised
        return QueueFailure(queue=job.queue.name, code=error_code(error), message=error_message(error))
