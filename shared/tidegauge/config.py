"""The declarative tidegauge configuration: schema, presets and validation.

Collectors (from an SSM parameter) and the server (from a file) load the same YAML or JSON document.
Every problem is collected and reported at once, each naming the field and how to fix it, so a bad
deployment fails fast with one readable message instead of one error per attempt.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, NamedTuple, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import yaml

from tidegauge import environment
from tidegauge.errors import UsageError
from tidegauge.selectors import SelectorError, parse_selector

SCHEMA_VERSION: Final = 1
DEFAULT_SQS_METRIC: Final = "sqs_messages"
RESERVED_SQS_LABELS: Final = ("queue", "region", "account", "state")

Labels: TypeAlias = tuple[tuple[str, str], ...]
"""Label (or dimension, or tag) pairs sorted by key: hashable and comparable; ``dict(labels)`` for lookups."""


# --- values -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One problem in a configuration document: where it is, what is wrong, what to do."""

    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}. Fix: {self.fix}"


class ConfigError(UsageError, ValueError):
    """An invalid configuration; ``errors`` lists every issue found, ``field``/``fix`` are the first's."""

    def __init__(self, errors: Iterable[ConfigIssue], origin: str = "<string>") -> None:
        self.errors: tuple[ConfigIssue, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("ConfigError needs at least one issue")
        self.origin = origin
        self.field = self.errors[0].field
        self.problem = self.errors[0].problem
        self.fix = self.errors[0].fix
        super().__init__("\n".join(f"{origin}: {issue}" for issue in self.errors))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[ConfigIssue, ...], str]]:
        return type(self), (self.errors, self.origin)


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
        return _redact_url(self.url)

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
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: Labels = ()
    stat: str | None = None
    expression: str | None = None
    metrics: tuple[tuple[str, MetricStatSpec], ...] = ()

    @property
    def is_expression(self) -> bool:
        """True for a metric-math query, False for a plain metric stat."""
        return self.expression is not None


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
class Preset:
    """A well-known CloudWatch metric: ``identifier`` fills ``dimension`` and becomes label ``label``."""

    metric: str
    namespace: str
    metric_name: str
    stat: str
    dimension: str
    label: str
    description: str
    period_seconds: int = 60
    missing_as_zero: bool = False
    scale: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Fallback:
    """Serve ``value`` instead of an error once nothing fresh has matched for ``after_seconds``."""

    value: float
    after_seconds: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetricPolicy:
    """How the server serves one metric; ``max_age_seconds`` is always resolved."""

    max_age_seconds: float
    fallback: Fallback | None = None
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


PRESETS: Final[Mapping[str, Preset]] = MappingProxyType(
    {
        "aurora_cpu": Preset(
            metric="aurora_cpu_percent",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            stat="Average",
            dimension="DBClusterIdentifier",
            label="cluster",
            description="CPU utilisation of an Aurora cluster, percent",
        ),
        "rds_cpu": Preset(
            metric="rds_cpu_percent",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            stat="Average",
            dimension="DBInstanceIdentifier",
            label="instance",
            description="CPU utilisation of an RDS instance, percent",
        ),
        "rds_connections": Preset(
            metric="rds_connections",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            stat="Average",
            dimension="DBInstanceIdentifier",
            label="instance",
            description="client connections to an RDS instance",
        ),
        "aurora_connections": Preset(
            metric="aurora_connections",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            stat="Average",
            dimension="DBClusterIdentifier",
            label="cluster",
            description="client connections to an Aurora cluster",
        ),
        "rds_db_load": Preset(
            metric="rds_db_load",
            namespace="AWS/RDS",
            metric_name="DBLoad",
            stat="Average",
            dimension="DBInstanceIdentifier",
            label="instance",
            description="average active sessions of an RDS instance (absent when idle, served as 0)",
            missing_as_zero=True,
        ),
        "aurora_db_load": Preset(
            metric="aurora_db_load",
            namespace="AWS/RDS",
            metric_name="DBLoad",
            stat="Average",
            dimension="DBClusterIdentifier",
            label="cluster",
            description="average active sessions of an Aurora cluster (absent when idle, served as 0)",
            missing_as_zero=True,
        ),
        "dynamodb_read_capacity": Preset(
            metric="dynamodb_consumed_read_per_second",
            namespace="AWS/DynamoDB",
            metric_name="ConsumedReadCapacityUnits",
            stat="Sum",
            dimension="TableName",
            label="table",
            description="read capacity units a DynamoDB table consumes per second",
            scale=1 / 60,
        ),
        "dynamodb_write_capacity": Preset(
            metric="dynamodb_consumed_write_per_second",
            namespace="AWS/DynamoDB",
            metric_name="ConsumedWriteCapacityUnits",
            stat="Sum",
            dimension="TableName",
            label="table",
            description="write capacity units a DynamoDB table consumes per second",
            scale=1 / 60,
        ),
        "sqs_oldest_message_age": Preset(
            metric="sqs_oldest_message_age_seconds",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            stat="Maximum",
            dimension="QueueName",
            label="queue",
            description="age of the oldest message in an SQS queue, seconds",
        ),
    }
)


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

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<mapping>") -> Config:
        """Validate an already-parsed document (no environment overrides); raises ConfigError."""
        return _build_config(data, origin, url_override=None)

    @classmethod
    def default(cls) -> Config:
        """The built-in demo configuration (``DEFAULT_CONFIG_YAML``), without environment overrides."""
        return parse_config(DEFAULT_CONFIG_YAML, origin="<default>", environ={})

    def source(self, name: str) -> Source:
        """The source called ``name``; KeyError names the known sources."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(source.name for source in self.sources) or "none"
        raise KeyError(f"no source named {name!r}; known sources: {known}")

    def metric_names(self) -> tuple[str, ...]:
        """Every metric some source produces, sorted."""
        return tuple(sorted({metric for metric, _ in _producers(self.sources)}))

    def metric_policy(self, metric: str) -> MetricPolicy:
        """The serving policy of ``metric``: its ``metrics:`` entry, else its producers' or the default age.

        When several sources or queries produce the metric with different max ages, the largest wins so
        that no producer's fresh series is dropped.
        """
        policy = self.metrics.get(metric)
        if policy is not None:
            return policy
        return MetricPolicy(max_age_seconds=_producer_max_age(self.sources, self.defaults, metric))

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


DEFAULT_CONFIG_YAML: Final = """\
# Built-in configuration of `tidegauge demo`: a local Redis, one SQS queue, one Aurora cluster's CPU.
version: 1
redis:
  url: redis://127.0.0.1:6379/0
