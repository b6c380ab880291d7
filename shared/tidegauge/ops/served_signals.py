"""Raw vs served values for ``tidegauge explain hpa --redis-url/--config``: what Redis holds for each
metric the HPA reads, and what the server makes of it (window, keep-alive, last known good, derived).

Read-only. Windows and keep-alive are computed with the server's own functions
(:func:`tidegauge.server.windows.smoothed` over :func:`tidegauge.server.histories.ending_with`), over the
same number of history points the server reads, at the explain's ``now``; a derived metric shows its
expression and each input's raw value, age and staleness (the server's rule: any input with no series
younger than its max age makes the derived metric stale). Exposure rules are not re-evaluated here:
the HPA's own fetch, shown beside, says what the namespace may read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tidegauge.config.model import MetricPolicy
from tidegauge.errors import UsageError
from tidegauge.expressions import Call, Duration, SeriesSelector, parse_expression, selector_uses
from tidegauge.model import Sample
from tidegauge.ops.cluster import JsonObject
from tidegauge.ops.common import Target, plain_number
from tidegauge.ops.hpa_reading import MetricReading
from tidegauge.selectors import Selector, SelectorError, parse_selector
from tidegauge.server.derived import describe_selector, series_selector
from tidegauge.server.histories import ending_with, history_points
from tidegauge.server.windows import Point, in_window, project, rate, smoothed

_DEFAULT_INTERVAL_SECONDS = 15.0
"""The config's ``sampling.interval_seconds`` default, for ``--redis-url`` without ``--config``."""


@dataclass(frozen=True)
class SeriesReading:
    """One series in Redis: its newest raw value, its age, and what the server serves from it."""

    labels: str
    raw: float
    age_seconds: float
    stale: bool
    """Older than the metric's max age."""
    served: float | None
    """The window / keep-alive value (None: the metric has neither, the raw value is served)."""
    points: int
    """History points the window read (the newest value included)."""


@dataclass(frozen=True)
class InputReading:
    """One selector of a derived metric's expression, as Redis holds it now."""

    selector: str
    metric: str
    series: tuple[SeriesReading, ...]
    max_age_seconds: float
    range_seconds: float | None
    function: str = ""
    """``rate over 60 s`` / ``project 60 s ahead over 60 s``: each series' ``served`` is that function
    of its raw history (None: under two points in the window, which makes the input stale)."""

    @property
    def value(self) -> float | None:
        """The sum of the fresh series (how a selector reads as an operand), None with none fresh."""
        fresh = [s.served if s.served is not None else s.raw for s in self.series if not s.stale]
        return sum(fresh) if fresh and not self.too_few_points else None

    @property
    def too_few_points(self) -> bool:
        return bool(self.function) and any(s.served is None for s in self.series if not s.stale)

    @property
    def age_seconds(self) -> float | None:
        """The oldest fresh series' age (the derived value's timestamp is its oldest input's), else the
        newest stale one's."""
        fresh = [s.age_seconds for s in self.series if not s.stale]
        if fresh:
            return max(fresh)
        return min((s.age_seconds for s in self.series), default=None)

    @property
    def stale(self) -> bool:
        """No fresh series: the provider serves none (or only last-known-good ones, which the derived
        metric refuses), so the derived metric is stale."""
        return all(s.stale for s in self.series) or self.too_few_points


