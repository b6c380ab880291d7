"""Evaluate a derived metric's expression at serve time, from fresh inputs only (docs/signals.md).

Rules, for one request in a namespace:

- Each selector is read as the HPA would read that metric from that namespace (exposure, freshness,
  windows and keep-alive of the input apply); no fresh series, or a series older than the input's
  max age (a last-known-good answer), makes the derived metric stale: 404 naming the input.
- A selector inside ``max``/``min``/``sum`` as its only argument is reduced over its series; anywhere
  else (an operand of + - * /, or one of several arguments) it reads as the SUM of its series, as the
  HPA sums an External metric's items. So every operand is one number: no label matching is needed.
- ``rate(m[W])`` and ``project(m[W], H)`` are computed per series from its raw history (points of the
  last W s; W defaults to H for project) and then summed (or reduced by an enclosing aggregation); a
  series with fewer than two points in its window makes the value stale.
- The value is served with no labels and the oldest input timestamp; a division by zero, or a result
  with no quantity form, is a 404 saying so.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tidegauge.config import Labels, MetricPolicy
from tidegauge.expressions import (
    Binary,
    Call,
    Duration,
    Negate,
    Node,
    Number,
    SeriesSelector,
    parse_expression,
)
from tidegauge.quantity import QuantityError
from tidegauge.selectors import Operator, Requirement, Selector
from tidegauge.server.histories import HISTORY_CACHE_SERIES, SeriesHistories, history_points
from tidegauge.server.provider import MetricNotFound
from tidegauge.server.types import ExternalMetricValue
from tidegauge.server.windows import Point, expiry, in_window, project, rate

Read = Callable[[str, Selector, str], Awaitable[list[ExternalMetricValue]]]
"""``(namespace, selector, metric)`` -> fresh values, as ``get_external_metric``."""

_REDUCE: Mapping[str, Callable[[list[float]], float]] = {"max": max, "min": min, "sum": math.fsum}


class InputPolicies(Protocol):
    def metric_policy(self, metric: str) -> MetricPolicy: ...


class DerivedStale(MetricNotFound):
    """An input of a derived metric has no fresh value (or its window too few points)."""


@dataclass(frozen=True, slots=True)
class _Item:
    value: float
    timestamp: float


@functools.lru_cache(maxsize=256)
def parsed(expression: str) -> Node:
    """The syntax tree of a derived metric's expression (validated when the config was loaded)."""
    return parse_expression(expression)


def series_selector(node: SeriesSelector) -> Selector:
    """The label selector of ``metric{label="value", ...}`` (shared with ``tidegauge explain``)."""
    return Selector(
        tuple(
            Requirement(
                matcher.label,
                Operator.EQUALS if matcher.operator == "=" else Operator.NOT_EQUALS,
                frozenset((matcher.value,)),
            )
            for matcher in node.matchers
        )
    )


def describe_selector(node: SeriesSelector) -> str:
    """``metric{label="value",...}`` as written, for messages."""
    matchers = ",".join(f'{m.label}{m.operator}"{m.value}"' for m in node.matchers)
    return f"{node.metric}{{{matchers}}}" if matchers else node.metric


def _total(items: list[_Item]) -> _Item:
    return _Item(math.fsum(item.value for item in items), min(item.timestamp for item in items))