sources:
  - name: demo
    type: sqs
    region: us-east-1
    queues:
      names: [demo-orders]
  - name: demo-db
    type: cloudwatch
    region: us-east-1
    queries:
      - preset: aurora_cpu
        identifier: demo
"""


# --- loading ------------------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    redis_url: str | None = None,
) -> Config:
    """Read and validate a YAML or JSON configuration file; raises ConfigError."""
    origin = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError(
            [ConfigIssue(field=_DOCUMENT, problem=f"cannot read the file: {reason}", fix=_FIX_PATH)], origin
        ) from error
    return parse_config(text, origin, environ=environ, redis_url=redis_url)


def parse_config(
    text: str,
    origin: str = "<string>",
    *,
    environ: Mapping[str, str] | None = None,
    redis_url: str | None = None,
) -> Config:
    """Validate configuration text (YAML or JSON, e.g. an SSM parameter value); raises ConfigError.

    ``redis_url`` beats ``TIDEGAUGE_REDIS_URL`` in ``environ`` (default ``os.environ``, empty means
    unset), which beats ``redis.url`` in the text.
    """
    data = _parse_text(text, origin)
    if redis_url is not None:
        override: tuple[str, str] | None = (redis_url, "the redis_url argument")
    else:
        from_environment = (os.environ if environ is None else environ).get(environment.REDIS_URL, "")
        override = (from_environment, environment.REDIS_URL) if from_environment else None
    return _build_config(data, origin, url_override=override)


_DOCUMENT: Final = "(document)"
_FIX_PATH: Final = "check the path and that the file is readable UTF-8 text"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            identity = (key_node.tag, key_node.value)
            if identity in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(identity)
        return super().construct_mapping(node, deep)


def _parse_text(text: str, origin: str) -> Any:
    """YAML or JSON by content: JSON when it looks like a JSON object and parses as one."""
    text = text.removeprefix("\ufeff")
    json_error: json.JSONDecodeError | None = None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as error:
            json_error = error  # maybe a YAML flow mapping; report the JSON error if YAML fails too
        except _DuplicateKeyError as error:
            raise ConfigError(
                [
                    ConfigIssue(
                        field=_DOCUMENT,
                        problem=f"duplicate key {error.key!r} in a JSON object",
                        fix="remove one of the two entries",
                    )
                ],
                origin,
            ) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        if json_error is not None:
            issue = ConfigIssue(
                field=f"line {json_error.lineno}, column {json_error.colno}",
                problem=f"invalid JSON: {json_error.msg}",
                fix="correct the JSON syntax there",
            )
        else:
            issue = _yaml_issue(error)
        raise ConfigError([issue], origin) from None


def _yaml_issue(error: yaml.YAMLError) -> ConfigIssue:
    if not isinstance(error, yaml.MarkedYAMLError):
        return ConfigIssue(field=_DOCUMENT, problem=f"invalid YAML: {error}", fix="correct the YAML syntax")
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else _DOCUMENT
    problem = error.problem or "syntax error"
    if problem.startswith("found duplicate key"):
        return ConfigIssue(
            field=where, problem=f"invalid YAML: {problem}", fix="remove one of the two entries"
        )
    context = f" ({error.context})" if error.context else ""
    return ConfigIssue(
        field=where,
        problem=f"invalid YAML: {problem}{context}",
        fix="correct the YAML syntax there (indentation, a missing ':' or an unclosed quote or bracket)",
    )


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


# --- reading helpers ----------------------------------------------------------------------------------


class _Issues:
    """The issues collected while validating one document."""

    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, field: str, problem: str, fix: str) -> None:
        self.items.append(ConfigIssue(field=field, problem=problem, fix=fix))


class _Section:
    """One mapping of the document at a field path, read key by key with type and range checks.

    Getters record an issue and return None (or the default) for a missing or invalid value, so that
    validation continues and every problem is reported.
    """

    def __init__(self, issues: _Issues, path: str, data: Mapping[Any, Any], allowed: Sequence[str]) -> None:
        self.issues = issues
        self.path = path
        self.data = data
        for key in data:
            if not isinstance(key, str):
                issues.add(
                    self.at(str(key)),
                    f"key {key!r} is {_describe(key)}, not a string",
                    f"use one of the allowed keys: {', '.join(allowed)}",
                )
            elif key not in allowed:
                issues.add(self.at(key), _unknown("key", key, allowed), f"use one of: {', '.join(allowed)}")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def wrong_type(self, key: str, value: Any, expected: str, fix: str = "") -> None:
        self.issues.add(
            self.at(key),
            f"expected {expected}, got {_describe(value)}",
            fix or _type_fix(key, value, expected),
        )

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        max_length: int | None = None,
        fix: str = "",
    ) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", fix or f"set {key}")
            return None
        if not isinstance(value, str):
            self.wrong_type(key, value, "a string")
            return None
        if not value.strip():
            self.issues.add(self.at(key), "is empty", fix or f"set {key} or remove it")
            return None
        if max_length is not None and len(value) > max_length:
            self.issues.add(self.at(key), f"is longer than {max_length} characters", fix or f"shorten {key}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.issues.add(self.at(key), f"{value!r} is not a valid {what or key}", fix or f"correct {key}")
            return None
        return value

    def _number(
        self,
        key: str,
        *,
        integral: bool,
        required: bool = False,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        hint: str = "",
    ) -> float | None:
        value = self.data.get(key)
        expected = "an integer" if integral else "a number"
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", f"set {key} to {expected}")
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (integral and isinstance(value, float))
        ):
            self.wrong_type(key, value, expected)
            return None
        number = float(value)
        if not math.isfinite(number):
            self.issues.add(
                self.at(key), f"must be a finite number, got {value!r}", f"set {key} to {expected}"
            )
            return None
        if (
            (minimum is not None and number < minimum)
            or (above is not None and number <= above)
            or (maximum is not None and number > maximum)
        ):
            constraint = _constraint(minimum, above, maximum)
            self.issues.add(
                self.at(key),
                f"must be {constraint}, got {_format_number(number)}",
                f"set {key} to a value {constraint}" + (f" ({hint})" if hint else ""),
            )
            return None
        return number

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        hint: str = "",
    ) -> float:
        value = self._number(key, integral=False, minimum=minimum, above=above, maximum=maximum, hint=hint)
        return default if value is None else value

    def optional_number(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        return self._number(
            key, integral=False, required=required, minimum=minimum, above=above, maximum=maximum
        )

    def integer(
        self,
        key: str,
        default: int,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        hint: str = "",
    ) -> int:
        value = self._number(key, integral=True, minimum=minimum, above=above, maximum=maximum, hint=hint)
        return default if value is None else int(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.wrong_type(key, value, "a boolean (true or false)")
            return default
        return value

    def section(
        self, key: str, allowed: Sequence[str], *, required: bool = False, fix: str = ""
    ) -> _Section | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", fix or f"add a {key} section")
            return None
        return _as_section(self.issues, self.at(key), value, allowed)

    def items(self, key: str, *, required: bool = False, fix: str = "") -> list[tuple[str, Any]] | None:
        """The elements of a list as (field path, value) pairs; None if absent or not a list."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.add(self.at(key), "is required", fix or f"add a {key} list")
            return None
        if not isinstance(value, list):
            self.wrong_type(key, value, "a list", fix)
            return None
        if not value and required:
            self.issues.add(self.at(key), "is empty", fix or f"add at least one entry to {key}")
        return [(f"{self.at(key)}[{index}]", item) for index, item in enumerate(value)]

    def strings(self, key: str, *, required: bool = False, fix: str = "") -> list[tuple[str, str]] | None:
        """The string elements of a list as (field path, value) pairs; other elements are issues."""
        elements = self.items(key, required=required, fix=fix)
        if elements is None:
            return None
        result: list[tuple[str, str]] = []
        for path, item in elements:
            if isinstance(item, str) and item.strip():
                result.append((path, item))
            elif isinstance(item, str):
                self.issues.add(path, "is empty", f"remove the empty entry from {key}")
            else:
                self.issues.add(
                    path, f"expected a string, got {_describe(item)}", _type_fix(key, item, "a string")
                )
        return result

    def string_map(self, key: str) -> list[tuple[str, str, str]] | None:
        """The string entries of a mapping as (field path, key, value); other entries are issues."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.wrong_type(
                key, value, "a mapping of strings to strings", f"write {key} as {{name: value, ...}}"
            )
            return None
        result: list[tuple[str, str, str]] = []
        for entry_key, entry_value in value.items():
            path = f"{self.at(key)}.{entry_key}"
            if not isinstance(entry_key, str):
                self.issues.add(
                    path, f"key {entry_key!r} is {_describe(entry_key)}, not a string", "quote the key"
                )
            elif not isinstance(entry_value, str):
                self.issues.add(
                    path,
                    f"expected a string, got {_describe(entry_value)}",
                    _type_fix(entry_key, entry_value, "a string"),
                )
            else:
                result.append((path, entry_key, entry_value))
        return result


def _as_section(issues: _Issues, path: str, value: Any, allowed: Sequence[str]) -> _Section | None:
    if not isinstance(value, Mapping):
        issues.add(
            path,
            f"expected a mapping, got {_describe(value)}",
            f"write it as a mapping with keys: {', '.join(allowed)}",
        )
        return None
    return _Section(issues, path, value, allowed)


def _describe(value: Any) -> str:
    """A value's YAML type, with the value itself when short, for 'expected …, got …' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    name = {int: "integer", float: "number", str: "string"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{name} {text}" if len(text) <= 40 else f"{name} {text[:37]}..."


