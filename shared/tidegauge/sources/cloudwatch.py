"""CloudWatch metrics: batched GetMetricData requests and the newest complete datapoint of each query.

All queries of an invocation that share a region and credentials go into calls of at most
:data:`MAX_QUERIES_PER_CALL` entries (a metric-math expression brings its member metrics along, with
``ReturnData`` false). The window ends at the start of the still-filling period, so every datapoint
returned is complete; each query takes its newest one, with its own timestamp.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tidegauge.config import CloudWatchQuery, CloudWatchSource, MetricStatSpec
from tidegauge.model import Sample

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import (
        GetMetricDataOutputTypeDef,
        MetricDataQueryTypeDef,
        MetricStatTypeDef,
    )

MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
MAX_SHARED_ALIGNMENT_SECONDS = 86_400
"""Queries whose periods have a larger least common multiple get windows of their own."""
FAILED_STATUS_CODES = frozenset({"Forbidden", "InternalError"})

_REFERENCE = re.compile(r"(?<![\w.])([a-z][A-Za-z0-9_]*)(?![\w(])")
_METRICS_FUNCTION = re.compile(r"METRICS\(\s*(?:(['\"])(.*?)\1)?\s*\)")
_STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


class CloudWatchClient(Protocol):
    """The part of boto3's CloudWatch client the collector uses."""

    def get_metric_data(self, **kwargs: Any) -> GetMetricDataOutputTypeDef: ...


def align_down(timestamp: float, period: int) -> float:
    """The start of the period (aligned to the epoch) that contains ``timestamp``."""
    return float(math.floor(timestamp / period) * period)


def newest_complete_start(now: float, period: int) -> float:
    """Start of the newest period that has ended at ``now`` (the one before the still-filling one)."""
    return align_down(now, period) - period


def rewrite_expression(expression: str, prefix: str, member_ids: Iterable[str]) -> str:
    """Rename a query's member ids (``m1`` -> ``q3_m1``) so expressions can share one request.

    ``METRICS()`` and ``METRICS('m')`` are narrowed to the query's own members; string literals (e.g. a
    SEARCH) are left alone.
    """
    members = set(member_ids)

    def metrics_function(match: re.Match[str]) -> str:
        return f"METRICS('{prefix}{match.group(2) or ''}')"

    def reference(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{prefix}{name}" if name in members else name

    parts: list[str] = []
    position = 0
    text = _METRICS_FUNCTION.sub(metrics_function, expression)
    for literal in _STRING_LITERAL.finditer(text):
        parts.append(_REFERENCE.sub(reference, text[position : literal.start()]))
        parts.append(literal.group(0))
        position = literal.end()
    parts.append(_REFERENCE.sub(reference, text[position:]))
    return "".join(parts)


def _metric_stat(spec: MetricStatSpec, period: int) -> MetricStatTypeDef:
    return {
        "Metric": {
            "Namespace": spec.namespace,
            "MetricName": spec.metric_name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in spec.dimensions],
        },
        "Period": period,
        "Stat": spec.stat,
    }


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """One configured query with its request id (``q<n>``; members become ``q<n>_<member id>``)."""

    source: CloudWatchSource
    query: CloudWatchQuery
    query_id: str

    @property
    def weight(self) -> int:
        """MetricDataQueries entries this query takes in a request."""
        return 1 + len(self.query.metrics) if self.query.is_expression else 1

    @property
    def metrics_requested(self) -> int:
        """Metrics CloudWatch bills for this query in one request."""
        return len(self.query.metrics) if self.query.is_expression else 1

    def entries(self) -> list[MetricDataQueryTypeDef]:
        query = self.query
        if query.metric_stat is not None:
            stat = _metric_stat(query.metric_stat, query.period_seconds)
            return [{"Id": self.query_id, "MetricStat": stat, "ReturnData": True}]
        prefix = f"{self.query_id}_"
        members: list[MetricDataQueryTypeDef] = [
            {
                "Id": prefix + member_id,
                "MetricStat": _metric_stat(spec, query.period_seconds),
                "ReturnData": False,
            }
            for member_id, spec in query.metrics
        ]
        expression = rewrite_expression(
            query.expression or "", prefix, (member_id for member_id, _ in query.metrics)
        )
        return [
            *members,
            {
                "Id": self.query_id,
                "Expression": expression,
                "Period": query.period_seconds,
                "ReturnData": True,
            },
        ]


@dataclass(frozen=True, slots=True)
class MetricDataCall:
    """One GetMetricData request (before pagination): queries sharing a time window."""

    queries: tuple[PlannedQuery, ...]
    start: float
    end: float

    @property
    def metrics_requested(self) -> int:
        return sum(planned.metrics_requested for planned in self.queries)

    @property
    def max_datapoints(self) -> int:
        points = sum(math.ceil((self.end - self.start) / p.query.period_seconds) for p in self.queries)
        return max(1, min(MAX_DATAPOINTS_PER_CALL, points))

    def request(self) -> dict[str, Any]:
        """Keyword arguments of ``get_metric_data`` (add ``NextToken`` for further pages)."""
        return {
            "MetricDataQueries": [entry for planned in self.queries for entry in planned.entries()],
            "StartTime": datetime.datetime.fromtimestamp(self.start, tz=datetime.UTC),
            "EndTime": datetime.datetime.fromtimestamp(self.end, tz=datetime.UTC),
            "ScanBy": "TimestampDescending",
            "MaxDatapoints": self.max_datapoints,
        }