@dataclass(frozen=True)
class ServedSignal:
    """One metric of the HPA: its serving options and the raw series (or derived inputs) behind it."""

    key: str
    metric: str
    options: tuple[str, ...]
    """The serving options in force, in words (``window avg over 60 s``, ``keep-alive 120 s``...)."""
    series: tuple[SeriesReading, ...] = ()
    expression: str = ""
    inputs: tuple[InputReading, ...] = ()
    max_age_seconds: float = 0.0
    last_known_good_seconds: float | None = None

    def serves(self, series: SeriesReading) -> bool:
        """The provider's rule: the fresh series; with none fresh, the last known good ones within
        ``max_age + last_known_good`` seconds."""
        if not series.stale:
            return True
        if self.last_known_good_seconds is None or any(not s.stale for s in self.series):
            return False
        return series.age_seconds <= self.max_age_seconds + self.last_known_good_seconds

    @property
    def derived(self) -> bool:
        return bool(self.expression)

    @property
    def stale_inputs(self) -> tuple[str, ...]:
        return tuple(i.selector for i in self.inputs if i.stale)

    def as_json(self) -> JsonObject:
        answer: JsonObject = {"key": self.key, "metric": self.metric, "options": list(self.options)}
        if self.derived:
            answer["expression"] = self.expression
            answer["inputs"] = [
                {
                    "selector": i.selector,
                    "metric": i.metric,
                    "value": i.value,
                    "ageSeconds": i.age_seconds,
                    "maxAgeSeconds": i.max_age_seconds,
                    "rangeSeconds": i.range_seconds,
                    "function": i.function or None,
                    "stale": i.stale,
                    "series": [_series_json(s) for s in i.series],
                }
                for i in self.inputs
            ]
            answer["stale"] = bool(self.stale_inputs)
        else:
            answer["series"] = [_series_json(s) | {"servedByServer": self.serves(s)} for s in self.series]
        return answer

    def render(self) -> list[str]:
        options = "; ".join(self.options) or "served as collected"
        if self.derived:
            lines = [f"{self.key}: derived = {self.expression}"]
            for i in self.inputs:
                value = "-" if i.value is None else plain_number(i.value)
                age = "-" if i.age_seconds is None else f"{i.age_seconds:.0f}s"
                flag = f" STALE (max age {i.max_age_seconds:g} s)" if i.stale else ""
                if i.too_few_points:
                    flag = " STALE (a series has under two points in its window)"
                of = f" ({i.function})" if i.function else ""
                lines.append(f"  input {i.selector}{of}: {value}, age {age}{flag}")
            if self.stale_inputs:
                verb = "is" if len(self.stale_inputs) == 1 else "are"
                lines.append(
                    f"  stale: the server answers 404 while {', '.join(self.stale_inputs)} {verb} stale"
                )
            return lines
        lines = [f"{self.key}: {options}"]
        if not self.series:
            lines.append("  no series in Redis match the selector")
        for s in self.series:
            served = "" if s.served is None else f" -> served {plain_number(s.served)} ({s.points} points)"
            flag = ""
            if s.stale:
                flag = " STALE, last known good" if self.serves(s) else " STALE, left out by the server"
            lines.append(
                f"  {s.labels or '{}'}: raw {plain_number(s.raw)}, age {s.age_seconds:.0f}s{flag}{served}"
            )
        return lines


def _series_json(series: SeriesReading) -> JsonObject:
    return {
        "labels": series.labels,
        "raw": series.raw,
        "ageSeconds": series.age_seconds,
        "stale": series.stale,
        "served": series.served,
        "points": series.points,
    }


def served_signals(target: Target, readings: Sequence[MetricReading], now: float) -> tuple[ServedSignal, ...]:
    """Each External (or derived) metric of the HPA, read from the store at ``now``."""
    interval = target.config.sampling.interval_seconds if target.config else _DEFAULT_INTERVAL_SECONDS
    derived = target.config.derived if target.config is not None else {}
    signals: list[ServedSignal] = []
    for reading in readings:
        definition = derived.get(reading.name)
        if definition is not None:
            inputs = tuple(
                _input(target, node, call, interval, now)
                for node, call in selector_uses(parse_expression(definition.expression))
            )
            signals.append(
                ServedSignal(reading.key, reading.name, (), expression=definition.expression, inputs=inputs)
            )
        elif reading.source == "External":
            selector = _selector(reading)
            policy = _policy(target, reading.name)
            series = _series(target, reading.name, selector, policy, interval, now)
            good = policy.last_known_good
            signals.append(
                ServedSignal(
                    reading.key,
                    reading.name,
                    _options(policy),
                    series=series,
                    max_age_seconds=policy.max_age_seconds,
                    last_known_good_seconds=None if good is None else good.max_age_seconds,
                )
            )
    return tuple(signals)


