"""What the ops page shows, as one JSON document: metrics, series with history, collectors, AWS cost, HPAs.

The monthly cost is the running usage totals of each collector (``tg:usage:{source}``) scaled from the
time since its first run to 30 days, at on-demand list prices (us-east-1, before free tiers):
CloudWatch GetMetricData $0.01 per 1,000 metrics requested, SQS $0.40 per million requests, Lambda
$0.20 per million invocations and $0.0000166667 per GB-second (at the template's 512 MB default).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidegauge.ops.common import Target, age
from tidegauge.ops.series_view import Snapshot, take_snapshot

SPARKLINE_POINTS = 60
MONTH_SECONDS = 30 * 86400
CLOUDWATCH_PER_METRIC = 0.01 / 1000
SQS_PER_REQUEST = 0.40 / 1_000_000
LAMBDA_PER_INVOCATION = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000166667
DEFAULT_MEMORY_GB = 0.5


@dataclass(frozen=True)
class Cost:
    """Monthly estimate of one collector, in US dollars."""

    source: str
    api_calls: dict[str, float]
    cloudwatch: float
    sqs: float
    lambda_: float

    @property
    def total(self) -> float:
        return self.cloudwatch + self.sqs + self.lambda_


def monthly_cost(
    source: str, kind: str, usage: Mapping[str, float], now: float, memory_gb: float = DEFAULT_MEMORY_GB
) -> Cost:
    """The totals since ``usage['since']`` scaled to 30 days."""
    since = usage.get("since", 0.0)
    elapsed = max(now - since, 60.0) if since > 0 else 0.0
    scale = MONTH_SECONDS / elapsed if elapsed else 0.0
    calls = {
        name.removeprefix("api_calls."): count
        for name, count in usage.items()
        if name.startswith("api_calls.")
    }
    cloudwatch = usage.get("metrics_requested", 0.0) * CLOUDWATCH_PER_METRIC * scale
    sqs = (sum(calls.values()) if kind == "sqs" else 0.0) * SQS_PER_REQUEST * scale
    invocations = usage.get("runs", 0.0) * LAMBDA_PER_INVOCATION
    duration = usage.get("duration_share_seconds", 0.0) * memory_gb * LAMBDA_PER_GB_SECOND
    return Cost(source, calls, cloudwatch, sqs, (invocations + duration) * scale)


def state(
    target: Target, hpas: Mapping[str, Sequence[str]] | None = None, now: float | None = None
) -> dict[str, Any]:
    """The page's JSON: everything at ``now``, each series with its recent history for a sparkline."""
    moment = time.time() if now is None else now
    snapshot: Snapshot = take_snapshot(target, moment)
    series = []
    for row in snapshot.sorted_rows("metric"):
        history = target.store.read_history(row.key, count=SPARKLINE_POINTS)
        series.append(
            {
                "metric": row.metric,
                "labels": row.labels,
                "value": row.value,
                "human": row.human,
                "source": row.source,
                "age": age(row.timestamp, moment),
                "ageSeconds": round(row.age_seconds, 1),
                "stale": row.stale,
                "fallback": row.fallback,
                "history": [point.value for point in history],
            }
        )
    collectors = []
    costs = []
    for source, status in snapshot.statuses.items():
        cost = monthly_cost(source, status.kind, snapshot.usage.get(source, {}), moment)
        costs.append(cost)
        collectors.append(
            {
                "source": source,
                "kind": status.kind,
                "ok": status.ok,
                "ago": age(status.finished_at, moment),
                "samples": status.samples_written,
                "errors": list(status.errors),
                "apiCalls": dict(status.api_calls),
                "runs": int(snapshot.usage.get(source, {}).get("runs", 0)),
                "monthlyCost": round(cost.total, 2),
                "monthlyCostParts": {
                    "cloudwatch": round(cost.cloudwatch, 2),
                    "sqs": round(cost.sqs, 2),
                    "lambda": round(cost.lambda_, 2),
                },
            }
        )
    return {
        "takenAt": moment,
        "metrics": [
            {
                "name": info.name,
                "unit": info.unit,
                "series": info.series_count,
                "source": info.source,
                "updated": age(info.updated_at, moment),
                "hpas": list((hpas or {}).get(info.name, [])),
            }
            for info in snapshot.metrics
        ],
        "series": series,
        "collectors": collectors,
        "monthlyCost": round(sum(cost.total for cost in costs), 2),
        "clusterAccess": hpas is not None,
    }