def _type_fix(key: str, value: Any, expected: str) -> str:
    if expected == "a string":
        if isinstance(value, bool):
            return f'quote it, e.g. {key}: "{str(value).lower()}" (YAML reads yes/no/on/off as booleans)'
        if isinstance(value, int | float):
            return f'quote it, e.g. {key}: "{value}"'
    return f"write {key} as {expected}"


def _unknown(what: str, name: str, allowed: Iterable[str]) -> str:
    return f"unknown {what} {name!r}{_did_you_mean(name, allowed)}"


def _did_you_mean(name: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_number(number: float) -> str:
    return str(int(number)) if number == int(number) else repr(number)


def _constraint(minimum: float | None, above: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {_format_number(minimum)} and {_format_number(maximum)}"
    parts = []
    if minimum is not None:
        parts.append(f"at least {_format_number(minimum)}")
    if above is not None:
        parts.append(f"greater than {_format_number(above)}")
    if maximum is not None:
        parts.append(f"at most {_format_number(maximum)}")
    return " and ".join(parts)


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# --- patterns -----------------------------------------------------------------------------------------

_SOURCE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_ACCOUNT = re.compile(r"\d{12}")
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}")
_SECRET_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
)
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_METRIC_NAME = re.compile(r"[a-z_][a-z0-9_]{0,99}")
_QUEUE_NAME = re.compile(r"(?=.{1,80}\Z)[A-Za-z0-9_-]+(\.fifo)?")
_QUEUE_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,80}")
_SQS_HOST_REGION = re.compile(
    r"sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?"
)
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")
_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_STANDARD_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum", "IQM")
_PERCENTILE_STAT = re.compile(r"(p|tm|wm|tc|ts|pr)(\d+(\.\d+)?)")
_RANGE_STAT = re.compile(r"(TM|WM|TC|TS|PR)\([^():]*:[^():]*\)")
_STAT_FIX: Final = (
    "use Average, Sum, Minimum, Maximum, SampleCount, IQM, a percentile such as p99 or p99.9, or tm90"
)
_EXPRESSION_ID = re.compile(r"[a-z][A-Za-z0-9_]{0,254}")
_EXPRESSION_REFERENCE = re.compile(r"(?<![\w.])([a-z][A-Za-z0-9_]*)(?![\w(])")
_STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_GLOB_CHARACTERS = frozenset("*?[")
_SHORT_PERIODS = (1, 5, 10, 30)
_MAX_DIMENSIONS = 30
_MAX_TAGS = 50

