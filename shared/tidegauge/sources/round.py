"""What one sampling round produced for one source."""

from __future__ import annotations

from dataclasses import dataclass, field

from tidegauge.model import Sample


@dataclass
class SourceRound:
    """Samples of one source in one round, and what went wrong (counted, never raised).

    ``series_failed`` counts failed queues (SQS) or queries (CloudWatch), ``step_failures`` failed steps
    that belong to no single series (a queue listing, an account lookup); ``errors`` describes both.
    ``known_queues`` is the set of queue names completely discovered in this round (None when discovery
    was partial or does not apply), used to retire the series of queues that disappeared.
    """

    samples: list[Sample] = field(default_factory=list)
    series_failed: int = 0
    series_no_data: int = 0
    step_failures: int = 0
    errors: list[str] = field(default_factory=list)
    metrics_requested: int = 0
    known_queues: set[str] | None = None
