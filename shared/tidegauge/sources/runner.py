"""One collector invocation: sample the sources in rounds, write, retire, and record status and cost."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tidegauge.config import PRESETS, CloudWatchSource, Config, Source, SqsSource
from tidegauge.model import CollectorStatus, SeriesKey
from tidegauge.sources.aws import ClientFactory
from tidegauge.sources.collectors import CloudWatchCollector, SqsCollector
from tidegauge.sources.exceptions import CollectionError
from tidegauge.sources.round import SourceRound
from tidegauge.sources.sampling import LAST_ACTIVE_MARKER, is_active, is_quiet, run_rounds, values_by_key
from tidegauge.store import Store, StoreError

logger = logging.getLogger(__name__)

SQS_DESCRIPTION = "approximate messages in an SQS queue, by state (visible, in_flight, delayed)"


@dataclass
class _Tally:
    """Everything one source did in one invocation."""

    source: Source
    samples_written: int = 0
    series_failed: int = 0
    series_no_data: int = 0
    step_failures: int = 0
    metrics_requested: int = 0
    errors: list[str] = field(default_factory=list)
    known_queues: set[str] | None = None
    discovery_incomplete: bool = False

    def add(self, result: SourceRound) -> None:
        self.series_failed += result.series_failed
        self.series_no_data += result.series_no_data
        self.step_failures += result.step_failures
        self.metrics_requested += result.metrics_requested
        self.errors.extend(error for error in result.errors if error not in self.errors)
        if result.known_queues is None:
            self.discovery_incomplete = True
        else:
            self.known_queues = result.known_queues


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """What an invocation did, for the handler's answer, EMF and the CLI."""

    started_at: float
    finished_at: float
    rounds: int
    stopped: str
    statuses: tuple[CollectorStatus, ...]
    api_calls: Mapping[str, int]
    step_failures: int = 0
    retired: int = 0
    newest_sample_at: float | None = None

    @property
    def duration_seconds(self) -> float:
        return self.finished_at - self.started_at

    @property
    def samples_written(self) -> int:
        return sum(status.samples_written for status in self.statuses)

    @property
    def series_failed(self) -> int:
        return sum(status.series_failed for status in self.statuses)

    @property
    def errors(self) -> int:
        """Failed queues and queries plus failed steps (listings, lookups): ``CollectionErrors``."""
        return self.series_failed + self.step_failures

    @property
    def metrics_requested(self) -> int:
        return sum(status.metrics_requested for status in self.statuses)

    @property
    def ok(self) -> bool:
        return all(status.ok for status in self.statuses)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready account of the invocation (the handler's return value)."""
        return {
            "ok": self.ok,
            "sources": [status.source for status in self.statuses],
            "rounds": self.rounds,
            "stopped": self.stopped,
            "samples_written": self.samples_written,
            "series_failed": self.series_failed,
            "series_no_data": sum(status.series_no_data for status in self.statuses),
            "errors": [f"{s.source}: {error}" for s in self.statuses for error in s.errors][:20],
            "api_calls": dict(self.api_calls),
            "metrics_requested": self.metrics_requested,
            "retired_series": self.retired,
            "duration_seconds": round(self.duration_seconds, 3),
        }


class Collector:
    """Collects sources into a store; keep one per process so caches survive warm invocations."""

    def __init__(
        self,
        factory: ClientFactory,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.sleep = sleep
        self.sqs = SqsCollector(factory, clock=lambda: self.clock())
        self.cloudwatch = CloudWatchCollector(factory, clock=lambda: self.clock())
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
            return self._collect(
                store,
                config,
                sources,
                remaining_time_ms=remaining_time_ms,
                single_round=single_round,
                force=force,
                caller_account=caller_account,
            )
        except StoreError as error:
            raise CollectionError(f"collection aborted, samples could not be stored: {error}") from error

    def _collect(
        self,
        store: Store,
        config: Config,
        sources: Sequence[Source],
        *,
        remaining_time_ms: Callable[[], int],
        single_round: bool,
        force: bool,
        caller_account: str | None,
    ) -> InvocationResult:
        started = self.clock()
        deadline = started + remaining_time_ms() / 1000.0 - config.sampling.deadline_margin_seconds
        calls_before = self.factory.counter.snapshot()
        store.ping()
        sqs_sources = [source for source in sources if isinstance(source, SqsSource)]
        cloudwatch_sources = [source for source in sources if isinstance(source, CloudWatchSource)]
        self._describe(store, config, sources)
        tallies = {source.name: _Tally(source) for source in sources}
        previous = {source.name: self._stored_values(store, source) for source in sqs_sources}
        last_active = {
            source.name: store.read_marker(source.name, LAST_ACTIVE_MARKER) for source in sqs_sources
        }
        high_resolution = self.cloudwatch.has_high_resolution(cloudwatch_sources)
        newest: list[float] = []
        executor = ThreadPoolExecutor(max_workers=config.sampling.max_workers, thread_name_prefix="tidegauge")

        def take_round(index: int) -> bool:
            results: dict[str, SourceRound] = {}
            if sqs_sources:
                results.update(self.sqs.round(sqs_sources, executor))
            if cloudwatch_sources and (index == 0 or high_resolution):
                results.update(
                    self.cloudwatch.round(
                        cloudwatch_sources,
                        executor,
                        force=force and index == 0,
                        caller_account=caller_account,
                    )
                )
            for name, result in results.items():
                tallies[name].add(result)
                if result.samples:
                    tallies[name].samples_written += store.write(result.samples)
                    newest.append(max(sample.timestamp for sample in result.samples))
            now = self.clock()
            wants_more = high_resolution
            for source in sqs_sources:
                samples = results[source.name].samples
                active = is_active(samples, previous[source.name])
                if active:
                    last_active[source.name] = now
                    store.write_marker(source.name, LAST_ACTIVE_MARKER, now)
                previous[source.name].update(values_by_key(samples))
                quiet = is_quiet(
                    active=active,
                    last_active_at=last_active[source.name],
                    now=now,
                    quiet_period_seconds=config.sampling.quiet_period_seconds,
                )
                wants_more = wants_more or not quiet
            return wants_more

        with executor:
            report = run_rounds(
                take_round,
                interval_seconds=config.sampling.interval_seconds,
                deadline=deadline,
                clock=self.clock,
                sleep=self.sleep,
                single=single_round,
            )
        retired = self._retire(store, config, sqs_sources, cloudwatch_sources, tallies)
        finished = self.clock()
        calls = self.factory.counter.snapshot().minus(calls_before)
        share = (finished - started) / max(1, len(sources))
        statuses = tuple(
            CollectorStatus(
                source=name,
                kind=tally.source.kind,
                started_at=started,
                finished_at=finished,
                ok=not tally.errors,
                samples_written=tally.samples_written,
                series_failed=tally.series_failed,
                errors=tuple(tally.errors),
                api_calls=dict(calls.by_source.get(name, {})),
                metrics_requested=tally.metrics_requested,
                compute_seconds=share,
                series_no_data=tally.series_no_data,
            )
            for name, tally in tallies.items()
        )
        for status in statuses:
            store.write_status(status)
        return InvocationResult(
            started_at=started,
            finished_at=finished,
            rounds=report.rounds,
            stopped=report.stopped,
            statuses=statuses,
            api_calls=calls.totals,
            step_failures=sum(tally.step_failures for tally in tallies.values()),
            retired=retired,
            newest_sample_at=max(newest, default=None),
        )

    def _stored_values(self, store: Store, source: SqsSource) -> dict[SeriesKey, float]:
        return {s.key: s.value for s in store.read_latest(source.metric) if s.source == source.name}

    def _retire(
        self,
        store: Store,
        config: Config,
        sqs_sources: Sequence[SqsSource],
        cloudwatch_sources: Sequence[CloudWatchSource],
        tallies: Mapping[str, _Tally],
    ) -> int:
        """Retire series of queues gone for their grace period, then everything idle past retire_after."""
        now = self.clock()
        retired = 0
        for source in sqs_sources:
            tally = tallies[source.name]
            if tally.discovery_incomplete or tally.known_queues is None:
                continue  # without a complete discovery, a missing queue may just be unlisted
            cutoff = now - source.disappeared_grace_seconds
            gone = [
                sample.key
                for sample in store.read_latest(source.metric)
                if sample.source == source.name
                and sample.labels.get("queue") not in tally.known_queues
                and sample.collected_at < cutoff
            ]
            if gone:
                logger.info(
                    "source %s: retiring %d series of queues that disappeared", source.name, len(gone)
                )
                retired += store.retire(gone)
        metrics = sorted(
            {s.metric for s in sqs_sources} | {q.metric for s in cloudwatch_sources for q in s.queries}
        )
        if metrics:
            retired += len(store.retire_stale(config.redis.retire_after_seconds, now=now, metrics=metrics))
        return retired

    def _describe(self, store: Store, config: Config, sources: Sequence[Source]) -> None:
        """Record unit and description of each metric once per process (for discovery and dashboards)."""
        descriptions: dict[str, tuple[str, str]] = {}
        for source in sources:
            if isinstance(source, SqsSource):
                descriptions.setdefault(source.metric, ("", SQS_DESCRIPTION))
            else:
                for query in source.queries:
                    preset = next((p for p in PRESETS.values() if p.metric == query.metric), None)
                    descriptions.setdefault(query.metric, ("", preset.description if preset else ""))
        for metric, (unit, description) in descriptions.items():
            policy = config.metrics.get(metric)
            if policy is not None:
                unit = policy.unit or unit
                description = policy.description or description
            entry = (metric, unit, description)
            if entry not in self._described:
                store.describe(metric, unit=unit, description=description)
                self._described.add(entry)