_TOP_LEVEL_KEYS = ("version", "redis", "sampling", "defaults", "sources", "metrics", "exposure")
_REDIS_KEYS = (
    "url",
    "cluster",
    "username",
    "password_secret",
    "tls_ca_file",
    "socket_timeout_seconds",
    "history_length",
    "retire_after_seconds",
)
_SAMPLING_KEYS = ("interval_seconds", "quiet_period_seconds", "max_workers", "deadline_margin_seconds")
_DEFAULTS_KEYS = ("max_age_seconds",)
_SOURCE_TYPES = ("sqs", "cloudwatch")
_COMMON_SOURCE_KEYS = ("name", "type", "region", "account", "role_arn")
_SQS_KEYS = (
    *_COMMON_SOURCE_KEYS,
    "queues",
    "metric",
    "labels",
    "max_age_seconds",
    "disappeared_grace_seconds",
)
_QUEUES_KEYS = ("names", "prefixes", "tags")
_CLOUDWATCH_KEYS = (*_COMMON_SOURCE_KEYS, "lookback_seconds", "queries")
_QUERY_COMMON_KEYS = ("metric", "labels", "period_seconds", "max_age_seconds", "missing_as_zero", "scale")
_STAT_KEYS = ("namespace", "metric_name", "stat", "dimensions")
_EXPRESSION_KEYS = ("expression", "metrics")
_PRESET_KEYS = ("preset", "identifier")
_QUERY_KEYS = (*_QUERY_COMMON_KEYS, *_STAT_KEYS, *_EXPRESSION_KEYS, *_PRESET_KEYS)
_QUERY_KINDS: Final = (
    ("namespace/metric_name/stat", _STAT_KEYS, ("namespace", "metric_name", "stat")),
    ("expression/metrics", _EXPRESSION_KEYS, _EXPRESSION_KEYS),
    ("preset/identifier", _PRESET_KEYS, _PRESET_KEYS),
)
_METRIC_POLICY_KEYS = ("max_age_seconds", "fallback", "unit", "description")
_FALLBACK_KEYS = ("value", "after_seconds")
_EXPOSURE_KEYS = ("namespaces", "metrics", "selector")

_METRIC_FIX: Final = "use lower-case letters, digits and '_', starting with a letter or '_' (at most 100)"
_LABEL_KEY_FIX: Final = (
    "use a Kubernetes label key: letters, digits, '-', '_', '.', at most 63, optional dns/ prefix"
)
_LABEL_VALUE_FIX: Final = (
    "use a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting and ending "
    "with a letter or digit (HPA selectors can only match such values)"
)


# --- the document -------------------------------------------------------------------------------------


def _build_config(data: Any, origin: str, url_override: tuple[str, str] | None) -> Config:
    if data is None:
        raise ConfigError(
            [
                ConfigIssue(
                    field=_DOCUMENT,
                    problem="the configuration is empty",
                    fix="start from shared/tidegauge/examples/config.yaml (in the tidegauge repository)",
                )
            ],
            origin,
        )
    if not isinstance(data, Mapping):
        raise ConfigError(
            [
                ConfigIssue(
                    field=_DOCUMENT,
                    problem=f"expected a mapping at the top level, got {_describe(data)}",
                    fix=f"write a mapping with keys: {', '.join(_TOP_LEVEL_KEYS)}",
                )
            ],
            origin,
        )
    issues = _Issues()
    root = _Section(issues, "", data, _TOP_LEVEL_KEYS)
    _check_version(root)
    redis = _parse_redis(root, url_override)
    sampling = _parse_sampling(root)
    defaults = _parse_defaults(root)
    placed_sources = _parse_sources(root)
    sources = tuple(source for _, source in placed_sources)
    produced = {metric for metric, _ in _producers(sources) if metric}
    entries = _parse_metric_entries(root, produced)
    _check_metric_collisions(issues, placed_sources)
    _check_query_ages(issues, placed_sources, entries, defaults)
    exposure = _parse_exposure(root, produced)
    if issues.items:
        raise ConfigError(issues.items, origin)
    metrics = {
        metric: MetricPolicy(
            max_age_seconds=(
                entry.max_age_seconds
                if entry.max_age_seconds is not None
                else _producer_max_age(sources, defaults, metric)
            ),
            fallback=entry.fallback,
            unit=entry.unit,
            description=entry.description,
        )
        for metric, (_, entry) in entries.items()
    }
    return Config(
        version=SCHEMA_VERSION,
        redis=redis,
        sampling=sampling,
        defaults=defaults,
        sources=sources,
        metrics=MappingProxyType(metrics),
        exposure=exposure,
    )


def _check_version(root: _Section) -> None:
    value = root.data.get("version")
    fix = f"put `version: {SCHEMA_VERSION}` at the top of the document"
    if value is None:
        root.issues.add("version", "is required", fix)
    elif isinstance(value, bool) or not isinstance(value, int):
        root.wrong_type("version", value, "an integer", fix)
    elif value != SCHEMA_VERSION:
        root.issues.add(
            "version",
            f"unsupported schema version {value}",
            f"use version: {SCHEMA_VERSION}, the only version this tidegauge understands",
        )


def _parse_redis(root: _Section, url_override: tuple[str, str] | None) -> RedisSettings:
    url_fix = (
        f"set redis.url (e.g. redis://127.0.0.1:6379/0) or the {environment.REDIS_URL} environment variable"
    )
    section = root.section("redis", _REDIS_KEYS)
    if section is None:
        if root.has("redis"):  # present but not a mapping: already reported
            return RedisSettings(url=url_override[0] if url_override else "")
        section = _Section(root.issues, "redis", {}, _REDIS_KEYS)
    if url_override is not None:
        url: str | None = url_override[0]
        url_origin = f"value from {url_override[1]}: "
    else:
        url = section.string("url", required=True, fix=url_fix)
        url_origin = ""
    url_problem = _redis_url_problem(url) if url is not None else None
    if url_problem is not None:
        root.issues.add(
            "redis.url",
            url_origin + url_problem,
            "use redis://[user:password@]host:port/db, rediss://… for TLS, or unix:///path/to/socket",
        )
    parts = urlsplit(url) if url is not None and url_problem is None else None
    cluster = _parse_cluster(section)
    username = section.string("username")
    password_secret = section.string("password_secret", max_length=2048)
    if password_secret is not None and not (
        _SECRET_ARN.fullmatch(password_secret) or _SECRET_NAME.fullmatch(password_secret)
    ):
        root.issues.add(
            "redis.password_secret",
            f"{password_secret!r} is neither a Secrets Manager secret name nor a secret ARN",
            "use the secret's name (letters, digits, /_+=.@-) or its arn:aws:secretsmanager:… ARN",
        )
    tls_ca_file = section.string("tls_ca_file")
    if tls_ca_file is not None and parts is not None and parts.scheme != "rediss":
        root.issues.add(
            "redis.tls_ca_file",
            "is set but redis.url does not use TLS (rediss://)",
            "use a rediss:// URL, or remove tls_ca_file",
        )
    if username is not None and parts is not None and parts.password is None and password_secret is None:
        root.issues.add(
            "redis.username",
            "is set but no password is configured, so no AUTH would be sent",
            "set redis.password_secret, or put the password in redis.url",
        )
    return RedisSettings(
        url=url or "",
        cluster=cluster,
        username=username,
        password_secret=password_secret,
        tls_ca_file=tls_ca_file,
        socket_timeout_seconds=section.number("socket_timeout_seconds", 1.0, above=0, maximum=30),
        history_length=section.integer(
            "history_length", 1440, minimum=0, maximum=1_000_000, hint="0 disables history"
        ),
        retire_after_seconds=section.number("retire_after_seconds", 3600.0, minimum=60),
    )


