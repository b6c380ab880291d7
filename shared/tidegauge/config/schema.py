"""The keys each section of the document may hold, stated once: the readers and the docs test use these.

A section that mirrors one value class takes its keys from that class's fields, so adding a field adds
the key. Sources and queries are shaped differently from their values (``type``, ``queues``, presets),
so their keys are listed here. Number settings are declared here with their ranges only: their type
and default are the value class's (see ``Section.numbers``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, NamedTuple

from tidegauge.config.model import (
    Config,
    Defaults,
    DerivedMetric,
    ExposureRule,
    Fallback,
    MetricPolicy,
    MetricStatSpec,
    RedisSettings,
    SamplingSettings,
    Window,
)


def keys_of(value_class: Any) -> tuple[str, ...]:
    """The field names of a frozen value class, in declaration order."""
    return tuple(field.name for field in dataclasses.fields(value_class))


TOP_LEVEL_KEYS: Final = keys_of(Config)
REDIS_KEYS: Final = keys_of(RedisSettings)
SAMPLING_KEYS: Final = keys_of(SamplingSettings)
DEFAULTS_KEYS: Final = keys_of(Defaults)
METRIC_POLICY_KEYS: Final = tuple(key for key in keys_of(MetricPolicy) if key != "last_known_good")
FALLBACK_MODES: Final = ("value", "last_known_good")
FALLBACK_KEYS: Final = ("mode", *keys_of(Fallback), "max_age_seconds")
WINDOW_KEYS: Final = keys_of(Window)
DERIVED_KEYS: Final = keys_of(DerivedMetric)
EXPOSURE_KEYS: Final = keys_of(ExposureRule)
STAT_KEYS: Final = keys_of(MetricStatSpec)
OBJECT_KEYS: Final = ("metric", "selector", "resource", "kind", "api_version", "namespace", "name")

SOURCE_TYPES: Final = ("sqs", "cloudwatch")
COMMON_SOURCE_KEYS: Final = ("name", "type", "region", "account", "role_arn")
SQS_KEYS: Final = (
    *COMMON_SOURCE_KEYS,
    "queues",
    "metric",
    "labels",
    "max_age_seconds",
    "disappeared_grace_seconds",
)
QUEUES_KEYS: Final = ("names", "prefixes", "tags")
CLOUDWATCH_KEYS: Final = (*COMMON_SOURCE_KEYS, "lookback_seconds", "queries")
QUERY_COMMON_KEYS: Final = (
    "metric",
    "labels",
    "period_seconds",
    "max_age_seconds",
    "missing_as_zero",
    "scale",
)
EXPRESSION_KEYS: Final = ("expression", "metrics")
PRESET_KEYS: Final = ("preset", "identifier")
QUERY_KEYS: Final = (*QUERY_COMMON_KEYS, *STAT_KEYS, *EXPRESSION_KEYS, *PRESET_KEYS)
QUERY_KINDS: Final = (
    ("namespace/metric_name/stat", STAT_KEYS, ("namespace", "metric_name", "stat")),
    ("expression/metrics", EXPRESSION_KEYS, EXPRESSION_KEYS),
    ("preset/identifier", PRESET_KEYS, PRESET_KEYS),
)


class Range(NamedTuple):
    """The values a number setting may take, and a hint for its fix."""

    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    hint: str = ""


REDIS_NUMBERS: Final = {
    "socket_timeout_seconds": Range(above=0, maximum=30),
    "history_length": Range(minimum=0, maximum=1_000_000, hint="0 disables history"),
    "retire_after_seconds": Range(minimum=60),
}
SAMPLING_NUMBERS: Final = {
    "interval_seconds": Range(minimum=1, maximum=60),
    "quiet_period_seconds": Range(minimum=0),
    "max_workers": Range(minimum=1, maximum=256),
    "deadline_margin_seconds": Range(minimum=0),
}
DEFAULTS_NUMBERS: Final = {"max_age_seconds": Range(above=0)}
SQS_NUMBERS: Final = {"disappeared_grace_seconds": Range(minimum=0)}
CLOUDWATCH_NUMBERS: Final = {"lookback_seconds": Range(minimum=60, maximum=14 * 86400)}
