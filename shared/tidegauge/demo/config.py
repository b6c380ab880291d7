"""The demo's tidegauge configuration: the built-in sources, with timing scaled to the time compression.

Collectors, staleness and CloudWatch periods work in wall-clock seconds, the demo's story in simulated
ones. At compression C, the every-minute schedule becomes every 60/C wall seconds, the 15 s sampling
interval 15/C (at least 1, the smallest the config allows), and the Aurora CPU query uses the longest
high-resolution period (1, 5, 10 or 30 s) that spans at most 60 simulated seconds, so it lags the
load about as much as a 60 s period does in a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from tidegauge.config import Config, parse_config

SCHEDULE_SECONDS = 60.0
"""EventBridge's every-minute schedule, in simulated seconds."""
SAMPLE_INTERVAL_SECONDS = 15.0
MIN_SAMPLE_INTERVAL_SECONDS = 1.0
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)
SERVED_AGE_SECONDS = 120.0
"""Simulated seconds a value stays servable beyond its own lag: two missed schedules."""
QUIET_PERIOD_SECONDS = 120.0
REGION = "us-east-1"
SQS_SOURCE = "demo"
CLOUDWATCH_SOURCE = "demo-db"
DEMO_NAMESPACE = "demo"
DEMO_DEPLOYMENT = "orders-worker"
"""The Deployment the demo's queue describes (objects: rule), read by the HPA as an Object metric."""


@dataclass(frozen=True)
class DemoTiming:
    """Collection timing in wall-clock seconds for one time compression."""

    compression: float
    schedule_seconds: float
    sample_interval_seconds: float
    cloudwatch_period_seconds: int
    sqs_max_age_seconds: float
    cpu_max_age_seconds: float
    quiet_period_seconds: float

    @classmethod
    def for_compression(cls, compression: float) -> DemoTiming:
        if not compression > 0:
            raise ValueError(f"time compression must be positive, got {compression:g}")
        interval = max(MIN_SAMPLE_INTERVAL_SECONDS, SAMPLE_INTERVAL_SECONDS / compression)
        fitting = [p for p in HIGH_RESOLUTION_PERIODS if p * compression <= SCHEDULE_SECONDS]
        period = max(fitting, default=HIGH_RESOLUTION_PERIODS[0])
        served = SERVED_AGE_SECONDS / compression
        return cls(
            compression=compression,
            schedule_seconds=SCHEDULE_SECONDS / compression,
            sample_interval_seconds=interval,
            cloudwatch_period_seconds=period,
            sqs_max_age_seconds=round(max(served, 3 * interval + 2), 3),
            cpu_max_age_seconds=round(2 * period + max(served, 3 * interval + 2), 3),
            quiet_period_seconds=round(QUIET_PERIOD_SECONDS / compression, 3),
        )


def demo_config_yaml(
    redis_url: str,
    timing: DemoTiming,
    *,
    queue_name: str,
    cluster_name: str,
    namespace: str = DEMO_NAMESPACE,
    deployment: str = DEMO_DEPLOYMENT,
    derived_pressure: str | None = None,
) -> str:
    """The YAML document the collectors read from SSM and the server from a file.

    Its ``objects:`` rule says the queue's series describe Deployment ``namespace/deployment``, so the
    same backlog is served as an External metric and as that Deployment's Object metric. With
    ``derived_pressure`` (an expression), also the queue's deletions and the derived metric.
    """
    document: dict[str, object] = {
        "version": 1,
        "redis": {"url": redis_url},
        "sampling": {
            "interval_seconds": timing.sample_interval_seconds,
            "quiet_period_seconds": timing.quiet_period_seconds,
            "max_workers": 4,
            "deadline_margin_seconds": 0.5,
        },
        "defaults": {"max_age_seconds": timing.sqs_max_age_seconds},
        "sources": [
            {
                "name": SQS_SOURCE,
                "type": "sqs",
                "region": REGION,
                "queues": {"names": [queue_name]},
            },
            {
                "name": CLOUDWATCH_SOURCE,
                "type": "cloudwatch",
                "region": REGION,
                "lookback_seconds": 120,
                "queries": [
                    {
                        "preset": "aurora_cpu",
                        "identifier": cluster_name,
                        "period_seconds": timing.cloudwatch_period_seconds,
                        "max_age_seconds": timing.cpu_max_age_seconds,
                    }
                ],
            },
        ],
        "objects": [
            {
                "metric": "sqs_messages",
                "selector": f"queue={queue_name}",
                "resource": "deployments.apps",
                "namespace": namespace,
                "name": deployment,
            }
        ],
    }
    if derived_pressure is not None:
        _add_derived_pressure(document, timing, queue_name, derived_pressure)
    header = (
        "# tidegauge demo configuration, generated for time compression "
        f"{timing.compression:g}: wall-clock seconds throughout.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def _add_derived_pressure(
    document: dict[str, object], timing: DemoTiming, queue_name: str, expression: str
) -> None:
    """The deletions query (the simulated world publishes them, as SQS would) and the derived metric.

    A datapoint is the messages deleted in one period of ``cloudwatch_period_seconds`` WALL seconds,
    that is ``period * compression`` simulated seconds, hence the scale to messages per simulated second.
    """
    sources = document["sources"]
    assert isinstance(sources, list)
    period = timing.cloudwatch_period_seconds
    sources[1]["queries"].append(
        {
            "preset": "sqs_deleted",
            "identifier": queue_name,
            "period_seconds": period,
            "scale": round(1 / (period * timing.compression), 9),
            "max_age_seconds": timing.cpu_max_age_seconds,
        }
    )
    document["derived"] = {"orders_pressure": {"expression": expression, "unit": "replicas"}}


def validated(text: str) -> Config:
    """Parse the generated document as the collectors and server will (raises ConfigError)."""
    return parse_config(text, origin="<demo>", environ={})