def _redis_url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (check the port and any [IPv6] address)"
    if parts.scheme not in ("redis", "rediss", "unix"):
        return f"scheme {parts.scheme + '://' if parts.scheme else '(none)'} is not supported"
    if parts.scheme == "unix":
        return None if parts.path else "has no socket path"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        return f"database {database!r} is not a number"
    return None


def _parse_cluster(section: _Section) -> bool | None:
    value = section.data.get("cluster")
    if value is None or value == "auto":
        return None
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    section.issues.add(
        section.at("cluster"),
        f"expected auto, true or false, got {_describe(value)}",
        "use auto (detect), true (Redis Cluster / ElastiCache Serverless) or false (standalone)",
    )
    return None


def _parse_sampling(root: _Section) -> SamplingSettings:
    section = root.section("sampling", _SAMPLING_KEYS) or _Section(
        root.issues, "sampling", {}, _SAMPLING_KEYS
    )
    return SamplingSettings(
        interval_seconds=section.number("interval_seconds", 15.0, minimum=1, maximum=60),
        quiet_period_seconds=section.number("quiet_period_seconds", 300.0, minimum=0),
        max_workers=section.integer("max_workers", 16, minimum=1, maximum=256),
        deadline_margin_seconds=section.number("deadline_margin_seconds", 3.0, minimum=0),
    )


def _parse_defaults(root: _Section) -> Defaults:
    section = root.section("defaults", _DEFAULTS_KEYS) or _Section(
        root.issues, "defaults", {}, _DEFAULTS_KEYS
    )
    return Defaults(max_age_seconds=section.number("max_age_seconds", 120.0, above=0))


# --- sources ------------------------------------------------------------------------------------------


class _Common(NamedTuple):
    name: str
    region: str
    account: str | None
    role_arn: str | None


def _parse_sources(root: _Section) -> list[tuple[int, Source]]:
    """Valid-typed sources with their index in the list (for field paths)."""
    elements = root.items(
        "sources", required=True, fix="add at least one source under sources (type: sqs or type: cloudwatch)"
    )
    result: list[tuple[int, Source]] = []
    first_with_name: dict[str, str] = {}
    for index, (path, raw) in enumerate(elements or []):
        source = _parse_source(root.issues, path, raw)
        if source is None:
            continue
        if source.name:
            if source.name in first_with_name:
                root.issues.add(
                    f"{path}.name",
                    f"duplicate source name {source.name!r}, already used by {first_with_name[source.name]}",
                    "give every source a unique name",
                )
            else:
                first_with_name[source.name] = path
        result.append((index, source))
    return result


def _parse_source(issues: _Issues, path: str, raw: Any) -> Source | None:
    if not isinstance(raw, Mapping):
        issues.add(
            path,
            f"expected a mapping, got {_describe(raw)}",
            "write each source as a mapping with name and type",
        )
        return None
    kind = raw.get("type")
    if kind is None:
        issues.add(f"{path}.type", "is required", "set type: sqs or type: cloudwatch")
        return None
    if kind not in _SOURCE_TYPES:
        issues.add(
            f"{path}.type",
            _unknown("source type", str(kind), _SOURCE_TYPES)
            if isinstance(kind, str)
            else f"expected a string, got {_describe(kind)}",
            "set type: sqs or type: cloudwatch",
        )
        return None
    section = _Section(issues, path, raw, _SQS_KEYS if kind == "sqs" else _CLOUDWATCH_KEYS)
    common = _Common(
        name=section.string(
            "name",
            required=True,
            pattern=_SOURCE_NAME,
            what="source name",
            fix="use at most 63 lower-case letters, digits and '-', starting and ending alphanumeric",
        )
        or "",
        region=section.string(
            "region",
            required=True,
            pattern=_REGION,
            what="AWS region",
            fix="use an AWS region code such as eu-west-1",
        )
        or "",
        account=_parse_account(section),
        role_arn=section.string(
            "role_arn",
            pattern=_ROLE_ARN,
            what="IAM role ARN",
            fix="use arn:aws:iam::<12-digit account>:role/<name>, or remove it to use the function's role",
        ),
    )
    return _parse_sqs(section, common) if kind == "sqs" else _parse_cloudwatch(section, common)


def _parse_account(section: _Section) -> str | None:
    value = section.data.get("account")
    if isinstance(value, int) and not isinstance(value, bool):
        section.issues.add(
            section.at("account"),
            "must be a quoted string: as a number an account id loses its leading zeros",
            'quote the 12 digits, e.g. account: "012345678901"',
        )
        return None
    return section.string(
        "account",
        pattern=_ACCOUNT,
        what="AWS account id",
        fix='use the 12-digit account id in quotes, e.g. "123456789012"',
    )


def _parse_sqs(section: _Section, common: _Common) -> SqsSource:
    queues = section.section(
        "queues",
        _QUEUES_KEYS,
        required=True,
        fix="add queues with names (names or URLs), prefixes and/or tags",
    )
    names: list[str] = []
    prefixes: list[str] = []
    tags: Labels = ()
    if queues is not None:
        for path, name in queues.strings("names") or []:
            if _check_queue(section.issues, path, name, common) and name in names:
                section.issues.add(path, f"queue {name!r} is listed twice", "remove the duplicate")
            names.append(name)
        for path, prefix in queues.strings("prefixes") or []:
            if not _QUEUE_PREFIX.fullmatch(prefix):
                section.issues.add(
                    path,
                    f"{prefix!r} is not a valid queue name prefix",
                    "use at most 80 letters, digits, '-', '_' or '.'",
                )
            prefixes.append(prefix)
        tags = _parse_tags(queues)
        if not any(queues.data.get(key) for key in _QUEUES_KEYS):
            section.issues.add(
                queues.path,
                "selects no queues",
                "list queue names or URLs under names, name prefixes under prefixes, and/or tags to match",
            )
    return SqsSource(
        name=common.name,
        region=common.region,
        account=common.account,
        role_arn=common.role_arn,
        queue_names=tuple(names),
        queue_prefixes=tuple(prefixes),
        queue_tags=tags,
        metric=section.string("metric", pattern=_METRIC_NAME, what="metric name", fix=_METRIC_FIX)
        or DEFAULT_SQS_METRIC,
        labels=_parse_labels(
            section,
            reserved=RESERVED_SQS_LABELS,
            reserved_fix="rename or remove it: queue, region, account and state are set per queue",
        ),
        max_age_seconds=section.optional_number("max_age_seconds", above=0),
        disappeared_grace_seconds=section.number("disappeared_grace_seconds", 600.0, minimum=0),
    )


