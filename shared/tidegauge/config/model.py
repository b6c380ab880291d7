"""The validated configuration as frozen values: what collectors and the server import.

Nothing here parses text: :mod:`tidegauge.config.document` turns a document into these values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from tidegauge.config.objects import ObjectRule

SCHEMA_VERSION: Final = 1
DEFAULT_SQS_METRIC: Final = "sqs_messages"
RESERVED_SQS_LABELS: Final = ("queue", "region", "account", "state")

Labels: TypeAlias = tuple[tuple[str, str], ...]
"""Label (or dimension, or tag) pairs sorted by key: hashable and comparable; ``dict(labels)`` for lookups."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RedisSettings:
    """Where collectors write and the server reads; ``cluster`` None means detect cluster mode."""

    url: str
    cluster: bool | None = None
    username: str | None = None
    password_secret: str | None = None
    tls_ca_file: str | None = None
    socket_timeout_seconds: float = 1.0
    history_length: int = 1440
    retire_after_seconds: float = 3600.0

    @property
    def redacted_url(self) -> str:
        """The URL with any password masked, safe for logs."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        rest = ", ".join(
            f"{item.name}={getattr(self, item.name)!r}"
            for item in dataclasses.fields(self)
            if item.name != "url"
        )
        return f"RedisSettings(url={self.redacted_url!r}, {rest})"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SamplingSettings:
    """How often and how widely one collector invocation samples."""

    interval_seconds: float = 15.0
    quiet_period_seconds: float = 300.0
    max_workers: int = 16
    deadline_margin_seconds: float = 3.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    """Fallbacks for settings a source, query or metric policy leaves out."""

    max_age_seconds: float = 120.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SqsSource:
    """SQS queues in one account and region, sampled into ``metric`` with queue/region/account/state."""

    kind: ClassVar[Literal["sqs"]] = "sqs"

    name: str
    region: str
    account: str | None = None
    role_arn: str | None = None
    queue_names: tuple[str, ...] = ()
    queue_prefixes: tuple[str, ...] = ()
    queue_tags: Labels = ()
    metric: str = DEFAULT_SQS_METRIC
    labels: Labels = ()
    max_age_seconds: float | None = None
    disappeared_grace_seconds: float = 600.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetricStatSpec:
    """One CloudWatch metric (namespace, name, dimensions, statistic) used by a metric-math expression."""

    namespace: str
    metric_name: str
    stat: str
    dimensions: Labels = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CloudWatchQuery:
    """One served metric from CloudWatch: either a metric stat or an expression (presets are expanded)."""

    metric: str
    labels: Labels = ()
    period_seconds: int = 60
    max_age_seconds: float | None = None
    missing_as_zero: bool = False
    scale: float = 1.0
    description: str = ""
    """What the metric means, for the store's metadata (a preset's own description; empty otherwise)."""
    metric_stat: MetricStatSpec | None = None
    """The one CloudWatch metric of a plain (or preset) query; None for an expression."""
    expression: str | None = None
    metrics: tuple[tuple[str, MetricStatSpec], ...] = ()

    @property
    def is_expression(self) -> bool:
        """True for a metric-math query, False for a plain metric stat."""
        return self.expression is not None

    @property
    def metric_stats(self) -> tuple[MetricStatSpec, ...]:
        """Every CloudWatch metric this query reads: its metric stat, or an expression's members."""
        if self.metric_stat is not None:
            return (self.metric_stat,)
        return tuple(spec for _, spec in self.metrics)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CloudWatchSource:
    """CloudWatch queries in one account and region, fetched together with GetMetricData."""

    kind: ClassVar[Literal["cloudwatch"]] = "cloudwatch"

    name: str
    region: str
    account: str | None = None
    role_arn: str | None = None
    lookback_seconds: int = 600
    queries: tuple[CloudWatchQuery, ...] = ()


Source: TypeAlias = SqsSource | CloudWatchSource


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Fallback:
    """Serve ``value`` instead of an error once nothing fresh has matched for ``after_seconds``."""

    value: float
    after_seconds: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LastKnownGood:
    """When nothing is fresh, serve each series' newest value (its real timestamp) while it is at most
    ``max_age_seconds`` past the metric's max age (``fallback: {mode: last_known_good}``)."""

    max_age_seconds: float


