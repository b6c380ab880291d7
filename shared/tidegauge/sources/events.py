"""What an EventBridge event asks a collector to do.

- ``Scheduled Event`` (the every-minute rule): every source of the function, sampled in rounds.
- ``CloudWatch Alarm State Change``: the sources whose queues or queries the alarm's metrics belong to
  (a composite alarm, which names no metric: every source), one round now.
- ``tidegauge.collect`` (a custom event, ``detail-type: tidegauge.collect``, recommended
  ``source: tidegauge``) with ``detail: {"sources": ["name", ...]}``: those sources, one round now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tidegauge.config import CloudWatchSource, Source, SqsSource
from tidegauge.names import queue_name
from tidegauge.sources.exceptions import UnrecognisedEventError

SCHEDULED_DETAIL_TYPE = "Scheduled Event"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
COLLECT_DETAIL_TYPE = "tidegauge.collect"
SQS_NAMESPACE = "AWS/SQS"
SQS_QUEUE_DIMENSION = "QueueName"

_ACCEPTED = (
    f"expected an EventBridge event with detail-type {SCHEDULED_DETAIL_TYPE!r}, {ALARM_DETAIL_TYPE!r} or "
    f'{COLLECT_DETAIL_TYPE!r} (detail: {{"sources": ["name", ...]}}); see tests/events/*.json'
)


@dataclass(frozen=True, slots=True)
class AlarmMetric:
    """A metric an alarm watches."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why the collector runs: ``schedule``, ``alarm`` or ``collect``."""

    kind: Literal["schedule", "alarm", "collect"]
    source_names: tuple[str, ...] = ()
    alarm_name: str = ""
    alarm_state: str = ""
    alarm_metrics: tuple[AlarmMetric, ...] = ()

    @property
    def single_round(self) -> bool:
        """Event-driven collections take one round at once; only the schedule samples in rounds."""
        return self.kind != "schedule"

    @property
    def description(self) -> str:
        if self.kind == "alarm":
            return f"alarm {self.alarm_name} -> {self.alarm_state}"
        if self.kind == "collect":
            return f"collect {', '.join(self.source_names)}"
        return "schedule"


def parse_event(event: Any) -> Trigger:
    """Recognise an EventBridge event; raises :class:`UnrecognisedEventError` naming what was expected."""
    if not isinstance(event, Mapping):
        raise UnrecognisedEventError(f"event is {type(event).__name__}, not a JSON object; {_ACCEPTED}")
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if detail_type == SCHEDULED_DETAIL_TYPE:
        return Trigger(kind="schedule")
    if detail_type == ALARM_DETAIL_TYPE and isinstance(detail, Mapping):
        state = detail.get("state")
        return Trigger(
            kind="alarm",
            alarm_name=str(detail.get("alarmName", "")),
            alarm_state=str(state.get("value", "")) if isinstance(state, Mapping) else "",
            alarm_metrics=tuple(_alarm_metrics(detail.get("configuration"))),
        )
    if detail_type == COLLECT_DETAIL_TYPE:
        names = detail.get("sources") if isinstance(detail, Mapping) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise UnrecognisedEventError(
                f"a {COLLECT_DETAIL_TYPE} event needs detail.sources, a non-empty list of source names; "
                f"got {names!r}"
            )
        return Trigger(kind="collect", source_names=tuple(dict.fromkeys(names)))
    raise UnrecognisedEventError(f"unrecognised event (detail-type {detail_type!r}); {_ACCEPTED}")


def _alarm_metrics(configuration: Any) -> Iterable[AlarmMetric]:
    if not isinstance(configuration, Mapping):
        return
    for entry in configuration.get("metrics") or ():
        stat = entry.get("metricStat") if isinstance(entry, Mapping) else None
        metric = stat.get("metric") if isinstance(stat, Mapping) else None
        if not isinstance(metric, Mapping):
            continue  # an expression of a metric-math alarm; its metrics are listed as entries too
        dimensions = metric.get("dimensions") or {}
        yield AlarmMetric(
            namespace=str(metric.get("namespace", "")),
            metric_name=str(metric.get("name", "")),
            dimensions=tuple(sorted((str(k), str(v)) for k, v in dimensions.items())),
        )


@dataclass(frozen=True, slots=True)
class Selection:
    """The sources to collect now, and names an event gave that no source of the config has."""

    sources: tuple[Source, ...]
    unknown_names: tuple[str, ...] = ()


def select_sources(
    trigger: Trigger,
    sources: Sequence[Source],
    *,
    configured_names: Iterable[str],
    known_queues: Callable[[str], set[str]] = lambda _source: set(),
) -> Selection:
    """The subset of ``sources`` (this function's) that ``trigger`` asks for.

    A ``collect`` event may name sources of the other function: they are not unknown, just not ours.
    """
    if trigger.kind == "schedule":
        return Selection(tuple(sources))
    if trigger.kind == "collect":
        configured = set(configured_names)
        wanted = set(trigger.source_names)
        return Selection(
            sources=tuple(source for source in sources if source.name in wanted),
            unknown_names=tuple(name for name in trigger.source_names if name not in configured),
        )
    if not trigger.alarm_metrics:
        return Selection(tuple(sources))
    return Selection(
        tuple(
            source
            for source in sources
            if any(_watches(source, metric, known_queues) for metric in trigger.alarm_metrics)
        )
    )


def _watches(source: Source, metric: AlarmMetric, known_queues: Callable[[str], set[str]]) -> bool:
    if isinstance(source, SqsSource):
        queue = dict(metric.dimensions).get(SQS_QUEUE_DIMENSION)
        if metric.namespace != SQS_NAMESPACE or queue is None:
            return False
        named = {queue_name(name) for name in source.queue_names}
        if queue in named or queue in known_queues(source.name):
            return True
        return any(queue.startswith(prefix) for prefix in source.queue_prefixes)
    return _cloudwatch_watches(source, metric)


def _cloudwatch_watches(source: CloudWatchSource, metric: AlarmMetric) -> bool:
    wanted = (metric.namespace, metric.metric_name, metric.dimensions)
    return any(
        (spec.namespace, spec.metric_name, tuple(sorted(spec.dimensions))) == wanted
        for query in source.queries
        for spec in query.metric_stats
    )