def _check_queue(issues: _Issues, path: str, name: str, common: _Common) -> bool:
    """Validate a queue name or URL (and that a URL agrees with the source); True when valid."""
    if "://" not in name:
        if _QUEUE_NAME.fullmatch(name):
            return True
        issues.add(
            path,
            f"{name!r} is neither a queue name nor a queue URL",
            "use the queue name (at most 80 letters, digits, '-', '_', optional .fifo) or its https:// URL",
        )
        return False
    parts = urlsplit(name)
    segments = parts.path.strip("/").split("/")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(segments) != 2
        or not _ACCOUNT.fullmatch(segments[0])
        or not _QUEUE_NAME.fullmatch(segments[1])
    ):
        issues.add(
            path,
            f"{name!r} is not a queue URL",
            "use https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>, or just the queue name",
        )
        return False
    host = _SQS_HOST_REGION.fullmatch(parts.hostname)
    url_region = (host.group(1) or host.group(3)) if host else None
    if url_region and common.region and url_region != common.region:
        issues.add(
            path,
            f"queue URL is in region {url_region} but the source's region is {common.region}",
            "put the queue in a source for its own region",
        )
        return False
    if common.account is not None and segments[0] != common.account:
        issues.add(
            path,
            f"queue URL belongs to account {segments[0]} but the source's account is {common.account}",
            "put the queue in a source for its own account, or correct account",
        )
        return False
    return True


def _parse_tags(queues: _Section) -> Labels:
    entries = queues.string_map("tags")
    if entries is None:
        return ()
    if len(entries) > _MAX_TAGS:
        queues.issues.add(queues.at("tags"), f"has {len(entries)} tags", f"match at most {_MAX_TAGS} tags")
    for path, key, value in entries:
        if not 1 <= len(key) <= 128 or len(value) > 256:
            queues.issues.add(
                path,
                "is not a valid SQS tag",
                "use a tag key of 1 to 128 and a value of at most 256 characters",
            )
    return tuple(sorted((key, value) for _, key, value in entries))


def _parse_labels(section: _Section, *, reserved: Sequence[str] = (), reserved_fix: str = "") -> Labels:
    entries = section.string_map("labels")
    if entries is None:
        return ()
    for path, key, value in entries:
        if key in reserved:
            section.issues.add(
                path,
                f"overrides the reserved label {key!r}",
                reserved_fix,
            )
        elif not _LABEL_KEY.fullmatch(key) or len(key) > 317:
            section.issues.add(path, f"{key!r} is not a valid label key", _LABEL_KEY_FIX)
        elif not _LABEL_VALUE.fullmatch(value):
            section.issues.add(path, f"{value!r} is not a valid label value", _LABEL_VALUE_FIX)
    return tuple(sorted((key, value) for _, key, value in entries))


def _parse_cloudwatch(section: _Section, common: _Common) -> CloudWatchSource:
    lookback = section.integer("lookback_seconds", 600, minimum=60, maximum=14 * 86400)
    elements = section.items(
        "queries", required=True, fix="add at least one query (metric stat, expression or preset)"
    )
    queries = tuple(_parse_query(section.issues, path, raw, lookback) for path, raw in elements or [])
    return CloudWatchSource(
        name=common.name,
        region=common.region,
        account=common.account,
        role_arn=common.role_arn,
        lookback_seconds=lookback,
        queries=queries,
    )


def _parse_query(issues: _Issues, path: str, raw: Any, lookback: int) -> CloudWatchQuery:
    section = _as_section(issues, path, raw, _QUERY_KEYS)
    if section is None:
        return CloudWatchQuery(metric="")
    present = [
        (kind, required) for kind, keys, required in _QUERY_KINDS if any(section.has(key) for key in keys)
    ]
    if len(present) != 1:
        kinds = " or ".join(kind for kind, _, _ in _QUERY_KINDS)
        if present:
            problem = "mixes " + " and ".join(kind for kind, _ in present)
            fix = f"keep exactly one of {kinds} per query; split it into separate queries"
        else:
            problem = "says nothing to query"
            fix = f"set {kinds}"
        issues.add(path, problem, fix)
        return CloudWatchQuery(metric="")
    kind, required = present[0]
    for key in required:
        if not section.has(key):
            issues.add(section.at(key), "is required", f"a {kind} query needs {' and '.join(required)}")
    preset = _parse_preset_name(section) if kind == "preset/identifier" else None
    labels = _parse_labels(
        section,
        reserved=(preset.label,) if preset else (),
        reserved_fix=f"rename or remove it: the preset sets {preset.label!r} from identifier"
        if preset
        else "",
    )
    metric = section.string(
        "metric",
        required=kind != "preset/identifier",
        pattern=_METRIC_NAME,
        what="metric name",
        fix=_METRIC_FIX
        if section.has("metric")
        else "name the metric this query serves, e.g. metric: orders",
    )
    period_seconds = _parse_period(
        section, default=preset.period_seconds if preset else 60, lookback=lookback
    )
    max_age_seconds = section.optional_number("max_age_seconds", above=0)
    missing_as_zero = section.boolean("missing_as_zero", preset.missing_as_zero if preset else False)
    scale = _parse_scale(section, default=preset.scale if preset else 1.0)
    query = CloudWatchQuery(
        metric=metric or (preset.metric if preset else ""),
        labels=labels,
        period_seconds=period_seconds,
        max_age_seconds=max_age_seconds,
        missing_as_zero=missing_as_zero,
        scale=scale,
    )
    if kind == "namespace/metric_name/stat":
        spec = _parse_stat_spec(section)
        return dataclasses.replace(
            query,
            namespace=spec.namespace,
            metric_name=spec.metric_name,
            stat=spec.stat,
            dimensions=spec.dimensions,
        )
    if kind == "expression/metrics":
        expression, metrics = _parse_expression(section)
        return dataclasses.replace(query, expression=expression, metrics=metrics)
    identifier = _parse_identifier(section, preset)
    if preset is None:
        return query
    return dataclasses.replace(
        query,
        labels=tuple(sorted((*labels, (preset.label, identifier)))),
        namespace=preset.namespace,
        metric_name=preset.metric_name,
        stat=preset.stat,
        dimensions=((preset.dimension, identifier),),
    )


