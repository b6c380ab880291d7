"""One sampling round per source kind (a sampler each), over the shared client factory and worker pool.

The samplers hold what is worth keeping between rounds and warm invocations: discovered queues,
resolved account ids, and which CloudWatch periods were already fetched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import cast

from tidegauge.config import CloudWatchQuery, CloudWatchSource, SqsSource
from tidegauge.sources.aws import ApiCallCounter, ClientFactory, error_code, error_message
from tidegauge.sources.cloudwatch import (
    CloudWatchClient,
    MetricDataCall,
    SeriesResult,
    evaluate,
    fetch,
    newest_complete_start,
    plan_calls,
    plan_queries,
)
from tidegauge.sources.sqs import (
    QueueDiscovery,
    QueueFailure,
    QueueJob,
    SqsClient,
    queue_samples,
    read_queues,
)
from tidegauge.sources.tally import SourceTally

logger = logging.getLogger(__name__)

HIGH_RESOLUTION_PERIOD = 60
"""Queries with a shorter period change within a minute and are worth sampling within an invocation."""


class SqsSampler:
    """Discovers each source's queues and reads them all concurrently: one GetQueueAttributes per queue."""

    def __init__(
        self,
        factory: ClientFactory,
        discovery: QueueDiscovery | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = factory
        self.discovery = discovery or QueueDiscovery()
        self._clock = clock

    def round(self, sources: Sequence[SqsSource], executor: Executor) -> dict[str, SourceTally]:
        rounds = {source.name: SourceTally() for source in sources}
        jobs: list[QueueJob] = []
        for source in sources:
            client = cast(SqsClient, self._factory.client("sqs", source.region, source.role_arn))
            result = rounds[source.name]
            with ApiCallCounter.attribute(source.name):
                discovery = self.discovery.discover(source, client, executor)
            result.errors.extend(discovery.errors)
            result.step_failures += len(discovery.errors)
            for failure in discovery.failures:
                result.series_failed += 1
                result.errors.append(str(failure))
            if discovery.complete:
                # a queue that exists but cannot be read now is not gone: only "does not exist" retires
                unreadable = {failure.queue for failure in discovery.failures if not failure.missing}
                result.known_queues = {queue.name for queue in discovery.queues} | unreadable
            jobs.extend(QueueJob(source=source, client=client, queue=queue) for queue in discovery.queues)
        for job, outcome in read_queues(jobs, executor, self._clock):
            result = rounds[job.source.name]
            if isinstance(outcome, QueueFailure):
                result.series_failed += 1
                result.errors.append(str(outcome))
                if outcome.missing:
                    self.discovery.forget(job.source.name, job.queue)
                    if result.known_queues is not None:
                        result.known_queues.discard(job.queue.name)
            else:
                result.samples.extend(queue_samples(outcome, job.source, collected_at=self._clock()))
        return rounds


class CloudWatchSampler:
    """Fetches the due queries of all sources in as few GetMetricData calls as possible.

    A query is due until the datapoint of its newest complete period has been fetched (or found absent),
    so each query is fetched about once per period however often the sampler runs.
    """

    def __init__(self, factory: ClientFactory, *, clock: Callable[[], float] = time.time) -> None:
        self._factory = factory
        self._clock = clock
        self._fetched: dict[tuple[str, CloudWatchQuery], float] = {}
        self._accounts: dict[tuple[str, str | None], str] = {}

    @staticmethod
    def has_high_resolution(sources: Sequence[CloudWatchSource]) -> bool:
        return any(q.period_seconds < HIGH_RESOLUTION_PERIOD for source in sources for q in source.queries)

    def is_due(self, source: CloudWatchSource, query: CloudWatchQuery, now: float) -> bool:
        fetched = self._fetched.get((source.name, query), float("-inf"))
        return fetched < newest_complete_start(now, query.period_seconds)

    def round(
        self,
        sources: Sequence[CloudWatchSource],
        executor: Executor,
        *,
        force: bool = False,
        caller_account: str | None = None,
    ) -> dict[str, SourceTally]:
        """One round over ``sources``; ``caller_account`` labels sources without account or role_arn."""
        now = self._clock()
        rounds = {source.name: SourceTally() for source in sources}
        groups: dict[tuple[str, str | None], list[tuple[CloudWatchSource, CloudWatchQuery]]] = {}
        accounts: dict[str, str] = {}
        for source in sources:
            account = self._account(source, rounds[source.name], caller_account)
            if account is None:
                continue
            accounts[source.name] = account
            due = [query for query in source.queries if force or self.is_due(source, query, now)]
            groups.setdefault((source.region, source.role_arn), []).extend((source, query) for query in due)
        pending: list[tuple[MetricDataCall, Future[tuple[dict[str, SeriesResult], int]]]] = []
        for (region, role_arn), members in groups.items():
            client = cast(CloudWatchClient, self._factory.client("cloudwatch", region, role_arn))
            for call in plan_calls(plan_queries(members), now):
                names = tuple(sorted({planned.source.name for planned in call.queries}))
                pending.append((call, executor.submit(_fetch_for, names, client, call)))
        for call, future in pending:
            try:
                results, pages = future.result()
            except Exception as error:  # every query of the call failed; the other calls stand
                self._record_failed_call(call, error, rounds)
                continue
            collected_at = self._clock()
            for planned in call.queries:
                result = rounds[planned.source.name]
                result.metrics_requested += planned.metrics_requested * pages
                outcome = evaluate(
                    planned,
                    results.get(planned.query_id),
                    now=now,
                    account=accounts[planned.source.name],
                    collected_at=collected_at,
                )
                key = (planned.source.name, planned.query)
                if outcome.error is not None:
                    result.series_failed += 1
                    result.errors.append(outcome.error)
                elif outcome.sample is not None:
                    result.samples.append(outcome.sample)
                    self._fetched[key] = max(self._fetched.get(key, float("-inf")), outcome.sample.timestamp)
                else:
                    result.series_no_data += 1
                    self._fetched[key] = outcome.newest_period
        return rounds

    def _record_failed_call(
        self, call: MetricDataCall, error: Exception, rounds: dict[str, SourceTally]
    ) -> None:
        message = f"GetMetricData failed: {error_code(error)}: {error_message(error)}"
        logger.warning("%s (%d queries)", message, len(call.queries))
        for planned in call.queries:
            result = rounds[planned.source.name]
            result.series_failed += 1
            result.metrics_requested += planned.metrics_requested
            if message not in result.errors:
                result.errors.append(message)

    def _account(
        self, source: CloudWatchSource, result: SourceTally, caller_account: str | None
    ) -> str | None:
        """The ``account`` label: configured, else the role's account, else the caller's.

        The caller's account comes from the Lambda function's own ARN without any call (no STS endpoint
        needed in a VPC without NAT); only outside Lambda is it asked from STS, once per region.
        """
        if source.account is not None:
            return source.account
        if source.role_arn is not None:
            return source.role_arn.split(":")[4]
        if caller_account is not None:
            return caller_account
        key = (source.region, source.role_arn)
        account = self._accounts.get(key)
        if account is None:
            try:
                with ApiCallCounter.attribute(source.name):
                    sts = self._factory.client("sts", source.region)
                    account = str(sts.get_caller_identity()["Account"])
            except Exception as error:  # the source cannot be labelled; reported, others go on
                result.step_failures += 1
                result.errors.append(f"account id lookup failed: {error_code(error)}: {error_message(error)}")
                return None
            self._accounts[key] = account
        return account


def _fetch_for(
    sources: tuple[str, ...], client: CloudWatchClient, call: MetricDataCall
) -> tuple[dict[str, SeriesResult], int]:
    with ApiCallCounter.attribute(*sources):
        return fetch(client, call)