class DerivedEvaluator:
    """Computes one derived metric's value for one request (see the module's rules)."""

    def __init__(
        self,
        served: Read,
        raw: Read,
        histories: SeriesHistories,
        policies: InputPolicies,
        *,
        interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``served`` reads inputs as the HPA sees them (windows applied); ``raw`` as the provider
        serves them (the latest values that histories end with, for rate and project)."""
        self._served = served
        self._raw = raw
        self._histories = histories
        self._policies = policies
        self._interval = interval_seconds
        self._clock = clock
        self._results: dict[tuple[str, str, Labels], tuple[tuple[float, float], float, float]] = {}
        """Per (function, metric, series): (its latest timestamp and value, valid until, result)."""

    async def value(self, namespace: str, name: str, expression: str) -> ExternalMetricValue:
        """The derived metric ``name`` as one unlabelled item, timestamped with its oldest input."""
        now = self._clock()
        result = _total(await self._evaluate(parsed(expression), _Context(namespace, name, now)))
        if not math.isfinite(result.value):
            raise MetricNotFound(f"derived metric {name!r} has no finite value (division by zero?)")
        value = ExternalMetricValue(name, {}, result.timestamp, result.value)
        try:
            value.encoded()
        except (QuantityError, ValueError, OverflowError) as error:
            raise MetricNotFound(f"derived metric {name!r} has no quantity form: {error}") from error
        return value

    async def _evaluate(self, node: Node, context: _Context) -> list[_Item]:
        if isinstance(node, Number):
            return [_Item(node.value, math.inf)]
        if isinstance(node, SeriesSelector):
            values = await self._read(self._served, node, context)
            return [_Item(value.value, value.timestamp) for value in values]
        if isinstance(node, Negate):
            operand = _total(await self._evaluate(node.operand, context))
            return [_Item(-operand.value, operand.timestamp)]
        if isinstance(node, Binary):
            left = _total(await self._evaluate(node.left, context))
            right = _total(await self._evaluate(node.right, context))
            return [
                _Item(_apply(node.operator, left.value, right.value), min(left.timestamp, right.timestamp))
            ]
        if isinstance(node, Call):
            return await self._call(node, context)
        raise AssertionError(f"unexpected node {node!r}")  # Duration only as project's horizon

    async def _call(self, node: Call, context: _Context) -> list[_Item]:
        if node.function in _REDUCE:
            if len(node.arguments) == 1:
                items = await self._evaluate(node.arguments[0], context)
            else:
                items = [_total(await self._evaluate(argument, context)) for argument in node.arguments]
            values = [item.value for item in items]
            # A division by zero inside (NaN) makes the whole value undefined: Python's max and min
            # would otherwise drop a NaN argument or keep it depending on its position.
            reduced = math.nan if any(math.isnan(v) for v in values) else _REDUCE[node.function](values)
            return [_Item(reduced, min(item.timestamp for item in items))]
        series = node.arguments[0]
        assert isinstance(series, SeriesSelector)
        if node.function == "rate":
            assert series.range_seconds is not None
            seconds = series.range_seconds
            return await self._over_history(series, seconds, rate, f"rate {seconds:g}", context)
        horizon = node.arguments[1]
        assert isinstance(horizon, Duration)
        window = series.range_seconds if series.range_seconds is not None else horizon.seconds
        return await self._over_history(
            series,
            window,
            lambda points: project(points, horizon.seconds),
            f"project {window:g} {horizon.seconds:g}",
            context,
        )

    async def _over_history(
        self,
        node: SeriesSelector,
        seconds: float,
        function: Callable[[list[Point]], float | None],
        tag: str,
        context: _Context,
    ) -> list[_Item]:
        """``function`` of each selected series' points of the last ``seconds``; a series' result is
        reused while its latest value is unchanged and its window holds the same points."""
        values = await self._read(self._raw, node, context)
        items: list[_Item | None] = []
        pending: list[tuple[int, tuple[str, str, Labels]]] = []
        for index, value in enumerate(values):
            key = (tag, node.metric, tuple(sorted(value.labels.items())))
            known = self._results.get(key)
            if known is not None and known[0] == (value.timestamp, value.value) and context.now < known[1]:
                items.append(_Item(known[2], value.timestamp))
            else:
                items.append(None)
                pending.append((index, key))
        if pending:
            count = history_points(seconds, self._interval)
            missing = [values[index] for index, _ in pending]
            histories = await self._histories.points(node.metric, missing, count)
            if len(self._results) + len(pending) > HISTORY_CACHE_SERIES:
                self._results.clear()
            for (index, key), points in zip(pending, histories, strict=True):
                result = function(in_window(points, context.now, seconds))
                if result is None:
                    raise DerivedStale(
                        f"derived metric {context.name!r} is stale: {describe_selector(node)} has fewer "
                        f"than two points in its last {seconds:g} s"
                    )
                value = values[index]
                until = expiry(points, context.now, seconds)
                self._results[key] = ((value.timestamp, value.value), until, result)
                items[index] = _Item(result, value.timestamp)
        return [item for item in items if item is not None]

    async def _read(self, read: Read, node: SeriesSelector, context: _Context) -> list[ExternalMetricValue]:
        try:
            values = await read(context.namespace, series_selector(node), node.metric)
        except MetricNotFound as error:
            raise DerivedStale(
                f"derived metric {context.name!r} is stale: its input {describe_selector(node)} has no fresh "
                f"series ({error})"
            ) from error
        oldest_fresh = context.now - self._policies.metric_policy(node.metric).max_age_seconds
        if any(value.timestamp < oldest_fresh for value in values):
            raise DerivedStale(
                f"derived metric {context.name!r} is stale: its input {describe_selector(node)} is older "
                "than its max age"
            )
        return values


@dataclass(frozen=True, slots=True)
class _Context:
    namespace: str
    name: str
    now: float


def _apply(operator: str, left: float, right: float) -> float:
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    return left / right if right != 0 else math.nan
