"""The collector: what one process keeps across invocations, and how it runs each one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from tidegauge.config import Config, Source, SqsSource
from tidegauge.sources.aws import ClientFactory
from tidegauge.sources.exceptions import CollectionError
from tidegauge.sources.invocation import Invocation, InvocationResult, Samplers
from tidegauge.sources.rounds import CloudWatchSampler, SqsSampler
from tidegauge.sources.sampling import run_rounds
from tidegauge.store import Store, StoreError

logger = logging.getLogger(__name__)

SQS_DESCRIPTION = "approximate messages in an SQS queue, by state (visible, in_flight, delayed)"


class Collector:
    """Collects sources into a store; keep one per process so caches survive warm invocations.

    ``clock`` (wall time) and ``sleep`` pace the rounds; tests pass a fake clock that moves when slept on.
    """

    def __init__(
        self,
        factory: ClientFactory,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.factory = factory
        self._clock = clock
        self._sleep = sleep
        self.samplers = Samplers(
            sqs=SqsSampler(factory, clock=clock), cloudwatch=CloudWatchSampler(factory, clock=clock)
        )
        self._described: set[tuple[str, str, str]] = set()

    def collect(
        self,
        store: Store,
        config: Config,
        sources: Sequence[Source],
        *,
        remaining_time_ms: Callable[[], int],
        single_round: bool = False,
        force: bool = False,
        caller_account: str | None = None,
    ) -> InvocationResult:
        """Sample ``sources`` until quiet or the deadline, write every round; raises CollectionError when
        the store cannot be written (never a silent success).

        ``force`` fetches CloudWatch queries even when their newest period was already fetched (events).
        ``caller_account`` (the Lambda function's account) labels CloudWatch sources that name no
        account or role; without it the account is asked from STS.
        """
        try:
            started = self._clock()
            deadline = started + remaining_time_ms() / 1000.0 - config.sampling.deadline_margin_seconds
            calls_before = self.factory.counter.snapshot()
            store.ping()
            self._describe(store, config, sources)
            with ThreadPoolExecutor(
                max_workers=config.sampling.max_workers, thread_name_prefix="tidegauge"
            ) as executor:
                invocation = Invocation(
                    store,
                    config,
                    sources,
                    samplers=self.samplers,
                    executor=executor,
                    clock=self._clock,
                    started_at=started,
                    force=force,
                    caller_account=caller_account,
                )
                report = run_rounds(
                    invocation.take_round,
                    interval_seconds=config.sampling.interval_seconds,
                    deadline=deadline,
                    clock=self._clock,
                    sleep=self._sleep,
                    single=single_round,
                )
            retired = invocation.retire()
            calls = self.factory.counter.snapshot().minus(calls_before)
            return invocation.finish(report, retired=retired, calls=calls)
        except StoreError as error:
            raise CollectionError(f"collection aborted, samples could not be stored: {error}") from error

    def known_queue_names(self, source: str) -> set[str]:
        """Names of the queues last discovered for ``source`` (alarm events name queues), without calls."""
        return self.samplers.sqs.discovery.known_queue_names(source)

    def _describe(self, store: Store, config: Config, sources: Sequence[Source]) -> None:
        """Record unit and description of each metric once per process (for discovery and dashboards)."""
        descriptions: dict[str, tuple[str, str]] = {}
        for source in sources:
            if isinstance(source, SqsSource):
                descriptions.setdefault(source.metric, ("", SQS_DESCRIPTION))
            else:
                for query in source.queries:
                    descriptions.setdefault(query.metric, ("", query.description))
        for metric, (unit, description) in descriptions.items():
            policy = config.metrics.get(metric)
            if policy is not None:
                unit = policy.unit or unit
                description = policy.description or description
            entry = (metric, unit, description)
            if entry not in self._described:
                store.describe(metric, unit=unit, description=description)
                self._described.add(entry)