def _selector(reading: MetricReading) -> Selector:
    try:
        return parse_selector(reading.selector)
    except SelectorError as error:
        raise UsageError(f"the HPA's selector for {reading.name!r} does not parse: {error}") from error


def _policy(target: Target, metric: str) -> MetricPolicy:
    if target.config is None:
        return MetricPolicy(max_age_seconds=target.max_age_seconds(metric))
    return target.config.metric_policy(metric)


def _options(policy: MetricPolicy) -> tuple[str, ...]:
    options = [f"max age {policy.max_age_seconds:g} s"]
    if policy.window is not None:
        options.append(f"window {policy.window.function} over {policy.window.seconds:g} s")
    if policy.keep_alive_seconds is not None:
        options.append(f"keep-alive {policy.keep_alive_seconds:g} s")
    if policy.last_known_good is not None:
        options.append(f"last known good up to {policy.last_known_good.max_age_seconds:g} s past max age")
    if policy.fallback is not None:
        options.append(
            f"fallback {plain_number(policy.fallback.value)} after {policy.fallback.after_seconds:g} s"
        )
    return tuple(options)


def _series(
    target: Target, metric: str, selector: Selector, policy: MetricPolicy, interval: float, now: float
) -> tuple[SeriesReading, ...]:
    """The selected series' raw newest values, and the window / keep-alive value the server computes."""
    return tuple(
        _one(target, sample, policy, interval, now) for sample in target.store.read_latest(metric, selector)
    )


def _one(target: Target, sample: Sample, policy: MetricPolicy, interval: float, now: float) -> SeriesReading:
    window, keep_alive = policy.window, policy.keep_alive_seconds
    served: float | None = None
    points = 0
    if window is not None or keep_alive is not None:
        span = max(window.seconds if window is not None else 0.0, keep_alive or 0.0)
        history = _history(target, sample, history_points(span, interval))
        served = smoothed(sample.value, history, now, window, keep_alive)
        points = len(history)
    age = max(0.0, now - sample.timestamp)
    return SeriesReading(
        sample.key.label_string, sample.value, age, age > policy.max_age_seconds, served, points
    )


def _input(
    target: Target, node: SeriesSelector, call: Call | None, interval: float, now: float
) -> InputReading:
    policy = _policy(target, node.metric)
    selector = series_selector(node)
    if call is None:
        series = _series(target, node.metric, selector, policy, interval, now)
        return InputReading(
            describe_selector(node), node.metric, series, policy.max_age_seconds, node.range_seconds
        )
    # As the server's derived evaluator: the raw history of the last W s of each series.
    horizon = call.arguments[1] if len(call.arguments) > 1 else None
    if call.function == "project" and isinstance(horizon, Duration):
        ahead = horizon.seconds
        seconds = node.range_seconds if node.range_seconds is not None else ahead
        words = f"project {ahead:g} s ahead over {seconds:g} s"

        def function(points: list[Point]) -> float | None:
            return project(points, ahead)
    else:
        seconds = node.range_seconds or 0.0
        words, function = f"rate over {seconds:g} s", rate
    count = history_points(seconds, interval)
    series = tuple(
        _over_history(target, sample, policy, count, seconds, function, now)
        for sample in target.store.read_latest(node.metric, selector)
    )
    return InputReading(describe_selector(node), node.metric, series, policy.max_age_seconds, seconds, words)


def _over_history(
    target: Target,
    sample: Sample,
    policy: MetricPolicy,
    count: int,
    seconds: float,
    function: Callable[[list[Point]], float | None],
    now: float,
) -> SeriesReading:
    window = in_window(_history(target, sample, count), now, seconds)
    age = max(0.0, now - sample.timestamp)
    return SeriesReading(
        sample.key.label_string,
        sample.value,
        age,
        age > policy.max_age_seconds,
        function(window),
        len(window),
    )


def _history(target: Target, sample: Sample, count: int) -> tuple[Point, ...]:
    """The series' history as the server's windows read it (``count`` newest points, then the latest)."""
    stream = [(p.timestamp, p.value) for p in target.store.read_history(sample.key, count=count)]
    return ending_with(stream, sample.timestamp, sample.value)