def plan_queries(queries: Iterable[tuple[CloudWatchSource, CloudWatchQuery]]) -> list[PlannedQuery]:
    return [PlannedQuery(source, query, f"q{index}") for index, (source, query) in enumerate(queries)]


def _window(queries: Sequence[PlannedQuery], now: float) -> tuple[float, float]:
    periods = {p.query.period_seconds for p in queries}
    alignment = math.lcm(*periods)
    lookback = max(p.source.lookback_seconds for p in queries)
    return align_down(now - lookback, alignment), align_down(now, min(periods))


def plan_calls(queries: Sequence[PlannedQuery], now: float) -> list[MetricDataCall]:
    """Pack queries (of one region and credentials) into as few requests as the 500-entry limit allows.

    All queries share one window whose start is aligned to every period (so CloudWatch's buckets are
    epoch-aligned) and whose end is the start of the finest still-filling period; when the periods'
    common multiple is too large, each period gets its own window.
    """
    if not queries:
        return []
    periods = {p.query.period_seconds for p in queries}
    if math.lcm(*periods) <= MAX_SHARED_ALIGNMENT_SECONDS:
        groups: list[Sequence[PlannedQuery]] = [queries]
    else:
        groups = [[p for p in queries if p.query.period_seconds == period] for period in sorted(periods)]
    calls: list[MetricDataCall] = []
    for group in groups:
        start, end = _window(group, now)
        chunk: list[PlannedQuery] = []
        weight = 0
        for planned in group:
            if chunk and weight + planned.weight > MAX_QUERIES_PER_CALL:
                calls.append(MetricDataCall(tuple(chunk), start, end))
                chunk, weight = [], 0
            chunk.append(planned)
            weight += planned.weight
        if chunk:
            calls.append(MetricDataCall(tuple(chunk), start, end))
    return calls


@dataclass
class SeriesResult:
    """The datapoints CloudWatch returned for one id, merged over pages (newest first after :meth:`sort`)."""

    points: list[tuple[float, float]] = field(default_factory=list)
    status: str = "Complete"
    labels: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)


def fetch(client: CloudWatchClient, call: MetricDataCall) -> tuple[dict[str, SeriesResult], int]:
    """Run one request, following NextToken; returns the results by id and the number of calls made.

    Pagination stops early once every query has a datapoint that is complete, since only the newest one
    is used.
    """
    request = call.request()
    results: dict[str, SeriesResult] = {}
    calls = 0
    token: str | None = None
    while True:
        response = client.get_metric_data(**request, **({"NextToken": token} if token else {}))
        calls += 1
        for item in response.get("MetricDataResults", []):
            result = results.setdefault(item.get("Id", ""), SeriesResult())
            result.labels.add(item.get("Label", ""))
            status = item.get("StatusCode", "Complete")
            if status in FAILED_STATUS_CODES or result.status not in FAILED_STATUS_CODES:
                result.status = status
            result.messages.extend(str(m.get("Value", "")) for m in item.get("Messages", []))
            result.points.extend(
                (_epoch(timestamp), float(value))
                for timestamp, value in zip(item.get("Timestamps", []), item.get("Values", []), strict=False)
            )
        token = response.get("NextToken")
        if not token or _all_answered(call, results):
            break
    for result in results.values():
        result.points.sort(reverse=True)
    return results, calls


def _all_answered(call: MetricDataCall, results: Mapping[str, SeriesResult]) -> bool:
    for planned in call.queries:
        result = results.get(planned.query_id)
        period = planned.query.period_seconds
        if result is None or not any(ts + period <= call.end for ts, _ in result.points):
            return False
    return True


def _epoch(value: datetime.datetime | float) -> float:
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    return float(value)


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """What one query yielded: a sample, an error, or neither (no data, which is not an error)."""

    planned: PlannedQuery
    sample: Sample | None = None
    error: str | None = None
    newest_period: float = 0.0


def query_labels(source: CloudWatchSource, query: CloudWatchQuery, account: str) -> dict[str, str]:
    """The query's labels plus ``region`` and ``account`` (a label the query sets itself wins)."""
    labels = {"region": source.region, "account": account}
    labels.update(query.labels)
    return labels


def evaluate(
    planned: PlannedQuery, result: SeriesResult | None, *, now: float, account: str, collected_at: float
) -> QueryOutcome:
    """The newest complete datapoint of one query, scaled; zero when ``missing_as_zero`` and no data."""
    query = planned.query
    newest = newest_complete_start(now, query.period_seconds)
    if result is not None and result.status in FAILED_STATUS_CODES:
        detail = "; ".join(result.messages) or "no detail"
        return QueryOutcome(
            planned, error=f"query {query.metric}: {result.status}: {detail}", newest_period=newest
        )
    if result is not None and len(result.labels) > 1:
        return QueryOutcome(
            planned,
            error=f"query {query.metric}: the expression returned {len(result.labels)} time series; "
            "tidegauge serves one series per query",
            newest_period=newest,
        )
    oldest = now - planned.source.lookback_seconds
    points = [(ts, value) for ts, value in (result.points if result else []) if oldest <= ts <= newest]
    labels = query_labels(planned.source, query, account)
    if points:
        timestamp, value = points[0]
    elif query.missing_as_zero and not (result and result.points):
        timestamp, value = newest, 0.0
    else:
        return QueryOutcome(planned, newest_period=newest)
    sample = Sample.of(
        query.metric,
        labels,
        value * query.scale,
        timestamp,
        collected_at=collected_at,
        source=planned.source.name,
    )
    return QueryOutcome(planned, sample=sample, newest_period=newest)