def _parse_preset_name(section: _Section) -> Preset | None:
    name = section.string("preset")
    if name is None:
        return None
    preset = PRESETS.get(name)
    if preset is None:
        section.issues.add(
            section.at("preset"),
            _unknown("preset", name, PRESETS),
            f"use one of the presets: {', '.join(PRESETS)}",
        )
    return preset


def _parse_identifier(section: _Section, preset: Preset | None) -> str:
    identifier = section.string("identifier", max_length=1024)
    if identifier is None or preset is None:
        return ""
    if not _LABEL_VALUE.fullmatch(identifier):
        section.issues.add(
            section.at("identifier"),
            f"{identifier!r} cannot be the value of label {preset.label!r}",
            f"{_LABEL_VALUE_FIX}; otherwise query namespace/metric_name/stat with labels of your own",
        )
    return identifier


def _parse_period(section: _Section, *, default: int, lookback: int) -> int:
    period = section.integer("period_seconds", default, above=0)
    if period not in _SHORT_PERIODS and period % 60:
        section.issues.add(
            section.at("period_seconds"),
            f"{period} is not a CloudWatch period",
            "use 1, 5, 10, 30 (high-resolution metrics) or a multiple of 60",
        )
    elif period > lookback:
        section.issues.add(
            section.at("period_seconds"),
            f"{period} is longer than the source's lookback_seconds ({lookback}), so no datapoint completes",
            "raise the source's lookback_seconds to at least twice the period, or shorten period_seconds",
        )
    return period


def _parse_scale(section: _Section, *, default: float) -> float:
    scale = section.number("scale", default)
    if scale == 0:
        section.issues.add(
            section.at("scale"), "must not be 0", "remove scale (1.0) or set the factor to apply"
        )
    return scale


def _parse_stat_spec(section: _Section) -> MetricStatSpec:
    namespace = section.string("namespace", max_length=255)
    metric_name = section.string("metric_name", max_length=255)
    stat = section.string("stat")
    if stat is not None and not _is_statistic(stat):
        section.issues.add(section.at("stat"), f"{stat!r} is not a CloudWatch statistic", _STAT_FIX)
    entries = section.string_map("dimensions") or []
    if len(entries) > _MAX_DIMENSIONS:
        section.issues.add(
            section.at("dimensions"),
            f"has {len(entries)} dimensions",
            f"use at most {_MAX_DIMENSIONS} dimensions",
        )
    for path, key, value in entries:
        if not 1 <= len(key) <= 255 or not 1 <= len(value) <= 1024:
            section.issues.add(
                path, "is not a valid dimension", "use a name of 1 to 255 and a value of 1 to 1024 characters"
            )
    return MetricStatSpec(
        namespace=namespace or "",
        metric_name=metric_name or "",
        stat=stat or "",
        dimensions=tuple(sorted((key, value) for _, key, value in entries)),
    )


def _is_statistic(stat: str) -> bool:
    if stat in _STANDARD_STATS or _RANGE_STAT.fullmatch(stat):
        return True
    percentile = _PERCENTILE_STAT.fullmatch(stat)
    return percentile is not None and float(percentile.group(2)) <= 100


def _parse_expression(section: _Section) -> tuple[str | None, tuple[tuple[str, MetricStatSpec], ...]]:
    expression = section.string("expression", max_length=2048)
    raw = section.data.get("metrics")
    specs: list[tuple[str, MetricStatSpec]] = []
    if raw is not None and not isinstance(raw, Mapping):
        section.wrong_type(
            "metrics", raw, "a mapping of ids to metrics", "write metrics as {m1: {namespace: …}, …}"
        )
    elif raw is not None:
        for metric_id, body in raw.items():
            path = f"{section.at('metrics')}.{metric_id}"
            if not isinstance(metric_id, str) or not _EXPRESSION_ID.fullmatch(metric_id):
                section.issues.add(
                    path,
                    f"{metric_id!r} is not a valid metric id",
                    "start the id with a lower-case letter, then letters, digits or '_' (e.g. m1)",
                )
                continue
            spec_section = _as_section(section.issues, path, body, _STAT_KEYS)
            if spec_section is None:
                continue
            for key in ("namespace", "metric_name", "stat"):
                if not spec_section.has(key):
                    section.issues.add(
                        spec_section.at(key),
                        "is required",
                        "give every metric namespace, metric_name and stat",
                    )
            specs.append((metric_id, _parse_stat_spec(spec_section)))
    if expression is not None and isinstance(raw, Mapping):
        defined = {metric_id for metric_id, _ in specs}
        referenced = _EXPRESSION_REFERENCE.findall(_STRING_LITERAL.sub("''", expression))
        for metric_id in dict.fromkeys(referenced):
            if metric_id not in defined and metric_id not in raw:
                section.issues.add(
                    section.at("expression"),
                    f"refers to {metric_id!r}, which is not defined under metrics",
                    f"add {metric_id} under metrics, or correct the expression"
                    + (f" (defined: {', '.join(sorted(defined))})" if defined else ""),
                )
    return expression, tuple(specs)


# --- cross-checks -------------------------------------------------------------------------------------


def _producers(sources: Iterable[Source]) -> list[tuple[str, float | None]]:
    """(metric, configured max age) for every SQS source and CloudWatch query."""
    result: list[tuple[str, float | None]] = []
    for source in sources:
        if isinstance(source, SqsSource):
            result.append((source.metric, source.max_age_seconds))
        else:
            result.extend((query.metric, query.max_age_seconds) for query in source.queries)
    return result


def _producer_max_age(sources: Iterable[Source], defaults: Defaults, metric: str) -> float:
    ages = [
        age if age is not None else defaults.max_age_seconds
        for name, age in _producers(sources)
        if name == metric
    ]
    return max(ages, default=defaults.max_age_seconds)


