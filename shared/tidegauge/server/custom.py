"""The custom metrics provider: a metric's value for one Kubernetes object, from the series describing it.

Built on the external provider's public method, so staleness, exposure and fallback follow the same
rules: for an object ``resource namespace/name`` and ``metric``, every ``objects:`` rule for that
resource and metric gives a selector (its own ``selector`` AND the request's ``metricLabelSelector``
AND the label values its templates need to render this object's namespace and name), and
``get_external_metric(namespace, selector, metric)`` returns the fresh, visible series it selects.
Exposure is decided for the object's namespace (for a Namespace object, that namespace).

The object's value is the SUM of those series (a series selected by two rules counts once), and its
timestamp the OLDEST of their source timestamps: the answer is no fresher than its stalest part. No
series -> :class:`MetricNotFound` (404), as for an unknown resource or metric.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from tidegauge.config.objects import (
    BUILT_IN_RESOURCES,
    PODS,
    ObjectRule,
    ResourceType,
    Template,
    resource_index,
)
from tidegauge.selectors import Operator, Requirement, Selector, SelectorError, parse_selector
from tidegauge.server.provider import MetricNotFound
from tidegauge.server.types import CustomMetricValue, DescribedObject, ExternalMetricValue

logger = logging.getLogger(__name__)


class SeriesSource(Protocol):
    """The stable public method of :class:`~tidegauge.server.provider.ExternalMetricsProvider`."""

    async def get_external_metric(
        self, namespace: str, selector: Selector, name: str
    ) -> list[ExternalMetricValue]: ...


class UnknownResource(MetricNotFound):
    """A resource no ``objects:`` rule names (nor a built-in one): 404, as upstream's unknown resource."""


class CustomMetricsProvider:
    """Answers custom metrics for objects from the ``objects:`` rules and the external provider."""

    def __init__(self, series: SeriesSource, rules: Sequence[ObjectRule]) -> None:
        self._series = series
        self._rules: dict[tuple[str, str], list[ObjectRule]] = {}
        for rule in rules:
            self._rules.setdefault((rule.resource.resource, rule.metric), []).append(rule)
        configured = [rule.resource for rule in rules]
        self._resources = resource_index([*configured, *BUILT_IN_RESOURCES])
        self._selectors = {rule.selector: parse_selector(rule.selector) for rule in rules if rule.selector}

    def resource(self, text: str) -> ResourceType:
        """The resource a path segment spells (plural, singular or short; with or without group)."""
        found = self._resources.get(text.lower())
        if found is None:
            raise UnknownResource(f"resource {text[:100]!r} is not known: no objects: rule names it")
        return found

    def rules_for(self, resource: ResourceType, metric: str) -> Sequence[ObjectRule]:
        return self._rules.get((resource.resource, metric), ())

    def metrics(self) -> list[tuple[ResourceType, str]]:
        """Every (resource, metric) some rule serves, in config order: what discovery lists."""
        return [(rules[0].resource, metric) for (_, metric), rules in self._rules.items()]

    async def get_object_metric(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> CustomMetricValue:
        """``metric`` for one object; for a Namespace object ``namespace`` and ``name`` are the same."""
        what = f"{resource.resource} {namespace}/{name}" if resource.namespaced else f"namespace {name}"
        rules = self.rules_for(resource, metric)
        if not rules:
            raise MetricNotFound(f"no metric {metric!r} is served for {resource.resource}")
        series = (await self._by_object(rules, namespace, name, metric, metric_selector)).get(name)
        if not series:
            raise MetricNotFound(f"no fresh series of metric {metric!r} describe {what}")
        described = DescribedObject(
            resource.kind, resource.api_version, name, namespace if resource.namespaced else ""
        )
        return _summed(described, metric, series, metric_selector)

    async def get_pods_metric(
        self, namespace: str, pods: Sequence[str], metric: str, metric_selector: Selector
    ) -> list[CustomMetricValue]:
        """``metric`` for each of ``pods`` that fresh series describe, one item per pod, sorted by name.

        One read per ``pods`` rule, not per pod: the rule's selector (and its namespace template) picks
        the series, its name template says which pod each describes. No such series -> MetricNotFound.
        """
        rules = self.rules_for(PODS, metric)
        if not rules:
            raise MetricNotFound(f"no metric {metric!r} is served for pods")
        by_pod = await self._by_object(rules, namespace, None, metric, metric_selector)
        wanted = set(pods)
        items = [
            _summed(
                DescribedObject(PODS.kind, PODS.api_version, pod, namespace), metric, series, metric_selector
            )
            for pod, series in sorted(by_pod.items())
            if pod in wanted
        ]
        if not items:
            raise MetricNotFound(
                f"no fresh pod-level series of metric {metric!r} describe the {len(wanted)} selected pods "
                f"in namespace {namespace}"
            )
        return items

    async def _by_object(
        self,
        rules: Iterable[ObjectRule],
        namespace: str,
        name: str | None,
        metric: str,
        metric_selector: Selector,
    ) -> dict[str, list[ExternalMetricValue]]:
        """Fresh visible series per object name they describe (only ``name``'s, unless None), each series
        once however many rules select it: one provider read per rule."""
        found: dict[str, dict[tuple[tuple[str, str], ...], ExternalMetricValue]] = {}
        for rule in rules:
            selector = self.selector_for(rule, namespace, name, metric_selector)
            if selector is None:
                continue
            try:
                values = await self._series.get_external_metric(namespace, selector, metric)
            except MetricNotFound as error:
                logger.debug("rule for %s %s selects nothing: %s", rule.resource.resource, metric, error)
                continue
            for value in values:
                described = name if name is not None else rule.name.render(value.labels)
                if described is not None:
                    found.setdefault(described, {}).setdefault(tuple(sorted(value.labels.items())), value)
        return {described: list(series.values()) for described, series in found.items()}

    def selector_for(
        self, rule: ObjectRule, namespace: str, name: str | None, metric_selector: Selector
    ) -> Selector | None:
        """The series selector for the object under ``rule`` (any name: ``name`` None); None when the
        rule cannot name this object."""
        wanted: dict[str, str] = {}
        pairs: list[tuple[Template, str]] = [] if name is None else [(rule.name, name)]
        if rule.namespace is not None:
            pairs.append((rule.namespace, namespace))
        for template, actual in pairs:
            value = template.label_value(actual)
            if value is None:
                return None
            if template.label is not None:
                if wanted.get(template.label, value) != value:
                    return None
                wanted[template.label] = value
        try:
            equalities = [Requirement(key, Operator.EQUALS, frozenset((v,))) for key, v in wanted.items()]
        except SelectorError:
            return None  # a name no label value can hold (too long, odd characters): no series names it
        own = self._selectors.get(rule.selector) if rule.selector else None
        requirements = [*metric_selector.requirements, *equalities, *(own.requirements if own else ())]
        return Selector(tuple(requirements))


def _summed(
    described: DescribedObject, metric: str, series: Sequence[ExternalMetricValue], selector: Selector
) -> CustomMetricValue:
    """One object's item: the sum of its series, at the oldest of their source timestamps."""
    return CustomMetricValue(
        described,
        metric,
        timestamp=min(value.timestamp for value in series),
        value=sum(value.value for value in series),
        selector=selector,
    )
