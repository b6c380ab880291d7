"""A ScaledObject trigger's metadata, checked: which metric, which series, which targets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from tidegauge.errors import UsageError
from tidegauge.names import NAMESPACE, SERIES_METRIC_NAME
from tidegauge.selectors import Selector, SelectorError, parse_selector


class TriggerError(UsageError, ValueError):
    """Trigger metadata that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """What one ``external`` trigger asks: the sum of ``metric``'s fresh series that ``selector`` selects.

    ``target`` is the HPA target (``targetValue`` for ``metricType: Value``, ``targetAverageValue`` for
    ``AverageValue``, KEDA's default); the trigger is active while the sum is above ``activation``.
    """

    namespace: str
    metric: str
    selector: Selector
    target: float
    average: bool
    activation: float


def _number(metadata: Mapping[str, str], key: str, *, positive: bool) -> float | None:
    text = metadata.get(key)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0) or value < 0:
        need = "a number above 0" if positive else "a number, 0 or more"
        raise TriggerError(f'trigger metadata {key}: {text[:50]!r} is not {need} (e.g. {key}: "5")')
    return value


def parse_trigger(namespace: str, metadata: Mapping[str, str]) -> Trigger:
    """The trigger of a ScaledObject in ``namespace`` with ``metadata``; :class:`TriggerError` if unusable."""
    if not NAMESPACE.accepts(namespace):
        raise TriggerError(f"the ScaledObject's namespace {namespace[:100]!r} is not a DNS label")
    metric = metadata.get("metric", "")
    if not metric:
        raise TriggerError(
            "trigger metadata metric: missing; name the tidegauge metric, e.g. metric: sqs_messages"
        )
    if not SERIES_METRIC_NAME.accepts(metric):
        raise TriggerError(
            f"trigger metadata metric: {metric[:100]!r} is not a metric name; {SERIES_METRIC_NAME.fix}"
        )
    try:
        selector = parse_selector(metadata.get("labelSelector"))
    except SelectorError as error:
        raise TriggerError(f"trigger metadata labelSelector: {error}") from error
    target = _number(metadata, "targetValue", positive=True)
    average = _number(metadata, "targetAverageValue", positive=True)
    if (target is None) == (average is None):
        raise TriggerError(
            "trigger metadata: give exactly one of targetValue (metricType: Value) or targetAverageValue "
            "(metricType: AverageValue, per replica)"
        )
    activation = _number(metadata, "activationValue", positive=False) or 0.0
    return Trigger(
        namespace=namespace,
        metric=metric,
        selector=selector,
        target=target if target is not None else average or 0.0,
        average=average is not None,
        activation=activation,
    )
