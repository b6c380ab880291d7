"""Rules across the document: one producer per series, and max ages a CloudWatch period can meet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tidegauge.config.errors import Issues
from tidegauge.config.messages import format_number
from tidegauge.config.model import CloudWatchSource, Defaults, Labels, Source, SqsSource
from tidegauge.config.policies import MetricEntry


def check_metric_collisions(issues: Issues, placed_sources: Sequence[tuple[int, Source]]) -> None:
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


def check_query_ages(
    issues: Issues,
    placed_sources: Sequence[tuple[int, Source]],
    entries: Mapping[str, tuple[str, MetricEntry]],
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
                    f"is served only while younger than {format_number(max_age)} s ({where}), but a complete"
                    " "
                    f"datapoint of period_seconds={query.period_seconds} is already at least that old",
                    "set max_age_seconds above the period plus CloudWatch's publishing delay "
                    f"(e.g. {2 * query.period_seconds + 120}), or shorten period_seconds",
                )
