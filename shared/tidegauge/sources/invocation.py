"""One collector invocation: sample the sources in rounds, write, retire, and record status and cost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from tidegauge.config import CloudWatchSource, Config, Source, SqsSource
from tidegauge.model import CollectorStatus, Sample, SeriesKey
from tidegauge.sources.aws import CallCounts
from tidegauge.sources.rounds import CloudWatchSampler, SqsSampler
from tidegauge.sources.sampling import LAST_ACTIVE_MARKER, LoopReport, is_active, is_quiet, values_by_key
from tidegauge.sources.tally import SourceTally
from tidegauge.store import Store

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class Samplers:
    """The per-kind samplers a collector keeps across invocations (their caches survive warm starts)."""

    sqs: SqsSampler
    cloudwatch: CloudWatchSampler


class Invocation:
    """The state of one invocation between its rounds: tallies, last values and activity per source.

    Each :meth:`take_round` samples, writes, and says whether another round is worth taking; then
    :meth:`retire` drops vanished series and :meth:`finish` records every source's status.
    """

    def __init__(
        self,
        store: Store,
        config: Config,
        sources: Sequence[Source],
        *,
        samplers: Samplers,
        executor: Executor,
        clock: Callable[[], float],
        started_at: float,
        force: bool = False,
        caller_account: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.samplers = samplers
        self.executor = executor
        self.clock = clock
        self.force = force
        self.caller_account = caller_account
        self.started_at = started_at
        self.sqs_sources = [source for source in sources if isinstance(source, SqsSource)]
        self.cloudwatch_sources = [source for source in sources if isinstance(source, CloudWatchSource)]
        self.kinds = {source.name: source.kind for source in sources}
        self.tallies = {source.name: SourceTally() for source in sources}
        self.high_resolution = samplers.cloudwatch.has_high_resolution(self.cloudwatch_sources)
        self.newest_sample_at: float | None = None
        self._previous = {source.name: self._stored_values(source) for source in self.sqs_sources}
        self._last_active = {
            source.name: store.read_marker(source.name, LAST_ACTIVE_MARKER) for source in self.sqs_sources
        }

    def take_round(self, index: int) -> bool:
        """Sample and write one round; True while anything is worth another round."""
        results = self._sample(index)
        self._write(results)
        now = self.clock()
        moving = [self._still_moving(s, results[s.name].samples, now) for s in self.sqs_sources]
        return self.high_resolution or any(moving)

    def _sample(self, index: int) -> dict[str, SourceTally]:
        """SQS every round; CloudWatch in the first, and in every round while a query is high-resolution."""
        results: dict[str, SourceTally] = {}
        if self.sqs_sources:
            results.update(self.samplers.sqs.round(self.sqs_sources, self.executor))
        if self.cloudwatch_sources and (index == 0 or self.high_resolution):
            results.update(
                self.samplers.cloudwatch.round(
                    self.cloudwatch_sources,
                    self.executor,
                    force=self.force and index == 0,
                    caller_account=self.caller_account,
                )
            )
        return results

    def _write(self, results: Mapping[str, SourceTally]) -> None:
        for name, result in results.items():
            tally = self.tallies[name]
            tally.add(result)
            if result.samples:
                tally.samples_written += self.store.write(result.samples)
                newest = max(sample.timestamp for sample in result.samples)
                self.newest_sample_at = max(newest, self.newest_sample_at or newest)

    def _still_moving(self, source: SqsSource, samples: Sequence[Sample], now: float) -> bool:
        """Record the source's activity; True unless it has been quiet for its quiet period."""
        previous = self._previous[source.name]
        active = is_active(samples, previous)
        if active:
            self._last_active[source.name] = now
            self.store.write_marker(source.name, LAST_ACTIVE_MARKER, now)
        previous.update(values_by_key(samples))
        return not is_quiet(
            active=active,
            last_active_at=self._last_active[source.name],
            now=now,
            quiet_period_seconds=self.config.sampling.quiet_period_seconds,
        )

    def retire(self) -> int:
        """Retire series of queues gone for their grace period, then everything idle past retire_after."""
        now = self.clock()
        retired = 0
        for source in self.sqs_sources:
            tally = self.tallies[source.name]
            if tally.discovery_incomplete or tally.known_queues is None:
                continue  # without a complete discovery, a missing queue may just be unlisted
            cutoff = now - source.disappeared_grace_seconds
            gone = [
                sample.key
                for sample in self.store.read_latest(source.metric)
                if sample.source == source.name
                and sample.labels.get("queue") not in tally.known_queues
                and sample.collected_at < cutoff
            ]
            if gone:
                logger.info(
                    "source %s: retiring %d series of queues that disappeared", source.name, len(gone)
                )
                retired += self.store.retire(gone)
        metrics = sorted(
            {s.metric for s in self.sqs_sources}
            | {q.metric for s in self.cloudwatch_sources for q in s.queries}
        )
        if metrics:
            stale = self.store.retire_stale(self.config.redis.retire_after_seconds, now=now, metrics=metrics)
            retired += len(stale)
        return retired

    def finish(self, report: LoopReport, *, retired: int, calls: CallCounts) -> InvocationResult:
        """Record every source's status (its equal share of the invocation's duration) and sum them up."""
        finished = self.clock()
        share = (finished - self.started_at) / max(1, len(self.tallies))
        statuses = tuple(
            tally.status(
                name,
                self.kinds[name],
                started_at=self.started_at,
                finished_at=finished,
                api_calls=calls.by_source.get(name, {}),
                duration_share_seconds=share,
            )
            for name, tally in self.tallies.items()
        )
        for status in statuses:
            self.store.write_status(status)
        return InvocationResult(
            started_at=self.started_at,
            finished_at=finished,
            rounds=report.rounds,
            stopped=report.stopped,
            statuses=statuses,
            api_calls=calls.totals,
            step_failures=sum(tally.step_failures for tally in self.tallies.values()),
            retired=retired,
            newest_sample_at=self.newest_sample_at,
        )

    def _stored_values(self, source: SqsSource) -> dict[SeriesKey, float]:
        return {s.key: s.value for s in self.store.read_latest(source.metric) if s.source == source.name}