def _check_metric_collisions(issues: _Issues, placed_sources: Sequence[tuple[int, Source]]) -> None:
    sqs_metrics: dict[str, str] = {}
    for _, source in placed_sources:
        if isinstance(source, SqsSource):
            sqs_metrics.setdefault(source.metric, source.name)
    first_query: dict[tuple[str, Labels], str] = {}
    for index, source in placed_sources:
        if not isinstance(source, CloudWatchSource):
            continue
        for query_index, query in enumerate(source.queries):
            if not query.metric:
                continue
            path = f"sources[{index}].queries[{query_index}]"
            if query.metric in sqs_metrics:
                issues.add(
                    f"{path}.metric",
                    f"metric {query.metric!r} is also produced by SQS source {sqs_metrics[query.metric]!r}",
                    "give this query a metric name of its own",
                )
                continue
            identity = (query.metric, query.labels)
            if identity in first_query:
                labels = ", ".join(f"{key}={value}" for key, value in query.labels) or "no labels"
                issues.add(
                    path,
                    f"produces metric {query.metric!r} with {labels}, exactly like {first_query[identity]}",
                    "give one of the two queries a different metric name or a distinguishing label",
                )
            else:
                first_query[identity] = f"{path} (source {source.name!r})"


def _check_query_ages(
    issues: _Issues,
    placed_sources: Sequence[tuple[int, Source]],
    entries: Mapping[str, tuple[str, _MetricEntry]],
    defaults: Defaults,
) -> None:
    """A CloudWatch datapoint is at least one period old when complete, so a shorter max age never serves."""
    for index, source in placed_sources:
        if not isinstance(source, CloudWatchSource):
            continue
        for query_index, query in enumerate(source.queries):
            path = f"sources[{index}].queries[{query_index}]"
            entry = entries.get(query.metric)
            if entry is not None and entry[1].max_age_seconds is not None:
                max_age, where = entry[1].max_age_seconds, f"{entry[0]}.max_age_seconds"
            elif query.max_age_seconds is not None:
                max_age, where = query.max_age_seconds, f"{path}.max_age_seconds"
            else:
                max_age, where = defaults.max_age_seconds, "defaults.max_age_seconds"
            if query.metric and max_age <= query.period_seconds:
                issues.add(
                    path,
                    f"is served only while younger than {_format_number(max_age)} s ({where}), but a complete"
                    " "
                    f"datapoint of period_seconds={query.period_seconds} is already at least that old",
                    "set max_age_seconds above the period plus CloudWatch's publishing delay "
                    f"(e.g. {2 * query.period_seconds + 120}), or shorten period_seconds",
                )


class _MetricEntry(NamedTuple):
    max_age_seconds: float | None
    fallback: Fallback | None
    unit: str | None
    description: str | None


def _parse_metric_entries(root: _Section, produced: set[str]) -> dict[str, tuple[str, _MetricEntry]]:
    """The ``metrics:`` section: metric -> (field path, entry)."""
    raw = root.data.get("metrics")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        root.wrong_type(
            "metrics", raw, "a mapping of metric names to policies", "write metrics as {sqs_messages: {…}}"
        )
        return {}
    result: dict[str, tuple[str, _MetricEntry]] = {}
    for metric, body in raw.items():
        path = f"metrics.{metric}"
        if not isinstance(metric, str) or not _METRIC_NAME.fullmatch(metric):
            root.issues.add(path, f"{metric!r} is not a valid metric name", _METRIC_FIX)
            continue
        if metric not in produced:
            root.issues.add(
                path,
                f"no source produces metric {metric!r}{_did_you_mean(metric, produced)}",
                f"use a metric a source produces: {', '.join(sorted(produced)) or 'none yet'}",
            )
        section = _as_section(root.issues, path, body if body is not None else {}, _METRIC_POLICY_KEYS)
        if section is None:
            continue
        result[metric] = (
            path,
            _MetricEntry(
                max_age_seconds=section.optional_number("max_age_seconds", above=0),
                fallback=_parse_fallback(section),
                unit=section.string("unit", max_length=64),
                description=section.string("description", max_length=1024),
            ),
        )
    return result


def _parse_fallback(section: _Section) -> Fallback | None:
    fallback = section.section("fallback", _FALLBACK_KEYS)
    if fallback is None:
        return None
    value = fallback.optional_number("value", required=True, minimum=-9.2e15, maximum=9.2e15)
    after = fallback.optional_number("after_seconds", required=True, minimum=0)
    if value is None or after is None:
        return None
    return Fallback(value=value, after_seconds=after)


def _parse_exposure(root: _Section, produced: set[str]) -> tuple[ExposureRule, ...] | None:
    elements = root.items("exposure")
    if elements is None:
        return None
    if not elements:
        root.issues.add(
            "exposure",
            "is an empty list, which would deny every namespace every metric",
            "remove exposure to let every namespace read every metric, or add rules",
        )
    rules: list[ExposureRule] = []
    for path, raw in elements:
        section = _as_section(root.issues, path, raw, _EXPOSURE_KEYS)
        if section is None:
            continue
        namespaces = section.strings(
            "namespaces", required=True, fix="list namespaces (globs allowed, e.g. team-*)"
        )
        for item_path, pattern in namespaces or []:
            if not _GLOB_CHARACTERS & set(pattern) and not _NAMESPACE_NAME.fullmatch(pattern):
                root.issues.add(
                    item_path,
                    f"{pattern!r} is not a Kubernetes namespace name",
                    "use lower-case letters, digits and '-' (at most 63), or a glob such as team-*",
                )
        metrics = section.strings(
            "metrics", required=True, fix="list metric names (globs allowed, e.g. aurora_*)"
        )
        for item_path, pattern in metrics or []:
            if not _GLOB_CHARACTERS & set(pattern) and pattern not in produced:
                root.issues.add(
                    item_path,
                    f"no source produces metric {pattern!r}{_did_you_mean(pattern, produced)}",
                    f"use a metric a source produces ({', '.join(sorted(produced)) or 'none yet'}) or a glob",
                )
        selector = section.string("selector", fix="remove selector to expose every series")
        if selector is not None:
            try:
                parse_selector(selector)
            except SelectorError as error:
                root.issues.add(
                    section.at("selector"),
                    f"selector {selector!r}: {error}",
                    "use Kubernetes label-selector syntax, e.g. team=shop,env in (prod,stage)",
                )
        rules.append(
            ExposureRule(
                namespaces=tuple(pattern for _, pattern in namespaces or []),
                metrics=tuple(pattern for _, pattern in metrics or []),
                selector=selector,
            )
        )
    return tuple(rules)
