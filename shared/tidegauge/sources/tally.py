"""What a source did: in one sampling round, and summed over an invocation's rounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tidegauge.model import CollectorStatus, Sample


@dataclass
class SourceTally:
    """Samples and counts of one source (counted, never raised); a round's, or an invocation's sum.

    ``series_failed`` counts failed queues (SQS) or queries (CloudWatch), ``step_failures`` failed steps
    that belong to no single series (a queue listing, an account lookup); ``errors`` describes both.
    ``known_queues`` is the set of queue names completely discovered (None when discovery was partial or
    does not apply), used to retire the series of queues that disappeared. ``samples`` are the round's;
    an invocation's tally counts what was written instead (``samples_written``).
    """

    samples: list[Sample] = field(default_factory=list)
    samples_written: int = 0
    series_failed: int = 0
    series_no_data: int = 0
    step_failures: int = 0
    metrics_requested: int = 0
    errors: list[str] = field(default_factory=list)
    known_queues: set[str] | None = None
    discovery_incomplete: bool = False

    def add(self, round_tally: SourceTally) -> None:
        """Add one round's counts; a round with a partial discovery marks the whole invocation's."""
        self.series_failed += round_tally.series_failed
        self.series_no_data += round_tally.series_no_data
        self.step_failures += round_tally.step_failures
        self.metrics_requested += round_tally.metrics_requested
        self.errors.extend(error for error in round_tally.errors if error not in self.errors)
        if round_tally.known_queues is None:
            self.discovery_incomplete = True
        else:
            self.known_queues = round_tally.known_queues

    def status(
        self,
        source: str,
        kind: str,
        *,
        started_at: float,
        finished_at: float,
        api_calls: Mapping[str, int],
        duration_share_seconds: float,
    ) -> CollectorStatus:
        """The status record the store keeps for the source's last run."""
        return CollectorStatus(
            source=source,
            kind=kind,
            started_at=started_at,
            finished_at=finished_at,
            ok=not self.errors,
            samples_written=self.samples_written,
            series_failed=self.series_failed,
            errors=tuple(self.errors),
            api_calls=dict(api_calls),
            metrics_requested=self.metrics_requested,
            duration_share_seconds=duration_share_seconds,
            series_no_data=self.series_no_data,
        )