WindowFunction: TypeAlias = Literal["max", "avg", "p90", "ewma"]
WINDOW_FUNCTIONS: Final[tuple[WindowFunction, ...]] = ("max", "avg", "p90", "ewma")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Serve ``function`` of each series' last ``seconds`` of history (source time), not its raw value."""

    seconds: float
    function: WindowFunction


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetricPolicy:
    """How the server serves one metric; ``max_age_seconds`` is always resolved."""

    max_age_seconds: float
    fallback: Fallback | None = None
    unit: str | None = None
    description: str | None = None
    window: Window | None = None
    keep_alive_seconds: float | None = None
    """A series non-zero at any point of the last ``keep_alive_seconds`` is served as at least 1."""
    last_known_good: LastKnownGood | None = None
    """Read from ``fallback: {mode: last_known_good, max_age_seconds: N}``: not a key of its own."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DerivedMetric:
    """A metric the server computes at serve time from other metrics' fresh series (docs/signals.md)."""

    expression: str
    unit: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExposureRule:
    """Namespaces (globs) that may read metrics (globs), optionally only the series a selector matches."""

    namespaces: tuple[str, ...]
    metrics: tuple[str, ...]
    selector: str | None = None

    def matches(self, namespace: str, metric: str) -> bool:
        """Whether this rule applies to ``metric`` read from ``namespace``."""
        return any(fnmatchcase(namespace, pattern) for pattern in self.namespaces) and any(
            fnmatchcase(metric, pattern) for pattern in self.metrics
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExposureDecision:
    """Whether a namespace may read a metric; if allowed with selectors, only series matching ANY of them.

    ``allowed`` with no ``selectors`` means every series of the metric is visible.
    """

    allowed: bool
    selectors: tuple[str, ...] = ()

    @property
    def restricted(self) -> bool:
        """True when only the series matching one of ``selectors`` are visible."""
        return self.allowed and bool(self.selectors)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A validated tidegauge configuration (schema version 1)."""

    version: int = SCHEMA_VERSION
    redis: RedisSettings
    sampling: SamplingSettings = SamplingSettings()
    defaults: Defaults = Defaults()
    sources: tuple[Source, ...] = ()
    metrics: Mapping[str, MetricPolicy] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    exposure: tuple[ExposureRule, ...] | None = None
    derived: Mapping[str, DerivedMetric] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    objects: tuple[ObjectRule, ...] = ()
    """Which series describe which Kubernetes objects (the custom metrics API); see :mod:`.objects`."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<mapping>") -> Config:
        """Validate an already-parsed document (no environment overrides); raises ConfigError."""
        from tidegauge.config.document import build_config  # the parser imports these values

        return build_config(data, origin, url_override=None)

    def source(self, name: str) -> Source:
        """The source called ``name``; KeyError names the known sources."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(source.name for source in self.sources) or "none"
        raise KeyError(f"no source named {name!r}; known sources: {known}")

    def metric_names(self) -> tuple[str, ...]:
        """Every metric some source produces, and every derived metric, sorted."""
        return tuple(sorted({metric for metric, _ in producers(self.sources)} | set(self.derived)))

    def metric_policy(self, metric: str) -> MetricPolicy:
        """The serving policy of ``metric``: its ``metrics:`` entry, else its producers' or the default age.

        When several sources or queries produce the metric with different max ages, the largest wins so
        that no producer's fresh series is dropped.
        """
        policy = self.metrics.get(metric)
        if policy is not None:
            return policy
        return MetricPolicy(max_age_seconds=producer_max_age(self.sources, self.defaults, metric))

    def exposure_for(self, namespace: str, metric: str) -> ExposureDecision:
        """Whether ``namespace`` may read ``metric`` and which selectors limit the visible series.

        Without an ``exposure`` section every namespace reads every metric. With one, a namespace reads
        a metric only through a matching rule; a matching rule without a selector exposes every series.
        """
        if self.exposure is None:
            return ExposureDecision(allowed=True)
        selectors: list[str] = []
        for rule in self.exposure:
            if not rule.matches(namespace, metric):
                continue
            if rule.selector is None:
                return ExposureDecision(allowed=True)
            if rule.selector not in selectors:
                selectors.append(rule.selector)
        return ExposureDecision(allowed=bool(selectors), selectors=tuple(selectors))


def producers(sources: Iterable[Source]) -> list[tuple[str, float | None]]:
    """(metric, configured max age) for every SQS source and CloudWatch query."""
    result: list[tuple[str, float | None]] = []
    for source in sources:
        if isinstance(source, SqsSource):
            result.append((source.metric, source.max_age_seconds))
        else:
            result.extend((query.metric, query.max_age_seconds) for query in source.queries)
    return result


def producer_max_age(sources: Iterable[Source], defaults: Defaults, metric: str) -> float:
    ages = [
        age if age is not None else defaults.max_age_seconds
        for name, age in producers(sources)
        if name == metric
    ]
    return max(ages, default=defaults.max_age_seconds)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
